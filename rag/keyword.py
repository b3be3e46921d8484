"""BM25 keyword search (bm25s): one index over the chunks, one over each chunk with its neighbours (its
context). A write tokenizes only the chunks it adds; every score is recomputed from the stored term counts
(rag/postings.py), so an index grown or shrunk equals, score for score, one built afresh.

Example: ``kw = KeywordIndex.build(["gallium controls", "chip exports"]); kw.search("gallium", 5)``
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import REBUILD_HINT, IndexCorruptError
from .postings import Postings
from .storage import access_error
from .terms import TOKEN_PATTERN, segment, stemmer

if TYPE_CHECKING:
    from .chunking import Chunk

# English stemming (terms.stemmer) and stop words: on SciFact's train split they lift BM25 from 0.666 to 0.697.
# Chinese and Japanese runs are indexed as character bigrams (terms.segment); English text is left as it was.
STOPWORDS = "en"
_EMPTY = "EMPTY"  # marks a saved index with no terms (bm25s cannot save or load one)
# Beside bm25s's files: each score's term count and each chunk's length, so a write tokenizes only new chunks.
_COUNTS, _LENGTHS = "counts.npy", "lengths.npy"

# The context index: a chunk with this many neighbours on each side, scored with less length
# normalisation (b) than the chunk index because windows at a document's ends are shorter. A claim whose
# terms are spread over neighbouring chunks still matches; tuned on BEIR SciFact's train split (bench/beir.py).
CONTEXT_NEIGHBOURS = 1
CONTEXT_K1, CONTEXT_B = 1.2, 0.4
# Recorded in each index's manifest: a saved context index built with other values is rebuilt on load.
CONTEXT_SETTINGS = {"neighbours": CONTEXT_NEIGHBOURS, "k1": CONTEXT_K1, "b": CONTEXT_B}


class KeywordIndex:
    """A bm25s index whose document i is chunk i of the docstore order (the chunk alone, or its context)."""

    def __init__(self, retriever, size: int, postings: Postings | None = None):
        self._retriever = retriever
        self.size = size
        # None for an index saved before term counts were kept: the next write rebuilds it from the text.
        self.postings = postings

    @classmethod
    def build(cls, texts: list[str], k1: float = 1.5, b: float = 0.75) -> KeywordIndex:
        """Index ``texts``; k1 and b are BM25's term-saturation and length-normalisation parameters."""
        return cls.from_postings(postings_of(texts), k1, b)

    @classmethod
    def from_postings(cls, postings: Postings, k1: float, b: float) -> KeywordIndex:
        """The bm25s index over ``postings``, its scores computed as ``bm25s.BM25.index`` computes them."""
        import bm25s

        retriever = bm25s.BM25(k1=k1, b=b)
        if not len(postings.chunks):
            # Nothing but stop words (or nothing at all): no term can match, bm25s cannot index it.
            return cls(retriever, 0, postings)
        vocab = {term: t for t, term in enumerate(postings.terms)}
        vocab.setdefault("", len(vocab))  # bm25s keeps an unscored empty token after the last term
        retriever.scores = {"data": postings.scores(k1, b), "indices": postings.chunks,
                            "indptr": postings.indptr, "num_docs": postings.size}
        retriever.vocab_dict, retriever.unique_token_ids_set = vocab, set(vocab.values())
        retriever.nonoccurrence_array = None  # used by BM25L and BM25+ only
        return cls(retriever, postings.size, postings)

    @property
    def incremental(self) -> bool:
        """True when chunks can be added or removed without tokenizing the ones held (term counts kept)."""
        return self.postings is not None

    def extended(self, texts: list[str]) -> KeywordIndex:
        """This index with ``texts`` added as the next chunks; only they are tokenized. Needs ``incremental``.

        Example: ``KeywordIndex.build(["a b"]).extended(["c d"]).size == 2``"""
        assert self.postings is not None, "extended() needs an incremental index"
        return KeywordIndex.from_postings(self.postings.appended(postings_of(texts)), *self._parameters())

    def without(self, positions: list[int]) -> KeywordIndex:
        """This index without the chunks at ``positions`` (the rest renumbered in order). Needs ``incremental``."""
        assert self.postings is not None, "without() needs an incremental index"
        return KeywordIndex.from_postings(self.postings.without(np.asarray(positions, np.int64)),
                                          *self._parameters())

    def counts_agree(self) -> bool:
        """Whether the stored term counts give exactly the stored scores (True when none are kept): counts
        that disagree would make the next write score every chunk wrongly. ``rag verify`` checks it."""
        return self.postings is None or KeywordIndex.from_postings(self.postings, *self._parameters()).same_as(self)

    def _parameters(self) -> tuple[float, float]:
        return float(self._retriever.k1), float(self._retriever.b)

    @classmethod
    def load(cls, path: Path, size: int) -> KeywordIndex:
        """Load the index saved for ``size`` chunks (IndexCorruptError when it is missing or does not match)."""
        import bm25s

        if (path / _EMPTY).exists():
            return cls(bm25s.BM25(), 0, Postings.empty(size))
        try:
            retriever = bm25s.BM25.load(str(path), mmap=False)
            stored = int(retriever.scores["num_docs"])
            postings = _load_postings(path, retriever)
        except PermissionError as exc:
            raise access_error(exc, Path(exc.filename or path)) or exc
        except Exception as exc:
            raise IndexCorruptError(
                f"The keyword index in {path} is corrupt or missing ({exc}). {REBUILD_HINT}") from exc
        if stored != size:
            raise IndexCorruptError(
                f"The keyword index in {path} holds {stored} chunks, the docstore {size}. {REBUILD_HINT}")
        index = cls(retriever, size, postings)
        problem = index.structure_problem(size)
        if problem:
            raise IndexCorruptError(f"The keyword index in {path} is corrupt ({problem}). {REBUILD_HINT}")
        return index

    def structure_problem(self, size: int) -> str | None:
        """What makes this index unusable over ``size`` chunks (a chunk id or term id out of range, broken
        offsets, scores that are not finite), or None. Example: ``KeywordIndex.build(["a b"]).structure_problem(1)``"""
        if not self.size:
            return None
        scores, vocab = self._retriever.scores, self._retriever.vocab_dict
        data, indices, indptr = (np.asarray(scores[k]) for k in ("data", "indices", "indptr"))
        if self.size != size or int(scores["num_docs"]) != size:
            return f"it holds {int(scores['num_docs'])} chunks, the docstore {size}"
        if indptr.ndim != 1 or not len(indptr) or indptr[0] != 0 or indptr[-1] != len(indices) \
                or len(indices) != len(data) or np.any(np.diff(indptr) < 0):
            return "its term offsets are inconsistent"
        if len(indices) and (indices.min() < 0 or indices.max() >= size):
            return f"a chunk id lies outside 0..{size - 1}"
        # bm25s appends an empty token "" after the last scored term; no query ever looks it up.
        terms = np.fromiter((i for t, i in vocab.items() if t), np.int64)
        if len(terms) and (terms.min() < 0 or terms.max() >= len(indptr) - 1):
            return "a term id lies outside the term table"
        if not np.all(np.isfinite(data)):
            return "a score is not finite"
        if self.postings is not None and (len(self.postings.counts) != len(data) or len(self.postings.lengths) != size):
            return "its term counts do not match its scores"
        return None

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self.size:
            self._retriever.save(str(path))
            if self.postings is not None:
                counts = self.postings.counts  # a term rarely occurs 65,536 times in one chunk: half the bytes
                np.save(path / _COUNTS, counts.astype(np.uint16) if counts.max(initial=0) < 1 << 16 else counts)
                np.save(path / _LENGTHS, self.postings.lengths)
        else:
            (path / _EMPTY).touch()

    def same_as(self, other: KeywordIndex) -> bool:
        """Same chunks, terms and scores (``rag verify`` compares a saved index with one rebuilt)."""
        if self.size != other.size or not self.size:
            return self.size == other.size
        mine, theirs = self._canonical(), other._canonical()
        return mine[0] == theirs[0] and all(np.array_equal(a, b) for a, b in zip(mine[1:], theirs[1:]))

    def _canonical(self) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """(terms, term rank, chunk, score) per stored score, in term-name order: bm25s numbers terms in
        a different order in every process, so two equal indexes differ in their raw arrays."""
        vocab, scores = self._retriever.vocab_dict, self._retriever.scores
        indptr = np.asarray(scores["indptr"])
        terms = sorted(t for t, i in vocab.items() if i < len(indptr) - 1)
        rank_of = np.zeros(len(indptr) - 1, np.int64)
        rank_of[[vocab[t] for t in terms]] = np.arange(len(terms))
        rank = rank_of[np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))]
        chunk = np.asarray(scores["indices"])
        order = np.lexsort((chunk, rank))
        return terms, rank[order], chunk[order], np.asarray(scores["data"])[order]

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk positions, scores) of the top-k chunks that share a term with the query."""
        if not self.size:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        tokens = tokenize([segment(query)], return_ids=False)
        vocab = self._retriever.vocab_dict
        terms = [t for t in tokens[0] if t in vocab]
        if not terms:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores = self._retriever.get_scores(terms)
        k = min(k, self.size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return top.astype(np.int64), scores[top].astype(np.float32)


_BATCH = 4096  # texts tokenized at a time: only one batch's words are held as Python strings


def postings_of(texts: list[str]) -> Postings:
    """The term counts of ``texts``: the terms ``tokenize`` finds in each (segmented) text, found with one
    C-level call per text and numpy for the rest (bm25s takes a Python step per token: about 2x slower).

    Example: ``postings_of(["Gallium exports", "the exports"]).lengths.tolist() == [2, 1]``"""
    if not texts:
        return Postings.empty()
    table, split, n = _TermTable(), re.compile(TOKEN_PATTERN).findall, len(texts)
    keys, counts, lengths = [], [], np.zeros(n, np.int64)
    for first in range(0, n, _BATCH):
        words, sizes = [], []
        for text in texts[first:first + _BATCH]:
            found = split(segment(text).lower())
            words.extend(found)
            sizes.append(len(found))
        term, chunk = table.ids(words), np.repeat(np.arange(first, first + len(sizes)), sizes)
        kept = term >= 0
        lengths[first:first + len(sizes)] = np.bincount(chunk[kept] - first, minlength=len(sizes))
        batch_keys, batch_counts = np.unique(term[kept] * n + chunk[kept], return_counts=True)
        keys.append(batch_keys)
        counts.append(batch_counts)
    return Postings.from_keys(np.concatenate(keys), np.concatenate(counts), lengths, table.terms)


class _TermTable:
    """Word -> term id (the number of its stem; -1 for a stop word), growing as new words come."""

    def __init__(self):
        import bm25s.tokenization

        self._stop = set(bm25s.tokenization._infer_stopwords(STOPWORDS))
        self._term_of: dict[str, int] = {}
        self._number: dict[str, int] = {}
        self.terms: list[str] = []

    def ids(self, words: list[str]) -> np.ndarray:
        new = [w for w in dict.fromkeys(words) if w not in self._term_of]
        content = [w for w in new if w not in self._stop]
        for word, stem in zip(content, stemmer().stemWords(content)):  # stemmed once per distinct word
            if stem not in self._number:
                self._number[stem] = len(self.terms)
                self.terms.append(stem)
            self._term_of[word] = self._number[stem]
        self._term_of.update(dict.fromkeys((w for w in new if w in self._stop), -1))
        return np.fromiter(map(self._term_of.__getitem__, words), np.int64, len(words))


def _load_postings(path: Path, retriever) -> Postings | None:
    """The term counts saved beside a bm25s index; None when it was saved before they were kept."""
    if not (path / _COUNTS).exists():
        return None
    indptr = np.asarray(retriever.scores["indptr"], np.int64)
    terms = [""] * (len(indptr) - 1)
    for term, i in retriever.vocab_dict.items():
        if 0 <= i < len(terms):
            terms[i] = term
    return Postings(terms, indptr, np.asarray(retriever.scores["indices"]),
                    # Mapped, not read: only a write needs them (a reader pays no memory for them).
                    np.load(path / _COUNTS, mmap_mode="r"), np.load(path / _LENGTHS, mmap_mode="r"))


def tokenize(texts: list[str], return_ids: bool = True):
    """bm25s's tokenizer with our stop words, stemmer and word pattern (which keeps single CJK characters);
    ``texts`` are already ``segment``-ed. Example: ``tokenize(["gallium exports"], return_ids=False)``"""
    import bm25s

    return bm25s.tokenize(texts, stopwords=STOPWORDS, stemmer=stemmer(), token_pattern=TOKEN_PATTERN,
                          show_progress=False, return_ids=return_ids)


def chunk_texts(chunks: Sequence[Chunk], titles: Mapping[str, str]) -> list[str]:
    """What the chunk index sees for each chunk: its document title and its text."""
    return [f"{titles[c.doc_id]}\n{c.text}" for c in chunks]


def context_texts(chunks: Sequence[Chunk], titles: Mapping[str, str], texts: Mapping[str, str],
                  neighbours: int = CONTEXT_NEIGHBOURS) -> list[str]:
    """What the context index sees for each chunk: its document title and the span from ``neighbours``
    chunks before it to as many after it, never crossing into another document."""
    at = {(c.doc_id, c.position): c for c in chunks}
    windows = []
    for chunk in chunks:
        first = next(at[(chunk.doc_id, p)] for p in range(chunk.position - neighbours, chunk.position + 1)
                     if (chunk.doc_id, p) in at)
        last = next(at[(chunk.doc_id, p)] for p in range(chunk.position + neighbours, chunk.position - 1, -1)
                    if (chunk.doc_id, p) in at)
        windows.append(f"{titles[chunk.doc_id]}\n{texts[chunk.doc_id][first.start:last.end]}")
    return windows
