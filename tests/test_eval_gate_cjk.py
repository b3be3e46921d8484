"""The Japanese and Chinese regression gate: evals/cjk.jsonl (15 Japanese, 15 Chinese and 3 English questions
over evals/docs/) with the multilingual model passes against its committed baseline, and fails when
keyword search stops reading Chinese and Japanese."""
from __future__ import annotations

import pytest

from rag import Assistant, Settings
from rag.evaluation import evaluate_and_report

from conftest import ROOT

pytestmark = pytest.mark.slow

EVALSET = ROOT / "evals" / "cjk.jsonl"
BASELINE = ROOT / "evals" / "cjk-baseline.json"


@pytest.fixture(scope="module")
def cjk_index_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cjk") / "index"
    settings = Settings(index=folder, embed_model="multilingual")
    Assistant.build([ROOT / "evals" / "docs"], index_dir=folder, settings=settings)
    return folder


def open_cjk(folder):
    return Assistant.open(folder, Settings(index=folder, embed_model="multilingual", answerer="extractive"))


def test_cjk_gate_passes_against_committed_baseline(cjk_index_dir, tmp_path):
    result, regressions = evaluate_and_report(open_cjk(cjk_index_dir), EVALSET, baseline_path=BASELINE,
                                              report_dir=tmp_path)
    assert regressions == [], [r.detail for r in regressions]
    assert not result.warnings, "every gold quote is in evals/docs and every field is known"
    metrics = result.to_dict(include_timings=False)["metrics"]
    assert metrics["questions"] == 33 and metrics["unanswerable"] == 10


def test_cjk_gate_fails_when_keyword_search_splits_on_spaces_only(cjk_index_dir, monkeypatch):
    import rag.keyword
    import rag.terms

    # The old behaviour: a Chinese or Japanese sentence is one "word".
    monkeypatch.setattr(rag.keyword, "segment", lambda text: text)
    monkeypatch.setattr(rag.terms, "segment", lambda text: text)
    assistant = open_cjk(cjk_index_dir)
    assistant.index.rebuild_keyword_indexes()
    _, regressions = evaluate_and_report(assistant, EVALSET, baseline_path=BASELINE)
    assert {"answer_correctness", "pass_rate"} & {r.name for r in regressions}
