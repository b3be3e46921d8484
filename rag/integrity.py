"""Index integrity: a checksum of every file of a generation, recorded in the manifest (the manifest's own
in a sidecar file) and checked when the index is opened, plus the cheap structural invariants (ids in
range, spans inside their documents) that hold in any sound index, checksummed or not.

Example: ``seal(folder, manifest)`` when writing; ``manifest = read_manifest(folder)`` and
``verify_files(folder, manifest)`` when opening.
"""
from __future__ import annotations

import json
import re
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import IndexCorruptError
from .storage import access_error

if TYPE_CHECKING:
    from .index import Index

MANIFEST = "manifest.json"
MANIFEST_SUM = "manifest.sum"  # CRC-32 of manifest.json's bytes: the manifest cannot vouch for itself
CHECKSUMS = "checksums"  # manifest key: {path relative to the generation folder: {"bytes", "crc32"}}
_CHECKSUM_LINE = re.compile(rb"[0-9a-f]{8}\n")  # what seal() writes into manifest.sum
_BLOCK = 1 << 20  # streamed in 1 MB blocks so a large vector file never sits in memory twice
# Opening reads files up to this size to check them (a 100k-chunk index is read whole in ~0.1 s); a bigger
# file is a part written once and shared by later generations: its size is checked at open, its bytes
# when it was written and by `rag verify`, so a million-chunk index still opens in about a second.
QUICK_CHECK_BYTES = 64 << 20
OPEN_CHECK_CHUNKS = 20_000  # opening an index of up to this many chunks reads each one to check its span
DOCSTORE = "docstore"  # the docstore's folder in a generation (rag/docstore.py), named in messages
# Why CRC-32: it guards against damage on disk, not against forgery, and catches every burst of up to 32
# flipped bits; at 3.2 GB/s here (blake2b 0.9, sha1 1.7) a 350 MB index of 100k chunks costs ~0.1 s to open.


def file_digest(path: Path) -> str:
    """CRC-32 of a file as 8 hex digits, read in 1 MB blocks. Example: ``file_digest(folder / "chunks.jsonl")``"""
    crc = 0
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            crc = zlib.crc32(block, crc)
    return f"{crc:08x}"


def _digest(data: bytes) -> str:
    return f"{zlib.crc32(data):08x}"


def repair_hint(index_dir: Path) -> str:
    """What fixes a damaged index: an ingest repairs it, --rebuild starts afresh."""
    return (f"Repair it with `rag ingest PATH... --index {index_dir}`, "
            f"or rebuild it with `rag ingest PATH... --index {index_dir} --rebuild`.")


def rebuild_hint(index_dir: Path) -> str:
    """What fixes a damaged manifest, manifest checksum or CURRENT pointer: an ingest cannot repair an index
    whose list of files is unreadable, so only --rebuild does."""
    return f"Rebuild it with `rag ingest PATH... --index {index_dir} --rebuild`."


def _files(folder: Path) -> list[str]:
    """Every file of a generation except the manifest and its checksum, as sorted relative paths."""
    names = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return sorted(name for name in names if name not in (MANIFEST, MANIFEST_SUM))


def seal(folder: Path, manifest: dict, previous: Path | None = None) -> None:
    """Record the checksum of every file written to ``folder`` in ``manifest``, then write the manifest
    and its own checksum (last, so a generation is sealed only once all its files are complete). A file
    hard-linked from the ``previous`` generation keeps the checksum recorded there: it is the same file,
    and reading it again would make every write cost the whole index."""
    recorded = manifest.get(CHECKSUMS) or {}
    checksums = {}
    for name in _files(folder):
        size = (folder / name).stat().st_size
        known = recorded.get(name)
        if previous is not None and isinstance(known, dict) and known.get("bytes") == size \
                and (_same_file(folder / name, previous / name) or _PART_FILE.search(name)):
            checksums[name] = {"bytes": size, "crc32": known["crc32"]}
        else:
            checksums[name] = {"bytes": size, "crc32": file_digest(folder / name)}
    manifest[CHECKSUMS] = checksums
    data = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
    (folder / MANIFEST).write_bytes(data)
    (folder / MANIFEST_SUM).write_text(_digest(data) + "\n")


# A part file is written once under a name never used again: the same name in the next generation is the
# same file (linked, or copied where the file system has no hard links), so its recorded checksum carries
# over, and damage the copy took from its source is still found.
_PART_FILE = re.compile(r"(^|/)part-[0-9a-f]+\.")


def _same_file(path: Path, other: Path) -> bool:
    try:
        return path.samefile(other)
    except OSError:
        return False


def read_manifest(folder: Path) -> dict:
    """The generation's manifest, checked against its sidecar checksum; IndexCorruptError names the file.
    A manifest written before checksums existed (no sidecar, no checksums) is read as it is."""
    path, sidecar = folder / MANIFEST, folder / MANIFEST_SUM
    hint = rebuild_hint(folder.parent)
    try:
        data = path.read_bytes()
        expected = sidecar.read_bytes() if sidecar.exists() else None
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"The index file {exc.filename or path} is missing. {hint}") from exc
    except OSError as exc:
        raise access_error(exc, Path(exc.filename or path)) or exc
    if expected is not None and not _CHECKSUM_LINE.fullmatch(expected):  # empty, cut short or overwritten
        raise IndexCorruptError(f"The index file {sidecar} is damaged (it does not hold a CRC-32 checksum). {hint}")
    if expected is not None and (_digest(data) + "\n").encode("ascii") != expected:
        raise IndexCorruptError(f"The index file {path} does not match its checksum in {MANIFEST_SUM} "
                                f"(damaged on disk). {hint}")
    try:
        manifest = json.loads(data.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        raise IndexCorruptError(f"The index file {path} is corrupt ({exc}). {hint}") from exc
    if not isinstance(manifest, dict) or (expected is None and CHECKSUMS in manifest):
        raise IndexCorruptError(f"The index file {path} is damaged or its {MANIFEST_SUM} is missing. {hint}")
    return manifest


def damaged_files(folder: Path, manifest: dict, quick: bool = False) -> list[tuple[str, str]]:
    """(relative path, what is wrong) for each recorded file that is missing or fails its checksum;
    [] for an index written before checksums existed. ``quick`` (when opening) reads only files up to
    ``QUICK_CHECK_BYTES`` and checks the size of larger ones (``rag verify`` reads them all)."""
    problems = []
    for name, expected in sorted(manifest.get(CHECKSUMS, {}).items()):
        try:
            size = (folder / name).stat().st_size
            recorded = expected.get("bytes") if isinstance(expected, dict) else None
            if size != recorded:  # truncated or grown: no need to read it
                problems.append((name, f"{size} bytes, the manifest records {recorded}"))
                continue
            if quick and size > QUICK_CHECK_BYTES:
                continue
            actual = file_digest(folder / name)
        except FileNotFoundError:
            problems.append((name, "missing"))
            continue
        except PermissionError as exc:  # not damage: the fix is access, not a rebuild
            raise access_error(exc, folder / name) or exc
        except OSError as exc:
            problems.append((name, f"unreadable ({exc.strerror or exc})"))
            continue
        if actual != expected.get("crc32"):
            problems.append((name, "checksum mismatch (damaged on disk)"))
    return problems


def unrecorded_files(folder: Path, manifest: dict) -> list[str]:
    """Files in a checksummed generation that its manifest does not list (nothing of ours writes them)."""
    if CHECKSUMS not in manifest:
        return []
    return [name for name in _files(folder) if name not in manifest[CHECKSUMS]]


def verify_files(folder: Path, manifest: dict) -> None:
    """Raise IndexCorruptError naming the first damaged or missing file of the generation (files above
    ``QUICK_CHECK_BYTES``: missing, truncated or grown; their bytes are checked by ``rag verify``)."""
    problems = damaged_files(folder, manifest, quick=True)
    if problems:
        name, problem = problems[0]
        raise IndexCorruptError(f"The index file {folder / name} is damaged: {problem}. {repair_hint(folder.parent)}")


def structure_problems(index: Index, full: bool = True) -> list[str]:
    """What breaks the invariants every sound index keeps: chunk spans inside their documents, one vector
    per chunk under the chunk's id, keyword indexes over exactly the chunks. ``full=False`` (opening) reads
    every chunk only in an index of up to ``OPEN_CHECK_CHUNKS`` chunks and checks counts in a larger one."""
    problems = []
    thorough = full or len(index.chunks) <= OPEN_CHECK_CHUNKS
    for number, chunk in enumerate(index.chunks if thorough else (), 1):
        doc = index.documents.get(chunk.doc_id)
        if doc is None or not 0 <= chunk.start < chunk.end <= len(doc.text):
            problems.append(f"{DOCSTORE}: chunk {number} ({chunk.chunk_id}) lies outside its document")
            break
    expected = np.sort(index.docstore.vector_ids()) if thorough else np.zeros(0, np.int64)
    if thorough and len(np.unique(expected)) != len(expected):
        problems.append(f"{DOCSTORE}: {len(expected) - len(np.unique(expected))} chunk id(s) appear twice")
    elif thorough and not np.array_equal(expected, stored := np.sort(index.store.ids())):
        unknown = np.setdiff1d(stored, expected).size
        problems.append(f"{index.store.FILE}: {stored.size} vector ids, {unknown} of them name no chunk "
                        f"({expected.size} chunks)")
    for name, keyword in (("bm25", index.keyword), ("bm25_context", index.context_keyword)):
        problem = keyword.structure_problem(len(index.chunks))
        if problem:
            problems.append(f"{name}: {problem}")
    return problems


def check_structure(index: Index, folder: Path) -> None:
    """Raise IndexCorruptError naming the file whose invariants do not hold (see structure_problems)."""
    problems = structure_problems(index, full=False)
    if problems:
        name, _, problem = problems[0].partition(": ")
        raise IndexCorruptError(f"The index file {folder / name} is inconsistent: {problem}. "
                                f"{repair_hint(folder.parent)}")
