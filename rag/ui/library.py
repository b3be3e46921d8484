"""The document library: every indexed file with its title, date, size, passages and when it was added,
searchable, as rows and as an HTML table.

Example: ``render_library(filter_rows(library_rows(assistant.index), "report"))``
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from html import escape
from pathlib import Path, PurePath

from ..documents import display_path
from .render import attr, human_size


@dataclass
class LibraryRow:
    """One indexed file (a document stored under two names has two rows)."""

    path: str  # as stored in the index: what removal takes
    file: str
    title: str
    date: str
    size: int
    chunks: int
    added: float | None  # the file's modification time; None when it is gone

    @property
    def label(self) -> str:
        """How the file is named in the remove list: ``Title (file.txt)``."""
        return f"{self.title} ({self.file})" if self.title and self.title != self.file else self.file


def library_rows(index) -> list[LibraryRow]:
    """Rows for every path of every document in ``index``, newest first."""
    chunks = index.docstore.chunk_counts()
    rows = []
    for doc_id, title, date, size in index.docstore.summaries():  # no document's text is read
        for path in index.docstore.paths_of(doc_id):
            rows.append(LibraryRow(path=path, file=PurePath(display_path(path)).name, title=title or "",
                                   date=date or "", size=size, chunks=chunks[doc_id], added=_mtime(path)))
    return sorted(rows, key=lambda r: (-(r.added or 0), r.file.lower()))


def _mtime(path: str) -> float | None:
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return None


def filter_rows(rows: list[LibraryRow], query: str) -> list[LibraryRow]:
    """Rows whose title, file name or date contains every word of ``query`` (any case).

    Example: ``filter_rows(rows, "export 2023")``
    """
    words = (query or "").casefold().split()
    return [r for r in rows if all(w in f"{r.title} {r.file} {r.date}".casefold() for w in words)]


def render_library(rows: list[LibraryRow], total: int) -> str:
    """The library as a table (title, file, date, size, passages, added), with how many are shown."""
    if not total:
        return '<div class="rag-library-empty">No documents indexed yet.</div>'
    shown = f"{len(rows)} of {total} files" if len(rows) != total else f"{total} file{'s' if total != 1 else ''}"
    body = "".join(
        f'<tr data-path="{attr(r.path)}"><td>{escape(r.title or r.file)}</td>'
        f'<td class="rag-lib-file">{escape(r.file)}</td>'
        f"<td>{escape(r.date)}</td><td>{escape(human_size(r.size))}</td><td>{r.chunks}</td>"
        f"<td>{escape(_when(r.added))}</td></tr>" for r in rows)
    return (f'<div class="rag-library-count">{escape(shown)}</div><div class="rag-library-wrap">'
            '<table class="rag-library"><thead><tr><th>Title</th><th>File</th><th>Date</th><th>Size</th>'
            f"<th>Passages</th><th>Added</th></tr></thead><tbody>{body}</tbody></table></div>")


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "file missing"
