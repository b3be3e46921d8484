"""Chunking: sentence spans, token budgets, overlap, exact character spans."""
from __future__ import annotations

import pytest

from rag.chunking import chunk_text, vector_id
from rag.config import Settings
from rag.embedding import get_embedder
from rag.ingest import token_offsets
from rag.text import split_sentences

from conftest import SEED_FILE


@pytest.fixture(scope="module")
def embedder():
    return get_embedder(Settings().embed_model)


def test_split_sentences_spans_are_exact_and_trimmed():
    text = "  First one. Second, with Dr. Smith here!  Third?\n\nHeading\nNext para line."
    spans = split_sentences(text)
    pieces = [text[s:e] for s, e in spans]
    assert pieces == ["First one.", "Second, with Dr. Smith here!", "Third?", "Heading", "Next para line."]


def test_split_sentences_empty_and_blank():
    assert split_sentences("") == []
    assert split_sentences(" \n\n \t") == []


def test_split_keeps_quotes_with_their_sentence():
    text = "He said ‘no’. ‘We will act,’ she said. Then left."
    assert [text[s:e] for s, e in split_sentences(text)] == ["He said ‘no’.", "‘We will act,’ she said.", "Then left."]


def test_chunks_fit_the_window_and_spans_match(embedder):
    text = SEED_FILE.read_text(encoding="utf-8")
    chunks = chunk_text("doc", text, token_offsets(embedder), max_tokens=60, overlap_tokens=20)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.text == text[chunk.start:chunk.end]
        assert embedder.count_tokens(chunk.text) <= 60
    # Every sentence of the document lands in some chunk: nothing is lost.
    for s, e in split_sentences(text):
        assert any(c.start <= s and e <= c.end for c in chunks) or any(c.start < e and s < c.end for c in chunks)
    assert chunks[-1].end == len(text.rstrip())


def test_overlap_repeats_trailing_sentences(embedder):
    text = " ".join(f"Sentence number {i} is short." for i in range(40))
    chunks = chunk_text("d", text, token_offsets(embedder), max_tokens=40, overlap_tokens=16)
    assert all(b.start < a.end for a, b in zip(chunks, chunks[1:])), "consecutive chunks overlap"
    assert all(b.start > a.start for a, b in zip(chunks, chunks[1:])), "chunking always advances"


def test_overlong_sentence_is_cut_at_token_boundaries(embedder):
    text = "word " * 700
    chunks = chunk_text("d", text.strip(), token_offsets(embedder), max_tokens=100, overlap_tokens=10)
    assert len(chunks) >= 7
    assert all(embedder.count_tokens(c.text) <= 100 for c in chunks)
    assert chunks[0].start == 0 and chunks[-1].end == len(text.strip())


def test_chunk_ids_are_stable_and_vector_ids_positive():
    offsets = lambda texts: [[(0, len(t))] for t in texts]  # noqa: E731  one token per sentence
    a = chunk_text("abc", "One two three. Four five six.", offsets, 5, 0)
    b = chunk_text("abc", "One two three. Four five six.", offsets, 5, 0)
    assert [c.chunk_id for c in a] == [c.chunk_id for c in b]
    assert all(0 < vector_id(c.chunk_id) < 2**63 for c in a)
