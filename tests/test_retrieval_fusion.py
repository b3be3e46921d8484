"""Reciprocal rank fusion on hand-made rankings."""
from __future__ import annotations

import pytest

from rag.retrieval import reciprocal_rank_fusion


def test_empty_inputs():
    assert reciprocal_rank_fusion([]) == []
    assert reciprocal_rank_fusion([[], []]) == []


def test_one_list_keeps_its_order():
    assert [i for i, _ in reciprocal_rank_fusion([[3, 1, 2]])] == [3, 1, 2]


def test_agreement_wins():
    fused = reciprocal_rank_fusion([[1, 2, 3], [2, 3, 1]], k=60)
    assert fused[0][0] == 2
    assert abs(fused[0][1] - (1 / 62 + 1 / 61)) < 1e-12


def test_weights_shift_the_result():
    dense_heavy = reciprocal_rank_fusion([[1, 2], [2, 1]], weights=[2.0, 1.0])
    assert dense_heavy[0][0] == 1
    assert reciprocal_rank_fusion([[1, 2], [2, 1]], weights=[1.0, 2.0])[0][0] == 2


def test_disjoint_lists_interleave():
    assert [i for i, _ in reciprocal_rank_fusion([[1, 2], [3, 4]])] == [1, 3, 2, 4]


def test_convex_empty_inputs():
    from rag.retrieval import convex_fusion

    assert convex_fusion([], []) == []
    assert convex_fusion([{}, {}], [0.5, 0.5]) == []


def test_convex_keeps_a_clear_winner():
    from rag.retrieval import convex_fusion

    # Dense barely prefers 1; BM25 strongly prefers 2: score fusion follows the strong signal (RRF would tie).
    dense = {1: 0.81, 2: 0.80, 3: 0.10}
    bm25 = {2: 12.0, 1: 2.0, 3: 1.0}
    fused = convex_fusion([dense, bm25], [0.5, 0.5])
    assert [i for i, _ in fused] == [2, 1, 3]


def test_convex_missing_items_get_the_list_floor():
    from rag.retrieval import convex_fusion

    fused = dict(convex_fusion([{1: 1.0, 2: 0.0}, {3: 5.0, 4: 1.0}], [1.0, 1.0]))
    # Each list's floor is its own minimum: 2 and 4 sit at both floors, 1 and 3 are each best once.
    assert fused[1] == pytest.approx(fused[3])
    assert fused[2] == pytest.approx(fused[4])
    assert fused[2] < fused[1]


def test_convex_single_keyword_hit_is_lifted():
    from rag.retrieval import convex_fusion

    # Only chunk 3 contains the rare query term; dense prefers 1 and 2, and is near-tied between them.
    fused = [i for i, _ in convex_fusion([{1: 0.62, 2: 0.61, 3: 0.40}, {3: 14.2}], [0.5, 0.5], floors=[None, 0.0])]
    assert fused.index(3) < fused.index(2), "the keyword hit is not ranked last any more"
    # With a dense list that does not separate the chunks, the keyword hit decides.
    assert convex_fusion([{1: 0.5, 2: 0.5, 3: 0.5}, {3: 14.2}], [0.5, 0.5], floors=[None, 0.0])[0][0] == 3


def test_convex_constant_list_contributes_nothing():
    from rag.retrieval import convex_fusion

    assert [i for i, _ in convex_fusion([{1: 0.5, 2: 0.5}, {2: 3.0, 1: 1.0}], [1.0, 1.0])] == [2, 1]


def test_best_per_document():
    from rag.retrieval import best_per_document

    assert best_per_document({0: 0.2, 1: 0.9, 2: 0.5}, ["a", "a", "b"]) == {"a": 0.9, "b": 0.5}
    assert best_per_document({}, []) == {}
