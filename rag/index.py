"""The index: documents, chunks, vectors and the two keyword indexes (chunk and context), loaded from
and saved to one folder.

Example: ``index = Index.load(Path("indexes/default"), settings); index.stats()``
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import cast

import numpy as np

from .chunking import SPLITTER_VERSION, Chunk, vector_id
from .config import Settings
from .docstore import DOCSTORE_DIR, MANIFEST_KEY, Docstore
from .index_views import ChunksView, DocumentsView, PathsByDocument, VectorPositions
from .docstore_v1 import CHUNKS, DOCUMENTS, check_count, read_chunks, read_documents
from .documents import Document
from .errors import REBUILD_HINT, IndexCorruptError, IndexMismatchError
from .injection import find_instructions, overlaps
from .integrity import CHECKSUMS, check_structure, read_manifest, seal, verify_files
from .keyword import CONTEXT_B, CONTEXT_K1, CONTEXT_SETTINGS, KeywordIndex, keyword_postings
from .postings import Postings
from .storage import current_generation, write_generation
from .stores import DEFAULT_STORE, VectorStore, store_class
from .stores.fulltext import CHUNK_TERMS, CONTEXT_TERMS, StoreKeyword, row_terms

# Format 2: the docstore in SQLite parts shared between generations (rag/docstore.py). Format 1 (JSON
# lines, read whole) still opens; its next save writes format 2.
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
MANIFEST = "manifest.json"
KEYWORD_DIR = "bm25"
CONTEXT_KEYWORD_DIR = "bm25_context"
_OPEN_ATTEMPTS = 3  # a reader retries when writers replaced the generation it was opening
KEYWORDS_IN_STORE = "keywords_in_store"  # manifest: both keyword indexes are the vector store's fields


def chunker_settings(settings: Settings) -> dict:
    """The settings that shape chunks; an index only takes new documents chunked the same way."""
    return {
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap_tokens": settings.chunk_overlap_tokens,
        "title_prefix_tokens": settings.title_prefix_tokens,
        "splitter_version": SPLITTER_VERSION,
    }


class Index:
    """One index generation: documents and chunks read on demand from the docstore, vectors, and both keyword
    indexes; ``chunks[i]`` is document i of both keyword indexes.

    Read ``documents``, ``chunks``, ``paths`` and ``position_of_vid``; change them only through
    ``add_document``, ``remove_documents`` and ``set_paths``, which keep them, the vectors and the keyword
    indexes in step. Example: ``index = Index.empty(settings, 384); index.add_document(doc, chunks, vectors)``
    """

    def __init__(self, manifest: dict, documents: dict[str, Document], chunks: list[Chunk],
                 store: VectorStore, keyword: KeywordIndex | None = None, context_keyword: KeywordIndex | None = None,
                 docstore: Docstore | None = None):
        """The parts of a loaded generation (``Index.load`` passes its ``docstore``; ``documents`` and
        ``chunks`` give one held in memory); a new index starts from ``Index.empty``."""
        self.manifest = manifest
        if docstore is None:
            marked = [overlaps(documents[c.doc_id].instructions, c.start, c.end) for c in chunks]
            docstore = Docstore.in_memory(documents, chunks, PathsByDocument(manifest), marked)
        if len(store) != docstore.chunk_count:
            raise IndexCorruptError(
                f"The index holds {len(store)} vectors for {docstore.chunk_count} chunks. {REBUILD_HINT}")
        self.store = store
        self._read_from(docstore)
        # A store with keyword fields (Milvus) keeps both keyword indexes: searched there, nothing kept here.
        self._keyword_in_store = bool(getattr(store, "keyword_fields", ()))
        if self._keyword_in_store:
            # KeywordIndex's search contract; nothing else of it is called on a store's keyword index.
            keyword, context_keyword = (cast(KeywordIndex, StoreKeyword(self, f)) for f in (CHUNK_TERMS, CONTEXT_TERMS))
        self._keyword = keyword if keyword is not None else self._build_chunk_keyword()
        self._context_keyword = context_keyword if context_keyword is not None else self._build_context_keyword()
        # Chunks [0, _keyword_chunks) are in both keyword indexes, later ones are added on first use (only
        # they are tokenized); _keywords_stale asks for a rebuild (an index saved without term counts).
        self._keyword_chunks, self._keywords_stale = docstore.chunk_count, False

    @property
    def documents(self) -> Mapping[str, Document]:
        """Stored documents by doc_id, read on demand. Example: ``index.documents[chunk.doc_id].title``"""
        return self._documents_view

    @property
    def chunks(self) -> Sequence[Chunk]:
        """Every chunk, in vector-store and keyword-index order, read on demand. Example: ``index.chunks[0].text``"""
        return self._chunks_view

    @property
    def position_of_vid(self) -> Mapping[int, int]:
        """Position in ``chunks`` of each vector id. Example: ``index.position_of_vid[vector_id(c.chunk_id)]``"""
        return self._positions_view

    def positions_of_vids(self, vids: np.ndarray) -> np.ndarray:
        """Each vector id's position in ``chunks``, -1 for an id no chunk has (vectorised lookup)."""
        return self.docstore.position_of_vids(vids)

    @property
    def paths(self) -> Mapping[str, str]:
        """Every indexed path and the content hash it holds. Example: ``index.paths["/a.txt"][:16]``"""
        return MappingProxyType(self.manifest["documents"])

    @property
    def keyword(self) -> KeywordIndex:
        """BM25 over each chunk (chunks added since are added on first use)."""
        self._refresh_keywords()
        return self._keyword

    @property
    def context_keyword(self) -> KeywordIndex:
        """BM25 over each chunk with its neighbours (chunks added since are added on first use)."""
        self._refresh_keywords()
        return self._context_keyword

    def add_document(self, doc: Document, chunks: list[Chunk], vectors: np.ndarray) -> None:
        """Store ``doc`` under its paths, its instruction spans found, with its chunks and one vector per chunk
        (row i embeds chunks[i]); ValueError when they do not fit together.

        Example: ``index.add_document(doc, chunks, embedder.encode([c.text for c in chunks]))``
        """
        _check_addition(self, doc, chunks, vectors)
        rows = [{"doc_id": c.doc_id, "start": c.start, "end": c.end, "text": c.text} for c in chunks]
        if self._keyword_in_store:  # each row with the terms both keyword indexes see
            rows = [{**row, **terms} for row, terms in zip(rows, row_terms(doc, chunks))]
        self.store.add_chunks(np.array([vector_id(c.chunk_id) for c in chunks], dtype=np.int64), vectors, rows)
        instructions = find_instructions(doc.text)
        stored = replace(doc, paths=sorted(doc.paths), pages=list(doc.pages), instructions=instructions,
                         encoding=None, replaced=0)
        self.docstore.add(stored, list(chunks), [overlaps(instructions, c.start, c.end) for c in chunks])
        self.manifest["documents"].update(dict.fromkeys(doc.paths, doc.content_hash))
        self.docstore.paths_of.add(doc.paths, doc.content_hash)  # not recomputed per document: O(n) each

    def remove_documents(self, doc_ids: list[str]) -> int:
        """Drop documents with their chunks, vectors and paths; returns how many chunks went.

        Example: ``index.remove_documents(["3f2a9c0d1b2e4f60"])``
        """
        dropped = {doc_id for doc_id in doc_ids if doc_id in self.documents}
        if not dropped:
            return 0
        positions = self.docstore.positions_of(dropped)
        self.store.remove(self.docstore.vector_ids()[positions])
        self._drop_from_keywords(positions.tolist())
        self.docstore.remove(dropped)
        self.set_paths({p: h for p, h in self.paths.items() if h[:16] not in dropped})
        return len(positions)

    def set_paths(self, by_path: Mapping[str, str]) -> None:
        """Record which path holds which content (path → content hash); each stored document's ``paths``
        follow, sorted. Example: ``index.set_paths({**index.paths, "/copy.txt": doc.content_hash})``"""
        self.manifest["documents"] = dict(by_path)
        self.docstore.forget_paths()  # a document left without a path is removed next

    @property
    def needs_save(self) -> bool:
        """True when the saved generation lacked an up-to-date context index (built in memory on load) or
        checksums (written before they existed): the next ingest saves one, even when no file changed."""
        return self.manifest.get("context_keyword") != CONTEXT_SETTINGS or CHECKSUMS not in self.manifest

    def rebuild_keyword_indexes(self) -> None:
        """BM25 over each chunk and over each chunk's context, from the current documents and chunks."""
        if self._keyword_in_store:  # the store indexes each row as it is added
            return
        self._keyword, self._context_keyword = self._build_chunk_keyword(), self._build_context_keyword()
        self._keyword_chunks, self._keywords_stale = len(self.chunks), False

    def _refresh_keywords(self) -> None:
        """Add the chunks added since to both keyword indexes (a rebuild when they keep no term counts)."""
        if self._keyword_in_store:
            return
        if self._keyword_chunks == len(self.chunks) and not self._keywords_stale:
            return
        if not self._keywords_incremental():
            self.rebuild_keyword_indexes()
            return
        new = list(self.chunks[self._keyword_chunks:])  # whole documents: a context never crosses one
        titles = {c.doc_id: self.documents[c.doc_id].title for c in new}
        texts = {doc_id: self.documents[doc_id].text for doc_id in titles}
        self._keyword = self._keyword.extended(keyword_postings(new, titles, texts, context=False))
        self._context_keyword = self._context_keyword.extended(keyword_postings(new, titles, texts, context=True))
        self._keyword_chunks = len(self.chunks)

    def _drop_from_keywords(self, positions: list[int]) -> None:
        """Remove chunks from both keyword indexes; ones added since the last refresh were never in them."""
        if self._keyword_in_store:  # the store's rows go with their vectors
            return
        held = [p for p in positions if p < self._keyword_chunks]
        if not self._keywords_incremental():
            self._keywords_stale = True
        elif held:
            self._keyword, self._context_keyword = self._keyword.without(held), self._context_keyword.without(held)
        self._keyword_chunks -= len(held)

    def _keywords_incremental(self) -> bool:
        return not self._keywords_stale and self._keyword.incremental and self._context_keyword.incremental

    def _build_chunk_keyword(self) -> KeywordIndex:
        return KeywordIndex([], []).extended(self._all_postings(context=False))

    def _build_context_keyword(self) -> KeywordIndex:
        return KeywordIndex([], [], CONTEXT_K1, CONTEXT_B).extended(self._all_postings(context=True))

    def _all_postings(self, context: bool) -> Postings:
        titles = {doc_id: doc.title for doc_id, doc in self.documents.items()}
        texts = {doc_id: doc.text for doc_id, doc in self.documents.items()}
        return keyword_postings(list(self.chunks), titles, texts, context)

    @classmethod
    def empty(cls, settings: Settings, dimension: int) -> Index:
        manifest = {
            "format_version": FORMAT_VERSION,
            "embed_model": settings.embed_model,
            "embed_precision": embed_precision(settings),
            "embed_recipe": int8_recipe() if embed_precision(settings) == "int8" else None,
            "dimension": dimension,
            "chunker": chunker_settings(settings),
            "context_keyword": CONTEXT_SETTINGS,
            "vector_store": settings.vector_store,
            "documents": {},
        }
        return cls(manifest, {}, [], store_class(settings.vector_store).configured(settings, dimension))

    @classmethod
    def load(cls, index_dir: Path, settings: Settings) -> Index:
        """Load the live generation; fails clearly on a missing, corrupt or mismatched index."""
        for attempt in range(_OPEN_ATTEMPTS):
            folder = current_generation(index_dir)
            try:
                manifest = read_manifest(folder)
                verify_files(folder, manifest)  # before anything is read: damage is an error, never an answer
                check_compatible(manifest, settings, index_dir)
                index = cls._from_folder(folder, manifest, settings)
                check_structure(index, folder)
                return index
            except IndexCorruptError:
                # Two writes committed while this reader opened the files: its generation was deleted under
                # it (a writer keeps the live one and the one before). Open the new live one instead.
                if folder.exists() or attempt == _OPEN_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _from_folder(cls, folder: Path, manifest: dict, settings: Settings) -> Index:
        """The generation in ``folder`` whose manifest (checked) is ``manifest``."""
        documents: dict[str, Document] = {}
        chunks: list[Chunk] = []
        docstore = None
        if MANIFEST_KEY in manifest:
            docstore = Docstore.open(folder, manifest, PathsByDocument(manifest))
            count, counted = docstore.chunk_count, folder / DOCSTORE_DIR
        else:  # format 1: JSON lines, read whole once (held in memory); the next save writes parts
            documents = {d.doc_id: d for d in read_documents(folder / DOCUMENTS)}
            check_count(folder / DOCUMENTS, "documents", len(documents), manifest.get("document_count"))
            chunks = read_chunks(folder / CHUNKS, documents)
            count, counted = len(chunks), folder / CHUNKS
        check_count(counted, "chunks", count, manifest.get("chunk_count"))
        store = store_class(store_name(manifest)).opened(folder, settings)
        if len(store) != count or store.dimension != manifest["dimension"]:
            raise IndexCorruptError(
                f"The vector file {folder / store.FILE} holds {len(store)} vectors of dimension "
                f"{store.dimension} but the docstore lists {count} chunks. {REBUILD_HINT}"
            )
        if manifest.get(KEYWORDS_IN_STORE) and not getattr(store, "keyword_fields", ()):
            raise IndexCorruptError(f"The index keeps its keyword indexes in its vector store, but "
                                    f"{folder / store.FILE} names one without them. {REBUILD_HINT}")
        keyword = context_keyword = None  # the store's (made by Index), or built in memory when none is saved
        if not getattr(store, "keyword_fields", ()):
            keyword = KeywordIndex.load(folder / KEYWORD_DIR, count)
            context_keyword = _load_context_keyword(folder, manifest, count)
        return cls(manifest, documents, chunks, store, keyword, context_keyword, docstore=docstore)

    def save(self, index_dir: Path, compact: bool = False) -> Path:
        """Persist as a new generation (atomic): only what changed is written, the rest is linked from the
        generation this index was read from. ``compact`` also merges every part into one. Call under IndexLock."""
        self.manifest["context_keyword"], self.manifest["vector_store"] = CONTEXT_SETTINGS, self.store.name
        self.manifest.pop(KEYWORDS_IN_STORE, None)
        if self._keyword_in_store:  # rag verify then reads no keyword files
            self.manifest[KEYWORDS_IN_STORE] = True
        self.manifest["format_version"] = FORMAT_VERSION
        # Row counts as written: a file that loses rows is named, not the next file that refers to them.
        self.manifest["document_count"], self.manifest["chunk_count"] = len(self.documents), len(self.chunks)
        previous = self.docstore.folder

        def write(folder: Path) -> None:
            self.manifest[MANIFEST_KEY] = (self.docstore.compacted if compact else self.docstore.save)(folder)
            if compact:
                self._keyword, self._context_keyword = self.keyword.compact(), self.context_keyword.compact()
                self.store.compact()
            self.store.save(folder)
            if self.store.location():  # a store beyond this folder (Milvus): its URI and collection
                self.manifest["vector_location"] = self.store.location()
            if not self._keyword_in_store:
                self.keyword.save(folder / KEYWORD_DIR)
                self.context_keyword.save(folder / CONTEXT_KEYWORD_DIR)
            seal(folder, self.manifest, previous)  # the manifest last, with the checksum of every file above

        generation = write_generation(index_dir, write)
        # Read on from the parts just written, where they lie now (they were written under the temporary
        # name), so the next save links them and errors name files that exist.
        self._read_from(Docstore.open(generation, self.manifest, PathsByDocument(self.manifest)))
        if not self._keyword_in_store:
            self._keyword = KeywordIndex.load(generation / KEYWORD_DIR, self.docstore.chunk_count)
            self._context_keyword = KeywordIndex.load(generation / CONTEXT_KEYWORD_DIR, self.docstore.chunk_count)
        return generation

    def _read_from(self, docstore: Docstore) -> None:
        """Read documents and chunks from ``docstore`` (a loaded one, or the one a save just wrote)."""
        self.docstore = docstore
        self._chunks_view, self._documents_view = ChunksView(docstore), DocumentsView(docstore)
        self._positions_view = VectorPositions(docstore)

    def stats(self, index_dir: Path | None = None) -> dict:
        size = _folder_size(current_generation(index_dir)) if index_dir else 0
        return {
            "documents": len(self.documents),
            "paths": len(self.manifest["documents"]),
            "chunks": len(self.chunks),
            "model": self.manifest["embed_model"],
            "dimension": self.manifest["dimension"],
            "format_version": self.manifest["format_version"],
            "size_bytes": size,
            "index_dir": str(index_dir) if index_dir else None,
            # Text addressed to AI systems: never quoted as an answer, labelled for LLMs (rag/injection.py).
            "marked_documents": self.docstore.marked_documents(),
            "marked_chunks": self.docstore.marked_count(),
        }

    def chunk_vectors(self, positions: list[int]) -> np.ndarray:
        chunks = self.docstore.chunks_at(positions)
        return self.store.reconstruct(np.array([vector_id(c.chunk_id) for c in chunks], dtype=np.int64))


def _load_context_keyword(folder: Path, manifest: dict, size: int) -> KeywordIndex | None:
    """The saved context index; None (build it in memory) when the generation was written before there was
    one, or with other context settings. One the manifest lists but that is gone is corruption."""
    if manifest.get("context_keyword") != CONTEXT_SETTINGS:
        return None
    if not (folder / CONTEXT_KEYWORD_DIR).exists():
        raise IndexCorruptError(f"The keyword index {folder / CONTEXT_KEYWORD_DIR} is missing. {REBUILD_HINT}")
    return KeywordIndex.load(folder / CONTEXT_KEYWORD_DIR, size)


def _folder_size(folder: Path) -> int:
    """Bytes on disk; 0 for files a concurrent writer removed meanwhile."""
    total = 0
    for path in folder.rglob("*"):
        try:
            total += path.stat().st_size if path.is_file() else 0
        except OSError:
            continue
    return total


def check_compatible(manifest: dict, settings: Settings, index_dir: Path) -> None:
    """Refuse an index built with another format or embedding model (never answer from mixed vectors)."""
    fix = f"Rebuild it with `rag ingest PATH... --index {index_dir} --rebuild`."
    if manifest.get("format_version") not in READABLE_FORMATS:
        raise IndexMismatchError(
            f"The index at {index_dir} has format version {manifest.get('format_version')}, "
            f"this version reads {FORMAT_VERSION}. {fix}"
        )
    if manifest.get("embed_model") != settings.embed_model:
        raise IndexMismatchError(
            f"The index at {index_dir} was built with the embedding model {manifest.get('embed_model')!r}, "
            f"but RAG_EMBED_MODEL is {settings.embed_model!r}. Set it back, or: {fix}"
        )
    built, wanted = manifest.get("embed_precision", "fp32"), embed_precision(settings)
    if built != wanted:  # int8 and fp32 vectors of one text differ (cosine ~0.99): never mix them
        raise IndexMismatchError(
            f"The index at {index_dir} holds {built} vectors, but RAG_EMBED_PRECISION is {wanted!r}. "
            f"Set RAG_EMBED_PRECISION={built}, or: {fix}")
    if built == "int8" and manifest.get("embed_recipe") != int8_recipe():  # another quantization: other vectors
        raise IndexMismatchError(
            f"The index at {index_dir} holds int8 vectors from another int8 encoder recipe "
            f"({manifest.get('embed_recipe') or 'an earlier one'}; this version makes recipe {int8_recipe()}), "
            f"so its vectors and the questions' would not match. Set RAG_EMBED_PRECISION=fp32 for a new index, "
            f"or: {fix}")
    if store_name(manifest) != settings.vector_store:
        raise IndexMismatchError(
            f"The index at {index_dir} keeps its vectors in the store {store_name(manifest)!r}, but "
            f"RAG_VECTOR_STORE is {settings.vector_store!r}. Set it back, or: {fix}")


def int8_recipe() -> int:
    """The version of the int8 encoder's quantization recipe (recorded in an int8 index's manifest)."""
    from .onnx_encoder import RECIPE_VERSION

    return RECIPE_VERSION


def embed_precision(settings: Settings) -> str:
    """The precision of the vectors ``settings`` make (indexes from before the setting hold fp32)."""
    from .embedding import embedder_for

    return embedder_for(settings).precision


def store_name(manifest: dict) -> str:
    """The vector store an index was written with (indexes from before the setting used FAISS)."""
    return manifest.get("vector_store", DEFAULT_STORE)


def _check_addition(index: Index, doc: Document, chunks: list[Chunk], vectors: np.ndarray) -> None:
    """ValueError when a document and its chunks and vectors do not fit (a hand-built index fails here)."""
    if doc.doc_id in index.documents:
        raise ValueError(f"Document {doc.doc_id} is already stored; remove it first.")
    if not doc.paths:
        raise ValueError(f"Document {doc.doc_id} has no path; give it the file it came from.")
    stray = next((c for c in chunks if c.doc_id != doc.doc_id or not 0 <= c.start < c.end <= len(doc.text)), None)
    if stray is not None:
        raise ValueError(f"Chunk {stray.chunk_id} does not lie inside document {doc.doc_id}.")
    if len(vectors) != len(chunks):
        raise ValueError(f"Document {doc.doc_id} has {len(chunks)} chunks but {len(vectors)} vectors; "
                         "give one vector per chunk.")
