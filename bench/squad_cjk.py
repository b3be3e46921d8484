"""Japanese and Chinese question answering on SQuAD-format sets (JSQuAD, CMRC 2018), through the product's
own ingestion, retrieval and answering: answer-hit (a gold answer string appears in the answer), hit@5 (a
retrieved passage among the top 5 overlaps the gold paragraph), abstentions and latency, per model.

Each article's paragraphs become one text document (title on the first line, a blank line between
paragraphs), ingested with ``Assistant.build`` exactly as a user's files would be; each question is asked
in its own language with ``assistant.ask``. ``--articles`` and ``--questions`` take a seeded sample.

Usage: ``python bench/squad_cjk.py ../shared/benchmarks/jsquad/valid-v1.3.json.gz --models bundled,multilingual
--articles 20 --questions 200``
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag import Assistant
from rag.config import BUNDLED_MODEL, Settings
from rag.terms import fold_width
from rag.text import strip_markers

MODELS = {"bundled": BUNDLED_MODEL, "multilingual": "multilingual"}


def read_articles(path: Path) -> list[dict]:
    """[{title, paragraphs: [text], questions: [(question, answers, paragraph number)]}] from SQuAD JSON."""
    with gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    articles = []
    for article in data:
        paragraphs, questions = [], []
        for p, paragraph in enumerate(article["paragraphs"]):
            context = paragraph["context"]
            # JSQuAD starts each context with "TITLE [SEP] ": the title line of the document says it once.
            paragraphs.append(context.split(" [SEP] ", 1)[-1].strip())
            for qa in paragraph["qas"]:
                answers = [a["text"] for a in qa.get("answers", []) if a["text"].strip()]
                if answers and qa["question"].strip() and not qa.get("is_impossible"):  # CMRC has an empty one
                    questions.append((qa["question"], answers, p))
        articles.append({"title": article.get("title") or str(len(articles)), "paragraphs": paragraphs,
                         "questions": questions})
    return articles


def write_documents(articles: list[dict], folder: Path) -> list[dict]:
    """One .txt per article; records each paragraph's char span in the written text."""
    folder.mkdir(parents=True, exist_ok=True)
    placed = []
    for i, article in enumerate(articles):
        text, spans = article["title"] + "\n\n", []
        for paragraph in article["paragraphs"]:
            spans.append((len(text), len(text) + len(paragraph)))
            text += paragraph + "\n\n"
        path = folder / f"article-{i:03d}.txt"
        path.write_text(text, encoding="utf-8")
        placed.append({**article, "path": path, "spans": spans})
    return placed


def sample(articles: list[dict], n_articles: int, n_questions: int, seed: int) -> tuple[list[dict], list[tuple]]:
    """A seeded sample of articles, and of their questions as (article number, question, answers, paragraph)."""
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(articles)), min(n_articles, len(articles))))
    picked = [articles[i] for i in chosen]
    questions = [(a, *q) for a, article in enumerate(picked) for q in article["questions"]]
    return picked, sorted(rng.sample(questions, min(n_questions, len(questions))), key=lambda q: q[0])


def answer_hit(answer_text: str, answers: list[str]) -> bool:
    """A gold answer appears in the answer, its [n] markers left out (full-width forms and spaces ignored
    on both sides). Example: ``answer_hit("它是一种产物 [1]。", ["它是一种产物。"]) is True``"""
    def squeeze(s: str) -> str:
        return "".join(fold_width(s).split())

    text = squeeze(strip_markers(answer_text))
    return any(squeeze(a) in text for a in answers)


def run_model(model: str, placed: list[dict], questions: list[tuple], out: Path) -> dict:
    settings = Settings(embed_model=MODELS.get(model, model), index=out / f"index-{model}")
    started = time.perf_counter()
    assistant = Assistant.build([a["path"] for a in placed], index_dir=settings.index, settings=settings)
    ingest_s = time.perf_counter() - started
    hits = retrieved = abstained = 0
    latencies = []
    for a, question, answers, p in questions:
        name, (p_start, p_end) = placed[a]["path"].name, placed[a]["spans"][p]
        began = time.perf_counter()
        answer = assistant.ask(question)
        latencies.append(time.perf_counter() - began)
        top = assistant.retrieve(question, k=5)  # the ask above already embedded the question
        retrieved += any(Path(c.source).name == name and c.start < p_end and c.end > p_start for c in top)
        abstained += answer.abstained
        hits += answer_hit(answer.text, answers)
    n = max(1, len(questions))
    return {"model": model, "questions": len(questions), "answer_hit": round(hits / n, 3),
            "hit@5": round(retrieved / n, 3), "abstained": round(abstained / n, 3),
            "latency_ms_p50": round(1000 * statistics.median(latencies), 1) if latencies else None,
            "latency_ms_mean": round(1000 * statistics.mean(latencies), 1) if latencies else None,
            "ingest_s": round(ingest_s, 1), "chunks": assistant.stats().get("chunks")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--models", default="bundled,multilingual")
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/out/squad_cjk"))
    args = parser.parse_args()
    out = args.out / args.dataset.name.split(".")[0]
    placed, questions = sample(read_articles(args.dataset), args.articles, args.questions, args.seed)
    placed = write_documents(placed, out / "docs")
    print(f"{args.dataset.name}: {len(placed)} articles, {sum(len(a['paragraphs']) for a in placed)} paragraphs, "
          f"{len(questions)} questions (seed {args.seed})", flush=True)
    results = []
    for model in args.models.split(","):
        results.append(run_model(model, placed, questions, out))
        print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
