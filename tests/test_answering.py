"""Citation parsing, invalid-citation removal, abstention detection, question checks, follow-ups."""
from __future__ import annotations

import pytest

from rag.answering import (
    NO_ANSWER, clean_question, condense_deterministic, drop_invalid_citations, is_abstention, marker_numbers,
    parse_citations,
)
from rag.errors import QuestionError


def test_adjacent_and_listed_markers():
    parsed = parse_citations("Gallium is controlled [1][2]. Japan joined in 2023 [1, 3].")
    assert parsed == [("Gallium is controlled [1][2].", [1, 2]), ("Japan joined in 2023 [1, 3].", [1, 3])]


def test_marker_after_full_stop_belongs_to_previous_sentence():
    parsed = parse_citations("China imposed controls. [2] Japan objected [1].")
    assert parsed[0][1] == [2]
    assert parsed[1][1] == [1]


def test_ranges_and_no_markers():
    assert marker_numbers("2-4") == [2, 3, 4]
    assert marker_numbers("1; 5") == [1, 5]
    assert parse_citations("No citations here.") == [("No citations here.", [])]
    assert parse_citations("") == []


def test_out_of_range_citations_are_removed():
    assert drop_invalid_citations("A fact [7]. Another [1][7]. Third [1, 7, 2].", {1, 2}) == \
        "A fact. Another [1]. Third [1][2]."


def test_abstention_detection():
    assert is_abstention(NO_ANSWER)
    assert is_abstention("The sources do not mention the delegation leader.")
    assert not is_abstention("China imposed controls in July 2023 [1].")
    assert is_abstention("")


def test_clean_question_rejects_empty_and_long_and_strips_controls():
    with pytest.raises(QuestionError, match="empty"):
        clean_question(" \t\n ", 2000)
    with pytest.raises(QuestionError, match="2,000"):
        clean_question("x" * 2001, 2000)
    assert clean_question("When\x00 did\x1b it\u200b start?", 2000) == "When did it start?"


def test_follow_up_rewrite_uses_previous_question():
    history = [("When did China impose rare metal controls?", "July 2023 [1].")]
    rewritten = condense_deterministic("Why did it do that?", history)
    assert "rare metal controls" in rewritten and rewritten.startswith("Why did it do that?")
    assert condense_deterministic("What is gallium used for in semiconductors?", history) == \
        "What is gallium used for in semiconductors?"
    assert condense_deterministic("Why?", None) == "Why?"
