"""The page's event handlers around one shared Assistant (one instance serves every session).

Example: ``app = ChatApp(Assistant.open()); html = app.status()``
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import gradio as gr

from ..errors import IngestCancelled, RagError
from ..types import Answer
from . import cards, library, render, uploads
from .render import for_end_user

log = logging.getLogger("rag.ui")

UNEXPECTED = "Something went wrong on the server; the details are in its log. Please try again."
READ_ONLY = "This chat is read-only: documents cannot be added or removed here."


class ChatApp:
    """Questions, uploads and the library over one Assistant; ``refresh`` picks up a newer index on disk."""

    def __init__(self, assistant):
        self.assistant = assistant
        self.settings = assistant.settings
        self._cancels: dict[str, threading.Event] = {}  # per browser session: stop its running upload

    def refresh(self) -> None:
        """Serve a generation another process (``rag ingest``) wrote since the last look."""
        try:
            if self.assistant.refresh():
                log.info("serving the new index generation in %s", self.assistant.index_dir)
        except RagError as error:  # a broken new generation: keep answering from the one in memory
            log.warning("cannot open the new index generation: %s", error)

    def status(self) -> str:
        """The status area's HTML: index stats, answerer, top-k."""
        self.refresh()
        try:
            stats = self.assistant.stats()
        except RagError as error:
            return render.render_error(f"Index unavailable: {error}")
        return render.render_status(stats, self.assistant.answerer.description, self.settings.top_k)

    def ask(self, question: str, chat: list, turns: list, log_: list):
        """Stream the answer into the chat; yields (question box, chat, turns, log) as it goes."""
        question = (question or "").strip()
        if not question:
            gr.Warning("Type a question first.")
            yield "", chat, turns, log_
            return
        self.refresh()
        key = f"m{len(chat) + 1}"
        chat = chat + [{"role": "user", "content": render.render_user(question)},
                       {"role": "assistant", "content": render.render_partial("…")}]
        yield "", chat, turns, log_
        try:
            answer = yield from self._stream(question, chat, turns, log_)
        except RagError as error:
            yield "", self._failed(chat, for_end_user(str(error))), turns, log_
            return
        except Exception:
            log.exception("answering %r failed", question[:200])
            yield "", self._failed(chat, UNEXPECTED), turns, log_
            return
        if answer is None:
            yield "", self._failed(chat, UNEXPECTED), turns, log_
            return
        chat[-1] = {"role": "assistant", "content": cards.render_answer(answer, key, self._sections(answer))}
        # Follow-ups see the plain answer text (with its [n] markers), not the HTML.
        yield "", chat, turns + [[question, answer.text]], log_ + [[question, cards.plain_text(answer)]]

    def _stream(self, question: str, chat: list, turns: list, log_: list):
        """Yield page updates while the answer is written; return the finished Answer."""
        response = self.assistant.stream(question, history=[tuple(t) for t in turns])
        text = ""
        for piece in response:
            text += piece
            chat[-1] = {"role": "assistant", "content": render.render_partial(text)}
            yield "", chat, turns, log_
        return response.answer

    def _sections(self, answer: Answer) -> dict[int, str]:
        """Source number -> the Markdown section its passage lies in (from the stored document text)."""
        documents = self.assistant.index.documents
        found = {}
        for source in answer.sources:
            doc = documents.get(source.doc_id)
            section = cards.section_at(doc.text, source.start, doc.title) if doc is not None else ""
            if section:
                found[source.number] = section
        return found

    @staticmethod
    def _failed(chat: list, message: str) -> list:
        """The chat with the pending answer replaced by a readable error; also shown as a toast."""
        gr.Warning(message)
        chat[-1] = {"role": "assistant", "content": render.render_error(message)}
        return chat

    def upload(self, files: list[str] | None, replace: bool, request: gr.Request, progress=gr.Progress()):
        """Check, save and index uploaded files in one ingest (a cancel leaves the index and the upload folder
        as they were); returns (report, status, cleared file box)."""
        if self.settings.read_only:
            gr.Warning(READ_ONLY)
            return render.render_error(READ_ONLY), self.status(), None
        problems, accepted = [], []
        for file in files or []:
            path = Path(file)
            name = uploads.safe_upload_name(path.name)
            problem = uploads.upload_problem(name, path.stat().st_size if path.exists() else 0,
                                             self.settings.max_upload_mb)
            if problem:
                problems.append(problem)
            else:
                accepted.append((name, path))
        cancel = self._cancels.setdefault(_session(request), threading.Event())
        cancel.clear()
        names = accepted[0][0] if len(accepted) == 1 else f"{len(accepted)} files"
        progress(0.0, desc=f"Reading and indexing {names}")
        results, report = self._ingest(accepted, replace, problems, cancel, progress) if accepted else ([], {})
        for problem in problems:
            gr.Warning(problem)
        return uploads.render_upload_report(results, problems, report), self.status(), None

    def cancel_upload(self, request: gr.Request) -> None:
        """Stop this session's running upload at the next progress report (about once a second)."""
        event = self._cancels.get(_session(request))
        if event is not None:
            event.set()

    def _ingest(self, accepted, replace: bool, problems: list[str], cancel: threading.Event, progress):
        """Save the uploads and ingest them together; (per-file results, report dict)."""
        batch = uploads.UploadBatch(Path(self.settings.upload_dir), replace)

        def report_progress(p) -> None:
            if cancel.is_set():
                raise IngestCancelled("The upload was cancelled; nothing was added.")
            progress(p.fraction, desc=_progress_text(p))

        try:
            saved = {name: batch.save(path, name) for name, path in accepted}
            ingested = self.assistant.ingest(list(saved.values()), progress=report_progress)
        except IngestCancelled as error:
            batch.undo()
            problems.append(str(error))
            return [], {}
        except RagError as error:
            batch.undo()
            problems.append(for_end_user(str(error)))
            return [], {}
        except Exception:
            log.exception("ingesting %s failed", [name for name, _ in accepted])
            batch.undo()
            problems.append(UNEXPECTED)
            return [], {}
        batch.commit()
        for rejected in uploads.rejected_uploads(saved.values(), ingested.skipped):
            rejected.unlink(missing_ok=True)  # the upload folder keeps only files that are indexed
        report = ingested.to_dict()
        return uploads.file_results(saved, report), report

    def library(self, query: str = ""):
        """(table HTML, remove-list update) for the documents matching ``query``."""
        self.refresh()
        rows = library.library_rows(self.assistant.index)
        shown = library.filter_rows(rows, query)
        choices = [(r.label, r.path) for r in shown]
        return library.render_library(shown, len(rows)), gr.update(choices=choices, value=None)

    def remove(self, path: str | None, query: str = ""):
        """Remove one file's document from the index (and the file itself when it is an upload)."""
        if self.settings.read_only:
            gr.Warning(READ_ONLY)
        elif path:
            try:
                self.assistant.remove([path])
                upload_dir = Path(self.settings.upload_dir).resolve()
                if Path(path).parent == upload_dir:  # an upload would come back on the next re-index
                    Path(path).unlink(missing_ok=True)
                gr.Info(f"Removed {Path(path).name}.")
            except RagError as error:
                gr.Warning(for_end_user(str(error)))
        return (*self.library(query), self.status())

    def reindex(self, query: str = ""):
        """Read every indexed file again: changed ones are updated, vanished ones dropped."""
        if self.settings.read_only:
            gr.Warning(READ_ONLY)
            return (*self.library(query), self.status())
        paths = sorted(self.assistant.index.paths)
        present = [p for p in paths if Path(p).exists()]
        try:
            if len(present) < len(paths):
                self.assistant.remove([p for p in paths if p not in present])
            report = self.assistant.ingest(present) if present else None
            if report:
                gr.Info(f"Re-indexed: {len(report.updated)} updated, {len(report.unchanged)} unchanged, "
                        f"{len(paths) - len(present)} removed (file gone).")
        except RagError as error:
            gr.Warning(for_end_user(str(error)))
        return (*self.library(query), self.status())


def _progress_text(p) -> str:
    """``'notes.txt: file 2 of 3, 1,024 passages, about 40 s left'`` from an ingest's IngestProgress."""
    text = (f"{Path(p.current).name or 'Indexing'}: file {min(p.files_done + 1, p.files_total)} of {p.files_total}, "
            f"{p.chunks_done:,} passages")
    return text + (f", about {p.eta_s:.0f} s left" if p.eta_s else "")


def _session(request) -> str:
    return getattr(request, "session_hash", None) or ""
