"""Eval metrics, eval set loading, the runner and the baseline gate, on hand-made inputs and fake assistants."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rag.errors import EvalSetError, QuestionError
from rag.evaluation import (
    DEFAULT_TOLERANCES, EvalItem, aggregate, compare_to_baseline, evaluate_and_report, load_baseline,
    load_evalset, missing_gold_evidence, parse_evalset, render_markdown, run_eval, save_baseline,
)
from rag.evaluation import metrics as m
from rag.evaluation.metrics import GoldSpan
from rag.text import normalise
from rag.types import Answer, Citation, SentenceCheck

ROOT = Path(__file__).resolve().parent.parent
SEED_EVALSET = ROOT / "evals" / "seed.jsonl"
SEED_ARTICLE = ROOT / "seeds" / "000_003981b1cdb900f2.txt"


def passage(text: str, start: int = 0, number: int = 1, source: str = "a.txt", supported=None) -> Citation:
    return Citation(number=number, doc_id="d1", title="T", source=source, text=text, start=start,
                    end=start + len(text), supported=supported)


def answer(sentences, abstained: bool = False, text: str | None = None, citations=None) -> Answer:
    """An Answer from ``[(sentence, cited_numbers, supported), ...]`` as the verifier would fill it;
    ``supported`` is one flag for every citation of the sentence, or a dict per cited number."""
    checks = []
    for s, cited, ok in sentences:
        pairs = ok if isinstance(ok, dict) else {n: ok for n in cited}
        checks.append(SentenceCheck(s, list(cited), 1.0 if any(pairs.values()) else 0.0, any(pairs.values()), pairs))
    numbers = sorted({n for _, cited, _ in sentences for n in cited})
    if citations is None:
        citations = [passage(f"p{n}", number=n, supported=any(ok for _, c, ok in sentences if n in c))
                     for n in numbers]
    body = text if text is not None else " ".join(f"{s} " + "".join(f"[{n}]" for n in c) for s, c, _ in sentences)
    return Answer(text=body, citations=citations, abstained=abstained, sentences=checks)


# ---------------------------------------------------------------- retrieval metrics

def test_normalise_folds_quotes_case_and_whitespace():
    assert normalise("Beijing’s  RARE\n metals") == "beijing's rare metals"
    assert normalise("") == ""


def test_passage_hits_by_quote_after_whitespace_normalisation():
    hit = passage("China imposed the rare metals\ncontrols  in July 2023 in retaliation.")
    assert m.passage_hits(hit, quotes=["rare metals controls in July 2023"])
    assert not m.passage_hits(hit, quotes=["gallium"])
    assert not m.passage_hits(hit)


def test_passage_hits_by_overlapping_span_and_source():
    p = passage("x" * 10, start=100)  # covers [100, 110)
    assert m.passage_hits(p, spans=[GoldSpan(105, 120)])
    assert not m.passage_hits(p, spans=[GoldSpan(110, 120)])  # touching is not overlapping
    assert m.passage_hits(p, spans=[GoldSpan(90, 101, source="a.txt")])
    assert not m.passage_hits(p, spans=[GoldSpan(90, 101, source="other.txt")])


def test_rank_hit_and_reciprocal_rank():
    ranked = [passage("nothing here"), passage("gallium and germanium"), passage("gallium again")]
    assert m.first_hit_rank(ranked, ["gallium"]) == 2
    assert m.hit_at_k(ranked, ["gallium"], k=2) is True
    assert m.hit_at_k(ranked, ["gallium"], k=1) is False
    assert m.reciprocal_rank(ranked, ["gallium"]) == 0.5
    assert m.reciprocal_rank(ranked, ["gallium"], k=1) == 0.0


def test_retrieval_metrics_on_empty_inputs():
    assert m.hit_at_k([], ["gallium"], k=5) is False
    assert m.reciprocal_rank([], ["gallium"]) == 0.0
    assert m.first_hit_rank([], ["gallium"]) is None
    # No gold evidence (an unanswerable item): undefined, not zero.
    assert m.hit_at_k([passage("gallium")], k=5) is None
    assert m.reciprocal_rank([passage("gallium")]) is None
    assert m.evidence_recall([passage("gallium")]) is None


def test_evidence_recall_needs_every_gold_piece():
    ranked = [passage("gallium is restricted"), passage("since July 2023")]
    assert m.evidence_recall(ranked, ["gallium", "July 2023"]) == 1.0
    assert m.evidence_recall(ranked, ["gallium", "July 2023"], k=1) == 0.5
    assert m.evidence_recall([], ["gallium"]) == 0.0


# ---------------------------------------------------------------- facts

def test_find_fact_is_case_insensitive_whole_word_and_ignores_markers():
    assert m.find_fact("It started in JULY 2023 [1].", ["july 2023"]) == "july 2023"
    assert m.find_fact("They discussed it [1].", ["US"]) is None  # not inside "discussed"
    assert m.find_fact("Japan joined the US [2].", ["United States", "US"]) == "US"
    assert m.find_fact("over a dozen semiconductor-related items", ["semiconductor-related"])
    assert m.find_fact("Beijing’s rules", ["Beijing's"]) == "Beijing's"
    assert m.find_fact("", ["x"]) is None
    assert m.find_fact("anything", []) is None


def test_facts_found_and_recall():
    found = m.facts_found("Gallium since July 2023 [1].", [["gallium"], ["germanium"], ["2023"]])
    assert found == ["gallium", None, "2023"]
    assert m.fact_recall(found) == pytest.approx(2 / 3)
    assert m.facts_found("text", []) == []
    assert m.fact_recall([]) is None


# ---------------------------------------------------------------- citations

def test_citation_precision_recall_per_sentence_support():
    a = answer([("Gallium is restricted.", [1], True), ("It rains.", [2], False)])
    assert m.citation_precision_recall(a) == (0.5, 0.5)


def test_citation_precision_counts_pairs_and_recall_needs_one_supporting_citation():
    citations = [passage("p1", number=1, supported=True), passage("p2", number=2, supported=False)]
    a = answer([("Gallium is restricted.", [1, 2], {1: True, 2: False})], citations=citations)
    assert m.citation_precision_recall(a) == (0.5, 1.0)


def test_uncited_sentences_earn_no_precision_or_recall():
    a = answer([("Unsourced claim.", [], False)])
    assert m.citation_precision_recall(a) == (0.0, 0.0)


def test_citation_metrics_undefined_for_abstentions_and_empty_answers():
    assert m.citation_precision_recall(answer([], abstained=True, text="The documents do not say.")) == (None, None)
    assert m.citation_precision_recall(answer([], text="")) == (None, None)


def test_an_irrelevant_extra_citation_lowers_precision_only():
    a = answer([("Gallium is restricted.", [1, 3], {1: True, 3: False}), ("Japan objected.", [2], True)])
    assert m.citation_precision_recall(a) == (pytest.approx(2 / 3), 1.0)


# ---------------------------------------------------------------- abstention and latency

def test_abstention_scores():
    outcomes = [(True, False), (True, True), (False, False), (False, True)]
    assert m.abstention_scores(outcomes) == {"precision": 0.5, "recall": 0.5}
    assert m.abstention_scores([]) == {"precision": None, "recall": None}
    assert m.abstention_scores([(False, True)]) == {"precision": None, "recall": None}


def test_percentiles_and_latency_summary():
    assert m.percentile([], 50) is None
    assert m.percentile([7], 95) == 7
    assert m.percentile([40, 10, 30, 20], 50) == 25.0
    assert m.percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    assert m.latency_summary([]) == {"p50_ms": None, "p95_ms": None}
    assert m.mean([]) is None
    assert m.mean([True, None, False]) == 0.5


# ---------------------------------------------------------------- the seed eval set

def test_seed_evalset_loads_cleanly_and_has_the_required_mix():
    items, warnings = load_evalset(SEED_EVALSET)
    assert warnings == []
    assert len(items) >= 44
    unanswerable = [i for i in items if not i.answerable]
    assert len(unanswerable) / len(items) >= 0.30
    tags = [t for i in items for t in i.tags]
    for tag, least in (("paraphrase", 5), ("multi-passage", 5), ("follow-up", 5)):
        assert tags.count(tag) >= least, tag
    assert all(i.history for i in items if "follow-up" in i.tags)
    assert all(len(i.gold_quotes) >= 2 for i in items if "multi-passage" in i.tags)
    assert all(i.required_facts and i.gold_quotes for i in items if i.answerable)
    assert all(not i.required_facts and not i.gold_quotes for i in unanswerable)


def test_seed_gold_evidence_is_verbatim_in_the_article_and_facts_are_in_it():
    article = SEED_ARTICLE.read_text(encoding="utf-8")
    items, _ = load_evalset(SEED_EVALSET)
    assert [q for i in items for q in i.gold_quotes if q not in article] == []
    assert missing_gold_evidence(items, [article]) == []
    for item in items:
        evidence = " ".join(item.gold_quotes)
        for alternatives in item.required_facts:
            assert m.find_fact(evidence, alternatives), (item.id, alternatives)


# ---------------------------------------------------------------- loading bad input

GOOD = {"id": "a", "question": "Q?", "reference_answer": "R", "required_facts": [["r"]],
        "gold_evidence": ["quote"], "answerable": True}


def _jsonl(tmp_path: Path, lines: list) -> Path:
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


def test_malformed_lines_are_reported_with_their_line_numbers(tmp_path):
    missing = {k: v for k, v in GOOD.items() if k != "answerable"}
    path = _jsonl(tmp_path, [GOOD, "{not json", "", "[1, 2]", {**missing, "id": "c"},
                             {**GOOD, "id": "d", "required_facts": "July"}, {**GOOD, "id": "a"}])
    with pytest.raises(EvalSetError) as caught:
        load_evalset(path)
    message = str(caught.value)
    assert "line 2: malformed JSON" in message
    assert "line 4: expected a JSON object" in message
    assert "line 5: missing field 'answerable'" in message
    assert "line 6: field 'required_facts'" in message
    assert "line 7: duplicate id 'a' (first on line 1)" in message
    assert "line 1:" not in message and "line 3:" not in message


def test_unknown_fields_warn_but_load(tmp_path):
    items, warnings = load_evalset(_jsonl(tmp_path, [GOOD, {**GOOD, "id": "b", "qestion": "typo"}]))
    assert [i.id for i in items] == ["a", "b"]
    assert warnings == ["line 2: unknown field 'qestion' ignored"]


def test_loader_accepts_spans_history_and_bare_string_facts():
    line = {**GOOD, "required_facts": ["July 2023", ["gallium", "germanium"]],
            "gold_evidence": ["quote", {"start": 3, "end": 9, "source": "a.txt"}],
            "history": [["Earlier?", "Yes."]], "tags": ["follow-up"]}
    (item,), warnings = parse_evalset([json.dumps(line)])
    assert item.required_facts == [["July 2023"], ["gallium", "germanium"]]
    assert item.gold_quotes == ["quote"] and item.gold_spans == [GoldSpan(3, 9, "a.txt")]
    assert item.history == [("Earlier?", "Yes.")] and item.line == 1 and warnings == []


def test_missing_or_empty_eval_set_is_an_error(tmp_path):
    with pytest.raises(EvalSetError, match="not found"):
        load_evalset(tmp_path / "nope.jsonl")
    with pytest.raises(EvalSetError, match="no items"):
        load_evalset(_jsonl(tmp_path, ["", "  "]))


def test_gold_evidence_not_in_the_corpus_is_reported():
    items, _ = parse_evalset([json.dumps({**GOOD, "gold_evidence": ["Rare  metals", "absent words"]}),
                              json.dumps({**GOOD, "id": "b", "gold_evidence": [{"start": 0, "end": 999}]})])
    problems = missing_gold_evidence(items, lambda: ["China restricted rare metals."])
    assert len(problems) == 2
    assert "a (line 1): gold evidence not in the corpus: 'absent words'" in problems[0]
    assert "b (line 2)" in problems[1] and "[0, 999)" in problems[1]
    assert missing_gold_evidence([], []) == []


# ---------------------------------------------------------------- fake assistants and the runner

DOC = ("Gallium is restricted since July 2023. "
       "The restriction answers chip equipment curbs. "
       "Tokyo hosted the fifth dialogue.")


class FakeAssistant:
    """Answers from a script; retrieval ranks the three sentences of DOC by shared words."""

    def __init__(self, script: dict[str, str | None], unsupported: bool = False, top_k_one: bool = False):
        self.script, self.unsupported, self.top_k_one = script, unsupported, top_k_one
        self.retrieved_for: list[str] = []

    def retrieve(self, question: str, k: int = 10) -> list[Citation]:
        self.retrieved_for.append(question)
        words = set(re.findall(r"\w+", question.lower()))
        spans = [(mt.start(), mt.end()) for mt in re.finditer(r"[^.]+\.", DOC)]
        ranked = sorted(spans, key=lambda s: -len(words & set(re.findall(r"\w+", DOC[s[0]:s[1]].lower()))))
        ranked = ranked[-1:] if self.top_k_one else ranked  # a broken retriever: the worst passage only
        return [passage(DOC[s:e].strip(), start=s, number=n) for n, (s, e) in enumerate(ranked[:k], start=1)]

    def ask(self, question: str, history=None) -> Answer:
        if question == "boom":
            raise QuestionError("The question is unusable.")
        standalone = f"{question} {history[-1][0]}" if history else question
        text = self.script.get(question)
        if text is None:
            return Answer(text="The documents do not answer this.", abstained=True, question=question,
                          standalone_question=standalone, answerer="fake")
        ok = not self.unsupported
        cited = [passage("p", number=1, supported=ok)]
        return Answer(text=f"{text} [1].", citations=cited, sources=cited, question=question,
                      standalone_question=standalone, answerer="fake",
                      sentences=[SentenceCheck(f"{text} [1].", [1], 1.0 if ok else 0.0, ok, {1: ok})])


ITEMS = [
    {"id": "when", "question": "When was gallium restricted?", "reference_answer": "July 2023",
     "required_facts": [["July 2023"]], "gold_evidence": ["Gallium is restricted since July 2023"],
     "answerable": True},
    {"id": "why", "question": "Why the restriction?", "reference_answer": "Chip curbs",
     "required_facts": [["curbs"]], "gold_evidence": ["answers chip equipment curbs"], "answerable": True},
    {"id": "where", "question": "And where was it?", "history": [["Which dialogue was hosted?", "The fifth."]],
     "reference_answer": "Tokyo", "required_facts": [["Tokyo"]], "gold_evidence": ["Tokyo hosted"],
     "answerable": True},
    {"id": "who", "question": "Who led the delegation?", "reference_answer": "Not said",
     "required_facts": [], "gold_evidence": [], "answerable": False},
]
SCRIPT = {"When was gallium restricted?": "Since July 2023", "Why the restriction?": "It answers chip curbs",
          "And where was it?": "Tokyo hosted it"}


def _items() -> list[EvalItem]:
    return parse_evalset([json.dumps(i) for i in ITEMS])[0]


def test_run_eval_scores_each_question_and_reports_progress():
    seen = []
    assistant = FakeAssistant(SCRIPT)
    result = run_eval(assistant, _items(), k=2, progress=lambda done, total, row: seen.append((done, total, row.id)))
    assert seen == [(1, 4, "when"), (2, 4, "why"), (3, 4, "where"), (4, 4, "who")]
    rows = {r.id: r for r in result.rows}
    assert all(r.passed for r in rows.values())
    assert rows["when"].facts_found == ["July 2023"] and rows["when"].rank == 1
    assert rows["who"].abstained and rows["who"].hit is None and rows["who"].citation_precision is None
    # A follow-up is retrieved with the standalone question the assistant produced.
    assert "And where was it? Which dialogue was hosted?" in assistant.retrieved_for
    metrics = result.metrics
    assert (metrics["pass_rate"], metrics["answer_correctness"], metrics["citation_recall"]) == (1.0, 1.0, 1.0)
    assert (metrics["abstention_precision"], metrics["abstention_recall"]) == (1.0, 1.0)
    assert metrics["unanswerable"] == 1 and result.meta["answerer"] == "fake"
    assert set(result.timings["per_question"]) == {"when", "why", "where", "who"}


def test_refused_question_fails_without_stopping_the_run():
    items = parse_evalset([json.dumps({**ITEMS[0], "id": "bad", "question": "boom"}), json.dumps(ITEMS[0])])[0]
    result = run_eval(FakeAssistant(SCRIPT), items, k=2)
    bad, good = result.rows
    assert not bad.passed and "unusable" in bad.error and bad.facts_missing == ["July 2023"]
    assert good.passed


def test_two_runs_are_identical_apart_from_timings():
    first = run_eval(FakeAssistant(SCRIPT), _items(), k=2).to_dict(include_timings=False)
    second = run_eval(FakeAssistant(SCRIPT), _items(), k=2).to_dict(include_timings=False)
    assert first == second and "timings" not in first


def test_aggregate_of_no_rows():
    metrics = aggregate([])
    assert metrics["questions"] == 0 and metrics["pass_rate"] is None and metrics["abstention_recall"] is None


# ---------------------------------------------------------------- baseline comparison

def _baseline(tmp_path: Path) -> dict:
    return load_baseline(save_baseline(run_eval(FakeAssistant(SCRIPT), _items(), k=2), tmp_path / "base.json"))


def test_identical_run_has_no_regressions(tmp_path):
    comparison = compare_to_baseline(run_eval(FakeAssistant(SCRIPT), _items(), k=2), _baseline(tmp_path))
    assert comparison.regressions == []
    assert set(comparison.changes.values()) == {"same"}


def test_a_metric_drop_beyond_tolerance_is_a_regression(tmp_path):
    degraded = run_eval(FakeAssistant(SCRIPT, unsupported=True), _items(), k=2)
    regressions = compare_to_baseline(degraded, _baseline(tmp_path)).regressions
    names = {r.name for r in regressions if r.kind == "metric"}
    assert {"citation_precision", "citation_recall"} <= names
    detail = next(r.detail for r in regressions if r.name == "citation_recall")
    assert detail == "citation_recall: 1.000 -> 0.000 (-1.000, tolerance 0.020)"
    # The answers still contain their facts, so no question went pass -> fail.
    assert not [r for r in regressions if r.kind == "question"]


def test_a_drop_within_tolerance_is_not_a_regression(tmp_path):
    degraded = run_eval(FakeAssistant(SCRIPT, unsupported=True), _items(), k=2)
    loose = {**DEFAULT_TOLERANCES, "citation_precision": 1.0, "citation_recall": 1.0}
    assert compare_to_baseline(degraded, _baseline(tmp_path), loose).regressions == []


def test_a_question_going_from_pass_to_fail_is_reported_with_how(tmp_path):
    script = {**SCRIPT, "When was gallium restricted?": "Some time ago", "And where was it?": None}
    comparison = compare_to_baseline(run_eval(FakeAssistant(script), _items(), k=2), _baseline(tmp_path))
    failed = {r.name: r.detail for r in comparison.regressions if r.kind == "question"}
    assert failed["when"] == "when: pass -> fail (facts now missing: 'July 2023')"
    assert "abstained although answerable" in failed["where"]
    assert comparison.changes["when"] == "pass -> FAIL" and comparison.changes["why"] == "same"
    assert any(r.name == "answer_correctness" for r in comparison.regressions)


def test_a_broken_retriever_is_caught(tmp_path):
    degraded = run_eval(FakeAssistant(SCRIPT, top_k_one=True), _items(), k=2)
    comparison = compare_to_baseline(degraded, _baseline(tmp_path))
    assert {"hit_at_k", "mrr"} <= {r.name for r in comparison.regressions}
    assert "gold evidence no longer retrieved" in comparison.changes["when"]


def test_added_and_removed_questions_are_not_regressions(tmp_path):
    baseline = _baseline(tmp_path)
    extra = {**ITEMS[0], "id": "new", "question": "A new hard question?"}
    items = parse_evalset([json.dumps(i) for i in ITEMS[1:] + [extra]])[0]
    comparison = compare_to_baseline(run_eval(FakeAssistant(SCRIPT), items, k=2), baseline)
    assert comparison.regressions == []
    assert comparison.changes["new"] == "new"
    assert any("when" in note for note in comparison.notes)


def test_another_k_skips_retrieval_metrics_with_a_note(tmp_path):
    comparison = compare_to_baseline(run_eval(FakeAssistant(SCRIPT, top_k_one=True), _items(), k=3),
                                     _baseline(tmp_path))
    assert not {"hit_at_k", "mrr", "evidence_recall"} & {r.name for r in comparison.regressions}
    assert any("k=2" in note for note in comparison.notes)


def test_bad_baselines_are_clear_errors(tmp_path):
    with pytest.raises(EvalSetError, match="--update-baseline"):
        load_baseline(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(EvalSetError, match="Cannot read baseline"):
        load_baseline(tmp_path / "bad.json")
    (tmp_path / "old.json").write_text(json.dumps({"format": 0, "rows": []}))
    with pytest.raises(EvalSetError, match="format"):
        load_baseline(tmp_path / "old.json")


# ---------------------------------------------------------------- the one-call gate and its report

def test_evaluate_and_report_end_to_end(tmp_path):
    evalset = _jsonl(tmp_path, ITEMS)
    baseline, reports = tmp_path / "baseline.json", tmp_path / "reports"
    _, regressions = evaluate_and_report(FakeAssistant(SCRIPT), evalset, baseline, update_baseline=True, k=2,
                                         documents=[DOC])
    assert regressions == [] and "timings" not in json.loads(baseline.read_text())

    result, regressions = evaluate_and_report(FakeAssistant(SCRIPT), evalset, baseline, reports, k=2,
                                              documents=[DOC])
    assert regressions == [] and result.warnings == []
    report = (reports / "report.md").read_text()
    assert "**PASS**" in report and report.count("| pass |") == 4
    assert "timings" in json.loads((reports / "results.json").read_text())

    script = {**SCRIPT, "Why the restriction?": "No idea"}
    _, regressions = evaluate_and_report(FakeAssistant(script), evalset, baseline, reports, k=2, documents=[DOC])
    assert [r.name for r in regressions if r.kind == "question"] == ["why"]
    report = (reports / "report.md").read_text()
    assert "**FAIL**" in report and "| why | **FAIL** |" in report and "pass -> FAIL" in report
    saved = json.loads((reports / "results.json").read_text())
    assert saved["comparison"]["regressions"]


def test_evaluate_and_report_reports_gold_evidence_missing_from_the_corpus(tmp_path):
    result, _ = evaluate_and_report(FakeAssistant(SCRIPT), _jsonl(tmp_path, ITEMS), k=2, documents=["unrelated"])
    assert len(result.warnings) == 3 and "gold evidence not in the corpus" in result.warnings[0]


def test_updating_a_baseline_needs_a_path(tmp_path):
    with pytest.raises(EvalSetError, match="baseline path"):
        evaluate_and_report(FakeAssistant(SCRIPT), _jsonl(tmp_path, ITEMS), update_baseline=True, k=2,
                            documents=[DOC])


def test_markdown_report_without_baseline_escapes_table_cells():
    items = parse_evalset([json.dumps({**ITEMS[0], "id": "a|b"})])[0]
    report = render_markdown(run_eval(FakeAssistant(SCRIPT), items, k=2))
    assert "No baseline given" in report and "| a\\|b | pass |" in report
    assert "## Overall" in report and "## Latency (reported, not gated)" in report
