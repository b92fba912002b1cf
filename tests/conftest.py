"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests run under pytest-xdist on 2 cores: one intra-op thread per worker."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.set_num_threads(1)


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
