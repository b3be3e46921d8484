"""Both keyword indexes as Milvus BM25 full-text fields: per field a VARCHAR of the product's terms
(rag/stores/fulltext.py), a BM25 function into a sparse vector and a sparse inverted index with the field's
k1 and b. Milvus keeps the term statistics and scores at query time, so every replica shares them.

Example: ``add_keyword_fields(schema, index_params)`` before ``create_collection``
"""
from __future__ import annotations

import numpy as np

from .fulltext import FIELDS, MAX_TERMS_BYTES, bm25

# Milvus Lite's analyzers are "standard" and "jieba" (no whitespace one). Standard splits only where a term
# never holds a character (terms are \w runs or CJK characters and bigrams, and it keeps both whole), and it
# splits rows and queries alike, so it sees the terms as given.
_ANALYZER = {"tokenizer": "standard"}


def sparse_field(field: str) -> str:
    """The sparse vector field Milvus's BM25 function fills from ``field``."""
    return f"{field}_bm25"


def add_keyword_fields(schema, index) -> None:
    """Add each keyword field, its BM25 function and its index to a collection's ``schema`` and ``index``
    parameters (pymilvus objects)."""
    from pymilvus import DataType, Function, FunctionType

    for field, (k1, b) in FIELDS.items():
        schema.add_field(field, DataType.VARCHAR, max_length=MAX_TERMS_BYTES, enable_analyzer=True,
                         analyzer_params=_ANALYZER)
        schema.add_field(sparse_field(field), DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name=f"{field}_fn", function_type=FunctionType.BM25,
                                     input_field_names=[field], output_field_names=[sparse_field(field)]))
        index.add_index(sparse_field(field), index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                        params={"bm25_k1": k1, "bm25_b": b})


def has_keyword_fields(description: dict) -> bool:
    """Whether a collection (``describe_collection``'s answer) has every keyword field (one made before
    they existed has none: its index keeps local keyword files)."""
    names = {field["name"] for field in description.get("fields", [])}
    return all(field in names and sparse_field(field) in names for field in FIELDS)


def search_field(milvus, collection: str, field: str, terms: str, k: int,
                 visible: str) -> tuple[np.ndarray, np.ndarray]:
    """(scores, vector ids) of the top-k rows matching ``visible`` for ``terms`` in ``field``, best first.

    Milvus scores Lucene's BM25 times (k1 + 1), and Milvus Lite reports it negated; scores come back as the
    local keyword index gives them, so fused rankings weigh them alike."""
    k1, _ = FIELDS[field]
    hits = milvus.search(collection, data=[terms], anns_field=sparse_field(field), limit=max(1, min(k, 16384)),
                         filter=visible, output_fields=["vid"], search_params={"metric_type": "BM25"})[0]
    scores = np.array([abs(hit["distance"]) / (k1 + 1) for hit in hits], np.float32)
    return scores, np.array([hit["entity"]["vid"] for hit in hits], np.int64)


def search_staged(rows: list[str], vids: list[int], field: str, terms: str,
                  k: int) -> tuple[np.ndarray, np.ndarray]:
    """The same over rows held in memory (a store not yet saved); rows without a query term are no hit."""
    k1, b = FIELDS[field]
    scores = bm25(rows, terms, k1, b)
    order = [i for i in np.argsort(-scores, kind="stable")[:max(0, k)] if scores[i] > 0]
    return scores[order], np.array(vids, np.int64)[order] if order else np.zeros(0, np.int64)
