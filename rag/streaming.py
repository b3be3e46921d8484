"""Chunk and embed documents as a stream: a background thread chunks the next documents while the
encoder embeds the current group, and only one group's texts are held at a time; each document comes
out, with its chunks and their vectors, as soon as its last chunk is embedded.

Example: ``for doc, chunks, vectors in embed_documents(docs, embedder, settings): index.add_document(...)``
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .chunking import Chunk, PieceCounts, chunk_text
from .config import Settings
from .documents import Document
from .embedding import Encoder

# Chunks embedded per group: large enough that the encoder's length-sorted batches pad little, small
# enough that one group's texts (and the next one being chunked) stay a few MB.
GROUP_CHUNKS = 1024


@dataclass(frozen=True)
class IngestProgress:
    """Where an ingest stands, for a progress bar or the UI's upload status.

    Counts are of the documents being embedded now (unchanged files are not counted). The total number
    of chunks is known only once every document is chunked, so the fraction done and the ETA are
    measured in characters of text, which are known up front.
    Example: ``f"{p.chunks_done} chunks, {p.chunks_per_s:.0f}/s, {p.eta_s:.0f} s left"``
    """

    files_done: int
    files_total: int
    chunks_done: int
    tokens_done: int
    chars_done: int
    chars_total: int
    elapsed_s: float
    current: str = ""  # path of the document being embedded

    @property
    def fraction(self) -> float:
        return self.chars_done / self.chars_total if self.chars_total else 1.0

    @property
    def chunks_per_s(self) -> float:
        return self.chunks_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far; None before anything is done."""
        if not self.chars_done:
            return None
        return self.elapsed_s * (self.chars_total - self.chars_done) / self.chars_done


ProgressCallback = Callable[[IngestProgress], None]


def title_prefix(title: str, embedder: Encoder, max_tokens: int, counts: PieceCounts | None = None) -> str:
    """The title line prepended to each chunk's embedding text (never to its stored span); ``counts``, when
    given, spares the tokenizer a title it already knows fits."""
    if not title or max_tokens <= 0:
        return ""
    known = counts.counts([title])[0] if counts is not None else None
    if known is not None and known <= max_tokens:
        return title.strip() + "\n"  # it fits whole: no offsets needed
    offsets = embedder.token_offsets([title])[0]
    cut = title if len(offsets) <= max_tokens else title[: offsets[max_tokens - 1][1]]
    return cut.strip() + "\n"


def embed_documents(docs: list[Document], embedder: Encoder, settings: Settings,
                    progress: ProgressCallback | None = None) -> Iterator[tuple[Document, list[Chunk], np.ndarray]]:
    """Yield ``(doc, chunks, vectors)`` per document, in order; row i of vectors embeds chunks[i] (with the
    title prefix). ``progress`` is called at the start, after each embedded group and at the end."""
    groups: queue.Queue = queue.Queue(maxsize=2)  # chunking runs at most two groups ahead
    stop = threading.Event()
    worker = threading.Thread(target=_chunk_groups, args=(docs, embedder, settings, groups, stop), daemon=True)
    worker.start()
    tracker = _Tracker(docs, progress)
    tracker.report()  # the totals, before the first group is done
    pending: dict[str, list[np.ndarray]] = {}
    try:
        while (group := groups.get()) is not None:
            if isinstance(group, BaseException):
                raise group
            embedded = [item for item in group if item[1] is not None]
            vectors = iter(embedder.encode([text for _, _, _, text in embedded]))
            for doc, chunk, last, _ in group:
                if chunk is not None:
                    pending.setdefault(doc.doc_id, []).append(next(vectors))
                    tracker.embedded(doc, chunk)
                if last is not None:  # the document's last chunk: hand the document on
                    rows = pending.pop(doc.doc_id, [])
                    yield doc, last, np.vstack(rows) if rows else np.zeros((0, embedder.dimension), np.float32)
                    tracker.finished(doc)
            tracker.report()
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue, then let it end
            try:
                groups.get_nowait()
            except queue.Empty:
                worker.join(0.05)
    tracker.report()


def _chunk_groups(docs: list[Document], embedder: Encoder, settings: Settings, groups: queue.Queue,
                  stop: threading.Event) -> None:
    """Put lists of ``(doc, chunk, all its chunks if this is the last else None, embedding text)`` on
    ``groups``, then None; a document without chunks is one item with chunk and text None."""
    group: list = []
    try:
        # Sentences counted piece by piece, each distinct word tokenized once for the whole ingest.
        token_offsets = PieceCounts.for_tokenizer(embedder.tokenizer, embedder.token_offsets)
        for doc in docs:
            chunks = chunk_text(doc.doc_id, doc.text, token_offsets, settings.chunk_tokens,
                                settings.chunk_overlap_tokens)
            prefix = title_prefix(doc.title, embedder, settings.title_prefix_tokens,
                                  token_offsets if isinstance(token_offsets, PieceCounts) else None)
            if not chunks:
                group.append((doc, None, [], None))  # nothing to embed; still handed on, in order
            for i, chunk in enumerate(chunks):
                group.append((doc, chunk, chunks if i == len(chunks) - 1 else None, prefix + chunk.text))
                if len(group) >= GROUP_CHUNKS:
                    _put(groups, group, stop)
                    group = []
            if stop.is_set():
                return
        _put(groups, group, stop)
        _put(groups, None, stop)
    except Exception as exc:  # noqa: BLE001 - handed to the consumer, which raises it in its own thread
        _put(groups, exc, stop)


def _put(groups: queue.Queue, item, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            groups.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


class _Tracker:
    """Counts what is done and calls the progress callback."""

    def __init__(self, docs: list[Document], progress: ProgressCallback | None):
        self.progress, self.started = progress, time.perf_counter()
        self.files_total, self.chars_total = len(docs), sum(len(d.text) for d in docs)
        self.files_done = self.chunks_done = self.tokens_done = self.chars_finished = self.current_chars = 0
        self.current = docs[0].path if docs else ""

    def embedded(self, doc: Document, chunk: Chunk) -> None:
        self.chunks_done += 1
        self.tokens_done += chunk.n_tokens
        self.current, self.current_chars = doc.path, chunk.end

    def finished(self, doc: Document) -> None:
        self.files_done += 1
        self.chars_finished += len(doc.text)
        self.current_chars = 0

    def report(self) -> None:
        if self.progress:
            self.progress(IngestProgress(
                self.files_done, self.files_total, self.chunks_done, self.tokens_done,
                self.chars_finished + self.current_chars, self.chars_total, time.perf_counter() - self.started,
                self.current))
