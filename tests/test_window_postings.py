"""Counting each document's text once for both keyword indexes gives exactly the counts of tokenizing every
chunk and every context window whole."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from rag.chunking import Chunk
from rag.keyword import chunk_texts, context_texts, keyword_postings
from rag.keyword_terms import postings_of, window_postings

from conftest import SEEDS

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "scifact" / "corpus.jsonl.gz"


def _chunked(doc_id: str, text: str, size: int, overlap: int) -> list[Chunk]:
    """Chunks of about ``size`` words sharing ``overlap`` words, cut at spaces (as sentence packing cuts)."""
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == " "]
    chunks, first, position = [], 0, 0
    while first < len(starts):
        last = min(first + size, len(starts))
        end = starts[last] - 1 if last < len(starts) else len(text)
        chunks.append(Chunk(f"{doc_id}-{position:05d}", doc_id, position, starts[first], end, size, ""))
        if last == len(starts):
            break
        first, position = max(last - overlap, first + 1), position + 1
    return [Chunk(c.chunk_id, c.doc_id, c.position, c.start, c.end, c.n_tokens, text[c.start:c.end]) for c in chunks]


def _corpus() -> tuple[list[Chunk], dict[str, str], dict[str, str]]:
    texts = {"seed": " ".join(p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))),
             "mixed": "Gallium 輸出 controls ＡＢＣ exports.\n\nThe ΟΔΟΣ road, the the a an; 東京の港は広い。 End",
             "short": "Ports."}
    rng = np.random.default_rng(3)
    words = ["port", "ports", "the", "Exports", "gallium", "graphite", "a", "licence", "licences", "was", "of"]
    for number in range(30):  # repeated terms, stop words, stems shared across words
        texts[f"synthetic{number}"] = " ".join(rng.choice(words, 200)) + "."
    if SCIFACT.exists():  # real abstracts where the shared benchmarks are at hand
        with gzip.open(SCIFACT, "rt", encoding="utf-8") as handle:
            for number, line in zip(range(40), handle):
                row = json.loads(line)
                texts[f"sci{number}"] = row["text"]
    titles = {doc_id: f"Title of {doc_id} exports" for doc_id in texts}
    chunks = [c for doc_id, text in texts.items() for c in _chunked(doc_id, text, 25, 6)]
    return chunks, titles, texts


def _same(a, b) -> bool:
    dense = lambda p: {(p.terms[t], int(c)): int(n) for t in range(len(p.terms))  # noqa: E731
                       for c, n in zip(p.chunks[p.indptr[t]:p.indptr[t + 1]], p.counts[p.indptr[t]:p.indptr[t + 1]])}
    return a.terms == b.terms and np.array_equal(a.lengths, b.lengths) and dense(a) == dense(b)


@pytest.mark.parametrize("context", [False, True], ids=["chunks", "contexts"])
def test_counting_each_document_once_equals_tokenizing_every_window(context):
    chunks, titles, texts = _corpus()
    whole = postings_of(context_texts(chunks, titles, texts) if context else chunk_texts(chunks, titles))
    assert _same(keyword_postings(chunks, titles, texts, context), whole)
    assert len(chunks) > 100


def test_a_cut_inside_a_word_falls_back_to_whole_windows():
    text = "Unbrokenrunofletters continues here."
    assert window_postings([("d", 0, 8, 0), ("d", 8, len(text), 1)], {"d": text}, {"d": "T"}) is None
    chunks = [Chunk("d-00000", "d", 0, 0, 8, 2, text[:8]), Chunk("d-00001", "d", 1, 8, len(text), 4, text[8:])]
    assert _same(keyword_postings(chunks, {"d": "T"}, {"d": text}, True),
                 postings_of(context_texts(chunks, {"d": "T"}, {"d": text})))
