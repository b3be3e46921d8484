"""The offline default answerer: quotes the retrieved sentences that best answer the question.

It never writes text of its own: every sentence is copied from a source and followed by its ``[n]``.
When no sentence is a good enough match it abstains with ``NO_ANSWER``.

Example: ``"".join(ExtractiveAnswerer(Settings(), embedder).answer("When did China impose the controls?", sources))``
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..config import Settings
from ..embedding import Embedder
from ..errors import ConfigError
from ..injection import overlaps
from ..terms import CJK, content_terms, fold_width, has_cjk, mostly_cjk
from ..text import neutralise_markers, split_sentences
from ..types import Citation
from ..verification import NO_ANSWER
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
_HTML_TAG = re.compile(r"</?[a-zA-Z][\w-]*(?:\s[^<>]*)?/?>")
_MONTHS = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*"
_DATE = re.compile(rf"\b(\d{{4}}|{_MONTHS}|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
                   r"yesterday|today|last (week|month|year)|\d{1,2}/\d{1,2})\b", re.IGNORECASE)
_NUMBER = re.compile(r"\b(\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozen|"
                     r"hundred|thousand|million|billion|first|second|third|fourth|fifth)\b", re.IGNORECASE)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+|\b[A-Z]{2,}\b")
# The same kinds of answer written in Chinese or Japanese (2023年7月, 十数品目, 23品目, 経済産業省, ガリウム);
# each alternative needs a CJK character, so English sentences match exactly as before.
_CJK_DIGITS = "一二三四五六七八九十百千万億亿两兩〇零"
_DATE = re.compile(_DATE.pattern + rf"|\d\s*[年月日]|[{_CJK_DIGITS}]+[年月日]|令和|平成|昨年|去年|今年|先月|"
                   r"上个月|本日|昨日", re.IGNORECASE)
_NUMBER = re.compile(_NUMBER.pattern + rf"|\d(?=\s*[{CJK}%％])|[{_CJK_DIGITS}]|数[十百千万]", re.IGNORECASE)
_NAME = re.compile(_NAME.pattern + rf"|[{CJK}]{{1,8}}(?:省|庁|部|局|国|社|公司|政府|氏|さん|首相|大臣|主席|"
                   rf"总统|总理|集团|大学|委員会|委员会)|[\u30a0-\u30ff]{{3,}}")
# Question words of Chinese and Japanese questions, by the kind of answer they ask for.
_ASKS_DATE_CJK = re.compile(r"いつ|何年|何月|何日|什么时候|何时|哪一?年|几月|几号|哪一?天|什么时间")
_ASKS_NUMBER_CJK = re.compile(r"いくつ|いくら|どのくらい|どれくらい|どれほど|何(?:品目|品|個|人|件|社|種類|種|"
                              r"回|倍|割|パーセント|%|トン|円|ドル|か国|カ国|ヶ国|台|枚|本|つ|番目|万|億)|"
                              r"多少|几|多大|多长|多久|多高")
_ASKS_NAME_CJK = re.compile(r"誰|だれ|どこの(?:国|企業|会社|省|機関)|どの(?:国|企業|会社|省|機関)|谁|"
                            r"哪个?(?:国家|国|公司|部门|机构)|哪家|什么人")
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

    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        if embedder is None:
            raise ConfigError("The extractive answerer ranks sentences with the index's embedder; "
                              "pass it: create_answerer(settings, embedder).")
        super().__init__(settings, embedder)
        self.embedder: Embedder = embedder

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
        everything = fold_width("\n".join(c.title + "\n" + c.text for c in sources).lower())
        sentences, lead_of = _sentences(sources)
        sentences = [(n, t) for n, t in sentences if _long_enough(t) and quotable(t)]
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
        embedder = self.embedder
        sentences, sentence_terms = _shortlist(sentences, sentence_terms, question, question_terms, weights, embedder)
        asked = asked_part(question, history)
        vectors = embedder.encode_cached([t for _, t in sentences])
        cosines = calibrated(vectors @ embedder.encode_query([question])[0], embedder)
        if asked != question and fresh:  # a follow-up with a topic of its own is judged on it as much as on context
            cosines = (1 - ASKED_SHARE) * cosines + ASKED_SHARE * calibrated(
                vectors @ embedder.encode_query([asked])[0], embedder)
        wanted = _answer_type(asked)
        # Specifics the question names that no source mentions: no sentence here can answer it. Across
        # languages only numbers can be looked for: "China" is 中国 there.
        constraints = _constraints(asked)
        if mostly_cjk(everything) and not has_cjk(asked):
            constraints = [c for c in constraints if c[:1].isdigit()]
        missing = sum(1 for c in constraints if not _mentions(everything, c))
        candidates = []
        for (number, text), cosine, terms in zip(sentences, cosines, sentence_terms):
            lexical = _weighted_overlap(question_terms, terms, weights)
            # A sentence in another script shares no terms with the question: its meaning is all there is.
            score = (SEMANTIC + LEXICAL) * float(cosine) if _crosses(text, question) \
                else SEMANTIC * float(cosine) + LEXICAL * lexical
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
    sentences: list[tuple[int, str]] = []
    lead_of: dict[tuple[int, str], str] = {}
    for c in sources:
        spans = split_sentences(c.text)
        before = leads(c.text, spans)
        for i, (s, e) in enumerate(spans):
            if overlaps(c.instructions, s, e):
                continue  # text addressed to AI systems (marked at ingest) is never quoted, whatever it says
            if _is_heading(c, s, e):
                continue  # a title or heading names the document; it answers nothing on its own
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
    URLs or more), or text with raw HTML tags ("</div>" from a Markdown file). A planted list of "sources"
    must not become the answer to "which sources report on X?"; the answer's real sources are its citations.

    Example: ``quotable("Sources: https://a.example/x, https://b.example/y") is False``
    """
    urls = len(_URL.findall(sentence))
    label = _SOURCE_LIST.match(sentence)
    return not (_URL_ONLY.match(sentence) or urls >= 2 or (label and (urls or not label.group("about")))
                or _HTML_TAG.search(sentence))


def _is_heading(source: Citation, start: int, end: int) -> bool:
    """True for a line of its own without closing punctuation that is the document's title, a Markdown
    heading or the document's first line ("Product review: Zephyr vacuum").

    Example: ``_is_heading(Citation(1, "d", "Otters", "o.txt", "Otters\n\nThey swim.", 0, 19), 0, 6) is True``
    """
    line = source.text[start:end]
    if re.search(r"[.!?…。！？．:;]$", line):
        return False  # a sentence, not a label
    alone = (start == 0 or source.text[start - 1] == "\n") and (end == len(source.text) or source.text[end] == "\n")
    if not alone:
        return False
    words = " ".join(re.sub(r"^#{1,6}\s+", "", line).split()).casefold()
    title = " ".join(source.title.split()).casefold()
    return line.startswith("#") or words == title or (source.start == 0 and start == 0)


def cite(sentence: str, number: int) -> str:
    """Put ``[n]`` before the sentence's closing punctuation: 'It rose [2].'"""
    match = re.search(r"[.!?…。！？．]+[\"'’”)\]」』）]*$", sentence)
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
    other = [i for i, (_, t) in enumerate(sentences) if _crosses(t, question)]
    if other and not embedder.fast:  # no cheap vectors, and no shared terms: the full ones (cached for later)
        vectors = embedder.encode_cached([sentences[i][1] for i in other])
        rough[other] = (SEMANTIC + LEXICAL) / SEMANTIC * calibrated(vectors @ embedder.encode_query([question])[0],
                                                                      embedder)
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
    if re.search(r"\bwhen\b|\bwhat (year|date|month|day)\b", q) or _ASKS_DATE_CJK.search(q):
        return _DATE
    if re.search(r"\bhow (many|much|long|old|far|big|large|often)\b|\bwhat (number|percentage|share|price)\b", q) \
            or _ASKS_NUMBER_CJK.search(q):
        return _NUMBER
    if (re.search(r"\bwho\b|\bwhich (country|countries|ministry|company|organi[sz]ation)\b", q)
            or _ASKS_NAME_CJK.search(q)):
        return _NAME
    return None


def calibrated(cosines: np.ndarray, embedder: Embedder) -> np.ndarray:
    """Cosines rescaled so that 0 is the model's unrelated-text level (``embedder.cosine_floor``: E5 puts
    unrelated texts near 0.7, MiniLM near 0, which the weights and thresholds here were set for).
    Example: ``calibrated(np.array([0.85]), multilingual)  # array([0.5])``"""
    floor = getattr(embedder, "cosine_floor", 0.0)
    return cosines if not floor else (cosines - floor) / (1 - floor)


def _crosses(sentence: str, question: str) -> bool:
    """A Chinese or Japanese sentence for a question in another language, or the other way round."""
    return mostly_cjk(sentence) != mostly_cjk(question)


def _long_enough(sentence: str) -> bool:
    """Four words or more, or six Chinese/Japanese characters (written without spaces): shorter lines are
    headings and fragments. Example: ``_long_enough("日本は輸出規制を強化した。") is True``"""
    return len(sentence.split()) >= 4 or len(re.findall(f"[{CJK}]", sentence)) >= 6


def _mentions(text: str, specific: str) -> bool:
    """Whether lower-cased ``text`` names ``specific`` as a whole word; a Chinese or Japanese character
    next to it counts as a word boundary ("2023" in "2023年"). Example: ``_mentions("2023年7月", "2023")``"""
    if re.search(rf"\b{re.escape(specific)}\b", text):
        return True
    return has_cjk(text) and re.search(rf"(?<![^\W{CJK}]){re.escape(specific)}(?![^\W{CJK}])", text) is not None


def _constraints(question: str) -> list[str]:
    """Specifics the question pins down, which a passage must mention to answer it: numbers, years,
    ordinals ('the fourth dialogue') and names not at the start of the question ('What did Xi say?')."""
    found = [m.group(0).lower() for m in _SPECIFIC.finditer(question)]
    if has_cjk(question):  # no word boundary between "2023" and "年": take the numbers as they stand
        found += re.findall(r"(?<![\d.,])\d[\d,.]*%?(?<![.,])", fold_width(question))
    names = re.findall(r"(?<=\s)(?!I\b)[A-Z][\w’'-]*(?:\s+[A-Z][\w’'-]*)*", question)
    for name in names:  # 'Japan-China' is satisfied by 'Japan and China'
        found += [part for part in name.lower().removesuffix("’s").removesuffix("'s").split("-") if part]
    return list(dict.fromkeys(found))


def _strip_question_words(text: str, question: str) -> str:
    """Remove words the question already has, so 'who' needs a name the question did not give."""
    asked = {w.lower() for w in re.findall(r"\w+", question)}
    return " ".join(w for w in re.findall(r"\S+", text) if re.sub(r"\W", "", w).lower() not in asked)
