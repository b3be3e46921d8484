"""BM25 at query time over a keyword index's parts: only the query's terms are scored.

Hand-written rather than bm25s's search because bm25s precomputes every (term, chunk) score over one fixed
corpus: a score depends on the number of chunks, their average length and the term's document frequency,
which change with every chunk added or removed, so precomputed scores cannot be shared between parts and
every write would rescore the whole corpus. Here those statistics are taken over the live chunks of all
parts when a query comes, and each score is computed as bm25s computes it (Lucene's idf, rounded to
float32; the term part in float64; the sum over the query's terms, repeats included, in float32 and in the
query's order), so an index grown in parts scores as one built afresh.

Example: ``top_chunks(parts, [0], removed, ["gallium"], Stats.of(parts, removed, 1.5, 0.75), 5)``
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .keyword_parts import Part


@dataclass(frozen=True)
class Stats:
    """Statistics over the live chunks (their number and average length in terms) and, per part, its
    chunks' lengths, their BM25 length norms ``k1 * (1 - b + b * length / average)`` in float32 (for the
    approximate scores that choose the top chunks) and a mask of its removed rows."""

    live: int
    average: float
    k1: float
    b: float
    lengths: list[np.ndarray]
    norms: list[np.ndarray]
    dead: list[np.ndarray | None]

    @classmethod
    def of(cls, parts: list[Part], removed: list[np.ndarray], k1: float, b: float) -> Stats:
        """Read every part's chunk lengths once (4 MB a million chunks); a query then reads only its terms."""
        lengths = [np.asarray(part.lengths) for part in parts]
        live = sum(len(length) - len(rows) for length, rows in zip(lengths, removed))
        total = sum(int(length.sum(dtype=np.int64)) - int(length[rows].sum(dtype=np.int64))
                    for length, rows in zip(lengths, removed))
        average = total / live if live else 1.0
        dead: list[np.ndarray | None] = []
        for length, rows in zip(lengths, removed):
            flags = None if not len(rows) else np.zeros(len(length), bool)
            if flags is not None:
                flags[rows] = True
            dead.append(flags)
        norms = [_norm(length, average, k1, b).astype(np.float32) for length in lengths]
        return cls(live, average, k1, b, lengths, norms, dead)


def top_chunks(parts: list[Part], bases: list[int], removed: list[np.ndarray], tokens: list[str], stats: Stats,
               k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores) of the top-``k`` live chunks sharing a term with ``tokens``, best first (ties: lower
    row first). A chunk's row counts over all parts (``bases``: each part's first); ``removed``: each part's
    removed rows, ascending.

    Terms are scored rarest (highest weight) first; once the k-th best score so far exceeds what the terms
    left could add to a chunk, the chunks not yet seen cannot reach the top: the common terms left are
    looked up only for the chunks that still can (MaxScore, as Lucene's). The chosen chunks' scores are
    then summed exactly as bm25s sums them."""
    query = _Query(parts, bases, removed, tokens, stats)
    if not query.terms:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    order = sorted(query.terms, key=lambda t: -t.weight)
    total, done = np.zeros(bases[-1] + parts[-1].size, np.float32), 0
    touched: list[np.ndarray] = []
    for j, term in enumerate(order):  # the rarest terms in full, into every chunk's total
        # Skipping the rest would pay, and could happen: the best total so far may exceed what they add.
        if j and sum(t.entries for t in order[j:]) > 2 * done and _bound(order[:j]) > _bound(order[j:]):
            touched = [np.concatenate(touched)]
            kth = _kth(total[touched[0]], k)
            if kth * (1 - _MARGIN) > _bound(order[j:]):
                return _finish(query, tokens, order[j:], touched[0], total, kth, k)
        held, scores = term.scored()
        before = total[held]
        touched.append(held[before == 0])  # the chunks no rarer term holds (every score is above 0)
        total[held] = before + (scores if term.repeats == 1 else scores * np.float32(term.repeats))
        done += len(held)
    rows = np.concatenate(touched)
    return _exact_top(query, tokens, rows, total[rows], k)


def _finish(query: _Query, tokens: list[str], left: list[_Term], rows: np.ndarray, total: np.ndarray, kth: float,
            k: int) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` once no chunk outside ``rows`` can reach it: the terms ``left`` are added for the
    chunks that still can (``total``: every chunk's score so far), dropping those that no longer can after
    each term. A term held by few of them is looked up per chunk, one held by many is added in full."""
    partial = total[rows]
    for j, term in enumerate(left):
        keep = partial + _bound(left[j:]) >= kth * (1 - _MARGIN)
        rows, partial = rows[keep], partial[keep]
        if len(rows) * 8 > term.entries:
            held, scores = term.scored()
            total[held] += scores if term.repeats == 1 else scores * np.float32(term.repeats)
            partial = total[rows]
        else:
            partial = partial + term.at(rows) * np.float32(term.repeats)
            total[rows] = partial
        kth = max(kth, _kth(partial, k))
    return _exact_top(query, tokens, rows, partial, k)


def _exact_top(query: _Query, tokens: list[str], rows: np.ndarray, approximate: np.ndarray,
               k: int) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` of ``rows`` by their scores summed exactly as bm25s sums them, found
    among those whose ``approximate`` score (summed in another order) comes near the k-th best."""
    if len(rows) > k:
        near = approximate >= _kth(approximate, k) * (1 - _MARGIN)
        rows = rows[near]
    rows = np.sort(rows)
    if len(rows) > _LOOKUPS and all(term.full for term in query.terms):
        total = np.zeros(int(rows[-1]) + 1, np.float32)
        for token in tokens:  # in the query's order, repeats included: bm25s sums float32 scores so
            if token in query.by_name:
                held, scores = query.by_name[token].exact()
                inside = held <= rows[-1]
                total[held[inside]] += scores[inside]  # a term's rows are distinct: no update collides
        return _best_of(rows, total[rows], k)
    exact = np.zeros(len(rows), np.float32)
    for token in tokens:
        if token in query.by_name:
            exact += query.by_name[token].at(rows)
    return _best_of(rows, exact, k)


def _kth(scores: np.ndarray, k: int) -> float:
    """The k-th highest of ``scores``; 0 when there are fewer."""
    return float(np.partition(scores, len(scores) - k)[len(scores) - k]) if len(scores) >= k else 0.0


def _bound(terms: list[_Term]) -> float:
    """The most ``terms`` can add to one chunk's score."""
    return sum(term.weight for term in terms) * (1 + _MARGIN)


_LOOKUPS = 1 << 14  # chunks scored by binary searches at most; more are scored by one pass over the terms


_MARGIN = 1e-4  # float32 sums in another order differ in the last bits: a chunk that close is kept


class _Term:
    """One query term: where each part holds it, its live document frequency, idf and weight."""

    def __init__(self, query: _Query, places: list[tuple[int, int]], repeats: int):
        self.query, self.places, self.repeats = query, places, repeats  # places: (part number, term number)
        self.entries = 0
        for p, t in places:
            part, first, last = query.parts[p], int(query.parts[p].ptr[1, t]), int(query.parts[p].ptr[1, t + 1])
            self.entries += last - first - _removed_in(part.rows[first:last], query.removed[p], query.stats.dead[p])
        stats = query.stats
        # math.log, rounded to float32, as bm25s computes idf (numpy's log may differ in the last bit).
        self.idf = float(np.float32(math.log(1 + (stats.live - self.entries + 0.5) / (self.entries + 0.5))))
        self.weight = self.idf * repeats  # a chunk's score from this term is below idf (tf part < 1)
        self._scored: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def full(self) -> bool:
        """Whether every chunk's score for this term has been computed."""
        return self._scored is not None

    def scored(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, float32 scores computed in float32) of every live chunk holding the term, rows ascending:
        within _MARGIN of the exact ones, and cheaper (they only choose which chunks are scored exactly)."""
        if self._scored is None:
            rows, values = [], []
            for p, (part_rows, counts) in self._entries():
                tf = counts.astype(np.float32)
                values.append(np.float32(self.idf) * tf / (self.query.stats.norms[p][part_rows] + tf))
                rows.append(part_rows + self.query.bases[p] if self.query.bases[p] else part_rows)
            self._scored = (rows[0], values[0]) if len(rows) == 1 else (np.concatenate(rows), np.concatenate(values))
        return self._scored

    def exact(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, exact scores) of every live chunk holding the term, rows ascending."""
        rows, values = [], []
        for p, (part_rows, counts) in self._entries():
            values.append(self._exact(counts, self.query.stats.lengths[p][part_rows]))
            rows.append(part_rows + self.query.bases[p] if self.query.bases[p] else part_rows)
        return np.concatenate(rows), np.concatenate(values)

    def _entries(self):
        """(part number, (rows, counts)) of the term's live entries in each part holding it."""
        for p, t in self.places:
            part_rows, counts = self.query.parts[p].entries(t)
            dead = self.query.stats.dead[p]
            if dead is not None:
                live = ~dead[part_rows]
                part_rows, counts = part_rows[live], counts[live]
            yield p, (part_rows, counts)

    def at(self, rows: np.ndarray) -> np.ndarray:
        """The term's exact score in each of ``rows`` (live), 0 where it does not occur: a binary search
        per row in the parts' entries."""
        out = np.zeros(len(rows), np.float32)
        for p, t in self.places:
            part, base = self.query.parts[p], self.query.bases[p]
            inside = np.flatnonzero((rows >= base) & (rows < base + part.size))
            first, last = int(part.ptr[1, t]), int(part.ptr[1, t + 1])
            local = rows[inside] - base
            at = np.minimum(np.searchsorted(part.rows[first:last], local), last - first - 1)
            hit = np.asarray(part.rows[first:last][at]) == local
            counts = np.asarray(part.counts[first:last][at[hit]])
            out[inside[hit]] = self._exact(counts, self.query.stats.lengths[p][local[hit]])
        return out

    def _exact(self, counts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """BM25's term part in float64 times the float32 idf, rounded to float32 (as bm25s stores scores)."""
        stats = self.query.stats
        tf = counts.astype(np.float64)
        return (self.idf * (tf / (_norm(lengths, stats.average, stats.k1, stats.b) + tf))).astype(np.float32)


def _norm(lengths: np.ndarray, average: float, k1: float, b: float) -> np.ndarray:
    """BM25's length norm, with the float64 operations bm25s does in the order it does them."""
    return k1 * ((1 - b) + b * lengths.astype(np.float64) / average)


class _Query:
    """A query's terms found in the parts (a term no live chunk holds is left out)."""

    def __init__(self, parts: list[Part], bases: list[int], removed: list[np.ndarray], tokens: list[str],
                 stats: Stats):
        self.parts, self.bases, self.removed, self.stats = parts, bases, removed, stats
        distinct = list(dict.fromkeys(tokens))
        found = [part.find(distinct) for part in parts]
        self.terms, self.by_name = [], {}
        for i, name in enumerate(distinct):
            places = [(p, int(at[i])) for p, at in enumerate(found) if at[i] >= 0]
            term = _Term(self, places, tokens.count(name)) if places else None
            if term is not None and term.entries:
                self.terms.append(term)
                self.by_name[name] = term


def _removed_in(rows: np.ndarray, removed: np.ndarray, dead: np.ndarray | None) -> int:
    """How many of ``rows`` (ascending) are removed: a binary search per removed row when they are few."""
    if not len(removed) or not len(rows):
        return 0
    if len(removed) * 16 < len(rows):
        at = np.minimum(np.searchsorted(rows, removed), len(rows) - 1)
        return int(np.count_nonzero(np.asarray(rows[at]) == removed))
    assert dead is not None  # Stats.of leaves it None only for a part with no removed rows
    return int(np.count_nonzero(dead[np.asarray(rows)]))


def _best_of(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` of ``rows`` (ascending) with the highest positive ``scores``, best first, the lower row
    first among equal scores."""
    positive = scores > 0
    rows, scores = rows[positive], scores[positive]
    if len(rows) > k:
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        keep = scores > kth
        keep[np.flatnonzero(scores == kth)[:k - int(keep.sum())]] = True  # the lowest rows among the tied
        rows, scores = rows[keep], scores[keep]
    order = np.lexsort((rows, -scores))
    return rows[order], scores[order]
