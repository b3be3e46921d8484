"""The public entry point: build or open an index, then ask, stream and retrieve.

Example::

    assistant = Assistant.build(["seeds"], index_dir="indexes/default")
    answer = assistant.ask("When did China impose the rare metals controls?")
    print(answer.text, [c.title for c in answer.citations])
"""
from __future__ import annotations

import numbers
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .answering import (
    NO_ANSWER, clean_question, condense_deterministic, drop_invalid_citations, is_abstention, strip_markers,
    verify_citations,
)
from .backends.base import Answerer, create_answerer
from .config import Settings
from .documents import display_path
from .embedding import get_embedder
from .index import Index
from .injection import clip
from .ingest import IngestReport, ingest
from .retrieval import Filters, Hit, Retriever
from .errors import QuestionError
from .types import Answer, Citation
from .verification import dropped_after_abstention, split_abstention, with_verdicts

History = list[tuple[str, str]] | None
# Earlier turns a follow-up is rewritten from: the recent ones carry what "it" refers to, and an
# unbounded history would make an unbounded standalone question (and LLM prompt).
MAX_HISTORY_TURNS = 5
MAX_ANSWER_CHARS = 4000


class Assistant:
    """Answers questions from one index with cited passages. Safe to share between threads:
    ingestion builds a new index and swaps it in, so questions in flight keep a consistent view."""

    def __init__(self, index: Index, index_dir: Path, settings: Settings, answerer: Answerer | None = None):
        self.settings = settings
        self.index_dir = Path(index_dir)
        self.answerer = answerer or create_answerer(settings)
        self.embedder = get_embedder(settings.embed_model, settings.embed_batch_size)
        self._index = index
        self._write_lock = threading.Lock()

    @classmethod
    def open(cls, index_dir: str | Path | None = None, settings: Settings | None = None) -> "Assistant":
        """Open an existing index (IndexNotFoundError, IndexCorruptError or IndexMismatchError otherwise)."""
        settings = settings or Settings()
        index_dir = Path(index_dir or settings.index)
        return cls(Index.load(index_dir, settings), index_dir, settings)

    @classmethod
    def build(cls, paths: list[str | Path], index_dir: str | Path | None = None, settings: Settings | None = None,
              prune: bool = False, rebuild: bool = False, progress: bool = False) -> "Assistant":
        """Ingest ``paths`` incrementally into ``index_dir`` (created if needed), then open it."""
        settings = settings or Settings()
        index_dir = Path(index_dir or settings.index)
        _, index = ingest(paths, index_dir, settings, prune=prune, rebuild=rebuild, progress=progress)
        return cls(index, index_dir, settings)

    def ingest(self, paths: list[str | Path], prune: bool = False, rebuild: bool = False,
               progress: bool = False) -> IngestReport:
        """Add or update documents in this assistant's index; answerable as soon as this returns."""
        with self._write_lock:
            report, index = ingest(paths, self.index_dir, self.settings, prune=prune, rebuild=rebuild, progress=progress)
            self._index = index
        return report

    def _page_of_cited_sentences(self, sources: list[Citation], checks) -> None:
        """A passage can run over a page break: give a cited source the page of the sentence it backs."""
        documents = self._index.documents
        for check in checks:
            claim = strip_markers(check.sentence).rstrip(".!?")
            for number in check.cited:
                source = next((c for c in sources if c.number == number), None)
                doc = documents.get(source.doc_id) if source else None
                if doc is None or not doc.pages:
                    continue
                evidence = check.evidence.get(number)  # the supporting sentence, else the quoted claim
                at = evidence[0][0] if evidence else source.text.find(claim) if claim else -1
                if at >= 0:
                    source.page = doc.page_at(source.start + at)

    @property
    def index(self) -> Index:
        """The index questions are answered from now (replaced, never mutated, by ingest)."""
        return self._index

    def stats(self) -> dict:
        """Documents, chunks, model, dimension, size on disk."""
        return self._index.stats(self.index_dir)

    def retrieve(self, question: str, k: int | None = None, filters: Filters | None = None) -> list[Citation]:
        """The ranked passages answering would use, numbered from 1; ``k`` None means RAG_TOP_K.

        Example: ``assistant.retrieve("rare metals", k=3)[0].number == 1``
        """
        k = self.settings.top_k if k is None else _checked_k(k)
        return self._search(clean_question(question, self.settings.max_question_chars), k, filters)

    def _search(self, query: str, k: int, filters: Filters | None) -> list[Citation]:
        index = self._index
        hits = Retriever(index, self.embedder, self.settings).search(query, k, filters)
        return [_citation(index, hit, number) for number, hit in enumerate(hits, start=1)]

    def ask(self, question: str, history: History = None, filters: Filters | None = None) -> Answer:
        """Answer with ``[n]`` citations; ``history`` is earlier (question, answer_text) turns, oldest first."""
        for piece in self.stream(question, history, filters):
            if isinstance(piece, Answer):
                return piece
        raise AssertionError("stream() always ends with an Answer")

    def stream(self, question: str, history: History = None, filters: Filters | None = None) -> Iterator[str | Answer]:
        """Yield answer text pieces as they are written, then the finished, verified Answer."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        question = clean_question(question, self.settings.max_question_chars)
        history = _checked_history(history)[-MAX_HISTORY_TURNS:]
        standalone = self._standalone(question, history)
        timings["condense_ms"] = _ms(started)
        mark = time.perf_counter()
        # Not re-validated: _standalone already bounds the rewrite to the question limit.
        sources = self._search(standalone, self.settings.top_k, filters)
        timings["retrieve_ms"] = _ms(mark)
        mark = time.perf_counter()
        pieces = []
        # The history too: a follow-up is answered about what it newly asks, not with the last answer again.
        for piece in self.answerer.answer(standalone, sources, history=history or None):
            pieces.append(piece)
            yield piece
        timings["answer_ms"] = _ms(mark)
        mark = time.perf_counter()
        answer = self._finish(question, standalone, "".join(pieces), sources)
        timings["verify_ms"] = _ms(mark)
        timings["total_ms"] = _ms(started)
        answer.timings = timings
        yield answer

    def _standalone(self, question: str, history: History) -> str:
        """The follow-up rewritten from the last few turns, no longer than the question limit."""
        history = _checked_history(history)
        if not history:
            return question
        limit = self.settings.max_question_chars
        recent = [(q[:limit], a[:MAX_ANSWER_CHARS]) for q, a in history[-MAX_HISTORY_TURNS:]]
        rewritten = self.answerer.condense(question, recent)
        standalone = rewritten.strip() if rewritten and rewritten.strip() else condense_deterministic(question, recent)
        return standalone[:limit]  # the question comes first in a rewrite, so a cut keeps it

    def _finish(self, question: str, standalone: str, raw: str, sources: list[Citation]) -> Answer:
        text = drop_invalid_citations(raw, {c.number for c in sources}) or NO_ANSWER
        text, after = split_abstention(text)  # the abstention sentence stands alone; the rest is flagged
        abstained = is_abstention(text) or not sources
        checks = [] if abstained else verify_citations(text, sources, self.embedder.encode_cached)
        cited_numbers = {n for check in checks for n in check.cited}
        if after:
            checks.append(dropped_after_abstention(after))
        sources = with_verdicts(sources, checks)
        self._page_of_cited_sentences(sources, checks)
        return Answer(
            text=text,
            citations=[c for c in sources if c.number in cited_numbers],
            sources=sources,
            abstained=abstained,
            question=question,
            standalone_question=standalone,
            sentences=checks,
            answerer=self.answerer.name,
        )


def _checked_history(history) -> list[tuple[str, str]]:
    """History as (question, answer_text) string pairs, oldest first; anything else is a QuestionError.

    Example: ``_checked_history([("Who?", "Ann [1].")]) == [("Who?", "Ann [1].")]``
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
                                f"not {_shown(turn)}.")
        pairs.append((turn[0], turn[1]))
    return pairs


def _checked_k(k) -> int:
    """``k`` as a positive int; anything else (0, -1, "3", 2.5, True) is a QuestionError."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise QuestionError(f"k must be a positive whole number of passages (or None for RAG_TOP_K), not {_shown(k)}.")
    return int(k)


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _citation(index: Index, hit: Hit, number: int) -> Citation:
    chunk = index.chunks[hit.position]
    doc = index.documents[chunk.doc_id]
    return Citation(
        number=number, doc_id=doc.doc_id, title=doc.title, source=display_path(doc.paths[0]) if doc.paths else "",
        text=chunk.text, start=chunk.start, end=chunk.end, score=round(hit.score, 6), url=doc.url, date=doc.date,
        chunk_id=chunk.chunk_id, page=doc.page_at(chunk.start),
        instructions=clip(doc.instructions, chunk.start, chunk.end),
    )


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)
