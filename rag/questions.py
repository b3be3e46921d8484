"""Question handling before retrieval: clean and bound the question, check the chat history, and make a
follow-up stand on its own (by the answerer's rewrite, else deterministically).

Example: ``condense_deterministic("And when did that start?", [("What did China restrict?", "...")])``
"""
from __future__ import annotations

import numbers
import re
import unicodedata
from collections.abc import Callable

from .errors import QuestionError
from .terms import content_terms

Turns = list[tuple[str, str]]
# Earlier turns a follow-up is rewritten from: the recent ones carry what "it" refers to, and an
# unbounded history would make an unbounded standalone question (and LLM prompt).
MAX_HISTORY_TURNS = 5
MAX_ANSWER_CHARS = 4000
_FOLLOW_UP = re.compile(
    r"\b(it|its|they|them|their|that|this|those|these|he|she|him|her|there|then|the same|such)\b"
    # The same in Japanese and Chinese, which need no spaces around them: それ, その, 同じ, 它, 这些 ...
    r"|それ|これ|あれ|その|この|あの|そこ|同じ|彼女?|同省|同社|它们?|(?<!其)他们?|她们?|这些?|那些?|这个|那个|该",
    re.IGNORECASE)


def clean_question(question: str, max_chars: int) -> str:
    """Strip control characters and surrounding space; reject empty or over-long questions.

    Example: ``clean_question(" When\\x00 did it start? ", 2000) == "When did it start?"``
    """
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


def checked_history(history) -> Turns:
    """History as (question, answer_text) string pairs, oldest first; anything else is a QuestionError.

    Example: ``checked_history([("Who?", "Ann [1].")]) == [("Who?", "Ann [1].")]``
    """
    if history is None:
        return []
    if isinstance(history, (str, bytes, dict)) or not hasattr(history, "__iter__"):
        raise QuestionError(f"history must be a list of (question, answer_text) pairs, oldest first, "
                            f"not {type(history).__name__}.")
    pairs = []
    for number, turn in enumerate(history, start=1):
        if not (isinstance(turn, (tuple, list)) and len(turn) == 2 and all(isinstance(t, str) for t in turn)):
            raise QuestionError(f"history turn {number} must be a (question, answer_text) pair of strings, "
                                f"not {shown(turn)}.")
        pairs.append((turn[0], turn[1]))
    return pairs


def checked_k(k) -> int:
    """``k`` as a positive int; anything else (0, -1, "3", 2.5, True) is a QuestionError."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise QuestionError(f"k must be a positive whole number of passages (or None for RAG_TOP_K), not {shown(k)}.")
    return int(k)


def shown(value) -> str:
    """A value's repr, cut to 60 characters, for error messages. Example: ``shown("a") == "'a'"``"""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def standalone_question(question: str, history: Turns, condense: Callable[[str, Turns], str | None],
                        limit: int) -> str:
    """The follow-up rewritten from the last few turns (by ``condense``, else deterministically), no longer
    than ``limit``. Example: ``standalone_question("Why?", [], lambda q, h: None, 2000) == "Why?"``
    """
    if not history:
        return question
    recent = [(q[:limit], a[:MAX_ANSWER_CHARS]) for q, a in history[-MAX_HISTORY_TURNS:]]
    rewritten = condense(question, recent)
    standalone = rewritten.strip() if rewritten and rewritten.strip() else condense_deterministic(question, recent)
    return standalone[:limit]  # the question comes first in a rewrite, so a cut keeps it


def condense_deterministic(question: str, history: Turns | None) -> str:
    """Make a follow-up standalone without an LLM: when it leans on earlier turns (a pronoun or very few
    content words), append the earlier questions back to the last one that stood on its own.

    Example: ``condense_deterministic("And when did that start?", [("What did China restrict?", "...")])``
    """
    if not history or not _leans_on_history(question):
        return question
    context = []
    for previous, _ in reversed(history):
        context.append(previous.strip().rstrip("?？"))
        if not _leans_on_history(previous):
            break
    return f"{question} ({'; '.join(reversed(context))})"


def _leans_on_history(question: str) -> bool:
    return bool(_FOLLOW_UP.search(question)) or len(content_terms(question)) <= 2
