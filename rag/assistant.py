"""The public entry point: build or open an index, then ask, stream and retrieve.

Example::

    assistant = Assistant.build(["seeds"], index_dir="indexes/default")
    answer = assistant.ask("When did China impose the rare metals controls?")
    print(answer.text, [c.title for c in answer.citations])
"""
from __future__ import annotations

import threading
import time
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path

from .backends.base import Answerer, create_answerer
from .config import Settings
from .documents import display_path
from .embedding import embedder_for, get_embedder
from .index import Index
from .injection import clip
from .ingest import IngestReport, forget, ingest
from .numbering import LiveNumbering, citing_order, renumber
from .questions import MAX_HISTORY_TURNS, checked_history, checked_k, clean_question, standalone_question
from .response import Response, until_sentence
from .retrieval import Filters, Hit, Retriever
from .storage import current_generation
from .errors import RagError
from .text import strip_markers
from .types import Answer, Citation
from .verification import NO_ANSWER, check_answer, source_verdicts

History = list[tuple[str, str]] | None


class Assistant:
    """Answers questions from one index with cited passages. Safe to share between threads:
    ingestion builds a new index and swaps it in, so questions in flight keep a consistent view."""

    def __init__(self, index: Index, index_dir: Path, settings: Settings, answerer: Answerer | None = None):
        self.settings = settings
        self.index_dir = Path(index_dir)
        self.embedder = embedder_for(settings)
        # Answerers compare texts they encode themselves (question and passage sentences), not the index's
        # vectors, so they get the model at full precision whatever precision the index is searched in.
        full = get_embedder(settings.embed_model, settings.embed_batch_size)
        self.answerer = answerer or create_answerer(settings, full)
        self._index = index
        self._generation = _generation(self.index_dir)
        self._write_lock = threading.Lock()

    @classmethod
    def open(cls, index_dir: str | Path | None = None, settings: Settings | None = None) -> Assistant:
        """Open an existing index (IndexNotFoundError, IndexCorruptError or IndexMismatchError otherwise)."""
        settings = settings or Settings()
        index_dir = Path(index_dir or settings.index)
        return cls(Index.load(index_dir, settings), index_dir, settings)

    @classmethod
    def build(cls, paths: list[str | Path], index_dir: str | Path | None = None, settings: Settings | None = None,
              prune: bool = False, rebuild: bool = False, progress: bool = False) -> Assistant:
        """Ingest ``paths`` incrementally into ``index_dir`` (created if needed), then open it."""
        settings = settings or Settings()
        index_dir = Path(index_dir or settings.index)
        _, index = ingest(paths, index_dir, settings, prune=prune, rebuild=rebuild, progress=progress)
        return cls(index, index_dir, settings)

    def ingest(self, paths: list[str | Path], prune: bool = False, rebuild: bool = False,
               progress: bool = False) -> IngestReport:
        """Add or update documents in this assistant's index; answerable as soon as this returns."""
        with self._write_lock:
            report, index = ingest(paths, self.index_dir, self.settings, prune=prune, rebuild=rebuild,
                                   progress=progress)
            self._index, self._generation = index, _generation(self.index_dir)
        return report

    def remove(self, paths: list[str]) -> IngestReport:
        """Remove the documents indexed under ``paths`` (stored paths; the files stay); gone from answers at once."""
        with self._write_lock:
            report, index = forget(paths, self.index_dir, self.settings)
            self._index, self._generation = index, _generation(self.index_dir)
        return report

    def refresh(self) -> bool:
        """Serve the index generation on disk when another process (``rag ingest``) wrote a newer one.

        Example: ``assistant.refresh()  # True when CURRENT changed since this index was opened``
        """
        if _generation(self.index_dir) == self._generation:
            return False
        with self._write_lock:
            generation = _generation(self.index_dir)
            if generation == self._generation:
                return False
            self._index, self._generation = Index.load(self.index_dir, self.settings), generation
        return True

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
        k = self.settings.top_k if k is None else checked_k(k)
        return self._search(self._index, clean_question(question, self.settings.max_question_chars), k, filters)

    def _search(self, index: Index, query: str, k: int, filters: Filters | None) -> list[Citation]:
        hits = Retriever(index, self.embedder, self.settings).search(query, k, filters)
        return [_citation(index, hit, number) for number, hit in enumerate(hits, start=1)]

    def ask(self, question: str, history: History = None, filters: Filters | None = None) -> Answer:
        """Answer with ``[n]`` citations; ``history`` is earlier (question, answer_text) turns, oldest first."""
        return self.stream(question, history, filters).answer

    def stream(self, question: str, history: History = None, filters: Filters | None = None) -> Response:
        """The answer as it is written: iterate for text pieces, then read ``.answer`` (finished, verified).

        Example: ``response = assistant.stream("Who?"); text = "".join(response); response.answer.citations``
        """
        started = time.perf_counter()
        question = clean_question(question, self.settings.max_question_chars)
        history = checked_history(history)[-MAX_HISTORY_TURNS:]
        return Response(self._answer(question, history, filters, started))

    def _answer(self, question: str, history: list[tuple[str, str]], filters: Filters | None,
                started: float) -> Generator[str, None, Answer]:
        index = self._index  # one snapshot for retrieval and the answer built from it, whatever ingest swaps in
        timings: dict[str, float] = {}
        standalone = standalone_question(question, history, self.answerer.condense, self.settings.max_question_chars)
        timings["condense_ms"] = _ms(started)
        mark = time.perf_counter()
        # Not re-validated: standalone_question already bounds the rewrite to the question limit.
        sources = self._search(index, standalone, self.settings.top_k, filters)
        timings["retrieve_ms"] = _ms(mark)
        mark = time.perf_counter()
        pieces: list[str] = []
        # The history too: a follow-up is answered about what it newly asks, not with the last answer again.
        # Nothing after the abstention sentence is shown while it is written (check_answer drops it after).
        # Shown with the numbers the Answer will carry (cited sources 1..n in citing order); ``pieces`` keeps
        # the answerer's own numbers, which _finish maps the same way.
        live = LiveNumbering(c.number for c in sources)
        for piece in until_sentence(self.answerer.answer(standalone, sources, history=history or None), NO_ANSWER,
                                    pieces):
            shown = live.feed(piece)
            if shown:
                yield shown
        rest = live.flush()
        if rest:
            yield rest
        timings["answer_ms"] = _ms(mark)
        mark = time.perf_counter()
        answer = self._finish(index, question, standalone, "".join(pieces), sources)
        timings["verify_ms"] = _ms(mark)
        timings["total_ms"] = _ms(started)
        answer.timings = timings
        return answer

    def _finish(self, index: Index, question: str, standalone: str, raw: str, sources: list[Citation]) -> Answer:
        checked = check_answer(raw, sources, self.embedder.encode_cached)
        sources = _judged(index, sources, checked.sentences)
        # Cited sources become 1..n in citing order (no gaps in the markers), numbered once here for every face.
        mapping = citing_order(checked.text, [c.number for c in sources])
        text, sources, checks = renumber(checked.text, sources, checked.sentences, mapping)
        cited_numbers = {mapping.get(n, n) for n in checked.cited}
        return Answer(
            text=text,
            citations=[c for c in sources if c.number in cited_numbers],
            sources=sources,
            abstained=checked.abstained,
            question=question,
            standalone_question=standalone,
            sentences=checks,
            answerer=self.answerer.name,
        )


def _judged(index: Index, sources: list[Citation], checks) -> list[Citation]:
    """Copies of the sources with the checks' verdicts, and the page of the sentence each backs."""
    verdicts = source_verdicts(checks)
    pages = _cited_pages(index, sources, checks)
    out = []
    for source in sources:
        verdict = verdicts.get(source.number)
        judged = dict(supported=verdict.supported, support_score=verdict.support_score,
                      evidence=verdict.evidence) if verdict else dict(evidence=list(source.evidence))
        out.append(replace(source, **judged, page=pages.get(source.number, source.page),
                           instructions=list(source.instructions)))
    return out


def _cited_pages(index: Index, sources: list[Citation], checks) -> dict[int, int | None]:
    """A passage can run over a page break: the page of the sentence a cited source backs, by number."""
    by_number = {c.number: c for c in sources}
    pages = {}
    for check in checks:
        claim = strip_markers(check.sentence).rstrip(".!?")
        for number in check.cited:
            source = by_number.get(number)
            doc = index.documents.get(source.doc_id) if source else None
            if source is None or doc is None or not doc.pages:
                continue
            evidence = check.evidence.get(number)  # the supporting sentence, else the quoted claim
            at = evidence[0][0] if evidence else source.text.find(claim) if claim else -1
            if at >= 0:
                pages[number] = doc.page_at(source.start + at)
    return pages


def _citation(index: Index, hit: Hit, number: int) -> Citation:
    chunk = index.chunks[hit.position]
    doc = index.documents[chunk.doc_id]
    return Citation(
        number=number, doc_id=doc.doc_id, title=doc.title, source=display_path(doc.paths[0]) if doc.paths else "",
        text=chunk.text, start=chunk.start, end=chunk.end, score=round(hit.score, 6), url=doc.url, date=doc.date,
        chunk_id=chunk.chunk_id, page=doc.page_at(chunk.start),
        instructions=clip(doc.instructions, chunk.start, chunk.end),
    )


def _generation(index_dir: Path) -> str:
    """The live generation's name ('' when unreadable): it changes whenever any writer saves the index."""
    try:
        return current_generation(index_dir).name
    except RagError:
        return ""


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)
