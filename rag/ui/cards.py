"""Source cards: an Answer's sources grouped by document, each passage a card with a snippet whose
supporting sentence is highlighted, a relevance label in words, and the full passage on click; plus the
answer as plain text with its sources (what Copy and the Markdown export give).

Example: ``render_answer(answer, key="m2")  # '<div class="rag-answer">... <a class="rag-cite" ...>[1]</a>'``
"""
from __future__ import annotations

import re
from html import escape
from pathlib import PurePath

from ..text import strip_markers
from ..types import Answer, Citation
from .render import (
    INSTRUCTIONS_LABEL, INSTRUCTIONS_TIP, UNSUPPORTED_TIP, answer_body, attr, citing_sentences, find_spans,
    mark_spans, safe_url, source_id, text_html,
)

# Characters of context shown around the supporting sentence in a card's snippet.
SNIPPET_CONTEXT = 90
SNIPPET_PLAIN = 220


def relevance(citation: Citation, cited: bool, rank: int, abstained: bool) -> tuple[str, str]:
    """(label, css kind) saying in words how a passage relates to the answer, instead of a fused score.

    Example: ``relevance(c, cited=True, rank=0, abstained=False) == ("Supports the answer", "good")`` for a
    verified citation.
    """
    if cited:
        if citation.supported is False:
            return "⚠ Does not clearly support the sentence citing it", "warn"
        return ("Supports the answer", "good") if citation.supported else ("Cited", "good")
    if abstained:
        return ("Closest passage found, but it does not answer the question", "weak") if rank == 0 else \
            ("Related passage, does not answer the question", "weak")
    return ("Closest match not cited", "weak") if rank == 0 else ("Related, not cited", "weak")


def evidence_spans(citation: Citation, sentences: list[str]) -> list[tuple[int, int]]:
    """Spans of the passage to highlight: verification's evidence, else where a citing sentence is quoted."""
    if citation.evidence:
        return list(citation.evidence)
    if sentences and citation.supported is not False:
        return find_spans(citation.text, (strip_markers(s) for s in sentences))
    return []


def snippet(text: str, spans: list[tuple[int, int]]) -> str:
    """A short escaped excerpt: the first highlighted span with some context, else the passage's start."""
    if not spans:
        cut = text[:SNIPPET_PLAIN]
        return text_html(cut) + ("…" if len(text) > SNIPPET_PLAIN else "")
    start, end = spans[0]
    left, right = max(0, start - SNIPPET_CONTEXT), min(len(text), end + SNIPPET_CONTEXT)
    shown = [(s - left, e - left) for s, e in spans if s >= left and e <= right]
    return (("…" if left else "") + mark_spans(text[left:right], shown or [(start - left, end - left)])
            + ("…" if right < len(text) else ""))


def render_card(citation: Citation, key: str, sentences: list[str], label: tuple[str, str],
                section: str = "") -> str:
    """One passage: number, where in the document, relevance, snippet; the full passage opens on click."""
    spans = evidence_spans(citation, sentences)
    where = " · ".join(filter(None, [section, f"page {int(citation.page)}" if citation.page else ""]))
    flags = ""
    if citation.instructions:
        flags = (f' <span class="rag-warn rag-injection" role="note" title="{attr(INSTRUCTIONS_TIP)}">'
                 f"⚠ {escape(INSTRUCTIONS_LABEL)}</span>")
    tip = attr(UNSUPPORTED_TIP) if label[1] == "warn" else ""
    passage = mark_spans(citation.text, spans) if spans else text_html(citation.text)
    return (f'<details class="rag-source rag-card" id="{attr(source_id(key, citation.number))}" '
            f'data-source="{citation.number}"><summary>'
            f'<span class="rag-card-head"><b class="rag-src-num">{citation.number}</b>'
            f'{f" <span class=rag-src-where>{escape(where)}</span>" if where else ""}'
            f' <span class="rag-relevance rag-rel-{label[1]}" title="{tip}">{escape(label[0])}</span>{flags}</span>'
            f'<span class="rag-snippet">{snippet(citation.text, spans)}</span></summary>'
            f'<blockquote class="rag-passage">{passage}</blockquote></details>')


def document_head(citation: Citation) -> str:
    """The document line of a group: title, date, file name and its http(s) link."""
    parts = [f'<span class="rag-src-title">{escape(citation.title or file_name(citation) or "Untitled")}</span>']
    if citation.date:
        parts.append(f'<span class="rag-src-date">{escape(citation.date)}</span>')
    if citation.source:
        parts.append(f'<span class="rag-src-path">{escape(file_name(citation))}</span>')
    url = safe_url(citation.url)
    if url:
        parts.append(f'<a class="rag-src-link" href="{attr(url)}" target="_blank" '
                     f'rel="noopener noreferrer nofollow">{escape(url)}</a>')
    return f'<div class="rag-doc-head">{" · ".join(parts)}</div>'


def file_name(citation: Citation) -> str:
    return PurePath(citation.source).name if citation.source else ""


def grouped(citations: list[Citation]) -> list[list[Citation]]:
    """Citations grouped by document, groups in order of their first citation."""
    groups: dict[str, list[Citation]] = {}
    for citation in citations:
        groups.setdefault(citation.doc_id, []).append(citation)
    return list(groups.values())


def render_groups(answer: Answer, citations: list[Citation], key: str, cited: bool,
                  sections: dict[int, str]) -> str:
    ranks = {c.number: rank for rank, c in enumerate(citations)}
    out = []
    for group in grouped(citations):
        cards = "".join(render_card(c, key, citing_sentences(answer, c.number) if cited else [],
                                    relevance(c, cited, ranks[c.number], answer.abstained),
                                    sections.get(c.number, "")) for c in group)
        out.append(f'<div class="rag-doc">{document_head(group[0])}{cards}</div>')
    return "".join(out)


def render_sources(answer: Answer, key: str, sections: dict[int, str] | None = None) -> str:
    """The sources panel of one message: cited passages as cards, then the uncited ones collapsed;
    ``sections`` names the section (heading) each source number lies in, when known."""
    sections = sections or {}
    cited_numbers = {c.number for c in answer.citations}
    others = [c for c in answer.sources if c.number not in cited_numbers]
    parts = []
    if answer.citations:
        cards = render_groups(answer, answer.citations, key, True, sections)
        parts.append(f'<div class="rag-sources-title">Sources</div>{cards}')
    if others:
        label = "Closest passages found" if answer.abstained else "Other passages found (not cited)"
        parts.append(f'<details class="rag-more"><summary>{label} ({len(others)})</summary>'
                     f'{render_groups(answer, others, key, False, sections)}</details>')
    return f'<div class="rag-sources">{"".join(parts)}</div>' if parts else ""


def render_answer(answer: Answer, key: str, sections: dict[int, str] | None = None) -> str:
    """Complete HTML of one assistant message: the answer with badges, a copy button and its source cards."""
    titles = {c.number: c.title or c.source or "Untitled" for c in answer.sources}
    kind = "rag-answer rag-abstained" if answer.abstained else "rag-answer"
    # The page's sanitiser drops data-* attributes, so the text to copy rides in a hidden element.
    copy = (f'<button type="button" class="rag-copy" title="Copy the answer and its sources as text">Copy</button>'
            f'<span class="rag-copy-text">{escape(plain_text(answer))}</span>')
    return (f'<div class="{kind}" data-key="{attr(key)}"><div class="rag-text">'
            f"{answer_body(answer, key, titles)}</div>{render_sources(answer, key, sections)}{copy}</div>")


def section_at(text: str, offset: int, title: str = "") -> str:
    """The last Markdown heading before ``offset`` in a document's text ('' when none, or when it is only
    the document's title). Example: ``section_at("# T\n## Costs\nIt rose.", 20, "T") == "Costs"``"""
    last = ""
    for match in _HEADING.finditer(text):
        if match.start() > offset:
            break
        last = match.group(1).strip(" #")
    return "" if last == title else last[:80]


_HEADING = re.compile(r"^#{1,6}[ \t]+(.+)$", re.MULTILINE)


def source_line(citation: Citation) -> str:
    """One source as plain text: ``[1] Title, page 2, 2025-09-18 (notes.txt) https://...``."""
    details = [citation.title or file_name(citation) or "Untitled"]
    if citation.page:
        details.append(f"page {int(citation.page)}")
    if citation.date:
        details.append(citation.date)
    line = f"[{citation.number}] {', '.join(details)}"
    if citation.source:
        line += f" ({file_name(citation)})"
    url = safe_url(citation.url)
    return f"{line} {url}" if url else line


def plain_text(answer: Answer) -> str:
    """The answer's text followed by the sources it cites, one per line (what Copy puts on the clipboard).

    Example: ``plain_text(answer) == "It opened in 1987 [1].\\n\\nSources:\\n[1] Notes (notes.txt)"``
    """
    if not answer.citations:
        return answer.text
    return answer.text + "\n\nSources:\n" + "\n".join(source_line(c) for c in answer.citations)
