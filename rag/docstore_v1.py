"""The docstore files of an index written in format 1: documents.jsonl (one stored Document a line) and
chunks.jsonl (one chunk's id, document, position, span and token count a line; its text is the span).
Such an index is read whole, once, and written in the current format (rag/docstore.py) by its next save.

Example: ``documents = {d.doc_id: d for d in read_documents(folder / DOCUMENTS)}``
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

from .chunking import Chunk
from .documents import Document
from .errors import REBUILD_HINT, IndexCorruptError
from .injection import find_instructions
from .storage import access_error

DOCUMENTS = "documents.jsonl"
CHUNKS = "chunks.jsonl"
# The fields of a documents.jsonl row, in the order written; the first six are required.
_ROW_FIELDS = ("doc_id", "content_hash", "title", "text", "size", "paths", "date", "url", "pages", "instructions")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def read_documents(path: Path) -> list[Document]:
    """Every stored document; IndexCorruptError names the file when a line cannot be read."""
    try:
        return [_stored_document(row) for _, row in _read_jsonl(path)]
    except TypeError as exc:
        raise IndexCorruptError(f"The index file {path} has unexpected fields ({exc}).") from exc


def read_chunks(path: Path, documents: Mapping[str, Document]) -> list[Chunk]:
    """Every chunk, its text cut from its document; IndexCorruptError names the line that does not fit."""
    chunks = []
    for number, row in _read_jsonl(path):
        try:
            chunk_id, doc_id, position, start, end, n_tokens = row
            text = documents[doc_id].text[start:end]
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(f"The index file {path} is corrupt at line {number}.") from exc
        chunks.append(Chunk(chunk_id, doc_id, position, start, end, n_tokens, text))
    return chunks


def check_count(path: Path, what: str, found: int, expected: int | None) -> None:
    """Blame the file that lost rows, not the next one that refers to them."""
    if expected is not None and found != expected:
        raise IndexCorruptError(
            f"The index file {path} lists {found} {what}, the manifest {expected}. {REBUILD_HINT}")


def _stored_document(row: dict) -> Document:
    """One documents.jsonl row; a row written before instruction spans were stored gets them found now."""
    if not set(_ROW_FIELDS[:6]) <= row.keys() <= set(_ROW_FIELDS):
        raise TypeError(f"expected the fields {', '.join(_ROW_FIELDS)}, got {', '.join(row)}")
    spans = row["instructions"] if "instructions" in row else find_instructions(row.get("text") or "")
    return Document(**{**row, "pages": [tuple(p) for p in row.get("pages", [])],
                       "instructions": [tuple(s) for s in spans]})


def _json_line(row: dict) -> str:
    """One JSON line, non-ASCII text kept readable; lone surrogates (file names that are not UTF-8) escaped,
    since they cannot be written as UTF-8 but ``json.loads`` reads ``\\udcff`` back exactly."""
    line = json.dumps(row, ensure_ascii=False)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", line) + "\n"


@contextmanager
def _index_file(path: Path):
    """Turn a missing or undecodable index file into an IndexCorruptError that names it."""
    try:
        yield
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"The index file {path} is missing. {REBUILD_HINT}") from exc
    except OSError as exc:
        raise access_error(exc, path) or exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"The index file {path} is corrupt ({exc}). {REBUILD_HINT}") from exc


def _read_jsonl(path: Path):
    with _index_file(path), open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            yield number, json.loads(line)
