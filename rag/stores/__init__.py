"""Vector stores behind one protocol, one file per store (found and registered on first use), chosen by
``RAG_VECTOR_STORE``.

Example: ``from rag.stores import store_class; store = store_class(settings.vector_store).create(384)``
"""
from __future__ import annotations

from .base import DEFAULT_STORE, VectorStore, register, store_class, store_names

__all__ = ["DEFAULT_STORE", "VectorStore", "register", "store_class", "store_names"]
