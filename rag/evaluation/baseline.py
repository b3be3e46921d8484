"""Compare a run with a saved baseline: metric drops beyond tolerance and questions that went pass -> fail.

Both sides are re-aggregated over the questions they share (same id and question text), so adding
or removing eval items never reads as a regression. Latency is reported but never gated: timings
are noisy. Example: ``comparison = compare_to_baseline(result, load_baseline("evals/baseline.json"))``
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EvalSetError
from .runner import RESULT_FORMAT, EvalResult, QuestionRow, aggregate

# Largest allowed drop per gated metric (absolute, on a 0..1 scale). Counts and latency are not gated.
DEFAULT_TOLERANCES: dict[str, float] = {
    "pass_rate": 0.02,
    "answer_correctness": 0.02,
    "fact_recall": 0.02,
    "hit_at_k": 0.02,
    "mrr": 0.02,
    "evidence_recall": 0.02,
    "citation_precision": 0.02,
    "citation_recall": 0.02,
    "abstention_precision": 0.02,
    "abstention_recall": 0.02,
}
RETRIEVAL_METRICS = ("hit_at_k", "mrr", "evidence_recall")


@dataclass
class Regression:
    """One way the run got worse: ``kind`` is "metric" or "question"; ``name`` the metric or question id."""

    kind: str
    name: str
    detail: str
    baseline: float | None = None
    current: float | None = None


@dataclass
class Comparison:
    """Regressions (gate fails when non-empty), per-question change notes, metric deltas and notes."""

    regressions: list[Regression] = field(default_factory=list)
    changes: dict[str, str] = field(default_factory=dict)
    deltas: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    source: str = ""


def load_baseline(path: str | Path) -> dict:
    """Read a baseline JSON written by ``save_baseline``; raise EvalSetError when unusable.

    Example: ``load_baseline("evals/baseline.json")["metrics"]``
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalSetError(f"No baseline at {path}; create one with --update-baseline.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvalSetError(f"Cannot read baseline {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise EvalSetError(f"Baseline {path} has no 'rows'; recreate it with --update-baseline.")
    if data.get("format") != RESULT_FORMAT:
        raise EvalSetError(f"Baseline {path} has format {data.get('format')!r}, expected {RESULT_FORMAT}; "
                           "recreate it with --update-baseline.")
    return data


def save_baseline(result: EvalResult, path: str | Path) -> Path:
    """Write the run's deterministic part (no timings) as the new baseline. Example: ``save_baseline(r, p)``"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(include_timings=False), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return path


def compare_to_baseline(result: EvalResult, baseline: dict,
                        tolerances: dict[str, float] | None = None) -> Comparison:
    """Find metric drops beyond tolerance and pass -> fail questions, over the shared questions.

    Example: ``[r.detail for r in compare_to_baseline(result, baseline).regressions]``
    """
    tolerances = DEFAULT_TOLERANCES if tolerances is None else tolerances
    old_rows = {row["id"]: QuestionRow.from_dict(row) for row in baseline.get("rows", [])}
    comparison = Comparison()
    shared_new, shared_old = _shared_rows(result.rows, old_rows, comparison)
    same_k = baseline.get("k") == result.k
    if not same_k:
        comparison.notes.append(f"baseline used k={baseline.get('k')}, this run k={result.k}: "
                                "retrieval metrics not compared")
    _compare_metrics(aggregate(shared_new), aggregate(shared_old), tolerances, same_k, comparison)
    for new, old in zip(shared_new, shared_old):
        change, worse = describe_change(new, old, same_k)
        comparison.changes[new.id] = change
        if old.passed and not new.passed:
            comparison.regressions.append(Regression("question", new.id, f"{new.id}: pass -> fail ({worse})"))
    return comparison


def _shared_rows(rows: list[QuestionRow], old_rows: dict[str, QuestionRow],
                 comparison: Comparison) -> tuple[list[QuestionRow], list[QuestionRow]]:
    shared_new, shared_old = [], []
    for row in rows:
        old = old_rows.get(row.id)
        if old is None:
            comparison.changes[row.id] = "new"
        elif (old.question, old.history) != (row.question, row.history):
            comparison.changes[row.id] = "changed question (not compared)"
        else:
            shared_new.append(row)
            shared_old.append(old)
    dropped = sorted(set(old_rows) - {r.id for r in rows})
    if dropped:
        comparison.notes.append(f"{len(dropped)} baseline question(s) not in this run: {', '.join(dropped)}")
    return shared_new, shared_old


def _compare_metrics(new: dict, old: dict, tolerances: dict[str, float], same_k: bool,
                     comparison: Comparison) -> None:
    for name, tolerance in tolerances.items():
        before, after = old.get(name), new.get(name)
        comparison.deltas[name] = (before, after)
        if before is None or (name in RETRIEVAL_METRICS and not same_k):
            continue
        if after is None:
            comparison.regressions.append(Regression("metric", name, f"{name}: {before:.3f} -> n/a", before, None))
        elif before - after > tolerance + 1e-9:
            # The epsilon keeps float noise in re-aggregated means from tripping an exact-tolerance drop.
            comparison.regressions.append(Regression(
                "metric", name, f"{name}: {before:.3f} -> {after:.3f} "
                f"(-{before - after:.3f}, tolerance {tolerance:.3f})", before, after))


def describe_change(new: QuestionRow, old: QuestionRow, same_k: bool = True) -> tuple[str, str]:
    """(short verdict, what got worse) for one question versus its baseline row.

    Example: ``describe_change(row, old_row) == ("pass -> FAIL", "abstained although answerable")``
    """
    worse = _worsened(new, old, same_k)
    text = "; ".join(worse) if worse else "no change in scores"
    if old.passed and not new.passed:
        return "pass -> FAIL", text
    if not old.passed and new.passed:
        return "fail -> pass", text if worse else "fixed"
    return ("worse: " + text if worse else "same"), text


def _worsened(new: QuestionRow, old: QuestionRow, same_k: bool) -> list[str]:
    notes = []
    if new.error and not old.error:
        notes.append(f"error: {new.error}")
    if new.abstained != old.abstained and new.abstained == new.answerable:
        notes.append("abstained although answerable" if new.abstained else "answered although unanswerable")
    lost = [f for f in old.facts_found if f not in new.facts_found]
    if new.facts_missing and (lost or len(new.facts_missing) > len(old.facts_missing)):
        notes.append("facts now missing: " + ", ".join(repr(f) for f in new.facts_missing))
    if same_k and old.hit and not new.hit:
        notes.append(f"gold evidence no longer retrieved (rank {old.rank} -> none)")
    elif same_k and old.rank and new.rank and new.rank > old.rank:
        notes.append(f"gold evidence ranked lower ({old.rank} -> {new.rank})")
    for name in ("citation_precision", "citation_recall"):
        before, after = getattr(old, name), getattr(new, name)
        # An answer that became an abstention has no citations; the abstention note covers it.
        if before is not None and after is not None and after < before:
            notes.append(f"{name.replace('_', ' ')} {before:.2f} -> {after:.2f}")
    return notes

