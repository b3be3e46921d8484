"""Keyword indexes saved in the earlier layout: one bm25s index (its whole score matrix), with the term
counts beside it (counts.npy, lengths.npy) or, older still, without them. Both load and search; one with
counts becomes a part of the current layout (its next save writes that layout); one without can only be
rebuilt from the chunks' text (``KeywordIndex.incremental`` is False, so the next write rebuilds it).

Example: ``retriever, postings = load_bm25s(Path("gen-3/bm25"))``
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .postings import Postings

COUNTS, LENGTHS = "counts.npy", "lengths.npy"


def load_bm25s(path: Path):
    """(bm25s retriever, its term counts or None) of an index saved in the earlier layout."""
    import bm25s

    retriever = bm25s.BM25.load(str(path), mmap=False)
    if not (path / COUNTS).exists():
        return retriever, None
    indptr = np.asarray(retriever.scores["indptr"], np.int64)
    terms = [""] * (len(indptr) - 1)
    for term, i in retriever.vocab_dict.items():
        if 0 <= i < len(terms):
            terms[i] = term
    postings = Postings(terms, indptr, np.asarray(retriever.scores["indices"], np.int32),
                        np.load(path / COUNTS), np.load(path / LENGTHS).astype(np.int32))
    return retriever, Postings.stacked([postings])


def search(retriever, tokens: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """bm25s's scores of ``tokens``: the top-k chunks, best first."""
    terms = [t for t in tokens if t in retriever.vocab_dict]
    if not terms or k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    scores = retriever.get_scores(terms)
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    top = top[scores[top] > 0]
    return top.astype(np.int64), scores[top].astype(np.float32)


def structure_problem(retriever, size: int) -> str | None:
    """What makes the bm25s matrix unusable over ``size`` chunks, or None."""
    scores = retriever.scores
    data, indices, indptr = (np.asarray(scores[k]) for k in ("data", "indices", "indptr"))
    if int(scores["num_docs"]) != size:
        return f"it holds {int(scores['num_docs'])} chunks, the docstore {size}"
    if indptr.ndim != 1 or not len(indptr) or indptr[0] != 0 or indptr[-1] != len(indices) \
            or len(indices) != len(data) or np.any(np.diff(indptr) < 0):
        return "its term offsets are inconsistent"
    if len(indices) and (indices.min() < 0 or indices.max() >= size):
        return f"a chunk id lies outside 0..{size - 1}"
    if not np.all(np.isfinite(data)):
        return "a score is not finite"
    return None


def canonical(retriever) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(terms, term rank, chunk, score) per stored score, in term-name order: bm25s numbers terms in a
    different order in every process. ``Postings.stacked`` output with its scores has the same form."""
    vocab, scores = retriever.vocab_dict, retriever.scores
    indptr = np.asarray(scores["indptr"])
    terms = sorted(t for t, i in vocab.items() if i < len(indptr) - 1 and t)
    rank_of = np.zeros(len(indptr) - 1, np.int64)
    rank_of[[vocab[t] for t in terms]] = np.arange(len(terms))
    rank = rank_of[np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))]
    chunk = np.asarray(scores["indices"])
    order = np.lexsort((chunk, rank))
    return terms, rank[order], chunk[order], np.asarray(scores["data"])[order]


def canonical_of(postings: Postings, k1: float, b: float) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """``canonical``'s form for term counts (terms sorted, chunks ascending: ``Postings.stacked``'s order)."""
    rank = np.repeat(np.arange(len(postings.terms)), np.diff(postings.indptr))
    return list(postings.terms), rank, np.asarray(postings.chunks), postings.scores(k1, b)
