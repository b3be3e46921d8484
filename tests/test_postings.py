"""Keyword indexes grow and shrink from stored term counts, scoring exactly as a bm25s index built afresh."""
from __future__ import annotations

import json

import bm25s
import numpy as np
import pytest

from rag import Settings
from rag.audit import audit
from rag.index import Index
from rag.integrity import seal
from rag.keyword import KeywordIndex, chunk_texts, context_texts, postings_of, tokenize
from rag.storage import IndexLock, current_generation
from rag.terms import segment

from test_index import TEXTS, _parts

WORDS = "gallium germanium export control the of and china japan chip rare metal trade a".split()


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    # Some texts are empty or all stop words: they count as chunks of length 0.
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(0, 30)))) for _ in range(n)]


@pytest.mark.parametrize("k1,b", [(1.5, 0.75), (1.2, 0.4)])
def test_scores_equal_those_of_bm25s_indexing_the_same_texts(k1, b):
    texts = _texts(400) + ["輸出規制 gallium", "Ｇａｌｌｉｕｍ exports"]
    reference = bm25s.BM25(k1=k1, b=b)
    reference.index(tokenize([segment(t) for t in texts]), show_progress=False)
    ours = KeywordIndex.build(texts, k1, b)
    assert ours.same_as(KeywordIndex([], [], k1, b, legacy=reference))  # bm25s's own index, as loaded
    for query in ("gallium export", "china chip rare metal", "輸出 gallium"):
        positions, scores = ours.search(query, 10)
        expected = reference.get_scores(tokenize([segment(query)], return_ids=False)[0])
        assert np.array_equal(scores, expected[positions]) and scores[0] == expected.max()


def test_texts_tokenized_and_scored_in_batches_give_the_same_index(monkeypatch):
    texts = _texts(100, seed=2)
    whole = KeywordIndex.build(texts)
    monkeypatch.setattr("rag.keyword_terms._BATCH", 7)
    monkeypatch.setattr("rag.postings._BLOCK", 5)
    assert KeywordIndex.build(texts).same_as(whole)


def test_adding_and_removing_chunks_gives_the_index_built_afresh():
    texts = _texts(600, seed=1)
    grown = KeywordIndex.build(texts[:200]).extended(texts[200:450]).extended(texts[450:])
    assert grown.same_as(KeywordIndex.build(texts))
    gone = [0, 7, 199, 200, 599]
    kept = [t for i, t in enumerate(texts) if i not in gone]
    assert grown.without(gone).same_as(KeywordIndex.build(kept))
    assert not grown.without(gone).same_as(grown)


def test_an_index_of_stop_words_grows_into_a_searchable_one():
    empty = KeywordIndex.build(["the of", "a"])
    assert empty.size == 2 and empty.incremental and empty.search("the of", 3)[0].tolist() == []
    grown = empty.extended(["gallium exports"])
    assert grown.same_as(KeywordIndex.build(["the of", "a", "gallium exports"]))
    assert grown.search("gallium", 3)[0].tolist() == [2]


def test_the_index_adds_only_new_chunks_and_saves_their_counts(tmp_path, monkeypatch):
    index = Index.empty(Settings(), 4)
    first, second = list(TEXTS)
    index.add_document(*_parts(first))
    assert index.keyword.size == 2
    tokenized: list[str] = []
    monkeypatch.setattr("rag.keyword_terms.postings_of",
                        lambda texts: tokenized.extend(texts) or postings_of(texts))
    index.add_document(*_parts(second))
    assert index.keyword.size == 4
    seen = " ".join(tokenized)
    assert "runway" in seen and "harbour" not in seen, "only the new document is tokenized"
    assert len(seen) < 3 * len(_parts(second)[0].text), "its text once for each index, not once per window"
    assert index.keyword.search("runway", 3)[0].tolist() == [3]
    index.remove_documents([first])
    titles = {d: doc.title for d, doc in index.documents.items()}
    texts = {d: doc.text for d, doc in index.documents.items()}
    assert index.keyword.same_as(KeywordIndex.build(chunk_texts(index.chunks, titles)))
    assert index.context_keyword.same_as(KeywordIndex.build(context_texts(index.chunks, titles, texts), 1.2, 0.4))
    with IndexLock(tmp_path):
        index.save(tmp_path)
    reopened = Index.load(tmp_path, Settings())
    assert reopened.keyword.incremental and reopened.keyword.same_as(index.keyword)


def test_verify_reports_term_counts_that_disagree_with_the_chunk_lengths(seed_index_copy):
    folder = current_generation(seed_index_copy)
    assert not audit(seed_index_copy, Settings())["problems"]
    name = json.loads((folder / "bm25" / "parts.json").read_text())["parts"][0]["name"]
    path = folder / "bm25" / f"{name}.counts.npy"
    counts = np.load(path)
    counts[0] += 1  # resealed: the checksums pass, only the counts are wrong
    path.unlink()  # a new file: the saved one may share its bytes with another generation
    np.save(path, counts)
    manifest = json.loads((folder / "manifest.json").read_text())
    seal(folder, manifest)
    found = audit(seed_index_copy, Settings())["problems"]
    assert [p["file"] for p in found] == ["bm25"]
    chunks = manifest["chunk_count"]
    assert not KeywordIndex.load(folder / "bm25", chunks).counts_agree()
    assert KeywordIndex.load(folder / "bm25_context", chunks).counts_agree()
