"""Fixtures for the browser tests: the chat served in-process over a temp index, and headless Chromium.

Import the fixtures you use into the test module (``from browser_fixtures import chat_server, ...``).
"""
from __future__ import annotations

import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# Seconds between streamed pieces: long enough that the page shows a partial answer and that two
# sessions' questions are truly in flight together, short enough to keep the run quick.
PACE_S = 0.25
# Small, so an oversize upload needs only a small test file.
UPLOAD_LIMIT_MB = 0.05

# A document whose text carries live-looking HTML: if the page ever renders it as HTML, the flag is set.
INJECTION_TEXT = (
    "Port Velmar harbor notes\n\n"
    "The harbor of Port Velmar opens at 5 a.m. every day, according to the harbor master. "
    # Not in the answer sentence (the extractive answerer never quotes raw markup), but in the passage
    # shown beside the answer, where it must appear as text.
    'Its notice board reads <script>window.__xss = 1; document.title = "hacked";</script> in large print.\n\n'
    "The harbor master's office stands beside the old lighthouse "
    """<img src=x onerror="window.__xss = 2; document.title = 'hacked'"> on the north pier.\n"""
)


def load_app_module():
    """The chat page's module (it lives in the package)."""
    from rag.ui import app

    return app


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PacedAssistant:
    """The real Assistant with a short pause between streamed pieces, recording what each
    question was asked with (question, history), so tests can see streaming and follow-ups."""

    def __init__(self, assistant, pace_s: float = PACE_S):
        self._assistant = assistant
        self._pace_s = pace_s
        self.calls: list[tuple[str, list]] = []
        self.spans: dict[str, tuple[float, float]] = {}  # question -> (started, finished), monotonic
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self._assistant, name)

    def stream(self, question, history=None):
        from rag import Response

        started = time.monotonic()
        with self._lock:
            self.calls.append((question, list(history or [])))
        response = self._assistant.stream(question, history=history)

        def paced():
            for piece in response:
                time.sleep(self._pace_s)
                yield piece
            self.spans[question] = (started, time.monotonic())
            return response.answer

        return Response(paced())


@dataclass
class Server:
    """A running chat page and what it serves."""

    url: str
    assistant: object
    settings: object
    demo: object


def serve(assistant, settings) -> Server:
    """Start the chat page for ``assistant`` on a free port, in this process."""
    app = load_app_module()
    demo = app.build_app(assistant)
    port = free_port()
    app.launch(demo, settings, port=port, block=False)
    return Server(f"http://127.0.0.1:{port}", assistant, settings, demo)


@pytest.fixture(scope="session")
def browser_workspace(tmp_path_factory) -> Path:
    """A temp folder holding the corpus, the index and the upload folder of the browser tests."""
    folder = tmp_path_factory.mktemp("browser")
    corpus = folder / "corpus"
    corpus.mkdir()
    (corpus / "harbor_notes.txt").write_text(INJECTION_TEXT, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def chat_server(browser_workspace):
    """The chat over the seeds plus the script-injection document (extractive answerer)."""
    from rag import Assistant, Settings

    settings = Settings(index=browser_workspace / "index", upload_dir=browser_workspace / "uploads",
                        answerer="extractive", max_upload_mb=UPLOAD_LIMIT_MB)
    assistant = Assistant.build([SEEDS, browser_workspace / "corpus"], index_dir=settings.index, settings=settings)
    server = serve(PacedAssistant(assistant), settings)
    yield server
    server.demo.close()


@pytest.fixture(scope="session")
def down_server(chat_server, browser_workspace):
    """The chat over the same index with an OpenAI-compatible answerer whose server is not running."""
    from rag import Assistant, Settings

    closed_port = free_port()
    settings = Settings(index=chat_server.settings.index, upload_dir=browser_workspace / "uploads-down",
                        answerer="openai", llm_base_url=f"http://127.0.0.1:{closed_port}/v1",
                        llm_timeout=5, llm_retries=0)
    server = serve(Assistant.open(settings.index, settings=settings), settings)
    yield server
    server.demo.close()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (`make browser` installs it)."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        pytest.skip("chromium is not installed; run `make browser`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_page(browser, url: str, **options):
    """A fresh browser session (own cookies, own chat) on ``url``; ``page.outside`` collects every
    request that left the server and ``page.dialogs`` every alert/confirm the page tried to show.
    ``options`` go to Playwright's ``new_context`` (``color_scheme="dark"``, another viewport...)."""
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **options})
    page = context.new_page()
    page.outside, page.dialogs = [], []
    page.on("request", lambda r: None if r.url.startswith((url, "data:", "blob:")) else page.outside.append(r.url))
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    page.wait_for_selector("#status .rag-status", timeout=30_000)
    return page


@pytest.fixture()
def page(browser, chat_server):
    """A fresh session on the chat page."""
    page = open_page(browser, chat_server.url)
    yield page
    page.context.close()
