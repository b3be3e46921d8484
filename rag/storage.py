"""Atomic, crash-safe persistence of an index folder as immutable generations.

Layout: ``INDEX/CURRENT`` names the live generation folder ``INDEX/gen-<n>/``. A write builds a new
generation in a temporary folder, fsyncs it, renames it into place and only then swaps ``CURRENT``
(an atomic rename). A process killed at any moment therefore leaves the previous generation live.

Example: ``with IndexLock(path): write_generation(path, lambda tmp: save_files(tmp))``
"""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from .errors import IndexLockedError, IndexNotFoundError

CURRENT = "CURRENT"
LOCK = ".lock"
_GEN_PREFIX = "gen-"
_TMP_PREFIX = ".tmp-"


class IndexLock:
    """Exclusive writer lock on an index folder; a second writer waits up to ``timeout`` s, then fails."""

    def __init__(self, index_dir: Path, timeout: float = 10.0):
        from filelock import FileLock

        index_dir.mkdir(parents=True, exist_ok=True)
        self.index_dir = index_dir
        self.timeout = timeout
        self._lock = FileLock(str(index_dir / LOCK))

    def __enter__(self) -> "IndexLock":
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=self.timeout)
        except Timeout as exc:
            raise IndexLockedError(
                f"Another process is writing to the index {self.index_dir} (waited {self.timeout:.0f} s). "
                "Try again when it has finished."
            ) from exc
        return self

    def __exit__(self, *exc_info) -> None:
        self._lock.release()


def current_generation(index_dir: Path) -> Path:
    """The live generation folder; IndexNotFoundError when the folder holds no index."""
    pointer = index_dir / CURRENT
    if not pointer.is_file():
        raise IndexNotFoundError(
            f"No index at {index_dir}. Build one with `rag ingest PATH --index {index_dir}`."
        )
    name = pointer.read_text().strip()
    return index_dir / name


def has_index(index_dir: Path) -> bool:
    return (index_dir / CURRENT).is_file()


def write_generation(index_dir: Path, write_files: Callable[[Path], None]) -> Path:
    """Write a new generation with ``write_files(folder)`` and make it live atomically. Call under IndexLock."""
    index_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(index_dir)
    name = f"{_GEN_PREFIX}{time.time_ns()}"
    tmp = index_dir / f"{_TMP_PREFIX}{name}"
    tmp.mkdir()
    write_files(tmp)
    _fsync_tree(tmp)
    final = index_dir / name
    os.rename(tmp, final)
    _fsync_dir(index_dir)
    pointer_tmp = index_dir / f"{_TMP_PREFIX}{CURRENT}"
    with open(pointer_tmp, "w") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(pointer_tmp, index_dir / CURRENT)
    _fsync_dir(index_dir)
    _remove_old_generations(index_dir, keep=name)
    return final


def _remove_stale_temporaries(index_dir: Path) -> None:
    # Left behind by a writer that was killed; never live, safe to delete under the lock.
    for entry in index_dir.glob(f"{_TMP_PREFIX}*"):
        shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def _remove_old_generations(index_dir: Path, keep: str) -> None:
    """Delete all but the live and the previous generation: a reader that read CURRENT just before the
    swap may still be opening the previous one's files."""
    older = sorted((e for e in index_dir.glob(f"{_GEN_PREFIX}*") if e.name != keep),
                   key=lambda e: int(e.name.removeprefix(_GEN_PREFIX)))
    for entry in older[:-1]:
        shutil.rmtree(entry, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    for path in [folder, *[p for p in folder.rglob("*") if p.is_dir()]]:
        _fsync_dir(path)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
