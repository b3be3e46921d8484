"""BM25 keyword search: one index over the chunks, one over each chunk with its neighbours (its context).

An index is a list of immutable parts plus tombstones (rag/keyword_parts.py, like Lucene's segments): a
write tokenizes only the chunks it adds, into a new part, and records removed chunks as tombstones; a save
writes only the new parts and hard-links the rest. Scores are computed at query time for the query's terms
(rag/keyword_search.py) from statistics over the live chunks, so an index grown or shrunk equals, score
for score, one built afresh (as bm25s would build it: same tokenizer, stemmer and stop words).

Example: ``kw = KeywordIndex.build(["gallium controls", "chip exports"]); kw.search("gallium", 5)``
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import keyword_legacy as legacy
from .errors import REBUILD_HINT, IndexCorruptError
from .keyword_legacy import load_bm25s
from .keyword_parts import Part, merge_plan, part_meta
from .keyword_search import Stats, top_chunks
from .keyword_terms import STOPWORDS, postings_of, tokenize, window_postings  # noqa: F401 (STOPWORDS: for callers)
from .postings import Postings
from .storage import access_error
from .terms import segment

if TYPE_CHECKING:
    from .chunking import Chunk

_EMPTY = "EMPTY"  # the earlier layout's mark of an index with no terms (bm25s cannot save or load one)
# The listing (parameters, parts in order, each one's sizes) and the removed rows (over all parts, in
# order): the only files a save rewrites besides the new parts.
_LISTING, _DELETED, _FORMAT = "parts.json", "deleted.npy", 2

# The context index: a chunk with this many neighbours on each side, scored with less length
# normalisation (b) than the chunk index because windows at a document's ends are shorter. A claim whose
# terms are spread over neighbouring chunks still matches; tuned on BEIR SciFact's train split (bench/beir.py).
CONTEXT_NEIGHBOURS = 1
CONTEXT_K1, CONTEXT_B = 1.2, 0.4
# Recorded in each index's manifest: a saved context index built with other values is rebuilt on load.
CONTEXT_SETTINGS = {"neighbours": CONTEXT_NEIGHBOURS, "k1": CONTEXT_K1, "b": CONTEXT_B}


class KeywordIndex:
    """BM25 over chunks 0..size-1 in docstore order: immutable parts (rag/keyword_parts.py), each holding
    some chunks' term counts, and the rows removed since (tombstones); scored at query time
    (rag/keyword_search.py). A write costs what it adds or removes, not what the index holds."""

    def __init__(self, parts: list[Part], deleted: list[np.ndarray], k1: float = 1.5, b: float = 0.75,
                 legacy=None):
        self._parts = list(parts)
        self._deleted = [np.asarray(rows, np.int64) for rows in deleted]  # per part: its removed rows, ascending
        self.k1, self.b = float(k1), float(b)
        # A bm25s index saved before term counts were kept: searched as it is, rebuilt on the next write.
        self._legacy = legacy
        self._view: _View | None = None

    @classmethod
    def build(cls, texts: list[str], k1: float = 1.5, b: float = 0.75) -> KeywordIndex:
        """Index ``texts``; k1 and b are BM25's term-saturation and length-normalisation parameters."""
        return cls([], [], k1, b).extended(texts)

    @property
    def size(self) -> int:
        if self._legacy is not None:
            return int(self._legacy.scores["num_docs"])
        return sum(part.size for part in self._parts) - sum(len(rows) for rows in self._deleted)

    @property
    def parts(self) -> tuple[Part, ...]:
        return tuple(self._parts)

    @property
    def incremental(self) -> bool:
        """True when chunks can be added or removed without tokenizing the ones held (term counts kept)."""
        return self._legacy is None

    @property
    def postings(self) -> Postings:
        """The live chunks' term counts as one ``Postings`` (reads every part: for checks, not searches)."""
        return Postings.stacked([part.postings() for part in self._parts], self._keeps())

    def extended(self, texts: list[str] | Postings) -> KeywordIndex:
        """This index with ``texts`` added as the next chunks, in a new part; only they are tokenized.
        Needs ``incremental``. Example: ``KeywordIndex.build(["a b"]).extended(["c d"]).size == 2``"""
        assert self._legacy is None, "extended() needs an incremental index"
        postings = texts if isinstance(texts, Postings) else postings_of(texts)  # counted already, or texts
        if not postings.size:
            return self
        part = Part.of(postings)
        return KeywordIndex(self._parts + [part], self._deleted + [np.zeros(0, np.int64)], self.k1, self.b)._merged()

    def without(self, positions: list[int]) -> KeywordIndex:
        """This index without the chunks at ``positions`` (the rest renumbered in order): tombstones, the
        parts left as they are. Needs ``incremental``. Example: ``KeywordIndex.build(["a", "b"]).without([0])``"""
        assert self._legacy is None, "without() needs an incremental index"
        wanted = np.unique(np.asarray(positions, np.int64))
        if not len(wanted):
            return self
        assert wanted[0] >= 0 and wanted[-1] < self.size, "a position lies outside the index"
        view = self._current()
        # Live position p is row p + (the number of removed rows at or before it).
        gone = view.deleted - np.arange(len(view.deleted))
        rows = wanted + np.searchsorted(gone, wanted, "right")
        which = np.searchsorted(view.bases, rows, "right") - 1
        deleted = [np.union1d(old, rows[which == i] - view.bases[i]) for i, old in enumerate(self._deleted)]
        return KeywordIndex(self._parts, deleted, self.k1, self.b)._merged()

    def compact(self) -> KeywordIndex:
        """One part holding the live chunks, tombstones dropped (scores unchanged, searches a little faster)."""
        if self._legacy is not None or (len(self._parts) <= 1 and not any(len(d) for d in self._deleted)):
            return self
        return self._merge(0, len(self._parts))

    def _merged(self) -> KeywordIndex:
        """This index after the merge policy (keyword_parts.merge_plan): the part count stays bounded."""
        index = self
        while plan := merge_plan([p.size for p in index._parts], [len(d) for d in index._deleted]):
            index = index._merge(*plan)
        return index

    def _merge(self, first: int, last: int) -> KeywordIndex:
        """Parts first..last-1 merged into one without their removed rows (costs what they hold)."""
        keeps = self._keeps()[first:last]
        merged = Part.of(Postings.stacked([part.postings() for part in self._parts[first:last]], keeps))
        parts, deleted = self._parts[:first], self._deleted[:first]
        if merged.size:
            parts, deleted = parts + [merged], deleted + [np.zeros(0, np.int64)]
        return KeywordIndex(parts + self._parts[last:], deleted + self._deleted[last:], self.k1, self.b)

    def _keeps(self) -> list[np.ndarray | None]:
        keeps = []
        for part, rows in zip(self._parts, self._deleted):
            keep = None
            if len(rows):
                keep = np.ones(part.size, bool)
                keep[rows] = False
            keeps.append(keep)
        return keeps

    def _current(self) -> _View:
        """Where each part starts, the removed rows and the live statistics (worked out once per index)."""
        if self._view is None:
            bases = np.concatenate([[0], np.cumsum([p.size for p in self._parts], dtype=np.int64)])
            deleted = [rows + base for rows, base in zip(self._deleted, bases)]
            self._view = _View(bases, np.concatenate(deleted).astype(np.int64) if deleted else np.zeros(0, np.int64))
        return self._view

    def _stats(self) -> Stats:
        view = self._current()
        if view.stats is None:
            view.stats = Stats.of(self._parts, self._deleted, self.k1, self.b)
        return view.stats

    def counts_agree(self) -> bool:
        """Whether every part's term counts add up to its chunk lengths with every row in range, in order
        (reads every entry: ``rag verify``). Counts that disagree would make every score wrong."""
        return self._legacy is not None or all(part.counts_problem() is None for part in self._parts)

    @classmethod
    def load(cls, path: Path, size: int) -> KeywordIndex:
        """Open the index saved for ``size`` chunks, its arrays memory-mapped (IndexCorruptError when it is
        missing or does not match). Reads the earlier single-bm25s layout too."""
        try:
            if (path / _EMPTY).exists():  # earlier layout: chunks without a term
                index = cls([Part.of(Postings.empty(size))] if size else [], [np.zeros(0, np.int64)] if size else [])
            elif (path / _LISTING).exists():
                index = cls._load_parts(path)
            else:
                index = cls._load_bm25s(path)
        except PermissionError as exc:
            raise access_error(exc, Path(exc.filename or path)) or exc
        if index.size != size:
            raise IndexCorruptError(
                f"The keyword index in {path} holds {index.size} chunks, the docstore {size}. {REBUILD_HINT}")
        problem = index.structure_problem(size)
        if problem:
            raise IndexCorruptError(f"The keyword index in {path} is corrupt ({problem}). {REBUILD_HINT}")
        return index

    @classmethod
    def _load_parts(cls, path: Path) -> KeywordIndex:
        try:
            listing = json.loads((path / _LISTING).read_text(encoding="utf-8"))
            metas, k1, b = [part_meta(m) for m in listing["parts"]], float(listing["k1"]), float(listing["b"])
            deleted = np.load(path / _DELETED, allow_pickle=False)
            if deleted.ndim != 1 or deleted.dtype.kind != "i" or len(deleted) != listing["deleted"]:
                raise ValueError(f"{len(deleted)} removed rows, the listing says {listing['deleted']}")
        except PermissionError:
            raise
        except Exception as exc:  # bad JSON, missing keys, a damaged .npy header (numpy: any of several errors)
            raise IndexCorruptError(f"The keyword index listing in {path} ({_LISTING}, {_DELETED}) is corrupt or "
                                    f"missing ({exc}). {REBUILD_HINT}") from exc
        parts = [Part.open(path, meta["name"], meta) for meta in metas]
        bases = np.concatenate([[0], np.cumsum([p.size for p in parts], dtype=np.int64)])
        which = np.searchsorted(bases, deleted, "right") - 1
        return cls(parts, [deleted[which == i] - bases[i] for i in range(len(parts))], k1, b)

    @classmethod
    def _load_bm25s(cls, path: Path) -> KeywordIndex:
        try:
            retriever, postings = load_bm25s(path)
        except PermissionError:
            raise
        except Exception as exc:
            raise IndexCorruptError(
                f"The keyword index in {path} is corrupt or missing ({exc}). {REBUILD_HINT}") from exc
        k1, b = float(retriever.k1), float(retriever.b)
        if postings is None:
            return cls([], [], k1, b, legacy=retriever)
        return cls([Part.of(postings)], [np.zeros(0, np.int64)], k1, b)

    def structure_problem(self, size: int) -> str | None:
        """What makes this index unusable over ``size`` chunks (offsets out of bounds, terms out of order,
        a row out of range, removed rows that name no chunk), or None.
        Example: ``KeywordIndex.build(["a b"]).structure_problem(1) is None``"""
        if self._legacy is not None:
            return legacy.structure_problem(self._legacy, size)
        if self.size != size:
            return f"it holds {self.size} chunks, the docstore {size}"
        for part, rows in zip(self._parts, self._deleted):
            problem = part.structure_problem()
            if problem:
                return f"{problem[1]} ({problem[0]})"
            if len(rows) and (rows[0] < 0 or rows[-1] >= part.size or np.any(np.diff(rows) <= 0)):
                return f"a removed row of {part.name} lies outside it or repeats ({_DELETED})"
        return None

    def save(self, path: Path) -> None:
        """Write the index into ``path``: new parts written, the others hard-linked from where they were
        saved, the listing and the removed rows rewritten (both small)."""
        path.mkdir(parents=True, exist_ok=True)
        if self._legacy is not None:
            self._legacy.save(str(path))
            return
        self._parts = [part.save(path) for part in self._parts]  # mapped from there: linked from there next
        np.save(path / _DELETED, self._current().deleted)
        listing = {"format": _FORMAT, "k1": self.k1, "b": self.b, "deleted": int(len(self._current().deleted)),
                   "parts": [part.meta() for part in self._parts]}
        (path / _LISTING).write_text(json.dumps(listing, indent=1), encoding="utf-8")

    def same_as(self, other: KeywordIndex) -> bool:
        """Same chunks, terms and scores (``rag verify`` compares a saved index with one rebuilt)."""
        if self.size != other.size or not self.size:
            return self.size == other.size
        if self._legacy is not None or other._legacy is not None:
            mine, theirs = self._canonical(), other._canonical()
            return mine[0] == theirs[0] and all(np.array_equal(a, b) for a, b in zip(mine[1:], theirs[1:]))
        mine, theirs = self.postings, other.postings
        arrays = ("indptr", "chunks", "counts", "lengths")
        return (self.k1, self.b) == (other.k1, other.b) and mine.terms == theirs.terms and all(
            np.array_equal(getattr(mine, name), getattr(theirs, name)) for name in arrays)

    def _canonical(self):
        if self._legacy is not None:
            return legacy.canonical(self._legacy)
        return legacy.canonical_of(self.postings, self.k1, self.b)

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk positions, scores) of the top-k chunks that share a term with the query, best first."""
        tokens = tokenize([segment(query)], return_ids=False)[0]
        if self._legacy is not None:
            return legacy.search(self._legacy, tokens, k)
        k = min(k, self.size)
        if k <= 0 or not tokens:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        view = self._current()
        try:
            rows, scores = top_chunks(self._parts, view.bases.tolist(), self._deleted, tokens, self._stats(), k)
        except IndexError as exc:  # a row inside a large part's entries (checked whole by ``rag verify`` only)
            where = self._parts[0].folder or "memory"
            raise IndexCorruptError(f"The keyword index in {where} is corrupt ({exc}). {REBUILD_HINT}") from exc
        return rows - np.searchsorted(view.deleted, rows), scores


@dataclass
class _View:
    """Derived from an index's parts and tombstones: each part's first row, the removed rows (ascending,
    over all parts) and the live statistics (on the first search)."""

    bases: np.ndarray
    deleted: np.ndarray
    stats: Stats | None = None


def chunk_texts(chunks: Sequence[Chunk], titles: Mapping[str, str]) -> list[str]:
    """What the chunk index sees for each chunk: its document title and its text."""
    return [f"{titles[c.doc_id]}\n{c.text}" for c in chunks]


def context_texts(chunks: Sequence[Chunk], titles: Mapping[str, str], texts: Mapping[str, str],
                  neighbours: int = CONTEXT_NEIGHBOURS) -> list[str]:
    """What the context index sees for each chunk: its document title and the span from ``neighbours``
    chunks before it to as many after it, never crossing into another document."""
    return [f"{titles[doc_id]}\n{texts[doc_id][start:end]}"
            for doc_id, start, end, _ in context_windows(chunks, neighbours)]


def context_windows(chunks: Sequence[Chunk], neighbours: int = CONTEXT_NEIGHBOURS) -> list[tuple[str, int, int, int]]:
    """(doc_id, start, end, i) of each chunk i's context span (see ``context_texts``)."""
    at = {(c.doc_id, c.position): c for c in chunks}
    windows = []
    for i, chunk in enumerate(chunks):
        first = next(at[(chunk.doc_id, p)] for p in range(chunk.position - neighbours, chunk.position + 1)
                     if (chunk.doc_id, p) in at)
        last = next(at[(chunk.doc_id, p)] for p in range(chunk.position + neighbours, chunk.position - 1, -1)
                    if (chunk.doc_id, p) in at)
        windows.append((chunk.doc_id, first.start, last.end, i))
    return windows


def keyword_postings(chunks: Sequence[Chunk], titles: Mapping[str, str], texts: Mapping[str, str],
                     context: bool) -> Postings:
    """The term counts of ``chunk_texts`` (or, with ``context``, ``context_texts``) of ``chunks``, each
    document's text tokenized once where its chunk spans allow (``window_postings``)."""
    windows = context_windows(chunks) if context else [(c.doc_id, c.start, c.end, i) for i, c in enumerate(chunks)]
    counted = window_postings(windows, texts, titles)
    if counted is not None:
        return counted
    return postings_of(context_texts(chunks, titles, texts) if context else chunk_texts(chunks, titles))
