"""Evaluation: eval sets, deterministic metrics, the runner, baseline comparison and reports.

Example: ``result, regressions = evaluate_and_report(assistant, "evals/seed.jsonl", "evals/baseline.json")``
"""
from .baseline import (DEFAULT_TOLERANCES, Comparison, Regression, compare_to_baseline, load_baseline,
                       save_baseline)
from .evalset import EvalItem, load_evalset, missing_gold_evidence, parse_evalset
from .gate import corpus_texts, evaluate_and_report
from .report import render_markdown, write_report
from .runner import EvalResult, QuestionRow, aggregate, run_eval, score_item

__all__ = [
    "DEFAULT_TOLERANCES", "Comparison", "EvalItem", "EvalResult", "QuestionRow", "Regression", "aggregate",
    "compare_to_baseline", "corpus_texts", "evaluate_and_report", "load_baseline", "load_evalset",
    "missing_gold_evidence", "parse_evalset", "render_markdown", "run_eval", "save_baseline", "score_item",
    "write_report",
]
