"""The Index keeps documents, chunks, vectors, paths and keyword indexes in step through its write API."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rag import IndexMismatchError, Settings
from rag.chunking import Chunk
from rag.documents import Document
from rag.index import Index
from rag.integrity import MANIFEST, structure_problems
from rag.retrieval import Retriever
from rag.storage import IndexLock, current_generation

from conftest import write_unsealed_manifest

TEXTS = {"a" * 16: ("Harbour", ["The harbour was dredged.", "Its cranes were renewed."]),
         "b" * 16: ("Airport", ["The airport added flights.", "Its runway was extended."])}


def _parts(doc_id: str) -> tuple[Document, list[Chunk], np.ndarray]:
    title, sentences = TEXTS[doc_id]
    text = " ".join(sentences)
    doc = Document(doc_id, doc_id * 4, text, [f"/docs/{title}.txt"], title, size=len(text))
    chunks, start = [], 0
    for position, sentence in enumerate(sentences):
        chunks.append(Chunk(f"{doc_id}-{position:05d}", doc_id, position, start, start + len(sentence), 6, sentence))
        start += len(sentence) + 1
    seed = list(TEXTS).index(doc_id)
    vectors = np.random.default_rng(seed).standard_normal((len(chunks), 4)).astype(np.float32)
    return doc, chunks, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _index() -> Index:
    index = Index.empty(Settings(), 4)
    for doc_id in TEXTS:
        index.add_document(*_parts(doc_id))
    return index


class _Embedder:
    """Embeds every query as one fixed vector."""

    def __init__(self, vector: np.ndarray):
        self.vector = vector

    def encode_query(self, texts):
        return self.vector[None, :]


def test_a_built_index_finds_chunks_by_vector_and_by_keyword():
    index = _index()
    assert [c.chunk_id for c in index.chunks] == ["a" * 16 + "-00000", "a" * 16 + "-00001",
                                                  "b" * 16 + "-00000", "b" * 16 + "-00001"]
    assert not structure_problems(index)
    _, _, vectors = _parts("b" * 16)
    dense = Retriever(index, embedder=_Embedder(vectors[1]), settings=Settings(bm25_weight=0, bm25_context_weight=0))
    assert [hit.position for hit in dense.search("anything", k=1)] == [3]
    keyword = Retriever(index, embedder=None, settings=Settings(dense_weight=0))
    assert keyword.search("runway", k=1)[0].position == 3
    assert index.paths == {"/docs/Harbour.txt": "a" * 64, "/docs/Airport.txt": "b" * 64}


def test_the_parts_cannot_be_replaced_behind_the_index_back():
    index = _index()
    for name in ("chunks", "documents", "position_of_vid", "paths", "keyword"):
        with pytest.raises(AttributeError):
            setattr(index, name, {})
    with pytest.raises(TypeError):
        index.documents["c" * 16] = index.documents["a" * 16]


@pytest.mark.parametrize("problem,match", [
    ("vectors", "2 chunks but 1 vectors"), ("dimension", "shape"), ("span", "does not lie inside"),
    ("again", "already stored"), ("other document", "does not lie inside")])
def test_a_document_that_does_not_fit_is_refused_and_changes_nothing(problem, match):
    index = Index.empty(Settings(), 4)
    index.add_document(*_parts("a" * 16))
    doc, chunks, vectors = _parts("b" * 16)
    if problem == "vectors":
        vectors = vectors[:1]
    elif problem == "dimension":
        vectors = np.ones((2, 5), np.float32)
    elif problem == "span":
        chunks[1] = Chunk(chunks[1].chunk_id, doc.doc_id, 1, 10, len(doc.text) + 5, 6, "x")
    elif problem == "again":
        doc, chunks, vectors = _parts("a" * 16)
    else:
        chunks[0] = Chunk("c" * 16 + "-00000", "c" * 16, 0, 0, 5, 2, "The a")
    with pytest.raises(ValueError, match=match):
        index.add_document(doc, chunks, vectors)
    assert len(index.chunks) == len(index.store) == 2 and list(index.documents) == ["a" * 16]
    assert not structure_problems(index)


def test_removing_a_document_takes_its_chunks_vectors_paths_and_terms():
    index = _index()
    assert index.remove_documents(["a" * 16, "f" * 16]) == 2
    assert list(index.documents) == ["b" * 16] and [c.doc_id for c in index.chunks] == ["b" * 16] * 2
    assert len(index.store) == 2 and index.paths == {"/docs/Airport.txt": "b" * 64}
    assert index.keyword.search("dredged", 5)[0].size == 0
    assert not structure_problems(index)


def test_set_paths_gives_each_document_its_paths_sorted():
    index = _index()
    index.set_paths({**index.paths, "/copies/harbour.txt": "a" * 64})
    assert index.documents["a" * 16].paths == ["/copies/harbour.txt", "/docs/Harbour.txt"]
    assert index.documents["a" * 16].path == "/copies/harbour.txt"


def test_the_store_is_recorded_and_another_store_setting_is_a_mismatch_with_the_fix(tmp_path):
    index_dir = tmp_path / "built"
    with IndexLock(index_dir):
        _index().save(index_dir)
    folder = current_generation(index_dir)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["vector_store"] == "faiss"
    reopened = Index.load(index_dir, Settings())
    assert len(reopened.chunks) == 4 and reopened.documents["b" * 16].instructions == []
    write_unsealed_manifest(folder, {k: v for k, v in manifest.items() if k != "vector_store"})
    assert len(Index.load(index_dir, Settings()).store) == 4, "an index from before the setting is FAISS"
    write_unsealed_manifest(folder, {**manifest, "vector_store": "milvus"})
    with pytest.raises(IndexMismatchError, match="keeps its vectors in the store 'milvus', but RAG_VECTOR_STORE "
                                                 "is 'faiss'. Set it back, or: Rebuild it with"):
        Index.load(index_dir, Settings())
