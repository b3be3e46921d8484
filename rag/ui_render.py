"""Pure helpers for the chat UI: an Answer becomes safe HTML; uploads get safe names and clear checks.

Every piece of document or answer text goes through ``html.escape`` before it reaches the page, so a
passage containing ``<script>`` shows as text. Nothing here imports gradio.

Example: ``render_answer(answer, key="m2")  # '<div class="rag-answer">... <a class="rag-cite" ...>[1]</a>'``
"""
from __future__ import annotations

import errno
import re
import socket
from collections.abc import Iterable
from html import escape
from pathlib import Path, PurePath
from urllib.parse import urlsplit

from .answering import MARKER, marker_numbers, strip_markers
from .types import Answer, Citation

# Same marker shapes the answering module accepts: [1], [1, 3], [1][2], [2-4].
_MARKER = MARKER
_WORD = re.compile(r"\w+")
# A marker right after a full stop still belongs to the sentence before it.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?!\[\d)")
UPLOAD_TYPES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
UNSUPPORTED_TIP = "This sentence's citation could not be verified against the cited passage."
INSTRUCTIONS_LABEL = "contains text addressed to AI systems"
INSTRUCTIONS_TIP = ("Part of this passage gives orders to AI assistants (possible prompt injection). It is treated "
                    "as data: never quoted as an answer and never followed.")


def attr(value: object) -> str:
    """Escape a value for use inside a double-quoted HTML attribute."""
    return escape(str(value), quote=True)


def text_html(text: str) -> str:
    """Escape plain text for the page, keeping line breaks."""
    return escape(text).replace("\n", "<br>")


def safe_url(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) link, else None (no javascript:, data:, file: links)."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() in ("http", "https") and parts.netloc and not any(c.isspace() for c in url):
        return url
    return None


def badge(number: int, key: str, titles: dict[int, str]) -> str:
    """One ``[n]`` as a link to source n of this message; a number without a source stays plain text."""
    if number not in titles:
        return f'<span class="rag-cite rag-cite-missing">[{number}]</span>'
    tip = attr(f"Source {number}: {titles[number]}")
    return (f'<a class="rag-cite" href="#{attr(source_id(key, number))}" data-source="{number}" '
            f'title="{tip}">[{number}]</a>')


def source_id(key: str, number: int) -> str:
    """Element id of source ``number`` inside the message ``key`` (ids stay unique across messages)."""
    return f"rag-{key}-src-{number}"


def badge_markers(escaped: str, key: str, titles: dict[int, str]) -> str:
    """Replace every ``[n]`` marker in already-escaped text with linked badges."""
    return _MARKER.sub(lambda m: "".join(badge(n, key, titles) for n in marker_numbers(m.group(1))), escaped)


def find_spans(text: str, needles: Iterable[str]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping spans of ``text`` where each needle occurs (first occurrence only)."""
    spans = []
    for needle in needles:
        span = locate(text, needle)
        if span:
            spans.append(span)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def locate(text: str, needle: str) -> tuple[int, int] | None:
    """Where ``needle`` occurs in ``text``: verbatim first, then word by word ignoring case,
    punctuation and spacing (a quoted sentence may differ in line breaks or curly quotes)."""
    needle = needle.strip()
    if not needle:
        return None
    at = text.find(needle)
    if at >= 0:
        return at, at + len(needle)
    words = _WORD.findall(needle)
    if not words:
        return None
    match = re.search(r"\b" + r"\W+".join(map(re.escape, words)) + r"\b", text, re.IGNORECASE)
    if not match:
        return None
    end = match.end()
    # Take the sentence's closing punctuation along so the highlight reads as a whole sentence.
    if end < len(text) and text[end] in ".!?":
        end += 1
    return match.start(), end


def highlight_passage(passage: str, sentences: Iterable[str]) -> str:
    """Escaped passage with each sentence found in it wrapped in ``<mark>``; the whole passage is
    marked when none is found (an LLM may paraphrase, so the passage itself is the evidence)."""
    spans = find_spans(passage, (strip_markers(s) for s in sentences))
    if not spans:
        return f'<mark class="rag-whole">{text_html(passage)}</mark>'
    return mark_spans(passage, spans)


def mark_spans(passage: str, spans: Iterable[tuple[int, int]]) -> str:
    """Escaped passage with the given char spans wrapped in ``<mark>`` (out-of-range parts ignored).

    Example: ``mark_spans("A. B.", [(3, 5)]) == "A. <mark>B.</mark>"``
    """
    out, pos = [], 0
    for start, end in sorted((max(0, s), min(len(passage), e)) for s, e in spans):
        start = max(start, pos)
        if end <= start:
            continue
        out.append(text_html(passage[pos:start]))
        out.append(f"<mark>{text_html(passage[start:end])}</mark>")
        pos = end
    out.append(text_html(passage[pos:]))
    return "".join(out)


def citing_sentences(answer: Answer, number: int) -> list[str]:
    """The answer sentences that cite source ``number`` (from verification, else from the text)."""
    if answer.sentences:
        return [s.sentence for s in answer.sentences if number in s.cited]
    found = []
    for sentence in _SENTENCE_END.split(answer.text):
        for m in _MARKER.finditer(sentence):
            if number in marker_numbers(m.group(1)):
                found.append(sentence)
                break
    return found


def answer_body(answer: Answer, key: str, titles: dict[int, str]) -> str:
    """The answer text as HTML: escaped, ``[n]`` as badges, unverified sentences marked with a warning."""
    unsupported = [s for s in answer.sentences if not s.supported]
    spans = find_spans(answer.text, (s.sentence for s in unsupported))
    reasons = {locate(answer.text, s.sentence): s.reason for s in unsupported if s.reason}
    out, pos = [], 0
    for start, end in spans:
        out.append(badge_markers(text_html(answer.text[pos:start]), key, titles))
        sentence = badge_markers(text_html(answer.text[start:end]), key, titles)
        why = reasons.get((start, end))
        tip = attr(f"{UNSUPPORTED_TIP} Why: {why}." if why else UNSUPPORTED_TIP)
        out.append(f'<span class="rag-unsupported" title="{tip}">{sentence}'
                   f'<span class="rag-warn" title="{tip}" aria-label="unverified">⚠</span></span>')
        pos = end
    out.append(badge_markers(text_html(answer.text[pos:]), key, titles))
    unplaced = [s for s in unsupported if not locate(answer.text, s.sentence)]
    if unplaced:
        # Verification flagged a sentence we could not place in the text (such as text an LLM wrote after
        # abstaining, which is dropped); say so rather than hide it.
        why = "; ".join(dict.fromkeys(s.reason for s in unplaced if s.reason))
        out.append(f'<div class="rag-warn-note">⚠ {len(unplaced)} sentence(s) could not be verified against '
                   f"their sources{f' ({escape(why)})' if why else ''}.</div>")
    return "".join(out)


def source_meta(citation: Citation) -> str:
    """Title, date, page, score and link line of one source, escaped."""
    parts = [f'<span class="rag-src-title">{escape(citation.title or citation.source or "Untitled")}</span>']
    if citation.date:
        parts.append(f'<span class="rag-src-date">{escape(citation.date)}</span>')
    if citation.page:
        parts.append(f"<span>page {int(citation.page)}</span>")
    parts.append(f'<span class="rag-src-score">score {citation.score:.3f}</span>')
    if citation.supported is False:
        parts.append(f'<span class="rag-warn" title="{attr(UNSUPPORTED_TIP)}">⚠ unverified</span>')
    if citation.instructions:
        parts.append(f'<span class="rag-warn rag-injection" role="note" title="{attr(INSTRUCTIONS_TIP)}">'
                     f"⚠ {escape(INSTRUCTIONS_LABEL)}</span>")
    return " · ".join(parts)


def source_links(citation: Citation) -> str:
    """The link to the source URL (only when it is http(s)) and the file it came from."""
    items = []
    url = safe_url(citation.url)
    if url:
        items.append(f'<a class="rag-src-link" href="{attr(url)}" target="_blank" '
                     f'rel="noopener noreferrer nofollow">{escape(url)}</a>')
    if citation.source:
        items.append(f'<span class="rag-src-path">{escape(PurePath(citation.source).name)}</span>')
    return f'<div class="rag-src-links">{" · ".join(items)}</div>' if items else ""


def render_source(citation: Citation, key: str, sentences: list[str], opened: bool = False) -> str:
    """One source as a collapsible block: summary line, links, passage with its evidence marked (the
    sentences verification found supporting the answer; none when the citation failed verification)."""
    if citation.evidence:
        passage = mark_spans(citation.text, citation.evidence)
    elif sentences and citation.supported is not False:  # not verified: mark where the sentence is quoted
        passage = highlight_passage(citation.text, sentences)
    else:
        passage = text_html(citation.text)
    return (f'<details class="rag-source" id="{attr(source_id(key, citation.number))}"{" open" if opened else ""}>'
            f'<summary><b class="rag-src-num">[{citation.number}]</b> {source_meta(citation)}</summary>'
            f'{source_links(citation)}<blockquote class="rag-passage">{passage}</blockquote></details>')


def render_sources(answer: Answer, key: str, open_first: bool = False) -> str:
    """The sources panel of one message: cited passages, then the uncited ones in a collapsed block."""
    cited_numbers = {c.number for c in answer.citations}
    cited = [render_source(c, key, citing_sentences(answer, c.number), open_first and i == 0)
             for i, c in enumerate(answer.citations)]
    others = [c for c in answer.sources if c.number not in cited_numbers]
    parts = []
    if cited:
        parts.append(f'<div class="rag-sources-title">Sources</div>{"".join(cited)}')
    if others:
        label = "Closest passages found" if answer.abstained else "Other retrieved passages (not cited)"
        parts.append(f'<details class="rag-more"><summary>{label} ({len(others)})</summary>'
                     f'{"".join(render_source(c, key, []) for c in others)}</details>')
    return f'<div class="rag-sources">{"".join(parts)}</div>' if parts else ""


def render_answer(answer: Answer, key: str, open_first: bool = False) -> str:
    """Complete HTML of one assistant message: the answer with badges and its own sources panel."""
    titles = {c.number: c.title or c.source or "Untitled" for c in answer.sources}
    kind = "rag-answer rag-abstained" if answer.abstained else "rag-answer"
    return (f'<div class="{kind}" data-key="{attr(key)}"><div class="rag-text">'
            f"{answer_body(answer, key, titles)}</div>{render_sources(answer, key, open_first)}</div>")


def render_partial(text: str) -> str:
    """HTML of an answer still being written (markers shown as badges, no sources yet)."""
    body = _MARKER.sub(lambda m: f'<span class="rag-cite">{m.group(0)}</span>', text_html(text))
    return f'<div class="rag-answer rag-streaming"><div class="rag-text">{body}</div></div>'


def render_user(question: str) -> str:
    """The user's message, as text."""
    return f'<div class="rag-question">{text_html(question)}</div>'


def render_error(message: str) -> str:
    """A readable error block shown in place of an answer."""
    return f'<div class="rag-error" role="alert">⚠ {text_html(message)}</div>'


def human_size(n_bytes: float) -> str:
    """Bytes as a short human figure: 1536 -> '1.5 KB'."""
    size = float(n_bytes)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def render_status(stats: dict, answerer: str, top_k: int) -> str:
    """The status area: what the index holds and how questions are answered."""
    rows = [
        ("Documents", stats.get("documents", "?")),
        ("Passages", stats.get("chunks", "?")),
        ("Embedding model", stats.get("model", "?")),
        ("Answerer", answerer),
        ("Top-k", top_k),
    ]
    if "size_bytes" in stats:
        rows.append(("Index size", human_size(stats["size_bytes"])))
    cells = "".join(f'<div class="rag-stat"><span>{escape(k)}</span> <b>{escape(str(v))}</b></div>' for k, v in rows)
    return f'<div class="rag-status">{cells}</div>'


def safe_upload_name(name: str, max_len: int = 120) -> str:
    """A file name that is safe to join to the upload folder: the basename only (either slash style),
    odd characters replaced, no leading dots; ``'../../etc/pass wd.txt'`` -> ``'pass_wd.txt'``."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._-") or "upload"
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    ext = ext[:10]
    stem = stem[: max_len - len(ext) - 1].strip("._-") or "upload"
    return f"{stem}.{ext}" if ext else stem


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


def rejected_uploads(saved: Iterable[Path], skipped: Iterable) -> list[Path]:
    """Saved uploads that the ingest skipped (binary, empty, unreadable), to be deleted again.

    Example: ``rejected_uploads([Path("/up/a.txt")], [SkippedFile("/up/a.txt", "empty file")])``
    """
    rejected = {Path(s.path) for s in skipped}
    return [path for path in saved if Path(path) in rejected]


def port_problem(host: str, port: int) -> str | None:
    """Why the chat cannot listen on ``host:port`` (in use, say), or None when it can.

    Example: ``port_problem("127.0.0.1", 7860)  # "port 7860 is in use; set RAG_PORT ..." when taken``
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no clash
            probe.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} is in use; set RAG_PORT to a free port (or stop the program using it)."
        return f"cannot listen on {host}:{port} ({exc.strerror or exc}); set RAG_HOST and RAG_PORT."
    return None


def _count(value: object) -> int:
    return len(value) if isinstance(value, (list, tuple, set)) else int(value or 0)


def render_upload_report(report: dict, problems: list[str]) -> str:
    """What an upload did: counts from the ingest report, then every rejected or skipped file with why."""
    lines = []
    if report:
        counts = [(k, _count(report.get(k))) for k in ("added", "updated", "unchanged", "duplicates")]
        done = ", ".join(f"{n} {k}" for k, n in counts if n)
        lines.append(f'<div class="rag-upload-ok">Indexed: {escape(done or "nothing new")} '
                     f'({_count(report.get("chunks_embedded"))} passages embedded).</div>')
    skipped = [f"{PurePath(s.get('path', '')).name}: {s.get('reason', 'skipped')}" for s in report.get("skipped", [])]
    for message in problems + skipped:
        lines.append(f'<div class="rag-upload-error">⚠ {escape(message)}</div>')
    for marked in report.get("instructions", []):
        lines.append(f'<div class="rag-upload-warn rag-injection">⚠ {escape(PurePath(marked["path"]).name)} '
                     f'{escape(INSTRUCTIONS_LABEL)}: “{escape(marked["sentence"])}”</div>')
    return f'<div class="rag-upload">{"".join(lines)}</div>' if lines else ""
