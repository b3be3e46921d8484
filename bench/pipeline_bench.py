"""Ingestion outside the embedding model: chunks per second of `rag ingest` with a near-free encoder, and a
profile of where the time goes (loading, sentence splitting, tokenizing, instruction screening, keyword
indexing, saving).

Also timed alone, on one thread: the stages before the index (loading, chunking, screening), whose
rate bounds the whole when the index's own work (adding, keyword indexes, saving) costs nothing.

The corpus is ordinary text files: synthetic reports of about 20 chunks each (Zipf prose from
bench/query_bench.py's vocabulary), the seed article, and SciFact abstracts written ten to a file. The
encoder is the real model's tokenizer (chunks are sized in its tokens) with hashed vectors in place of the
model; the time spent in ``encode`` is measured and left out.

Usage: ``python bench/pipeline_bench.py [--files 300] [--scifact 2000] [--no-profile] [--top 25]``
"""
from __future__ import annotations

import argparse
import cProfile
import gzip
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402

import rag.ingest as ingest_module  # noqa: E402
import rag.streaming as streaming  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.embedding import Embedder  # noqa: E402

SCIFACT = ROOT.parent / "shared" / "benchmarks" / "scifact" / "corpus.jsonl.gz"
# Functions whose cumulative time is reported as the pipeline's stages.
STAGES = {
    "load files": ("documents.py", "load_paths"),
    "chunk_text (all)": ("chunking.py", "chunk_text"),
    "  split_sentences": ("text.py", "split_sentences"),
    "  tokenizer": ("onnx_encoder.py", "__call__"),
    "find_instructions": ("injection.py", "find_instructions"),
    "  unmask": ("textnorm.py", "unmask"),
    "index.add_document": ("index.py", "add_document"),
    "index.save": ("index.py", "save"),
    "encode (model stand-in)": ("pipeline_bench.py", "encode"),
}


class HashEncoder(Embedder):
    """The bundled model's tokenizer with fixed random unit vectors picked by a hash of the text."""

    _bank = np.random.default_rng(0).standard_normal((4096, 384)).astype(np.float32)
    _bank /= np.linalg.norm(_bank, axis=1, keepdims=True)
    seconds = 0.0

    def encode(self, texts, show_progress=False):
        started = time.perf_counter()
        vectors = self._bank[[zlib.crc32(t.encode()) % len(self._bank) for t in texts]]
        HashEncoder.seconds += time.perf_counter() - started
        return vectors

    dimension = property(lambda self: 384)
    max_tokens = property(lambda self: 254)


def build_corpus(folder: Path, files: int, scifact: int) -> None:
    """``files`` synthetic reports of 20 Zipf-prose passages, the seed article, ``scifact`` abstracts ten
    to a file."""
    from query_bench import SEED, synthetic_chunk, synthetic_vocabulary

    rng, words = np.random.default_rng(0), synthetic_vocabulary()
    zipf = 1.0 / np.arange(1, len(words) + 1)
    cdf = np.cumsum(zipf / zipf.sum())
    cdf /= cdf[-1]
    (folder / "synthetic").mkdir(parents=True)
    for n in range(files):
        text = "\n\n".join(synthetic_chunk(rng, words, cdf) for _ in range(20))
        (folder / "synthetic" / f"{n:05d}.txt").write_text(f"Report {n}\n\n{text}\n", encoding="utf-8")
    shutil.copy(SEED, folder / SEED.name)
    if scifact and SCIFACT.is_file():
        (folder / "scifact").mkdir()
        with gzip.open(SCIFACT, "rt", encoding="utf-8") as handle:
            rows = [json.loads(line) for _, line in zip(range(scifact), handle)]
        for n in range(0, len(rows), 10):
            text = "\n\n".join(f"{r['title']}\n\n{r['text']}" for r in rows[n:n + 10])
            (folder / "scifact" / f"{n // 10:05d}.txt").write_text(text + "\n", encoding="utf-8")


def run_ingest(corpus: Path, index_dir: Path, profile: bool) -> tuple[dict, pstats.Stats | None]:
    """One `rag ingest` of ``corpus`` into a fresh index; with ``profile``, the stats of both threads."""
    settings = Settings(index=index_dir)
    HashEncoder.seconds = 0.0
    ingest_module.embedder_for = lambda s: HashEncoder(s.embed_model)
    profiles: list[cProfile.Profile] = []
    chunk_groups = streaming._chunk_groups

    def profiled_groups(*args):  # the chunking thread, profiled on its own
        worker = cProfile.Profile()
        profiles.append(worker)
        worker.runcall(chunk_groups, *args)

    if profile:
        streaming._chunk_groups = profiled_groups
        main = cProfile.Profile()
        profiles.append(main)
        main.enable()
    started = time.perf_counter()
    try:
        report, _ = ingest_module.ingest([corpus], index_dir, settings)
    finally:
        seconds = time.perf_counter() - started
        if profile:
            main.disable()
            streaming._chunk_groups = chunk_groups
    outside = seconds - HashEncoder.seconds
    figures = {"files": report.documents, "chunks": report.chunks_embedded, "seconds": round(seconds, 2),
               "encode_s": round(HashEncoder.seconds, 2), "outside_model_s": round(outside, 2),
               "chunks_per_s_outside_model": round(report.chunks_embedded / outside)}
    stats = None
    if profile:
        stats = pstats.Stats(profiles[0], stream=io.StringIO())
        for extra in profiles[1:]:
            stats.add(extra)
    return figures, stats


def stages_alone(corpus: Path) -> dict:
    """Seconds of the stages before the index, one after another on one thread: loading the files,
    chunking them (sentences and token counts) and screening them for instructions."""
    from rag.chunking import PieceCounts, chunk_text
    from rag.documents import load_paths
    from rag.injection import find_instructions

    settings, encoder = Settings(), HashEncoder(Settings().embed_model)
    started = time.perf_counter()
    docs = load_paths([corpus]).documents
    loaded = time.perf_counter()
    offsets = PieceCounts.for_tokenizer(encoder.tokenizer, encoder.token_offsets)
    chunks = sum(len(chunk_text(d.doc_id, d.text, offsets, settings.chunk_tokens, settings.chunk_overlap_tokens))
                 for d in docs)
    chunked = time.perf_counter()
    for doc in docs:
        find_instructions(doc.text)
    screened = time.perf_counter()
    total = screened - started
    return {"chunks": chunks, "load_s": round(loaded - started, 2), "chunk_s": round(chunked - loaded, 2),
            "screen_s": round(screened - chunked, 2), "chunks_per_s": round(chunks / total)}


def stage_table(stats: pstats.Stats) -> list[tuple[str, float]]:
    """(stage, cumulative seconds) for the named pipeline functions, summed over both threads."""
    rows = []
    for stage, (file, name) in STAGES.items():
        total = sum(value[3] for (path, _, func), value in stats.stats.items()
                    if path.endswith(file) and func == name)
        rows.append((stage, total))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300, help="synthetic files of ~20 chunks each")
    parser.add_argument("--scifact", type=int, default=2000, help="SciFact abstracts (10 per file)")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled second run")
    parser.add_argument("--top", type=int, default=25, help="profile entries to print")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_corpus(work / "corpus", args.files, args.scifact)
        figures, _ = run_ingest(work / "corpus", work / "index", profile=False)
        print(json.dumps(figures))
        print(f"stages before the index alone: {json.dumps(stages_alone(work / 'corpus'))}")
        if args.no_profile:
            return
        profiled, stats = run_ingest(work / "corpus", work / "index-profiled", profile=True)
        print(f"\nprofiled run (cProfile overhead included): {json.dumps(profiled)}")
        print("\nstage                       cumulative s (both threads)")
        for stage, total in stage_table(stats):
            print(f"{stage:<28}{total:8.2f}")
        out = io.StringIO()
        stats.stream = out
        stats.sort_stats("tottime").print_stats(args.top)
        if os.environ.get("PIPELINE_CUMULATIVE"):  # the project's own functions by cumulative time
            stats.sort_stats("cumulative").print_stats("/rag/", args.top)
        if os.environ.get("PIPELINE_CALLERS"):  # who calls the named hot spots, e.g. "unique_hash|fromiter"
            stats.print_callers(os.environ["PIPELINE_CALLERS"])
        print("\n" + out.getvalue().split("\n\n", 1)[-1].strip())


if __name__ == "__main__":
    main()
