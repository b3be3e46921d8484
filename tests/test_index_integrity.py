"""Index safety: corrupt and mismatched files, the writer lock, and kill -9 in the middle of an ingest."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rag import Assistant, IndexCorruptError, IndexLockedError, IndexMismatchError, IndexNotFoundError, Settings
from rag.index import Index
from rag.storage import IndexLock, current_generation

from conftest import ROOT, SEEDS, write_unsealed_manifest


def test_missing_index_says_how_to_build(tmp_path):
    with pytest.raises(IndexNotFoundError, match="rag ingest"):
        Index.load(tmp_path / "nothing", Settings())


@pytest.mark.parametrize("name", ["vectors/part-*.faiss", "vectors/parts.json", "docstore/part-*.sqlite",
                                  "manifest.json"])
def test_corrupt_files_are_named_and_left_alone(seed_index_copy, name):
    target = next(current_generation(seed_index_copy).glob(name))
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2] + b"\x00garbage")
    damaged = target.read_bytes()
    with pytest.raises(IndexCorruptError, match=target.name):
        Index.load(seed_index_copy, Settings())
    assert target.read_bytes() == damaged, "opening never overwrites"


def test_other_model_or_format_is_refused_with_rebuild_hint(seed_index_copy):
    manifest_path = current_generation(seed_index_copy) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        Index.load(seed_index_copy, Settings(embed_model="/models/other"))
    manifest["format_version"] = 999
    write_unsealed_manifest(manifest_path.parent, manifest)
    with pytest.raises(IndexMismatchError, match="format version 999"):
        Index.load(seed_index_copy, Settings())


def test_dimension_mismatch_is_corruption(seed_index_copy):
    manifest_path = current_generation(seed_index_copy) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["dimension"] = 768
    write_unsealed_manifest(manifest_path.parent, manifest)
    with pytest.raises(IndexCorruptError, match="dimension"):
        Index.load(seed_index_copy, Settings())


def test_second_writer_waits_then_fails_clearly(tmp_path):
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with IndexLock(tmp_path, timeout=1):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    try:
        with pytest.raises(IndexLockedError, match="Another process"):
            with IndexLock(tmp_path, timeout=0.3):
                pass
    finally:
        release.set()
        thread.join()
    with IndexLock(tmp_path, timeout=1):
        pass  # free again once the first writer is done


def _big_corpus(folder: Path, files: int) -> Path:
    folder.mkdir()
    base = (SEEDS / "000_003981b1cdb900f2.txt").read_text()
    for i in range(files):
        (folder / f"doc{i:03d}.txt").write_text(f"Report number {i}.\n\n" + base.replace("fifth", f"run {i}"))
    return folder


# `rag ingest`, paused (to be killed) once its new generation is written and only the pointer swap is left.
_INGEST_SCRIPT = """
import os, sys, time
real_replace = os.replace
def paused_replace(src, dst):
    if os.path.basename(dst) == "CURRENT":
        print("COMMITTING", flush=True)
        time.sleep(60)
    real_replace(src, dst)
os.replace = paused_replace
from rag.cli import main
sys.argv = ["rag", "ingest", sys.argv[1], "--index", sys.argv[2], "--json"]
main()
"""


@pytest.mark.slow
def test_kill_9_mid_ingest_keeps_previous_index(tmp_path):
    """End to end through `rag ingest`; test_integrity.py kills a storage-level writer at random points."""
    index_dir = tmp_path / "idx"
    Assistant.build([_big_corpus(tmp_path / "a", 1)], index_dir=index_dir, settings=Settings(index=index_dir))
    before = Index.load(index_dir, Settings()).stats(index_dir)
    bigger = _big_corpus(tmp_path / "b", 3)

    proc = subprocess.Popen([sys.executable, "-c", _INGEST_SCRIPT, str(bigger), str(index_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "COMMITTING"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(list(index_dir.glob("gen-*"))) == 2, "the new generation was written, never made live"
    after_kill = Index.load(index_dir, Settings())
    assert after_kill.stats(index_dir)["chunks"] == before["chunks"]
    assert len(after_kill.store) == len(after_kill.chunks)

    # The next ingest cleans up the leftovers and completes.
    Assistant.build([bigger], index_dir=index_dir, settings=Settings(index=index_dir))
    final = Index.load(index_dir, Settings())
    assert final.stats()["paths"] == 4
    assert len(final.documents) == 3, "a/doc000 has the same content as b/doc000: stored once"
    assert not list(index_dir.glob(".tmp-*")), "stale temporaries removed"
    assert len(list(index_dir.glob("gen-*"))) == 2, "the live generation and the one before it"


def test_keyword_index_out_of_step_is_corruption(seed_index_copy):
    import shutil

    bm25 = current_generation(seed_index_copy) / "bm25"
    shutil.rmtree(bm25)
    with pytest.raises(IndexCorruptError, match="bm25"):
        Index.load(seed_index_copy, Settings())
