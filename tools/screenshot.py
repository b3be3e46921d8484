"""Regenerate the README's screenshots from a default install: the seeds indexed with default settings,
one question asked, its first source opened; light and dark system themes.

Run ``make screenshot`` (or ``python tools/screenshot.py [OUT_DIR]``); writes docs/screenshot.png and
docs/screenshot-dark.png. Needs Chromium (``make browser``).
"""
from __future__ import annotations

import shutil
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "When did China impose the rare metals controls?"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
FINISHED = "#chat .rag-answer:not(.rag-streaming)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(folder: Path) -> str:
    """The chat over the seeds, as a new user gets it (default settings but a temporary index)."""
    from rag import Assistant, Settings
    from rag.ui.app import build_app, launch

    settings = Settings(index=folder / "index", upload_dir=folder / "uploads")
    assistant = Assistant.build([ROOT / "seeds"], index_dir=settings.index, settings=settings)
    port = free_port()
    launch(build_app(assistant), settings, port=port, block=False)
    return f"http://127.0.0.1:{port}"


def shoot(browser, url: str, path: Path, scheme: str) -> None:
    page = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme).new_page()
    page.goto(url)
    page.wait_for_selector("#status .rag-status", timeout=60_000)
    page.fill("#question textarea", QUESTION)
    page.press("#question textarea", "Enter")
    page.wait_for_selector(FINISHED, timeout=60_000)
    page.locator(f"{FINISHED} a.rag-cite").first.click()
    page.wait_for_timeout(300)
    page.evaluate("window.scrollTo(0, 0)")  # the page from its top; the chat keeps the opened source in view
    page.screenshot(path=str(path))
    page.context.close()
    print(f"wrote {path}")


def main(out: Path) -> int:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        print("chromium is not installed; run `make browser`", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        url = serve(Path(folder))
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        shoot(browser, url, out / "screenshot.png", "light")
        shoot(browser, url, out / "screenshot-dark.png", "dark")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs"))
