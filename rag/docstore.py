"""The docstore: every stored document and chunk, read on demand from immutable SQLite parts
(rag/docparts.py), with what was added since the last save held in memory and removed documents kept as
tombstones until their part is merged.

A chunk's position is its rank among the live chunks: parts in order, each part's rows in order, then the
chunks added since. The keyword indexes and the vector store number chunks the same way.

A save writes only a part for the documents added since, hard-links the other parts into the new
generation and lists them in the manifest; when there are more than ``MAX_PARTS``, the two adjacent parts
with the fewest chunks are merged (their removed documents dropped), so a one-file add never rewrites the
bulk of the index. ``compact`` merges everything into one part.

Example: ``store = Docstore.open(folder, manifest, paths_of); store.chunk(0).text``
"""
from __future__ import annotations

import re
import threading
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from .chunking import Chunk, vector_id
from .docparts import DocPart, chunk_id_of, write_part
from .documents import Document
from .errors import REBUILD_HINT, IndexCorruptError
from .storage import link_or_copy

DOCSTORE_DIR = "docstore"
MANIFEST_KEY = "docstore"  # {"parts": [{"file", "documents", "chunks"}], "deleted": {file: [doc_id, ...]}}
MAX_PARTS = 8
_PART_FILE = re.compile(rf"{DOCSTORE_DIR}/part-[0-9a-f]{{16}}\.sqlite")  # what ``_write`` names a part
_CACHED_DOCUMENTS = 256  # documents kept decoded: a question's passages come from a handful of them

class PathsOf(Protocol):
    """Document id -> its indexed paths (rag/index.py ``PathsByDocument``); ``forget`` after they change."""

    def __call__(self, doc_id: str) -> list[str]: ...

    def add(self, paths: list[str], content_hash: str) -> None: ...

    def forget(self) -> None: ...


class Docstore:
    """Documents by id and chunks by position, over saved parts plus unsaved additions (thread-safe reads)."""

    def __init__(self, parts: list[DocPart], deleted: dict[str, set[str]], paths_of: PathsOf,
                 folder: Path | None = None):
        self._parts = parts
        self._deleted = {part.name: set(deleted.get(part.name, ())) for part in parts}
        self.paths_of = paths_of
        self.folder = folder  # the generation the parts were opened from: unchanged ones are linked from it
        self._pending: dict[str, Document] = {}
        self._pending_chunks: list[Chunk] = []
        self._pending_marked: list[bool] = []
        self._cache: OrderedDict[tuple[str, int], Document] = OrderedDict()  # by (part file, document number)
        self._lock = threading.Lock()
        self._layout()

    @classmethod
    def in_memory(cls, documents: dict[str, Document], chunks: list[Chunk], paths_of: PathsOf,
                  marked: Sequence[bool] | None = None) -> Docstore:
        """A docstore of unsaved documents (a new index, or one read from format-1 files)."""
        store = cls([], {}, paths_of)
        store._pending = dict(documents)
        store._pending_chunks = list(chunks)
        store._pending_marked = list(marked) if marked is not None else [False] * len(chunks)
        store._layout()
        return store

    @classmethod
    def open(cls, folder: Path, manifest: dict, paths_of: PathsOf) -> Docstore:
        """The docstore a generation's manifest lists; IndexCorruptError names a missing or damaged part."""
        listing = manifest.get(MANIFEST_KEY) or {}
        parts = []
        files = [entry.get("file") for entry in listing.get("parts", [])]
        bad = next((f for f in files if not isinstance(f, str) or not _PART_FILE.fullmatch(f)), None)
        if bad is not None or len(set(files)) != len(files):
            raise IndexCorruptError(f"The manifest of {folder} lists a docstore part wrongly ({bad or 'twice'}). "
                                    f"{REBUILD_HINT}")
        for entry in listing.get("parts", []):
            part = DocPart.open(folder / entry["file"])
            if (part.documents, part.chunks) != (entry["documents"], entry["chunks"]):
                raise IndexCorruptError(
                    f"The index file {part.path} holds {part.documents} documents and {part.chunks} chunks, the "
                    f"manifest records {entry['documents']} and {entry['chunks']}. {REBUILD_HINT}")
            parts.append(part)
        deleted = {Path(name).name: set(ids) for name, ids in listing.get("deleted", {}).items()}
        return cls(parts, deleted, paths_of, folder)

    # -- layout: which rows of which part are live, and where each part's positions start

    def _layout(self) -> None:
        self._live: list[np.ndarray | None] = []  # None: every row of the part is live
        self._dead_numbers: list[set[int]] = []
        for part in self._parts:
            dead = set(part.number_of(sorted(self._deleted[part.name])).values())
            self._dead_numbers.append(dead)
            self._live.append(np.flatnonzero(~np.isin(part.numbers, list(dead))) if dead else None)
        sizes = [part.chunks if live is None else len(live) for part, live in zip(self._parts, self._live)]
        self._offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        self._vid_order: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def chunk_count(self) -> int:
        return int(self._offsets[-1]) + len(self._pending_chunks)

    @property
    def document_count(self) -> int:
        stored = sum(part.documents - len(dead) for part, dead in zip(self._parts, self._dead_numbers))
        return stored + len(self._pending)

    def _locate(self, position: int) -> tuple[int, int]:
        """(part number, row) of a saved chunk's position; part number -1 for an unsaved chunk."""
        if not 0 <= position < self.chunk_count:
            raise IndexError(f"chunk position {position} out of range")
        if position >= self._offsets[-1]:
            return -1, position - int(self._offsets[-1])
        k = int(np.searchsorted(self._offsets, position, "right")) - 1
        local = position - int(self._offsets[k])
        live = self._live[k]
        return k, int(local if live is None else live[local])

    def _positions(self, k: int, rows: np.ndarray) -> np.ndarray:
        """Positions of part ``k``'s live ``rows``."""
        live = self._live[k]
        local = rows if live is None else np.searchsorted(live, rows)
        return local + self._offsets[k]

    # -- chunks

    def chunk(self, position: int) -> Chunk:
        return self.chunks_at([position])[0]

    def chunks_at(self, positions: Sequence[int]) -> list[Chunk]:
        """The chunks at ``positions``, each with its text, in the order asked (one query per part)."""
        wanted: dict[int, list[tuple[int, int]]] = {}
        found: list[Chunk | None] = [None] * len(positions)
        for i, position in enumerate(positions):
            k, row = self._locate(int(position))
            if k < 0:
                found[i] = self._pending_chunks[row]
            else:
                wanted.setdefault(k, []).append((i, row))
        for k, asked in wanted.items():
            part = self._parts[k]
            rows = part.chunk_rows([row for _, row in asked])
            for i, row in asked:
                if row not in rows:
                    raise IndexCorruptError(f"The index file {part.path} lacks chunk row {row}. {REBUILD_HINT}")
                number, position, start, end, n_tokens = rows[row]
                doc = self._stored_document(k, number)
                found[i] = Chunk(chunk_id_of(doc.doc_id, position), doc.doc_id, position, start, end, n_tokens,
                                 doc.text[start:end])
        return found  # type: ignore[return-value]

    def iter_chunks(self, start: int = 0, stop: int | None = None, batch: int = 2048) -> Iterator[Chunk]:
        """Chunks ``start`` to ``stop`` in position order, fetched ``batch`` at a time."""
        stop = self.chunk_count if stop is None else min(stop, self.chunk_count)
        for first in range(start, stop, batch):
            yield from self.chunks_at(range(first, min(first + batch, stop)))

    def doc_id_at(self, position: int) -> str:
        """The document of the chunk at ``position`` (no text read). Example: ``store.doc_id_at(0)``"""
        k, row = self._locate(position)
        if k < 0:
            return self._pending_chunks[row].doc_id
        return self._doc_ids(k)[int(self._parts[k].numbers[row])]

    def vector_ids(self) -> np.ndarray:
        """Every live chunk's vector id, in position order."""
        saved = [part.vids if live is None else part.vids[live] for part, live in zip(self._parts, self._live)]
        pending = np.fromiter((vector_id(c.chunk_id) for c in self._pending_chunks), np.int64,
                              len(self._pending_chunks))
        return np.concatenate([*saved, pending]) if saved else pending

    def position_of_vids(self, vids: np.ndarray) -> np.ndarray:
        """Each vector id's position, -1 where no live chunk has it (sorted lookup: no dict of 1M entries)."""
        with self._lock:
            if self._vid_order is None:
                every = self.vector_ids()
                order = np.argsort(every, kind="stable")
                self._vid_order = (every[order], order)
            sorted_vids, order = self._vid_order
        vids = np.asarray(vids, np.int64)
        at = np.minimum(np.searchsorted(sorted_vids, vids), max(len(sorted_vids) - 1, 0))
        hit = (sorted_vids[at] == vids) if len(sorted_vids) else np.zeros(len(vids), bool)
        return np.where(hit, order[at] if len(order) else -1, -1)

    def marked_count(self) -> int:
        """Live chunks overlapping text addressed to AI systems."""
        saved = sum(int(part.marked.sum() if live is None else part.marked[live].sum())
                    for part, live in zip(self._parts, self._live))
        return saved + sum(self._pending_marked)

    def chunk_counts(self) -> Counter[str]:
        """Live chunks per document id (no text read). Example: ``store.chunk_counts()["ab12"]``"""
        counts: Counter[str] = Counter()
        for k, (part, live) in enumerate(zip(self._parts, self._live)):
            per_number = np.bincount(part.numbers if live is None else part.numbers[live], minlength=part.documents)
            ids = self._doc_ids(k)
            counts.update({ids[n]: int(c) for n, c in enumerate(per_number.tolist()) if c})
        counts.update(c.doc_id for c in self._pending_chunks)
        return counts

    def marked_documents(self) -> int:
        """Live documents with a chunk overlapping text addressed to AI systems."""
        saved = 0
        for part, live in zip(self._parts, self._live):
            rows = np.flatnonzero(part.marked) if live is None else live[part.marked[live] > 0]
            saved += len(np.unique(part.numbers[rows]))
        return saved + len({c.doc_id for c, m in zip(self._pending_chunks, self._pending_marked) if m})

    # -- documents

    def document(self, doc_id: str) -> Document | None:
        """The stored document ``doc_id`` (with its paths), or None."""
        if doc_id in self._pending:
            return self._pending[doc_id]
        found = self._find(doc_id)
        return self._stored_document(*found) if found else None

    def contains(self, doc_id: str) -> bool:
        """Whether ``doc_id`` is stored and live (its text is not read)."""
        return doc_id in self._pending or self._find(doc_id) is not None

    def _find(self, doc_id: str) -> tuple[int, int] | None:
        """(part, document number) of the live saved document ``doc_id``: one indexed lookup a part."""
        for k in range(len(self._parts) - 1, -1, -1):  # newest first: a document re-added lives there
            number = self._parts[k].number_of([doc_id]).get(doc_id)
            if number is not None and number not in self._dead_numbers[k]:
                return k, number
        return None

    def _stored_document(self, k: int, number: int) -> Document:
        key = (self._parts[k].name, number)  # not the id: that would need the part's list of every id
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        doc = self._parts[k].document(number, [])
        doc.paths = self.paths_of(doc.doc_id)
        with self._lock:
            self._cache[key] = doc
            while len(self._cache) > _CACHED_DOCUMENTS:
                self._cache.popitem(last=False)
        return doc

    def _doc_ids(self, k: int) -> list[str]:
        return self._parts[k].doc_id_list

    def doc_ids(self) -> Iterator[str]:
        """Every live document id: saved parts in order, then the unsaved ones."""
        for k in range(len(self._parts)):
            dead = self._dead_numbers[k]
            yield from (doc_id for n, doc_id in enumerate(self._doc_ids(k)) if n not in dead)
        yield from self._pending

    def summaries(self) -> Iterator[tuple[str, str, str | None, int]]:
        """(doc_id, title, date, size) of every live document, without reading their text (filters, the
        library listing)."""
        for k, part in enumerate(self._parts):
            dead = self._dead_numbers[k]
            yield from (row[1:] for row in part.summaries() if row[0] not in dead)
        yield from ((doc.doc_id, doc.title, doc.date, doc.size) for doc in self._pending.values())

    def forget_paths(self) -> None:
        """Drop cached documents (their paths changed); unsaved ones get their paths anew."""
        self.paths_of.forget()
        with self._lock:
            self._cache.clear()
        for doc_id, doc in self._pending.items():
            doc.paths = self.paths_of(doc_id) or doc.paths

    # -- changes

    def add(self, doc: Document, chunks: list[Chunk], marked: list[bool]) -> None:
        self._pending[doc.doc_id] = doc
        self._pending_chunks.extend(chunks)
        self._pending_marked.extend(marked)
        self._vid_order = None

    def positions_of(self, doc_ids: set[str]) -> np.ndarray:
        """Positions of every live chunk of ``doc_ids``, ascending."""
        found = []
        for k, part in enumerate(self._parts):
            numbers = [n for n in part.number_of(sorted(doc_ids)).values() if n not in self._dead_numbers[k]]
            if numbers:
                found.append(self._positions(k, np.flatnonzero(np.isin(part.numbers, numbers))))
        base = int(self._offsets[-1])
        found.append(np.array([base + i for i, c in enumerate(self._pending_chunks) if c.doc_id in doc_ids], np.int64))
        return np.sort(np.concatenate(found)).astype(np.int64)

    def remove(self, doc_ids: set[str]) -> None:
        """Drop ``doc_ids``: unsaved ones at once, saved ones as tombstones until their part is merged."""
        kept = [i for i, c in enumerate(self._pending_chunks) if c.doc_id not in doc_ids]
        self._pending_chunks = [self._pending_chunks[i] for i in kept]
        self._pending_marked = [self._pending_marked[i] for i in kept]
        for doc_id in doc_ids:
            self._pending.pop(doc_id, None)
        for k, part in enumerate(self._parts):
            for doc_id, number in part.number_of(sorted(doc_ids)).items():
                if number not in self._dead_numbers[k]:
                    self._deleted[part.name].add(doc_id)
        with self._lock:
            self._cache.clear()
        self._layout()

    # -- saving

    def save(self, folder: Path) -> dict:
        """Write the unsaved documents as a new part of ``folder`` (a new generation), link the others,
        merge parts beyond ``MAX_PARTS``; returns the manifest's docstore listing."""
        (folder / DOCSTORE_DIR).mkdir(exist_ok=True)
        entries: list[tuple[str, int, int, set[str]]] = []  # (file, documents, chunks, deleted doc ids)
        for k, part in enumerate(self._parts):
            name = f"{DOCSTORE_DIR}/{part.name}"
            if self.folder is None or not (self.folder / name).exists():
                raise IndexCorruptError(f"The docstore part {name} is not in {self.folder}. {REBUILD_HINT}")
            link_or_copy(self.folder / name, folder / name)
            entry = (name, part.documents, part.chunks, self._deleted[part.name])
            live = int(self._offsets[k + 1] - self._offsets[k])
            # A part that lost a quarter of its chunks is rewritten without them (as the other stores do):
            # removed text does not stay on disk, nor its tombstones in every manifest; an emptied one goes.
            if not live:
                (folder / name).unlink()
            elif live <= part.chunks * 3 // 4:
                entries.append(self._merge(folder, [entry]))
            else:
                entries.append(entry)
        if self._pending:
            entries.append(self._write(folder, list(self._pending.values()), self._pending_chunks,
                                       self._pending_marked))
        while len(entries) > MAX_PARTS:
            sizes = [entries[i][2] + entries[i + 1][2] for i in range(len(entries) - 1)]
            i = int(np.argmin(sizes))
            entries[i:i + 2] = [self._merge(folder, entries[i:i + 2])]
        return {"parts": [{"file": f, "documents": d, "chunks": c} for f, d, c, _ in entries],
                "deleted": {f: sorted(dead) for f, _, _, dead in entries if dead}}

    def compacted(self, folder: Path) -> dict:
        """``save``, with every part and the unsaved documents merged into one part without tombstones."""
        listing = self.save(folder)
        entries = [(e["file"], e["documents"], e["chunks"], set(listing["deleted"].get(e["file"], ())))
                   for e in listing["parts"]]
        if len(entries) > 1 or any(dead for *_, dead in entries):
            file, documents, chunks, _ = self._merge(folder, entries)
            return {"parts": [{"file": file, "documents": documents, "chunks": chunks}], "deleted": {}}
        return listing

    def _merge(self, folder: Path, entries: list[tuple[str, int, int, set[str]]]) -> tuple[str, int, int, set[str]]:
        """One new part holding the live documents of ``entries`` (files in ``folder``), in order."""
        documents: list[Document] = []
        chunks: list[Chunk] = []
        marked: list[bool] = []
        for file, _, _, dead in entries:
            part = DocPart.open(folder / file)
            try:
                docs = {number: part.document(number, []) for number in range(part.documents)}
                alive = {n for n, d in docs.items() if d.doc_id not in dead}
                documents.extend(docs[n] for n in sorted(alive))
                for row, number, position, start, end, n_tokens in part.all_chunk_rows():
                    if number in alive:
                        doc = docs[number]
                        chunks.append(Chunk(chunk_id_of(doc.doc_id, position), doc.doc_id, position, start, end,
                                            n_tokens, ""))
                        marked.append(bool(part.marked[row]))
            finally:
                part.close()
            (folder / file).unlink()  # this generation's link only: the previous generation keeps its own
        return self._write(folder, documents, chunks, marked)

    @staticmethod
    def _write(folder: Path, documents: list[Document], chunks: list[Chunk],
               marked: list[bool]) -> tuple[str, int, int, set[str]]:
        name = f"{DOCSTORE_DIR}/part-{uuid.uuid4().hex[:16]}.sqlite"
        write_part(folder / name, documents, chunks, np.asarray(marked, np.uint8))
        return name, len(documents), len(chunks), set()
