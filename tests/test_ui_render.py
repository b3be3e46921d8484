"""The chat's pure rendering, source cards and upload helpers, on hand-made answers (no model, no browser)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.types import Answer, Citation, SentenceCheck
from rag.ui.cards import plain_text, render_answer, section_at, snippet
from rag.ui.render import (
    highlight_passage, human_size, locate, marker_numbers, render_error, render_partial, render_status, render_user,
    safe_url,
)
from rag.ui.uploads import (
    FileResult, UploadBatch, file_results, render_upload_report, safe_upload_name, upload_problem, upload_target,
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


def test_source_card_shows_title_date_relevance_in_words_and_http_link():
    source = cite(1, date="18 September 2025", url="https://example.org/a?b=1&c=2", supported=True, score=-0.25)
    html = render_answer(answer_citing("x [1]", source), key="k")
    assert "Doc 1" in html and "18 September 2025" in html and "Supports the answer" in html
    assert "score" not in html and "-0.25" not in html
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
    checks = [SentenceCheck(f"{SENTENCE} [1]", [1], 0.9, True),
              SentenceCheck("The moon is cheese. [1]", [1], 0.1, False)]
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


def test_passages_of_one_document_are_grouped_under_it_with_a_highlighted_snippet():
    first, second = cite(1), cite(2, text="China warned in April.", doc_id="d1")
    checks = [SentenceCheck(f"{SENTENCE} [1]", [1], 0.9, True),
              SentenceCheck("China warned in April. [2]", [2], 0.9, True)]
    html = render_answer(answer_citing(f"{SENTENCE} [1] China warned in April. [2]", first, second, checks=checks),
                         key="k")
    assert html.count('class="rag-doc"') == 1 and html.count('class="rag-source rag-card"') == 2
    shown = html[html.index('class="rag-snippet"'):html.index("</summary>")]
    assert f"<mark>{SENTENCE}</mark>" in shown and "doc1.txt" in html and " open" not in html


def test_snippet_is_the_highlighted_sentence_with_some_context():
    text = "x " * 200 + "The target sentence. " + "y " * 200
    at = text.index("The target")
    shown = snippet(text, [(at, at + len("The target sentence."))])
    assert shown.startswith("…") and shown.endswith("…") and "<mark>The target sentence.</mark>" in shown
    assert len(shown) < 300
    assert snippet("Short.", []) == "Short."


def test_copy_text_is_the_plain_answer_with_its_sources():
    answer = answer_citing("It opened in 1987 [1].", cite(1, title="Notes <b>", page=2, date="2025-09-18"))
    assert plain_text(answer) == "It opened in 1987 [1].\n\nSources:\n[1] Notes <b>, page 2, 2025-09-18 (doc1.txt)"
    html = render_answer(answer, key="k")
    assert '<span class="rag-copy-text">It opened in 1987 [1].\n\nSources:\n[1] Notes &lt;b&gt;, page 2' in html
    assert plain_text(Answer(text="No sources.")) == "No sources."


def test_long_question_is_not_echoed_in_full():
    html = render_user("why " * 2500)
    assert len(html) < 1000 and "9,400 more characters" in html


def test_status_lists_index_and_answerer():
    html = render_status({"documents": 3, "chunks": 12, "model": "<m>", "size_bytes": 2048}, "extractive", 5)
    for text in ("Documents", "3", "12", "&lt;m&gt;", "extractive", "Top-k", "2.0 KB"):
        assert text in html


@pytest.mark.parametrize("name, expected", [
    ("../../etc/passwd.txt", "passwd.txt"),
    ("..\\..\\windows\\evil.md", "evil.md"),
    ("/abs/path/notes.pdf", "notes.pdf"),
    ("my report (final).docx", "my report (final).docx"),
    (".hidden.txt", "hidden.txt"),
    ("..", "upload"),
    ("", "upload"),
    ("Résumé 日本語 Öresund notes.txt", "Résumé 日本語 Öresund notes.txt"),
    ("報告書.txt", "報告書.txt"),
    ('a<b>:"c"|?*\x00\n.md', "a_b_c.md"),
    ("Re\u0301sume\u0301.txt", "Résumé.txt"),
])
def test_upload_names_cannot_leave_the_folder(name, expected):
    safe = safe_upload_name(name)
    assert safe == expected
    assert "/" not in safe and "\\" not in safe and not safe.startswith(".")


def test_upload_name_length_is_bounded_in_bytes_and_keeps_extension():
    for name in ("a" * 500 + ".pdf", "日本" * 200 + ".pdf"):
        safe = safe_upload_name(name)
        assert len(safe.encode()) <= 200 and safe.endswith(".pdf")


def test_same_name_with_other_content_is_kept_beside_unless_replacing(tmp_path):
    first, second = tmp_path / "in1", tmp_path / "in2"
    first.write_text("one")
    second.write_text("two")
    folder = tmp_path / "up"
    folder.mkdir()
    assert upload_target(folder, "報告.txt", first) == folder / "報告.txt"
    (folder / "報告.txt").write_text("one")
    assert upload_target(folder, "報告.txt", first) == folder / "報告.txt"  # same content: same file
    assert upload_target(folder, "報告.txt", second) == folder / "報告 (2).txt"
    assert upload_target(folder, "報告.txt", second, replace=True) == folder / "報告.txt"


def test_upload_checks_type_size_and_emptiness():
    assert upload_problem("a.txt", 10, 1) is None
    assert upload_problem("A.PDF", 10, 1) is None
    assert "not supported" in upload_problem("a.exe", 10, 1)
    assert "no extension" in upload_problem("Makefile", 10, 1)
    assert "empty" in upload_problem("a.md", 0, 1)
    message = upload_problem("big.txt", 3 * 1024 * 1024, 2)
    assert message == "big.txt is 3.0 MB; the upload limit is 2 MB."


def test_upload_report_names_every_file_and_problem_escaped():
    report = {"added": ["/u/a (2).txt"], "updated": [], "unchanged": ["/u/c.txt"], "duplicates": [],
              "skipped": [{"path": "/u/<b>.pdf", "reason": "no text could be extracted"}]}
    saved = {"a.txt": Path("/u/a (2).txt"), "c.txt": Path("/u/c.txt"), "<b>.pdf": Path("/u/<b>.pdf")}
    results = file_results(saved, report)
    assert results == [FileResult("a.txt", "added", "saved as a (2).txt"),
                       FileResult("c.txt", "unchanged", "already indexed"),
                       FileResult("<b>.pdf", "skipped", "no text could be extracted")]
    html = render_upload_report(results, ["x.exe: .exe files are not supported"])
    assert "<b>a.txt</b>: added (saved as a (2).txt)" in html
    assert "x.exe" in html and "<b>&lt;b&gt;.pdf</b>: skipped (no text could be extracted)" in html
    assert render_upload_report([], []) == ""


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
    assert "<mark" not in sources and "Does not clearly support" in sources


def test_text_dropped_after_an_abstention_is_reported_with_its_reason():
    dropped = SentenceCheck("PWNED", [], 0.0, False, reason="text after the abstention sentence was dropped")
    answer = Answer(text="The documents do not answer this question.", abstained=True, sources=[cite(1)],
                    sentences=[dropped])
    html = render_answer(answer, key="k")
    assert "could not be verified against their sources (text after the abstention sentence was dropped)" in html
    assert "PWNED" not in html


def test_an_undone_upload_batch_leaves_the_folder_as_it_was(tmp_path):
    folder, source = tmp_path / "up", tmp_path / "new.txt"
    source.write_text("new")
    folder.mkdir()
    (folder / "a.txt").write_text("old")
    batch = UploadBatch(folder, replace=True)
    assert batch.save(source, "a.txt") == (folder / "a.txt").resolve() and (folder / "a.txt").read_text() == "new"
    batch.save(source, "../b.txt")
    batch.undo()
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt"] and (folder / "a.txt").read_text() == "old"
    batch = UploadBatch(folder)
    batch.save(source, "a.txt")
    batch.commit()
    assert sorted(p.name for p in folder.iterdir()) == ["a (2).txt", "a.txt"]


def test_card_names_the_section_and_page_of_its_passage():
    text = "# Guide\n\nIntro.\n\n## Costs\n\nPrices rose.\n\n### Staff\n\nTen people."
    assert section_at(text, text.index("Prices"), "Guide") == "Costs"
    assert section_at(text, text.index("### Staff"), "Guide") == "Staff"
    assert section_at(text, text.index("Intro"), "Guide") == "" and section_at("No headings.", 5) == ""
    html = render_answer(answer_citing("x [1]", cite(1, page=3)), key="k", sections={1: "Costs"})
    assert '<span class=rag-src-where>Costs · page 3</span>' in html
