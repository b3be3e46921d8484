"""Keyword search kept in the vector store: both keyword indexes as full-text fields of the store's rows, so
every process opening the index shares them through the store (a Milvus server) instead of local files.

The store never analyzes text itself: each row carries the terms the product's own tokenizer finds (stemmed,
stop words dropped, CJK bigrams: rag/keyword_terms.py), space-separated, and a query is sent as its terms
the same way, so the store's BM25 sees exactly the terms the local keyword index would (on SciFact 0.685
nDCG@10 against the local index's 0.686, bench/milvus_bm25.py).

Example: ``StoreKeyword(index, CHUNK_TERMS).search("gallium exports", 10)`` -> (positions, scores)
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, cast

import numpy as np

from ..keyword import CONTEXT_B, CONTEXT_K1, chunk_texts, context_texts
from ..keyword_terms import _TermTable, tokenize
from ..terms import TOKEN_PATTERN, segment

if TYPE_CHECKING:
    from ..chunking import Chunk
    from ..documents import Document
    from ..index import Index

CHUNK_TERMS, CONTEXT_TERMS = "chunk_terms", "context_terms"
# Each field's BM25 parameters (k1, b), as the local chunk and context indexes use them (rag/keyword.py).
FIELDS = {CHUNK_TERMS: (1.5, 0.75), CONTEXT_TERMS: (CONTEXT_K1, CONTEXT_B)}
MAX_TERMS_BYTES = 65535  # the longest text a field holds (Milvus's VARCHAR limit)


def row_terms(doc: Document, chunks: Sequence[Chunk]) -> list[dict[str, str]]:
    """Per chunk of ``doc``, the terms of each field: what the chunk index and the context index see.

    Example: ``row_terms(doc, chunks)[0] == {"chunk_terms": "gallium export ...", "context_terms": "..."}``
    """
    titles, texts = {doc.doc_id: doc.title}, {doc.doc_id: doc.text}
    chunk, context = analyzed(chunk_texts(chunks, titles)), analyzed(context_texts(chunks, titles, texts))
    return [{CHUNK_TERMS: a, CONTEXT_TERMS: b} for a, b in zip(chunk, context)]


def analyzed(texts: list[str]) -> list[str]:
    """Each text's keyword terms, space-separated, as the local keyword index counts them (each distinct
    word stemmed once). Example: ``analyzed(["The gallium exports"]) == ["gallium export"]``"""
    table, split, found = _TermTable(), re.compile(TOKEN_PATTERN).findall, []
    for text in texts:
        ids = table.ids(split(segment(text).lower()))
        found.append(clipped(" ".join(table.terms[i] for i in ids.tolist() if i >= 0)))
    return found


def query_terms(query: str) -> str:
    """A question's terms, space-separated, as the local keyword index reads a query ("" for none)."""
    return " ".join(tokenize([segment(query)], return_ids=False)[0])


def clipped(terms: str) -> str:
    """``terms`` cut at a term boundary to fit a field (a window of ~10,000 terms: never in practice)."""
    data = terms.encode("utf-8")
    if len(data) <= MAX_TERMS_BYTES:
        return terms
    return data[:MAX_TERMS_BYTES].decode("utf-8", "ignore").rpartition(" ")[0]


def bm25(rows: list[str], query: str, k1: float, b: float) -> np.ndarray:
    """BM25 (Lucene's, as the local index and Milvus score) of each space-separated row for ``query``'s
    terms; for a store's rows held in memory before it is saved. Example: ``bm25(["a b", "c"], "a", 1.5, 0.75)``"""
    counts = [Counter(row.split()) for row in rows]
    lengths = np.array([sum(c.values()) for c in counts], np.float64)
    average = float(lengths.mean()) if len(rows) and lengths.mean() else 1.0
    norm = k1 * (1 - b + b * lengths / average)
    scores = np.zeros(len(rows), np.float64)
    for term in query.split():
        tf = np.array([c.get(term, 0) for c in counts], np.float64)
        df = int(np.count_nonzero(tf))
        if df:
            scores += math.log(1 + (len(rows) - df + 0.5) / (df + 0.5)) * tf / (tf + norm)
    return scores.astype(np.float32)


class KeywordStore(Protocol):
    """A vector store that keeps the keyword fields (``keyword_fields`` not empty): rag/stores/milvus.py."""

    keyword_fields: tuple[str, ...]

    def keyword_search(self, field: str, terms: str, k: int) -> tuple[np.ndarray, np.ndarray]: ...


class StoreKeyword:
    """One of an index's keyword indexes searched in its store: the local ``KeywordIndex``'s ``search``
    contract (chunk positions in docstore order, scores, best first), nothing kept in the index folder."""

    incremental = True

    def __init__(self, index: Index, field: str):
        self._index, self.field = index, field
        self.k1, self.b = FIELDS[field]

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk positions, scores) of the top-k chunks sharing a term with the query, best first."""
        terms = query_terms(query)
        if k <= 0 or not terms:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores, vids = cast(KeywordStore, self._index.store).keyword_search(self.field, terms, k)
        positions = self._index.positions_of_vids(vids)
        found = positions >= 0  # a row the docstore does not list is never an answer
        return positions[found], scores[found]

    def structure_problem(self, size: int) -> str | None:
        """None: the store checks its own rows (its ids against the chunks are checked with the vectors)."""
        return None

    def compact(self) -> StoreKeyword:
        return self
