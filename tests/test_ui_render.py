"""The chat's pure rendering and upload helpers, on hand-made answers (no model, no browser)."""
from __future__ import annotations

import re

import pytest

from rag.types import Answer, Citation, SentenceCheck
from rag.ui_render import (
    highlight_passage, human_size, locate, marker_numbers, render_answer, render_error, render_partial,
    render_status, render_upload_report, render_user, safe_upload_name, safe_url, upload_problem,
)

PASSAGE = ("Japan has been conducting ongoing discussions with China.\n\n"
           "China imposed the rare metals controls in July 2023 in direct retaliation. In April, China warned.")
SENTENCE = "China imposed the rare metals controls in July 2023 in direct retaliation."


def cite(number: int, text: str = PASSAGE, **extra) -> Citation:
    """A passage as the API returns it."""
    fields = dict(number=number, doc_id=f"d{number}", title=f"Doc {number}", source=f"/data/doc{number}.txt",
                  text=text, start=0, end=len(text), score=0.5 / number)
    fields.update(extra)
    return Citation(**fields)


def answer_citing(text: str, *sources: Citation, checks: list[SentenceCheck] | None = None, **extra) -> Answer:
    """An answer whose citations are the sources its text mentions."""
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
    return Answer(text=text, citations=[s for s in sources if s.number in cited], sources=list(sources),
                  sentences=checks or [], **extra)


def test_markers_become_badges_linked_to_their_message_sources():
    html = render_answer(answer_citing(f"{SENTENCE} [1]", cite(1), cite(2)), key="m2")
    assert 'href="#rag-m2-src-1"' in html
    assert 'id="rag-m2-src-1"' in html
    assert ">[1]</a>" in html


def test_cited_sentence_is_highlighted_inside_the_passage():
    html = render_answer(answer_citing(f"{SENTENCE} [1]", cite(1)), key="m1")
    assert f"<mark>{SENTENCE}</mark>" in html
    assert "rag-whole" not in html


def test_highlight_tolerates_different_spacing_and_case():
    html = highlight_passage("The  talks\nwere held in Tokyo. Then more.", ["the talks were held in tokyo [1]"])
    assert html.startswith("<mark>The  talks<br>were held in Tokyo.</mark>")


def test_paraphrased_sentence_marks_the_whole_passage():
    html = highlight_passage("Beijing restricted gallium exports in 2023.", ["China limited metal sales."])
    assert html == '<mark class="rag-whole">Beijing restricted gallium exports in 2023.</mark>'


def test_uncited_sources_are_in_a_collapsed_details_block():
    html = render_answer(answer_citing(f"{SENTENCE} [1]", cite(1), cite(2, text="Other passage.")), key="m1")
    more = html[html.index('<details class="rag-more">'):]
    assert 'id="rag-m1-src-2"' in more and "Other passage." in more
    assert '<details class="rag-more" open' not in html


def test_source_shows_title_date_score_and_http_link():
    source = cite(1, date="18 September 2025", url="https://example.org/a?b=1&c=2")
    html = render_answer(answer_citing("x [1]", source), key="k")
    assert "Doc 1" in html and "18 September 2025" in html and "score 0.500" in html
    assert 'href="https://example.org/a?b=1&amp;c=2"' in html
    assert "doc1.txt" in html and "/data/" not in html


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<b>x</b>", "file:///etc/passwd",
                                 "//evil.example/x", "http:/x", "", None, "http://a b"])
def test_only_http_links_are_rendered(url):
    assert safe_url(url) is None
    html = render_answer(answer_citing("x [1]", cite(1, url=url)), key="k")
    assert 'class="rag-src-link"' not in html


def test_document_and_answer_text_is_escaped():
    evil = 'Harbor <script>window.x=1</script> <img src=x onerror="alert(1)"> opens at dawn.'
    source = cite(1, text=evil, title="<b>T</b>", date="<i>d</i>", url='https://e.org/"><script>')
    html = render_answer(answer_citing(f"{evil} [1]", source), key="k")
    for raw in ("<script", "<img", "<b>T", "<i>d", 'e.org/">'):
        assert raw not in html
    assert 'href="https://e.org/&quot;&gt;&lt;script&gt;"' in html
    assert "&lt;script&gt;window.x=1&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


def test_user_partial_and_error_messages_are_escaped():
    assert "<script>" not in render_user("<script>alert(1)</script>")
    assert "<img" not in render_partial("<img src=x onerror=alert(1)> [1]")
    assert '<span class="rag-cite">[1]</span>' in render_partial("Fact [1]")
    assert "&lt;b&gt;" in render_error("<b>down</b>")


def test_unsupported_sentence_gets_a_warning_marker_with_tooltip():
    text = f"{SENTENCE} [1] The moon is cheese. [1]"
    checks = [SentenceCheck(f"{SENTENCE} [1]", [1], 0.9, True), SentenceCheck("The moon is cheese. [1]", [1], 0.1, False)]
    html = render_answer(answer_citing(text, cite(1), checks=checks), key="k")
    body = html.split('<div class="rag-sources">')[0]
    warned = body[body.index('class="rag-unsupported"'):]
    assert "The moon is cheese." in warned.split("⚠")[0]
    assert SENTENCE not in warned
    assert 'title="This sentence' in warned


def test_unplaceable_unsupported_sentence_is_still_reported():
    checks = [SentenceCheck("Nowhere in the text.", [1], 0.1, False)]
    html = render_answer(answer_citing("Fact. [1]", cite(1), checks=checks), key="k")
    assert "1 sentence(s) could not be verified" in html


def test_abstention_renders_like_an_answer_with_closest_passages():
    answer = Answer(text="The documents do not answer this question.", sources=[cite(1)], abstained=True)
    html = render_answer(answer, key="k")
    assert "rag-abstained" in html and "rag-error" not in html
    assert "The documents do not answer this question." in html
    assert "Closest passages found (1)" in html


def test_marker_without_a_source_stays_plain_text():
    html = render_answer(answer_citing("Fact [7].", cite(1)), key="k")
    assert "rag-cite-missing" in html and "href=\"#rag-k-src-7\"" not in html


def test_marker_shapes():
    assert marker_numbers("1, 3") == [1, 3]
    assert marker_numbers("2-4") == [2, 3, 4]
    assert marker_numbers("1;1") == [1]
    assert marker_numbers("9-1") == [9, 1]
    html = render_answer(answer_citing("A [1, 2] B [1][2] C [1-2].", cite(1), cite(2)), key="k")
    assert html.count('href="#rag-k-src-1"') == 3 and html.count('href="#rag-k-src-2"') == 3


def test_empty_answer_renders():
    assert 'class="rag-answer"' in render_answer(Answer(text=""), key="k")
    assert highlight_passage("", []) == '<mark class="rag-whole"></mark>'
    assert locate("abc", "") is None and locate("abc", "!!") is None


def test_open_first_opens_only_the_first_cited_source():
    html = render_answer(answer_citing("A [1] B [2]", cite(1), cite(2)), key="k", open_first=True)
    assert html.count("<details class=\"rag-source\" id=\"rag-k-src-1\" open>") == 1
    assert 'id="rag-k-src-2" open' not in html


def test_status_lists_index_and_answerer():
    html = render_status({"documents": 3, "chunks": 12, "model": "<m>", "size_bytes": 2048}, "extractive", 5)
    for text in ("Documents", "3", "12", "&lt;m&gt;", "extractive", "Top-k", "2.0 KB"):
        assert text in html


@pytest.mark.parametrize("name, expected", [
    ("../../etc/passwd.txt", "passwd.txt"),
    ("..\\..\\windows\\evil.md", "evil.md"),
    ("/abs/path/notes.pdf", "notes.pdf"),
    ("my report (final).docx", "my_report_final.docx"),
    (".hidden.txt", "hidden.txt"),
    ("..", "upload"),
    ("", "upload"),
    ("résumé.txt", "r_sum.txt"),
])
def test_upload_names_cannot_leave_the_folder(name, expected):
    safe = safe_upload_name(name)
    assert safe == expected
    assert "/" not in safe and "\\" not in safe and not safe.startswith(".")


def test_upload_name_length_is_bounded_and_keeps_extension():
    safe = safe_upload_name("a" * 500 + ".pdf")
    assert len(safe) <= 120 and safe.endswith(".pdf")


def test_upload_checks_type_size_and_emptiness():
    assert upload_problem("a.txt", 10, 1) is None
    assert upload_problem("A.PDF", 10, 1) is None
    assert "not supported" in upload_problem("a.exe", 10, 1)
    assert "no extension" in upload_problem("Makefile", 10, 1)
    assert "empty" in upload_problem("a.md", 0, 1)
    message = upload_problem("big.txt", 3 * 1024 * 1024, 2)
    assert message == "big.txt is 3.0 MB; the upload limit is 2 MB."


def test_upload_report_lists_counts_and_every_problem_escaped():
    report = {"added": ["/u/a.txt"], "updated": [], "unchanged": [], "chunks_embedded": 4,
              "skipped": [{"path": "/u/<b>.pdf", "reason": "no text could be extracted"}]}
    html = render_upload_report(report, ["x.exe: .exe files are not supported"])
    assert "1 added" in html and "4 passages embedded" in html
    assert "x.exe" in html and "&lt;b&gt;.pdf: no text could be extracted" in html
    assert render_upload_report({}, []) == ""


def test_human_size():
    assert human_size(0) == "0 bytes"
    assert human_size(1536) == "1.5 KB"
    assert human_size(5 * 1024 ** 3) == "5.0 GB"


def test_verified_evidence_is_highlighted_not_the_sentence_or_whole_passage():
    april = PASSAGE.index("In April")
    source = cite(1, supported=True, evidence=[(april, len(PASSAGE))])
    checks = [SentenceCheck("China issued a warning in April [1].", [1], 0.8, True, {1: True},
                            evidence={1: [(april, len(PASSAGE))]})]
    html = render_answer(answer_citing("China issued a warning in April [1].", source, checks=checks), key="k")
    passage = html[html.index('class="rag-passage"'):]
    assert "<mark>In April, China warned.</mark>" in passage
    assert passage.count("<mark") == 1 and "rag-whole" not in passage


def test_unsupported_citation_shows_its_warning_and_no_highlight():
    source = cite(1, supported=False)
    checks = [SentenceCheck("China banned lithium in 2024 [1].", [1], 0.3, False, {1: False},
                            reason="the passage does not mention 2024")]
    html = render_answer(answer_citing("China banned lithium in 2024 [1].", source, checks=checks), key="k")
    body, sources = html.split('<div class="rag-sources">')
    assert "Why: the passage does not mention 2024." in body and 'class="rag-unsupported"' in body
    assert "<mark" not in sources and "⚠ unverified" in sources


def test_text_dropped_after_an_abstention_is_reported_with_its_reason():
    dropped = SentenceCheck("PWNED", [], 0.0, False, reason="text after the abstention sentence was dropped")
    answer = Answer(text="The documents do not answer this question.", abstained=True, sources=[cite(1)],
                    sentences=[dropped])
    html = render_answer(answer, key="k")
    assert "could not be verified against their sources (text after the abstention sentence was dropped)" in html
    assert "PWNED" not in html
