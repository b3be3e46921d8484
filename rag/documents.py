"""Find the files to ingest and load each into a Document: text, title, date, URL, hash, pages.

A bad file never stops an ingest: it is listed in ``LoadReport.skipped`` with the reason.
Example: ``report = load_paths(["seeds"]); report.documents[0].title``
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputPathError
from .loaders import MARKDOWN_SUFFIXES, Extracted, SkipFile, extract, supported_suffixes
from .metadata import text_metadata

__all__ = [
    "SUPPORTED_SUFFIXES", "Document", "SkippedFile", "LoadReport", "SkipFile",
    "discover_files", "load_file", "load_paths", "display_path", "safe_text",
]

SUPPORTED_SUFFIXES = supported_suffixes()  # every suffix rag/loaders.py registers a loader for
MAX_TITLE_CHARS = 300


@dataclass
class Document:
    """One document, as loaded from a file and as stored in the index (one per distinct content).

    ``text`` is what chunk spans index into, so it never changes after hashing. ``paths`` are the files that
    hold this content: the one it was loaded from, or every indexed one (sorted) once stored.
    Example: ``Document("ab12", "ab12…", "Hi.", ["/a.txt"], "A").path == "/a.txt"``
    """

    doc_id: str
    content_hash: str
    text: str
    paths: list[str]
    title: str
    date: str | None = None
    url: str | None = None
    size: int = 0
    pages: list[tuple[int, int]] = field(default_factory=list)
    # Char spans of text addressed to AI systems (rag/injection.py), found when the index stores it.
    instructions: list[tuple[int, int]] = field(default_factory=list)
    # How the file was decoded (reported by load_paths, not stored).
    encoding: str | None = None
    replaced: int = 0

    @property
    def path(self) -> str:
        """The first path holding this content (the one it was loaded from). Example: ``doc.path``"""
        return self.paths[0]

    def page_at(self, offset: int) -> int | None:
        """The page holding char ``offset``, None for documents without pages. Example: ``doc.page_at(0) == 1``"""
        return page_at(self.pages, offset)


def page_at(pages: list[tuple[int, int]], offset: int) -> int | None:
    """The page number of ``offset`` given ``(char_start, page_number)`` pairs; None without pages."""
    if not pages:
        return None
    index = bisect_right([start for start, _ in pages], offset) - 1
    return pages[max(index, 0)][1]


@dataclass
class SkippedFile:
    """A file that was not loaded and why, in words. Example: ``SkippedFile("/a/x.xyz", "unsupported type .xyz")``"""

    path: str
    reason: str


@dataclass
class LoadReport:
    """Everything one load produced: documents, skipped files, and notes worth telling the user."""

    documents: list[Document]
    skipped: list[SkippedFile]
    notes: list[str]


def display_path(path: str | Path) -> str:
    """A path as people and JSON see it: undecodable bytes as U+FFFD, control characters escaped.

    Paths themselves keep their exact bytes (``os.fsdecode`` surrogates) so files can still be opened.
    Example: ``display_path(os.fsdecode(b"bad\\xffname.txt")) == "bad\ufffdname.txt"``
    """
    text = str(path)
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte (only a Python caller can make one)
        text = text.encode("utf-8", "replace").decode("utf-8")
    return "".join(ch if ch.isprintable() or ch == " " else ascii(ch)[1:-1] for ch in text)


def safe_text(text: str) -> str:
    """Text without lone surrogates or control characters, whitespace runs as one space (titles).

    Example: ``safe_text("Bad\\udcffname\\n") == "Bad\ufffdname"``
    """
    text = text.encode("utf-8", "surrogateescape" if _only_escapes(text) else "replace").decode("utf-8", "replace")
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def _only_escapes(text: str) -> bool:
    return all("\udc80" <= ch <= "\udcff" for ch in text if "\ud800" <= ch <= "\udfff")


def discover_files(paths: list[str | Path]) -> tuple[list[Path], list[SkippedFile]]:
    """Supported files under ``paths`` (folders recursively, sorted, hidden entries ignored) and the rest.

    Raises InputPathError naming every path that does not exist or is a folder with no files.
    Example: ``files, skipped = discover_files(["seeds"])``
    """
    files: list[Path] = []
    skipped: list[SkippedFile] = []
    missing: list[str] = []
    empty: list[str] = []
    seen: set[Path] = set()
    for given in paths:
        root = Path(given).expanduser()
        if not root.exists() and not root.is_symlink():
            missing.append(str(given))
            continue
        if root.is_dir():
            listing_problems: list[SkippedFile] = []
            candidates = sorted(_walk(root, listing_problems))
            skipped.extend(listing_problems)
            if not candidates and not listing_problems:
                empty.append(str(given))
        else:
            candidates = [root]
        for path in candidates:
            _classify(path, files, skipped, seen)
    if missing or empty:
        raise InputPathError(_input_problem(missing, empty))
    return files, skipped


def _input_problem(missing: list[str], empty: list[str]) -> str:
    problems = [f"no such file or folder: {p}" for p in missing] + [
        f"the folder {p} has no files (hidden files are ignored)" for p in empty]
    return "Cannot ingest: " + "; ".join(problems) + "."


def _walk(root: Path, problems: list[SkippedFile]):
    """Every non-hidden file below ``root``; unlistable folders go to ``problems``."""

    def unlistable(error: OSError) -> None:
        reason = "permission denied" if isinstance(error, PermissionError) else f"cannot list folder: {error.strerror}"
        problems.append(SkippedFile(str(Path(error.filename or root).absolute()), reason))

    for folder, dirnames, filenames in os.walk(root, onerror=unlistable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        # Linked folders are listed, not followed: following could loop or leave the given tree.
        for name in [d for d in dirnames if os.path.islink(os.path.join(folder, d))]:
            dirnames.remove(name)
            problems.append(SkippedFile(str(Path(folder, name).absolute()),
                                        "symbolic link to a folder, not followed (ingest its target to include it)"))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(folder) / name


def _classify(path: Path, files: list[Path], skipped: list[SkippedFile], seen: set[Path]) -> None:
    """Append ``path`` to ``files`` if it can be loaded, else a reason to ``skipped``; each file once."""
    if path.is_symlink() and not path.exists():
        skipped.append(SkippedFile(str(path.absolute()), "broken symbolic link"))
        return
    resolved = path.resolve()
    if resolved in seen:
        return
    seen.add(resolved)
    if not path.is_file():
        skipped.append(SkippedFile(str(resolved), "not a regular file"))
    elif path.suffix.lower() not in supported_suffixes():
        skipped.append(SkippedFile(str(resolved), _unsupported(path)))
    else:
        files.append(resolved)


def _unsupported(path: Path) -> str:
    return f"unsupported type {path.suffix.lower()}" if path.suffix else "unsupported type (no extension)"


def load_file(path: Path, max_file_mb: float) -> Document:
    """Load one supported file, or raise SkipFile with the reason it cannot be used.

    Example: ``load_file(Path("seeds/000_003981b1cdb900f2.txt"), 50).date == "2025-09-18"``
    """
    path = Path(path)
    if path.suffix.lower() not in supported_suffixes():
        raise SkipFile(_unsupported(path))
    data = read_bounded(path, max_file_mb)
    extracted = extract(path, data)
    if not extracted.text.strip():
        raise SkipFile("empty file")
    return _document(path, len(data), extracted)


def read_bounded(path: Path, max_file_mb: float) -> bytes:
    """The file's bytes, refused by size before reading so memory stays bounded. Example: ``read_bounded(p, 50)``"""
    limit = int(max_file_mb * 1024 * 1024)
    too_large = SkipFile(f"larger than {max_file_mb:g} MB (RAG_MAX_FILE_MB)")
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise SkipFile("not a regular file")
        if info.st_size > limit:
            raise too_large
        if info.st_size == 0:
            raise SkipFile("empty file")
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)  # +1: a file that grew past the limit since stat is still refused
    except FileNotFoundError as exc:
        raise SkipFile("disappeared during ingest") from exc
    except PermissionError as exc:
        raise SkipFile("permission denied") from exc
    except IsADirectoryError as exc:
        raise SkipFile("not a regular file") from exc
    except OSError as exc:
        raise SkipFile(f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise too_large
    if not data:
        raise SkipFile("empty file")
    return data


def _document(path: Path, size: int, extracted: Extracted) -> Document:
    """Fill title, date and URL (format metadata first, then the text's own header), hash the text."""
    text = extracted.text
    stated = text_metadata(text, markdown=path.suffix.lower() in MARKDOWN_SUFFIXES)
    title = safe_text(extracted.title or stated.title or humanise_stem(safe_text(path.stem)) or "Untitled")
    content_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Document(
        doc_id=content_hash[:16],
        content_hash=content_hash,
        text=text,
        paths=[str(path.resolve())],
        title=title[:MAX_TITLE_CHARS],
        date=extracted.date or stated.date,
        url=extracted.url or stated.url,
        size=size,
        pages=list(extracted.pages),
        encoding=extracted.encoding,
        replaced=extracted.replaced,
    )


def humanise_stem(stem: str) -> str:
    """A file name as a title. Example: ``humanise_stem("annual_report-2024") == "Annual report 2024"``"""
    words = " ".join(re.split(r"[_\-\s]+", stem)).strip() or stem
    return words[:1].upper() + words[1:] if words.islower() else words


def load_paths(paths: list[str | Path], max_file_mb: float = 50.0) -> LoadReport:
    """Discover and load every file under ``paths``; per-file problems are skipped, never fatal.

    Example: ``load_paths(["docs/"], max_file_mb=20).skipped``
    """
    files, skipped = discover_files(paths)
    documents: list[Document] = []
    notes: list[str] = []
    for path in files:
        try:
            document = load_file(path, max_file_mb)
        except SkipFile as exc:
            skipped.append(SkippedFile(str(path), exc.reason))
            continue
        except Exception as exc:  # noqa: BLE001  (a parser bug on one odd file must not cost the user the whole ingest)
            skipped.append(SkippedFile(str(path), f"cannot read: {type(exc).__name__}: {exc}"))
            continue
        if document.encoding:
            notes.append(f"{display_path(path)}: not valid UTF-8, decoded as {document.encoding}")
        if document.replaced:
            notes.append(f"{display_path(path)}: {document.replaced} invalid UTF-8 byte(s) shown as \ufffd")
        documents.append(document)
    return LoadReport(documents=documents, skipped=skipped, notes=notes)
