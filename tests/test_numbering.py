"""Citation numbers in citing order (rag/numbering.py), on hand-made inputs including empty ones."""
from __future__ import annotations

import pytest

from rag.numbering import LiveNumbering, citing_order, renumber, renumber_markers
from rag.text import cited_numbers
from rag.types import Citation, SentenceCheck


def cite(number: int) -> Citation:
    return Citation(number=number, doc_id=f"d{number}", title=f"T{number}", source="s", text="t", start=0, end=1)


def test_cited_sources_come_first_in_citing_order_then_the_rest_by_rank():
    assert citing_order("B [4]. A [1]. C [4, 2].", [1, 2, 3, 4, 5]) == {4: 1, 1: 2, 2: 3, 3: 4, 5: 5}
    assert citing_order("No markers.", [1, 2]) == {1: 1, 2: 2}
    assert citing_order("", []) == {}
    assert citing_order("Unknown [9].", [1]) == {1: 1}


def test_markers_are_rewritten_without_gaps_and_ranges_expanded():
    assert renumber_markers("A [4]. B [1][4]. C [2-4].", {4: 1, 1: 2, 2: 3, 3: 4}) == "A [1]. B [2][1]. C [3, 4, 1]."
    assert renumber_markers("Keep [7].", {1: 2}) == "Keep [7]."


def test_renumber_moves_text_sources_and_checks_together_without_changing_inputs():
    sources = [cite(1), cite(2), cite(3)]
    checks = [SentenceCheck("X [3].", [3], 0.9, True, {3: True}, evidence={3: [(0, 1)]})]
    mapping = citing_order("X [3].", [1, 2, 3])
    text, new_sources, new_checks = renumber("X [3].", sources, checks, mapping)
    assert text == "X [1]."
    assert [(c.number, c.doc_id) for c in new_sources] == [(1, "d3"), (2, "d1"), (3, "d2")]
    assert new_checks[0].sentence == "X [1]." and new_checks[0].cited == [1]
    assert new_checks[0].citation_supported == {1: True} and new_checks[0].evidence == {1: [(0, 1)]}
    assert sources[2].number == 3 and checks[0].cited == [3]


@pytest.mark.slow
def test_answers_number_their_cited_sources_from_one_in_citing_order(seed_assistant):
    for question in ("When did China impose the rare metals controls?",
                     "What did Japan and China discuss, and which metals are restricted?"):
        response = seed_assistant.stream(question)
        streamed, answer = "".join(response), response.answer
        cited = cited_numbers(answer.text)
        assert cited_numbers(streamed) == cited  # what streamed carries the Answer's numbers
        assert cited == list(range(1, len(cited) + 1)), answer.text
        assert [c.number for c in answer.citations] == cited
        assert [c.number for c in answer.sources] == list(range(1, len(answer.sources) + 1))
        assert all(n in cited for check in answer.sentences for n in check.cited)


def test_streamed_markers_get_the_same_numbers_as_the_whole_text():
    text = "B [4]. A [1][4]. C [2-3]. Not a marker [x and [9]."
    for size in (1, 2, 3, 7, len(text)):
        live = LiveNumbering([1, 2, 3, 4])
        shown = "".join(live.feed(text[i:i + size]) for i in range(0, len(text), size)) + live.flush()
        assert shown == renumber_markers(text, citing_order(text, [1, 2, 3, 4]))
    assert shown == "B [1]. A [2][1]. C [3, 4]. Not a marker [x and [9]."
    live = LiveNumbering([1])
    assert live.feed("open [") == "open " and live.feed("no marker " * 5) == "[" + "no marker " * 5
    assert LiveNumbering([]).flush() == ""


@pytest.mark.slow
def test_an_llm_citing_out_of_rank_order_gets_numbers_in_citing_order(seed_index_dir):
    from fake_llm_server import FakeLLMServer, Script

    from rag import Assistant, Settings

    with FakeLLMServer() as server:
        settings = Settings(index=seed_index_dir, answerer="openai", llm_base_url=server.url + "/v1",
                            llm_timeout=5, llm_retries=0)
        server.reset(Script(pieces=["Gallium exports need a licence [", "3]. The controls came in 2023 [1", "]."]))
        response = Assistant.open(seed_index_dir, settings).stream("What did China restrict?")
        streamed, answer = "".join(response), response.answer
    assert answer.text == "Gallium exports need a licence [1]. The controls came in 2023 [2]." == streamed
    first, second = answer.sources[0], answer.sources[1]
    assert first.score < second.score  # source 1 is the one cited first (ranked third), not the best ranked
    assert [c.number for c in answer.sources] == list(range(1, len(answer.sources) + 1))
    assert [c.number for c in answer.citations] == [1, 2]
