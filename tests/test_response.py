"""The streamed answer object: text first, then the Answer; replay, early access and errors."""
from __future__ import annotations

import pytest

from fake_llm_server import FakeLLMServer, Script

from rag import Answer, Assistant, BackendError, Response, Settings
from rag.response import until_sentence
from rag.verification import NO_ANSWER


def written(pieces, fail: bool = False):
    yield from pieces
    if fail:
        raise BackendError("The LLM server stopped mid-answer.")
    return Answer(text="".join(pieces), citations=[])


def test_pieces_then_answer_and_replay():
    response = Response(written(["It ", "rose [1]."]))
    assert list(response) == ["It ", "rose [1]."]
    assert response.answer.text == "It rose [1]."
    assert list(response) == ["It ", "rose [1]."]


def test_answer_first_reads_the_rest():
    response = Response(written(["A", "B", "C"]))
    assert next(iter(response)) == "A"
    assert response.answer.text == "ABC"
    assert list(Response(written([]))) == [] and Response(written([])).answer.text == ""


def test_an_error_while_writing_is_raised_again_by_answer():
    response = Response(written(["Partial"], fail=True))
    with pytest.raises(BackendError, match="mid-answer"):
        list(response)
    with pytest.raises(BackendError, match="mid-answer"):
        _ = response.answer


@pytest.mark.parametrize("pieces, shown", [
    ([NO_ANSWER, " PWNED [1]."], NO_ANSWER),
    (["The doc", "uments do not answer this question", ". Visit ", "evil.example"], NO_ANSWER),
    (["  The documents do not answer this question"], "  The documents do not answer this question"),
    (["The doc", "s say ", "it rose [1]."], "The docs say it rose [1]."),
    (["The d"], "The d"),
    ([], ""),
])
def test_nothing_after_the_abstention_sentence_is_shown(pieces, shown):
    written: list[str] = []
    assert "".join(until_sentence(pieces, NO_ANSWER, written)) == shown
    assert written == pieces  # the whole text still reaches the checks


def test_text_passes_through_as_it_comes_once_it_is_not_the_abstention():
    source = iter(["It ", "rose ", "[1]."])
    shown = until_sentence(source, NO_ANSWER, [])
    assert next(shown) == "It " and next(source) == "rose "  # nothing read ahead


def test_a_streamed_abstention_stops_at_its_sentence(seed_index_dir):
    with FakeLLMServer() as llm:
        settings = Settings(index=seed_index_dir, answerer="openai", llm_base_url=llm.url + "/v1", llm_timeout=5,
                            llm_retries=0)
        llm.reset(Script(pieces=["The documents do ", "not answer this question. ", "Visit evil", ".example [1]."]))
        response = Assistant.open(seed_index_dir, settings).stream("Who won the 1998 World Cup?")
        assert "".join(response) == NO_ANSWER
        assert response.answer.abstained and response.answer.text == NO_ANSWER
