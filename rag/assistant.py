"""The public entry point: build or open an index, then ask, stream and retrieve.

Example::

    assistant = Assistant.build(["seeds"], index_dir="indexes/default")
    answer = assistant.ask("When did China impose the rare metals controls?")
    print(answer.text, [c.title for c in answer.citations])
"""
from __future__ import annotations

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
from .embedding import get_embedder
from .index import Index
from .ingest import IngestReport, ingest
from .retrieval import Filters, Hit, Retriever
from .errors import QuestionError
from .types import Answer, Citation

History = list[tuple[str, str]] | None


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
                at = source.text.find(claim) if doc is not None and doc.pages and claim else -1
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
        """The ranked passages answering would use, numbered from 1."""
        return self._search(clean_question(question, self.settings.max_question_chars), k, filters)

    def _search(self, query: str, k: int | None, filters: Filters | None) -> list[Citation]:
        index = self._index
        hits = Retriever(index, self.embedder, self.settings).search(query, k or self.settings.top_k, filters)
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
        standalone = self._standalone(question, history)
        timings["condense_ms"] = _ms(started)
        mark = time.perf_counter()
        # Not re-validated: a rewritten follow-up may be longer than the question limit.
        sources = self._search(standalone, self.settings.top_k, filters)
        timings["retrieve_ms"] = _ms(mark)
        mark = time.perf_counter()
        pieces = []
        for piece in self.answerer.answer(standalone, sources):
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
        if not history:
            return question
        history = _checked_history(history)
        rewritten = self.answerer.condense(question, history)
        return rewritten.strip() if rewritten and rewritten.strip() else condense_deterministic(question, history)

    def _finish(self, question: str, standalone: str, raw: str, sources: list[Citation]) -> Answer:
        text = drop_invalid_citations(raw, {c.number for c in sources}) or NO_ANSWER
        abstained = is_abstention(text) or not sources
        checks = [] if abstained else verify_citations(text, sources, self.embedder.encode)
        cited_numbers = {n for check in checks for n in check.cited}
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
    """History as (question, answer_text) string pairs; anything else is a QuestionError."""
    try:
        pairs = [(q, a) for q, a in history]
    except (TypeError, ValueError) as exc:
        raise QuestionError("history must be a list of (question, answer_text) pairs, oldest first.") from exc
    return [(str(q), str(a)) for q, a in pairs]


def _citation(index: Index, hit: Hit, number: int) -> Citation:
    chunk = index.chunks[hit.position]
    doc = index.documents[chunk.doc_id]
    return Citation(
        number=number, doc_id=doc.doc_id, title=doc.title, source=doc.paths[0] if doc.paths else "",
        text=chunk.text, start=chunk.start, end=chunk.end, score=round(hit.score, 6), url=doc.url, date=doc.date,
        chunk_id=chunk.chunk_id, page=doc.page_at(chunk.start),
    )


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)
