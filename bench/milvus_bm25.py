"""Keyword search quality: the product's BM25 (bm25s, English stemming and stop words) against Milvus's
BM25 full-text search (a VARCHAR field with an analyzer, a BM25 function, a sparse inverted index) on a
BEIR-format dataset, one document per entry (title and abstract), nDCG@10 and query time.

Milvus Lite's analyzers have no stemmer (only a tokenizer and a stop-word filter), so Milvus runs twice: on
the raw text with the product's stop words (what its analyzer can do), and on text the product's own
tokenizer has already stemmed and stripped of stop words, joined by spaces (``milvus_preanalyzed``).

Usage: ``python bench/milvus_bm25.py ../shared/benchmarks/scifact [--split test|train] [--uri bench/out/bm25.db]``
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from beir import dataset_files, ndcg_at_k, read_jsonl, read_qrels

from rag.keyword import KeywordIndex, tokenize
from rag.terms import _stopwords, segment

COLLECTION = "bm25_bench"


def product_bm25(texts: list[str], queries: dict[str, str]) -> tuple[dict[str, list[int]], float]:
    """Top-10 positions per query with the product's keyword index, and the seconds the queries took."""
    index = KeywordIndex.build(texts)
    started = time.perf_counter()
    runs = {q: index.search(text, 10)[0].tolist() for q, text in queries.items()}
    return runs, time.perf_counter() - started


def analyzed(texts: list[str]) -> list[str]:
    """Each text as the product's keyword index sees it: stemmed terms without stop words, space-separated."""
    return [" ".join(terms) for terms in tokenize([segment(t) for t in texts], return_ids=False)]


def milvus_bm25(texts: list[str], queries: dict[str, str], uri: str) -> tuple[dict[str, list[int]], float]:
    """The same with Milvus full-text search: lowercase, the product's stop words, k1 1.5, b 0.75."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    client = MilvusClient(uri)
    if client.has_collection(COLLECTION):
        client.drop_collection(COLLECTION)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("pos", DataType.INT64, is_primary=True)
    analyzer = {"tokenizer": "standard", "filter": ["lowercase", {"type": "stop", "stop_words": sorted(_stopwords())}]}
    schema.add_field("text", DataType.VARCHAR, max_length=65535, enable_analyzer=True, analyzer_params=analyzer)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                 output_field_names=["sparse"]))
    index = client.prepare_index_params()
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                    params={"bm25_k1": 1.5, "bm25_b": 0.75})
    client.create_collection(COLLECTION, schema=schema)
    client.create_index(COLLECTION, index, sync=False)
    client.load_collection(COLLECTION)
    for start in range(0, len(texts), 1000):
        rows = range(start, min(start + 1000, len(texts)))
        client.insert(COLLECTION, [{"pos": i, "text": texts[i][:20000]} for i in rows])
    client.flush(COLLECTION)
    started, names, runs = time.perf_counter(), list(queries), {}
    for start in range(0, len(names), 50):
        block = names[start:start + 50]
        results = client.search(COLLECTION, data=[queries[q] for q in block], anns_field="sparse", limit=10,
                                search_params={"metric_type": "BM25"})
        runs.update({q: [hit.get("id", hit.get("pos")) for hit in hits] for q, hits in zip(block, results)})
    return runs, time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--uri", default="bench/out/bm25.db", help="a Milvus Lite file or a server URI")
    args = parser.parse_args(argv)
    corpus_path, queries_path, qrels_path = dataset_files(args.dataset, args.split)
    corpus = read_jsonl(corpus_path)
    qrels = read_qrels(qrels_path)
    queries = {q["_id"]: q["text"] for q in read_jsonl(queries_path) if q["_id"] in qrels}
    texts, ids = [f"{d.get('title', '')}\n{d['text']}" for d in corpus], [d["_id"] for d in corpus]
    if "://" not in args.uri:
        Path(args.uri).parent.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, run in (("bm25s", lambda: product_bm25(texts, queries)),
                      ("milvus", lambda: milvus_bm25(texts, queries, args.uri)),
                      ("milvus_preanalyzed", lambda: milvus_bm25(
                          analyzed(texts), dict(zip(queries, analyzed(list(queries.values())))), args.uri))):
        runs, seconds = run()
        results[name] = {"ndcg@10": round(statistics.mean(ndcg_at_k([ids[p] for p in runs[q]], qrels[q])
                                                           for q in queries), 4),
                         "ms_per_query": round(1000 * seconds / len(queries), 2)}
        print(name, results[name], flush=True)
    return results


if __name__ == "__main__":
    main()
