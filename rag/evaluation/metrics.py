"""Pure, deterministic metric functions: retrieval, required facts, citations, abstention, latency.

Every function takes plain inputs (texts, passages, flags) and returns numbers or ``None`` where a
metric is undefined (nothing to measure), so they test on hand-made inputs and never need a model.

Example: ``hit_at_k(passages, quotes=["rare metals"], k=5)``
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..terms import CJK
from ..text import normalise, strip_markers


@dataclass(frozen=True)
class GoldSpan:
    """Gold evidence given as a character span ``[start, end)``; ``source`` (path or doc id) narrows it."""

    start: int
    end: int
    source: str | None = None


class Passage(Protocol):
    """What retrieval metrics read from a retrieved passage (``rag.types.Citation`` fits)."""

    text: str
    start: int
    end: int
    source: str
    doc_id: str


# ---------------------------------------------------------------- retrieval

def passage_hits(passage: Passage, quotes: Sequence[str] = (), spans: Sequence[GoldSpan] = ()) -> bool:
    """True when the passage contains a gold quote or its span overlaps a gold span.

    Example: ``passage_hits(citation, quotes=["in July 2023"])``
    """
    body = normalise(passage.text)
    if any(q and normalise(q) in body for q in quotes if normalise(q)):
        return True
    return any(_overlaps(passage, span) for span in spans)


def _overlaps(passage: Passage, span: GoldSpan) -> bool:
    if span.source and span.source not in (getattr(passage, "source", None), getattr(passage, "doc_id", None)):
        return False
    return passage.start < span.end and span.start < passage.end


def first_hit_rank(passages: Sequence[Passage], quotes: Sequence[str] = (),
                   spans: Sequence[GoldSpan] = ()) -> int | None:
    """1-based rank of the first passage that hits the gold evidence, or None.

    Example: ``first_hit_rank([miss, hit], ["gallium"]) == 2``
    """
    for rank, passage in enumerate(passages, start=1):
        if passage_hits(passage, quotes, spans):
            return rank
    return None


def hit_at_k(passages: Sequence[Passage], quotes: Sequence[str] = (), spans: Sequence[GoldSpan] = (),
             k: int = 5) -> bool | None:
    """Whether any of the top ``k`` passages hits the gold evidence; None when there is no gold evidence.

    Example: ``hit_at_k(passages, quotes=["gallium"], k=3)``
    """
    if not quotes and not spans:
        return None
    return first_hit_rank(passages[:k], quotes, spans) is not None


def reciprocal_rank(passages: Sequence[Passage], quotes: Sequence[str] = (), spans: Sequence[GoldSpan] = (),
                    k: int | None = None) -> float | None:
    """1/rank of the first hit (0.0 when none) within the top ``k``; None without gold evidence.

    Example: ``reciprocal_rank([miss, hit], quotes=["gallium"]) == 0.5``
    """
    if not quotes and not spans:
        return None
    rank = first_hit_rank(passages[:k] if k else passages, quotes, spans)
    return 1.0 / rank if rank else 0.0


def evidence_recall(passages: Sequence[Passage], quotes: Sequence[str] = (), spans: Sequence[GoldSpan] = (),
                    k: int | None = None) -> float | None:
    """Share of gold pieces (quotes and spans) found in some top-``k`` passage; None without gold.

    Answers spanning two passages need both, which hit@k alone cannot show.
    Example: ``evidence_recall(passages, quotes=["gallium", "July 2023"]) == 0.5``
    """
    pieces: list[tuple[list[str], list[GoldSpan]]] = [([q], []) for q in quotes] + [([], [s]) for s in spans]
    if not pieces:
        return None
    top = passages[:k] if k else passages
    found = sum(1 for q, s in pieces if first_hit_rank(top, q, s) is not None)
    return found / len(pieces)


# ---------------------------------------------------------------- answer correctness

def find_fact(answer_text: str, alternatives: Sequence[str]) -> str | None:
    """The first alternative present in the answer (case-insensitive, whole words), or None.

    Whole-word matching keeps "US" from matching inside "discuss".
    Example: ``find_fact("Since July 2023 [1].", ["July 2023"]) == "July 2023"``
    """
    body = normalise(strip_markers(answer_text))
    for alternative in alternatives:
        needle = normalise(alternative)
        if needle and re.search(_word_pattern(needle), body):
            return alternative
    return None


def _word_pattern(needle: str) -> str:
    # Guard only the edges that are word characters: "semiconductor-related" still matches at a hyphen.
    # Chinese and Japanese have no spaces between words, so a CJK neighbour is an edge ("2023年7月に").
    left = rf"(?<![^\W{CJK}])" if re.match(r"\w", needle) else ""
    right = rf"(?![^\W{CJK}])" if re.search(r"\w$", needle) else ""
    return left + re.escape(needle) + right


def facts_found(answer_text: str, facts: Sequence[Sequence[str]]) -> list[str | None]:
    """For each required fact, the alternative found in the answer or None.

    Example: ``facts_found("Gallium [1].", [["gallium"], ["July 2023"]]) == ["gallium", None]``
    """
    return [find_fact(answer_text, alternatives) for alternatives in facts]


def fact_recall(found: Sequence[str | None]) -> float | None:
    """Share of required facts found; None when there are none. Example: ``fact_recall(["a", None]) == 0.5``"""
    if not found:
        return None
    return sum(f is not None for f in found) / len(found)


# ---------------------------------------------------------------- citations (after ALCE, offline)

def citation_support(answer) -> list[list[bool]]:
    """Per answer sentence, one flag per (sentence, citation) pair: does that passage support the sentence.

    Uses the verifier's per-pair verdicts (``SentenceCheck.citation_supported``); a citation to a source that
    was not given counts as unsupported. Example: ``citation_support(answer) == [[True], [False, True]]``
    """
    return [[bool(getattr(s, "citation_supported", {}).get(n, False)) for n in s.cited] for s in answer.sentences]


def citation_precision_recall(answer) -> tuple[float | None, float | None]:
    """(precision, recall) of an answer's citations; (None, None) for an abstention or empty answer.

    recall = share of sentences with at least one supporting citation; precision = share of
    (sentence, citation) pairs whose passage supports the sentence, 0.0 when nothing is cited
    (as in ALCE: an uncited answer earns no precision). Example: ``citation_precision_recall(answer) == (1.0, 0.5)``
    """
    if answer.abstained:
        return None, None
    pairs = citation_support(answer)
    if not pairs:
        return None, None
    recall = sum(any(flags) for flags in pairs) / len(pairs)
    total = sum(len(flags) for flags in pairs)
    precision = sum(sum(flags) for flags in pairs) / total if total else 0.0
    return precision, recall


# ---------------------------------------------------------------- abstention and summaries

def abstention_scores(outcomes: Sequence[tuple[bool, bool]]) -> dict[str, float | None]:
    """Precision and recall of abstaining, from ``(abstained, answerable)`` pairs; positive = abstained.

    Example: ``abstention_scores([(True, False), (True, True)]) == {"precision": 0.5, "recall": 1.0}``
    """
    abstained = [a for a, _ in outcomes if a]
    unanswerable = [a for a, answerable in outcomes if not answerable]
    true_positives = sum(1 for a, answerable in outcomes if a and not answerable)
    return {
        "precision": true_positives / len(abstained) if abstained else None,
        "recall": true_positives / len(unanswerable) if unanswerable else None,
    }


def mean(values: Sequence[float | bool | None]) -> float | None:
    """Mean of the defined values; None when none are. Example: ``mean([1, None, 0]) == 0.5``"""
    defined = [float(v) for v in values if v is not None]
    return sum(defined) / len(defined) if defined else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default); None for no values.

    Example: ``percentile([10, 20, 30, 40], 50) == 25.0``
    """
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(milliseconds: Sequence[float]) -> dict[str, float | None]:
    """p50 and p95 of latencies in ms. Example: ``latency_summary([5, 7, 9])["p50_ms"] == 7``"""
    return {"p50_ms": percentile(milliseconds, 50), "p95_ms": percentile(milliseconds, 95)}
