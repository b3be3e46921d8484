"""The browser chat: ask questions about the indexed documents and inspect the cited passages.

Run ``python app.py`` (or ``make run``); it serves http://RAG_HOST:RAG_PORT (default 127.0.0.1:7860)
over the index at RAG_INDEX. This file only wires the page to the Python API; rendering lives in
``rag/ui_render.py``.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

# Before gradio is imported: it reads these at import time. The page must work offline.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gradio as gr  # noqa: E402

from rag import Answer, Assistant, IndexNotFoundError, RagError, Settings  # noqa: E402
from rag import ui_render as ui  # noqa: E402

log = logging.getLogger("rag.app")

# Questions answered at once across all sessions; the Assistant is thread-safe.
CONCURRENCY = 4
UNEXPECTED = "Something went wrong on the server; the details are in its log. Please try again."

# Opens the cited source when its [n] badge is clicked (document text never carries script: it is escaped).
CLICK_JS = """
() => {
  document.addEventListener("click", (event) => {
    const link = event.target.closest ? event.target.closest("a.rag-cite") : null;
    if (!link) return;
    const target = document.getElementById((link.getAttribute("href") || "").slice(1));
    if (!target) return;
    event.preventDefault();
    for (let d = target; d; d = d.parentElement && d.parentElement.closest("details")) d.open = true;
    target.scrollIntoView({block: "nearest"});
    target.classList.add("rag-flash");
    setTimeout(() => target.classList.remove("rag-flash"), 1500);
  });
}
"""

CSS = """
.rag-text { line-height: 1.55; }
.rag-cite { display: inline-block; margin: 0 1px 0 3px; padding: 0 5px; border-radius: 6px; font-size: 0.8em;
  font-weight: 600; background: #e0e7ff; color: #3730a3 !important; text-decoration: none !important;
  vertical-align: super; line-height: 1.3; cursor: pointer; }
.rag-cite-missing { background: #eee; color: #666 !important; }
.rag-unsupported { text-decoration: underline dotted #b45309; }
.rag-warn { color: #b45309; cursor: help; margin-left: 2px; }
.rag-warn-note { color: #b45309; font-size: 0.9em; margin-top: 6px; }
.rag-sources { margin-top: 10px; border-top: 1px solid #e5e7eb; padding-top: 6px; font-size: 0.92em; }
.rag-sources-title { font-weight: 600; margin-bottom: 4px; }
.rag-source { margin: 4px 0; padding: 2px 6px; border-radius: 6px; }
.rag-source summary, .rag-more > summary { cursor: pointer; }
.rag-flash { outline: 2px solid #a5b4fc; }
.rag-src-links { font-size: 0.9em; margin: 4px 0; color: #555; word-break: break-all; }
.rag-passage { white-space: pre-wrap; margin: 4px 0 8px; padding: 6px 10px; border-left: 3px solid #c7d2fe;
  color: inherit; }
.rag-passage mark { background: #fde68a; color: inherit; padding: 0 1px; }
.rag-passage mark.rag-whole { background: #fef3c7; }
.rag-src-score, .rag-src-date { color: #555; }
.rag-error { color: #991b1b; background: #fef2f2; border: 1px solid #fecaca; padding: 8px 10px; border-radius: 6px; }
.rag-upload-error { color: #991b1b; margin: 2px 0; }
.rag-upload-warn { color: #b45309; margin: 2px 0; }
.rag-upload-ok { color: #166534; margin: 2px 0; }
.rag-status { display: grid; grid-template-columns: 1fr; gap: 2px; font-size: 0.92em; }
.rag-stat span { color: #555; }
"""

INTRO = (
    "### Ask your documents\n"
    "Every claim in an answer ends with a source marker such as **[1]**: click it to see the passage, "
    "with the cited sentence highlighted. Add your own files on the right."
)


class ChatApp:
    """The page's event handlers around one shared Assistant (one instance serves every session)."""

    def __init__(self, assistant: Assistant):
        self.assistant = assistant
        self.settings = assistant.settings

    def status(self) -> str:
        """The status area's HTML: index stats, answerer, top-k."""
        try:
            stats = self.assistant.stats()
        except RagError as error:
            return ui.render_error(f"Index unavailable: {error}")
        return ui.render_status(stats, self.assistant.answerer.description, self.settings.top_k)

    def ask(self, question: str, chat: list[dict], turns: list[tuple[str, str]]):
        """Stream the answer into the chat; yields (question box, chat, turns) as it goes."""
        question = (question or "").strip()
        if not question:
            gr.Warning("Type a question first.")
            yield "", chat, turns
            return
        key = f"m{len(chat) + 1}"
        chat = chat + [{"role": "user", "content": ui.render_user(question)},
                       {"role": "assistant", "content": ui.render_partial("…")}]
        yield "", chat, turns
        try:
            answer = None
            text = ""
            for piece in self.assistant.stream(question, history=list(turns)):
                if isinstance(piece, Answer):
                    answer = piece
                else:
                    text += piece
                    chat[-1] = {"role": "assistant", "content": ui.render_partial(text)}
                    yield "", chat, turns
        except RagError as error:
            yield "", self._failed(chat, str(error)), turns
            return
        except Exception:  # noqa: BLE001  (the page shows a message; the log keeps the traceback)
            log.exception("answering %r failed", question)
            yield "", self._failed(chat, UNEXPECTED), turns
            return
        if answer is None:
            yield "", self._failed(chat, UNEXPECTED), turns
            return
        chat[-1] = {"role": "assistant", "content": ui.render_answer(answer, key)}
        # Follow-ups see the plain answer text (with its [n] markers), not the HTML.
        yield "", chat, turns + [(question, answer.text)]

    @staticmethod
    def _failed(chat: list[dict], message: str) -> list[dict]:
        """The chat with the pending answer replaced by a readable error; also shown as a toast."""
        gr.Warning(message)
        chat[-1] = {"role": "assistant", "content": ui.render_error(message)}
        return chat

    def upload(self, files: list[str] | None, progress=gr.Progress()):
        """Check, save and index uploaded files; returns (report, status, cleared file box)."""
        paths = [Path(f) for f in (files or [])]
        problems, saved = [], []
        progress(0.05, desc="Checking files")
        for path in paths:
            name = ui.safe_upload_name(path.name)
            problem = ui.upload_problem(name, path.stat().st_size if path.exists() else 0,
                                        self.settings.max_upload_mb)
            if problem:
                problems.append(problem)
            else:
                saved.append(self._save(path, name))
        report = {}
        if saved:
            progress(0.3, desc=f"Indexing {len(saved)} file(s)")
            try:
                ingested = self.assistant.ingest(saved)
                report = ingested.to_dict()
                for rejected in ui.rejected_uploads(saved, ingested.skipped):
                    rejected.unlink(missing_ok=True)  # the upload folder keeps only files that are indexed
            except RagError as error:
                problems.append(str(error))
            except Exception:  # noqa: BLE001
                log.exception("ingesting %s failed", saved)
                problems.append(UNEXPECTED)
        for problem in problems:
            gr.Warning(problem)
        progress(1.0, desc="Done")
        return ui.render_upload_report(report, problems), self.status(), None

    def _save(self, path: Path, name: str) -> Path:
        """Copy an upload into the upload folder under its sanitised name (never outside it)."""
        folder = Path(self.settings.upload_dir).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        target = (folder / name).resolve()
        if target.parent != folder:  # safe_upload_name makes this impossible; keep the guarantee local
            raise RagError(f"Refusing to write {name!r} outside the upload folder.")
        # Copy beside the target, then rename: an ingest running meanwhile never reads a half-written file.
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(path, partial)
        os.replace(partial, target)
        return target


def build_app(assistant: Assistant) -> gr.Blocks:
    """The page: chat on the left, status and uploads on the right."""
    app = ChatApp(assistant)
    limit = f"{app.settings.max_upload_mb:g} MB"
    with gr.Blocks(title="Ask your documents", analytics_enabled=False) as demo:
        turns = gr.State([])
        with gr.Row():
            with gr.Column(scale=3):
                gr.Markdown(INTRO)
                chat = gr.Chatbot(elem_id="chat", label="Conversation", height=560, render_markdown=False,
                                  sanitize_html=True, buttons=["copy"], feedback_options=None,
                                  placeholder="Ask about the documents, e.g. *When did China impose the "
                                              "rare metals controls?*")
                with gr.Row():
                    question = gr.Textbox(elem_id="question", show_label=False, scale=6, max_lines=4,
                                          placeholder="Ask a question about your documents")
                    ask = gr.Button("Ask", variant="primary", elem_id="ask", scale=1, min_width=80)
                    clear = gr.Button("Clear", elem_id="clear", scale=1, min_width=80)
            with gr.Column(scale=1, min_width=260):
                gr.Markdown("#### Index")
                status = gr.HTML(elem_id="status")
                upload = gr.File(label=f"Add documents (txt, md, html, pdf, docx; up to {limit} each)",
                                 file_count="multiple", elem_id="upload")
                report = gr.HTML(elem_id="upload-report")
        for trigger in (question.submit, ask.click):
            trigger(app.ask, [question, chat, turns], [question, chat, turns])
        clear.click(lambda: ("", [], []), None, [question, chat, turns], queue=False)
        chat.clear(lambda: [], None, turns, queue=False)
        upload.upload(app.upload, [upload], [report, status, upload])
        demo.load(app.status, None, status)
    return demo


def theme() -> gr.themes.Base:
    """The default look with system fonts: the stock theme would fetch fonts from the internet."""
    return gr.themes.Default(font=["system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
                             font_mono=["ui-monospace", "Menlo", "Consolas", "monospace"])


def launch(demo: gr.Blocks, settings: Settings, port: int | None = None, block: bool = True):
    """Start serving ``demo``; returns gradio's (app, local_url, share_url) when ``block`` is False."""
    return demo.queue(default_concurrency_limit=CONCURRENCY).launch(
        server_name=settings.host, server_port=port or settings.port, prevent_thread_lock=not block,
        theme=theme(), css=CSS, js=CLICK_JS, show_error=False, quiet=not block,
        footer_links=["api", "settings"], max_file_size=_upload_cap(settings),
    )


def _upload_cap(settings: Settings) -> int:
    """Bytes gradio accepts per file: the configured limit, so an oversize file is refused before it is
    sent, with gradio's message naming the file and the limit (upload() checks again for API callers)."""
    return int(settings.max_upload_mb * 1024 * 1024)


def main() -> int:
    """Open the configured index and serve the chat; a missing or broken index is a message, not a traceback."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
    except (RagError, ValueError) as error:  # a bad rag.toml, or pydantic's ValidationError for a RAG_* value
        print(f"Cannot start the chat: invalid setting: {_one_line(error)}", file=sys.stderr)
        return 2
    problem = ui.port_problem(settings.host, settings.port)
    if problem:
        print(f"Cannot start the chat: {problem}", file=sys.stderr)
        return 2
    try:
        assistant = Assistant.open(settings=settings)
    except RagError as error:
        hint = ("\nBuild the index first with `make index` (or `rag ingest seeds`), or point RAG_INDEX at an "
                "existing index folder.") if isinstance(error, IndexNotFoundError) else ""
        print(f"Cannot start the chat: {error}{hint}", file=sys.stderr)
        return 2
    print(f"Serving {assistant.stats().get('documents', '?')} document(s) from {assistant.index_dir} "
          f"with the {assistant.answerer.description} answerer.")
    try:
        launch(build_app(assistant), settings)
    except OSError as error:  # the port was taken after the check above
        print(f"Cannot start the chat: {ui.port_problem(settings.host, settings.port) or error}", file=sys.stderr)
        return 2
    return 0


def _one_line(error: Exception) -> str:
    """A settings error in one line: pydantic lists each bad RAG_* value over several."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    return "; ".join(f"RAG_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in errors())


if __name__ == "__main__":
    sys.exit(main())
