"""The browser chat end to end in headless Chromium: streamed cited answers, source cards, uploads,
script-injection safety, concurrent sessions, a down LLM server, dark mode, copy, layout and app.py's start-up.
Screenshots go to a temporary folder (the README's is made by `make screenshot`)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser_fixtures import (  # noqa: F401  (fixtures are used by name)
    ROOT, UPLOAD_LIMIT_MB, browser_workspace, chat_server, down_server, free_port, open_page, page,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SEED_QUESTION = "When did China impose the rare metals controls?"
HARBOR_QUESTION = "When does the harbor of Port Velmar open?"
FINISHED = "#chat .rag-answer:not(.rag-streaming), #chat .rag-error"
TIMEOUT_MS = 30_000

# Records every partial (still streaming) answer the page shows, to prove the answer arrives in pieces.
WATCH_STREAMING = """() => {
  window.__partials = [];
  new MutationObserver(() => {
    document.querySelectorAll('#chat .rag-streaming').forEach(e => window.__partials.push(e.textContent));
  }).observe(document.querySelector('#chat'), {subtree: true, childList: true, characterData: true});
}"""


def submit(page, question: str) -> int:
    """Type a question and send it; returns how many finished messages there were before."""
    before = page.locator(FINISHED).count()
    page.fill("#question textarea", question)
    page.press("#question textarea", "Enter")
    return before


def wait_answer(page, before: int):
    """Wait for the next finished assistant message (answer or error block) and return it
    (pinned by position, so it still means this message after later ones arrive)."""
    page.wait_for_function(f"document.querySelectorAll({FINISHED!r}).length > {before}", timeout=TIMEOUT_MS)
    return page.locator(FINISHED).nth(before)


def ask(page, question: str):
    """Ask and wait for the finished answer."""
    return wait_answer(page, submit(page, question))


def status_documents(page) -> int:
    """The document count shown in the status area."""
    return int(re.search(r"Documents\s+(\d+)", page.inner_text("#status")).group(1))


def test_seed_question_streams_a_cited_answer_with_source_cards(page, chat_server, tmp_path):
    expected = chat_server.assistant._assistant.ask(SEED_QUESTION)
    page.evaluate(WATCH_STREAMING)
    answer = ask(page, SEED_QUESTION)

    assert "July 2023" in answer.inner_text()
    assert any("July 2023" in p for p in page.evaluate("window.__partials")), "no partial answer was shown"
    assert "quote the documents in their own language" in page.inner_text("body")
    badges = answer.locator(".rag-text a.rag-cite").evaluate_all("els => els.map(e => e.textContent)")
    numbers = sorted({int(n) for b in badges for n in re.findall(r"\d+", b)})
    assert numbers == list(range(1, len(numbers) + 1)), f"markers have gaps: {badges}"
    first = expected.citations[0]
    assert first.number == 1
    card = answer.locator("details.rag-source[id$='-src-1']")
    assert "July 2023" in card.locator(".rag-snippet mark").inner_text()  # the snippet shows the sentence
    assert not card.locator(".rag-passage").is_visible()  # the full passage waits for a click
    group = card.locator("xpath=..")
    assert group.get_attribute("class") == "rag-doc"
    head = group.locator(".rag-doc-head").inner_text()
    assert first.title in head and Path(first.source).name in head
    if first.date:
        assert first.date in head
    assert "score" not in answer.inner_text().lower()
    assert card.locator(".rag-relevance").inner_text() in ("Supports the answer", "Cited")

    answer.locator("a.rag-cite", has_text="[1]").first.click()
    mark = card.locator(".rag-passage mark").first
    mark.wait_for(state="visible")
    assert "July 2023" in mark.inner_text()
    if first.url:
        assert group.locator("a.rag-src-link").get_attribute("href") == first.url
    if len(expected.sources) > len(expected.citations):
        more = answer.locator("details.rag-more")
        assert more.count() == 1 and more.get_attribute("open") is None
    assert page.outside == [], f"the page loaded something from outside: {page.outside}"
    page.screenshot(path=str(tmp_path / "answer.png"))


def test_follow_up_gets_history_citations_stay_and_clear_resets(page, chat_server):
    first = ask(page, SEED_QUESTION)
    first_text = chat_server.assistant._assistant.ask(SEED_QUESTION).text
    follow_up = "Why did China impose them?"
    second = ask(page, follow_up)

    history = [h for q, h in chat_server.assistant.calls if q == follow_up][-1]
    assert history == [(SEED_QUESTION, first_text)]
    assert "retaliation" in second.inner_text().lower()
    # The first answer keeps its own sources and badges after the conversation moves on.
    first_links = first.locator("a.rag-cite").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    second_ids = second.locator("details.rag-source").evaluate_all("els => els.map(e => e.id)")
    assert first.locator("details.rag-source").count() >= 1
    assert all(link[1:] not in second_ids for link in first_links)

    page.click("#clear")
    page.wait_for_function("document.querySelectorAll('#chat .rag-answer').length === 0", timeout=TIMEOUT_MS)
    ask(page, "Who co-chaired the meeting?")
    assert [h for q, h in chat_server.assistant.calls if q == "Who co-chaired the meeting?"][-1] == []


def test_abstention_looks_like_an_answer(page):
    answer = ask(page, "What is the capital of Peru?")
    assert "rag-abstained" in answer.get_attribute("class")
    assert page.locator("#chat .rag-error").count() == 0
    assert "do not" in answer.locator(".rag-text").inner_text().lower()


def test_script_in_a_document_never_runs(page):
    answer = ask(page, HARBOR_QUESTION)
    assert "5 a.m." in answer.inner_text()
    page.evaluate("document.querySelectorAll('#chat details').forEach(d => d.open = true)")
    page.wait_for_timeout(500)  # give a wrongly rendered <img onerror> time to fire

    assert page.evaluate("window.__xss") is None
    assert page.title() != "hacked"
    assert page.dialogs == []
    text = page.locator("#chat").inner_text()
    assert "<script>" in text and "onerror=" in text  # shown as text
    assert page.locator("#chat .rag-answer script, #chat .rag-answer img").count() == 0


def test_two_sessions_at_once_each_get_their_own_answer(browser, chat_server):
    one, two = open_page(browser, chat_server.url), open_page(browser, chat_server.url)
    try:
        before_one, before_two = submit(one, SEED_QUESTION), submit(two, HARBOR_QUESTION)
        answer_one, answer_two = wait_answer(one, before_one), wait_answer(two, before_two)
        assert "July 2023" in answer_one.inner_text() and "Port Velmar" not in answer_one.inner_text()
        assert "5 a.m." in answer_two.inner_text() and "July 2023" not in answer_two.inner_text()
        (start_one, end_one), (start_two, end_two) = (chat_server.assistant.spans[q]
                                                      for q in (SEED_QUESTION, HARBOR_QUESTION))
        assert start_one < end_two and start_two < end_one, "the two questions were not answered at the same time"
    finally:
        one.context.close()
        two.context.close()


def test_upload_during_a_question_then_ask_about_it(browser, chat_server, browser_workspace):
    asker, uploader = open_page(browser, chat_server.url), open_page(browser, chat_server.url)
    try:
        documents = status_documents(uploader)
        pending = submit(asker, SEED_QUESTION)
        uploader.set_input_files("#upload input[type=file]", files=[{
            "name": "../../Zorblax notes.txt", "mimeType": "text/plain",
            "buffer": b"Zorblax notes\n\nThe Zorblax observatory was founded in 1987 by Mira Quell.\n"}])
        uploader.locator("#upload-report .rag-upload-ok").wait_for(timeout=TIMEOUT_MS)
        assert "Zorblax notes.txt: added" in uploader.inner_text("#upload-report")
        assert "July 2023" in wait_answer(asker, pending).inner_text()

        uploader.wait_for_function(f"/Documents\\s+{documents + 1}/.test(document.querySelector('#status').innerText)")
        saved = Path(chat_server.settings.upload_dir) / "Zorblax notes.txt"
        assert saved.is_file()
        assert list(browser_workspace.parent.rglob("Zorblax notes.txt")) == [saved]  # not written outside the folder
        answer = ask(uploader, "When was the Zorblax observatory founded?")
        assert "1987" in answer.inner_text()
    finally:
        asker.context.close()
        uploader.context.close()


def test_bad_uploads_show_readable_messages(page):
    page.set_input_files("#upload input[type=file]", files=[
        {"name": "tool.exe", "mimeType": "application/octet-stream", "buffer": b"MZ\x90\x00"}])
    page.locator("#upload-report .rag-upload-error").wait_for(timeout=TIMEOUT_MS)
    assert "tool.exe: .exe files are not supported" in page.inner_text("#upload-report")

    big = int(UPLOAD_LIMIT_MB * 1024 * 1024) + 10_000
    page.set_input_files("#upload input[type=file]", files=[
        {"name": "big.txt", "mimeType": "text/plain", "buffer": b"word " * (big // 5)}])
    page.get_by_text(re.compile("exceed the maximum allowed size")).first.wait_for(timeout=TIMEOUT_MS)
    assert "big.txt" in page.inner_text("body")
    assert "Traceback" not in page.inner_text("body")


def contrast(foreground: str, background: str) -> float:
    """WCAG 2.x contrast ratio of two CSS rgb()/rgba() colours (alpha ignored: both are opaque here)."""
    def luminance(css: str) -> float:
        channels = [int(v) / 255 for v in re.findall(r"[\d.]+", css)[:3]]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


COLOURS = "e => { const s = getComputedStyle(e); return [s.color, s.backgroundColor]; }"


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_highlighted_sentence_is_readable_in_both_themes(browser, chat_server, scheme):
    page = open_page(browser, chat_server.url, color_scheme=scheme)
    try:
        page_colour = page.locator("body").evaluate("e => getComputedStyle(e).backgroundColor")
        assert (contrast(page_colour, "rgb(0, 0, 0)") < 3) == (scheme == "dark"), page_colour
        answer = ask(page, SEED_QUESTION)
        snippet = answer.locator(".rag-snippet mark").first
        assert contrast(*snippet.evaluate(COLOURS)) >= 4.5  # WCAG AA for body text
        answer.locator("a.rag-cite").first.click()
        passage = answer.locator(".rag-passage mark").first
        passage.wait_for(state="visible")
        assert contrast(*passage.evaluate(COLOURS)) >= 4.5
        assert not snippet.is_visible()  # the whole passage replaces the snippet
        text = answer.locator(".rag-text")
        assert contrast(text.evaluate("e => getComputedStyle(e).color"), page_colour) >= 4.5
    finally:
        page.context.close()


def test_copy_gives_the_plain_answer_with_its_sources(browser, chat_server):
    page = open_page(browser, chat_server.url, permissions=["clipboard-read", "clipboard-write"])
    try:
        answer = ask(page, SEED_QUESTION)
        answer.locator(".rag-copy").click()
        page.wait_for_function("document.querySelector('#chat .rag-copy').textContent === 'Copied'")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert "July 2023" in copied and "\n\nSources:\n[1] " in copied
        assert "<" not in copied  # no HTML
    finally:
        page.context.close()


def test_long_refused_question_is_short_plain_and_names_no_setting(page, chat_server):
    question = "Why " + "really " * 1500 + "?"
    refusal = ask(page, question)
    assert "rag-error" in refusal.get_attribute("class")
    assert "characters long" in refusal.inner_text() and "RAG_" not in page.inner_text("#chat")
    bubble = page.locator("#chat .rag-question").last
    assert len(bubble.inner_text()) < 800 and "more characters" in bubble.inner_text()


def test_new_answer_scrolls_into_view_and_the_chat_grows_with_the_window(page):
    first = ask(page, SEED_QUESTION)
    page.evaluate("document.querySelectorAll('#chat details').forEach(d => d.open = true)")  # a long first answer
    second = ask(page, "Who co-chaired the meeting?")
    chat_box = page.locator("#chat").bounding_box()
    top = second.bounding_box()["y"]
    assert chat_box["y"] <= top < chat_box["y"] + chat_box["height"], "the new answer is out of view"
    assert first.bounding_box()["y"] < top

    controls = [page.locator(sel).bounding_box() for sel in ("#question", "#ask", "#clear")]
    for one, other in zip(controls, controls[1:]):
        assert one["x"] + one["width"] <= other["x"] + 1, "controls overlap"
    page.set_viewport_size({"width": 1280, "height": 1300})
    page.wait_for_timeout(300)
    assert page.locator("#chat").bounding_box()["height"] > chat_box["height"] + 200
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: everything fits the width
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_llm_server_down_is_a_readable_message(browser, down_server):
    page = open_page(browser, down_server.url)
    try:
        assert "openai" in page.inner_text("#status")
        error = ask(page, SEED_QUESTION)
        assert "rag-error" in error.get_attribute("class")
        message = error.inner_text()
        # The API's own message (it names the server), not the catch-all one, and never a traceback.
        assert down_server.settings.llm_base_url in message
        assert "Traceback" not in page.inner_text("body")
    finally:
        page.context.close()


def app_env(**extra: str) -> dict:
    """The environment for app.py in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **extra)
    return env


def test_rag_serve_without_an_index_exits_with_a_message(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from rag.cli import app as cli

    monkeypatch.chdir(tmp_path)  # the chat is in the package: nothing is read from the repository folder
    monkeypatch.setenv("RAG_INDEX", str(tmp_path / "missing"))
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 2
    assert "Cannot start the chat" in result.output and "make index" in result.output
    assert "Traceback" not in result.output


def test_app_serves_the_configured_index(chat_server, tmp_path):
    port = free_port()
    env = app_env(RAG_INDEX=str(chat_server.settings.index), RAG_PORT=str(port),
                  RAG_UPLOAD_DIR=str(tmp_path / "uploads"))
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "app.py did not start serving"
                time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(timeout=30)
