"""Run an eval set against an assistant: one scored row per question, then overall metrics.

Per item the runner calls ``assistant.ask(question, history=...)`` and then
``assistant.retrieve(answer.standalone_question or question, k)``: retrieval is measured on the
standalone question the assistant itself produced, so a follow-up ("and when did that start?")
is judged on the passages its condensed form retrieves, as answering would. Latencies live in
``EvalResult.timings`` only; everything else is deterministic for a given index and settings.

Example: ``result = run_eval(assistant, items, k=5); result.metrics["answer_correctness"]``
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from ..errors import RagError
from . import metrics as m
from .evalset import EvalItem

RESULT_FORMAT = 1


@dataclass
class QuestionRow:
    """Scores for one question; ``passed`` is the per-question verdict the gate tracks."""

    id: str
    question: str
    answerable: bool
    passed: bool
    abstained: bool
    history: list[list[str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    facts_total: int = 0
    facts_found: list[str] = field(default_factory=list)
    facts_missing: list[str] = field(default_factory=list)
    fact_recall: float | None = None
    hit: bool | None = None
    rank: int | None = None
    reciprocal_rank: float | None = None
    evidence_recall: float | None = None
    citation_precision: float | None = None
    citation_recall: float | None = None
    n_citations: int = 0
    answer: str = ""
    standalone_question: str = ""
    retrieved: list[str] = field(default_factory=list)
    error: str | None = None

    @classmethod
    def from_dict(cls, data: dict) -> QuestionRow:
        """Rebuild a row from results/baseline JSON, ignoring keys this version does not know."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class EvalResult:
    """Rows, overall metrics (gated), warnings, and timings (reported, never compared)."""

    rows: list[QuestionRow]
    metrics: dict[str, float | int | None]
    k: int
    warnings: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def to_dict(self, include_timings: bool = True) -> dict:
        """JSON shape of results files; without timings it is the baseline shape (identical across runs)."""
        data = {"format": RESULT_FORMAT, "k": self.k, "meta": self.meta, "metrics": self.metrics,
                "warnings": self.warnings, "rows": [asdict(r) for r in self.rows]}
        if include_timings:
            data["timings"] = self.timings
        return data


def run_eval(assistant, items: Sequence[EvalItem], k: int = 5,
             progress: Callable[[int, int, QuestionRow], None] | None = None) -> EvalResult:
    """Ask every item, score it, and aggregate; ``progress(done, total, row)`` after each question.

    Example: ``run_eval(assistant, items, k=5, progress=lambda d, n, row: print(d, n, row.id))``
    """
    rows, per_question = [], {}
    answerers: set[str] = set()
    for done, item in enumerate(items, start=1):
        row, timing, answerer = _run_item(assistant, item, k)
        rows.append(row)
        per_question[item.id] = timing
        if answerer:
            answerers.add(answerer)
        if progress:
            progress(done, len(items), row)
    return EvalResult(rows=rows, metrics=aggregate(rows), k=k, timings=_timings(per_question),
                      meta={"answerer": ", ".join(sorted(answerers))})


def _run_item(assistant, item: EvalItem, k: int) -> tuple[QuestionRow, dict, str]:
    timing: dict[str, float] = {}
    try:
        started = time.perf_counter()
        answer = assistant.ask(item.question, history=list(item.history) or None)
        timing["ask_ms"] = _ms(started)
        started = time.perf_counter()
        passages = assistant.retrieve(answer.standalone_question or item.question, k)
        timing["retrieve_ms"] = _ms(started)
    except RagError as exc:
        # A question the assistant refuses is a failed question, not a crashed run.
        return _error_row(item, str(exc)), timing, ""
    return score_item(item, answer, list(passages)[:k], k), timing, getattr(answer, "answerer", "")


def score_item(item: EvalItem, answer, passages: Sequence, k: int) -> QuestionRow:
    """Score one answer and its ranked passages against the item (pure; no assistant needed).

    Example: ``score_item(item, Answer(text="July 2023 [1]."), passages, k=5).passed``
    """
    found = m.facts_found(answer.text, item.required_facts) if item.answerable else []
    precision, recall = m.citation_precision_recall(answer)
    rank = m.first_hit_rank(passages[:k], item.gold_quotes, item.gold_spans)
    has_gold = bool(item.gold_quotes or item.gold_spans)
    return QuestionRow(
        id=item.id, question=item.question, answerable=item.answerable,
        passed=_passed(item, answer.abstained, found), abstained=bool(answer.abstained),
        history=[list(t) for t in item.history], tags=list(item.tags),
        facts_total=len(found), facts_found=[f for f in found if f is not None],
        facts_missing=[alts[0] for alts, f in zip(item.required_facts, found) if f is None],
        fact_recall=m.fact_recall(found),
        hit=(rank is not None) if has_gold else None, rank=rank,
        reciprocal_rank=m.reciprocal_rank(passages, item.gold_quotes, item.gold_spans, k),
        evidence_recall=m.evidence_recall(passages, item.gold_quotes, item.gold_spans, k),
        citation_precision=precision, citation_recall=recall, n_citations=len(answer.citations),
        answer=answer.text, standalone_question=answer.standalone_question or item.question,
        retrieved=[_passage_ref(p) for p in passages],
    )


def _passed(item: EvalItem, abstained: bool, found: list[str | None]) -> bool:
    # Answerable: answer given and every required fact present. Unanswerable: the assistant abstained.
    if not item.answerable:
        return bool(abstained)
    return not abstained and all(f is not None for f in found)


def _error_row(item: EvalItem, message: str) -> QuestionRow:
    return QuestionRow(id=item.id, question=item.question, answerable=item.answerable, passed=False,
                       abstained=False, history=[list(t) for t in item.history], tags=list(item.tags),
                       facts_total=len(item.required_facts) if item.answerable else 0,
                       facts_missing=[alts[0] for alts in item.required_facts] if item.answerable else [],
                       error=message)


def _passage_ref(passage) -> str:
    return f"{getattr(passage, 'source', '') or getattr(passage, 'doc_id', '')}:{passage.start}-{passage.end}"


def aggregate(rows: Sequence[QuestionRow]) -> dict[str, float | int | None]:
    """Overall metrics from rows (so a baseline can be re-aggregated over shared questions).

    Example: ``aggregate(result.rows)["pass_rate"]``
    """
    answerable = [r for r in rows if r.answerable]
    abstention = m.abstention_scores([(r.abstained, r.answerable) for r in rows])
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(rows) - len(answerable),
        "pass_rate": m.mean([r.passed for r in rows]),
        "answer_correctness": m.mean([r.passed for r in answerable]),
        "fact_recall": m.mean([r.fact_recall for r in answerable]),
        "hit_at_k": m.mean([r.hit for r in rows]),
        "mrr": m.mean([r.reciprocal_rank for r in rows]),
        "evidence_recall": m.mean([r.evidence_recall for r in rows]),
        "citation_precision": m.mean([r.citation_precision for r in rows]),
        "citation_recall": m.mean([r.citation_recall for r in rows]),
        "abstention_precision": abstention["precision"],
        "abstention_recall": abstention["recall"],
    }


def _timings(per_question: dict[str, dict]) -> dict:
    ask = [t["ask_ms"] for t in per_question.values() if "ask_ms" in t]
    retrieve = [t["retrieve_ms"] for t in per_question.values() if "retrieve_ms" in t]
    ask_summary, retrieve_summary = m.latency_summary(ask), m.latency_summary(retrieve)
    return {"ask_p50_ms": ask_summary["p50_ms"], "ask_p95_ms": ask_summary["p95_ms"],
            "retrieve_p50_ms": retrieve_summary["p50_ms"], "retrieve_p95_ms": retrieve_summary["p95_ms"],
            "per_question": per_question}


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)
