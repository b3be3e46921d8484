"""Pure helpers for the chat UI: answer text with ``[n]`` badges, highlighted passages, status and errors
as safe HTML (the source cards are in ``cards.py``, uploads in ``uploads.py``).

Every piece of document or answer text goes through ``html.escape`` before it reaches the page, so a
passage containing ``<script>`` shows as text. Nothing here imports gradio.

Example: ``mark_spans("A. B.", [(3, 5)]) == "A. <mark>B.</mark>"``
"""
from __future__ import annotations

import errno
import re
import socket
from collections.abc import Iterable
from html import escape
from urllib.parse import urlsplit

from ..text import MARKER, marker_numbers, strip_markers
from ..types import Answer

# Same marker shapes the answering module accepts: [1], [1, 3], [1][2], [2-4].
_MARKER = MARKER
_WORD = re.compile(r"\w+")
# A marker right after a full stop still belongs to the sentence before it.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?!\[\d)")
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


def render_partial(text: str) -> str:
    """HTML of an answer still being written (markers shown as badges, no sources yet)."""
    body = _MARKER.sub(lambda m: f'<span class="rag-cite">{m.group(0)}</span>', text_html(text))
    return f'<div class="rag-answer rag-streaming"><div class="rag-text">{body}</div></div>'


def render_user(question: str, limit: int = 600) -> str:
    """The user's message, as text; a very long one shows its start and how much more there was."""
    if len(question) <= limit:
        return f'<div class="rag-question">{text_html(question)}</div>'
    more = f"… ({len(question) - limit:,} more characters)"
    return (f'<div class="rag-question rag-question-cut">{text_html(question[:limit].rstrip())}'
            f'<span class="rag-more-note">{escape(more)}</span></div>')


# Setting names are for whoever runs the server, not for the person asking.
_SETTING_HINT = re.compile(r"\s*\((?:set |see )?RAG_[A-Z_]+[^)]*\)")


def for_end_user(message: str) -> str:
    """An error message without server setting names: ``'... limit is 2,000 (RAG_MAX_QUESTION_CHARS).'``
    becomes ``'... limit is 2,000.'``; a sentence that still names one is left out (unless it is the only one)."""
    sentences = re.split(r"(?<=[.!?])\s+", _SETTING_HINT.sub("", message).strip())
    plain = [s for s in sentences if "RAG_" not in s]
    return " ".join(plain) if plain else message


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
