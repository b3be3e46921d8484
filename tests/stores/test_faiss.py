"""The FAISS store passes the vector-store conformance suite; what is FAISS's own is tested here too."""
from __future__ import annotations

import numpy as np
import pytest

from rag import IndexCorruptError
from rag.stores.faiss import FaissStore

from conformance import DIMENSION, IDS, VectorStoreConformance, unit_vectors


class TestFaissStore(VectorStoreConformance):
    @pytest.fixture
    def make_store(self):
        return FaissStore.create


def test_a_truncated_vector_file_is_named_as_corrupt(tmp_path):
    store = FaissStore.create(DIMENSION)
    store.add(IDS, unit_vectors(len(IDS)))
    store.save(tmp_path)
    [part] = (tmp_path / FaissStore.FILE).glob("part-*.faiss")
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorruptError, match=f"{FaissStore.FILE}/{part.name} is corrupt or truncated"):
        FaissStore.load(tmp_path)


def test_float16_storage_keeps_scores_within_1e_3_of_exact():
    store = FaissStore.create(384)
    vectors = unit_vectors(50, dimension=384)
    store.add(np.arange(50, dtype=np.int64), vectors)
    scores, ids = store.search(vectors[:5], 10)
    exact = np.take_along_axis(vectors[:5] @ vectors.T, ids, axis=1)
    assert np.abs(scores - exact).max() < 1e-3
