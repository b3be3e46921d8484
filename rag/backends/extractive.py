"""The offline default answerer: quotes the retrieved sentences that best answer the question.

It never writes text of its own: every sentence is copied from a source and followed by its ``[n]``.
When no sentence is a good enough match it abstains with ``NO_ANSWER``.

Example: ``"".join(ExtractiveAnswerer(Settings()).answer("When did China impose the controls?", sources))``
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..answering import NO_ANSWER, neutralise_markers
from ..chunking import split_sentences
from ..embedding import get_embedder
from ..injection import overlaps
from ..terms import content_terms
from ..types import Citation
from .base import Answerer, History, register
from .standalone import already_said, asked_part, asks_for_more, leads, new_terms, said_before

# Score = SEMANTIC * cosine(question, sentence) + LEXICAL * weighted term overlap; set on the seed eval set.
SEMANTIC, LEXICAL = 0.6, 0.4
ABSTAIN_BELOW = 0.5
# Extra sentences join the answer only when nearly as good as the best and adding uncovered question terms.
FOLLOW_RATIO, CLOSE_RATIO, MAX_SENTENCES = 0.85, 0.9, 3
_TYPE_PENALTY, _TYPE_BONUS = 0.12, 0.06
# Sentences embedded per question at most (bounds latency on long passages or a large top-k).
SHORTLIST = 5
_MONTHS = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*"
_DATE = re.compile(rf"\b(\d{{4}}|{_MONTHS}|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
                   r"yesterday|today|last (week|month|year)|\d{1,2}/\d{1,2})\b", re.IGNORECASE)
_NUMBER = re.compile(r"\b(\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozen|"
                     r"hundred|thousand|million|billion|first|second|third|fourth|fifth)\b", re.IGNORECASE)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+|\b[A-Z]{2,}\b")
_URL_ONLY = re.compile(r"^\s*https?://\S+\s*$")
_URL = re.compile(r"\bhttps?://|\bwww\.", re.IGNORECASE)
# "Sources:", or "Sources on otters:" (then only with a link in it: "Sources close to the talks said:" is news).
_SOURCE_LIST = re.compile(r"^\W*(?:sources?|references?|citations?|bibliography|further reading|see also|"
                          r"(?:related |useful )?links?)\b(?P<about>[^.!?:]{0,80})\W*:", re.IGNORECASE)
_SPECIFIC = re.compile(r"\b(\d[\d,.]*%?|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|"
                       r"\d+(st|nd|rd|th))\b", re.IGNORECASE)
# A specific the question names (a year, an ordinal, a name) that the passage lacks: likely unanswerable.
_CONSTRAINT_PENALTY = 0.25
# A sentence an earlier answer quoted, when the follow-up asks about something it does not cover.
REPEAT_PENALTY = 0.15
# The least share of the term weight a follow-up's own terms get, against the earlier questions' terms
# it was rewritten with (which otherwise outnumber them and pull the answer back to the last one).
NEW_TERM_SHARE = 0.5
# The part of a rewritten follow-up's meaning score taken from the follow-up as asked, without the appended
# earlier questions. Both shares were set on the seed eval set's follow-up items.
ASKED_SHARE = 0.5


@dataclass
class Candidate:
    """A sentence of a source passage and its score against the question."""

    number: int
    text: str
    score: float
    terms: set[str]
    lead: str = ""  # the sentence before, quoted too, when this one opens by pointing back ("They ...")
    said: bool = False  # an earlier answer in the conversation quoted it

    @property
    def quoted(self) -> list[str]:
        return [self.lead, self.text] if self.lead else [self.text]


@register("extractive")
class ExtractiveAnswerer(Answerer):
    """Answers with verbatim source sentences ranked by meaning and term overlap with the question."""

    @property
    def description(self) -> str:
        return "extractive (offline, quotes the documents)"

    def answer(self, question: str, sources: list[Citation], history: History = None) -> Iterator[str]:
        chosen = self.select(question, sources, history)
        if not chosen:
            yield NO_ANSWER
            return
        quoted: set[str] = set()
        for candidate in chosen:
            for sentence in candidate.quoted:
                if sentence not in quoted:  # a lead may be a chosen sentence too: quote it once
                    yield ("" if not quoted else " ") + cite(sentence, candidate.number)
                    quoted.add(sentence)

    def select(self, question: str, sources: list[Citation], history: History = None) -> list[Candidate]:
        """The sentences that make the answer, best first; empty when the sources do not answer.
        With ``history``, sentences an earlier answer quoted give way to ones about what is newly asked."""
        candidates = self._score(question, sources, history)
        if not candidates:
            return []
        candidates.sort(key=lambda c: -c.score)
        best = candidates[0]
        if best.score < ABSTAIN_BELOW:
            return []
        question_terms = content_terms(question)
        chosen, covered = [best], set(best.terms & question_terms)
        for candidate in candidates[1:]:
            if len(chosen) == MAX_SENTENCES or candidate.score < FOLLOW_RATIO * best.score:
                break
            if candidate.said:  # worth repeating only as the answer itself, never as an extra
                continue
            gain = (candidate.terms & question_terms) - covered
            # A near-tie is kept even without new terms: it often holds the other half of the answer.
            if gain or candidate.score >= CLOSE_RATIO * best.score:
                chosen.append(candidate)
                covered |= gain
        return chosen

    def _score(self, question: str, sources: list[Citation], history: History = None) -> list[Candidate]:
        everything = "\n".join(c.title + "\n" + c.text for c in sources).lower()
        sentences, lead_of = _sentences(sources)
        sentences = [(n, t) for n, t in sentences if len(t.split()) >= 4 and quotable(t)]
        # Overlapping chunks repeat sentences: keep each once, under its best-ranked source.
        sentences = list({t: (n, t) for n, t in reversed(sentences)}.values())[::-1]
        if not sentences:
            return []
        question_terms = content_terms(question)
        sentence_terms = [content_terms(t) for _, t in sentences]
        known = set().union(*sentence_terms)
        weights = _local_idf(question_terms, sentence_terms)
        fresh = new_terms(question, history) if history else set()
        weights = _stress_new_terms(weights, fresh)
        embedder = get_embedder(self.settings.embed_model, self.settings.embed_batch_size)
        sentences, sentence_terms = _shortlist(sentences, sentence_terms, question, question_terms, weights, embedder)
        asked = asked_part(question, history)
        vectors = embedder.encode_cached([t for _, t in sentences])
        cosines = vectors @ embedder.encode_cached([question])[0]
        if asked != question and fresh:  # a follow-up with a topic of its own is judged on it as much as on context
            cosines = (1 - ASKED_SHARE) * cosines + ASKED_SHARE * (vectors @ embedder.encode_cached([asked])[0])
        wanted = _answer_type(asked)
        # Specifics the question names that no source mentions: no sentence here can answer it.
        missing = sum(1 for c in _constraints(asked) if not re.search(rf"\b{re.escape(c)}\b", everything))
        candidates = []
        for (number, text), cosine, terms in zip(sentences, cosines, sentence_terms):
            lexical = _weighted_overlap(question_terms, terms, weights)
            score = SEMANTIC * float(cosine) + LEXICAL * lexical
            if wanted:
                # The kind of answer asked for (a date, a number, a name) is there or not.
                score += _TYPE_BONUS if wanted.search(_strip_question_words(text, question)) else -_TYPE_PENALTY
            score -= _CONSTRAINT_PENALTY * min(missing, 2)
            candidates.append(Candidate(number, text, score, terms, lead_of.get((number, text), "")))
        if history:  # new terms no source has ('What prompted it?') cannot tell a repeat from an answer
            _prefer_unsaid(candidates, question, history, {t: weights[t] for t in fresh & known})
        return candidates


def _sentences(sources: list[Citation]) -> tuple[list[tuple[int, str]], dict[tuple[int, str], str]]:
    """Every (number, sentence) of the sources, and for a sentence that points back, the one before it."""
    sentences, lead_of = [], {}
    for c in sources:
        spans = split_sentences(c.text)
        before = leads(c.text, spans)
        for i, (s, e) in enumerate(spans):
            if overlaps(c.instructions, s, e):
                continue  # text addressed to AI systems (marked at ingest) is never quoted, whatever it says
            text = neutralise_markers(c.text[s:e])
            sentences.append((c.number, text))
            if i in before and not overlaps(c.instructions, *before[i]):  # never quote text aimed at AIs
                lead_of.setdefault((c.number, text), neutralise_markers(c.text[slice(*before[i])]))
    return sentences, lead_of


def _stress_new_terms(weights: dict[str, float], fresh: set[str]) -> dict[str, float]:
    """Scale the follow-up's own terms up to at least NEW_TERM_SHARE of the total weight."""
    own = sum(w for t, w in weights.items() if t in fresh)
    rest = sum(weights.values()) - own
    if not own or not rest:
        return weights
    scale = max(1.0, NEW_TERM_SHARE / (1 - NEW_TERM_SHARE) * rest / own)
    return {t: w * scale if t in fresh else w for t, w in weights.items()}


def _prefer_unsaid(candidates: list[Candidate], question: str, history: list[tuple[str, str]],
                   fresh: dict[str, float]) -> None:
    """Lower sentences an earlier answer quoted by the share of what the follow-up newly asks about
    (``fresh`` terms, weighted) that they miss: 'What makes it void?' after the warranty sentence. A
    follow-up with no new terms ('Why?') may rightly get the same sentence; 'What else ...?' never does."""
    said, more, total = said_before(history), asks_for_more(question), sum(fresh.values())
    for candidate in candidates:
        if not already_said(candidate.text, said):
            continue
        candidate.said = True
        if more:  # 'What else ...?': never the same again
            candidate.score -= 1.0
            continue
        missed = (1 - sum(w for t, w in fresh.items() if t in candidate.terms) / total) if total else 0.0
        candidate.score -= REPEAT_PENALTY * missed


def quotable(sentence: str) -> bool:
    """False for lines that state no fact: a bare URL, or a list of links or sources ("Sources: ...", two
    URLs or more). A planted list of "sources" must not become the answer to "which sources report on
    X?"; the answer's real sources are its citations.

    Example: ``quotable("Sources: https://a.example/x, https://b.example/y") is False``
    """
    urls = len(_URL.findall(sentence))
    label = _SOURCE_LIST.match(sentence)
    return not (_URL_ONLY.match(sentence) or urls >= 2 or (label and (urls or not label.group("about"))))


def cite(sentence: str, number: int) -> str:
    """Put ``[n]`` before the sentence's closing punctuation: 'It rose [2].'"""
    match = re.search(r"[.!?…]+[\"'’”)\]]*$", sentence)
    if not match:
        return f"{sentence} [{number}]"
    return f"{sentence[:match.start()]} [{number}]{sentence[match.start():]}"


def _shortlist(sentences, sentence_terms, question, question_terms, weights, embedder):
    """Keep the SHORTLIST sentences most likely to answer, by term overlap plus a nearly free meaning
    score (mean word-piece vectors), so the model embeds a bounded few sentences per question."""
    if len(sentences) <= SHORTLIST:
        return sentences, sentence_terms
    rough = np.zeros(len(sentences))
    if embedder.fast:
        vectors = embedder.fast.encode_static([question] + [t for _, t in sentences])
        rough = vectors[1:] @ vectors[0]
    priority = [SEMANTIC * rough[i] + LEXICAL * _weighted_overlap(question_terms, sentence_terms[i], weights)
                for i in range(len(sentences))]
    ranked = sorted(sorted(range(len(sentences)), key=lambda i: (-priority[i], i))[:SHORTLIST])
    return [sentences[i] for i in ranked], [sentence_terms[i] for i in ranked]


def _local_idf(question_terms: set[str], sentence_terms: list[set[str]]) -> dict[str, float]:
    """Rarer terms among the candidate sentences weigh more (a topic word found everywhere tells little)."""
    n = len(sentence_terms)
    return {t: math.log(1 + n / (1 + sum(t in s for s in sentence_terms))) for t in question_terms}


def _weighted_overlap(question_terms: set[str], terms: set[str], weights: dict[str, float]) -> float:
    total = sum(weights.values())
    return sum(weights[t] for t in question_terms & terms) / total if total else 0.0


def _answer_type(question: str) -> re.Pattern | None:
    """What an answer to this question must contain: a date for 'when', a number for 'how many', ..."""
    q = question.lower()
    if re.search(r"\bwhen\b|\bwhat (year|date|month|day)\b", q):
        return _DATE
    if re.search(r"\bhow (many|much|long|old|far|big|large|often)\b|\bwhat (number|percentage|share|price)\b", q):
        return _NUMBER
    if re.search(r"\bwho\b|\bwhich (country|countries|ministry|company|organi[sz]ation)\b", q):
        return _NAME
    return None


def _constraints(question: str) -> list[str]:
    """Specifics the question pins down, which a passage must mention to answer it: numbers, years,
    ordinals ('the fourth dialogue') and names not at the start of the question ('What did Xi say?')."""
    found = [m.group(0).lower() for m in _SPECIFIC.finditer(question)]
    names = re.findall(r"(?<=\s)(?!I\b)[A-Z][\w’'-]*(?:\s+[A-Z][\w’'-]*)*", question)
    for name in names:  # 'Japan-China' is satisfied by 'Japan and China'
        found += [part for part in name.lower().removesuffix("’s").removesuffix("'s").split("-") if part]
    return list(dict.fromkeys(found))


def _strip_question_words(text: str, question: str) -> str:
    """Remove words the question already has, so 'who' needs a name the question did not give."""
    asked = {w.lower() for w in re.findall(r"\w+", question)}
    return " ".join(w for w in re.findall(r"\S+", text) if re.sub(r"\W", "", w).lower() not in asked)
