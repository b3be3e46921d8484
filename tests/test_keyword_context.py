"""The context keyword index: each chunk with its neighbours, within its own document, saved and fused."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from pydantic import ValidationError

from rag import IndexCorruptError, Settings
from rag.chunking import Chunk
from rag.documents import Document
from rag.index import CONTEXT_KEYWORD_DIR, MANIFEST, Index
from rag.keyword import chunk_texts, context_texts
from rag.retrieval import Retriever
from rag.storage import IndexLock, current_generation

from conftest import write_unsealed_manifest

# Two documents of three and two sentences, one sentence per chunk.
DOCS = {
    "a" * 16: ("Harbour report", ["The harbour of Velmar was dredged.", "Its cranes were renewed.",
                                  "Grain shipments doubled in spring."]),
    "b" * 16: ("Airport report", ["The Velmar airport added flights.", "Its runway was extended to three kilometres."]),
}


def _documents_and_chunks() -> tuple[dict[str, Document], list[Chunk]]:
    documents, chunks = {}, []
    for doc_id, (title, sentences) in DOCS.items():
        text = " ".join(sentences)
        documents[doc_id] = Document(doc_id, doc_id * 4, text, [f"/docs/{title}.txt"], title, size=len(text))
        start = 0
        for position, sentence in enumerate(sentences):
            chunks.append(Chunk(f"{doc_id}-{position}", doc_id, position, start, start + len(sentence), 8, sentence))
            start += len(sentence) + 1
    return documents, chunks


def _index() -> Index:
    documents, chunks = _documents_and_chunks()
    index = Index.empty(Settings(), 4)
    vectors = np.random.default_rng(0).standard_normal((len(chunks), 4)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for doc_id, doc in documents.items():
        rows = [i for i, c in enumerate(chunks) if c.doc_id == doc_id]
        index.add_document(doc, [chunks[i] for i in rows], vectors[rows])
    return index


def test_context_spans_neighbours_but_never_another_document():
    documents, chunks = _documents_and_chunks()
    titles = {d: doc.title for d, doc in documents.items()}
    texts = {d: doc.text for d, doc in documents.items()}
    windows = context_texts(chunks, titles, texts)
    assert windows[0] == "Harbour report\nThe harbour of Velmar was dredged. Its cranes were renewed."
    assert windows[1] == "Harbour report\n" + texts["a" * 16], "the middle chunk sees the whole document"
    assert windows[2] == "Harbour report\nIts cranes were renewed. Grain shipments doubled in spring."
    assert windows[3] == "Airport report\n" + texts["b" * 16]
    assert "Grain" not in windows[3], "no window crosses into the previous document"
    assert chunk_texts(chunks, titles)[4] == "Airport report\nIts runway was extended to three kilometres."


def test_context_index_follows_chunks_in_any_order():
    documents, chunks = _documents_and_chunks()
    shuffled = [chunks[i] for i in (4, 2, 0, 3, 1)]
    windows = context_texts(shuffled, {d: doc.title for d, doc in documents.items()},
                            {d: doc.text for d, doc in documents.items()})
    assert windows[1] == "Harbour report\nIts cranes were renewed. Grain shipments doubled in spring."


def test_a_term_one_chunk_away_counts_only_in_the_context_index():
    index = _index()
    retriever = Retriever(index, embedder=None, settings=Settings(dense_weight=0.0))
    # "dredged" is in chunk 0 and "grain" in chunk 2: only chunk 1's window holds both.
    positions, _ = index.context_keyword.search("dredged grain", 5)
    assert positions[0] == 1
    chunk_only = index.keyword.search("dredged grain", 5)[0].tolist()
    assert 1 not in chunk_only and set(chunk_only) == {0, 2}
    # Fused, the chunk between the two (the centre of the passage that answers) leads, its neighbours follow.
    assert [hit.position for hit in retriever.search("dredged grain", k=3)] == [1, 0, 2]
    assert [d for d, _ in retriever.rank_documents("runway kilometres", k=2)][0] == "b" * 16


def test_zero_weight_turns_a_retriever_off_and_negative_is_refused():
    index = _index()
    only_context = Retriever(index, embedder=None, settings=Settings(dense_weight=0.0, bm25_weight=0.0))
    assert set(only_context.candidates("cranes", 10)) == {"bm25_context"}
    with pytest.raises(ValidationError, match="must not be negative"):
        Settings(bm25_context_weight=-0.1)
    with pytest.raises(ValidationError, match="all 0"):
        Settings(dense_weight=0, bm25_weight=0, bm25_context_weight=0)


def test_benchmark_modes_search_only_the_retrievers_they_name(monkeypatch):
    index = _index()
    retriever = Retriever(index, embedder=None, settings=Settings())
    searched = []
    monkeypatch.setattr(Retriever, "_keyword", staticmethod(lambda kw, q, d: searched.append(kw) or {}))
    retriever.rank_documents("cranes", k=2, use=("bm25_context",))
    assert searched == [index.context_keyword], "neither dense (no embedder here) nor the chunk index is searched"


def _saved(tmp_path) -> tuple[Index, object]:
    index = _index()
    with IndexLock(tmp_path):
        index.save(tmp_path)
    return index, current_generation(tmp_path)


def test_saved_and_reloaded(tmp_path):
    index, _ = _saved(tmp_path)
    reloaded = Index.load(tmp_path, Settings())
    expected = index.context_keyword.search("cranes grain", 5)
    assert np.array_equal(reloaded.context_keyword.search("cranes grain", 5)[0], expected[0])
    assert not reloaded.needs_save


def test_rebuilt_in_memory_when_an_older_index_lacks_it_and_saved_by_the_next_ingest(tmp_path):
    index, folder = _saved(tmp_path)
    # As written before the context index existed: no folder, no settings in the manifest.
    shutil.rmtree(folder / CONTEXT_KEYWORD_DIR)
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["context_keyword"]
    write_unsealed_manifest(folder, manifest)
    older = Index.load(tmp_path, Settings())
    expected = index.context_keyword.search("cranes grain", 5)
    assert np.array_equal(older.context_keyword.search("cranes grain", 5)[0], expected[0])
    assert older.needs_save and not (folder / CONTEXT_KEYWORD_DIR).exists(), "opening never writes"
    with IndexLock(tmp_path):
        older.save(tmp_path)
    assert (current_generation(tmp_path) / CONTEXT_KEYWORD_DIR).exists() and not older.needs_save


def test_rebuilt_when_saved_with_other_context_settings(tmp_path):
    _, folder = _saved(tmp_path)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["context_keyword"]["neighbours"] = 2
    write_unsealed_manifest(folder, manifest)
    assert Index.load(tmp_path, Settings()).needs_save


def test_missing_or_damaged_context_index_is_corruption_with_a_fix(tmp_path):
    _, folder = _saved(tmp_path)
    # Written before checksums: the keyword index's own checks are what find the damage.
    write_unsealed_manifest(folder, json.loads((folder / MANIFEST).read_text()))
    context = folder / CONTEXT_KEYWORD_DIR
    (context / "deleted.npy").unlink()  # a new file: the saved one may share its bytes with another generation
    np.save(context / "deleted.npy", np.array([0]))  # a removed chunk the docstore still holds
    listing = json.loads((context / "parts.json").read_text())
    (context / "parts.json").write_text(json.dumps({**listing, "deleted": 1}))
    with pytest.raises(IndexCorruptError, match="holds 4 chunks.*--rebuild"):
        Index.load(tmp_path, Settings())
    shutil.rmtree(context)
    with pytest.raises(IndexCorruptError, match="bm25_context is missing.*--rebuild"):
        Index.load(tmp_path, Settings())
