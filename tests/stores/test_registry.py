"""Stores are chosen by name (RAG_VECTOR_STORE); an unknown name lists the valid ones."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from rag import Settings
from rag.errors import ConfigError
from rag.stores import VectorStore, store_class, store_names
from rag.stores.faiss import FaissStore


def test_faiss_is_the_default_and_registered():
    assert Settings().vector_store == "faiss" and "faiss" in store_names()
    assert store_class("faiss") is FaissStore and issubclass(FaissStore, VectorStore)


def test_an_unknown_store_name_lists_the_valid_ones(monkeypatch):
    with pytest.raises(ConfigError, match="Unknown vector store 'qdrant'; valid: faiss"):
        store_class("qdrant")
    monkeypatch.setenv("RAG_VECTOR_STORE", "qdrant")
    with pytest.raises(ValidationError, match="unknown vector store 'qdrant'; valid: faiss"):
        Settings()
