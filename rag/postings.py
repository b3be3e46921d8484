"""Term counts behind a BM25 keyword index, so the index grows and shrinks without tokenizing what it holds.

BM25 (the Lucene variant bm25s scores with) is a function of each term's count in each chunk, each chunk's
length in terms, the number of chunks and each term's document frequency. ``Postings`` keeps the first two
(a terms x chunks matrix in CSC form: per term, its chunks ascending with their counts). A keyword index is
a list of them (rag/keyword_parts.py); ``stacked`` merges several into one in a pass over their entries,
and ``scores`` is the reference BM25 of one whole corpus (what ``bm25s.BM25.index`` computes).

Example: ``Postings.stacked([postings_of(texts), postings_of(new_texts)]).scores(1.5, 0.75)`` (rag/keyword.py)
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_BLOCK = 1 << 20  # entries scored at a time


@dataclass(frozen=True)
class Postings:
    """``terms[t]``'s entries are ``chunks[indptr[t]:indptr[t + 1]]`` (ascending) with ``counts`` alongside;
    ``lengths[i]`` is chunk i's length in terms (stop words left out, as bm25s counts it)."""

    terms: list[str]
    indptr: np.ndarray  # int64, len(terms) + 1
    chunks: np.ndarray  # int32, one per entry
    counts: np.ndarray  # uint16, or int32 when a count does not fit; one per entry
    lengths: np.ndarray  # int32, one per chunk

    @classmethod
    def empty(cls, size: int = 0) -> Postings:
        """``size`` chunks without a term. Example: ``Postings.empty(3).size == 3``"""
        return cls([], np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32),
                   np.zeros(size, np.int32))

    @classmethod
    def of_matrix(cls, terms: list[str], indptr: np.ndarray, chunks: np.ndarray, counts: np.ndarray,
                  lengths: np.ndarray) -> Postings:
        """From a terms x chunks count matrix in CSC form (each term's chunks ascending; terms sorted), its
        empty terms dropped. Example: ``Postings.of_matrix(["a"], [0, 1], [0], [2], [2]).size == 1``"""
        counts = np.asarray(counts)
        return cls(list(terms), np.asarray(indptr, np.int64), np.asarray(chunks, np.int32),
                   counts.astype(_count_type(counts)), np.asarray(lengths, np.int32))._without_unused_terms()

    @classmethod
    def from_keys(cls, keys: np.ndarray, counts: np.ndarray, lengths: np.ndarray, terms: list[str]) -> Postings:
        """From one key per (term id, chunk) pair present, ``term id * len(lengths) + chunk``, each with its
        count. Example: ``Postings.from_keys(np.array([0, 3]), np.array([2, 1]), np.array([2, 1]), ["a", "b"])``"""
        order = np.argsort(keys, kind="stable")  # sorted keys are the CSC order: by term, then chunk
        term_ids, chunks = np.divmod(keys[order], max(len(lengths), 1))
        indptr = np.concatenate([[0], np.cumsum(np.bincount(term_ids, minlength=len(terms)))])
        counts = np.asarray(counts)[order]
        return cls(list(terms), indptr, chunks.astype(np.int32), counts.astype(_count_type(counts)),
                   np.asarray(lengths, np.int32))._without_unused_terms()

    @property
    def size(self) -> int:
        return len(self.lengths)

    @classmethod
    def stacked(cls, pieces: Sequence[Postings], keeps: Sequence[np.ndarray | None] | None = None) -> Postings:
        """``pieces``' chunks one after another (renumbered), less those whose ``keeps`` entry is False, under
        the union of their terms in sorted order. A term's entries from each piece are already ascending and
        each piece's chunks follow the previous piece's: every entry's place is computed, nothing is sorted.

        Example: ``Postings.stacked([postings_of(["b a"]), postings_of(["a"])]).terms == ["a", "b"]``"""
        keeps = list(keeps) if keeps is not None else [None] * len(pieces)
        terms = sorted(set().union(*(p.terms for p in pieces)))
        column = {term: t for t, term in enumerate(terms)}
        columns = [np.fromiter(map(column.__getitem__, p.terms), np.int64, len(p.terms)) for p in pieces]
        df = np.zeros(len(terms), np.int64)
        for piece, col, keep in zip(pieces, columns, keeps):
            df[col] += piece._live_df(keep)
        indptr = np.concatenate([[0], np.cumsum(df)])
        rows = np.empty(int(indptr[-1]), np.int32)
        counts: np.ndarray = np.empty(int(indptr[-1]), _count_type(*(p.counts for p in pieces)))
        free, base = indptr[:-1].copy(), 0  # free: the next empty place of each term
        parts: list[np.ndarray] = []  # each piece's kept chunk lengths
        for piece, col, keep in zip(pieces, columns, keeps):
            number = None if keep is None else (np.cumsum(keep) - 1 + base)
            for t0, t1 in piece._term_blocks():
                term, chunk, count = piece._entries(t0, t1, keep)
                chunk = chunk + base if number is None else number[chunk]
                sizes = np.bincount(term - t0, minlength=t1 - t0)
                first = np.concatenate([[0], np.cumsum(sizes)[:-1]])  # each term's first entry in the block
                place = free[col[term]] + (np.arange(len(term)) - first[term - t0])
                rows[place], counts[place] = chunk, count
                free[col[t0:t1]] += sizes
            parts.append(piece.lengths if keep is None else piece.lengths[keep])
            base += piece.size if keep is None else int(keep.sum())
        lengths = np.concatenate(parts).astype(np.int32) if parts else np.zeros(0, np.int32)
        return cls(terms, indptr, rows, counts, lengths)._without_unused_terms()

    def _live_df(self, keep: np.ndarray | None) -> np.ndarray:
        """Each term's number of entries in kept chunks."""
        if keep is None:
            return np.diff(self.indptr)
        df = np.zeros(len(self.terms), np.int64)
        for t0, t1 in self._term_blocks():
            term, _, _ = self._entries(t0, t1, keep)
            df[t0:t1] = np.bincount(term - t0, minlength=t1 - t0)
        return df

    def _term_blocks(self):
        """Ranges of terms holding about ``_BLOCK`` entries each: the temporaries stay small."""
        t0, indptr = 0, np.asarray(self.indptr)
        while t0 < len(self.terms):
            t1 = max(t0 + 1, int(np.searchsorted(indptr, indptr[t0] + _BLOCK, "right")) - 1)
            yield t0, min(t1, len(self.terms))
            t0 = t1

    def _entries(self, t0: int, t1: int, keep: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(term, chunk, count) of each entry of terms t0..t1-1 in a kept chunk."""
        e0, e1 = int(self.indptr[t0]), int(self.indptr[t1])
        term = np.repeat(np.arange(t0, t1), np.diff(np.asarray(self.indptr[t0:t1 + 1])))
        chunk, count = np.asarray(self.chunks[e0:e1]), np.asarray(self.counts[e0:e1])
        if keep is None:
            return term, chunk, count
        live = keep[chunk]
        return term[live], chunk[live], count[live]

    def scores(self, k1: float, b: float) -> np.ndarray:
        """The BM25 score of each entry, float32, computed as bm25s computes it (Lucene idf and term part)."""
        df = np.diff(self.indptr)
        n = self.size
        # math.log per term, as bm25s computes it: numpy's log may differ in the last bit.
        idf = np.array([math.log(1 + (n - d + 0.5) / (d + 0.5)) for d in df.tolist()], np.float32)
        average = self.lengths.mean() if n else 1.0
        scores = np.empty(len(self.chunks), np.float32)
        for first in range(0, len(scores), _BLOCK):  # in blocks: the temporaries stay small
            part = slice(first, first + _BLOCK)
            term = np.searchsorted(self.indptr, np.arange(first, min(first + _BLOCK, len(scores))), "right") - 1
            tf, length = self.counts[part].astype(np.float64), self.lengths[self.chunks[part]].astype(np.float64)
            scores[part] = idf[term].astype(np.float64) * (tf / (k1 * ((1 - b) + b * length / average) + tf))
        return scores

    def _without_unused_terms(self) -> Postings:
        df = np.diff(self.indptr)
        if df.all():
            return self
        used = np.flatnonzero(df)
        return Postings([self.terms[t] for t in used], np.concatenate([[0], np.cumsum(df[used])]),
                        self.chunks, self.counts, self.lengths)


def _count_type(*counts: np.ndarray) -> type:
    """uint16 when every count fits (half the memory of int32; a term rarely occurs 65,536 times in a chunk)."""
    return np.uint16 if all(c.max(initial=0) < 1 << 16 for c in counts) else np.int32
