"""Uploads: the user's own file name kept (any script, made safe only for the file system), a second file
with the same name kept beside the first unless the user chooses to replace it, and a report per file.

Example: ``safe_upload_name("../Résumé 日本語.txt") == "Résumé 日本語.txt"``
"""
from __future__ import annotations

import filecmp
import os
import re
import shutil
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from pathlib import Path, PurePath

from ..loaders import supported_suffixes
from ..errors import RagError
from .render import INSTRUCTIONS_LABEL, human_size

UPLOAD_TYPES = tuple(sorted(supported_suffixes()))  # from the loader registry
# Characters no file system takes (Windows is the strictest), and control characters.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*\\/]+')
# Most file systems cap a name at 255 bytes; leave room for " (12)" and the hidden ".partial" copy.
MAX_NAME_BYTES = 200


def safe_upload_name(name: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """The basename of ``name`` (either slash style), NFC-normalised, without characters a file system
    refuses or leading dots; any script is kept. ``'../../etc/pass wd.txt'`` -> ``'pass wd.txt'``."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name or ""))[-1]
    base = re.sub(r"\s+", " ", _UNSAFE.sub("_", base)).strip(" ._") or "upload"
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem:
        stem, ext = base, ""
    ext = ext[:10]
    stem = _cut_bytes(stem, max_bytes - len(ext.encode()) - 1).rstrip(" ._") or "upload"
    return f"{stem}.{ext}" if ext else stem


def _cut_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, never inside a character."""
    return text.encode()[:max(limit, 1)].decode("utf-8", "ignore")


def upload_problem(name: str, size_bytes: int, max_mb: float) -> str | None:
    """Why a file cannot be uploaded (type, size, empty), or None when it is fine."""
    suffix = PurePath(name).suffix.lower()
    if suffix not in UPLOAD_TYPES:
        shown = suffix or "no extension"
        return f"{name}: {shown} files are not supported; upload {', '.join(UPLOAD_TYPES)} files."
    if size_bytes <= 0:
        return f"{name}: the file is empty."
    if size_bytes > max_mb * 1024 * 1024:
        return f"{name} is {human_size(size_bytes)}; the upload limit is {max_mb:g} MB."
    return None


def upload_target(folder: Path, name: str, source: Path, replace: bool = False) -> Path:
    """Where an upload called ``name`` goes in ``folder``: its own name when free, holding the same
    content, or when ``replace``; otherwise ``name (2).ext``, ``name (3).ext``... (or the one with the same content).

    Example: ``upload_target(Path("up"), "a.txt", Path("/tmp/x"))  # up/a.txt, or up/a (2).txt when taken``
    """
    target = folder / name
    stem, suffix = PurePath(name).stem, PurePath(name).suffix
    number = 2
    while target.exists() and not replace and not filecmp.cmp(target, source, shallow=False):
        target = folder / f"{stem} ({number}){suffix}"
        number += 1
    return target


def save_upload(source: Path, target: Path, folder: Path) -> Path:
    """Copy an upload to ``target``, which must lie directly in ``folder`` (created if needed)."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    target = target.resolve()
    if target.parent != folder:  # safe_upload_name makes this impossible; keep the guarantee local
        raise RagError(f"Refusing to write {target.name!r} outside the upload folder.")
    # Copy beside the target, then rename: an ingest running meanwhile never reads a half-written file.
    partial = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)
    return target


class UploadBatch:
    """Uploads saved for one ingest, undone together when it fails or is cancelled: new files are deleted
    and replaced ones get their earlier content back.

    Example: ``batch = UploadBatch(folder, replace=False); batch.save(tmp, "a.txt"); batch.undo()``
    """

    def __init__(self, folder: Path, replace: bool = False):
        self.folder, self.replace = Path(folder), replace
        self._new: list[Path] = []
        self._backups: dict[Path, Path] = {}  # replaced file -> its earlier content

    def save(self, source: Path, name: str) -> Path:
        """Copy ``source`` into the folder under the safe form of ``name``; returns where it went."""
        self.folder.mkdir(parents=True, exist_ok=True)
        target = upload_target(self.folder.resolve(), safe_upload_name(name), source, self.replace)
        if target.exists() and target not in self._backups and target not in self._new:
            backup = target.with_name(f".{target.name}.previous")
            shutil.copyfile(target, backup)
            self._backups[target] = backup
        elif not target.exists():
            self._new.append(target)
        return save_upload(source, target, self.folder)

    def undo(self) -> None:
        for path in self._new:
            path.unlink(missing_ok=True)
        for target, backup in self._backups.items():
            os.replace(backup, target)
        self._new, self._backups = [], {}

    def commit(self) -> None:
        for backup in self._backups.values():
            backup.unlink(missing_ok=True)
        self._new, self._backups = [], {}


def rejected_uploads(saved: Iterable[Path], skipped: Iterable) -> list[Path]:
    """Saved uploads that the ingest skipped (binary, empty, unreadable), to be deleted again.

    Example: ``rejected_uploads([Path("/up/a.txt")], [SkippedFile("/up/a.txt", "empty file")])``
    """
    rejected = {Path(s.path) for s in skipped}
    return [path for path in saved if Path(path) in rejected]


@dataclass
class FileResult:
    """What happened to one uploaded file, by the name the user gave it."""

    name: str
    outcome: str  # added | updated | unchanged | duplicate | skipped
    detail: str = ""


def file_results(saved: dict[str, Path], report: dict) -> list[FileResult]:
    """One result per saved upload (user's name -> saved path) from an ingest report's ``to_dict()``."""
    outcome_of: dict[str, tuple[str, str]] = {}
    for key, outcome, detail in (("added", "added", ""), ("updated", "updated", "replaced the earlier version"),
                                 ("unchanged", "unchanged", "already indexed"),
                                 ("duplicates", "duplicate", "same text as a document already indexed")):
        for path in report.get(key, []):
            outcome_of[str(path)] = (outcome, detail)
    for skipped in report.get("skipped", []):
        outcome_of[str(skipped.get("path"))] = ("skipped", skipped.get("reason", ""))
    results = []
    for name, path in saved.items():
        outcome, detail = outcome_of.get(str(path), ("skipped", "not indexed"))
        if outcome in ("added", "updated") and path.name != name:
            detail = f"saved as {path.name}"
        results.append(FileResult(name, outcome, detail))
    return results


def render_upload_report(results: list[FileResult], problems: list[str], report: dict | None = None) -> str:
    """What an upload did, one line per file by its name, then refused files and instruction warnings."""
    css = {"added": "ok", "updated": "ok", "unchanged": "ok", "duplicate": "warn", "skipped": "error"}
    lines = [f'<div class="rag-upload-{css[r.outcome]}" data-outcome="{r.outcome}">'
             f'<b>{escape(r.name)}</b>: {escape(r.outcome)}{f" ({escape(r.detail)})" if r.detail else ""}</div>'
             for r in results]
    lines += [f'<div class="rag-upload-error" data-outcome="refused">⚠ {escape(p)}</div>' for p in problems]
    for marked in (report or {}).get("instructions", []):
        lines.append(f'<div class="rag-upload-warn rag-injection">⚠ {escape(PurePath(marked["path"]).name)} '
                     f'{escape(INSTRUCTIONS_LABEL)}: “{escape(marked["sentence"])}”</div>')
    return f'<div class="rag-upload">{"".join(lines)}</div>' if lines else ""
