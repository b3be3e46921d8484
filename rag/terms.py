"""Content terms of a text (lower-cased, stop words dropped, stemmed), for lexical overlap scores.

Example: ``content_terms("When did China impose controls?") == {"china", "impos", "control"}``
"""
from __future__ import annotations

import re
import threading
from functools import lru_cache

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)

# Chinese and Japanese write no spaces between words: a run of these characters is read as its characters
# and its overlapping bigrams ("輸出規制" -> 輸 出 規 制 輸出 出規 規制). No dictionary needed; for BM25 alone
# over the paragraphs of JSQuAD (4,442 questions) and CMRC 2018 trial (1,002), hit@5 / MRR@10 were: bigrams
# 0.945/0.908 and 0.991/0.981; characters and bigrams 0.951/0.912 and 0.995/0.983; MeCab (unidic-lite)
# 0.954/0.906; jieba 0.987/0.973.
CJK = "\u3005-\u3007\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
_CJK_RUN = re.compile(f"[{CJK}]+")
_CJK_CHAR = re.compile(f"[{CJK}]")
# Full-width ASCII (２０２３, ＡＢＣ, ！) and the ideographic space, folded to their plain forms.
_WIDE = re.compile("[\uff01-\uff5e\u3000]")
_SEGMENTED = re.compile(f"[{CJK}\uff01-\uff5e\u3000]")
# BM25's word pattern (bm25s's default) plus single CJK characters, which the default would drop.
TOKEN_PATTERN = rf"(?u)\b\w\w+\b|[{CJK}]"
# Particles, question words and endings of Japanese and Chinese questions, which carry no topic.
_CJK_STOP = {
    "いつ", "何", "なに", "なん", "何の", "誰", "だれ", "どこ", "どの", "どれ", "どう", "です", "ます", "すか",
    "ですか", "たか", "のは", "には", "とは", "ては", "は", "が", "を", "に", "の", "で", "と", "も", "か", "た",
    "いる", "てい", "什么", "么时", "哪个", "哪些", "哪里", "多少", "是什", "谁", "吗", "呢", "的", "了", "是", "在",
    "和", "么", "什", "哪",
    "个", "有", "为", "于", "对", "将", "被", "也", "又", "这", "那", "之", "与", "及", "等", "几", "少", "多",
} | {chr(c) for c in range(0x3041, 0x3097)}  # a lone hiragana is grammar (particles, endings), not topic

# Question words and fillers carry no topic; dropping them keeps overlap about content.
_EXTRA_STOP = {
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "did", "does", "do", "is", "are",
    "was", "were", "has", "have", "had", "can", "could", "would", "should", "will", "may", "might", "much",
    "many", "tell", "me", "about", "according", "article", "document", "documents", "text", "say", "said",
    "says", "mention", "mentioned", "s",
}


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN) | _EXTRA_STOP | _CJK_STOP


def has_cjk(text: str) -> bool:
    """Whether ``text`` has a Chinese or Japanese character. Example: ``has_cjk("ガリウム") is True``"""
    return _CJK_CHAR.search(text) is not None


def mostly_cjk(text: str) -> bool:
    """Whether at least a third of the letters and digits of ``text`` are Chinese or Japanese (a sentence
    in those languages, not an English one naming 東京 once). Example: ``mostly_cjk("Tokyo (東京)") is False``"""
    letters = sum(ch.isalnum() for ch in text)
    return bool(letters) and 3 * len(_CJK_CHAR.findall(text)) >= letters


def fold_width(text: str) -> str:
    """Full-width ASCII and the ideographic space as plain ASCII. Example: ``fold_width("２０２３年") == "2023年"``"""
    return _WIDE.sub(lambda m: " " if m.group() == "\u3000" else chr(ord(m.group()) - 0xFEE0), text)


def cjk_grams(run: str) -> list[str]:
    """A CJK run's characters, then its overlapping bigrams.
    Example: ``cjk_grams("輸出規制") == ["輸", "出", "規", "制", "輸出", "出規", "規制"]``"""
    return list(run) + [run[i:i + 2] for i in range(len(run) - 1)]


def segment(text: str) -> str:
    """``text`` with full-width forms folded and each CJK run written as its characters and bigrams between
    spaces, so word-based tokenizers see Chinese and Japanese terms; text without either comes back unchanged.
    Example: ``segment("輸出") == " 輸 出 輸出 "``"""
    if not _SEGMENTED.search(text):
        return text
    return _CJK_RUN.sub(lambda m: " " + " ".join(cjk_grams(m.group())) + " ", fold_width(text))


_thread_local = threading.local()


def stemmer():
    """The English Snowball stemmer used by BM25 and the answer scorers, one per thread
    (PyStemmer objects keep a cache and are not safe to share between threads)."""
    if not hasattr(_thread_local, "stemmer"):
        import Stemmer

        _thread_local.stemmer = Stemmer.Stemmer("english")
    return _thread_local.stemmer


def words(text: str) -> list[str]:
    """Lower-cased word tokens, apostrophes kept inside words."""
    tokens = (w.replace("’", "'") for w in _WORD.findall(segment(text).lower()))
    return [w[:-2] if w.endswith("'s") else w for w in tokens]


def content_terms(text: str) -> set[str]:
    """Stemmed words that are not stop words or question words."""
    stop = _stopwords()
    kept = [w for w in words(text) if w not in stop]
    return set(stemmer().stemWords(kept))


def overlap(question_terms: set[str], text: str, weights: dict[str, float] | None = None) -> float:
    """Weighted share of the question's terms that ``text`` contains (0 when there are none)."""
    if not question_terms:
        return 0.0
    found = content_terms(text) & question_terms
    if weights is None:
        return len(found) / len(question_terms)
    total = sum(weights.get(t, 1.0) for t in question_terms)
    return sum(weights.get(t, 1.0) for t in found) / total if total else 0.0
