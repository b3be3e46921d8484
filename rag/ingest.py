"""Incremental ingestion: load files, chunk and embed only what changed, persist atomically.

Re-ingesting unchanged files embeds nothing; a changed file's chunks are replaced; ``prune`` drops
files that vanished from the given folders; identical content under two names is stored once.

Example: ``report = ingest(["seeds"], Path("indexes/default"), Settings())``
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .config import Settings
from .documents import Document, SkippedFile, display_path, load_paths
from .embedding import Encoder, embedder_for
from .errors import ConfigError, IndexMismatchError
from .index import Index, chunker_settings
from .injection import first_marked
from .repair import open_for_ingest
from .storage import IndexLock, has_index
from .streaming import IngestProgress, ProgressCallback, embed_documents, title_prefix

__all__ = ["IngestProgress", "IngestReport", "ProgressCallback", "forget", "ingest", "title_prefix", "token_offsets"]


@dataclass
class IngestReport:
    """What an ingest did, by path; ``chunks_embedded`` is 0 when nothing changed."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # damaged in the index, read and embedded again
    duplicates: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Documents holding text addressed to AI systems: {"path", "sentence" (the first, shortened), "count"}.
    instructions: list[dict] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_removed: int = 0
    tokens_embedded: int = 0
    documents: int = 0
    chunks: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """Plain data for JSON and the UI; paths in their display form (no undecodable bytes)."""
        data = asdict(self)
        for key in ("added", "updated", "removed", "unchanged", "repaired", "duplicates"):
            data[key] = [display_path(p) for p in data[key]]
        data["skipped"] = [{"path": display_path(s.path), "reason": s.reason} for s in self.skipped]
        return data


def ingest(paths: list[str | Path], index_dir: Path, settings: Settings, prune: bool = False,
           rebuild: bool = False, progress: bool | ProgressCallback | None = False) -> tuple[IngestReport, Index]:
    """Bring the index at ``index_dir`` in step with ``paths``; returns the report and the new index.

    ``progress``: True draws a bar on stderr; a callable gets an ``IngestProgress`` (chunks done, rate,
    ETA) at the start, after each embedded group of chunks and at the end, from the calling thread.
    Example: ``ingest(["big.txt"], index_dir, settings, progress=lambda p: print(p.chunks_done, p.eta_s))``
    """
    started = time.perf_counter()
    repair = None
    loaded = load_paths(paths, max_file_mb=settings.max_file_mb)
    embedder = embedder_for(settings)
    _check_chunk_budget(settings, embedder)
    report = IngestReport(skipped=loaded.skipped, notes=loaded.notes)
    with IndexLock(index_dir, timeout=settings.lock_timeout):
        if rebuild or not has_index(index_dir):
            current = Index.empty(settings, embedder.dimension)
        else:
            current, repair = open_for_ingest(index_dir, settings)
            _check_same_chunker(current, settings, index_dir)
        documents = loaded.documents + (repair.extra(loaded.documents) if repair else [])
        changed = _apply(current, documents, paths, prune, report, embedder, settings, progress)
        if repair:  # a repaired index is saved even when no file changed
            repair.account(report)
        if changed or repair or rebuild or current.needs_save or not has_index(index_dir):
            current.save(index_dir)
    report.documents, report.chunks = len(current.documents), len(current.chunks)
    report.instructions = _marked(loaded.documents, current)
    report.seconds = round(time.perf_counter() - started, 3)
    return report, current


def forget(paths: list[str], index_dir: Path, settings: Settings) -> tuple[IngestReport, Index]:
    """Remove the documents indexed under ``paths`` (stored paths, as in ``Index.documents``); their files are
    left alone and everything else stays as it was. Returns the report and the new index.

    Example: ``forget(["/data/old.txt"], Path("indexes/default"), Settings())[0].removed == ["/data/old.txt"]``
    """
    started = time.perf_counter()
    report = IngestReport()
    with IndexLock(index_dir, timeout=settings.lock_timeout):
        index = Index.load(index_dir, settings)
        report.removed = [p for p in dict.fromkeys(map(str, paths)) if p in index.paths]
        by_path = {p: h for p, h in index.paths.items() if p not in set(report.removed)}
        index.set_paths(by_path)
        live_ids = {h[:16] for h in by_path.values()}
        report.chunks_removed = index.remove_documents([d for d in index.documents if d not in live_ids])
        if report.removed:
            index.save(index_dir)
    report.documents, report.chunks = len(index.documents), len(index.chunks)
    report.seconds = round(time.perf_counter() - started, 3)
    return report, index


def _check_chunk_budget(settings: Settings, embedder: Encoder) -> None:
    if settings.chunk_tokens + settings.title_prefix_tokens + 1 > embedder.max_tokens:
        raise ConfigError(
            f"RAG_CHUNK_TOKENS ({settings.chunk_tokens}) + RAG_TITLE_PREFIX_TOKENS ({settings.title_prefix_tokens}) "
            f"exceed the embedding model's window ({embedder.max_tokens} tokens); chunks would be truncated."
        )


def _check_same_chunker(index: Index, settings: Settings, index_dir: Path) -> None:
    if index.manifest.get("chunker") != chunker_settings(settings):
        raise IndexMismatchError(
            f"The index at {index_dir} was chunked with {index.manifest.get('chunker')}, the settings now say "
            f"{chunker_settings(settings)}. Rebuild it with `rag ingest PATH... --index {index_dir} --rebuild`."
        )


def _apply(index: Index, documents: list[Document], paths: list[str | Path], prune: bool,
           report: IngestReport, embedder: Encoder, settings: Settings,
           progress: bool | ProgressCallback | None) -> bool:
    """Update path→hash bookkeeping, drop unreferenced documents, embed new ones. True if anything changed."""
    by_path = dict(index.paths)  # worked on here, recorded in the index at the end
    for doc in documents:
        previous = by_path.get(doc.path)
        if previous == doc.content_hash:
            report.unchanged.append(doc.path)
            continue
        (report.updated if previous else report.added).append(doc.path)
        by_path[doc.path] = doc.content_hash
    if prune:
        report.removed = _prune(by_path, paths, {d.path for d in documents}, report)
    else:
        vanished = [p for p in _under(by_path, paths) if not Path(p).exists()]
        if vanished:
            report.notes.append(f"{len(vanished)} indexed file(s) under these folders no longer exist and are "
                                "still answered from; ingest again with --prune to remove them.")
    report.removed += _drop_unusable(by_path, report)
    live_ids = {h[:16] for h in by_path.values()}
    removed_ids = [doc_id for doc_id in index.documents if doc_id not in live_ids]
    report.chunks_removed = index.remove_documents(removed_ids)
    new_docs = _new_documents(index, documents, report)
    if new_docs:
        _embed_documents(index, new_docs, embedder, settings, report, progress)
    index.set_paths(by_path)
    return bool(report.added or report.updated or report.removed or removed_ids or new_docs)


def _prune(by_path: dict[str, str], paths: list[str | Path], present: set[str], report: IngestReport) -> list[str]:
    """Paths under the given folders that are indexed but no longer there. Skipped files are kept, and so
    is everything under a skipped folder (one that could not be listed is not proof its files are gone)."""
    skipped = {str(Path(s.path).resolve()) for s in report.skipped}
    kept_folders = [f.rstrip("/") + "/" for f in skipped if Path(f).is_dir()]
    kept = present | skipped
    gone = [p for p in _under(by_path, paths) if p not in kept and not any(p.startswith(f) for f in kept_folders)]
    for path in gone:
        del by_path[path]
    return sorted(gone)


def _drop_unusable(by_path: dict[str, str], report: IngestReport) -> list[str]:
    """Indexed files that are still there but can no longer be used (now empty, binary, unreadable, too
    large): their old content is no longer a source. Vanished files are left to --prune."""
    dropped = []
    for skipped in report.skipped:
        path = str(Path(skipped.path).resolve())
        if path in by_path and skipped.reason != "disappeared during ingest" and Path(path).is_file():
            del by_path[path]
            dropped.append(path)
            report.notes.append(f"{display_path(path)}: removed from the index: now {skipped.reason}")
    return dropped


def _marked(documents: list[Document], index: Index) -> list[dict]:
    """The given files whose stored text is addressed to AI systems, with the first such sentence."""
    found = []
    for doc in documents:
        stored = index.documents.get(doc.doc_id)
        if stored is not None and stored.instructions:
            found.append({"path": display_path(doc.path), "count": len(stored.instructions),
                          "sentence": first_marked(stored.text, stored.instructions)})
    return found


def _under(by_path: dict[str, str], paths: list[str | Path]) -> list[str]:
    """Indexed paths inside the given folders."""
    roots = [str(Path(p).resolve()).rstrip("/") + "/" for p in paths if Path(p).is_dir()]
    return [p for p in by_path if any(p.startswith(r) for r in roots)]


def _new_documents(index: Index, documents: list[Document], report: IngestReport) -> list[Document]:
    """Distinct documents not yet stored; a second name for stored content is only bookkept."""
    fresh: dict[str, Document] = {}
    unchanged = set(report.unchanged)
    for doc in documents:
        if doc.doc_id in index.documents or doc.doc_id in fresh:
            if doc.path not in unchanged:
                report.duplicates.append(doc.path)
            continue
        fresh[doc.doc_id] = doc
    return list(fresh.values())


def _embed_documents(index: Index, docs: list[Document], embedder: Encoder, settings: Settings,
                     report: IngestReport, progress: bool | ProgressCallback | None) -> None:
    """Chunk and embed ``docs`` as a stream (rag/streaming.py) and add each to the index when done."""
    callback, close = _progress(progress)
    try:
        for doc, chunks, vectors in embed_documents(docs, embedder, settings, callback):
            index.add_document(doc, chunks, vectors)
            report.chunks_embedded += len(chunks)
            report.tokens_embedded += sum(c.n_tokens for c in chunks)
    finally:
        close()


def token_offsets(embedder: Encoder):
    """The tokenizer's char offsets per text, as chunk_text wants them (no torch import)."""
    return embedder.token_offsets


def _progress(progress: bool | ProgressCallback | None) -> tuple[ProgressCallback | None, Callable[[], None]]:
    """The callback to give the stream, and what to call at the end: ``True`` draws a bar on stderr
    (chunks done, rate, ETA), a callable is called as is, False or None shows nothing."""
    if not progress:
        return None, lambda: None
    if callable(progress):
        return progress, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=1, unit="char", unit_scale=True, desc="Embedding", file=sys.stderr)

    def show(p: IngestProgress) -> None:
        bar.total = p.chars_total
        bar.update(p.chars_done - bar.n)
        bar.set_postfix_str(f"{p.chunks_done:,} chunks, {p.chunks_per_s:,.0f} chunks/s, "
                            f"{p.tokens_per_s:,.0f} tokens/s, {p.files_done}/{p.files_total} files", refresh=False)

    return show, bar.close
