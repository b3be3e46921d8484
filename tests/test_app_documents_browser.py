"""The chat's documents and conversations in headless Chromium: the library (search, remove with a
confirmation), uploads by name in any script, same-name uploads, conversations kept across a reload,
an index written by `rag ingest` picked up while running, and a read-only chat behind a login."""
from __future__ import annotations

import json
import re
import urllib.request

import pytest
from browser_fixtures import open_page, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 30_000
FINISHED = "#chat .rag-answer:not(.rag-streaming), #chat .rag-error"
CORPUS = {
    "lighthouse.txt": "Lighthouse notes\n\nThe Kestrel Point lighthouse was built in 1874 by Anna Rowe.\n",
    "orchard.md": "# Orchard guide\n\nThe Brambleford orchard grows forty kinds of pear.\n",
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    folder = tmp_path_factory.mktemp("documents")
    corpus = folder / "corpus"
    corpus.mkdir()
    for name, text in CORPUS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def docs_server(workspace):
    """The chat over a two-file corpus, with its own upload folder."""
    from rag import Assistant, Settings

    settings = Settings(index=workspace / "index", upload_dir=workspace / "uploads", answerer="extractive")
    assistant = Assistant.build([workspace / "corpus"], index_dir=settings.index, settings=settings)
    server = serve(assistant, settings)
    yield server
    server.demo.close()


@pytest.fixture()
def page(browser, docs_server):
    page = open_page(browser, docs_server.url)
    yield page
    page.context.close()


def ask(page, question: str):
    before = page.locator(FINISHED).count()
    page.fill("#question textarea", question)
    page.press("#question textarea", "Enter")
    page.wait_for_function(f"document.querySelectorAll({FINISHED!r}).length > {before}", timeout=TIMEOUT_MS)
    return page.locator(FINISHED).nth(before)


def upload(page, name: str, text: str, expect: str) -> str:
    """Upload one file and wait until the report shows ``expect``; returns the report's text."""
    page.set_input_files("#upload input[type=file]", files=[
        {"name": name, "mimeType": "text/plain", "buffer": text.encode()}])
    page.locator("#upload-report", has_text=expect).wait_for(timeout=TIMEOUT_MS)
    return page.inner_text("#upload-report")


def library_files(page) -> list[str]:
    return page.locator("#library .rag-lib-file").all_inner_texts()


def pick(page, label: str) -> None:
    """Choose ``label`` in the library's document dropdown."""
    page.locator("#library-pick input").click()
    page.get_by_role("option", name=label).click()


def test_library_lists_searches_and_removes_a_document_after_confirmation(page, docs_server):
    page.locator("#library .rag-library").wait_for(timeout=TIMEOUT_MS)
    assert {"lighthouse.txt", "orchard.md"} <= set(library_files(page))
    row = page.locator("#library tr", has_text="orchard.md").inner_text()
    assert "Orchard guide" in row and "bytes" in row

    page.fill("#library-search input, #library-search textarea", "NOTES")  # in the title, not the file name
    page.wait_for_function("document.querySelectorAll('#library .rag-lib-file').length === 1")
    assert library_files(page) == ["lighthouse.txt"] and "1 of" in page.inner_text("#library")
    page.fill("#library-search input, #library-search textarea", "")
    page.wait_for_function("document.querySelectorAll('#library .rag-lib-file').length > 1")

    pick(page, "Orchard guide (orchard.md)")
    page.click("#remove")
    page.locator("#confirm-row", has_text="orchard.md").wait_for(timeout=TIMEOUT_MS)
    page.click("#cancel-remove")
    page.locator("#confirm-row").wait_for(state="hidden")
    assert "orchard.md" in library_files(page)
    page.click("#remove")
    page.click("#confirm-remove")
    page.wait_for_function("!document.querySelector('#library').innerText.includes('orchard.md')", timeout=TIMEOUT_MS)
    assert (docs_server.settings.index.parent / "corpus" / "orchard.md").is_file()  # the user's file stays
    answer = ask(page, "How many kinds of pear does the Brambleford orchard grow?")
    assert "forty" not in answer.locator(".rag-text").inner_text()
    page.click("#reindex")
    page.get_by_text(re.compile(r"Re-indexed: 0 updated, \d+ unchanged")).first.wait_for(timeout=TIMEOUT_MS)
    assert "orchard.md" not in library_files(page)


def test_japanese_name_and_same_name_uploads_are_kept_unless_replacing(page, docs_server):
    name = "報告書 メモ.txt"
    report = upload(page, name, "Depot memo\n\nThe Sakura depot ships 300 crates each week.\n", f"{name}: added")
    assert "not supported" not in report
    report = upload(page, name, "Depot memo\n\nThe Sakura depot ships 500 crates each week.\n", "saved as")
    assert f"{name}: added (saved as 報告書 メモ (2).txt)" in report
    page.wait_for_function("document.querySelector('#library').innerText.includes('メモ (2).txt')", timeout=TIMEOUT_MS)
    assert {name, "報告書 メモ (2).txt"} <= set(library_files(page))

    page.check("#replace input")
    report = upload(page, name, "Depot memo\n\nThe Sakura depot ships 700 crates each week.\n", f"{name}: updated")
    uploads = docs_server.settings.upload_dir
    assert {p.name for p in uploads.iterdir()} == {name, "報告書 メモ (2).txt"}
    assert "700" in (uploads / name).read_text()

    answer = ask(page, "How many crates does the Sakura depot ship each week?")
    assert re.search(r"[57]00 crates", answer.inner_text())
    assert "報告書 メモ" in answer.locator(".rag-src-path").first.inner_text()


def test_conversation_survives_a_reload_and_can_be_switched_renamed_exported_and_deleted(page):
    saved = "localStorage.getItem('rag-conversations')"
    empty = page.evaluate(saved)
    first = ask(page, "When was the Kestrel Point lighthouse built?")
    assert "1874" in first.inner_text()
    page.wait_for_function(f"{saved} !== {json.dumps(empty)}", timeout=TIMEOUT_MS)  # kept in this browser
    page.reload()
    page.locator(FINISHED).first.wait_for(timeout=TIMEOUT_MS)
    assert "1874" in page.locator(FINISHED).first.inner_text()
    assert "Kestrel Point lighthouse" in page.inner_text("#chat .rag-question")

    page.click("#clear")
    page.wait_for_function("document.querySelectorAll('#chat .rag-answer').length === 0")
    ask(page, "Who built the lighthouse?")
    page.get_by_role("tab", name="Conversations").click()
    conversations = page.locator("#conversation-list label")
    conversations.nth(1).wait_for(timeout=TIMEOUT_MS)
    assert conversations.first.inner_text().startswith("Who built")
    page.locator("#conversation-list label", has_text="When was the Kestrel").click()
    page.wait_for_function("document.querySelector('#chat').innerText.includes('When was the Kestrel')")
    assert "Who built" not in page.inner_text("#chat")

    page.fill("#conversation-title input, #conversation-title textarea", "Lighthouse dates")
    page.click("#rename")
    page.locator("#conversation-list label", has_text="Lighthouse dates").wait_for(timeout=TIMEOUT_MS)
    page.click("#export")
    link = page.locator("#exported a").first
    link.wait_for(timeout=TIMEOUT_MS)
    with urllib.request.urlopen(link.get_attribute("href"), timeout=10) as response:
        markdown = response.read().decode()
    assert markdown.startswith("# Lighthouse dates\n") and "**You:** When was the Kestrel" in markdown
    assert "1874" in markdown and "- [1] Lighthouse notes (lighthouse.txt)" in markdown

    page.click("#delete-conversation")
    page.wait_for_function("document.querySelectorAll('#conversation-list label').length === 1")
    page.reload()
    page.get_by_role("tab", name="Conversations").click()
    page.locator("#conversation-list label").first.wait_for(timeout=TIMEOUT_MS)
    assert page.locator("#conversation-list label").all_inner_texts() == ["Who built the lighthouse?"]


def test_an_index_written_by_rag_ingest_is_served_without_a_restart(page, docs_server, workspace):
    from typer.testing import CliRunner

    from rag.cli import app as cli

    documents = int(re.search(r"Documents\s+(\d+)", page.inner_text("#status")).group(1))
    added = workspace / "later"
    added.mkdir()
    (added / "ferry.txt").write_text("Ferry timetable\n\nThe Wrenfield ferry leaves at 6:40 every morning.\n")
    result = CliRunner().invoke(cli, ["ingest", str(added), "--index", str(docs_server.settings.index), "--json"])
    assert result.exit_code == 0, result.output
    answer = ask(page, "When does the Wrenfield ferry leave?")
    assert "6:40" in answer.inner_text()
    page.wait_for_function(f"/Documents\\s+{documents + 1}\\b/.test(document.querySelector('#status').innerText)",
                           timeout=TIMEOUT_MS)
    page.reload()
    page.locator("#library", has_text="ferry.txt").wait_for(timeout=TIMEOUT_MS)


def test_read_only_chat_behind_a_login(browser, docs_server, tmp_path):
    from rag import Assistant, Settings
    from rag.ui.auth import hash_password

    users = tmp_path / "users.txt"
    users.write_text(f"ann:{hash_password('harbour-light', iterations=1000)}\n")
    settings = Settings(index=docs_server.settings.index, upload_dir=tmp_path / "uploads", answerer="extractive",
                        read_only=True, auth=users)
    server = serve(Assistant.open(settings.index, settings=settings), settings)
    try:
        context = browser.new_context()
        page = context.new_page()
        page.goto(server.url)
        page.fill("input[type=text]", "ann")
        page.fill("input[type=password]", "wrong")
        page.keyboard.press("Enter")
        page.get_by_text(re.compile("Incorrect|invalid", re.I)).first.wait_for(timeout=TIMEOUT_MS)
        page.fill("input[type=text]", "ann")  # the form is cleared after a refusal
        page.fill("input[type=password]", "harbour-light")
        page.keyboard.press("Enter")
        page.wait_for_selector("#status .rag-status", timeout=TIMEOUT_MS)
        assert page.locator("#upload").count() == 0 and not page.locator("#remove").is_visible()
        assert "1874" in ask(page, "When was the Kestrel Point lighthouse built?").inner_text()
        context.close()
    finally:
        server.demo.close()


def test_upload_shows_progress_and_cancel_leaves_the_index_as_it_was(page, docs_server):
    from rag.storage import IndexLock

    documents = len(docs_server.assistant.index.documents)
    folder = docs_server.settings.upload_dir
    before = set(folder.iterdir()) if folder.exists() else set()
    text = "\n\n".join(f"Ledger entry {n}: the granary at Holt stored {n * 7} sacks of barley." for n in range(40))
    # Another writer (a `rag ingest`, say) holds the index, so the upload is still running when cancelled.
    with IndexLock(docs_server.settings.index):
        page.set_input_files("#upload input[type=file]", files=[
            {"name": "granary ledger.txt", "mimeType": "text/plain", "buffer": text.encode()}])
        page.get_by_text("Reading and indexing granary ledger.txt").first.wait_for(timeout=TIMEOUT_MS)
        page.click("#cancel-upload")
    page.locator("#upload-report", has_text="cancelled").wait_for(timeout=TIMEOUT_MS)
    assert "nothing was added" in page.inner_text("#upload-report")
    assert len(docs_server.assistant.index.documents) == documents
    assert set(folder.iterdir()) == before
    assert "granary" not in page.inner_text("#library")
