"""The behaviour every vector store must show, as a reusable test class (after haystack's document-store
tests): mix it into a test class that provides a ``make_store`` fixture returning a function
``dimension -> new empty store``, and every test below runs against that store.

Example: ``class TestMyStore(VectorStoreConformance): make_store = pytest.fixture(lambda: MyStore.create)``
"""
from __future__ import annotations

import numpy as np
import pytest

DIMENSION = 8
# Vector ids are 63-bit hashes of chunk ids: stores must keep large ids exactly.
IDS = np.array([7, 2**62 + 11, 123456789012345, 3, 2**40, 99, 2**63 - 5, 42], dtype=np.int64)
TOLERANCE = 1e-3  # a store may keep vectors at reduced precision (FAISS keeps float16)


def unit_vectors(n: int, seed: int = 0, dimension: int = DIMENSION) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def hits(ids_row: np.ndarray) -> list[int]:
    """The real hits of one result row (slots without a hit hold -1)."""
    return [int(i) for i in ids_row if i != -1]


class VectorStoreConformance:
    """Tests every store passes; the class using it defines the fixture ``make_store``."""

    @pytest.fixture
    def store(self, make_store):
        return make_store(DIMENSION)

    @pytest.fixture
    def filled(self, store):
        store.add(IDS, unit_vectors(len(IDS)))
        return store

    def test_a_new_store_is_empty(self, store):
        assert store.count() == len(store) == 0
        assert store.dimension == DIMENSION
        assert store.ids().dtype == np.int64 and store.ids().size == 0

    def test_searching_an_empty_store_finds_nothing(self, store):
        scores, ids = store.search(unit_vectors(2), 5)
        assert ids.shape[0] == scores.shape[0] == 2
        assert hits(ids[0]) == hits(ids[1]) == []

    def test_added_vectors_are_counted_and_listed(self, filled):
        assert filled.count() == len(filled) == len(IDS)
        assert sorted(filled.ids().tolist()) == sorted(IDS.tolist())

    def test_each_vector_finds_itself_first_and_scores_fall(self, filled):
        vectors = unit_vectors(len(IDS))
        scores, ids = filled.search(vectors, 3)
        assert ids.shape == scores.shape == (len(IDS), 3)
        assert ids[:, 0].tolist() == IDS.tolist()
        assert np.allclose(scores[:, 0], 1.0, atol=TOLERANCE)
        assert np.all(np.diff(scores, axis=1) <= TOLERANCE)
        expected = vectors @ vectors.T  # inner product is the score
        assert np.allclose(scores[:, 1], np.sort(expected, axis=1)[:, -2], atol=TOLERANCE)

    def test_k_larger_than_the_count_returns_every_vector_once(self, store):
        store.add(IDS[:3], unit_vectors(3))
        scores, ids = store.search(unit_vectors(1, seed=5), 50)
        assert ids.shape[1] <= 50
        assert sorted(hits(ids[0])) == sorted(IDS[:3].tolist())

    def test_reconstruct_gives_the_stored_vectors_in_the_order_asked(self, filled):
        vectors = unit_vectors(len(IDS))
        order = [5, 0, 7, 2]
        assert np.allclose(filled.reconstruct(IDS[order]), vectors[order], atol=TOLERANCE)
        assert filled.reconstruct(np.array([], dtype=np.int64)).shape == (0, DIMENSION)

    def test_removed_ids_are_gone_from_ids_search_and_count(self, filled):
        removed = IDS[[1, 4, 6]]
        assert filled.remove(removed) == 3
        kept = sorted(set(IDS.tolist()) - set(removed.tolist()))
        assert filled.count() == len(kept) and sorted(filled.ids().tolist()) == kept
        _, ids = filled.search(unit_vectors(len(IDS)), len(IDS))
        assert not set(removed.tolist()) & {i for row in ids for i in hits(row)}
        by_id = dict(zip(IDS.tolist(), unit_vectors(len(IDS))))
        assert np.allclose(filled.reconstruct(np.array(kept)), [by_id[i] for i in kept], atol=TOLERANCE)

    def test_removing_unknown_or_no_ids_removes_nothing(self, filled):
        assert filled.remove(np.array([123], dtype=np.int64)) == 0
        assert filled.remove(np.array([], dtype=np.int64)) == 0
        assert filled.count() == len(IDS)

    def test_a_removed_id_can_be_added_again(self, filled):
        filled.remove(IDS[:1])
        filled.add(IDS[:1], unit_vectors(1, seed=9))
        assert filled.count() == len(IDS)
        assert np.allclose(filled.reconstruct(IDS[:1]), unit_vectors(1, seed=9), atol=TOLERANCE)

    def test_adding_an_id_already_stored_is_refused_and_changes_nothing(self, filled):
        with pytest.raises(ValueError, match="already stored"):
            filled.add(np.array([IDS[0], 1000], dtype=np.int64), unit_vectors(2, seed=3))
        assert filled.count() == len(IDS) and 1000 not in filled.ids().tolist()
        assert np.allclose(filled.reconstruct(IDS[:1]), unit_vectors(len(IDS))[:1], atol=TOLERANCE)

    def test_an_id_given_twice_in_one_add_is_refused(self, store):
        with pytest.raises(ValueError, match="twice"):
            store.add(np.array([5, 5], dtype=np.int64), unit_vectors(2))
        assert store.count() == 0

    @pytest.mark.parametrize("shape", [(2, DIMENSION + 1), (3, DIMENSION), (DIMENSION,)])
    def test_vectors_of_the_wrong_shape_are_refused(self, store, shape):
        with pytest.raises(ValueError, match="shape"):
            store.add(np.array([1, 2], dtype=np.int64), np.ones(shape, dtype=np.float32))
        assert store.count() == 0

    def test_a_saved_store_loads_with_the_same_vectors(self, filled, tmp_path):
        filled.remove(IDS[:1])
        filled.save(tmp_path)
        loaded = type(filled).load(tmp_path)
        assert loaded.dimension == DIMENSION and loaded.count() == len(IDS) - 1
        assert sorted(loaded.ids().tolist()) == sorted(IDS[1:].tolist())
        queries = unit_vectors(4, seed=7)
        for before, after in zip(filled.search(queries, 4), loaded.search(queries, 4)):
            assert np.array_equal(before, after)
        assert np.allclose(loaded.reconstruct(IDS[1:]), unit_vectors(len(IDS))[1:], atol=TOLERANCE)

    def test_a_loaded_store_takes_more_vectors_and_still_refuses_stored_ids(self, filled, tmp_path):
        filled.save(tmp_path)
        loaded = type(filled).load(tmp_path)
        loaded.add(np.array([1000], dtype=np.int64), unit_vectors(1, seed=4))
        assert loaded.count() == len(IDS) + 1
        with pytest.raises(ValueError, match="already stored"):
            loaded.add(IDS[:1], unit_vectors(1))

    def test_an_empty_store_survives_a_round_trip(self, store, tmp_path):
        store.save(tmp_path)
        loaded = type(store).load(tmp_path)
        assert loaded.count() == 0 and loaded.dimension == DIMENSION
        assert hits(loaded.search(unit_vectors(1), 3)[1][0]) == []

    def test_the_store_is_registered_under_its_name(self, store):
        from rag.stores import store_class

        assert store_class(type(store).name) is type(store)
