"""The browser chat: ask questions about the indexed documents, inspect the cited passages, manage the
documents and keep conversations in the browser.

``rag serve`` (or ``python app.py``) calls :func:`main`, which serves http://RAG_HOST:RAG_PORT over RAG_INDEX.
Example: ``launch(build_app(Assistant.open()), Settings(), block=False)``
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
from pathlib import Path

# Before gradio is imported: it reads these at import time. The page must work offline.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gradio as gr

from ..assistant import Assistant
from ..config import Settings
from ..errors import IndexNotFoundError, RagError
from . import conversations as convs
from .assets import CSS, PAGE_JS
from .auth import load_users
from .handlers import ChatApp
from .render import port_problem
from .uploads import UPLOAD_TYPES

# Questions answered at once across all sessions; the Assistant is thread-safe.
CONCURRENCY = 4
INTRO = (
    "### Ask your documents\n"
    "Every claim in an answer ends with a source marker such as **[1]**: click it to see the passage, "
    "with the cited sentence highlighted. Answers quote the documents in their own language: ask in English "
    "about Japanese or Chinese documents and the quoted answer stays Japanese or Chinese."
)


def build_app(assistant: Assistant) -> gr.Blocks:
    """The page: chat on the left; documents and conversations in tabs on the right."""
    app = ChatApp(assistant)
    with gr.Blocks(title="Ask your documents", analytics_enabled=False, fill_height=True) as demo:
        store = gr.BrowserState(convs.empty(), storage_key="rag-conversations", secret=_state_secret(app.settings))
        conv_id, turns, log_ = gr.State(""), gr.State([]), gr.State([])
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                gr.Markdown(INTRO)
                chat = gr.Chatbot(elem_id="chat", show_label=False, height="calc(100vh - 250px)", min_height=360,
                                  render_markdown=False, sanitize_html=True, buttons=[], feedback_options=None,
                                  placeholder="Ask about the documents, e.g. *When did China impose the "
                                              "rare metals controls?*")
                with gr.Row():
                    question = gr.Textbox(elem_id="question", show_label=False, scale=6, max_lines=4,
                                          placeholder="Ask a question about your documents")
                    ask = gr.Button("Ask", variant="primary", elem_id="ask", scale=1, min_width=80)
                    clear = gr.Button("New chat", elem_id="clear", scale=1, min_width=80)
            with gr.Column(scale=2, min_width=300):
                with gr.Tabs():
                    with gr.Tab("Documents", id="documents"):
                        status = _documents_tab(app)
                    with gr.Tab("Conversations", id="conversations", elem_id="conversations-tab"):
                        conv_list = _conversations_tab(store, conv_id, chat, turns, log_)
        chat_state = [chat, turns, log_]
        for trigger in (question.submit, ask.click):
            trigger(_saving(app.ask), [question, *chat_state, store, conv_id],
                    [question, *chat_state, store, conv_id, conv_list]).then(
                app.status, None, status)  # an index written meanwhile by `rag ingest` shows up here too
        # A new chat leaves the last one in the list; the chat's own bin button does the same.
        clear.click(lambda: ("", [], [], [], "", gr.update(value=None)), None,
                    [question, *chat_state, conv_id, conv_list], queue=False)
        chat.clear(lambda: ([], [], "", gr.update(value=None)), None, [turns, log_, conv_id, conv_list], queue=False)
        demo.load(app.status, None, status)
        demo.load(_restore, [store], [*chat_state, conv_id, conv_list], queue=False)
    return demo


def _documents_tab(app: ChatApp) -> gr.HTML:
    """Index status, uploads (unless read-only) and the library; returns the status component."""
    settings = app.settings
    status = gr.HTML(elem_id="status")
    if not settings.read_only:
        kinds = ", ".join(s.lstrip(".") for s in UPLOAD_TYPES)
        upload = gr.File(label=f"Add documents ({kinds}; up to {settings.max_upload_mb:g} MB each)",
                         file_count="multiple", elem_id="upload")
        with gr.Row():
            replace = gr.Checkbox(False, label="Replace documents with the same file name", elem_id="replace",
                                  scale=3)
            stop = gr.Button("Cancel upload", elem_id="cancel-upload", size="sm", scale=1)
        report = gr.HTML(elem_id="upload-report")
    search = gr.Textbox(label="Search documents", elem_id="library-search", max_lines=1)
    table = gr.HTML(elem_id="library")
    pick = gr.Dropdown(label="Document", choices=[], elem_id="library-pick", visible=not settings.read_only)
    with gr.Row(visible=not settings.read_only):
        remove = gr.Button("Remove…", elem_id="remove", size="sm")
        reindex = gr.Button("Re-index all", elem_id="reindex", size="sm")
    with gr.Row(visible=False, elem_id="confirm-row") as confirm_row:
        confirm_text = gr.Markdown()
        confirm = gr.Button("Remove", variant="stop", elem_id="confirm-remove", size="sm")
        cancel = gr.Button("Keep it", elem_id="cancel-remove", size="sm")
    hide = gr.update(visible=False)
    search.change(app.library, [search], [table, pick], queue=False)
    remove.click(lambda p: (gr.update(visible=bool(p)), f"Remove **{Path(p).name}** from the index?" if p else ""),
                 [pick], [confirm_row, confirm_text], queue=False)
    confirm.click(app.remove, [pick, search], [table, pick, status]).then(lambda: hide, None, confirm_row)
    cancel.click(lambda: hide, None, confirm_row, queue=False)
    reindex.click(app.reindex, [search], [table, pick, status])
    if not settings.read_only:
        upload.upload(app.upload, [upload, replace], [report, status, upload]).then(
            app.library, [search], [table, pick])
        stop.click(app.cancel_upload, None, None, queue=False)
    gr.on([status.change], app.library, [search], [table, pick])
    return status


def _conversations_tab(store, conv_id, chat, turns, log_) -> gr.Radio:
    """The conversation list with rename, delete and export; returns the list."""
    conv_list = gr.Radio(label="Saved in this browser", choices=[], elem_id="conversation-list")
    title = gr.Textbox(label="Rename this conversation", elem_id="conversation-title", max_lines=1)
    with gr.Row():
        rename = gr.Button("Rename", elem_id="rename", size="sm")
        delete = gr.Button("Delete", elem_id="delete-conversation", size="sm", variant="stop")
        export = gr.Button("Export as Markdown", elem_id="export", size="sm")
    exported = gr.File(label="Export", visible=False, elem_id="exported")
    conv_list.input(_switch, [store, conv_list], [store, conv_id, chat, turns, log_], queue=False)
    rename.click(lambda s, c, t: _listed(convs.rename(s, c, t)), [store, conv_id, title], [store, conv_list],
                 queue=False)
    delete.click(_delete, [store, conv_id], [store, conv_id, chat, turns, log_, conv_list], queue=False)
    export.click(_export, [store, conv_id], [exported])
    return conv_list


def _listed(store: dict):
    """(store, list update) with the list showing every conversation and the current one picked."""
    return store, gr.update(choices=convs.choices(store), value=store.get("current") or None)


def _saving(ask):
    """``ask``'s page updates, then the finished conversation saved in the same event (not a later one, so
    a reload right after the answer appears still finds it)."""
    skip = (gr.skip(), gr.skip(), gr.skip())

    def ask_and_save(question, chat, turns, log_, store, conv_id):
        last = None
        for last in ask(question, chat, turns, log_):
            yield (*last, *skip)
        if last is not None:
            yield (*last, *_persist(store, conv_id, *last[1:]))

    return ask_and_save


def _persist(store, conv_id, chat, turns, log_):
    """Save the conversation after an answer: (store, its id, list update)."""
    conv_id = conv_id or convs.new_id()
    store, listed = _listed(convs.save(store, conv_id, chat, turns, log_))
    return store, conv_id, listed


def _restore(store):
    store = convs.checked(store)
    current = store["items"].get(store["current"], {})
    return (current.get("chat", []), current.get("turns", []), current.get("log", []),
            store["current"] if current else "", _listed(store)[1])


def _switch(store, chosen):
    store = {**convs.checked(store), "current": chosen}
    picked = store["items"].get(chosen, {})
    return store, chosen, picked.get("chat", []), picked.get("turns", []), picked.get("log", [])


def _delete(store, conv_id):
    store = convs.delete(store, conv_id)
    _, current, chat, turns, log_ = _switch(store, store["current"])
    return store, current, chat, turns, log_, _listed(store)[1]


def _export(store, conv_id):
    conversation = convs.checked(store)["items"].get(conv_id)
    if not conversation:
        gr.Warning("Ask something first: there is no conversation to export.")
        return gr.update(visible=False)
    folder = Path(tempfile.mkdtemp(prefix="rag-export-"))
    path = folder / "conversation.md"
    path.write_text(convs.to_markdown(conversation), encoding="utf-8")
    return gr.update(value=str(path), visible=True)


def _state_secret(settings: Settings) -> str:
    """The key gradio encrypts the browser's conversations with: stable across restarts of the same chat
    (a random one would make saved conversations unreadable after a restart)."""
    return hashlib.sha256(f"rag-conversations:{Path(settings.index).resolve()}".encode()).hexdigest()[:32]


def theme() -> gr.themes.Base:
    """The default look with system fonts: the stock theme would fetch fonts from the internet."""
    return gr.themes.Default(font=["system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
                             font_mono=["ui-monospace", "Menlo", "Consolas", "monospace"])


def launch(demo: gr.Blocks, settings: Settings, port: int | None = None, block: bool = True):
    """Start serving ``demo``; returns gradio's (app, local_url, share_url) when ``block`` is False."""
    return demo.queue(default_concurrency_limit=CONCURRENCY).launch(
        server_name=settings.host, server_port=port or settings.port, prevent_thread_lock=not block,
        theme=theme(), css=CSS, js=PAGE_JS, show_error=False, quiet=not block,
        footer_links=["api", "settings"], max_file_size=int(settings.max_upload_mb * 1024 * 1024),
        auth=load_users(settings.auth) if settings.auth else None,
    )


def main() -> int:
    """Open the configured index and serve the chat; a missing or broken index is a message, not a traceback."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
    except (RagError, ValueError) as error:  # a bad rag.toml, or pydantic's ValidationError for a RAG_* value
        print(f"Cannot start the chat: invalid setting: {_one_line(error)}", file=sys.stderr)
        return 2
    problem = port_problem(settings.host, settings.port)
    if problem:
        print(f"Cannot start the chat: {problem}", file=sys.stderr)
        return 2
    try:
        if settings.auth:
            load_users(settings.auth)  # a bad users file stops the start, before the index is opened
        assistant = Assistant.open(settings=settings)
    except RagError as error:
        hint = ("\nBuild the index first with `make index` (or `rag ingest seeds`), or point RAG_INDEX at an "
                "existing index folder.") if isinstance(error, IndexNotFoundError) else ""
        print(f"Cannot start the chat: {error}{hint}", file=sys.stderr)
        return 2
    print(f"Serving {assistant.stats().get('documents', '?')} document(s) from {assistant.index_dir} "
          f"with the {assistant.answerer.description} answerer{' (read-only)' if settings.read_only else ''}.")
    try:
        launch(build_app(assistant), settings)
    except OSError as error:  # the port was taken after the check above
        print(f"Cannot start the chat: {port_problem(settings.host, settings.port) or error}", file=sys.stderr)
        return 2
    return 0


def _one_line(error: Exception) -> str:
    """A settings error in one line: pydantic lists each bad RAG_* value over several."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    return "; ".join(f"RAG_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in errors())
