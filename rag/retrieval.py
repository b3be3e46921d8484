"""Hybrid retrieval: dense (FAISS) and BM25 candidates, fused, filtered and de-duplicated.

Example: ``Retriever(index, embedder, settings).search("When did the controls start?", k=5)``
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import Settings
from .embedding import Embedder
from .index import Index

# Chunks whose vectors are this close are shown once (boilerplate repeated across files).
NEAR_DUPLICATE_COSINE = 0.97


@dataclass(frozen=True)
class Filters:
    """Optional restrictions: source path substring, and an inclusive ISO date range."""

    source: str | None = None
    date_from: str | None = None
    date_to: str | None = None

    def active(self) -> bool:
        return bool(self.source or self.date_from or self.date_to)


@dataclass
class Hit:
    """One retrieved chunk (by docstore position) with its fused and per-retriever scores."""

    position: int
    score: float
    dense: float | None = None
    keyword: float | None = None


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], weights: Sequence[float] | None = None,
                           k: int = 60) -> list[tuple[int, float]]:
    """Fuse ranked id lists: score(d) = sum_i w_i / (k + rank_i(d)), rank from 1; ties keep first-seen order.

    k=60 follows Cormack et al. (2009): it damps the head so one list's top hit cannot dominate.
    Example: ``reciprocal_rank_fusion([[1, 2], [2, 3]])[0][0] == 2``
    """
    weights = list(weights) if weights is not None else [1.0] * len(rankings)
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


class Retriever:
    """Ranks an index's chunks for a query; the assistant answers from exactly these."""

    def __init__(self, index: Index, embedder: Embedder, settings: Settings):
        self.index = index
        self.embedder = embedder
        self.settings = settings

    def search(self, query: str, k: int, filters: Filters | None = None) -> list[Hit]:
        if not self.index.chunks or not query.strip():
            return []
        allowed = self._allowed_positions(filters) if filters and filters.active() else None
        if allowed is not None and not allowed:
            return []
        depth = self.settings.candidates if allowed is None else len(self.index.chunks)
        dense = self._dense(query, depth)
        keyword = self._keyword(query, depth)
        if allowed is not None:
            dense = {p: s for p, s in dense.items() if p in allowed}
            keyword = {p: s for p, s in keyword.items() if p in allowed}
        fused = reciprocal_rank_fusion(
            [list(dense), list(keyword)], [self.settings.dense_weight, self.settings.bm25_weight], self.settings.rrf_k
        )
        hits = [Hit(p, s, dense.get(p), keyword.get(p)) for p, s in fused]
        return self._collapse_near_duplicates(hits, k)

    def _dense(self, query: str, depth: int) -> dict[int, float]:
        vector = self.embedder.encode([query])
        scores, ids = self.index.store.search(vector, depth)
        lookup = self.index.position_of_vid
        return {lookup[int(i)]: float(s) for s, i in zip(scores[0], ids[0]) if int(i) in lookup}

    def _keyword(self, query: str, depth: int) -> dict[int, float]:
        positions, scores = self.index.keyword.search(query, depth)
        return {int(p): float(s) for p, s in zip(positions, scores)}

    def _allowed_positions(self, filters: Filters) -> set[int]:
        allowed = set()
        for position, chunk in enumerate(self.index.chunks):
            doc = self.index.documents[chunk.doc_id]
            if filters.source and not any(filters.source in path for path in doc.paths):
                continue
            if (filters.date_from or filters.date_to) and not doc.date:
                continue
            if filters.date_from and doc.date < filters.date_from:
                continue
            if filters.date_to and doc.date > filters.date_to:
                continue
            allowed.add(position)
        return allowed

    def _collapse_near_duplicates(self, hits: list[Hit], k: int) -> list[Hit]:
        """Keep the best of chunks with the same normalised text or nearly the same vector."""
        pool = hits[: k * 3]
        if not pool:
            return []
        vectors = self.index.chunk_vectors([h.position for h in pool])
        kept: list[int] = []
        seen_texts: set[str] = set()
        for i, hit in enumerate(pool):
            text = _normalise(self.index.chunks[hit.position].text)
            if text in seen_texts:
                continue
            if kept and float(np.max(vectors[kept] @ vectors[i])) >= NEAR_DUPLICATE_COSINE:
                continue
            seen_texts.add(text)
            kept.append(i)
            if len(kept) == k:
                break
        return [pool[i] for i in kept]


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()
