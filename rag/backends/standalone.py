"""Quotes that read on their own, and follow-ups that say something new (used by the extractive answerer).

A sentence that opens by pointing back ("They ...", "This ...", "However, ...") means little without the
sentence before it, so it is quoted together with that sentence. In a conversation, sentences an earlier
answer already quoted are only worth repeating when they also cover what the follow-up newly asks.

Example: ``opens_with_back_reference("However, it was delayed.")  # True``
"""
from __future__ import annotations

import re

from ..terms import content_terms, has_cjk
from ..text import normalise, split_sentences, strip_markers

# Pronouns, determiners and connectives that only make sense after another sentence. Matched with its
# capital at the start of the sentence, so "IT staff" or "Its" inside a sentence do not count. Not
# "There" (existential: "There are five members") and not "The".
BACK_REFERENCE = re.compile(
    r"^[\"'‘“(\[]*(?:They|Them|Their|It|Its|This|These|Those|That|He|She|His|Her|Such|Both|Neither|"
    r"However|But|Also|And|So|Yet|Still|Moreover|Furthermore|Additionally|Besides|Therefore|Thus|Hence|"
    r"Consequently|Accordingly|Instead|Otherwise|Nevertheless|Nonetheless|Meanwhile|Then|Likewise|Similarly|"
    r"In addition|In turn|As a result|As such|For this reason|Because of this|Despite this|The latter|"
    r"The former|The same)\b"
    # Japanese and Chinese openings that point back (それは, しかし, 同省は, 这, 但, 此外).
    r"|^[「『（(]*(?:それ|これ|その|この|あれ|しかし|また|さらに|ただし|一方|同省|同社|同国|彼|它|他们|她|这|该|但|此外|因此|然而|同时|不过)")
# A follow-up that asks for what has not been said yet, whatever its topic words ("What else ...?").
_MORE = re.compile(r"\belse\b|他に|ほかに|其他|还有|\b(tell|show|give) me more\b|\bmore (about|on|details?)\b|"
                   r"\b(what|any|which) other\b|"
                   r"\b(apart from|besides|in addition to|other than) (that|this|it|those|these|them)\b", re.IGNORECASE)
# Words a follow-up uses to point back or join on ("those", "instead"), and verbs that only frame a
# question ("What makes it ...?"): they say nothing about its topic.
_LINKING_WORDS = ("them they those these this that it its also then else more other another further so still again "
                  "here there same such both either instead previous earlier one ones make makes made happen "
                  "happens happened mean means get gets got thing things")
_ENDS_A_SENTENCE = re.compile(r"[.!?…。！？][\"'’”)\]」』]*\s*$")


def opens_with_back_reference(sentence: str) -> bool:
    """True when the sentence starts with a word that points at an earlier sentence.

    Example: ``opens_with_back_reference("They must also say so.")  # True``
    """
    return bool(BACK_REFERENCE.match(sentence.lstrip()))


def leads(text: str, spans: list[tuple[int, int]] | None = None) -> dict[int, tuple[int, int]]:
    """For each sentence of ``text`` (by index into ``spans``) that points back, the span of the sentence
    before it in the same text; sentences at the start of the text, or after a heading, get none.

    Example: ``leads("Gallium is scarce. It is used in chips.") == {1: (0, 18)}``
    """
    spans = split_sentences(text) if spans is None else spans
    found = {}
    for i in range(1, len(spans)):
        start, end = spans[i]
        before = text[spans[i - 1][0]:spans[i - 1][1]]
        # A heading or list label ("Warranty", "Note 3") ends without punctuation: not a sentence to quote.
        sentence_before = _ENDS_A_SENTENCE.search(before) and (len(before.split()) >= 3 or has_cjk(before))
        if sentence_before and opens_with_back_reference(text[start:end]):
            found[i] = spans[i - 1]
    return found


def said_before(history: list[tuple[str, str]] | None) -> str:
    """The earlier answers' text, markers removed and normalised, for ``already_said`` look-ups.

    Example: ``said_before([("When?", "In July  2023 [1].")]) == "in july 2023."``
    """
    return " \n ".join(normalise(strip_markers(answer)) for _, answer in history or [])


def already_said(sentence: str, said: str) -> bool:
    """True when an earlier answer quoted this sentence. Example: ``already_said("It rose.", "it rose.")``"""
    body = normalise(strip_markers(sentence)).rstrip(".!?…")
    return bool(body) and body in said


def new_terms(question: str, history: list[tuple[str, str]] | None) -> set[str]:
    """Content terms of a (standalone) follow-up that no earlier question had: what it newly asks about.

    Example: ``new_terms("What makes the warranty void?", [("How long is the warranty?", "...")]) == {"void"}``
    """
    earlier = set().union(*(content_terms(q) for q, _ in history or [])) if history else set()
    return content_terms(question) - earlier - content_terms(_LINKING_WORDS)


def asked_part(question: str, history: list[tuple[str, str]] | None) -> str:
    """The follow-up without the earlier questions the deterministic rewrite appended in brackets, so
    'Who ...' in an earlier question does not decide what kind of answer this one wants.

    Example: ``asked_part("Why? (When did it start)", [("When did it start?", "...")]) == "Why?"``
    """
    earlier = {normalise(q).rstrip("?").strip() for q, _ in history or []}
    head, bracket, tail = question.rpartition(" (")
    if not bracket or not tail.endswith(")"):
        return question
    parts = {normalise(p).strip() for p in tail[:-1].split(";")}
    return head if parts and parts <= earlier else question


def asks_for_more(question: str) -> bool:
    """'What else ...?', 'Tell me more': the user wants what has not been said yet.

    Example: ``asks_for_more("What else did China do?") and not asks_for_more("Are more items controlled?")``
    """
    return bool(_MORE.search(question))
