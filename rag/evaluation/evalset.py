"""Eval set loading: a JSONL file of questions with reference answers, required facts and gold evidence.

One JSON object per line::

    {"id": "direct-03", "question": "When did China impose the rare metals controls?",
     "reference_answer": "In July 2023.", "required_facts": [["July 2023"]],
     "gold_evidence": ["China imposed the rare metals controls in July 2023"], "answerable": true}

Optional: ``history`` (``[[question, answer], ...]``, oldest first) and ``tags`` (labels such as
"paraphrase" for the report). ``gold_evidence`` entries are exact quotes or ``{"start", "end",
"source"?}`` character spans. Example: ``items, warnings = load_evalset("evals/seed.jsonl")``
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EvalSetError
from ..text import normalise
from .metrics import GoldSpan

REQUIRED_FIELDS = ("id", "question", "reference_answer", "required_facts", "gold_evidence", "answerable")
OPTIONAL_FIELDS = ("history", "tags")
# Enough to locate the problems without burying the message.
_MAX_LISTED = 20


@dataclass
class EvalItem:
    """One eval question. ``required_facts[i]`` lists alternatives; any one of them satisfies fact i."""

    id: str
    question: str
    reference_answer: str
    required_facts: list[list[str]]
    gold_quotes: list[str]
    gold_spans: list[GoldSpan]
    answerable: bool
    history: list[tuple[str, str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    line: int = 0


def load_evalset(path: str | Path) -> tuple[list[EvalItem], list[str]]:
    """Read and validate an eval set; return ``(items, warnings)``; raise EvalSetError listing bad lines.

    Example: ``items, warnings = load_evalset("evals/seed.jsonl")``
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EvalSetError(f"Eval set not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalSetError(f"Cannot read eval set {path}: {exc}") from None
    return parse_evalset(text.splitlines(), name=str(path))


def parse_evalset(lines: Iterable[str], name: str = "eval set") -> tuple[list[EvalItem], list[str]]:
    """Validate JSONL lines (blank lines skipped); errors name their 1-based line number.

    Example: ``parse_evalset(['{"id": "a", ...}'])``
    """
    items: list[EvalItem] = []
    errors: list[str] = []
    warnings: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        item = _parse_line(line, number, errors, warnings)
        if item is None:
            continue
        if item.id in first_line:
            errors.append(f"line {number}: duplicate id {item.id!r} (first on line {first_line[item.id]})")
            continue
        first_line[item.id] = number
        items.append(item)
    if not errors and not items:
        errors.append("no items")
    if errors:
        raise EvalSetError(_listing(f"{name} has {len(errors)} problem(s):", errors))
    return items, warnings


def _listing(title: str, problems: list[str]) -> str:
    shown = problems[:_MAX_LISTED]
    more = [f"... and {len(problems) - len(shown)} more"] if len(problems) > len(shown) else []
    return "\n  ".join([title, *shown, *more])


def _parse_line(line: str, number: int, errors: list[str], warnings: list[str]) -> EvalItem | None:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        errors.append(f"line {number}: malformed JSON ({exc.msg} at column {exc.colno})")
        return None
    if not isinstance(data, dict):
        errors.append(f"line {number}: expected a JSON object, got {type(data).__name__}")
        return None
    for key in sorted(set(data) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS)):
        warnings.append(f"line {number}: unknown field {key!r} ignored")
    problems = _field_problems(data)
    if problems:
        errors.extend(f"line {number}: {p}" for p in problems)
        return None
    item = _to_item(data, number)
    if item.answerable and not item.required_facts and not item.gold_quotes and not item.gold_spans:
        warnings.append(f"line {number}: answerable item {item.id!r} has no required facts or gold evidence")
    return item


def _field_problems(data: dict) -> list[str]:
    problems = [f"missing field {key!r}" for key in REQUIRED_FIELDS if key not in data]
    checks = {
        "id": lambda v: isinstance(v, str) and v.strip(),
        "question": lambda v: isinstance(v, str) and v.strip(),
        "reference_answer": lambda v: isinstance(v, str),
        "answerable": lambda v: isinstance(v, bool),
        "required_facts": lambda v: isinstance(v, list) and all(_is_fact(f) for f in v),
        "gold_evidence": lambda v: isinstance(v, list) and all(_is_evidence(e) for e in v),
        "history": lambda v: isinstance(v, list) and all(_is_turn(t) for t in v),
        "tags": lambda v: isinstance(v, list) and all(isinstance(t, str) for t in v),
    }
    expected = {
        "id": "a non-empty string", "question": "a non-empty string", "reference_answer": "a string",
        "answerable": "true or false", "required_facts": "a list of facts, each a list of alternative strings",
        "gold_evidence": 'a list of quotes or {"start": int, "end": int} spans',
        "history": "a list of [question, answer] pairs", "tags": "a list of strings",
    }
    problems += [f"field {key!r} must be {expected[key]}" for key, ok in checks.items()
                 if key in data and not ok(data[key])]
    return problems


def _is_fact(fact) -> bool:
    # A bare string is accepted as a fact with a single alternative.
    if isinstance(fact, str):
        return bool(fact.strip())
    return isinstance(fact, list) and bool(fact) and all(isinstance(a, str) and a.strip() for a in fact)


def _is_evidence(entry) -> bool:
    if isinstance(entry, str):
        return bool(entry.strip())
    if not isinstance(entry, dict):
        return False
    start, end = entry.get("start"), entry.get("end")
    return (isinstance(start, int) and isinstance(end, int) and 0 <= start < end
            and isinstance(entry.get("source", ""), str))


def _is_turn(turn) -> bool:
    return isinstance(turn, (list, tuple)) and len(turn) == 2 and all(isinstance(x, str) for x in turn)


def _to_item(data: dict, number: int) -> EvalItem:
    evidence = data["gold_evidence"]
    return EvalItem(
        id=data["id"].strip(),
        question=data["question"],
        reference_answer=data["reference_answer"],
        required_facts=[[f] if isinstance(f, str) else list(f) for f in data["required_facts"]],
        gold_quotes=[e for e in evidence if isinstance(e, str)],
        gold_spans=[GoldSpan(e["start"], e["end"], e.get("source")) for e in evidence if isinstance(e, dict)],
        answerable=data["answerable"],
        history=[(q, a) for q, a in data.get("history", [])],
        tags=list(data.get("tags", [])),
        line=number,
    )


def missing_gold_evidence(items: Iterable[EvalItem],
                          documents: Iterable[str] | Callable[[], Iterable[str]]) -> list[str]:
    """Messages for gold quotes found in no document and spans beyond every document (same folding as hits).

    Example: ``missing_gold_evidence(items, [Path("seeds/a.txt").read_text()]) == []``
    """
    texts = list(documents() if callable(documents) else documents)
    folded = [normalise(t) for t in texts]
    longest = max((len(t) for t in texts), default=0)
    problems = []
    for item in items:
        for quote in item.gold_quotes:
            if not any(normalise(quote) in doc for doc in folded):
                problems.append(f"{item.id} (line {item.line}): gold evidence not in the corpus: {_short(quote)!r}")
        for span in item.gold_spans:
            if span.end > longest:
                problems.append(f"{item.id} (line {item.line}): gold span [{span.start}, {span.end}) "
                                f"lies beyond every document")
    return problems


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
