"""The regression gate on the seed corpus: passes against the committed baseline, is deterministic,
and fails when the pipeline is degraded."""
from __future__ import annotations

import json

import pytest

from rag import Assistant, Settings
from rag.evaluation import evaluate_and_report

from conftest import ROOT

pytestmark = pytest.mark.slow

EVALSET = ROOT / "evals" / "seed.jsonl"
BASELINE = ROOT / "evals" / "baseline.json"


def test_gate_passes_against_committed_baseline(seed_assistant, tmp_path):
    result, regressions = evaluate_and_report(seed_assistant, EVALSET, baseline_path=BASELINE, report_dir=tmp_path)
    assert regressions == [], [r.detail for r in regressions]
    assert (tmp_path / "report.md").read_text().count("\n") > 60
    assert json.loads((tmp_path / "results.json").read_text())["metrics"]["questions"] >= 40
    assert not result.warnings, "every gold quote is in the corpus and every field is known"


def test_two_runs_are_identical(seed_assistant):
    first, _ = evaluate_and_report(seed_assistant, EVALSET)
    second, _ = evaluate_and_report(seed_assistant, EVALSET)
    assert first.to_dict(include_timings=False) == second.to_dict(include_timings=False)


def test_gate_fails_with_top_k_1(seed_index_dir):
    degraded = Assistant.open(seed_index_dir, Settings(index=seed_index_dir, top_k=1))
    _, regressions = evaluate_and_report(degraded, EVALSET, baseline_path=BASELINE)
    # One passage cannot hold both halves of a two-passage answer: that question now fails.
    assert any(r.kind == "question" and r.name.startswith("multi-") for r in regressions)


def test_gate_fails_with_a_broken_chunker(tmp_path, monkeypatch):
    import rag.streaming

    def one_sentence_chunks(doc_id, text, token_offsets, max_tokens, overlap_tokens):
        chunks = real(doc_id, text, token_offsets, max_tokens, overlap_tokens)
        # Broken: every chunk keeps only its first 40 characters.
        return [type(c)(c.chunk_id, c.doc_id, c.position, c.start, c.start + 40, 8, c.text[:40]) for c in chunks]

    real = rag.streaming.chunk_text  # ingest chunks through rag.streaming
    monkeypatch.setattr(rag.streaming, "chunk_text", one_sentence_chunks)
    index_dir = tmp_path / "broken"
    broken = Assistant.build([ROOT / "seeds"], index_dir=index_dir, settings=Settings(index=index_dir))
    _, regressions = evaluate_and_report(broken, EVALSET, baseline_path=BASELINE)
    names = {r.name for r in regressions}
    assert {"answer_correctness", "hit_at_k"} & names
