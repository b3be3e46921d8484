"""An index kept in Milvus behaves as one kept in FAISS: incremental ingest, prune, identical content once,
mismatched settings refused, rebuilds through a new collection and the alias, a writer killed mid-ingest
leaves the last commit, and the seed eval gate gives the same figures."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from rag import Assistant, IndexCorruptError, IndexMismatchError, Settings
from rag.evaluation import evaluate_and_report
from rag.index import Index
from rag.ingest import ingest
from rag.storage import current_generation
from rag.stores.milvus import MilvusStore, _alias_target, client

from conftest import ROOT, SEED_FILE, SEEDS
from test_milvus import server_uri  # noqa: F401  (the module's Milvus Lite server)

pytestmark = pytest.mark.slow
EVALSET = ROOT / "evals" / "seed.jsonl"


def _corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SEED_FILE, folder / "seed.txt")
    (folder / "notes.md").write_text("# Gallium notes\n\nGallium is used in LEDs and in radar chips.\n")
    (folder / "tea.txt").write_text("Green tea is grown in Shizuoka. The harvest starts in April.\n")
    return folder


def _settings(index_dir: Path, **kwargs) -> Settings:
    return Settings(index=index_dir, vector_store="milvus", **kwargs)


def _record(index_dir: Path) -> dict:
    return json.loads((current_generation(index_dir) / MilvusStore.FILE).read_text())


def _rows(index_dir: Path) -> list[dict]:
    """Every physical row of the index's live collection, committed or not."""
    record = _record(index_dir)
    uri = record["uri"] if "://" in record["uri"] else str(index_dir / record["uri"])
    return client(uri).query(record["collection"], filter="gen >= 0", output_fields=["vid", "gen", "text", "doc_id",
                                                                                      "span_start", "span_end"])


def test_ingest_is_incremental_and_keeps_text_and_spans_in_milvus(tmp_path):
    corpus, index_dir = _corpus(tmp_path / "docs"), tmp_path / "idx"
    first, index = ingest([corpus], index_dir, _settings(index_dir))
    assert (index_dir / "milvus.db").is_dir(), "a Milvus Lite database inside the index folder by default"
    assert index.manifest["vector_store"] == "milvus" and index.manifest["vector_location"]["collection"]
    by_vid = {r["vid"]: r for r in _rows(index_dir)}
    chunk = index.chunks[0]
    row = by_vid[next(v for v, p in index.position_of_vid.items() if p == 0)]
    assert (row["doc_id"], row["span_start"], row["span_end"], row["text"]) == \
        (chunk.doc_id, chunk.start, chunk.end, chunk.text)
    generation = (index_dir / "CURRENT").read_text()
    again, _ = ingest([corpus], index_dir, _settings(index_dir))
    assert again.chunks_embedded == 0 and (index_dir / "CURRENT").read_text() == generation
    (corpus / "tea.txt").write_text("Black tea is grown in Assam. The harvest starts in March.\n")
    (corpus / "notes.md").unlink()
    shutil.copy(corpus / "seed.txt", corpus / "seed-copy.txt")
    report, _ = ingest([corpus], index_dir, _settings(index_dir), prune=True)
    assert report.chunks_embedded == 1 and report.duplicates == [str((corpus / "seed-copy.txt").resolve())]
    reopened = Assistant.open(index_dir, _settings(index_dir))
    assert len(reopened.index.store) == len(reopened.index.chunks) == first.chunks - 1
    assert "Assam" in reopened.retrieve("Where is black tea grown?", k=1)[0].text
    assert not any("Gallium" in c.text for c in reopened.retrieve("What is gallium used in?", k=5))


def test_an_index_is_opened_only_with_its_store_and_model(tmp_path):
    corpus, index_dir = _corpus(tmp_path / "docs"), tmp_path / "idx"
    ingest([corpus], index_dir, _settings(index_dir))
    with pytest.raises(IndexMismatchError, match="keeps its vectors in the store 'milvus'"):
        Index.load(index_dir, Settings(index=index_dir))
    with pytest.raises(IndexMismatchError, match="embedding model"):
        Index.load(index_dir, _settings(index_dir, embed_model="sentence-transformers/other"))
    with pytest.raises(IndexMismatchError, match="Milvus Lite database .*milvus.db, but RAG_MILVUS_URI is http"):
        Index.load(index_dir, _settings(index_dir, milvus_uri="http://127.0.0.1:1"))


def test_a_rebuild_fills_a_new_collection_and_moves_the_alias(tmp_path, server_uri):  # noqa: F811
    corpus, index_dir = _corpus(tmp_path / "docs"), tmp_path / "idx"
    settings = _settings(index_dir, milvus_uri=server_uri)
    ingest([corpus], index_dir, settings)
    first = _record(index_dir)
    assert first["uri"] == server_uri and _alias_target(client(server_uri), first["alias"]) == first["collection"]
    (corpus / "tea.txt").unlink()
    ingest([corpus], index_dir, settings, rebuild=True)
    second = _record(index_dir)
    assert second["alias"] == first["alias"] and second["collection"] != first["collection"]
    assert _alias_target(client(server_uri), second["alias"]) == second["collection"]
    ingest([corpus], index_dir, settings, rebuild=True)
    names = client(server_uri).list_collections()
    assert first["collection"] not in names and second["collection"] in names, "one older collection kept"


_KILL_MID_WRITE = """
import os, signal, sys
from pathlib import Path
from rag import Settings
from rag.ingest import ingest
from rag.stores import milvus

calls = 0
insert = milvus.MilvusStore._insert_rows

def insert_then_die(self, rows):
    global calls
    insert(self, rows)
    calls += 1
    if calls == 1:  # rows are in Milvus, the generation naming them is not written: the worst moment
        os.kill(os.getpid(), signal.SIGKILL)

milvus.MilvusStore._insert_rows = insert_then_die
index_dir = Path(sys.argv[1])
ingest([sys.argv[2]], index_dir, Settings(index=index_dir, vector_store="milvus", milvus_uri=sys.argv[3]),
       rebuild=sys.argv[4] == "rebuild")
"""


@pytest.mark.parametrize("mode", ["incremental", "rebuild"])
def test_a_writer_killed_mid_ingest_leaves_the_last_commit(tmp_path, server_uri, mode):  # noqa: F811
    corpus, index_dir = _corpus(tmp_path / "docs"), tmp_path / "idx"
    settings = _settings(index_dir, milvus_uri=server_uri)
    _, before = ingest([corpus], index_dir, settings)
    committed = _record(index_dir)
    (corpus / "tea.txt").write_text("Black tea is grown in Assam. The harvest starts in March.\n")
    child = subprocess.run([sys.executable, "-c", _KILL_MID_WRITE, str(index_dir), str(corpus), server_uri, mode],
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert child.returncode == -9, child.stderr[-2000:]
    assert _record(index_dir) == committed
    assert _alias_target(client(server_uri), committed["alias"]) == committed["collection"]
    reopened = Assistant.open(index_dir, settings)
    assert [c.chunk_id for c in reopened.index.chunks] == [c.chunk_id for c in before.chunks]
    assert "Shizuoka" in reopened.retrieve("Where is green tea grown?", k=1)[0].text
    assert not any("Assam" in c.text for c in reopened.retrieve("Where is black tea grown?", k=10))
    assert not any(k.search("Assam", 10)[0].size for k in (reopened.index.keyword, reopened.index.context_keyword))
    report, after = ingest([corpus], index_dir, settings)  # the next writer finishes the job and tidies up
    assert report.updated and "Assam" in " ".join(c.text for c in after.chunks)
    assert len(_rows(index_dir)) == len(after.chunks) + report.chunks_removed, "dead writer's rows deleted"


def test_the_seed_gate_gives_the_same_figures_on_both_stores(seed_assistant, tmp_path):
    folder = tmp_path / "milvus-seed"
    on_milvus = Assistant.build([SEEDS], index_dir=folder, settings=_settings(folder, answerer="extractive"))
    faiss_result, _ = evaluate_and_report(seed_assistant, EVALSET)
    milvus_result, _ = evaluate_and_report(on_milvus, EVALSET)
    figures = milvus_result.to_dict(include_timings=False)["metrics"]
    assert figures == faiss_result.to_dict(include_timings=False)["metrics"] and figures["questions"] >= 40


def test_an_index_moves_to_milvus_and_answers_the_same(seed_index_copy):
    from rag.stores.move import move_index

    questions = ["When did China impose the rare metals controls?", "Who met in Tokyo?", "What is gallium used for?"]
    on_faiss = Assistant.open(seed_index_copy, Settings(index=seed_index_copy))
    expected = [[(c.doc_id, c.start, c.end) for c in on_faiss.retrieve(q, k=4)] for q in questions]
    moved, _ = move_index(seed_index_copy, _settings(seed_index_copy))
    assert len(moved.store) == len(on_faiss.index.chunks) and moved.manifest["vector_store"] == "milvus"
    on_milvus = Assistant.open(seed_index_copy, _settings(seed_index_copy))
    assert [[(c.doc_id, c.start, c.end) for c in on_milvus.retrieve(q, k=4)] for q in questions] == expected
    with pytest.raises(IndexMismatchError, match="store 'milvus'"):
        Assistant.open(seed_index_copy, Settings(index=seed_index_copy))


def test_a_collection_dropped_on_the_server_is_named_and_the_next_ingest_restores_it(tmp_path):
    corpus, index_dir = _corpus(tmp_path / "docs"), tmp_path / "idx"
    _, before = ingest([corpus], index_dir, _settings(index_dir))
    record = _record(index_dir)
    client(str(index_dir / record["uri"])).drop_collection(record["collection"])
    with pytest.raises(IndexCorruptError, match=f"collection {record['collection']} .* is missing"):
        Assistant.open(index_dir, _settings(index_dir))
    report, _ = ingest([corpus], index_dir, _settings(index_dir))
    assert report.chunks_embedded == len(before.chunks) and any("repaired" in note for note in report.notes)
    restored = Assistant.open(index_dir, _settings(index_dir))
    assert "Shizuoka" in restored.retrieve("Where is green tea grown?", k=1)[0].text
