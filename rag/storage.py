"""Atomic, crash-safe persistence of an index folder as immutable generations.

Layout: ``INDEX/CURRENT`` names the live generation folder ``INDEX/gen-<n>/``. A write builds a new
generation in a temporary folder, fsyncs it, renames it into place and only then swaps ``CURRENT``
(an atomic rename). A process killed at any moment therefore leaves the previous generation live.

Example: ``with IndexLock(path): write_generation(path, lambda tmp: save_files(tmp))``
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from .errors import IndexAccessError, IndexCorruptError, IndexLockedError, IndexNotFoundError

CURRENT = "CURRENT"
LOCK = ".lock"
_GEN_PREFIX = "gen-"
_TMP_PREFIX = ".tmp-"
_GEN_NAME = re.compile(r"gen-\d{1,30}")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_DENIED = (errno.EACCES, errno.EPERM)


def access_error(exc: OSError, path: Path, writing: bool = False) -> IndexAccessError | None:
    """The IndexAccessError for a permission, disk-full or read-only failure on ``path``; None for others.

    Example: ``raise access_error(exc, folder / "chunks.jsonl") or exc``
    """
    if exc.errno in _DENIED:
        access = "write" if writing else "read"
        return IndexAccessError(
            f"Permission denied: cannot {access} {path}. Give this user {access} access to the index folder, "
            "or choose another one with --index (RAG_INDEX).")
    if exc.errno in _NO_SPACE:
        return IndexAccessError(
            f"No space left on the disk holding {path}: the index was not saved (the previous one is still in "
            "use). Free some space and ingest again.")
    if exc.errno == errno.EROFS:
        return IndexAccessError(f"{path} is on a read-only file system. Choose a writable index folder with "
                                "--index (RAG_INDEX).")
    return None


def _not_a_folder(index_dir: Path) -> str:
    return (f"{index_dir} is a file, not an index folder (or lies inside one). Give --index (RAG_INDEX) the "
            "folder that holds the index, e.g. indexes/default.")


class IndexLock:
    """Exclusive writer lock on an index folder; a second writer waits up to ``timeout`` s, then fails."""

    def __init__(self, index_dir: Path, timeout: float = 10.0):
        from filelock import FileLock

        try:
            index_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise IndexAccessError(_not_a_folder(index_dir)) from exc
        except OSError as exc:
            raise access_error(exc, index_dir, writing=True) or exc
        self.index_dir = index_dir
        self.timeout = timeout
        self._lock = FileLock(str(index_dir / LOCK))

    def __enter__(self) -> IndexLock:
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=self.timeout)
        except Timeout as exc:
            raise IndexLockedError(
                f"Another process is writing to the index {self.index_dir} and still held it after "
                f"{self.timeout:g} s. Try again when it has finished, or wait longer with RAG_LOCK_TIMEOUT."
            ) from exc
        except OSError as exc:
            raise access_error(exc, self.index_dir / LOCK, writing=True) or exc
        return self

    def __exit__(self, *exc_info) -> None:
        self._lock.release()


def current_generation(index_dir: Path) -> Path:
    """The live generation folder. IndexNotFoundError when the folder holds no index, IndexCorruptError
    when CURRENT does not name an existing generation, IndexAccessError when it cannot be read.

    Example: ``current_generation(Path("indexes/default")).name.startswith("gen-")``
    """
    pointer = index_dir / CURRENT
    if index_dir.exists() and not index_dir.is_dir():
        raise IndexNotFoundError(_not_a_folder(index_dir))
    try:
        raw = pointer.read_bytes()[:200]
    except FileNotFoundError as exc:
        raise IndexNotFoundError(
            f"No index at {index_dir}. Build one with `rag ingest PATH --index {index_dir}`.") from exc
    except NotADirectoryError as exc:
        raise IndexNotFoundError(_not_a_folder(index_dir)) from exc
    except IsADirectoryError as exc:
        raise _bad_pointer(index_dir, "is a folder, not a file") from exc
    except OSError as exc:
        raise access_error(exc, pointer) or exc
    name = raw.decode("utf-8", "replace").strip()
    if not name:
        raise _bad_pointer(index_dir, "is empty")
    if not _GEN_NAME.fullmatch(name):  # never follow a pointer out of the index folder (../, /etc)
        raise _bad_pointer(index_dir, f"holds {name[:60]!r}, which is not a generation name like gen-<number>")
    if not (index_dir / name).is_dir():
        raise _bad_pointer(index_dir, f"names {name}, which does not exist")
    return index_dir / name


def _bad_pointer(index_dir: Path, problem: str) -> IndexCorruptError:
    """The error for a damaged CURRENT file, with the generations that could be pointed at instead."""
    existing = sorted(e.name for e in index_dir.glob(f"{_GEN_PREFIX}*") if _GEN_NAME.fullmatch(e.name) and e.is_dir())
    other = f" or write the name of an existing generation ({existing[-1]}) into it" if existing else ""
    return IndexCorruptError(
        f"The index pointer {index_dir / CURRENT} {problem}. Rebuild the index with "
        f"`rag ingest PATH... --index {index_dir} --rebuild`{other}.")


def has_index(index_dir: Path) -> bool:
    return (index_dir / CURRENT).is_file()


def write_generation(index_dir: Path, write_files: Callable[[Path], None]) -> Path:
    """Write a new generation with ``write_files(folder)`` and make it live atomically. Call under IndexLock."""
    index_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(index_dir)
    name = f"{_GEN_PREFIX}{time.time_ns()}"
    tmp = index_dir / f"{_TMP_PREFIX}{name}"
    tmp.mkdir()
    try:
        write_files(tmp)
        _fsync_tree(tmp)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        translated = access_error(exc, index_dir, writing=True)
        if translated:
            raise translated from exc
        if exc.filename is None:  # a failed write() names no file: say which index it was
            raise OSError(exc.errno, exc.strerror or str(exc), str(index_dir)) from exc
        raise
    except BaseException:  # Ctrl-C or a bug: the previous generation stays live; leave no half-written copy
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    final = index_dir / name
    os.rename(tmp, final)
    _fsync_dir(index_dir)
    previous = _live_name(index_dir)
    _point_to(index_dir, name)
    _remove_old_generations(index_dir, keep={name, previous})
    return final


def link_or_copy(source: Path, target: Path) -> None:
    """Put an unchanged file of the previous generation into a new one: a hard link (no bytes copied, so a
    write costs what changed, not the whole index), or a copy where the file system has no hard links.

    Example: ``link_or_copy(old_folder / "seg-3.faiss", new_folder / "seg-3.faiss")``
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        shutil.copy2(source, target)


def _live_name(index_dir: Path) -> str | None:
    """The generation CURRENT names now, or None (no index yet, or an unreadable pointer)."""
    try:
        return (index_dir / CURRENT).read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _point_to(index_dir: Path, name: str) -> None:
    """Swap CURRENT to ``name``; when that fails (a full disk), drop the unreferenced new generation."""
    pointer_tmp = index_dir / f"{_TMP_PREFIX}{CURRENT}"
    try:
        with open(pointer_tmp, "w") as handle:
            handle.write(name + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(pointer_tmp, index_dir / CURRENT)
    except OSError as exc:
        pointer_tmp.unlink(missing_ok=True)
        shutil.rmtree(index_dir / name, ignore_errors=True)
        raise access_error(exc, index_dir, writing=True) or exc
    _fsync_dir(index_dir)


def _remove_stale_temporaries(index_dir: Path) -> None:
    # Left behind by a writer that was killed; never live, safe to delete under the lock.
    for entry in index_dir.glob(f"{_TMP_PREFIX}*"):
        shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def _remove_old_generations(index_dir: Path, keep: set[str | None]) -> None:
    """Delete every generation but the live one and the one that was live before the swap: a reader that
    read CURRENT just before the swap may still be opening its files. A newer generation that a killed
    writer renamed into place but never pointed CURRENT at is not that one, so it goes too."""
    for entry in index_dir.glob(f"{_GEN_PREFIX}*"):
        if entry.name not in keep:
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
