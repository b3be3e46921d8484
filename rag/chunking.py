"""Sentence-aware chunking sized in the embedding model's tokens, keeping each chunk's char span.

Example: ``chunk_text(doc.text, token_lengths, max_tokens=160, overlap_tokens=32)``
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

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
    texts = [text[s:e] for s, e, _ in pieces]
    counts = token_offsets.counts(texts) if isinstance(token_offsets, PieceCounts) else [None] * len(texts)
    # Offsets only where the count is unknown or the sentence must be cut at token boundaries.
    wanted = [k for k, n in enumerate(counts) if n is None or n > max_tokens]
    offsets = dict(zip(wanted, token_offsets([texts[k] for k in wanted]))) if wanted else {}
    units: list[tuple[int, int, int]] = []
    for k, (start, end, least) in enumerate(pieces):
        n_tokens = len(offsets[k]) if k in offsets else counts[k]
        assert n_tokens is not None  # every piece without a count is in `wanted`, so in `offsets`
        if n_tokens <= max_tokens:
            units.append((start, end, max(1, least, n_tokens)))
            continue
        sentence_offsets = offsets[k]
        for at in range(0, len(sentence_offsets), max_tokens):
            piece = sentence_offsets[at:at + max_tokens]
            piece_end = start + piece[-1][1] if at + max_tokens < len(sentence_offsets) else end
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


# C0 and C1 control chars (but tab and line breaks): BERT's normaliser drops them, where str.split() may split.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_PIECE_CACHE = 200_000  # distinct pieces remembered (about 30 MB); past that the memory starts afresh
_LONG_PIECE = 64  # longer pieces are rare and not remembered


class PieceCounts:
    """A tokenizer's offsets (called like ``token_offsets``) plus token counts found piece by piece: a text's
    count is the sum of the counts of its whitespace-separated pieces, each distinct piece tokenized once.
    Exact for BERT WordPiece tokenizers (``for_tokenizer`` checks), whose tokens never cross whitespace and
    whose normaliser reads each char alone; texts with control chars are left to the tokenizer whole.

    Example: ``chunk_text(doc_id, text, PieceCounts.for_tokenizer(enc.tokenizer, enc.token_offsets), 160, 32)``
    """

    def __init__(self, token_offsets: TokenOffsets):
        self.token_offsets = token_offsets
        self.known: dict[str, int] = {}

    @classmethod
    def for_tokenizer(cls, tokenizer, token_offsets: TokenOffsets) -> PieceCounts | TokenOffsets:
        """A PieceCounts when ``tokenizer`` is BERT's (normaliser, pre-tokenizer and WordPiece), else
        ``token_offsets`` itself."""
        from tokenizers import models, normalizers, pre_tokenizers

        backend = getattr(tokenizer, "backend_tokenizer", None)
        bert = backend is not None and (isinstance(backend.model, models.WordPiece)
                                        and isinstance(backend.normalizer, normalizers.BertNormalizer)
                                        and isinstance(backend.pre_tokenizer, pre_tokenizers.BertPreTokenizer))
        return cls(token_offsets) if bert else token_offsets

    def __call__(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return self.token_offsets(texts)

    def counts(self, texts: Sequence[str]) -> list[int | None]:
        """Per text its number of tokens, or None for a text with control chars."""
        split = [None if _CONTROL.search(t) else t.split() for t in texts]
        known, distinct = self.known, set(chain.from_iterable(pieces for pieces in split if pieces))
        if len(known) + len(distinct) > _PIECE_CACHE:
            known.clear()
        missing = list(distinct.difference(known))
        if missing:
            known.update(zip(missing, self._piece_counts(missing)))
        counts = [None if pieces is None else sum(map(known.__getitem__, pieces)) for pieces in split]
        for piece in missing:
            if len(piece) > _LONG_PIECE:
                del known[piece]
        return counts

    def _piece_counts(self, pieces: list[str]) -> list[int]:
        """Token counts of pieces, tokenized as one text with a space between them (far faster than one
        text each): tokens never cross the spaces, so each token starts inside exactly one piece."""
        joined = " ".join(pieces)
        starts = np.fromiter((start for start, _ in self.token_offsets([joined])[0]), dtype=np.int64)
        bounds = np.cumsum([0] + [len(piece) + 1 for piece in pieces])
        return np.diff(np.searchsorted(starts, bounds)).tolist()
