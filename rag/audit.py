"""``rag verify``: every check an index can be put through, each problem named with its file.

Checksums of every file, the manifest's own checksum, each document's text against its content hash,
each chunk's span inside its document, vector and keyword ids against the chunks, the keyword indexes
against the docstore, and the counts the manifest records.

Example: ``audit(Path("indexes/default"), Settings())["sound"]``
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .chunking import Chunk, vector_id
from .config import Settings
from .errors import IndexNotFoundError, RagError
from .docparts import DocPart, chunk_id_of
from .docstore import DOCSTORE_DIR, MANIFEST_KEY
from .index import (CHUNKS, CONTEXT_KEYWORD_DIR, DOCUMENTS, KEYWORD_DIR, KEYWORDS_IN_STORE, check_compatible,
                    store_name)
from .integrity import CHECKSUMS, MANIFEST, MANIFEST_SUM, damaged_files, read_manifest, unrecorded_files
from .keyword import CONTEXT_B, CONTEXT_K1, CONTEXT_SETTINGS, KeywordIndex, chunk_texts, context_texts
from .storage import CURRENT, current_generation
from .stores import store_class


def audit(index_dir: Path, settings: Settings) -> dict:
    """Check the index at ``index_dir``; ``problems`` lists ``{"file", "problem"}``, ``sound`` is True
    when there are none; ``rebuild`` is True when only `rag ingest --rebuild` fixes it (the manifest, its
    checksum or CURRENT is damaged). IndexNotFoundError when there is no index at all."""
    problems: list[dict[str, str]] = []
    result: dict = {"index": str(index_dir), "generation": None, "sound": False, "problems": problems, "checked": {},
                    "rebuild": False}
    try:
        folder = current_generation(index_dir)
        result["generation"] = folder.name
        manifest = read_manifest(folder)
    except IndexNotFoundError:
        raise
    except RagError as exc:  # the files that list the index: only --rebuild fixes them
        named = next((name for name, said in ((CURRENT, CURRENT), (MANIFEST_SUM, f"{MANIFEST_SUM} is damaged"))
                      if said in str(exc)), MANIFEST)
        problems.append({"file": named, "problem": str(exc)})
        result["rebuild"] = True
        return result
    add = lambda file, problem: problems.append({"file": file, "problem": problem})  # noqa: E731
    try:
        check_compatible(manifest, settings, index_dir)
    except RagError as exc:
        add(MANIFEST, str(exc))
    for name, problem in damaged_files(folder, manifest):
        add(name, problem)
    for name in unrecorded_files(folder, manifest):
        add(name, "not recorded in the manifest")
    if MANIFEST_KEY in manifest:
        documents, chunks = _docstore_parts(folder, manifest, add)
    else:  # format 1
        documents = _documents(folder / DOCUMENTS, add)
        chunks = _chunks(folder / CHUNKS, documents, add)
    _manifest_counts(manifest, documents, chunks, add)
    vectors = _vectors(folder, manifest, chunks, add)
    _keywords(folder, manifest, documents, chunks, add)
    recorded = manifest.get(CHECKSUMS)
    result["checked"] = {"checksums": recorded is not None, "files": len(recorded) + 2 if recorded else 0,
                         "documents": len(documents), "chunks": len(chunks), "vectors": vectors}
    result["sound"] = not problems
    return result


def _docstore_parts(folder: Path, manifest: dict, add) -> tuple[dict, list[tuple[str, str, int, int, int]]]:
    """Every live document (hash checked) and chunk (span checked) of the docstore's parts, in order."""
    documents: dict = {}
    chunks: list[tuple[str, str, int, int, int]] = []
    listing = manifest.get(MANIFEST_KEY) or {}
    for entry in listing.get("parts", []):
        name = entry["file"]
        try:
            part = DocPart.open(folder / name)
            dead = set(listing.get("deleted", {}).get(name, ()))
            rows = {n: part.document(n, []) for n in range(part.documents)}
            chunk_rows = list(part.all_chunk_rows())
        except RagError as exc:
            add(name, str(exc))
            continue
        for number, doc in rows.items():
            if doc.doc_id in dead:
                continue
            digest = hashlib.sha256(doc.text.encode("utf-8", "surrogatepass")).hexdigest()
            if digest != doc.content_hash or doc.doc_id != digest[:16]:
                add(name, f"document {number} ({doc.doc_id}): the text does not match its content hash")
                continue
            documents[doc.doc_id] = {"title": doc.title, "text": doc.text}
        found: dict = {}
        for row, number, position, start, end, _ in chunk_rows:
            held = rows.get(number)
            if held is None or held.doc_id in dead:
                continue
            doc = held
            if doc.doc_id not in documents:
                add(name, f"chunk row {row} names no sound document")
            elif not 0 <= start < end <= len(doc.text):
                add(name, f"chunk row {row} spans {start}-{end}, outside its document's text")
            chunks.append((chunk_id_of(doc.doc_id, position), doc.doc_id, position, start, end))
            found.setdefault(doc.doc_id, []).append(position)
        for doc_id, positions in found.items():
            if sorted(positions) != list(range(len(positions))):
                add(name, f"document {doc_id}: chunk positions are not 0..{len(positions) - 1}")
        for doc in rows.values():
            if doc.doc_id not in dead and doc.doc_id in documents and doc.doc_id not in found:
                add(name, f"document {doc.doc_id} has no chunks")
        part.close()
    return documents, chunks


def _lines(path: Path, name: str, add) -> list[bytes]:
    """The file's lines; none (and a problem reported under ``name``) when it cannot be read."""
    try:
        return path.read_bytes().splitlines()
    except OSError as exc:
        add(name, f"unreadable ({exc.strerror or exc})")
        return []


def _documents(path: Path, add) -> dict:
    """Documents whose line parses and whose text hashes to their recorded content hash."""
    documents: dict = {}
    for number, line in enumerate(_lines(path, DOCUMENTS, add), 1):
        try:
            row = json.loads(line)
            text, content_hash, doc_id = row["text"], row["content_hash"], row["doc_id"]
            digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        except (ValueError, KeyError, TypeError, AttributeError):
            add(DOCUMENTS, f"line {number} is not a valid document")
            continue
        if digest != content_hash or doc_id != digest[:16]:
            add(DOCUMENTS, f"line {number} ({doc_id}): the text does not match its content hash")
            continue
        documents[doc_id] = row
    return documents


def _chunks(path: Path, documents: dict, add) -> list[tuple[str, str, int, int, int]]:
    """(chunk_id, doc_id, position, start, end) of every chunk line that is well formed."""
    chunks: list[tuple[str, str, int, int, int]] = []
    positions: dict = {}
    for number, line in enumerate(_lines(path, CHUNKS, add), 1):
        try:
            chunk_id, doc_id, position, start, end, n_tokens = json.loads(line)
            well_formed = chunk_id == f"{doc_id}-{position:05d}" and n_tokens > 0
        except (ValueError, TypeError):
            add(CHUNKS, f"line {number} is not a valid chunk")
            continue
        doc = documents.get(doc_id)
        if not well_formed:
            add(CHUNKS, f"line {number}: chunk id, position or token count do not agree")
        elif doc is None:
            add(CHUNKS, f"line {number}: chunk {chunk_id} names no sound document")
        elif not 0 <= start < end <= len(doc["text"]):
            add(CHUNKS, f"line {number}: chunk {chunk_id} spans {start}-{end}, outside its document's text")
        chunks.append((chunk_id, doc_id, position, start, end))
        positions.setdefault(doc_id, []).append(position)
    for doc_id, found in positions.items():
        if sorted(found) != list(range(len(found))):
            add(CHUNKS, f"document {doc_id}: chunk positions are not 0..{len(found) - 1}")
    for doc_id in set(documents) - set(positions):
        add(CHUNKS, f"document {doc_id} has no chunks")
    return chunks


def _manifest_counts(manifest: dict, documents: dict, chunks: list, add) -> None:
    docs_file, chunks_file = (DOCSTORE_DIR, DOCSTORE_DIR) if MANIFEST_KEY in manifest else (DOCUMENTS, CHUNKS)
    by_path = manifest.get("documents", {})
    referenced = {str(h)[:16] for h in by_path.values()}
    for path in sorted(p for p, h in by_path.items() if str(h)[:16] not in documents):
        add(MANIFEST, f"{path} is indexed but its document is missing from {docs_file}")
    for doc_id in sorted(set(documents) - referenced):
        add(docs_file, f"document {doc_id} is listed under no path in the manifest")
    if "chunk_count" in manifest and manifest["chunk_count"] != len(chunks):
        add(chunks_file, f"{len(chunks)} chunks, the manifest records {manifest['chunk_count']}")


def _vectors(folder: Path, manifest: dict, chunks: list, add) -> int:
    """Vector count, dimension, ids (one per chunk) and values (finite, unit length); returns the count."""
    try:
        store_type = store_class(store_name(manifest))
    except RagError as exc:  # a store this installation does not have
        add(MANIFEST, str(exc))
        return 0
    name = store_type.FILE
    try:
        store = store_type.load(folder)
    except RagError as exc:
        add(name, str(exc))
        return 0
    if store.dimension != manifest.get("dimension"):
        add(name, f"dimension {store.dimension}, the manifest records {manifest.get('dimension')}")
    ids = np.sort(store.ids())
    expected = np.sort(np.array([vector_id(c[0]) for c in chunks], dtype=np.int64))
    if not np.array_equal(ids, expected):
        add(name, f"{len(ids)} vector ids for {len(expected)} chunks; "
                  f"{np.setdiff1d(ids, expected).size} name no chunk, "
                  f"{np.setdiff1d(expected, ids).size} chunks have no vector")
    for begin in range(0, len(ids), 65536):  # in blocks: bounded memory on large indexes
        block = store.reconstruct(ids[begin:begin + 65536])
        with np.errstate(all="ignore"):  # damaged values overflow: that is the finding, not a warning
            norms = np.linalg.norm(block, axis=1)
        if not np.all(np.isfinite(block)) or np.any(np.abs(norms - 1) > 0.01):
            add(name, "a vector is not finite or not of unit length")
            break
    return len(store)


def _keywords(folder: Path, manifest: dict, documents: dict, chunks: list, add) -> None:
    """Both keyword indexes load, keep every id in range, and equal the ones the docstore gives."""
    if len(chunks) != len({c[0] for c in chunks}) or not all(c[1] in documents for c in chunks):
        return  # the docstore is already reported damaged: nothing sound to compare with
    if manifest.get(KEYWORDS_IN_STORE):
        return  # both are fields of the vector store's rows, whose ids are checked with the vectors
    titles = {doc_id: row["title"] for doc_id, row in documents.items()}
    texts = {doc_id: row["text"] for doc_id, row in documents.items()}
    rows = [Chunk(c[0], c[1], c[2], c[3], c[4], 1, texts[c[1]][c[3]:c[4]]) for c in chunks]
    expected = {KEYWORD_DIR: lambda: KeywordIndex.build(chunk_texts(rows, titles)),
                CONTEXT_KEYWORD_DIR: lambda: KeywordIndex.build(context_texts(rows, titles, texts),
                                                                k1=CONTEXT_K1, b=CONTEXT_B)}
    if manifest.get("context_keyword") != CONTEXT_SETTINGS:
        del expected[CONTEXT_KEYWORD_DIR]  # an older index: its context index is built in memory on open
    for name, build in expected.items():
        try:
            saved = KeywordIndex.load(folder / name, len(chunks))
        except RagError as exc:
            add(name, str(exc))
            continue
        if not saved.same_as(build()):
            add(name, "does not match the docstore's chunks")
        elif not saved.counts_agree():
            add(name, "its term counts do not match its scores")
