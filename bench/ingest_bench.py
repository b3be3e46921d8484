"""Ingestion throughput: the full pipeline versus bare SentenceTransformer.encode on the same chunks.

Writes a corpus of plain-text files (abstracts from the BEIR SciFact corpus when it is available beside
the project, otherwise generated sentences), ingests it with ``rag.ingest`` into a fresh index, then
encodes exactly the chunk texts the pipeline embedded with a bare ``SentenceTransformer.encode`` call,
in the same process. Prints embedded tokens per second for both and the pipeline's overhead.

Usage: ``python bench/ingest_bench.py [--mb 2.0] [--scifact ../shared/benchmarks/scifact/corpus.jsonl.gz]``
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.config import Settings  # noqa: E402
from rag.embedding import get_embedder, resolve_model_path  # noqa: E402
from rag.index import Index  # noqa: E402
from rag.ingest import ingest, title_prefix  # noqa: E402

DEFAULT_SCIFACT = Path(__file__).resolve().parent.parent.parent / "shared/benchmarks/scifact/corpus.jsonl.gz"


def write_corpus(folder: Path, megabytes: float, scifact: Path) -> int:
    """Write text files totalling about ``megabytes``; returns the byte count."""
    budget, written = int(megabytes * 1_000_000), 0
    for i, (title, body) in enumerate(_texts(scifact)):
        if written >= budget:
            break
        text = f"{title}\n\n{body}\n"
        (folder / f"doc{i:05d}.txt").write_text(text, encoding="utf-8")
        written += len(text.encode())
    return written


def _texts(scifact: Path):
    if scifact.is_file():
        with gzip.open(scifact, "rt", encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                yield row.get("title") or "Untitled", row["text"]
    rng = random.Random(0)
    words = "export control dialogue gallium germanium graphite semiconductor supply chain tariff".split()
    while True:
        yield "Report", " ".join(" ".join(rng.choices(words, k=12)).capitalize() + "." for _ in range(20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=2.0)
    parser.add_argument("--scifact", type=Path, default=DEFAULT_SCIFACT)
    args = parser.parse_args()
    settings = Settings()
    embedder = get_embedder(settings.embed_model, settings.embed_batch_size)
    embedder.encode([f"warm up {i}" for i in range(100)])  # model load and first-call costs outside both timings
    with tempfile.TemporaryDirectory() as tmp:
        corpus, index_dir = Path(tmp) / "corpus", Path(tmp) / "index"
        corpus.mkdir()
        size = write_corpus(corpus, args.mb, args.scifact)
        started = time.perf_counter()
        report, _ = ingest([corpus], index_dir, settings.model_copy(update={"index": index_dir}))
        pipeline_s = time.perf_counter() - started
        index = Index.load(index_dir, settings)
        texts = [title_prefix(index.documents[c.doc_id].title, embedder, settings.title_prefix_tokens) + c.text
                 for c in index.chunks]
    from sentence_transformers import SentenceTransformer

    bare_model = SentenceTransformer(resolve_model_path(settings.embed_model), device="cpu")
    started = time.perf_counter()
    bare_model.encode(texts, batch_size=settings.embed_batch_size, normalize_embeddings=True)
    bare_s = time.perf_counter() - started
    tokens = report.tokens_embedded
    print(f"corpus: {size / 1e6:.2f} MB in {len(report.added)} files; {report.chunks_embedded} chunks, {tokens} tokens")
    print(f"pipeline (load + chunk + embed + save): {pipeline_s:.1f} s, {tokens / pipeline_s:,.0f} tokens/s")
    print(f"bare SentenceTransformer.encode:        {bare_s:.1f} s, {tokens / bare_s:,.0f} tokens/s")
    print(f"pipeline overhead over bare encoding: {100 * (pipeline_s / bare_s - 1):+.1f}%")


if __name__ == "__main__":
    main()
