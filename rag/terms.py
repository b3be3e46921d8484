"""Content terms of a text (lower-cased, stop words dropped, stemmed), for lexical overlap scores.

Example: ``content_terms("When did China impose controls?") == {"china", "impos", "control"}``
"""
from __future__ import annotations

import re
import threading
from functools import lru_cache

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)

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

    return frozenset(STOPWORDS_EN) | _EXTRA_STOP


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
    tokens = (w.replace("’", "'") for w in _WORD.findall(text.lower()))
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
