"""Reciprocal rank fusion on hand-made rankings."""
from __future__ import annotations

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
