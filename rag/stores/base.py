"""The vector-store boundary: one protocol every store implements, and the registry that names them.

The index talks to vectors only through ``VectorStore``; ``RAG_VECTOR_STORE`` picks the implementation
by its registered name, and the manifest records it. Example: ``store = store_class("faiss").create(384)``
"""
from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeVar

import numpy as np

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import Settings

DEFAULT_STORE = "faiss"
_STORES: dict[str, type[VectorStore]] = {}
_discovered = False
StoreType = TypeVar("StoreType", bound="type[VectorStore]")


class VectorStore(ABC):
    """Inner-product search over unit vectors keyed by unique int64 ids.

    A store is created empty (``create``), saved into an index generation folder (``save``) and opened from
    one (``load``); a server-backed store keeps only a small file there naming its collection and connects
    on ``load``. Example: ``store.add(ids, vectors); scores, ids = store.search(queries, 10)``
    """

    name: ClassVar[str]  # the registered name, recorded in the manifest
    FILE: ClassVar[str]  # the file it keeps in a generation folder (checksummed, named in messages)

    @classmethod
    @abstractmethod
    def create(cls, dimension: int) -> VectorStore:
        """A new, empty store for vectors of ``dimension``."""

    @classmethod
    def configured(cls, settings: Settings, dimension: int) -> VectorStore:
        """A new, empty store as ``settings`` configure it (a server store: which server); ``create`` if none.

        Example: ``store_class(settings.vector_store).configured(settings, 384)``
        """
        return cls.create(dimension)

    @classmethod
    @abstractmethod
    def load(cls, folder: Path) -> VectorStore:
        """The store saved in ``folder``; IndexCorruptError when it is damaged."""

    @classmethod
    def opened(cls, folder: Path, settings: Settings) -> VectorStore:
        """``load``, as ``settings`` say to reach it (a server store: the server's URI from this machine).

        Example: ``store_class(store_name(manifest)).opened(generation_folder, settings)``
        """
        return cls.load(folder)

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the store into ``folder`` (as ``FILE``)."""

    @property
    @abstractmethod
    def dimension(self) -> int:
        """Length of every vector."""

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors (float32, unit norm) under new int64 ids; ValueError for an id already stored, an id
        given twice, or a shape that does not match."""

    @abstractmethod
    def remove(self, ids: np.ndarray) -> int:
        """Remove ids (unknown ones are ignored); returns how many were removed."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (n_queries, at most k), best first; slots without a hit have id -1."""

    @abstractmethod
    def ids(self) -> np.ndarray:
        """Every stored id (int64, any order)."""

    @abstractmethod
    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids``, in that order, shape (len(ids), dimension)."""

    @abstractmethod
    def count(self) -> int:
        """How many vectors are stored."""

    def __len__(self) -> int:
        return self.count()

    def add_chunks(self, ids: np.ndarray, vectors: np.ndarray, chunks: list[dict]) -> None:
        """``add``, given each vector's chunk too (``doc_id``, ``start``, ``end``, ``text``): a store shared
        by several machines keeps them beside the vectors; a local one ignores them (the docstore has them).

        Example: ``store.add_chunks(ids, vectors, [{"doc_id": "3f2a", "start": 0, "end": 80, "text": "..."}])``
        """
        self.add(ids, vectors)

    def location(self) -> dict:
        """Where the vectors live beyond the generation folder (recorded in the manifest); {} for none.

        Example: ``store.location() == {"uri": "http://milvus:19530", "collection": "rag_default_1"}``
        """
        return {}

    def compact(self) -> None:
        """Merge the store's parts into one and drop removed vectors (``rag compact``); a store that keeps
        no parts of its own (a server) has nothing to do. Example: ``store.compact(); store.save(folder)``"""
        return None

    def check_addition(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Raise ValueError unless ``vectors`` is one row of this dimension per id and every id is distinct."""
        if vectors.ndim != 2 or vectors.shape != (len(ids), self.dimension):
            raise ValueError(f"{len(ids)} ids need vectors of shape ({len(ids)}, {self.dimension}), "
                             f"got {vectors.shape}")
        if len(set(np.asarray(ids).tolist())) != len(ids):  # a set: np.unique costs ms even on a few ids
            raise ValueError("an id is given twice; every vector needs its own id")


def register(name: str) -> Callable[[StoreType], StoreType]:
    """Class decorator: make a store selectable as ``RAG_VECTOR_STORE=name``.

    Example: ``@register("faiss") class FaissStore(VectorStore): ...``
    """

    def decorate(cls: StoreType) -> StoreType:
        cls.name = name
        _STORES[name] = cls
        return cls

    return decorate


def store_names() -> list[str]:
    """The registered store names, sorted. Example: ``"faiss" in store_names()``"""
    _discover()
    return sorted(_STORES)


def store_class(name: str) -> type[VectorStore]:
    """The store registered as ``name``; ConfigError listing the valid names otherwise.

    Example: ``store_class("faiss").create(384)``
    """
    _discover()
    try:
        return _STORES[name]
    except KeyError:
        raise ConfigError(f"Unknown vector store {name!r}; valid: {', '.join(store_names())} "
                          "(set RAG_VECTOR_STORE).") from None


def _discover() -> None:
    """Import every module of rag/stores/ once, so a new store is one file there (it registers itself);
    store modules import their client library inside methods, so listing the stores stays cheap."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    package = __name__.rpartition(".")[0]
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name != "base":
            importlib.import_module(f"{package}.{module.name}")
