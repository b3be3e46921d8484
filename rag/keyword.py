"""BM25 keyword search (bm25s), rebuilt with every ingest so it never drifts: one index over the chunks,
one over each chunk with its neighbours (its context).

Example: ``kw = KeywordIndex.build(["gallium controls", "chip exports"]); kw.search("gallium", 5)``
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import REBUILD_HINT, IndexCorruptError
from .storage import access_error
from .terms import stemmer

if TYPE_CHECKING:
    from .chunking import Chunk

# English stemming (terms.stemmer) and stop words: on SciFact's train split they lift BM25 from 0.666 to 0.697.
STOPWORDS = "en"
_EMPTY = "EMPTY"  # marks a saved index with no terms (bm25s cannot save or load one)

# The context index: a chunk with this many neighbours on each side, scored with less length
# normalisation (b) than the chunk index because windows at a document's ends are shorter. A claim whose
# terms are spread over neighbouring chunks still matches; tuned on BEIR SciFact's train split (bench/beir.py).
CONTEXT_NEIGHBOURS = 1
CONTEXT_K1, CONTEXT_B = 1.2, 0.4
# Recorded in each index's manifest: a saved context index built with other values is rebuilt on load.
CONTEXT_SETTINGS = {"neighbours": CONTEXT_NEIGHBOURS, "k1": CONTEXT_K1, "b": CONTEXT_B}


class KeywordIndex:
    """A bm25s index whose document i is chunk i of the docstore order (the chunk alone, or its context)."""

    def __init__(self, retriever, size: int):
        self._retriever = retriever
        self.size = size

    @classmethod
    def build(cls, texts: list[str], k1: float = 1.5, b: float = 0.75) -> "KeywordIndex":
        """Index ``texts``; k1 and b are BM25's term-saturation and length-normalisation parameters."""
        import bm25s

        retriever = bm25s.BM25(k1=k1, b=b)
        tokens = bm25s.tokenize(texts, stopwords=STOPWORDS, stemmer=stemmer(), show_progress=False) if texts else None
        if tokens is None or not tokens.vocab:
            # Nothing but stop words (or nothing at all): no term can match, bm25s cannot index it.
            return cls(retriever, 0)
        retriever.index(tokens, show_progress=False)
        return cls(retriever, len(texts))

    @classmethod
    def load(cls, path: Path, size: int) -> "KeywordIndex":
        """Load the index saved for ``size`` chunks (IndexCorruptError when it is missing or does not match)."""
        import bm25s

        if (path / _EMPTY).exists():
            return cls(bm25s.BM25(), 0)
        try:
            retriever = bm25s.BM25.load(str(path), mmap=False)
            stored = int(retriever.scores["num_docs"])
        except PermissionError as exc:
            raise access_error(exc, Path(exc.filename or path)) or exc
        except Exception as exc:
            raise IndexCorruptError(
                f"The keyword index in {path} is corrupt or missing ({exc}). {REBUILD_HINT}") from exc
        if stored != size:
            raise IndexCorruptError(
                f"The keyword index in {path} holds {stored} chunks, the docstore {size}. {REBUILD_HINT}")
        index = cls(retriever, size)
        problem = index.structure_problem(size)
        if problem:
            raise IndexCorruptError(f"The keyword index in {path} is corrupt ({problem}). {REBUILD_HINT}")
        return index

    def structure_problem(self, size: int) -> str | None:
        """What makes this index unusable over ``size`` chunks (a chunk id or term id out of range, broken
        offsets, scores that are not finite), or None. Example: ``KeywordIndex.build(["a b"]).structure_problem(1)``"""
        if not self.size:
            return None
        scores, vocab = self._retriever.scores, self._retriever.vocab_dict
        data, indices, indptr = (np.asarray(scores[k]) for k in ("data", "indices", "indptr"))
        if self.size != size or int(scores["num_docs"]) != size:
            return f"it holds {int(scores['num_docs'])} chunks, the docstore {size}"
        if indptr.ndim != 1 or not len(indptr) or indptr[0] != 0 or indptr[-1] != len(indices) \
                or len(indices) != len(data) or np.any(np.diff(indptr) < 0):
            return "its term offsets are inconsistent"
        if len(indices) and (indices.min() < 0 or indices.max() >= size):
            return f"a chunk id lies outside 0..{size - 1}"
        # bm25s appends an empty token "" after the last scored term; no query ever looks it up.
        terms = np.fromiter((i for t, i in vocab.items() if t), np.int64)
        if len(terms) and (terms.min() < 0 or terms.max() >= len(indptr) - 1):
            return "a term id lies outside the term table"
        if not np.all(np.isfinite(data)):
            return "a score is not finite"
        return None

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self.size:
            self._retriever.save(str(path))
        else:
            (path / _EMPTY).touch()

    def same_as(self, other: "KeywordIndex") -> bool:
        """Same chunks, terms and scores (``rag verify`` compares a saved index with one rebuilt)."""
        if self.size != other.size or not self.size:
            return self.size == other.size
        mine, theirs = self._canonical(), other._canonical()
        return mine[0] == theirs[0] and all(np.array_equal(a, b) for a, b in zip(mine[1:], theirs[1:]))

    def _canonical(self) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """(terms, term rank, chunk, score) per stored score, in term-name order: bm25s numbers terms in
        a different order in every process, so two equal indexes differ in their raw arrays."""
        vocab, scores = self._retriever.vocab_dict, self._retriever.scores
        indptr = np.asarray(scores["indptr"])
        terms = sorted(t for t, i in vocab.items() if i < len(indptr) - 1)
        rank_of = np.zeros(len(indptr) - 1, np.int64)
        rank_of[[vocab[t] for t in terms]] = np.arange(len(terms))
        rank = rank_of[np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))]
        chunk = np.asarray(scores["indices"])
        order = np.lexsort((chunk, rank))
        return terms, rank[order], chunk[order], np.asarray(scores["data"])[order]

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk positions, scores) of the top-k chunks that share a term with the query."""
        import bm25s

        if not self.size:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        tokens = bm25s.tokenize([query], stopwords=STOPWORDS, stemmer=stemmer(), show_progress=False, return_ids=False)
        vocab = self._retriever.vocab_dict
        terms = [t for t in tokens[0] if t in vocab]
        if not terms:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores = self._retriever.get_scores(terms)
        k = min(k, self.size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return top.astype(np.int64), scores[top].astype(np.float32)


def chunk_texts(chunks: Sequence["Chunk"], titles: Mapping[str, str]) -> list[str]:
    """What the chunk index sees for each chunk: its document title and its text."""
    return [f"{titles[c.doc_id]}\n{c.text}" for c in chunks]


def context_texts(chunks: Sequence["Chunk"], titles: Mapping[str, str], texts: Mapping[str, str],
                  neighbours: int = CONTEXT_NEIGHBOURS) -> list[str]:
    """What the context index sees for each chunk: its document title and the span from ``neighbours``
    chunks before it to as many after it, never crossing into another document."""
    at = {(c.doc_id, c.position): c for c in chunks}
    windows = []
    for chunk in chunks:
        first = next(at[(chunk.doc_id, p)] for p in range(chunk.position - neighbours, chunk.position + 1)
                     if (chunk.doc_id, p) in at)
        last = next(at[(chunk.doc_id, p)] for p in range(chunk.position + neighbours, chunk.position - 1, -1)
                    if (chunk.doc_id, p) in at)
        windows.append(f"{titles[chunk.doc_id]}\n{texts[chunk.doc_id][first.start:last.end]}")
    return windows
