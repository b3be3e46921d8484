"""Title, publication date and source URL read from a document's own text.

Handles news-style headers (a "topic date" line, then a headline), bylines, ``Source: URL`` lines,
a bare URL alone on the last or first line, and markdown front matter and ``# headings``.
Example: ``text_metadata("news 18 September 2025\\n\\nBig headline\\n\\nBody.\\n\\nhttps://x.org/a")``
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# How far into a document a header can reach; a date or title further down is body text.
HEAD_LINES = 8
TAIL_LINES = 8
MAX_TITLE_CHARS = 200
MAX_TITLE_WORDS = 30

_MONTHS = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4,
    "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8, "sep": 9, "sept": 9,
    "september": 9, "oct": 10, "october": 10, "nov": 11, "november": 11, "dec": 12, "december": 12,
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:19|20)\d{2})"
_DATE_PATTERNS = [
    re.compile(r"(?<!\d)" + _YEAR + r"[-/.](?P<mnum>\d{1,2})[-/.](?P<day>\d{1,2})(?!\d)"),
    re.compile(r"(?<![\w])" + _DAY + r"(?:[ \t]+of)?[ \t\-]+" + _MONTH + r",?[ \t\-]+" + _YEAR + r"(?!\d)", re.I),
    re.compile(r"(?<![\w])" + _MONTH + r"[ \t]+" + _DAY + r",?[ \t]+" + _YEAR + r"(?!\d)", re.I),
]
_URL = r"https?://[^\s<>()\[\]\"']+"
_BARE_URL = re.compile(r"^<?(" + _URL + r")>?$")
_LABELLED_URL = re.compile(
    r"^\W*(?:source|url|link|original(?: article)?|canonical(?: url)?|retrieved from)\s*[:\-–]\s*"
    r"(?:\[[^\]]*\]\()?<?(" + _URL + r")", re.I)
_DATE_LABEL = re.compile(r"^\W*(published|posted|date|dated|by|updated|last updated|modified)\b", re.I)
_LATER_LABEL = re.compile(r"^\W*(updated|last updated|modified)\b", re.I)
_LABEL = re.compile(r"^\W*(source|url|link|tags?|author|filed under|categor(?:y|ies)|keywords)\s*:", re.I)
_BYLINE = re.compile(r"^[Bb]y\s+[A-Z][\w.'-]*(?:\s+\S+){0,6}$")
_SLUG = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)+$")
_RULE = re.compile(r"^\s*([-*_=~`])(\s*\1){2,}\s*$")
_WORD = re.compile(r"[^\W_]+")


@dataclass
class TextMetadata:
    """What the text states about itself; ``None`` where it says nothing."""

    title: str | None = None
    date: str | None = None
    url: str | None = None


def parse_date(value: str) -> str | None:
    """The first real calendar date in ``value`` as ISO ``YYYY-MM-DD``, else None.

    Example: ``parse_date("Sept. 18, 2025") == "2025-09-18"``
    """
    found = _find_date(value)
    return found[0] if found else None


def _find_date(value: str) -> tuple[str, re.Match] | None:
    """The earliest valid date in ``value`` with its match, so callers can see what surrounds it."""
    hits = sorted((m for p in _DATE_PATTERNS for m in p.finditer(value)), key=lambda m: m.start())
    for match in hits:
        parts = match.groupdict()
        month = int(parts["mnum"]) if parts.get("mnum") else _MONTHS[parts["month"].lower()]
        try:
            return date(int(parts["year"]), month, int(parts["day"])).isoformat(), match
        except ValueError:  # 31 February and the like: not a date, keep looking
            continue
    return None


def text_metadata(text: str, markdown: bool = False) -> TextMetadata:
    """Title, date and URL stated in a document's header and last lines.

    Example: ``text_metadata("# Notes\\n\\nSource: https://x.org").url == "https://x.org"``
    """
    lines = [line.strip() for line in _body_lines(text, markdown) if line.strip()]
    head, tail = lines[:HEAD_LINES], lines[-TAIL_LINES:]
    found = TextMetadata(url=source_url(head, tail), date=header_date(head))
    if markdown:
        found.title = markdown_heading(text)
    if not found.title:
        found.title = header_title(head)
    return found


def source_url(head: list[str], tail: list[str]) -> str | None:
    """A bare URL alone on the last (or first) line, else a ``Source: URL`` line near either end."""
    for line in ([tail[-1]] if tail else []) + ([head[0]] if head else []):
        match = _BARE_URL.match(line)
        if match:
            return match.group(1).rstrip(".,;")
    for line in reversed(tail + head):
        match = _LABELLED_URL.match(line)
        if match:
            return match.group(1).rstrip(".,;")
    return None


def header_date(head: list[str]) -> str | None:
    """The date on a dateline among the first lines; an "Updated" date only when no other is stated."""
    later = None
    for line in head:
        if not is_date_line(line):
            continue
        iso = parse_date(line)
        if not _LATER_LABEL.match(line):
            return iso
        later = later or iso
    return later


def is_date_line(line: str) -> bool:
    """True for a dateline: a date with at most a topic or label around it, not a sentence that mentions one.

    Example: ``is_date_line("export-controls 18 September 2025")``
    """
    found = _find_date(line)
    if not found:
        return False
    rest = line[: found[1].start()] + " " + line[found[1].end():]
    if _DATE_LABEL.match(line):
        return len(_WORD.findall(rest)) <= 12
    return len(_WORD.findall(rest)) <= 4 and not rest.rstrip().endswith(".")


def header_title(head: list[str]) -> str | None:
    """The first header line that is not a dateline, URL, byline or slug, if it reads like a headline."""
    for line in head:
        if is_date_line(line) or _BARE_URL.match(line) or _RULE.match(line):
            continue
        if _LABEL.match(line) or _BYLINE.match(line) or _SLUG.match(line):
            continue
        candidate = _strip_markup(line)
        return candidate if looks_like_headline(candidate) else None
    return None


def looks_like_headline(line: str) -> bool:
    """Short, has words, and does not end the way a paragraph sentence does.

    Example: ``looks_like_headline("Japan, China discuss export controls")``
    """
    words = _WORD.findall(line)
    if not words or len(line) > MAX_TITLE_CHARS or len(words) > MAX_TITLE_WORDS:
        return False
    return not line.endswith((".", ",", ";", ":")) or line.endswith("...")


def markdown_heading(text: str) -> str | None:
    """The first level-1 heading (``# Title`` or a ``===`` underlined line) outside code fences."""
    previous, fenced = "", False
    for raw in text.split("\n"):
        line = raw.strip()
        if line.startswith(("```", "~~~")):
            fenced, previous = not fenced, ""
            continue
        if fenced:
            continue
        if line.startswith("# ") and line[2:].strip("# "):
            return _strip_markup(line)
        if previous and re.fullmatch(r"=+", line):
            return _strip_markup(previous)
        previous = line
    return None


def front_matter(text: str) -> dict[str, str]:
    """Keys of a leading ``---`` YAML or ``+++`` TOML block, lower-cased, values unquoted (flat keys only).

    Example: ``front_matter("---\\ntitle: 'Notes'\\n---\\nBody")["title"] == "Notes"``
    """
    lines = text.split("\n")
    fence = lines[0].strip() if lines else ""
    if fence not in ("---", "+++"):
        return {}
    found: dict[str, str] = {}
    for line in lines[1:200]:
        if line.strip() in (fence, "..."):
            return found
        match = re.match(r"^([A-Za-z_][\w-]*)\s*[:=]\s*(.+?)\s*$", line)
        if match:
            found[match.group(1).lower()] = match.group(2).strip("\"'")
    return {}  # never closed: not front matter after all


def front_matter_metadata(text: str) -> TextMetadata:
    """Title, date and URL from markdown front matter. Example: ``front_matter_metadata(md).date``"""
    keys = front_matter(text)
    url = next((keys[k] for k in ("url", "canonical_url", "canonical", "source", "link") if k in keys), None)
    raw_date = next((keys[k] for k in ("date", "published", "pubdate", "published_at") if k in keys), None)
    return TextMetadata(
        title=keys.get("title") or None,
        date=parse_date(raw_date) if raw_date else None,
        url=url if url and re.match(_URL + "$", url) else None,
    )


def _body_lines(text: str, markdown: bool) -> list[str]:
    """The text's lines, past any front matter block (its keys are read separately)."""
    lines = text.split("\n")
    if markdown and front_matter(text):
        fence = lines[0].strip()
        end = next(i for i, line in enumerate(lines[1:], 1) if line.strip() in (fence, "..."))
        return lines[end + 1:]
    return lines


def _strip_markup(line: str) -> str:
    """A heading without markdown's ``#`` marks and emphasis around it."""
    return line.strip().strip("#").strip().strip("*_").strip()
