"""Answer post-processing shared by every answerer: question checks, citation parsing and
verification, abstention, and the deterministic follow-up rewrite.

Example: ``parse_citations("Gallium is controlled [1][3].")  # [("Gallium is controlled [1][3].", [1, 3])]``
"""
from __future__ import annotations

import re
import unicodedata

from .chunking import split_sentences
from .errors import QuestionError
from .terms import content_terms
from .types import Citation, SentenceCheck

NO_ANSWER = "The documents do not answer this question."
# [1], [1, 3], [1][2], [2-4]; anything else in brackets ([2021], [sic]) is left alone.
MARKER = re.compile(r"\[(\d{1,3}(?:\s*[-–,;]\s*\d{1,3})*)\]")
_MARKER = MARKER
_ABSTAIN_PHRASES = re.compile(
    r"(do(es)? not (answer|contain|mention|say|provide|cover)|cannot answer|can't answer|no information|"
    r"not (stated|mentioned|specified|covered) in the (documents|sources))", re.IGNORECASE)
_FOLLOW_UP = re.compile(
    r"\b(it|its|they|them|their|that|this|those|these|he|she|him|her|there|then|the same|such)\b", re.IGNORECASE)


def clean_question(question: str, max_chars: int) -> str:
    """Strip control characters and surrounding space; reject empty or over-long questions."""
    if not isinstance(question, str):
        raise QuestionError("The question must be text.")
    question = _without_surrogates(question)
    cleaned = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in question)
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    if not cleaned:
        raise QuestionError("The question is empty. Type a question about your documents.")
    if len(cleaned) > max_chars:
        raise QuestionError(
            f"The question is {len(cleaned):,} characters long; the limit is {max_chars:,} (RAG_MAX_QUESTION_CHARS). "
            "Ask a shorter question."
        )
    return cleaned


def _without_surrogates(text: str) -> str:
    """Bytes that were not UTF-8 (a command line's surrogate escapes) decoded with U+FFFD instead.

    Example: ``_without_surrogates("caf\\udce9") == "caf\ufffd"``
    """
    if not any("\ud800" <= ch <= "\udfff" for ch in text):
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # surrogates that escape no byte
        return text.encode("utf-8", "replace").decode("utf-8")


def marker_numbers(marker_body: str) -> list[int]:
    """Numbers inside one bracket: '1, 3' -> [1, 3]; '2-4' -> [2, 3, 4]."""
    numbers: list[int] = []
    for part in re.split(r"[,;]", marker_body):
        bounds = [int(x) for x in re.split(r"[-–]", part) if x.strip().isdigit()]
        if not bounds:
            continue
        low, high = bounds[0], bounds[-1]
        # A reversed or huge range is not a real citation range; keep just its ends.
        span = range(low, high + 1) if 0 <= high - low <= 20 else (low, high)
        numbers.extend(n for n in span if n not in numbers)
    return numbers


def parse_citations(text: str) -> list[tuple[str, list[int]]]:
    """Split an answer into sentences, each with the citation numbers it carries (in order, unique).

    A marker that opens a sentence (after the previous sentence's full stop) belongs to that previous one.
    """
    pieces: list[tuple[str, list[int]]] = []
    for start, end in split_sentences(text):
        sentence = text[start:end]
        leading = re.match(r"^(?:\s*\[[\d,;\s\-–]+\])+", sentence)
        if leading and pieces:
            _merge(pieces[-1][1], _numbers_in(leading.group(0)))
            pieces[-1] = (pieces[-1][0] + " " + leading.group(0).strip(), pieces[-1][1])
            sentence = sentence[leading.end():].strip()
            if not sentence:
                continue
        pieces.append((sentence, _numbers_in(sentence)))
    return pieces


def _numbers_in(text: str) -> list[int]:
    numbers: list[int] = []
    for match in _MARKER.finditer(text):
        _merge(numbers, marker_numbers(match.group(1)))
    return numbers


def _merge(target: list[int], numbers: list[int]) -> None:
    target.extend(n for n in numbers if n not in target)


def drop_invalid_citations(text: str, valid: set[int]) -> str:
    """Remove citation numbers that point at no given source; drop brackets left empty."""

    def keep(match: re.Match) -> str:
        kept = [n for n in marker_numbers(match.group(1)) if n in valid]
        return "".join(f"[{n}]" for n in dict.fromkeys(kept))

    cleaned = _MARKER.sub(keep, text)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned).strip()


def neutralise_markers(text: str) -> str:
    """Document text with its own bracketed numbers as (n), so a quote cannot pose as a citation."""
    return MARKER.sub(lambda m: f"({m.group(1)})", text)


def strip_markers(text: str) -> str:
    """The text without citation markers: 'It rose [2].' -> 'It rose.'"""
    return re.sub(r"\s+", " ", re.sub(r"\s*" + _MARKER.pattern, "", text)).strip()


def is_abstention(text: str) -> bool:
    """True when an answer says the documents do not answer (and cites nothing)."""
    body = strip_markers(text)
    return (not body) or (body.startswith(NO_ANSWER[:-1]) or bool(_ABSTAIN_PHRASES.search(body))) and not _MARKER.search(text)


def verify_citations(text: str, sources: list[Citation], embed) -> list[SentenceCheck]:
    """Check every answer sentence against the passages it cites (claim-level: rag/verification.py).

    ``embed(texts) -> unit vectors``. Returns one SentenceCheck per sentence; ``sources`` are not changed.
    """
    from .verification import verify_citations as verify  # it imports this module

    return verify(text, sources, embed)


def squash(text: str) -> str:
    """Lower-cased, whitespace collapsed: for comparing texts. Example: ``squash(" A\n b") == "a b"``"""
    return re.sub(r"\s+", " ", text).strip().lower()


def condense_deterministic(question: str, history: list[tuple[str, str]] | None) -> str:
    """Make a follow-up standalone without an LLM: when it leans on earlier turns (a pronoun or very few
    content words), append the earlier questions back to the last one that stood on its own.

    Example: ``condense_deterministic("And when did that start?", [("What did China restrict?", "...")])``
    """
    if not history or not _leans_on_history(question):
        return question
    context = []
    for previous, _ in reversed(history):
        context.append(previous.strip().rstrip("?"))
        if not _leans_on_history(previous):
            break
    return f"{question} ({'; '.join(reversed(context))})"


def _leans_on_history(question: str) -> bool:
    return bool(_FOLLOW_UP.search(question)) or len(content_terms(question)) <= 2
