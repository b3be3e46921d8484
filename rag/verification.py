"""Claim-level citation checks: every answer sentence against the passages it cites, judged on the
passage sentence(s) that best support it (rag/support.py), with those sentences returned as evidence.
Also what makes an answer an abstention. Verdicts out, no mutation: ``check_answer`` returns the cleaned
text with its sentence checks, ``source_verdicts`` what they say of each source; the assistant builds the
Answer from them.

Example: ``verify_citations("China lifted the controls [1].", sources, embed)[0].reason``
→ "the passage says 'imposed', not 'lifted'"
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .claims import ADDRESS, read
from .injection import overlaps
from .relations import bound_elsewhere
from .support import Judgement, contradicted, judge
from .text import MARKER, drop_invalid_citations, neutralise_markers, parse_citations, split_sentences, strip_markers
from .types import Citation, SentenceCheck

Embed = Callable[[list[str]], np.ndarray]
Span = tuple[int, int]
NO_ANSWER = "The documents do not answer this question."
_ABSTAIN_PHRASES = re.compile(
    r"(do(es)? not (answer|contain|mention|say|provide|cover)|cannot answer|can't answer|no information|"
    r"not (stated|mentioned|specified|covered) in the (documents|sources))", re.IGNORECASE)
INSTRUCTIONS_ONLY = "only supported by text addressed to AI systems"
QUOTES_INSTRUCTIONS = "quotes text addressed to AI systems"
AFTER_ABSTENTION = "text after the abstention sentence was dropped"
_QUOTES = str.maketrans("‘’“”", "''\"\"")
# Windows judged with word embeddings after a first, lexical pass over all of them.
_SHORTLIST = 2


def verify_citations(text: str, sources: list[Citation], embed: Embed | None) -> list[SentenceCheck]:
    """A SentenceCheck for every answer sentence: supported only when a cited passage backs its specifics,
    polarity and wording. ``embed(texts) -> unit vectors`` (the embedder's encode_cached); None checks
    words by their stems only (no near-synonyms)."""
    by_number = {c.number: c for c in sources}
    similar = _similar(embed)
    checks = []
    for sentence, numbers in parse_citations(text):
        claim = strip_markers(sentence)
        if claim:
            checks.append(check_sentence(sentence, claim, numbers, by_number, similar))
    return checks


def check_sentence(sentence: str, claim: str, numbers: list[int], by_number: dict[int, Citation],
                   similar) -> SentenceCheck:
    """Verdict on one answer sentence citing ``numbers``."""
    cited = [by_number[n] for n in numbers if n in by_number]
    if not cited:
        reason = "the sentence cites no source" if not numbers else "the sentence cites no given source"
        return SentenceCheck(sentence, numbers, 0.0, False, {n: False for n in numbers}, reason)
    verdicts = {c.number: support(claim, c, similar) for c in cited}
    url_problem = _url_problem(claim, cited)
    by_citation = {n: v.supported and not url_problem for n, (v, _) in verdicts.items()}
    best_number = max(verdicts, key=lambda n: (by_citation[n], verdicts[n][0].score))
    best, _ = verdicts[best_number]
    supported = by_citation[best_number]
    reason = "" if supported else _brief(url_problem or best.problems[0])
    evidence = {n: spans for n, (v, spans) in verdicts.items() if by_citation[n]}
    score = best.score if supported else min(best.score, 0.49)
    return SentenceCheck(sentence, numbers, score, supported, by_citation, reason, evidence)


def _brief(reason: str, word_limit: int = 60, limit: int = 300) -> str:
    """A reason fit to show: an over-long word (a 100 kB token) cut short, and the whole kept to a line.

    Example: ``_brief("the passage does not mention " + "x" * 999).endswith("…")``
    """
    short = re.sub(rf"\S{{{word_limit},}}", lambda m: m.group(0)[:word_limit] + "…", reason)
    return short if len(short) <= limit else short[:limit - 1] + "…"


def support(claim: str, source: Citation, similar=None) -> tuple[Judgement, list[Span]]:
    """How well ``source`` supports ``claim``: the verdict of its best window and that window's spans.

    Example: ``support("Gallium is restricted.", citation)[0].supported``
    """
    quoted = _quoted_at(claim, source.text)
    if quoted is not None:
        spans = [s for s in split_sentences(source.text) if overlaps([quoted], *s)] or [quoted]
        if overlaps(source.instructions, *quoted):
            inside = any(s <= quoted[0] and quoted[1] <= e for s, e in source.instructions)
            return Judgement(1.0, [INSTRUCTIONS_ONLY if inside else QUOTES_INSTRUCTIONS]), []
        return Judgement(1.0), spans
    sentences = split_sentences(source.text)
    windows = [[s] for s in sentences] + [[a, b] for a, b in zip(sentences, sentences[1:])]
    clean = [w for w in windows if not any(overlaps(source.instructions, *s) for s in w)]
    marked = [w for w in windows if w not in clean]
    if not windows:
        return Judgement(0.0, ["the passage is empty"]), []
    reading = read(claim)
    verdict, spans = _best(reading, source.text, clean, similar) if clean else (None, [])
    if (verdict is None or not verdict.supported) and marked:
        hidden, _ = _best(reading, source.text, marked, similar)
        if hidden.supported:
            return Judgement(hidden.coverage, [INSTRUCTIONS_ONLY]), []
        verdict = verdict or hidden
    assert verdict is not None  # windows is not empty, so clean or marked was judged
    if verdict.supported and len(sentences) > 1:  # the best window may leave out what contradicts it
        everywhere = _readings(source.text, sentences)
        opposed = contradicted(reading, everywhere) + bound_elsewhere(reading, everywhere)
        verdict = Judgement(verdict.coverage, opposed) if opposed else verdict
    return verdict, spans if verdict.supported else []


def _best(reading, text: str, windows: list[list[Span]], similar) -> tuple[Judgement, list[Span]]:
    """The window that supports the claim best: a lexical pass over all, word embeddings for a few."""

    def rank(item):
        verdict, window = item
        return verdict.supported, -len(verdict.problems), verdict.coverage, -len(window)

    passage = frozenset(read(text).stems)
    first = sorted(((judge(reading, _readings(text, w), None, passage), w) for w in windows), key=rank, reverse=True)
    if similar is None or first[0][0].supported:
        return first[0][0], first[0][1]
    second = [(judge(reading, _readings(text, w), similar, passage), w) for _, w in first[:_SHORTLIST]]
    verdict, window = max(second, key=rank)
    return verdict, window


def _readings(text: str, window: list[Span]):
    return [read(text[s:e]) for s, e in window]


def _quoted_at(claim: str, text: str) -> Span | None:
    """Where ``claim`` occurs word for word in ``text`` (ignoring case, spacing, punctuation between words
    and quote style), or None. Whole words only: "he said" is not inside "she said"."""
    words = re.findall(r"\w+", claim)
    if not words or len(words) > 400:
        return None
    haystack = neutralise_markers(text).translate(_QUOTES)  # same length: offsets stay valid
    found = re.search(r"\b" + r"\W+".join(map(re.escape, words)) + r"\b", haystack, re.IGNORECASE)
    return (found.start(), found.end()) if found else None


def _url_problem(claim: str, cited: list[Citation]) -> str:
    """A URL or e-mail address in the sentence that no cited passage holds outside its instruction spans."""
    for match in ADDRESS.finditer(claim):
        address = match.group(0).rstrip(".,;:!?")
        places = [(c, m.start(), m.end()) for c in cited
                  for m in re.finditer(re.escape(address), c.text, re.IGNORECASE)]
        if not places:
            return f"the cited passages do not contain {address}"
        if all(overlaps(c.instructions, s, e) for c, s, e in places):
            return f"{address} is {INSTRUCTIONS_ONLY}"
    return ""


def _similar(embed: Embed | None):
    """Word-by-word cosine similarities from the sentence embedder (its cache keeps repeat words cheap)."""
    if embed is None:
        return None

    # A model whose unrelated words already sit near 0.8 (E5) says so; its cosines are rescaled from there to
    # the scale support.SYNONYM_SIMILARITY was set on.
    floor = getattr(getattr(embed, "__self__", None), "word_cosine_floor", 0.0)

    def similar(claim_words: list[str], passage_words: list[str]) -> np.ndarray:
        vectors = np.asarray(embed(claim_words + passage_words), dtype=np.float32)
        cosines = vectors[:len(claim_words)] @ vectors[len(claim_words):].T
        return (cosines - floor) / (1 - floor) if floor else cosines

    return similar


def split_abstention(text: str) -> tuple[str, str]:
    """An abstention is its sentence alone: split off anything written after the fixed sentence (or after
    the first sentence of an answer that abstains in other words).

    Example: ``split_abstention(NO_ANSWER + " PWNED") == (NO_ANSWER, "PWNED")``
    """
    body = text.strip()
    if body.startswith(NO_ANSWER[:-1]):
        rest = body[len(NO_ANSWER[:-1]):].lstrip(".").strip()
        return (NO_ANSWER, rest) if rest else (text, "")
    sentences = split_sentences(body)
    if len(sentences) > 1 and is_abstention(body) and is_abstention(body[:sentences[0][1]]):
        return body[:sentences[0][1]], body[sentences[1][0]:]
    return text, ""


def dropped_after_abstention(rest: str) -> SentenceCheck:
    """The flag for text that followed the abstention sentence (shown as unverified, not as an answer)."""
    return SentenceCheck(rest, [], 0.0, False, {}, AFTER_ABSTENTION)


@dataclass(frozen=True)
class SourceVerdict:
    """What an answer's sentence checks say of one source: it is supported when it backs at least one
    sentence that cites it; ``evidence`` are the char spans of its text that do."""

    supported: bool
    support_score: float
    evidence: list[Span] = field(default_factory=list)


def source_verdicts(checks: list[SentenceCheck]) -> dict[int, SourceVerdict]:
    """A verdict per source number that some checked sentence cites.

    Example: ``source_verdicts(verify_citations("It rose [1].", sources, None))[1].supported``
    """
    verdicts = {}
    for number in dict.fromkeys(n for c in checks for n in c.citation_supported):
        citing = [c for c in checks if number in c.citation_supported]
        backed = [c for c in citing if c.citation_supported[number]]
        spans = sorted({span for c in backed for span in c.evidence.get(number, [])})
        verdicts[number] = SourceVerdict(bool(backed), max(c.support_score for c in citing), spans)
    return verdicts


def is_abstention(text: str) -> bool:
    """True when an answer says the documents do not answer (and cites nothing).

    Example: ``is_abstention("The sources do not mention it.") and not is_abstention("It rose [1].")``
    """
    body = strip_markers(text)
    says_so = body.startswith(NO_ANSWER[:-1]) or bool(_ABSTAIN_PHRASES.search(body))
    return (not body) or says_so and not MARKER.search(text)


@dataclass(frozen=True)
class AnswerCheck:
    """The verdict on an answerer's raw text: the text as shown, whether it abstains, one check per sentence."""

    text: str
    abstained: bool
    sentences: list[SentenceCheck]

    @property
    def cited(self) -> set[int]:
        """Source numbers the checked sentences cite."""
        return {n for check in self.sentences for n in check.cited}


def check_answer(raw: str, sources: list[Citation], embed: Embed | None) -> AnswerCheck:
    """Citations to no given source dropped, an abstention split from what follows it, every sentence checked.

    Example: ``check_answer("It rose [1][9].", sources, None).text == "It rose [1]."``
    """
    text = drop_invalid_citations(raw, {c.number for c in sources}) or NO_ANSWER
    text, after = split_abstention(text)  # the abstention sentence stands alone; the rest is flagged
    abstained = is_abstention(text) or not sources
    checks = [] if abstained else verify_citations(text, sources, embed)
    if after:
        checks.append(dropped_after_abstention(after))
    return AnswerCheck(text, abstained, checks)
