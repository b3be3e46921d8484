"""The index: documents, chunks, vectors and the two keyword indexes (chunk and context), loaded from
and saved to one folder.

Example: ``index = Index.load(Path("indexes/default"), settings); index.stats()``
"""
from __future__ import annotations

import json
import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .chunking import SPLITTER_VERSION, Chunk, vector_id
from .config import Settings
from .documents import page_at
from .errors import REBUILD_HINT, IndexCorruptError, IndexMismatchError
from .injection import find_instructions, overlaps
from .integrity import CHECKSUMS, check_structure, read_manifest, seal, verify_files
from .keyword import CONTEXT_B, CONTEXT_K1, CONTEXT_SETTINGS, KeywordIndex, chunk_texts, context_texts
from .storage import access_error, current_generation, write_generation
from .vectorstore import FaissStore

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DOCUMENTS = "documents.jsonl"
CHUNKS = "chunks.jsonl"
KEYWORD_DIR = "bm25"
CONTEXT_KEYWORD_DIR = "bm25_context"


@dataclass
class StoredDocument:
    """A document as kept in the index; one per distinct content, listing every path that holds it."""

    doc_id: str
    content_hash: str
    title: str
    text: str
    size: int
    paths: list[str]
    date: str | None = None
    url: str | None = None
    pages: list[tuple[int, int]] = field(default_factory=list)
    # Char spans of text addressed to AI systems (rag/injection.py), found at ingest.
    instructions: list[tuple[int, int]] = field(default_factory=list)

    def page_at(self, offset: int) -> int | None:
        return page_at(self.pages, offset)


def chunker_settings(settings: Settings) -> dict:
    """The settings that shape chunks; an index only takes new documents chunked the same way."""
    return {
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap_tokens": settings.chunk_overlap_tokens,
        "title_prefix_tokens": settings.title_prefix_tokens,
        "splitter_version": SPLITTER_VERSION,
    }


class Index:
    """In-memory view of one index generation; ``chunks[i]`` is document i of both keyword indexes."""

    def __init__(self, manifest: dict, documents: dict[str, StoredDocument], chunks: list[Chunk],
                 store: FaissStore, keyword: KeywordIndex | None = None, context_keyword: KeywordIndex | None = None):
        self.manifest = manifest
        self.documents = documents
        self.chunks = chunks
        self.store = store
        self.position_of_vid = {vector_id(c.chunk_id): i for i, c in enumerate(chunks)}
        self.keyword = keyword if keyword is not None else self._build_chunk_keyword()
        self.context_keyword = context_keyword if context_keyword is not None else self._build_context_keyword()

    @property
    def needs_save(self) -> bool:
        """True when the saved generation lacked an up-to-date context index (built in memory on load) or
        checksums (written before they existed): the next ingest saves one, even when no file changed."""
        return self.manifest.get("context_keyword") != CONTEXT_SETTINGS or CHECKSUMS not in self.manifest

    def rebuild_keyword_indexes(self) -> None:
        """BM25 over each chunk and over each chunk's context, from the current documents and chunks."""
        self.keyword, self.context_keyword = self._build_chunk_keyword(), self._build_context_keyword()

    def _build_chunk_keyword(self) -> KeywordIndex:
        titles = {doc_id: doc.title for doc_id, doc in self.documents.items()}
        return KeywordIndex.build(chunk_texts(self.chunks, titles))

    def _build_context_keyword(self) -> KeywordIndex:
        titles = {doc_id: doc.title for doc_id, doc in self.documents.items()}
        texts = {doc_id: doc.text for doc_id, doc in self.documents.items()}
        return KeywordIndex.build(context_texts(self.chunks, titles, texts), k1=CONTEXT_K1, b=CONTEXT_B)

    @classmethod
    def empty(cls, settings: Settings, dimension: int) -> "Index":
        manifest = {
            "format_version": FORMAT_VERSION,
            "embed_model": settings.embed_model,
            "dimension": dimension,
            "chunker": chunker_settings(settings),
            "context_keyword": CONTEXT_SETTINGS,
            "documents": {},
        }
        return cls(manifest, {}, [], FaissStore(dimension))

    @classmethod
    def load(cls, index_dir: Path, settings: Settings) -> "Index":
        """Load the live generation; fails clearly on a missing, corrupt or mismatched index."""
        folder = current_generation(index_dir)
        manifest = read_manifest(folder)
        verify_files(folder, manifest)  # before anything is read: damage is an error, never an answer
        check_compatible(manifest, settings, index_dir)
        documents = {d.doc_id: d for d in _read_documents(folder / DOCUMENTS)}
        _check_count(folder / DOCUMENTS, "documents", len(documents), manifest.get("document_count"))
        chunks = _read_chunks(folder / CHUNKS, documents)
        _check_count(folder / CHUNKS, "chunks", len(chunks), manifest.get("chunk_count"))
        store = FaissStore.load(folder / FaissStore.FILE)
        if len(store) != len(chunks) or store.dimension != manifest["dimension"]:
            raise IndexCorruptError(
                f"The vector file {folder / FaissStore.FILE} holds {len(store)} vectors of dimension "
                f"{store.dimension} but the docstore lists {len(chunks)} chunks. {REBUILD_HINT}"
            )
        keyword = KeywordIndex.load(folder / KEYWORD_DIR, len(chunks))
        index = cls(manifest, documents, chunks, store, keyword, _load_context_keyword(folder, manifest, len(chunks)))
        check_structure(index, folder)
        return index

    def save(self, index_dir: Path) -> Path:
        """Persist as a new generation (atomic). Call under IndexLock."""
        self.manifest["context_keyword"] = CONTEXT_SETTINGS
        # Row counts as written: a file that loses rows is named, not the next file that refers to them.
        self.manifest["document_count"], self.manifest["chunk_count"] = len(self.documents), len(self.chunks)

        def write(folder: Path) -> None:
            with open(folder / DOCUMENTS, "w", encoding="utf-8") as handle:
                for doc in self.documents.values():
                    handle.write(_json_line(asdict(doc)))
            with open(folder / CHUNKS, "w", encoding="utf-8") as handle:
                for c in self.chunks:
                    handle.write(json.dumps([c.chunk_id, c.doc_id, c.position, c.start, c.end, c.n_tokens]) + "\n")
            self.store.save(folder / FaissStore.FILE)
            self.keyword.save(folder / KEYWORD_DIR)
            self.context_keyword.save(folder / CONTEXT_KEYWORD_DIR)
            seal(folder, self.manifest)  # the manifest last, with the checksum of every file above

        return write_generation(index_dir, write)

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
            "marked_documents": sum(1 for doc in self.documents.values() if doc.instructions),
            "marked_chunks": sum(1 for c in self.chunks
                                 if overlaps(self.documents[c.doc_id].instructions, c.start, c.end)),
        }

    def chunk_vectors(self, positions: list[int]) -> np.ndarray:
        return self.store.reconstruct(np.array([vector_id(self.chunks[p].chunk_id) for p in positions]))


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
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"The index at {index_dir} has format version {manifest.get('format_version')}, "
            f"this version reads {FORMAT_VERSION}. {fix}"
        )
    if manifest.get("embed_model") != settings.embed_model:
        raise IndexMismatchError(
            f"The index at {index_dir} was built with the embedding model {manifest.get('embed_model')!r}, "
            f"but RAG_EMBED_MODEL is {settings.embed_model!r}. Set it back, or: {fix}"
        )


def _json_line(row: dict) -> str:
    """One JSON line, non-ASCII text kept readable; lone surrogates (file names that are not UTF-8) escaped,
    since they cannot be written as UTF-8 but ``json.loads`` reads ``\\udcff`` back exactly."""
    line = json.dumps(row, ensure_ascii=False)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", line) + "\n"


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_count(path: Path, what: str, found: int, expected: int | None) -> None:
    """Blame the file that lost rows, not the next one that refers to them."""
    if expected is not None and found != expected:
        raise IndexCorruptError(
            f"The index file {path} lists {found} {what}, the manifest {expected}. {REBUILD_HINT}")


@contextmanager
def _index_file(path: Path):
    """Turn a missing or undecodable index file into an IndexCorruptError that names it."""
    try:
        yield
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"The index file {path} is missing. {REBUILD_HINT}") from exc
    except OSError as exc:
        raise access_error(exc, path) or exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"The index file {path} is corrupt ({exc}). {REBUILD_HINT}") from exc


def _read_json(path: Path) -> dict:
    with _index_file(path):
        return json.loads(path.read_text(encoding="utf-8"))


def _read_jsonl(path: Path):
    with _index_file(path), open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            yield number, json.loads(line)


def _read_documents(path: Path) -> list[StoredDocument]:
    try:
        return [_stored_document(row) for _, row in _read_jsonl(path)]
    except TypeError as exc:
        raise IndexCorruptError(f"The index file {path} has unexpected fields ({exc}).") from exc


def _stored_document(row: dict) -> StoredDocument:
    """One documents.jsonl row; a row written before instruction spans were stored gets them found now."""
    spans = row["instructions"] if "instructions" in row else find_instructions(row.get("text") or "")
    return StoredDocument(**{**row, "pages": [tuple(p) for p in row.get("pages", [])],
                             "instructions": [tuple(s) for s in spans]})


def _read_chunks(path: Path, documents: dict[str, StoredDocument]) -> list[Chunk]:
    chunks = []
    for number, row in _read_jsonl(path):
        try:
            chunk_id, doc_id, position, start, end, n_tokens = row
            text = documents[doc_id].text[start:end]
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(f"The index file {path} is corrupt at line {number}.") from exc
        chunks.append(Chunk(chunk_id, doc_id, position, start, end, n_tokens, text))
    return chunks
