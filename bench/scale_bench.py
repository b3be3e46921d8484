"""Scale: what an index of N chunks costs on disk, to open, to search and to grow by one file.

For each size, builds the synthetic index of bench/query_bench.py (Zipf prose, topic-clustered unit vectors), then
measures in fresh processes (as a user meets it): opening the index (wall time and RSS after it), a first
`rag ask` (open, embed, retrieve, answer) and a `rag ingest` of one new small file through the real CLI,
each with its wall time and peak RSS; then retrieve p50/p95 in one process, and the index's size on disk.

Usage: ``python bench/scale_bench.py [--chunks 100000 300000 1000000] [--queries 30]``
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from query_bench import QUESTIONS, build_synthetic_index, percentile, time_calls  # noqa: E402

from rag import Assistant, Settings  # noqa: E402
from rag.storage import current_generation  # noqa: E402

NEW_FILE = ("Gallium and germanium export licences were granted to three firms in March. " * 12 + "\n\n"
            + "The ministry said graphite shipments would be reviewed each quarter. " * 12)


def timed_cli(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of ``rag ARGS`` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "rag.cli", *args]
    if shutil.which("time") and Path("/usr/bin/time").exists():
        done = subprocess.run(["/usr/bin/time", "-f", "%e %M", *command], capture_output=True, text=True, env=env)
        if done.returncode:
            raise RuntimeError(done.stderr[-2000:])
        wall, kilobytes = done.stderr.strip().splitlines()[-1].split()
        return float(wall), int(kilobytes) / 1024
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - started, float("nan")


OPEN_SCRIPT = """
import sys, time
from pathlib import Path
from rag import Settings
from rag.index import Index
started = time.perf_counter()
index = Index.load(Path(sys.argv[1]), Settings())
index.keyword, index.context_keyword  # both keyword indexes opened
# VmHWM, not ru_maxrss: the latter keeps the peak of the (large) benchmark process this one was forked from.
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(time.perf_counter() - started, int(peak.split()[1]) / 1024)
"""


def timed_open(index_dir: Path) -> tuple[float, float]:
    """(seconds to open the index, peak RSS in MB of the process that opened it), in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", OPEN_SCRIPT, str(index_dir)], capture_output=True, text=True,
                          env=env, check=True)
    seconds, megabytes = done.stdout.split()
    return float(seconds), float(megabytes)


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def measure(n_chunks: int, queries: int, workdir: Path, keep: bool = False) -> dict:
    """Every figure for one size; the index is deleted afterwards unless ``keep``."""
    index_dir, new_file = workdir / f"index-{n_chunks}", workdir / f"new-{n_chunks}.txt"
    settings = Settings().model_copy(update={"index": index_dir})
    started = time.perf_counter()
    build_synthetic_index(index_dir, n_chunks, settings)
    row = {"chunks": n_chunks, "build_s": time.perf_counter() - started,
           "size_mb": folder_mb(current_generation(index_dir))}
    row["open_s"], row["open_rss_mb"] = timed_open(index_dir)
    row["ask_s"], row["ask_rss_mb"] = timed_cli(["ask", QUESTIONS[0], "--index", str(index_dir)])
    new_file.write_text(NEW_FILE, encoding="utf-8")
    row["ingest_s"], row["ingest_rss_mb"] = timed_cli(["ingest", str(new_file), "--index", str(index_dir)])
    new_file.write_text(NEW_FILE.replace("three", "four"), encoding="utf-8")  # a second, changed version
    row["reingest_s"], _ = timed_cli(["ingest", str(new_file), "--index", str(index_dir)])
    assistant = Assistant.open(index_dir, settings)
    assistant.retrieve("warm up question about gallium")
    asked = [QUESTIONS[i % len(QUESTIONS)] + f" ({i})" for i in range(queries)]
    times = time_calls(lambda q: assistant.retrieve(q), asked)
    row["retrieve_p50_ms"], row["retrieve_p95_ms"] = percentile(times, 50), percentile(times, 95)
    if not keep:
        shutil.rmtree(index_dir, ignore_errors=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--keep", type=Path, help="build the indexes in this folder and keep them")
    args = parser.parse_args()
    print("| chunks | index on disk | open | its RSS | fresh `rag ask` | its peak RSS | `rag ingest` of one new file "
          "| its peak RSS | same file changed | retrieve p50 / p95 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n_chunks in args.chunks:
            r = measure(n_chunks, args.queries, args.keep or Path(tmp), keep=bool(args.keep))
            print(f"| {r['chunks']:,} | {r['size_mb']:,.0f} MB | {r['open_s']:.2f} s | {r['open_rss_mb']:,.0f} MB "
                  f"| {r['ask_s']:.1f} s | {r['ask_rss_mb']:,.0f} MB "
                  f"| {r['ingest_s']:.1f} s | {r['ingest_rss_mb']:,.0f} MB | {r['reingest_s']:.1f} s "
                  f"| {r['retrieve_p50_ms']:.0f} / {r['retrieve_p95_ms']:.0f} ms |", flush=True)


if __name__ == "__main__":
    main()
