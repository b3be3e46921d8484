"""The FAISS store's parts: saves that write only what changed, tombstones, merges, compaction, IVF parts,
and indexes saved as one file before parts existed."""
from __future__ import annotations

import os

import numpy as np
import pytest

from rag import IndexCorruptError
from rag.storage import current_generation, write_generation
from rag.stores.faiss import LEGACY, LISTING, FaissStore

from conformance import unit_vectors

DIM = 16


def clustered(n: int, seed: int = 0, topics: int = 40, dimension: int = DIM) -> np.ndarray:
    """Unit vectors around ``topics`` centres (text embeddings cluster; uniform random vectors do not)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((topics, dimension)).astype(np.float32)
    vectors = centres[rng.integers(0, topics, n)] + 0.7 * rng.standard_normal((n, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def part_files(folder) -> dict[str, os.stat_result]:
    return {p.name: p.stat() for p in (folder / FaissStore.FILE).glob("part-*.faiss")}


def same_results(a: FaissStore, b: FaissStore, queries: np.ndarray, k: int = 10) -> None:
    (scores_a, ids_a), (scores_b, ids_b) = a.search(queries, k), b.search(queries, k)
    assert np.array_equal(ids_a, ids_b)
    assert np.allclose(scores_a, scores_b, atol=1e-6)


@pytest.fixture
def vectors():
    return unit_vectors(300, seed=1, dimension=DIM)


IDS = np.arange(300, dtype=np.int64) * 7919 + 2**40


def test_parts_added_over_several_saves_search_as_one_built_at_once(tmp_path, vectors):
    whole = FaissStore.create(DIM)
    whole.add(IDS, vectors)
    store = FaissStore.create(DIM)
    for number, (begin, end) in enumerate([(0, 120), (120, 200), (200, 300)]):
        store.add(IDS[begin:end], vectors[begin:end])
        store.save(tmp_path / f"g{number}")
        store = FaissStore.load(tmp_path / f"g{number}")
    assert len(store.parts()) == 3 and store.count() == 300
    assert np.array_equal(np.sort(store.ids()), np.sort(IDS))
    same_results(store, whole, unit_vectors(20, seed=2, dimension=DIM))
    assert np.allclose(store.reconstruct(IDS[[250, 3, 130]]), vectors[[250, 3, 130]], atol=1e-3)


def test_a_removal_from_a_saved_part_stays_removed_after_save_and_load(tmp_path, vectors):
    store = FaissStore.create(DIM)
    store.add(IDS[:200], vectors[:200])
    store.save(tmp_path / "a")
    store = FaissStore.load(tmp_path / "a")
    store.add(IDS[200:], vectors[200:])
    gone = IDS[[0, 5, 199, 250]]
    assert store.remove(gone) == 4 and store.remove(gone) == 0
    store.save(tmp_path / "b")
    loaded = FaissStore.load(tmp_path / "b")
    assert loaded.count() == 296 and not set(gone.tolist()) & set(loaded.ids().tolist())
    _, found = loaded.search(vectors[[0, 5, 199, 250]], 300)
    assert not set(gone.tolist()) & set(found.ravel().tolist())
    with pytest.raises(KeyError, match=str(gone[0])):
        loaded.reconstruct(gone[:1])
    assert sum(p["removed"] for p in loaded.parts()) == 3, "the unsaved part's removal leaves no tombstone"


def test_a_removed_id_added_again_is_found_with_its_new_vector(tmp_path, vectors):
    store = FaissStore.create(DIM)
    store.add(IDS[:10], vectors[:10])
    store.save(tmp_path / "a")
    store.remove(IDS[:1])
    store.add(IDS[:1], vectors[50:51])
    store.save(tmp_path / "b")
    loaded = FaissStore.load(tmp_path / "b")
    assert loaded.count() == 10 and np.allclose(loaded.reconstruct(IDS[:1]), vectors[50:51], atol=1e-3)
    assert loaded.search(vectors[50:51], 1)[1][0, 0] == IDS[0]
    assert loaded.search(vectors[:1], 10)[1][0].tolist().count(IDS[0]) == 1


def test_a_save_hard_links_unchanged_parts_across_generations(tmp_path, vectors):
    index_dir = tmp_path / "index"
    store = FaissStore.create(DIM)
    store.add(IDS[:200], vectors[:200])
    write_generation(index_dir, store.save)
    first = part_files(current_generation(index_dir))
    store.add(IDS[200:], vectors[200:])  # the same object again: its last save was to a renamed folder
    store.remove(IDS[:2])
    write_generation(index_dir, store.save)
    second = part_files(current_generation(index_dir))
    [(name, before)] = first.items()
    assert len(second) == 2 and second[name].st_ino == before.st_ino, "the unchanged part is linked"
    reopened = FaissStore.load(current_generation(index_dir))
    reopened.add(IDS[:2], vectors[:2])
    write_generation(index_dir, reopened.save)
    third = part_files(current_generation(index_dir))
    assert {n: s.st_ino for n, s in second.items()}.items() <= {n: s.st_ino for n, s in third.items()}.items()


def test_compaction_equals_a_fresh_build(tmp_path, vectors):
    store = FaissStore.create(DIM)
    for begin in range(0, 300, 100):
        store.add(IDS[begin:begin + 100], vectors[begin:begin + 100])
        store.save(tmp_path / f"g{begin}")
    store.remove(IDS[::3])
    store.compact()
    assert [(p["count"], p["removed"]) for p in store.parts()] == [(200, 0)]
    store.save(tmp_path / "compacted")
    fresh = FaissStore.create(DIM)
    keep = np.ones(300, bool)
    keep[::3] = False
    fresh.add(IDS[keep], vectors[keep])
    loaded = FaissStore.load(tmp_path / "compacted")
    assert len(part_files(tmp_path / "compacted")) == 1
    same_results(loaded, fresh, unit_vectors(20, seed=3, dimension=DIM), k=50)


def test_merges_bound_the_parts_and_leave_a_big_part_alone(tmp_path, vectors):
    store = FaissStore.create(DIM, max_parts=5)
    store.TIER_FLOOR = 2  # tiers of 2-7, 8-31, 32-127, 128-511 vectors
    store.add(IDS[:200], vectors[:200])
    store.save(tmp_path / "start")
    [big] = part_files(tmp_path / "start")
    for number in range(1, 100):
        store.add(IDS[200 + number - 1:200 + number], vectors[200 + number - 1:200 + number])
        store.save(tmp_path / f"g{number}")
        assert len(store.parts()) <= 5
        assert big in part_files(tmp_path / f"g{number}"), "a one-vector save never rewrites the big part"
    assert store.count() == 299 and len(store.parts()) >= 3, "merges are tiered, not everything into one"
    same_results(FaissStore.load(tmp_path / "g99"), _built(IDS[:299], vectors[:299]),
                 unit_vectors(10, seed=4, dimension=DIM))


def test_a_part_mostly_removed_is_rewritten_without_its_tombstones(tmp_path, vectors):
    store = FaissStore.create(DIM)
    store.add(IDS, vectors)
    store.save(tmp_path / "a")
    store.remove(IDS[:100])  # a third: beyond the 25% that triggers a rewrite
    store.save(tmp_path / "b")
    assert [(p["count"], p["removed"]) for p in store.parts()] == [(200, 0)]
    same_results(FaissStore.load(tmp_path / "b"), _built(IDS[100:], vectors[100:]), vectors[:20])


def test_many_tombstones_are_skipped_during_the_scan(tmp_path):
    vectors = unit_vectors(3000, seed=5, dimension=DIM)
    ids = np.arange(3000, dtype=np.int64)
    store = FaissStore.create(DIM)
    store.add(ids, vectors)
    store.save(tmp_path / "a")
    store.remove(ids[:600])  # 20%: kept as tombstones, more than a search over-fetches
    assert store.parts()[0]["removed"] == 600
    same_results(store, _built(ids[600:], vectors[600:]), vectors[:30])


def test_an_ivf_part_finds_at_least_95_percent_of_the_exact_top_10(tmp_path):
    data = clustered(6100, topics=400)  # neighbourhoods that straddle lists: a few probes are not enough
    vectors, queries = data[:6000], data[6000:]
    ids = np.arange(6000, dtype=np.int64) * 3
    store = FaissStore.create(DIM, ivf_threshold=2000)
    store.add(ids, vectors)
    store.save(tmp_path / "a")
    loaded = FaissStore.load(tmp_path / "a")
    [part] = loaded.parts()
    assert part["kind"] == "ivf" and 8 < part["nprobe"] < part["lists"], "probes chosen by measured recall"
    exact = _built(ids, vectors).search(queries, 10)[1]
    found = loaded.search(queries, 10)[1]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found.tolist(), exact.tolist())])
    assert recall >= 0.95
    assert loaded.count() == 6000 and np.array_equal(np.sort(loaded.ids()), ids)
    assert np.allclose(loaded.reconstruct(ids[[7, 4000]]), vectors[[7, 4000]], atol=1e-3)
    loaded.remove(ids[:300])  # more than a search over-fetches: skipped during the scan
    assert not set(ids[:300].tolist()) & set(loaded.search(vectors[:20], 10)[1].ravel().tolist())
    deep = loaded.search(queries[:1], 3000)[1][0]  # a filtered search goes deep: every list is probed
    assert np.array_equal(np.sort(deep), np.sort(_built(ids[300:], vectors[300:]).search(queries[:1], 3000)[1][0]))


def test_small_parts_merge_into_an_ivf_part_above_the_threshold(tmp_path):
    vectors = clustered(3000)
    ids = np.arange(3000, dtype=np.int64)
    store = FaissStore.create(DIM, ivf_threshold=2500)
    for begin in range(0, 3000, 1000):
        store.add(ids[begin:begin + 1000], vectors[begin:begin + 1000])
        store.save(tmp_path / f"g{begin}")
    store.compact()
    store.save(tmp_path / "compacted")
    assert [(p["kind"], p["count"]) for p in FaissStore.load(tmp_path / "compacted").parts()] == [("ivf", 3000)]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
def test_a_damaged_part_file_is_named(tmp_path, vectors, damage):
    store = FaissStore.create(DIM)
    store.add(IDS[:100], vectors[:100])
    store.save(tmp_path / "a")
    store.add(IDS[100:], vectors[100:])
    store.save(tmp_path / "b")
    [name] = set(part_files(tmp_path / "b")) - set(part_files(tmp_path / "a"))
    target = tmp_path / "b" / FaissStore.FILE / name
    data = target.read_bytes()
    target.unlink()  # the first part is a link shared with folder a: never damage it in place
    if damage == "truncate":
        target.write_bytes(data[:-3])
    elif damage == "garbage":
        target.write_bytes(b"\x00garbage" + data[8:])
    with pytest.raises(IndexCorruptError, match=f"{target.name} is (corrupt|missing)"):
        FaissStore.load(tmp_path / "b")
    assert FaissStore.load(tmp_path / "a").count() == 100


def test_a_damaged_listing_is_named(tmp_path, vectors):
    store = FaissStore.create(DIM)
    store.add(IDS, vectors)
    store.save(tmp_path)
    listing = tmp_path / FaissStore.FILE / LISTING
    listing.write_text(listing.read_text()[:-20])
    with pytest.raises(IndexCorruptError, match=f"{LISTING} is corrupt"):
        FaissStore.load(tmp_path)
    listing.unlink()
    with pytest.raises(IndexCorruptError, match=f"{LISTING} is missing"):
        FaissStore.load(tmp_path)


def test_a_store_saved_as_one_file_loads_and_its_next_save_links_it(tmp_path, vectors):
    import faiss

    old = faiss.IndexIDMap2(faiss.IndexScalarQuantizer(DIM, faiss.ScalarQuantizer.QT_fp16,
                                                       faiss.METRIC_INNER_PRODUCT))
    old.add_with_ids(vectors[:200], IDS[:200])
    faiss.write_index(old, str(tmp_path / LEGACY))
    store = FaissStore.load(tmp_path)
    assert store.count() == 200 and store.dimension == DIM
    same_results(store, _built(IDS[:200], vectors[:200]), vectors[:10])
    store.remove(IDS[:1])
    store.add(IDS[200:], vectors[200:])
    store.save(tmp_path / "next")
    names = part_files(tmp_path / "next")
    assert len(names) == 2 and (tmp_path / LEGACY).stat().st_ino in {s.st_ino for s in names.values()}
    loaded = FaissStore.load(tmp_path / "next")
    assert loaded.count() == 299 and IDS[0] not in loaded.ids()
    same_results(loaded, _built(IDS[1:], vectors[1:]), vectors[:10])


def _built(ids: np.ndarray, vectors: np.ndarray) -> FaissStore:
    store = FaissStore.create(vectors.shape[1])
    store.add(ids, vectors)
    return store
