"""Shared test fixtures."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load_benchmark(name: str):
    """The module of ``benchmarks/<name>.py``, loaded as when the script runs: with its
    folder on ``sys.path``, so that a bench can import another bench's helpers."""
    import importlib.util
    import sys

    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_benchmark():
    """A loader of ``benchmarks/<name>.py`` modules (see :func:`_load_benchmark`)."""
    return _load_benchmark


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests run under pytest-xdist on 2 cores: one intra-op thread per worker."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _ctrl_c_reaches_children():
    """A suite started as a background job of a non-interactive shell (`.ci/run &`)
    inherits SIGINT ignored, and so would every command a test starts: the tests that
    press Ctrl-C in `edgenas train` or `search` would wait for an exit that never
    comes. A handler (unlike "ignored") is reset to the default when a child starts,
    so the children get Ctrl-C as from a terminal."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def shared_data() -> Path:
    """../shared/data beside the checkout; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture
def umask_022():
    """Run the test under umask 022 (restored afterwards): files a user shares must come
    out 0644."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)
