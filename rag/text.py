"""Text rules every part shares: sentence spans, the ``[n]`` citation marker grammar, and the one
normaliser for comparing texts. A leaf module: it imports nothing from the package.

Example: ``strip_markers("Gallium is controlled [1][3].") == "Gallium is controlled."``
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

# ---------------------------------------------------------------- sentences

# A sentence ends at . ! ? … (plus closing quotes/brackets) followed by whitespace and a likely sentence start.
# Hand-written rather than nltk/llama-index splitters because we need exact character spans back.
# Changing these rules changes chunks: bump rag/chunking.py's SPLITTER_VERSION with them.
# Chinese and Japanese end a sentence at 。！？ (or ASCII !? after a CJK character), with or without a space.
_SENTENCE_END = re.compile(
    r"(?<=[.!?…])[\"'’”)\]]*\s+(?=[\"'‘“(\[「『]?[A-Z0-9À-ÖØ-Þ\u3040-\u30ff\u3400-\u9fff])"
    # Not before a closing bracket: 「はい。」と答えた。 is one sentence.
    r"|(?:(?<=[。！？])|(?<=．)(?![0-9０-９])|(?<=[\u3040-\u30ff\u3400-\u9fff][!?]))(?![」』）】〕〉》\"'’”)\]])\s*(?=\S)"
)
_TERMINAL = re.compile(r"[.!?…。！？．]")  # what each _SENTENCE_END match follows
_ABBREVIATIONS = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|Gen|Gov|Sen|Rep|Inc|Ltd|Co|Corp|No|vs|etc|Fig|Jan|Feb|Mar|Apr|Jun|Jul|"
    r"Aug|Sep|Sept|Oct|Nov|Dec|e\.g|i\.e|U\.S|U\.K|U\.N|E\.U)\.|\b[A-Z]\.)$"
)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# A single newline ends a unit when the line before it ends a sentence or is short (a heading, a list item).
_SHORT_LINE = 60


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Char spans of the sentences (and headings/lines) of ``text``, whitespace trimmed, in order.

    Example: ``split_sentences("It rose. Then fell.") == [(0, 8), (9, 19)]``
    """
    spans: list[tuple[int, int]] = []
    for para_start, para_end in _split_on(text, 0, len(text), _PARAGRAPH_BREAK):
        for line_start, line_end in _split_lines(text, para_start, para_end):
            spans.extend(_split_line_sentences(text, line_start, line_end))
    return spans


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without the whitespace at its ends. Example: ``trim_span(" ab ", 0, 4) == (1, 3)``"""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _split_on(text: str, start: int, end: int, pattern: re.Pattern) -> list[tuple[int, int]]:
    pieces, cursor = [], start
    for match in pattern.finditer(text, start, end):
        pieces.append((cursor, match.start()))
        cursor = match.end()
    pieces.append((cursor, end))
    return [trim_span(text, s, e) for s, e in pieces if text[s:e].strip()]


def _split_lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    units, unit_start, cursor = [], start, start
    while (newline := text.find("\n", cursor, end)) != -1:
        line = text[cursor:newline].rstrip()
        if line.endswith((".", "!", "?", ":", "…", "。", "！", "？", "：")) or len(line.strip()) < _SHORT_LINE:
            units.append((unit_start, newline))
            unit_start = newline + 1
        cursor = newline + 1
    units.append((unit_start, end))
    return [trim_span(text, s, e) for s, e in units if text[s:e].strip()]


def _split_line_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, sentence_start = [], start
    for match in _sentence_ends(text, start, end):
        if _ends_with_abbreviation(text, sentence_start, match.start()):
            continue
        spans.append(trim_span(text, sentence_start, match.start()))
        sentence_start = match.end()
    spans.append(trim_span(text, sentence_start, end))
    return [(s, e) for s, e in spans if e > s]


def _sentence_ends(text: str, start: int, end: int) -> Iterator[re.Match]:
    """``_SENTENCE_END.finditer(text, start, end)``, found faster: every match starts right after a mark
    that ends a sentence, so only those places are tried rather than every char."""
    resume = start
    for mark in _TERMINAL.finditer(text, max(0, start - 1), end):
        if mark.end() >= resume and (match := _SENTENCE_END.match(text, mark.end(), end)):
            yield match
            resume = match.end()


def _ends_with_abbreviation(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]``, closing quotes and brackets dropped, ends with an abbreviation ("Dr.").
    Only its last chars are searched (an abbreviation is at most five), so a long sentence costs no more;
    the char before ``start`` is never a letter, so word boundaries read the same as in the slice."""
    while end > start and text[end - 1] in "\"'’”)]":
        end -= 1
    return _ABBREVIATIONS.search(text, max(start, end - 8), end) is not None


# ---------------------------------------------------------------- citation markers

# [1], [1, 3], [1][2], [2-4]; anything else in brackets ([2021], [sic]) is left alone.
MARKER = re.compile(r"\[(\d{1,3}(?:\s*[-–,;]\s*\d{1,3})*)\]")
_LEADING_MARKERS = re.compile(r"^(?:\s*\[[\d,;\s\-–]+\])+")
# In an answer, a sentence may open with Markdown emphasis ("... [1]. **It reopened in 2031** [1].").
_EMPHASIS_START = re.compile(r"(?<=[.!?])\s+(?=[*_]{1,3}[A-Z0-9])")


def marker_numbers(marker_body: str) -> list[int]:
    """Numbers inside one bracket: '1, 3' -> [1, 3]; '2-4' -> [2, 3, 4]."""
    numbers: list[int] = []
    for part in re.split(r"[,;]", marker_body):
        bounds = [int(x) for x in re.split(r"[-–]", part) if x.strip().isdigit()]
        if not bounds:
            continue
        low, high = bounds[0], bounds[-1]
        # A reversed or huge range is not a real citation range; keep just its ends.
        span = range(low, high + 1) if 0 <= high - low <= 20 else (low, high)
        numbers.extend(n for n in span if n not in numbers)
    return numbers


def cited_numbers(text: str) -> list[int]:
    """Every number the markers in ``text`` cite, in order, once.

    Example: ``cited_numbers("A [2]. B [1-2].") == [2, 1]``
    """
    numbers: list[int] = []
    for match in MARKER.finditer(text):
        _merge(numbers, marker_numbers(match.group(1)))
    return numbers


def _merge(target: list[int], numbers: list[int]) -> None:
    target.extend(n for n in numbers if n not in target)


def parse_citations(text: str) -> list[tuple[str, list[int]]]:
    """Split an answer into sentences, each with the citation numbers it carries (in order, unique).

    A marker that opens a sentence (after the previous sentence's full stop) belongs to that previous one.
    Example: ``parse_citations("Gallium is controlled [1][3].")  # [("Gallium is controlled [1][3].", [1, 3])]``
    """
    pieces: list[tuple[str, list[int]]] = []
    for start, end in split_sentences(text):
        for sentence in _EMPHASIS_START.split(text[start:end]):
            leading = _LEADING_MARKERS.match(sentence)
            if leading and pieces:
                _merge(pieces[-1][1], cited_numbers(leading.group(0)))
                pieces[-1] = (pieces[-1][0] + " " + leading.group(0).strip(), pieces[-1][1])
                sentence = sentence[leading.end():].strip()
                if not sentence:
                    continue
            if pieces and not re.search(r"\w", sentence):  # "9 a.m. [1]." leaves "." behind: it ends the last one
                pieces[-1] = (pieces[-1][0] + sentence, pieces[-1][1])
                continue
            pieces.append((sentence, cited_numbers(sentence)))
    return pieces


def drop_invalid_citations(text: str, valid: set[int]) -> str:
    """Remove citation numbers that point at no given source; drop brackets left empty.

    Example: ``drop_invalid_citations("A [1, 7].", {1}) == "A [1]."``
    """

    def keep(match: re.Match) -> str:
        kept = [n for n in marker_numbers(match.group(1)) if n in valid]
        return "".join(f"[{n}]" for n in dict.fromkeys(kept))

    cleaned = MARKER.sub(keep, text)
    return re.sub(r"[ \t]+([.,;:!?。、，！？；：])", r"\1", cleaned).strip()


def neutralise_markers(text: str) -> str:
    """Document text with its own bracketed numbers as (n), so a quote cannot pose as a citation.

    Example: ``neutralise_markers("see [2]") == "see (2)"``
    """
    return MARKER.sub(lambda m: f"({m.group(1)})", text)


def strip_markers(text: str) -> str:
    """The text without citation markers (and the space before them), whitespace collapsed.

    Example: ``strip_markers("It rose [2].") == "It rose."``
    """
    return re.sub(r"\s+", " ", re.sub(r"\s*" + MARKER.pattern, "", text or "")).strip()


# ---------------------------------------------------------------- normalisation

# Typographic quotes and dashes differ between a copied quote and a loaded file far more often than
# the words do, so they are folded before any comparison.
_FOLD = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u00a0": " ",
})
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """The form texts are compared in: Unicode NFKC, quotes and dashes straight, whitespace collapsed, case folded.

    Example: ``normalise("Beijing’s  RARE\\nmetals") == "beijing's rare metals"``
    """
    text = unicodedata.normalize("NFKC", text or "").translate(_FOLD)
    return _SPACES.sub(" ", text).strip().casefold()
