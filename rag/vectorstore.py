"""Vector storage behind a small interface, so a server-backed store can replace FAISS later.

Example: ``store = FaissStore(384); store.add(ids, vectors); store.search(query_vectors, 10)``
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from .errors import REBUILD_HINT, IndexCorruptError
from .storage import access_error

_CPU_THREADS = os.cpu_count() or 1


class VectorStore(ABC):
    """Inner-product search over unit vectors keyed by int64 ids."""

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors (float32, unit norm) under the given int64 ids."""

    @abstractmethod
    def remove(self, ids: np.ndarray) -> int:
        """Remove ids; returns how many were removed."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) arrays of shape (n_queries, k); missing slots have id -1."""

    @abstractmethod
    def ids(self) -> np.ndarray:
        """Every stored id."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the store to one file."""

    def __len__(self) -> int:
        return len(self.ids())


class FaissStore(VectorStore):
    """Brute-force inner-product search over vectors stored as float16 (IndexScalarQuantizer QT_fp16),
    wrapped in IndexIDMap2 so ids can be removed and reconstructed.

    Why float16: a scan is bound by memory bandwidth; half the bytes halves query time (100k chunks:
    10.9 -> 4.5 ms) while scores move by about 1e-5, so rankings are those of exact float32 search.
    Indexes written with IndexFlatIP load and work the same."""

    FILE = "vectors.faiss"

    def __init__(self, dimension: int, index=None):
        import faiss

        self.dimension = dimension
        if index is None:
            index = faiss.IndexIDMap2(
                faiss.IndexScalarQuantizer(dimension, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT))
        self._index = index

    @classmethod
    def load(cls, path: Path) -> "FaissStore":
        import faiss

        try:
            open(path, "rb").close()  # faiss reports a permission problem as corruption; ask the OS first
        except FileNotFoundError:
            pass  # reported below, as faiss words it
        except OSError as exc:
            raise access_error(exc, path) or exc
        try:
            index = faiss.read_index(str(path))
        except Exception as exc:  # faiss raises RuntimeError with C++ text for truncated/corrupt files
            raise IndexCorruptError(f"The vector file {path} is corrupt or truncated ({_first_line(exc)}). {REBUILD_HINT}") from exc
        return cls(index.d, index)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        if not len(ids):
            return 0
        return int(self._index.remove_ids(np.asarray(ids, dtype=np.int64)))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        k = max(1, min(k, self._index.ntotal)) if self._index.ntotal else 1
        # One query is a single scan: OpenMP threads only add hand-off cost (5x slower on 2 busy cores).
        faiss.omp_set_num_threads(1 if len(queries) == 1 else _CPU_THREADS)
        return self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors for ids, in order (near-duplicate collapsing compares them)."""
        return np.vstack([self._index.reconstruct(int(i)) for i in ids]) if len(ids) else np.zeros((0, self.dimension), np.float32)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    def __len__(self) -> int:
        return int(self._index.ntotal)


def _first_line(exc: Exception) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__
