"""Retrieval quality on a BEIR-format dataset (e.g. SciFact), through the product's own ingestion,
chunking, index and fusion: nDCG@10, Recall@100 and MRR@10 for dense only, BM25 only and the shipped
hybrid configuration, plus ingestion time and query latency.

Each corpus document is written as a small HTML file (title in <title>, abstract in the body) and ingested
with ``rag.ingest``, exactly as a user's files would be. Documents longer than the model window are
chunked; in each retriever's list a document scores as its best chunk. The index is kept in ``--index``
so later runs (another split, other settings that do not change chunking) reuse it.

``--precision fp32,int8`` builds one index per encoder precision in the same run, reports each one's
metrics and ingest time, and the cosine between the two vectors of every chunk (mean and minimum).

Usage: ``python bench/beir.py ../shared/benchmarks/scifact [--split test|train] [--index bench/out/scifact]
[--precision fp32,int8]``
"""
from __future__ import annotations

import argparse
import gzip
import html
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.config import Settings
from rag.embedding import embedder_for
from rag.index import Index
from rag.ingest import ingest
from rag.retrieval import RETRIEVERS, Retriever

# BM25 only is both keyword indexes (the chunk, and the chunk with its neighbours) fused as the product does.
MODES = {"dense": ("dense",), "bm25": ("bm25", "bm25_context"), "hybrid": tuple(RETRIEVERS)}


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query id -> {doc id: relevance}, from a BEIR qrels TSV (header line skipped)."""
    qrels: dict[str, dict[str, int]] = {}
    for line in path.read_text().splitlines()[1:]:
        query_id, doc_id, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(query_id, {})[doc_id] = int(score)
    return qrels


def dataset_files(folder: Path, split: str) -> tuple[Path, Path, Path]:
    corpus = folder / "corpus.jsonl.gz" if (folder / "corpus.jsonl.gz").exists() else folder / "corpus.jsonl"
    queries = folder / ("queries.jsonl" if split == "test" else f"queries-{split}.jsonl")
    return corpus, queries, folder / "qrels" / f"{split}.tsv"


def write_corpus_files(corpus: list[dict], folder: Path) -> None:
    """One HTML file per document: its title becomes the document title, its text the body."""
    folder.mkdir(parents=True, exist_ok=True)
    for row in corpus:
        title, text = html.escape(row.get("title") or ""), html.escape(row.get("text") or "")
        page = f"<html><head><title>{title}</title></head><body><p>{text or title}</p></body></html>"
        (folder / f"{row['_id']}.html").write_text(page, encoding="utf-8")


def ndcg_at_k(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    """Normalised DCG with gains 2^rel - 1 and log2(rank + 1) discounts (as pytrec_eval / BEIR)."""
    dcg = sum((2 ** relevant.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum((2 ** r - 1) / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: list[str], relevant: dict[str, int], k: int = 100) -> float:
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def mrr_at_k(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    return next((1.0 / (i + 1) for i, d in enumerate(ranked[:k]) if d in relevant), 0.0)


def evaluate(runs: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Mean metrics over the judged queries (a query with no run counts as zero)."""
    scored = [(runs.get(q, []), rel) for q, rel in qrels.items()]
    return {
        "ndcg@10": statistics.fmean(ndcg_at_k(r, rel) for r, rel in scored),
        "recall@100": statistics.fmean(recall_at_k(r, rel) for r, rel in scored),
        "mrr@10": statistics.fmean(mrr_at_k(r, rel) for r, rel in scored),
    }


def build_index(corpus_rows: list[dict], work: Path, settings: Settings) -> float:
    """Ingest the corpus (skipped when the index already holds it); returns seconds spent."""
    files, index_dir = work / "files", index_folder(work, settings)
    started = time.perf_counter()
    write_corpus_files(corpus_rows, files)
    report, _ = ingest([files], index_dir, settings.model_copy(update={"index": index_dir}), progress=True)
    seconds = time.perf_counter() - started
    print(f"ingest: {report.chunks_embedded} chunks embedded ({report.tokens_embedded} tokens), "
          f"{len(report.unchanged)} unchanged, {report.chunks} chunks in all, {seconds:.0f} s", file=sys.stderr)
    return seconds


def run_queries(index: Index, settings: Settings, queries: dict[str, str], qrels: dict, depth: int) -> dict:
    """Per mode: metrics and latency; BEIR ids come from the file names the documents were ingested from."""
    beir_ids = {doc_id: [Path(p).stem for p in doc.paths] for doc_id, doc in index.documents.items()}
    retriever = Retriever(index, embedder_for(settings), settings)
    results = {}
    for mode, use in MODES.items():
        runs, latencies = {}, []
        for query_id in qrels:
            started = time.perf_counter()
            ranked = retriever.rank_documents(queries[query_id], k=100, depth=depth, use=use)
            latencies.append((time.perf_counter() - started) * 1000)
            # Identical texts are stored once; every file that holds one counts as retrieved.
            runs[query_id] = [b for doc_id, _ in ranked for b in beir_ids[doc_id] if b != query_id]
        results[mode] = {**evaluate(runs, qrels), "latency_p50_ms": statistics.median(latencies)}
    return results


def sample_corpus(corpus: list[dict], qrels: dict, size: int) -> list[dict]:
    """Every judged document, then the others in file order, up to ``size`` documents."""
    judged = {doc_id for rel in qrels.values() for doc_id in rel}
    others = [row for row in corpus if row["_id"] not in judged][: max(0, size - len(judged))]
    return [row for row in corpus if row["_id"] in judged] + others


def index_folder(work: Path, settings: Settings) -> Path:
    return work / f"index-{settings.embed_precision}"


def vector_agreement(first: Index, second: Index) -> dict:
    """Cosine between the two indexes' vectors of each chunk they share (same chunking, other encoder)."""
    where = {c.chunk_id: i for i, c in enumerate(second.chunks)}
    pairs = [(i, where[c.chunk_id]) for i, c in enumerate(first.chunks) if c.chunk_id in where]
    cosines = []
    for begin in range(0, len(pairs), 4096):
        part = pairs[begin:begin + 4096]
        a, b = first.chunk_vectors([i for i, _ in part]), second.chunk_vectors([j for _, j in part])
        cosines.extend((a * b).sum(1).tolist())
    return {"chunks": len(cosines), "cosine_mean": statistics.fmean(cosines), "cosine_min": min(cosines)}


def evaluate_precision(args, settings: Settings, corpus, queries, qrels) -> tuple[dict, Index]:
    ingest_s = build_index(corpus, args.index, settings)
    index = Index.load(index_folder(args.index, settings), settings)
    results = {"dataset": args.dataset.name, "split": args.split, "queries": len(qrels),
               "precision": settings.embed_precision, "documents": len(corpus), "chunks": len(index.chunks),
               "ingest_seconds": round(ingest_s, 1), "modes": run_queries(index, settings, queries, qrels, args.depth)}
    return results, index


def print_results(results: dict) -> None:
    print(f"{results['dataset']} {results['split']} ({results['precision']}): {results['queries']} queries, "
          f"{results['documents']} documents, {results['chunks']} chunks; ingest {results['ingest_seconds']:.0f} s")
    print(f"{'mode':<8} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7} {'p50 ms':>7}")
    for mode, m in results["modes"].items():
        print(f"{mode:<8} {m['ndcg@10']:8.4f} {m['recall@100']:7.4f} {m['mrr@10']:7.4f} {m['latency_p50_ms']:7.1f}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="BEIR dataset folder (corpus, queries, qrels/)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--index", type=Path, default=Path("bench/out/scifact"), help="work folder, reused")
    parser.add_argument("--depth", type=int, default=None,
                        help="chunk candidates per retriever (default RAG_CANDIDATES)")
    parser.add_argument("--precision", default=None,
                        help="encoder precisions to compare, e.g. fp32,int8 (default: RAG_EMBED_PRECISION)")
    parser.add_argument("--max-docs", type=int, default=None,
                        help="keep every judged document plus the first others up to this many (a quicker run)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = Settings()
    corpus_path, queries_path, qrels_path = dataset_files(args.dataset, args.split)
    corpus = read_jsonl(corpus_path)
    queries = {row["_id"]: row["text"] for row in read_jsonl(queries_path)}
    qrels = {q: rel for q, rel in read_qrels(qrels_path).items() if q in queries}
    if args.max_docs:
        corpus = sample_corpus(corpus, qrels, args.max_docs)
    precisions = args.precision.split(",") if args.precision else [settings.embed_precision]
    runs = [evaluate_precision(args, settings.model_copy(update={"embed_precision": p}), corpus, queries, qrels)
            for p in precisions]
    results = runs[0][0] if len(runs) == 1 else {"runs": [r for r, _ in runs]}
    if len(runs) == 2:
        results["agreement"] = vector_agreement(runs[0][1], runs[1][1])
        results["ndcg@10_difference"] = {
            mode: runs[1][0]["modes"][mode]["ndcg@10"] - runs[0][0]["modes"][mode]["ndcg@10"] for mode in MODES}
    if args.json:
        print(json.dumps(results, indent=2))
        return results
    for one, _ in runs:
        print_results(one)
    if len(runs) == 2:
        a = results["agreement"]
        print(f"{precisions[1]} vs {precisions[0]}: cosine of a chunk's two vectors mean {a['cosine_mean']:.4f}, "
              f"min {a['cosine_min']:.4f} over {a['chunks']} chunks; nDCG@10 difference "
              + ", ".join(f"{m} {d:+.4f}" for m, d in results["ndcg@10_difference"].items()))
    return results


if __name__ == "__main__":
    main()
