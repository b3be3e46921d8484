"""Sentence-aware chunking sized in the embedding model's tokens, keeping each chunk's char span.

Example: ``chunk_text(doc.text, token_lengths, max_tokens=160, overlap_tokens=32)``
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .text import split_sentences, trim_span

# Bump when the splitting rules change (here or rag/text.py's split_sentences): the manifest records it,
# so old indexes are rebuilt, not mixed.
SPLITTER_VERSION = 2

# An unbroken run of non-space characters longer than a chunk (a base64 blob, a 5 MB "word") is cut into
# pieces of this many characters per token of the budget, before tokenizing: WordPiece reads a word over
# 100 characters as one [UNK] token, so token counts alone would pack the whole run into one chunk.
_RUN_CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class Chunk:
    """A span of one document's text; ``text == document.text[start:end]``."""

    chunk_id: str
    doc_id: str
    position: int
    start: int
    end: int
    n_tokens: int
    text: str


def vector_id(chunk_id: str) -> int:
    """Stable positive int64 for FAISS, derived from the chunk id (so it survives rebuilds)."""
    return int.from_bytes(hashlib.blake2b(chunk_id.encode(), digest_size=8).digest(), "big") >> 1


TokenOffsets = Callable[[Sequence[str]], list[list[tuple[int, int]]]]


def chunk_text(
    doc_id: str, text: str, token_offsets: TokenOffsets, max_tokens: int, overlap_tokens: int,
) -> list[Chunk]:
    """Pack whole sentences into chunks of at most ``max_tokens`` tokens, repeating up to
    ``overlap_tokens`` tokens of trailing sentences at the start of the next chunk.

    ``token_offsets(texts)`` returns, per text, the char offsets of its tokens (the model's tokenizer);
    a sentence longer than ``max_tokens`` is cut at token boundaries.
    """
    units = _token_units(text, split_sentences(text), token_offsets, max_tokens)
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and total + units[j][2] <= max_tokens:
            total += units[j][2]
            j += 1
        start, end = units[i][0], units[j - 1][1]
        chunk_id = f"{doc_id}-{len(chunks):05d}"
        chunks.append(Chunk(chunk_id, doc_id, len(chunks), start, end, total, text[start:end]))
        if j >= len(units):
            break
        i = _overlap_start(units, i, j, overlap_tokens)
    return chunks


def _token_units(
    text: str, spans: list[tuple[int, int]], token_offsets: TokenOffsets, max_tokens: int,
) -> list[tuple[int, int, int]]:
    """(start, end, n_tokens) per sentence; over-long sentences are cut into max_tokens pieces."""
    pieces = _cut_long_runs(text, spans, max_tokens)
    units: list[tuple[int, int, int]] = []
    # Tokenized a slice at a time: a 25 MB file's offsets all at once would take gigabytes.
    for begin in range(0, len(pieces), _TOKENIZE_SLICE):
        units.extend(_slice_units(text, pieces[begin:begin + _TOKENIZE_SLICE], token_offsets, max_tokens))
    return units


_TOKENIZE_SLICE = 2048


def _slice_units(text: str, pieces: list[tuple[int, int, int]], token_offsets: TokenOffsets,
                 max_tokens: int) -> list[tuple[int, int, int]]:
    offsets = token_offsets([text[s:e] for s, e, _ in pieces])
    units = []
    for (start, end, least), sentence_offsets in zip(pieces, offsets):
        if len(sentence_offsets) <= max_tokens:
            units.append((start, end, max(1, least, len(sentence_offsets))))
            continue
        for k in range(0, len(sentence_offsets), max_tokens):
            piece = sentence_offsets[k:k + max_tokens]
            piece_end = start + piece[-1][1] if k + max_tokens < len(sentence_offsets) else end
            units.append((start + piece[0][0], piece_end, len(piece)))
    return units


def _cut_long_runs(text: str, spans: list[tuple[int, int]], max_tokens: int) -> list[tuple[int, int, int]]:
    """(start, end, least n_tokens) per span; runs of non-space characters longer than a chunk become
    chunk-sized pieces that count as a full chunk each. Example: a 5,000,000-character word -> 7,813 pieces."""
    size = max_tokens * _RUN_CHARS_PER_TOKEN
    long_run = re.compile(rf"\S{{{size + 1},}}")
    pieces: list[tuple[int, int, int]] = []
    for start, end in spans:
        cursor = start
        for match in (long_run.finditer(text, start, end) if end - start > size else ()):
            pieces.extend((s, e, 0) for s, e in [trim_span(text, cursor, match.start())] if e > s)
            for at in range(match.start(), match.end(), size):
                stop = min(at + size, match.end())
                pieces.append((at, stop, -(-(stop - at) // _RUN_CHARS_PER_TOKEN)))
            cursor = match.end()
        pieces.extend((s, e, 0) for s, e in [trim_span(text, cursor, end)] if e > s)
    return pieces


def _overlap_start(units: list[tuple[int, int, int]], i: int, j: int, overlap_tokens: int) -> int:
    """First unit of the next chunk: step back over trailing units that fit the overlap budget."""
    k, carried = j, 0
    while k - 1 > i and carried + units[k - 1][2] <= overlap_tokens:
        carried += units[k - 1][2]
        k -= 1
    return k
