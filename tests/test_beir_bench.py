"""bench/beir.py on a tiny hand-made BEIR-format dataset with known answers, and its metrics."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("beir_bench", ROOT / "bench" / "beir.py")
beir = importlib.util.module_from_spec(spec)
spec.loader.exec_module(beir)

DOCS = [
    ("d1", "Gallium export controls", "China restricts gallium and germanium exports since July 2023."),
    ("d2", "Tea harvest", "Green tea in Shizuoka is harvested in April and May every year."),
    ("d3", "Airport runway", "The Velmar airport runway was extended to three kilometres."),
    ("d4", "Rare metals", "Germanium is used in fibre optics and infrared lenses."),
    ("d5", "Rare metals", "Germanium is used in fibre optics and infrared lenses."),  # same text as d4
]
QUERIES = [("q1", "When did China restrict gallium exports?"), ("q2", "When is green tea harvested?"),
           ("q3", "What is germanium used for in optics?")]
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td4\t1\n"


def test_metrics_on_hand_made_rankings():
    assert beir.ndcg_at_k(["a", "b"], {"a": 1}) == 1.0
    assert beir.ndcg_at_k(["b", "a"], {"a": 1}) == pytest.approx(1 / math.log2(3))
    assert beir.ndcg_at_k([], {"a": 1}) == 0.0
    assert beir.recall_at_k(["a", "x"], {"a": 1, "b": 1}) == 0.5
    assert beir.mrr_at_k(["x", "y", "a"], {"a": 1}) == pytest.approx(1 / 3)
    assert beir.mrr_at_k(["x"] * 20, {"a": 1}) == 0.0


def _tiny_dataset(tmp_path) -> Path:
    """DOCS, QUERIES and QRELS written as a BEIR-format folder."""
    data = tmp_path / "tiny"
    (data / "qrels").mkdir(parents=True)
    corpus = [{"_id": i, "title": t, "text": x} for i, t, x in DOCS]
    (data / "corpus.jsonl").write_text("".join(json.dumps(doc) + "\n" for doc in corpus))
    (data / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in QUERIES))
    (data / "qrels" / "test.tsv").write_text(QRELS)
    return data


@pytest.mark.slow
def test_benchmark_runs_through_the_product_pipeline(tmp_path, capsys):
    data = _tiny_dataset(tmp_path)
    results = beir.main([str(data), "--index", str(tmp_path / "work"), "--json"])
    assert results["documents"] == 5 and results["queries"] == 3
    assert results["chunks"] == 4, "identical texts are stored once"
    for mode in ("dense", "bm25", "hybrid"):
        assert results["modes"][mode]["ndcg@10"] == pytest.approx(1.0), mode
        assert results["modes"][mode]["recall@100"] == 1.0
    assert json.loads(capsys.readouterr().out)["modes"]["hybrid"]["mrr@10"] == 1.0
    again = beir.main([str(data), "--index", str(tmp_path / "work"), "--json"])
    assert again["modes"] == {m: {**v, "latency_p50_ms": again["modes"][m]["latency_p50_ms"]}
                              for m, v in results["modes"].items()}


@pytest.mark.slow
def test_benchmark_compares_two_precisions_in_one_run(tmp_path):
    data = _tiny_dataset(tmp_path)
    results = beir.main([str(data), "--index", str(tmp_path / "work"), "--precision", "fp32,int8", "--json"])
    assert [r["precision"] for r in results["runs"]] == ["fp32", "int8"]
    assert results["agreement"]["chunks"] == 4 and 0.97 < results["agreement"]["cosine_min"] <= 1.0001
    assert results["ndcg@10_difference"]["bm25"] == 0.0  # keyword retrieval does not depend on the encoder
