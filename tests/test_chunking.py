"""Chunking: sentence spans, token budgets, overlap, exact character spans."""
from __future__ import annotations

import pytest

from rag.chunking import PieceCounts, chunk_text, vector_id
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


def _mixed_texts() -> list[str]:
    """Prose, and what makes whitespace and tokens disagree: control chars, odd spaces, CJK, long words."""
    odd = ["\x1c", "\x1f", "\x85", "\x0b", "\x0c", "\u00a0", "\u2028", "\u3000", "\u200b", "\ufeff", "東京都で",
           "Ｉｇｎ", "[MASK]", "##ing", "x" * 130, "e\u0301", "ﬁ", "İ", "😀", "\x00", "\ufffd", "Dr.", "Jan."]
    words = ["Otters", "eat", "fish.", "The", "1990s", "U.S.", "(a)", "“q”", "well-known", *odd]
    # BERT drops these control chars and joins the words around them ("otters\x1ceat" is 3 tokens, not 2).
    joined = " ".join(f"Otters{c}eat fish{c}daily." for c in "\x1c\x1f\x85\x0b\x0c" * 8)
    texts = [SEED_FILE.read_text(encoding="utf-8"), "word " * 700, joined]
    for n in range(120):
        picked = [words[(n * 7 + i * i) % len(words)] for i in range(20 + n)]
        glued = "".join(w + ["\n", ". ", " ", ""][i % 4] for i, w in enumerate(picked))
        texts.append(" ".join(picked) if n % 2 else glued)
    return texts


def test_piece_counts_give_the_same_chunks_as_the_tokenizer(embedder):
    counter = PieceCounts.for_tokenizer(embedder.tokenizer, token_offsets(embedder))
    assert isinstance(counter, PieceCounts)  # the bundled model is BERT WordPiece
    for text in _mixed_texts():
        for max_tokens, overlap in [(160, 32), (30, 8)]:
            expected = chunk_text("d", text, token_offsets(embedder), max_tokens, overlap)
            assert chunk_text("d", text, counter, max_tokens, overlap) == expected, text[:80]
    assert 0 < len(counter.known) < 2000
    sentences = ["Otters eat fish.", "Otters\x1ceat fish.", "東京都で Otters\u00a0eat.", "x" * 130]
    counts = counter.counts(sentences)
    assert counts[1] is None and all(n == len(o) for n, o in zip(counts, token_offsets(embedder)(sentences)) if n)


def test_piece_counts_only_for_bert_tokenizers():
    offsets = lambda texts: [[(0, len(t))] for t in texts]  # noqa: E731
    assert PieceCounts.for_tokenizer(object(), offsets) is offsets


def test_fast_sentence_ends_match_the_pattern():
    from rag.text import _SENTENCE_END, _sentence_ends

    texts = _mixed_texts() + ["「はい。」と答えた。次！東京!そう? Yes. ．5 Ｘ．Y 。Next", "A.\"B\" c! D… E"]
    for text in texts:
        for start, end in [(0, len(text)), (1, len(text) - 1), (3, len(text) // 2)]:
            expected = [m.span() for m in _SENTENCE_END.finditer(text, start, end)]
            assert [m.span() for m in _sentence_ends(text, start, end)] == expected


def test_title_prefix_is_the_same_with_piece_counts(embedder):
    from rag.streaming import title_prefix

    counter = PieceCounts.for_tokenizer(embedder.tokenizer, token_offsets(embedder))
    titles = ["Otters", " Sea otters of Monterey Bay ", "A very long title " * 6, "Otters\x1ceat", "\u200b", "東京の川"]
    for title in titles:
        assert title_prefix(title, embedder, 8, counter) == title_prefix(title, embedder, 8), title
