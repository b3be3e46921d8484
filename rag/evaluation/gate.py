"""One call for `rag eval`: load the eval set, run it, compare with the baseline, write the report.

Example: ``result, regressions = evaluate_and_report(assistant, "evals/seed.jsonl", "evals/baseline.json")``
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import EvalSetError
from .baseline import Regression, compare_to_baseline, load_baseline, save_baseline
from .evalset import load_evalset, missing_gold_evidence
from .report import write_report
from .runner import EvalResult, QuestionRow, run_eval

DEFAULT_K = 5


def evaluate_and_report(
    assistant,
    evalset_path: str | Path,
    baseline_path: str | Path | None = None,
    report_dir: str | Path | None = None,
    update_baseline: bool = False,
    progress: Callable[[int, int, QuestionRow], None] | None = None,
    k: int | None = None,
    documents: Iterable[str] | Callable[[], Iterable[str]] | None = None,
    tolerances: dict[str, float] | None = None,
) -> tuple[EvalResult, list[Regression]]:
    """Run the gate; return the result and its regressions against the baseline (empty: the gate passes).

    ``k`` defaults to the assistant's ``settings.top_k``. ``documents`` (texts, or a function returning
    them) is the corpus that gold evidence is checked against; by default the assistant's index
    documents. With ``update_baseline`` the run is still compared with the old baseline (for the
    report and the returned regressions), then written as the new one.
    Example: ``evaluate_and_report(assistant, "evals/seed.jsonl", report_dir="reports/eval")``
    """
    items, warnings = load_evalset(evalset_path)
    corpus = documents if documents is not None else corpus_texts(assistant)
    if corpus is not None:
        warnings += missing_gold_evidence(items, corpus)
    k = k or getattr(getattr(assistant, "settings", None), "top_k", None) or DEFAULT_K
    result = run_eval(assistant, items, k=k, progress=progress)
    result.warnings = warnings
    result.meta["evalset"] = str(evalset_path)
    comparison = None
    if baseline_path is not None and (not update_baseline or Path(baseline_path).exists()):
        comparison = compare_to_baseline(result, load_baseline(baseline_path), tolerances)
        comparison.source = str(baseline_path)
    if update_baseline:
        if baseline_path is None:
            raise EvalSetError("Updating the baseline needs a baseline path (--baseline FILE).")
        save_baseline(result, baseline_path)
    if report_dir is not None:
        write_report(result, report_dir, comparison, tolerances)
    return result, comparison.regressions if comparison else []


def corpus_texts(assistant) -> list[str] | None:
    """Texts of the documents in the assistant's index, or None when it does not expose them.

    Example: ``missing_gold_evidence(items, corpus_texts(assistant))``
    """
    # Duck-typed so the eval package stays independent of the index classes.
    index = getattr(assistant, "index", None)
    documents = getattr(index, "documents", None)
    if documents is None:
        return None
    values = documents.values() if hasattr(documents, "values") else documents
    return [doc.text for doc in values if isinstance(getattr(doc, "text", None), str)]
