"""Keyword indexes stored as immutable parts plus tombstones: grown, shrunk, merged and saved over several
generations, they score exactly as one built afresh; saves link unchanged parts; damage is named."""
from __future__ import annotations

import json
import os

import bm25s
import numpy as np
import pytest

from rag import keyword_search
from rag.errors import IndexCorruptError
from rag.keyword import KeywordIndex, postings_of, tokenize
from rag.keyword_parts import merge_plan
from rag.terms import segment

WORDS = ("gallium germanium export control the of and china japan chip rare metal trade a "
         "semiconductor equipment dialogue beijing tokyo 輸出 規制").split()
QUERIES = ["gallium export", "china chip rare metal", "the of", "semiconductor equipment trade japan",
           "輸出規制 gallium gallium", "nothing matches"]


def _texts(n: int, rng: np.random.Generator) -> list[str]:
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(0, 25)))) for _ in range(n)]


def _assert_scores_as_fresh(index: KeywordIndex, texts: list[str], k: int = 15) -> None:
    fresh = KeywordIndex.build(texts, index.k1, index.b)
    assert index.size == len(texts) and index.same_as(fresh)
    for query in QUERIES:
        (mine, my_scores), (theirs, their_scores) = index.search(query, k), fresh.search(query, k)
        assert mine.tolist() == theirs.tolist()
        np.testing.assert_allclose(my_scores, their_scores, rtol=1e-6)


@pytest.fixture()
def small_merges(monkeypatch):
    """Merges of 3 parts from 4 chunks up, so a few dozen chunks exercise every level."""
    monkeypatch.setattr("rag.keyword_parts._FACTOR", 3)
    monkeypatch.setattr("rag.keyword_parts._FLOOR", 4)
    monkeypatch.setattr("rag.keyword_parts._MOST", 8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_adds_removes_and_saves_score_as_a_fresh_build(tmp_path, small_merges, seed):
    rng = np.random.default_rng(seed)
    texts = _texts(30, rng)
    index = KeywordIndex.build(texts, *[(1.5, 0.75), (1.2, 0.4)][seed % 2])
    for step in range(14):
        if rng.random() < 0.6 or len(texts) < 10:
            new = _texts(int(rng.integers(1, 12)), rng)
            index, texts = index.extended(new), texts + new
        else:
            gone = sorted(set(rng.integers(0, len(texts), size=int(rng.integers(1, 6))).tolist()))
            index, texts = index.without(gone), [t for i, t in enumerate(texts) if i not in set(gone)]
        if step % 3 == 2:  # a new generation, opened again as a reader would
            index.save(tmp_path / f"gen-{step}")
            index = KeywordIndex.load(tmp_path / f"gen-{step}", len(texts))
        _assert_scores_as_fresh(index, texts)
        assert len(index.parts) <= 8
    assert index.counts_agree()


@pytest.mark.parametrize("lookups", [0, 1 << 14], ids=["one-pass", "binary-searches"])
def test_scores_are_bm25s_scores_after_removals(monkeypatch, lookups):
    monkeypatch.setattr(keyword_search, "_LOOKUPS", lookups)  # how the chosen chunks' exact scores are summed
    rng = np.random.default_rng(5)
    texts = _texts(200, rng)
    index = KeywordIndex.build(texts[:120]).extended(texts[120:]).without([3, 150, 199])
    kept = [t for i, t in enumerate(texts) if i not in (3, 150, 199)]
    reference = bm25s.BM25()
    reference.index(tokenize([segment(t) for t in kept]), show_progress=False)
    for query in ("gallium export", "china chip rare metal", "輸出規制 gallium gallium"):
        positions, scores = index.search(query, 500)
        expected = reference.get_scores(tokenize([segment(query)], return_ids=False)[0])
        assert np.array_equal(scores, expected[positions]) and len(positions) == np.count_nonzero(expected)


def test_a_save_writes_new_parts_and_links_the_others(tmp_path):
    rng = np.random.default_rng(3)
    index = KeywordIndex.build(_texts(50, rng))
    index.save(tmp_path / "a")
    index = KeywordIndex.load(tmp_path / "a", 50).extended(_texts(5, rng)).without([7])
    index.save(tmp_path / "b")
    old, new = index.parts
    for name in old.files():
        assert os.stat(tmp_path / "a" / name).st_ino == os.stat(tmp_path / "b" / name).st_ino
    assert not any((tmp_path / "a" / name).exists() for name in new.files())
    index.extended(_texts(3, rng)).save(tmp_path / "c")  # links from b, where it was last saved
    for name in old.files() + new.files():
        assert os.stat(tmp_path / "b" / name).st_ino == os.stat(tmp_path / "c" / name).st_ino
    assert json.loads((tmp_path / "b" / "parts.json").read_text())["deleted"] == 1


def test_compaction_gives_one_part_equal_to_a_fresh_build(small_merges):
    rng = np.random.default_rng(4)
    texts = _texts(40, rng)
    index = KeywordIndex.build(texts[:10])
    for start in range(10, 40, 5):
        index = index.extended(texts[start:start + 5])
    index = index.without([0, 11, 39])
    texts = [t for i, t in enumerate(texts) if i not in (0, 11, 39)]
    compacted = index.compact()
    assert len(compacted.parts) == 1 and compacted.size == 37
    _assert_scores_as_fresh(compacted, texts)


def test_the_merge_policy_bounds_the_part_count_and_merges_only_small_parts(small_merges):
    rng = np.random.default_rng(6)
    index = KeywordIndex.build(_texts(500, rng))
    first = index.parts[0]
    counts = []
    for _ in range(100):
        index = index.extended(_texts(1, rng))
        counts.append(len(index.parts))
    # 100 chunks added one at a time fill levels 0-2 (under 12, 36, 108 chunks): at most 2 parts each
    assert max(counts) <= 1 + 2 * 3 and index.parts[0] is first  # the large part was never rewritten
    assert sum(p.size for p in index.parts[1:]) == 100
    assert merge_plan([100, 50], [40, 0]) == (0, 1)  # a part that lost a third of its chunks is rewritten
    assert merge_plan([50, 5, 5, 5], [0] * 4) == (1, 4) and merge_plan([50, 5, 5], [0] * 3) is None
    assert merge_plan([13, 5] * 5, [0] * 10) == (1, 4)  # over 8 parts whatever their levels: the smallest run


def test_only_the_new_chunks_are_tokenized(monkeypatch):
    index = KeywordIndex.build(_texts(30, np.random.default_rng(7)))
    seen = []
    monkeypatch.setattr("rag.keyword.postings_of", lambda texts: seen.append(len(texts)) or postings_of(texts))
    index.extended(["gallium exports", "chip trade"]).without([1])
    assert seen == [2]


def test_long_terms_and_shared_prefixes_are_found():
    long = "x" * 20
    texts = [f"{long}alpha", f"{long}beta", f"{long}", "x" * 16, "東京都庁舎 gallium", "plain"]
    index = KeywordIndex.build(texts)
    for i, text in enumerate(texts):
        assert index.search(text, 1)[0].tolist() == [i], text
    assert index.search(f"{long}gamma", 3)[0].tolist() == []


def test_a_damaged_or_missing_part_file_is_named(tmp_path):
    index = KeywordIndex.build(_texts(20, np.random.default_rng(8)))
    index.save(tmp_path)
    name = index.parts[0].name
    rows = tmp_path / f"{name}.rows.npy"
    data = rows.read_bytes()
    rows.write_bytes(data[:len(data) - 8])  # truncated
    with pytest.raises(IndexCorruptError, match=f"{name}.rows.npy"):
        KeywordIndex.load(tmp_path, 20)
    rows.unlink()
    with pytest.raises(IndexCorruptError, match=f"{name}.rows.npy"):
        KeywordIndex.load(tmp_path, 20)
    (tmp_path / "parts.json").write_text("{")
    with pytest.raises(IndexCorruptError, match="parts.json"):
        KeywordIndex.load(tmp_path, 20)


def test_structure_problem_catches_rows_out_of_range(tmp_path):
    index = KeywordIndex.build(_texts(20, np.random.default_rng(9)))
    assert index.structure_problem(20) is None and index.structure_problem(21) is not None
    index.save(tmp_path)
    path = tmp_path / f"{index.parts[0].name}.rows.npy"
    rows = np.load(path)
    rows[len(rows) // 2] = 20
    path.unlink()
    np.save(path, rows)
    with pytest.raises(IndexCorruptError, match="outside 0..19"):
        KeywordIndex.load(tmp_path, 20)
    (tmp_path / "deleted.npy").unlink()
    np.save(tmp_path / "deleted.npy", np.array([5, 5]))
    listing = json.loads((tmp_path / "parts.json").read_text())
    (tmp_path / "parts.json").write_text(json.dumps({**listing, "deleted": 2}))
    rows[len(rows) // 2] = 0
    path.unlink()
    np.save(path, rows)
    with pytest.raises(IndexCorruptError, match="removed row"):
        KeywordIndex.load(tmp_path, 18)


def _save_earlier_layout(texts: list[str], path, counts: bool = True) -> None:
    """What the earlier code saved: one bm25s index over every chunk, term counts beside it."""
    postings = postings_of(texts)
    retriever = bm25s.BM25()
    vocab = {term: t for t, term in enumerate(postings.terms)}
    vocab[""] = len(vocab)
    retriever.scores = {"data": postings.scores(1.5, 0.75), "indices": postings.chunks,
                        "indptr": postings.indptr, "num_docs": postings.size}
    retriever.vocab_dict, retriever.unique_token_ids_set = vocab, set(vocab.values())
    retriever.nonoccurrence_array = None
    retriever.save(str(path))
    if counts:
        np.save(path / "counts.npy", postings.counts.astype(np.uint16))
        np.save(path / "lengths.npy", postings.lengths)


def test_an_index_in_the_earlier_layout_loads_searches_and_saves_in_parts(tmp_path):
    rng = np.random.default_rng(10)
    texts = _texts(40, rng)
    _save_earlier_layout(texts, tmp_path / "old")
    index = KeywordIndex.load(tmp_path / "old", 40)
    assert index.incremental
    _assert_scores_as_fresh(index, texts)
    index.extended(["gallium chip"]).save(tmp_path / "new")
    assert (tmp_path / "new" / "parts.json").exists()
    _assert_scores_as_fresh(KeywordIndex.load(tmp_path / "new", 41), texts + ["gallium chip"])
    _save_earlier_layout(texts, tmp_path / "older", counts=False)  # before term counts were kept
    oldest = KeywordIndex.load(tmp_path / "older", 40)
    assert not oldest.incremental and oldest.same_as(KeywordIndex.build(texts))
    (positions, scores), fresh = oldest.search("gallium export", 40), KeywordIndex.build(texts)
    assert np.array_equal(scores, fresh.search("gallium export", 40)[1])  # ties may come in another order
    assert sorted(positions.tolist()) == sorted(fresh.search("gallium export", 40)[0].tolist())
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "EMPTY").touch()
    empty = KeywordIndex.load(tmp_path / "empty", 3)
    assert empty.size == 3 and empty.extended(["gallium"]).search("gallium", 2)[0].tolist() == [3]


def test_common_terms_looked_up_only_for_chunks_that_can_reach_the_top_score_exactly(monkeypatch):
    rng = np.random.default_rng(11)
    common = "china metal trade export control japan chip".split()
    texts = [" ".join(rng.choice(common, size=int(rng.integers(5, 30)))) for _ in range(3000)]
    for i in rng.choice(3000, size=40, replace=False):
        texts[i] += " gallium" * int(rng.integers(1, 4))
    index = KeywordIndex.build(texts[:2000]).extended(texts[2000:]).without([5, 2500])
    kept = [t for i, t in enumerate(texts) if i not in (5, 2500)]
    reference = bm25s.BM25()
    reference.index(tokenize([segment(t) for t in kept]), show_progress=False)
    query = "gallium china metal trade gallium"
    expected = reference.get_scores(tokenize([segment(query)], return_ids=False)[0])
    everything = index.search(query, len(kept))
    pruned, finish = [], keyword_search._finish
    monkeypatch.setattr(keyword_search, "_finish", lambda *a: pruned.append(len(a[3])) or finish(*a))
    positions, scores = index.search(query, 10)
    assert pruned and pruned[0] < len(kept) // 2, "the common terms were looked up for few chunks"
    assert positions.tolist() == everything[0][:10].tolist()
    assert np.array_equal(scores, expected[positions]) and scores[-1] >= np.sort(expected)[-10]
