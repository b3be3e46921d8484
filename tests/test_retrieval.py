"""Hybrid retrieval on real indexes (FAISS and Milvus): filters, near-duplicate collapsing, keyword/dense
agreement."""
from __future__ import annotations

import pytest

from rag import Assistant, Filters, Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["faiss", "milvus"])
def assistant(tmp_path_factory, request):
    """The same documents indexed in each vector store: every test below runs on both."""
    docs = tmp_path_factory.mktemp("docs")
    (docs / "a-2021.md").write_text("---\ntitle: Harbour report\ndate: 2021-03-01\n---\n\n"
                                    "The harbour of Velmar handles grain and coal. Its cranes were renewed in 2020.\n")
    (docs / "b-2024.md").write_text("---\ntitle: Airport report\ndate: 2024-06-10\n---\n\n"
                                    "The airport of Velmar handles cargo flights. Its runway was extended in 2023.\n")
    boiler = "Subscribe to our newsletter for weekly shipping news about Velmar and its harbour cranes."
    (docs / "c.txt").write_text(f"Notice one\n\n{boiler}\n")
    (docs / "d.txt").write_text(f"Notice two\n\n{boiler}\n")
    index = tmp_path_factory.mktemp("idx") / "index"
    return Assistant.build([docs], index_dir=index, settings=Settings(index=index, vector_store=request.param))


def test_source_and_date_filters(assistant):
    only_b = assistant.retrieve("What does Velmar handle?", k=5, filters=Filters(source="b-2024"))
    assert only_b and all("b-2024" in p.source for p in only_b)
    recent = assistant.retrieve("What does Velmar handle?", k=5, filters=Filters(date_from="2022-01-01"))
    assert recent and all(p.date >= "2022-01-01" for p in recent)
    assert assistant.retrieve("Velmar", k=5, filters=Filters(source="no-such-file")) == []


def test_near_duplicate_passages_are_shown_once(assistant):
    passages = assistant.retrieve("newsletter weekly shipping news", k=5)
    boiler = [p for p in passages if "newsletter" in p.text]
    assert len(boiler) == 1


def test_exact_keyword_match_ranks_first(assistant):
    passages = assistant.retrieve("runway extended", k=3)
    assert "runway" in passages[0].text
