"""Both keyword indexes as BM25 full-text fields of the Milvus collection: searched through the store, they
find the chunks the local keyword indexes find, see only committed rows, and a collection made before the
fields existed keeps its local keyword indexes."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from rag import Assistant, Settings
from rag.audit import audit
from rag.index import CONTEXT_KEYWORD_DIR, KEYWORD_DIR, KEYWORDS_IN_STORE
from rag.ingest import ingest
from rag.storage import current_generation
from rag.stores.fulltext import CHUNK_TERMS, CONTEXT_TERMS, StoreKeyword, analyzed
from rag.stores.milvus import MilvusStore, client
from rag.stores.milvus_keyword import has_keyword_fields
from rag.stores.move import move_index

from conftest import SEEDS
from conformance import DIMENSION, unit_vectors
from test_milvus import lite_uri  # noqa: F401  (a Milvus Lite database for this module)
from test_milvus_index import _corpus, _settings

QUESTIONS = ["When did China impose the rare metals controls?", "Who met in Tokyo?", "What is gallium used for?",
             "export licence for germanium", "輸出規制"]
TEXTS = ["Gallium is used in LEDs.", "Green tea grows in Shizuoka.", "Germanium exports need a licence."]


def _rows(texts: list[str]) -> list[dict]:
    return [{"doc_id": "d", "start": 0, "end": 1, "text": t, CHUNK_TERMS: terms, CONTEXT_TERMS: terms}
            for t, terms in zip(texts, analyzed(texts))]


def _found(store: MilvusStore, question: str) -> list[int]:
    return store.keyword_search(CHUNK_TERMS, analyzed([question])[0], 10)[1].tolist()


@pytest.mark.slow  # builds the seed index on Milvus with the real model
def test_keyword_search_in_milvus_finds_what_the_local_indexes_find(seed_assistant, tmp_path):
    folder = tmp_path / "idx"
    on_milvus = Assistant.build([SEEDS], index_dir=folder, settings=Settings(index=folder, vector_store="milvus"))
    index, local = on_milvus.index, seed_assistant.index
    generation = current_generation(folder)
    assert isinstance(index.keyword, StoreKeyword) and index.manifest[KEYWORDS_IN_STORE] is True
    assert not (generation / KEYWORD_DIR).exists() and not (generation / CONTEXT_KEYWORD_DIR).exists()
    assert audit(folder, Settings(index=folder, vector_store="milvus"))["sound"], "rag verify asks for no files"
    for question in QUESTIONS:
        positions, scores = index.keyword.search(question, 10)
        expected, expected_scores = local.keyword.search(question, 10)
        assert [index.chunks[p].chunk_id for p in positions] == [local.chunks[p].chunk_id for p in expected]
        assert np.allclose(scores, expected_scores, rtol=1e-3)
        # Milvus Lite scores every field with k1 1.5, b 0.75: the same chunks match, ranked a little apart.
        context, expected = (k.context_keyword.search(question, 100)[0] for k in (index, local))
        assert {index.chunks[p].chunk_id for p in context} == {local.chunks[p].chunk_id for p in expected}
    assert index.keyword.search("the of and", 10)[0].size == 0, "a query of stop words matches nothing"


def test_keyword_search_sees_only_committed_rows(tmp_path, lite_uri):  # noqa: F811
    store = MilvusStore.create(DIMENSION, uri=lite_uri, alias="keyword_commits")
    store.add_chunks(np.array([1, 2, 3]), unit_vectors(3), _rows(TEXTS))
    store.save(tmp_path)
    assert _found(store, "gallium LEDs") == [1] and _found(store, "tea") == [2]
    writer, reader = MilvusStore.load(tmp_path), MilvusStore.load(tmp_path)
    writer.add_chunks(np.array([4]), unit_vectors(1, seed=5), _rows(["Black tea grows in Assam."]))
    writer.remove(np.array([1]))
    assert sorted(_found(writer, "tea")) == [2, 4]
    assert _found(writer, "gallium") == [], "a removed chunk's terms are gone for the writer at once"
    # A writer that never commits (killed): its rows are invisible, removed rows still found.
    assert _found(reader, "Assam") == [] and _found(reader, "gallium") == [1]
    writer.save(tmp_path)
    after = MilvusStore.load(tmp_path)
    assert _found(after, "gallium") == [] and _found(after, "Assam") == [4]
    staged = MilvusStore.create(DIMENSION)  # before its first save: searched in memory, scored alike
    staged.add_chunks(np.array([1, 2, 3]), unit_vectors(3), _rows(TEXTS))
    assert _found(staged, "gallium LEDs") == [1]
    assert np.allclose(staged.keyword_search(CHUNK_TERMS, "gallium led", 5)[0],
                       store.keyword_search(CHUNK_TERMS, "gallium led", 5)[0], rtol=1e-3)


@pytest.mark.slow
def test_an_ingest_keeps_the_terms_of_changed_and_removed_files_out(tmp_path):
    corpus, index_dir = _corpus(tmp_path / "docs"), tmp_path / "idx"
    ingest([corpus], index_dir, _settings(index_dir))
    (corpus / "tea.txt").write_text("Black tea is grown in Assam. The harvest starts in March.\n")
    (corpus / "notes.md").unlink()
    _, index = ingest([corpus], index_dir, _settings(index_dir), prune=True)
    for keyword in (index.keyword, index.context_keyword):
        assert keyword.search("Shizuoka radar", 10)[0].size == 0, "the old text and the removed file's terms"
        assert "Assam" in index.chunks[int(keyword.search("Assam", 10)[0][0])].text


@pytest.mark.slow
def test_a_collection_without_keyword_fields_keeps_local_keyword_indexes(tmp_path, monkeypatch):
    """An index whose collection was made before the keyword fields: ingests and searches go on with the
    local keyword files; `rag move-store` (or `rag ingest --rebuild`) moves them into Milvus."""
    configured = MilvusStore.configured.__func__

    def without_fields(cls, settings, dimension):
        store = configured(cls, settings, dimension)
        store._keyword = False
        return store

    corpus, index_dir = _corpus(tmp_path / "docs"), tmp_path / "idx"
    monkeypatch.setattr(MilvusStore, "configured", classmethod(without_fields))
    ingest([corpus], index_dir, _settings(index_dir))
    monkeypatch.undo()
    record = json.loads((current_generation(index_dir) / MilvusStore.FILE).read_text())
    assert not has_keyword_fields(client(str(index_dir / record["uri"])).describe_collection(record["collection"]))
    (corpus / "tea.txt").write_text("Black tea is grown in Assam. The harvest starts in March.\n")
    _, index = ingest([corpus], index_dir, _settings(index_dir))
    generation = current_generation(index_dir)
    assert (generation / KEYWORD_DIR).is_dir() and (generation / CONTEXT_KEYWORD_DIR).is_dir()
    assert KEYWORDS_IN_STORE not in index.manifest and not isinstance(index.keyword, StoreKeyword)
    reopened = Assistant.open(index_dir, _settings(index_dir))
    assert "Assam" in reopened.retrieve("Where is black tea grown?", k=1)[0].text
    moved, _ = move_index(index_dir, _settings(index_dir))  # `rag move-store`: into a collection with the fields
    assert isinstance(moved.keyword, StoreKeyword) and not (current_generation(index_dir) / KEYWORD_DIR).exists()
    assert "Assam" in Assistant.open(index_dir, _settings(index_dir)).retrieve("Where is black tea grown?", k=1)[0].text
