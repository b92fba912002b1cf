"""Write files whole or not at all: edgenas's one atomic writer.

Every output a user or another process may read while a run is going (reports, plots,
checkpoints, latency results, ONNX files) goes through a temporary file in the same
folder that replaces the destination only once it is complete, so an interrupted run
never leaves a half-written file. Temporary files are created private (mode 0600);
the finished file gets the mode an ordinary ``open()`` would give it under the user's
umask, so reports stay readable by the people the user shares a folder with.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    # os.umask can only be read by setting it; restore at once (single call site, so the
    # window is two syscalls wide).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode ``open(path, "w")`` would create a file with under the current umask."""
    return 0o666 & ~_umask()


def nearest_existing_folder(path: str | Path) -> Path:
    """The nearest folder on ``path``'s way that exists (its parent, or further up)."""
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _missing_folders(path: Path) -> list[Path]:
    """``path``'s parent folders that do not exist yet, deepest first."""
    missing, folder = [], path.parent
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_folders(folders: list[Path]) -> None:
    for folder in folders:  # deepest first; one that got other files stays
        with contextlib.suppress(OSError):
            folder.rmdir()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    For writers that want a file name (``torch.save``, ``fig.savefig``, ``onnx.save``).
    Missing parent folders are created; on any error (Ctrl-C, a full disk) the
    temporary file and the folders this call created are removed and ``path`` is left
    as it was, so a failed write leaves nothing behind.
    """
    path = Path(path)
    created = _missing_folders(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except BaseException:
        _remove_folders(created)
        raise
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        _remove_folders(created)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
