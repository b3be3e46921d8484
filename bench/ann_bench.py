"""Dense search at scale: the FAISS store with exact (float16 flat) and approximate (IVF) parts, at 100k,
300k and 1M vectors of dimension 384.

For each size and kind: build-and-save time, open time and resident memory of a fresh process that opens
the saved store, recall@10 against exact float32 search, and search p50/p95 one query at a time.

Vectors with the neighbourhood structure of text embeddings (uniform random vectors have none, and make
any approximate index look worse or better than it is):
- ``kde``: real MiniLM vectors (``--real FILE.npz``, arrays ``x``: SciFact abstract chunks, ``q``: SciFact
  claims, made by ``--embed FILE.npz`` with the project's embedder), then draws around random real vectors
  with Gaussian noise of the real vectors' own covariance (x0.7), normalised: a Gaussian mixture with one
  centre per real chunk. At the real corpus' size (17.7k) this matches MiniLM's similarity profile and its
  IVF recall curve (nprobe 2/5/12% of sqrt(n) lists: 0.68/0.82/0.93 vs 0.72/0.85/0.93 for the real
  vectors). Queries are the real claim embeddings.
- ``mixture``: no download or model needed: unit vectors around 5,000 topic centres drawn around 100
  subjects. Its clusters are cleaner than text's: recall there is higher than on text.

Usage: ``python bench/ann_bench.py [--sizes 100000 1000000] [--data kde|mixture] [--real F.npz [--embed]]``
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from rag.stores.faiss import FaissStore  # noqa: E402

DIMENSION = 384
EXACT = 10**12  # an IVF threshold no store reaches: every part exact


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def mixture(n: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, queries) from a two-level Gaussian mixture over the unit sphere."""
    rng = np.random.default_rng(seed)
    subjects = unit(rng.standard_normal((100, DIMENSION), dtype=np.float32))
    topics = unit(subjects[rng.integers(0, 100, 5000)]
                  + 0.9 * rng.standard_normal((5000, DIMENSION), dtype=np.float32) / np.sqrt(DIMENSION))
    out = np.empty((n + queries, DIMENSION), np.float32)
    for begin in range(0, n + queries, 100_000):
        rows = min(100_000, n + queries - begin)
        noise = rng.standard_normal((rows, DIMENSION), dtype=np.float32) / np.sqrt(DIMENSION)
        out[begin:begin + rows] = unit(topics[rng.integers(0, 5000, rows)] + 1.2 * noise)
    return out[:n], out[n:]


def kde(path: Path, n: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, queries): the real vectors, then draws around them with their own covariance; real queries."""
    data = np.load(path)
    real, asked = unit(data["x"]), unit(data["q"])[:queries]
    values, axes = np.linalg.eigh(np.cov((real - real.mean(axis=0)).T))
    shape = (np.sqrt(np.clip(values, 0, None))[:, None] * axes.T).astype(np.float32)  # z @ shape ~ N(0, cov)
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIMENSION), np.float32)
    out[:min(n, len(real))] = real[:n]
    for begin in range(len(real), n, 100_000):
        rows = min(100_000, n - begin)
        noise = rng.standard_normal((rows, DIMENSION), dtype=np.float32) @ shape
        out[begin:begin + rows] = unit(real[rng.integers(0, len(real), rows)] + 0.7 * noise)
    return out, asked


def embed_scifact(target: Path) -> None:
    """MiniLM vectors of SciFact's abstracts (three sentences a chunk) and claims, into ``target`` (.npz)."""
    import gzip
    import re

    from rag.config import BUNDLED_MODEL
    from rag.embedding import get_embedder

    folder = ROOT.parent / "shared" / "benchmarks" / "scifact"
    texts = []
    for line in gzip.open(folder / "corpus.jsonl.gz", "rt", encoding="utf-8"):
        sentences = re.split(r"(?<=[.!?])\s+", json.loads(line)["text"].strip())
        texts += [" ".join(sentences[i:i + 3]) for i in range(0, len(sentences), 3) if sentences[i].strip()]
    claims = [json.loads(line)["text"] for name in ("queries.jsonl", "queries-train.jsonl")
              for line in open(folder / name, encoding="utf-8")]
    embedder = get_embedder(BUNDLED_MODEL)
    np.savez(target, x=embedder.encode(texts), q=embedder.encode_query(claims))


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Row numbers of each query's exact float32 top ``k`` (the ground truth)."""
    best = np.empty((len(queries), k), np.int64)
    for begin in range(0, len(queries), 64):
        scores = queries[begin:begin + 64] @ vectors.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        best[begin:begin + 64] = np.take_along_axis(top, order, axis=1)
    return best


def build(vectors: np.ndarray, folder: Path, threshold: int) -> tuple[float, list[dict]]:
    """Seconds to add every vector (ids = row numbers) and save; the parts written."""
    started = time.perf_counter()
    store = FaissStore.create(DIMENSION, ivf_threshold=threshold)
    store.add(np.arange(len(vectors), dtype=np.int64), vectors)
    store.save(folder)
    return time.perf_counter() - started, store.parts()


def measure_open(folder: Path, queries: Path) -> dict:
    """Open time, RSS and one-query-at-a-time search of the saved store, in a fresh process."""
    done = subprocess.run([sys.executable, __file__, "--child", str(folder), str(queries)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(folder: Path, queries_path: Path) -> None:
    import faiss  # noqa: F401  (the library's own load is not the store's open time)

    queries = np.load(queries_path)
    rss_before = _rss_mb()
    started = time.perf_counter()
    store = FaissStore.load(folder)
    opened, rss_open = time.perf_counter() - started, _rss_mb()
    store.search(queries[:1], 10)  # the first search pays for loading the search code paths
    times, found = [], []
    for query in queries:
        started = time.perf_counter()
        _, ids = store.search(query[None, :], 10)
        times.append(time.perf_counter() - started)
        found.append(ids[0])
    np.save(queries_path.with_suffix(".found.npy"), np.array(found))
    print(json.dumps({"open_s": opened, "rss_open_mb": rss_open, "rss_base_mb": rss_before,
                      "rss_after_search_mb": _rss_mb(), "rss_file_after_search_mb": _rss_mb("RssFile"),
                      "p50_ms": 1000 * float(np.percentile(times, 50)),
                      "p95_ms": 1000 * float(np.percentile(times, 95))}))


def _rss_mb(field: str = "VmRSS") -> float:
    """Resident memory in MB; RssFile: the part of it that is memory-mapped files (page cache, shared)."""
    for line in open("/proc/self/status"):
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(size: int, data: str, real: Path | None, queries: int, workdir: Path, kinds: list[str]) -> list[dict]:
    vectors, asked = kde(real, size, queries) if data == "kde" else mixture(size, queries)
    truth = exact_top(vectors, asked)
    np.save(workdir / "queries.npy", asked)
    rows = []
    for kind in kinds:
        folder = workdir / f"{kind}-{size}"
        seconds, parts = build(vectors, folder, EXACT if kind == "exact" else 1)
        figures = measure_open(folder, workdir / "queries.npy")
        found = np.load(workdir / "queries.found.npy")
        recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found.tolist(), truth.tolist())]))
        disk = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20
        described = [(p["kind"], p["count"], p["lists"], p["nprobe"]) for p in parts]
        rows.append({"size": size, "data": data, "kind": kind, "build_s": seconds, "disk_mb": disk,
                     "recall10": recall, "parts": described, **figures})
        print(json.dumps(rows[-1]), flush=True)
        for path in folder.rglob("*"):
            path.unlink() if path.is_file() else None
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--data", choices=["kde", "mixture"], default="kde")
    parser.add_argument("--real", type=Path, default=Path("scifact-minilm.npz"),
                        help="npz of MiniLM vectors (x) and queries (q), for --data kde")
    parser.add_argument("--embed", action="store_true", help="first write --real from SciFact (minutes)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--kinds", nargs="+", default=["exact", "ivf"], choices=["exact", "ivf"])
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    if args.embed:
        embed_scifact(args.real)
    with tempfile.TemporaryDirectory() as workdir:
        rows = [row for size in args.sizes
                for row in run(size, args.data, args.real, args.queries, Path(workdir), args.kinds)]
    print("\n| vectors | data | kind | lists / nprobe | build s | disk MB | open s | RSS MB (open / after search) "
          "(of it mapped files) | recall@10 | p50 ms | p95 ms |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        probes = " ".join(f"{p[2]}/{p[3]}" for p in r["parts"] if p[2]) or "-"
        print(f"| {r['size']:,} | {r['data']} | {r['kind']} | {probes} | {r['build_s']:.1f} "
              f"| {r['disk_mb']:.0f} | {r['open_s']:.3f} | {r['rss_open_mb']:.0f} / {r['rss_after_search_mb']:.0f} "
              f"({r['rss_file_after_search_mb']:.0f}) "
              f"| {r['recall10']:.3f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} |")


if __name__ == "__main__":
    main()
