"""Question handling: question and history checks, bounded standalone questions, the deterministic rewrite."""
from __future__ import annotations

import pytest

from rag.errors import QuestionError
from rag.questions import checked_history, checked_k, clean_question, condense_deterministic, standalone_question


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


def test_standalone_question_prefers_the_answerers_rewrite_and_stays_within_the_limit():
    history = [("When did China impose rare metal controls?", "July 2023 [1].")]
    assert standalone_question("Why?", history, lambda q, h: " Why were controls imposed? ", 100) == \
        "Why were controls imposed?"
    fallback = standalone_question("Why did it do that?", history, lambda q, h: None, 25)
    assert fallback == "Why did it do that? (When"
    assert standalone_question("Why?", [], lambda q, h: "never asked", 100) == "Why?"


@pytest.mark.parametrize("history", ["Who?", [("Who?",)], [("Who?", 3)], {"q": "a"}])
def test_malformed_history_is_a_question_error(history):
    with pytest.raises(QuestionError, match="history"):
        checked_history(history)


def test_history_and_k_checks_accept_good_values():
    assert checked_history(None) == [] and checked_history([["Who?", "Ann [1]."]]) == [("Who?", "Ann [1].")]
    assert checked_k(3) == 3
    for bad in (0, True, 2.5, "3"):
        with pytest.raises(QuestionError, match="k must be"):
            checked_k(bad)
