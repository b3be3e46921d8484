"""Incremental ingestion: load files, chunk and embed only what changed, persist atomically.

Re-ingesting unchanged files embeds nothing; a changed file's chunks are replaced; ``prune`` drops
files that vanished from the given folders; identical content under two names is stored once.

Example: ``report = ingest(["seeds"], Path("indexes/default"), Settings())``
"""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .chunking import Chunk, chunk_text, vector_id
from .config import Settings
from .documents import Document, SkippedFile, display_path, load_paths
from .embedding import Embedder, get_embedder
from .errors import ConfigError, IndexMismatchError
from .index import Index, StoredDocument, chunker_settings
from .injection import find_instructions, first_marked
from .repair import open_for_ingest
from .storage import IndexLock, has_index


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
           rebuild: bool = False, progress: bool = False) -> tuple[IngestReport, Index]:
    """Bring the index at ``index_dir`` in step with ``paths``; returns the report and the new index."""
    started = time.perf_counter()
    repair = None
    loaded = load_paths(paths, max_file_mb=settings.max_file_mb)
    embedder = get_embedder(settings.embed_model, settings.embed_batch_size)
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


def _check_chunk_budget(settings: Settings, embedder: Embedder) -> None:
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
           report: IngestReport, embedder: Embedder, settings: Settings, progress: bool) -> bool:
    """Update path→hash bookkeeping, drop unreferenced documents, embed new ones. True if anything changed."""
    by_path: dict[str, str] = index.manifest["documents"]
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
    report.chunks_removed = _remove_documents(index, removed_ids)
    new_docs = _new_documents(index, documents, report)
    if new_docs:
        _embed_documents(index, new_docs, embedder, settings, report, progress)
    _refresh_paths(index, by_path)
    changed = bool(report.added or report.updated or report.removed or removed_ids or new_docs)
    if changed:
        index.rebuild_keyword_indexes()
    return changed


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


def _remove_documents(index: Index, doc_ids: list[str]) -> int:
    if not doc_ids:
        return 0
    dropped = set(doc_ids)
    gone = [c for c in index.chunks if c.doc_id in dropped]
    index.store.remove(np.array([vector_id(c.chunk_id) for c in gone], dtype=np.int64))
    index.chunks = [c for c in index.chunks if c.doc_id not in dropped]
    for doc_id in doc_ids:
        del index.documents[doc_id]
    index.position_of_vid = {vector_id(c.chunk_id): i for i, c in enumerate(index.chunks)}
    return len(gone)


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


def _refresh_paths(index: Index, by_path: dict[str, str]) -> None:
    paths_of: dict[str, list[str]] = {}
    for path, content_hash in sorted(by_path.items()):
        paths_of.setdefault(content_hash[:16], []).append(path)
    for doc_id, doc in index.documents.items():
        doc.paths = paths_of.get(doc_id, doc.paths)


def _embed_documents(index: Index, docs: list[Document], embedder: Embedder, settings: Settings,
                     report: IngestReport, progress: bool) -> None:
    new_chunks: list[Chunk] = []
    texts: list[str] = []
    for doc in docs:
        chunks = chunk_text(doc.doc_id, doc.text, token_offsets(embedder), settings.chunk_tokens,
                            settings.chunk_overlap_tokens)
        prefix = title_prefix(doc.title, embedder, settings.title_prefix_tokens)
        new_chunks.extend(chunks)
        texts.extend(prefix + c.text for c in chunks)
        index.documents[doc.doc_id] = StoredDocument(
            doc.doc_id, doc.content_hash, doc.title, doc.text, doc.size, [doc.path], doc.date, doc.url,
            list(doc.pages), instructions=find_instructions(doc.text),
        )
    vectors = embed_sorted(embedder, texts, progress)
    index.store.add(np.array([vector_id(c.chunk_id) for c in new_chunks], dtype=np.int64), vectors)
    first = len(index.chunks)
    index.chunks.extend(new_chunks)
    index.position_of_vid.update({vector_id(c.chunk_id): first + i for i, c in enumerate(new_chunks)})
    report.chunks_embedded = len(new_chunks)
    report.tokens_embedded = sum(c.n_tokens for c in new_chunks)


def token_offsets(embedder: Embedder):
    """The tokenizer's char offsets per text, as chunk_text wants them."""

    def offsets(texts):
        return embedder.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]

    return offsets


def title_prefix(title: str, embedder: Embedder, max_tokens: int) -> str:
    """The title line prepended to each chunk's embedding text (never to its stored span)."""
    if not title or max_tokens <= 0:
        return ""
    offsets = embedder.tokenizer(title, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    cut = title if len(offsets) <= max_tokens else title[: offsets[max_tokens - 1][1]]
    return cut.strip() + "\n"


def embed_sorted(embedder: Embedder, texts: list[str], progress: bool) -> np.ndarray:
    """Embed texts longest first in groups (less padding), with a progress bar; rows in input order."""
    if not texts:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    group = max(embedder.batch_size * 8, 256)
    bar = _progress_bar(len(texts), progress)
    for begin in range(0, len(order), group):
        ids = order[begin:begin + group]
        vectors[ids] = embedder.encode([texts[i] for i in ids])
        bar.update(len(ids))
    bar.close()
    return vectors


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="chunk", desc="Embedding", disable=not enabled, file=sys.stderr)
