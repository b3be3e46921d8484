"""Results JSON and a readable Markdown report: verdict, overall table with baseline deltas, a row per question.

Example: ``write_report(result, Path("reports/eval"), comparison)`` writes ``results.json`` and ``report.md``.
"""
from __future__ import annotations

import json
from pathlib import Path

from .baseline import DEFAULT_TOLERANCES, Comparison
from .runner import EvalResult, QuestionRow

METRIC_LABELS = {
    "pass_rate": "questions passed",
    "answer_correctness": "answer correctness (answerable)",
    "fact_recall": "required facts found",
    "hit_at_k": "retrieval hit@k",
    "mrr": "retrieval MRR",
    "evidence_recall": "gold evidence recall@k",
    "citation_precision": "citation precision",
    "citation_recall": "citation recall",
    "abstention_precision": "abstention precision",
    "abstention_recall": "abstention recall",
}


def write_report(result: EvalResult, report_dir: str | Path, comparison: Comparison | None = None,
                 tolerances: dict[str, float] | None = None) -> tuple[Path, Path]:
    """Write ``results.json`` (with timings) and ``report.md``; return both paths.

    Example: ``json_path, md_path = write_report(result, "reports/eval")``
    """
    folder = Path(report_dir)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "results.json", folder / "report.md"
    data = result.to_dict()
    if comparison is not None:
        data["comparison"] = comparison_to_dict(comparison)
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(result, comparison, tolerances), encoding="utf-8")
    return json_path, md_path


def comparison_to_dict(comparison: Comparison) -> dict:
    """JSON shape of a comparison. Example: ``comparison_to_dict(c)["regressions"][0]["detail"]``"""
    return {
        "regressions": [vars(r) for r in comparison.regressions],
        "changes": comparison.changes,
        "deltas": {k: {"baseline": b, "current": c} for k, (b, c) in comparison.deltas.items()},
        "notes": comparison.notes,
        "baseline": comparison.source,
    }


def render_markdown(result: EvalResult, comparison: Comparison | None = None,
                    tolerances: dict[str, float] | None = None) -> str:
    """The whole report as Markdown. Example: ``print(render_markdown(result))``"""
    tolerances = DEFAULT_TOLERANCES if tolerances is None else tolerances
    parts = [_header(result, comparison), _overall(result, comparison, tolerances), _latency(result),
             _questions(result, comparison), _failures(result), _listed("Warnings", result.warnings)]
    if comparison is not None:
        parts.append(_listed("Comparison notes", comparison.notes))
    return "\n".join(p for p in parts if p)


def _header(result: EvalResult, comparison: Comparison | None) -> str:
    meta = result.meta
    lines = ["# Eval report", "",
             f"Eval set `{meta.get('evalset', '?')}`: {result.metrics['questions']} questions "
             f"({result.metrics['answerable']} answerable, {result.metrics['unanswerable']} unanswerable), "
             f"k={result.k}, answerer `{meta.get('answerer') or '?'}`.", ""]
    if comparison is None:
        lines.append("No baseline given: nothing gated.")
    elif comparison.regressions:
        lines.append(f"**FAIL**: {len(comparison.regressions)} regression(s) against baseline "
                     f"`{comparison.source or '?'}`:")
        lines += [""] + [f"- {r.detail}" for r in comparison.regressions]
    else:
        lines.append(f"**PASS**: no regressions against baseline `{comparison.source or '?'}`.")
    return "\n".join(lines) + "\n"


def _overall(result: EvalResult, comparison: Comparison | None, tolerances: dict[str, float]) -> str:
    lines = ["## Overall", "", "| metric | value | baseline | change | tolerance |", "|---|---|---|---|---|"]
    for name, label in METRIC_LABELS.items():
        value = result.metrics.get(name)
        before = comparison.deltas.get(name, (None, None))[0] if comparison else None
        tolerance = f"-{tolerances[name]:.2f}" if name in tolerances else "not gated"
        lines.append(f"| {label} | {_num(value)} | {_num(before)} | {_delta(before, value)} | {tolerance} |")
    if comparison is not None:
        lines += ["", "Baseline values are over the questions both runs share."]
    return "\n".join(lines) + "\n"


def _latency(result: EvalResult) -> str:
    t = result.timings
    if not t:
        return ""
    return "\n".join([
        "## Latency (reported, not gated)", "", "| step | p50 ms | p95 ms |", "|---|---|---|",
        f"| ask | {_num(t.get('ask_p50_ms'), 1)} | {_num(t.get('ask_p95_ms'), 1)} |",
        f"| retrieve | {_num(t.get('retrieve_p50_ms'), 1)} | {_num(t.get('retrieve_p95_ms'), 1)} |",
    ]) + "\n"


def _questions(result: EvalResult, comparison: Comparison | None) -> str:
    lines = ["## Questions", "",
             "| id | result | facts | hit@k (rank) | abstained / expected | citation P / R | vs baseline |",
             "|---|---|---|---|---|---|---|"]
    for row in result.rows:
        change = comparison.changes.get(row.id, "") if comparison else ""
        lines.append(f"| {_cell(row.id)} | {'pass' if row.passed else '**FAIL**'} | {_facts(row)} | {_hit(row)} "
                     f"| {_yes(row.abstained)} / {_yes(not row.answerable)} "
                     f"| {_num(row.citation_precision)} / {_num(row.citation_recall)} | {_cell(change)} |")
    return "\n".join(lines) + "\n"


def _failures(result: EvalResult) -> str:
    failed = [r for r in result.rows if not r.passed]
    if not failed:
        return ""
    lines = ["## Failed questions", ""]
    for row in failed:
        lines.append(f"- **{row.id}**: {row.question}")
        if row.error:
            lines.append(f"  - error: {row.error}")
        if row.facts_missing:
            lines.append("  - missing facts: " + ", ".join(repr(f) for f in row.facts_missing))
        expected = "an answer" if row.answerable else "an abstention"
        lines.append(f"  - expected {expected}; got: {_quote(row.answer)}")
    return "\n".join(lines) + "\n"


def _listed(title: str, items: list[str]) -> str:
    return f"## {title}\n\n" + "\n".join(f"- {_cell(i)}" for i in items) + "\n" if items else ""


def _facts(row: QuestionRow) -> str:
    return f"{len(row.facts_found)}/{row.facts_total}" if row.facts_total else "-"


def _hit(row: QuestionRow) -> str:
    if row.hit is None:
        return "-"
    return f"yes ({row.rank})" if row.hit else "no"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _num(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _delta(before, after) -> str:
    if before is None or after is None:
        return ""
    return f"{after - before:+.3f}"


def _cell(text: str) -> str:
    # Pipes and newlines would break the Markdown table.
    return text.replace("|", "\\|").replace("\n", " ")


def _quote(text: str, limit: int = 300) -> str:
    text = _cell(text or "(empty)")
    return text if len(text) <= limit else text[: limit - 1] + "…"
