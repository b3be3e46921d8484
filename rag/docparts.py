"""One immutable part of the docstore: an SQLite file holding some documents and their chunks.

A part is written once, into a new generation folder, and never changed: later generations hard-link it
(rag/storage.py ``link_or_copy``) and record removed documents as tombstones beside it. SQLite gives
indexed lookups of one document or chunk without reading the rest, so opening an index reads nothing but
each part's small arrays (the chunks' vector ids, document numbers and instruction marks).

Example: ``write_part(folder / "docstore" / "part-1.sqlite", docs, chunks, marked); DocPart.open(path)``
"""
from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from .chunking import Chunk, vector_id
from .documents import Document
from .errors import REBUILD_HINT, IndexCorruptError
from .storage import access_error

_SCHEMA = """
CREATE TABLE documents (number INTEGER PRIMARY KEY, doc_id TEXT NOT NULL UNIQUE, title TEXT NOT NULL,
                        date TEXT, size INTEGER NOT NULL, text TEXT NOT NULL, meta TEXT NOT NULL);
CREATE TABLE chunks (row INTEGER PRIMARY KEY, number INTEGER NOT NULL, position INTEGER NOT NULL,
                     start INTEGER NOT NULL, end INTEGER NOT NULL, n_tokens INTEGER NOT NULL);
CREATE TABLE arrays (name TEXT PRIMARY KEY, data BLOB NOT NULL);
"""
# Built after the rows: listings of every document (ids, filters, the library) read this index, never the
# pages that hold the documents' text.
_SUMMARY_INDEX = "CREATE INDEX summaries ON documents (doc_id, title, date, size);"
# The document fields kept in ``meta`` (the others have columns; paths live in the manifest).
_META_FIELDS = ("content_hash", "size", "url", "pages", "instructions")


def chunk_id_of(doc_id: str, position: int) -> str:
    """A chunk's id from its document and position (as rag/chunking.py names them)."""
    return f"{doc_id}-{position:05d}"


def write_part(path: Path, documents: Sequence[Document], chunks: Sequence[Chunk], marked: np.ndarray) -> None:
    """Write ``documents`` and their ``chunks`` (in index order; ``marked[i]`` says chunk i overlaps text
    addressed to AI systems) to a new SQLite file. No journal: the generation folder is the transaction."""
    number_of = {doc.doc_id: n for n, doc in enumerate(documents)}
    open(path, "xb").close()  # created here: a new name, and OS errors as the OS words them (sqlite's are vague)
    connection = sqlite3.connect(path)
    try:
        connection.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _SCHEMA)
        connection.executemany(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((n, d.doc_id, d.title, d.date, d.size, d.text, json.dumps({f: getattr(d, f) for f in _META_FIELDS}))
             for n, d in enumerate(documents)))
        connection.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)",
            ((row, number_of[c.doc_id], c.position, c.start, c.end, c.n_tokens) for row, c in enumerate(chunks)))
        arrays: dict[str, np.ndarray] = {
            "vids": np.fromiter((vector_id(c.chunk_id) for c in chunks), np.int64, len(chunks)),
            "numbers": np.fromiter((number_of[c.doc_id] for c in chunks), np.int32, len(chunks)),
            "marked": np.asarray(marked, np.uint8)}
        connection.executemany("INSERT INTO arrays VALUES (?, ?)", ((k, v.tobytes()) for k, v in arrays.items()))
        connection.execute(_SUMMARY_INDEX)
        connection.commit()
    finally:
        connection.close()


class DocPart:
    """Read access to one part file; thread-safe (the chat searches from worker threads)."""

    def __init__(self, path: Path, connection: sqlite3.Connection, documents: int, chunks: int,
                 arrays: dict[str, np.ndarray]):
        self.path, self.name = path, path.name
        self.documents, self.chunks = documents, chunks
        self.vids, self.numbers, self.marked = arrays["vids"], arrays["numbers"], arrays["marked"]
        self._connection, self._lock = connection, threading.Lock()
        self._doc_ids: list[str] | None = None

    @property
    def doc_id_list(self) -> list[str]:
        """Every document id here, by number (read once, on first need)."""
        if self._doc_ids is None:
            self._doc_ids = self.doc_ids()
        return self._doc_ids

    @classmethod
    def open(cls, path: Path) -> DocPart:
        """Open ``path`` read-only; IndexCorruptError names it when it is missing, not SQLite or damaged."""
        try:
            open(path, "rb").close()  # sqlite reports a missing or unreadable file vaguely: ask the OS first
        except FileNotFoundError as exc:
            raise IndexCorruptError(f"The index file {path} is missing. {REBUILD_HINT}") from exc
        except OSError as exc:
            raise access_error(exc, path) or exc
        try:
            # immutable=1: the file never changes, so SQLite skips locking and change detection.
            connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True,
                                         check_same_thread=False)
            documents = connection.execute("SELECT count(*) FROM documents").fetchone()[0]
            # Rows are 0..n-1: the last one's number (one b-tree descent), not a count of every row.
            chunks = connection.execute("SELECT coalesce(max(row) + 1, 0) FROM chunks").fetchone()[0]
            blobs = dict(connection.execute("SELECT name, data FROM arrays").fetchall())
            arrays: dict[str, np.ndarray] = {"vids": np.frombuffer(blobs["vids"], np.int64),
                      "numbers": np.frombuffer(blobs["numbers"], np.int32),
                      "marked": np.frombuffer(blobs["marked"], np.uint8)}
        except (sqlite3.Error, KeyError, ValueError) as exc:
            raise _corrupt(path, exc) from exc
        if not all(len(a) == chunks for a in arrays.values()):
            raise IndexCorruptError(f"The index file {path} is corrupt (its arrays do not cover its {chunks} "
                                    f"chunks). {REBUILD_HINT}")
        if chunks and (arrays["numbers"].min() < 0 or arrays["numbers"].max() >= documents):
            raise IndexCorruptError(f"The index file {path} is corrupt (a chunk names no document). {REBUILD_HINT}")
        return cls(path, connection, documents, chunks, arrays)

    def close(self) -> None:
        self._connection.close()

    def _query(self, sql: str, parameters: Sequence = ()) -> list[tuple]:
        try:
            with self._lock:
                return self._connection.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise _corrupt(self.path, exc) from exc

    def number_of(self, doc_ids: Sequence[str]) -> dict[str, int]:
        """The document number of each of ``doc_ids`` held here. Example: ``part.number_of(["ab12"])``"""
        found: dict[str, int] = {}
        ids = list(doc_ids)
        for first in range(0, len(ids), 500):  # SQLite caps the number of bound parameters
            batch = ids[first:first + 500]
            marks = ",".join("?" * len(batch))
            found.update(self._query(f"SELECT doc_id, number FROM documents WHERE doc_id IN ({marks})", batch))
        return found

    def document(self, number: int, paths: list[str]) -> Document:
        """Document ``number`` with ``paths``; IndexCorruptError when its row is damaged."""
        rows = self._query("SELECT doc_id, title, date, text, meta FROM documents WHERE number = ?", (number,))
        if not rows:
            raise IndexCorruptError(f"The index file {self.path} lacks document {number}. {REBUILD_HINT}")
        doc_id, title, date, text, meta = rows[0]
        try:
            fields = json.loads(meta)
            return Document(doc_id=doc_id, content_hash=fields["content_hash"], text=text, paths=paths, title=title,
                            date=date, url=fields.get("url"), size=fields.get("size", 0),
                            pages=[tuple(p) for p in fields.get("pages", [])],
                            instructions=[tuple(s) for s in fields.get("instructions", [])])
        except (ValueError, KeyError, TypeError) as exc:
            raise _corrupt(self.path, exc) from exc

    def doc_ids(self) -> list[str]:
        """Every document id here, by number."""
        return [doc_id for _, doc_id, *_ in self.summaries()]

    def summaries(self) -> list[tuple[int, str, str, str | None, int]]:
        """(number, doc_id, title, date, size) of every document, by number, read from the summary index
        (the documents' text is not read)."""
        return sorted(self._query("SELECT number, doc_id, title, date, size FROM documents INDEXED BY summaries"))

    def chunk_rows(self, rows: Sequence[int]) -> dict[int, tuple[int, int, int, int, int]]:
        """``{row: (number, position, start, end, n_tokens)}`` for the chunk ``rows`` asked for."""
        found: dict[int, tuple[int, int, int, int, int]] = {}
        wanted = [int(r) for r in rows]
        for first in range(0, len(wanted), 500):
            batch = wanted[first:first + 500]
            marks = ",".join("?" * len(batch))
            found.update((row[0], row[1:]) for row in self._query(
                f"SELECT row, number, position, start, end, n_tokens FROM chunks WHERE row IN ({marks})", batch))
        return found

    def all_chunk_rows(self) -> Iterator[tuple[int, int, int, int, int, int]]:
        """(row, number, position, start, end, n_tokens) of every chunk, in row order (``rag verify``)."""
        yield from self._query("SELECT row, number, position, start, end, n_tokens FROM chunks ORDER BY row")


def _corrupt(path: Path, exc: Exception) -> IndexCorruptError:
    return IndexCorruptError(f"The index file {path} is corrupt ({exc}). {REBUILD_HINT}")
