"""Opening an index for ingest, repairing what is damaged: what checks out is kept, the rest is rebuilt.

A damaged keyword index is rebuilt from the docstore; damaged chunks or vectors are re-derived from the
stored document texts (chunked and embedded again); a damaged docstore is re-read from the documents'
files. A damaged manifest or CURRENT pointer is refused: they are what says which files the index holds.

Example: ``index, repair = open_for_ingest(Path("indexes/default"), Settings())``
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Settings
from .documents import Document, display_path, load_file
from .errors import IndexCorruptError, RagError
from .chunking import Chunk
from .docstore import DOCSTORE_DIR, MANIFEST_KEY, Docstore
from .docstore_v1 import CHUNKS, DOCUMENTS, read_chunks, read_documents
from .index import Index, check_compatible, store_name
from .index_views import PathsByDocument
from .integrity import CHECKSUMS, damaged_files, read_manifest, structure_problems
from .storage import current_generation
from .stores import VectorStore, store_class

if TYPE_CHECKING:
    from .ingest import IngestReport


@dataclass
class Repair:
    """What an ingest redoes for a damaged index: ``documents`` to embed again (re-read from their files or
    rebuilt from the stored text), indexed paths ``lost`` (damaged and unreadable now), and what was done."""

    documents: list[Document] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reembed: bool = False

    def extra(self, loaded: list[Document]) -> list[Document]:
        """The documents to ingest besides ``loaded`` (a path the caller loaded itself is not read twice)."""
        paths = {d.path for d in loaded}
        return [d for d in self.documents if d.path not in paths]

    def account(self, report: IngestReport) -> None:
        """Tell the report: paths embedded again are repaired (never "unchanged"), lost ones removed."""
        if self.reembed:
            report.repaired, report.unchanged = sorted(report.unchanged), []
        report.removed = sorted({*report.removed, *self.lost})
        report.notes.extend(self.notes)


def open_for_ingest(index_dir: Path, settings: Settings) -> tuple[Index, Repair | None]:
    """The index at ``index_dir`` and, when it is damaged, the Repair that the ingest completes."""
    try:
        index = Index.load(index_dir, settings)
    except IndexCorruptError:
        return salvage(index_dir, settings)
    # Content hashes recomputed: catches text damaged in an index written before checksums existed.
    if CHECKSUMS not in index.manifest and any(not _hash_matches(doc) for doc in index.documents.values()):
        return salvage(index_dir, settings)
    return index, None


def salvage(index_dir: Path, settings: Settings) -> tuple[Index, Repair]:
    """Keep the sound parts of a damaged index; raises IndexCorruptError when the manifest is damaged."""
    folder = current_generation(index_dir)
    manifest = read_manifest(folder)
    check_compatible(manifest, settings, index_dir)
    damaged = {name.split("/")[0] for name, _ in damaged_files(folder, manifest)}
    documents, chunks = _stored(folder, manifest, damaged)
    store_type = store_class(store_name(manifest))
    vector_files = {store_type.FILE, "vectors.faiss"}  # the store's folder, or the one file of older indexes
    store = _sound(lambda: store_type.opened(folder, settings), bool(vector_files & damaged) or chunks is None)
    empty = Index(manifest, {}, [], store_type.configured(settings, manifest["dimension"]))
    if documents is None:
        return empty, _reread(empty, sorted(manifest["documents"]), f"{_docstore_name(manifest)} is damaged",
                              settings)
    missing = sorted(p for p, h in manifest["documents"].items() if h[:16] not in documents)
    if store is not None and chunks is not None and _whole(manifest, documents, chunks, store) and not missing:
        whole = Index(manifest, documents, chunks, store)  # keyword indexes rebuilt from the docstore
        if not structure_problems(whole):
            names = sorted(damaged) or ["the keyword index"]
            return whole, Repair(notes=[f"repaired: {', '.join(names)} rebuilt from the docstore"])
    repair = _reread(empty, missing, f"{len(missing)} document(s) missing from {_docstore_name(manifest)}",
                     settings) if missing else Repair(reembed=True)
    restored = [_from_stored(doc) for doc in documents.values()]
    repair.documents.extend(restored)
    named = ", ".join(sorted(damaged)) or f"the chunks or {store_type.FILE}"
    repair.notes.append(f"repaired: {named} damaged; chunks and vectors rebuilt from the stored text of "
                        f"{len(restored)} document(s)")
    return empty, repair


def _stored(folder: Path, manifest: dict, damaged: set[str]) -> tuple[dict | None, list[Chunk] | None]:
    """The stored documents (by id, each matching its content hash) and chunks that read back soundly;
    None for what is damaged."""
    if MANIFEST_KEY in manifest:
        def read() -> tuple[dict, list[Chunk]]:
            docstore = Docstore.open(folder, manifest, PathsByDocument(manifest))
            return {d: docstore.document(d) for d in docstore.doc_ids()}, list(docstore.iter_chunks())
        both = _sound(read, DOCSTORE_DIR in damaged)
        documents, chunks = both if both is not None else (None, None)
    else:
        documents = _sound(lambda: {d.doc_id: d for d in read_documents(folder / DOCUMENTS)}, DOCUMENTS in damaged)
        chunks = None
    if documents is not None and not all(map(_hash_matches, documents.values())):
        return None, None
    if MANIFEST_KEY not in manifest and documents is not None:
        sound = documents
        chunks = _sound(lambda: read_chunks(folder / CHUNKS, sound), CHUNKS in damaged)
    return documents, chunks


def _docstore_name(manifest: dict) -> str:
    return DOCSTORE_DIR if MANIFEST_KEY in manifest else DOCUMENTS


def _whole(manifest: dict, documents: dict, chunks: list, store: VectorStore) -> bool:
    """Counts agree: every document has chunks, as many chunks as recorded, one vector each."""
    return (store.dimension == manifest["dimension"] and len(store) == len(chunks)
            and manifest.get("chunk_count", len(chunks)) == len(chunks)
            and {c.doc_id for c in chunks} == set(documents))


def _sound(read, damaged: bool):
    """What ``read()`` returns, or None when its file is known damaged or fails to read."""
    if damaged:
        return None
    try:
        return read()
    except (IndexCorruptError, KeyError, TypeError, ValueError):
        return None


def _hash_matches(doc: Document) -> bool:
    digest = hashlib.sha256(doc.text.encode("utf-8", "surrogatepass")).hexdigest()
    return digest == doc.content_hash and doc.doc_id == digest[:16]


def _reread(index: Index, paths: list[str], why: str, settings: Settings) -> Repair:
    """Read indexed files again; paths that cannot be read are dropped from the index."""
    repair = Repair(reembed=True)
    for path in paths:
        try:
            repair.documents.append(load_file(Path(path), settings.max_file_mb))
        except RagError as exc:  # SkipFile: gone, empty, unreadable
            repair.lost.append(path)
            repair.notes.append(f"{display_path(path)}: removed, its indexed copy was damaged and the file "
                                f"cannot be read again ({getattr(exc, 'reason', exc)})")
    lost = set(repair.lost)
    index.set_paths({p: h for p, h in index.paths.items() if p not in lost})
    repair.notes.insert(0, f"repaired: {why}; {len(repair.documents)} file(s) read again and embedded")
    return repair


def _from_stored(doc: Document) -> Document:
    """A stored document as if just loaded from its first path (its text is what the chunks index into)."""
    return replace(doc, paths=doc.paths[:1], pages=list(doc.pages), instructions=[])
