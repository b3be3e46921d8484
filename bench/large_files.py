"""Large files: time and peak memory (RSS) to ingest one big text file and one long PDF, each in a fresh
process through ``rag.ingest`` with the progress callback counting calls.

``--encoder hash`` swaps the model for cheap deterministic vectors (the real tokenizer, chunking, index and
save): what memory the pipeline itself needs, in seconds rather than an hour. ``--encoder real`` (default)
uses the configured encoder.

Usage: ``python bench/large_files.py [--text-mb 25] [--pdf-pages 300] [--encoder real|hash]``
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("export control dialogue gallium germanium graphite semiconductor supply chain tariff Tokyo Beijing "
         "ministry licence restriction critical minerals smelter battery anode investment alliance").split()

_CHILD = r"""
import json, resource, sys, time, hashlib
import numpy as np
from pathlib import Path
from rag.config import Settings
import rag.ingest as ingest_module
from rag.embedding import Embedder

class HashEncoder(Embedder):
    def encode(self, texts, show_progress=False):
        seeds = [int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "big") for t in texts]
        v = np.array([np.random.default_rng(s).standard_normal(384) for s in seeds], dtype=np.float32).reshape(-1, 384)
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    dimension = property(lambda self: 384)
    max_tokens = property(lambda self: 254)

path, index_dir, encoder = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
settings = Settings(index=index_dir, max_file_mb=200)
if encoder == "hash":
    ingest_module.embedder_for = lambda s: HashEncoder(s.embed_model)
else:
    ingest_module.embedder_for(settings).encode(["warm up"])  # model load outside the timing
calls = []
started = time.perf_counter()
report, _ = ingest_module.ingest([path], index_dir, settings, progress=calls.append)
seconds = time.perf_counter() - started
last = calls[-1]
print(json.dumps({"file": path.name, "mb": path.stat().st_size / 1e6, "chunks": report.chunks_embedded,
                  "tokens": report.tokens_embedded, "seconds": round(seconds, 1),
                  "tokens_per_s": round(report.tokens_embedded / seconds), "progress_calls": len(calls),
                  "last_eta_s": last.eta_s, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def sentences(rng: random.Random):
    while True:
        yield " ".join(rng.choices(WORDS, k=rng.randint(8, 24))).capitalize() + "."


def write_text(path: Path, megabytes: float) -> None:
    rng, budget = random.Random(0), int(megabytes * 1_000_000)
    with open(path, "w", encoding="utf-8") as handle:
        written, source = 0, sentences(rng)
        while written < budget:
            paragraph = " ".join(next(source) for _ in range(rng.randint(3, 8))) + "\n\n"
            handle.write(paragraph)
            written += len(paragraph)


def write_pdf(path: Path, pages: int) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    rng, source = random.Random(1), sentences(random.Random(2))
    pdf = canvas.Canvas(str(path), pagesize=A4)
    for _ in range(pages):
        text = pdf.beginText(50, 800)
        for _ in range(48):  # a full page of prose, about 3,500 characters
            text.textLine(" ".join(next(source) for _ in range(rng.randint(1, 2)))[:95])
        pdf.drawText(text)
        pdf.showPage()
    pdf.save()


def measure(path: Path, encoder: str, work: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(work / f"index-{path.stem}"), encoder],
                         capture_output=True, text=True, env=env, check=False)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-mb", type=float, default=25.0)
    parser.add_argument("--pdf-pages", type=int, default=300)
    parser.add_argument("--encoder", choices=("real", "hash"), default="real")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = []
        if args.text_mb > 0:
            write_text(work / "big.txt", args.text_mb)
            files.append(work / "big.txt")
        if args.pdf_pages > 0:
            write_pdf(work / "long.pdf", args.pdf_pages)
            files.append(work / "long.pdf")
        for path in files:
            print(json.dumps({"encoder": args.encoder, **measure(path, args.encoder, work)}), flush=True)


if __name__ == "__main__":
    main()
