"""Ingestion throughput: the product's encoders (fp32 and int8) and the full pipeline versus bare
SentenceTransformer.encode (fp32) on the same chunk texts, side by side in one process.

Writes a corpus of plain-text files (abstracts from the BEIR SciFact corpus when it is available beside
the project, otherwise generated sentences), ingests it with ``rag.ingest`` (int8) into a fresh index, then
encodes exactly the chunk texts the pipeline embedded with each encoder. The texts are split into rounds
and every encoder runs each round in turn, so a machine shared with other work slows all of them alike:
the ratios are the figures to read. Then int8 at 1 thread and at every core, for the scaling.

Usage: ``python bench/ingest_bench.py [--mb 1.0] [--rounds 3] [--scifact ../shared/benchmarks/scifact/corpus.jsonl.gz]``
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

from rag.config import Settings
from rag.embedding import Embedder, get_embedder, resolve_model_path
from rag.ingest import ingest, title_prefix
from rag.onnx_encoder import available_cores

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


def timed_rounds(encoders: dict, texts: list[str], rounds: int) -> dict[str, float]:
    """Seconds per encoder over all texts, run round-robin over ``rounds`` slices of them."""
    seconds = dict.fromkeys(encoders, 0.0)
    size = -(-len(texts) // rounds)
    for begin in range(0, len(texts), size):
        part = texts[begin:begin + size]
        for name, encode in encoders.items():
            started = time.perf_counter()
            encode(part)
            seconds[name] += time.perf_counter() - started
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scifact", type=Path, default=DEFAULT_SCIFACT)
    args = parser.parse_args()
    settings = Settings(embed_precision="int8")
    fp32, int8 = (get_embedder(settings.embed_model, settings.embed_batch_size, p) for p in ("fp32", "int8"))
    for embedder in (fp32, int8):  # model load, export on first use and first-call costs outside the timings
        embedder.encode([f"warm up {i}" for i in range(100)])
    with tempfile.TemporaryDirectory() as tmp:
        corpus, index_dir = Path(tmp) / "corpus", Path(tmp) / "index"
        corpus.mkdir()
        size = write_corpus(corpus, args.mb, args.scifact)
        started = time.perf_counter()
        report, index = ingest([corpus], index_dir, settings.model_copy(update={"index": index_dir}))
        pipeline_s = time.perf_counter() - started
        texts = [title_prefix(index.documents[c.doc_id].title, int8, settings.title_prefix_tokens) + c.text
                 for c in index.chunks]
    from sentence_transformers import SentenceTransformer

    bare = SentenceTransformer(resolve_model_path(settings.embed_model), device="cpu")
    bare.encode(texts[:64], batch_size=settings.embed_batch_size)
    cores = available_cores()
    int8_one = Embedder(settings.embed_model, settings.embed_batch_size, "int8", threads=1)
    int8_one.encode(texts[:8])
    seconds = timed_rounds({
        "bare SentenceTransformer.encode fp32": lambda t: bare.encode(t, batch_size=settings.embed_batch_size,
                                                                      normalize_embeddings=True),
        "rag encoder fp32 (ONNX Runtime)": fp32.encode,
        f"rag encoder int8, {int8.onnx.threads} threads": int8.encode,
        "rag encoder int8, 1 thread": int8_one.encode,
    }, texts, args.rounds)
    tokens = report.tokens_embedded
    bare_s = seconds["bare SentenceTransformer.encode fp32"]
    print(f"corpus: {size / 1e6:.2f} MB in {len(report.added)} files; {report.chunks_embedded} chunks, "
          f"{tokens:,} tokens; {cores} cores")
    for name, spent in seconds.items():
        print(f"{name:<40} {spent:7.1f} s {tokens / spent:10,.0f} tokens/s  {bare_s / spent:5.2f}x bare")
    print(f"{'pipeline int8 (load+chunk+embed+save)':<40} {pipeline_s:7.1f} s {tokens / pipeline_s:10,.0f} tokens/s  "
          f"{bare_s / pipeline_s:5.2f}x bare (its own run, not interleaved)")
    one, threads = seconds["rag encoder int8, 1 thread"], int8.onnx.threads
    print(f"int8 thread scaling: 1 -> {threads} threads {one / seconds[f'rag encoder int8, {threads} threads']:.2f}x")


if __name__ == "__main__":
    main()
