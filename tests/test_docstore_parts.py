"""The docstore in parts: a save writes only what was added, links the rest, keeps removals as tombstones,
merges to a bounded number of parts, compacts, and still opens an index written in format 1."""
from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rag import Settings
from rag.chunking import Chunk
from rag.documents import Document
from rag.index import Index
from rag.integrity import damaged_files, read_manifest, structure_problems
from rag.storage import IndexLock, current_generation

from conftest import run_cli, write_unsealed_manifest

DIMENSION = 8


def _document(n: int) -> tuple[Document, list[Chunk], np.ndarray]:
    """Document n: three sentences with words found in no other document, and a vector per chunk."""
    sentences = [f"Report {n} covers word{n}x harbour dredging.", f"Cranes{n} were renewed in spring{n}.",
                 f"The ledger{n} closed with a surplus."]
    text = " ".join(sentences)
    content_hash = hashlib.sha256(text.encode()).hexdigest()
    doc_id = content_hash[:16]
    doc = Document(doc_id, content_hash, text, [f"/docs/report-{n}.txt"], f"Report {n}", size=len(text))
    chunks, start = [], 0
    for position, sentence in enumerate(sentences):
        chunks.append(Chunk(f"{doc_id}-{position:05d}", doc_id, position, start, start + len(sentence), 9, sentence))
        start += len(sentence) + 1
    vectors = np.random.default_rng(n).standard_normal((3, DIMENSION)).astype(np.float32)
    return doc, chunks, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _save(index: Index, folder, compact: bool = False):
    with IndexLock(folder):
        return index.save(folder, compact=compact)


def _grow(folder, numbers: list[int]) -> Index:
    """Open the index at ``folder`` (or start one), add documents ``numbers`` and save."""
    index = Index.load(folder, Settings()) if (folder / "CURRENT").exists() else Index.empty(Settings(), DIMENSION)
    for n in numbers:
        index.add_document(*_document(n))
    _save(index, folder)
    return index


def _part_files(generation) -> list[str]:
    return [part["file"] for part in read_manifest(generation)["docstore"]["parts"]]


def _texts(index: Index) -> list[str]:
    return [c.text for c in index.chunks]


def test_a_save_writes_a_part_for_the_new_documents_and_links_the_others(tmp_path):
    folder = tmp_path / "index"
    _grow(folder, [0, 1])
    first = current_generation(folder)
    _grow(folder, [2])
    second = current_generation(folder)
    old, new = _part_files(first), _part_files(second)
    assert len(new) == 2 and new[0] == old[0]
    assert (second / new[0]).stat().st_ino == (first / old[0]).stat().st_ino  # linked, not copied
    index = Index.load(folder, Settings())
    assert _texts(index) == [c.text for n in range(3) for c in _document(n)[1]]
    assert index.documents[_document(2)[0].doc_id].paths == ["/docs/report-2.txt"]
    assert index.keyword.search("word2x", 3)[0].tolist() == [6]
    assert not damaged_files(second, read_manifest(second)) and not structure_problems(index)


def test_a_removed_document_is_a_tombstone_until_compaction(tmp_path):
    folder = tmp_path / "index"
    _grow(folder, [0, 1, 2, 3, 4])
    _grow(folder, [5])
    index = Index.load(folder, Settings())
    gone = _document(1)[0].doc_id
    assert index.remove_documents([gone]) == 3
    _save(index, folder)
    manifest = read_manifest(current_generation(folder))
    assert list(manifest["docstore"]["deleted"].values()) == [[gone]]
    index = Index.load(folder, Settings())
    kept = [c.text for n in (0, 2, 3, 4, 5) for c in _document(n)[1]]
    assert gone not in index.documents and len(index.documents) == 5 and _texts(index) == kept
    assert index.keyword.search("word1x", 3)[0].size == 0
    assert index.positions_of_vids(index.store.ids()).min() >= 0  # every stored vector names a live chunk
    _save(index, folder, compact=True)
    manifest = read_manifest(current_generation(folder))
    assert len(manifest["docstore"]["parts"]) == 1 and manifest["docstore"]["deleted"] == {}
    assert _texts(Index.load(folder, Settings())) == kept


def test_a_part_that_lost_a_quarter_is_rewritten_and_an_emptied_one_dropped(tmp_path):
    folder = tmp_path / "index"
    _grow(folder, [0, 1, 2, 3])
    _grow(folder, [4])
    index = Index.load(folder, Settings())
    index.remove_documents([_document(n)[0].doc_id for n in (1, 4)])
    _save(index, folder)
    manifest = read_manifest(current_generation(folder))
    assert manifest["docstore"]["deleted"] == {} and len(manifest["docstore"]["parts"]) == 1
    assert manifest["docstore"]["parts"][0]["documents"] == 3
    assert _texts(Index.load(folder, Settings())) == [c.text for n in (0, 2, 3) for c in _document(n)[1]]


def test_parts_stay_bounded_and_merging_keeps_the_order(tmp_path, monkeypatch):
    monkeypatch.setattr("rag.docstore.MAX_PARTS", 3)
    folder = tmp_path / "index"
    for n in range(7):
        _grow(folder, [n])
    assert len(_part_files(current_generation(folder))) == 3
    index = Index.load(folder, Settings())
    assert _texts(index) == [c.text for n in range(7) for c in _document(n)[1]]
    assert [index.docstore.doc_id_at(p) for p in (0, 20)] == [_document(0)[0].doc_id, _document(6)[0].doc_id]


def test_an_index_written_in_format_1_opens_and_its_next_save_writes_parts(tmp_path):
    folder = tmp_path / "index"
    index = _grow(folder, [0, 1])
    generation = current_generation(folder)
    with open(generation / "documents.jsonl", "w") as handle:  # what format 1 wrote
        for doc in index.documents.values():
            handle.write(json.dumps({"doc_id": doc.doc_id, "content_hash": doc.content_hash, "title": doc.title,
                                     "text": doc.text, "size": doc.size, "paths": doc.paths}) + "\n")
    with open(generation / "chunks.jsonl", "w") as handle:
        for c in index.chunks:
            handle.write(json.dumps([c.chunk_id, c.doc_id, c.position, c.start, c.end, c.n_tokens]) + "\n")
    manifest = read_manifest(generation)
    for file in _part_files(generation):
        (generation / file).unlink()
    del manifest["docstore"]
    write_unsealed_manifest(generation, {**manifest, "format_version": 1})
    old = Index.load(folder, Settings())
    assert _texts(old) == [c.text for n in (0, 1) for c in _document(n)[1]]
    old.add_document(*_document(2))
    _save(old, folder)
    assert read_manifest(current_generation(folder))["format_version"] == 2
    assert len(Index.load(folder, Settings()).chunks) == 9


@pytest.mark.slow
def test_rag_compact_merges_the_parts_and_the_index_stays_sound(seed_index_copy, tmp_path):
    extra = tmp_path / "extra.txt"
    extra.write_text("The port authority approved a second container terminal in May.", encoding="utf-8")
    assert run_cli("ingest", str(extra), "--index", str(seed_index_copy)).returncode == 0
    assert len(_part_files(current_generation(seed_index_copy))) == 2
    done = run_cli("compact", "--index", str(seed_index_copy))
    assert done.returncode == 0 and "compacted, 2 documents" in done.stdout
    assert len(_part_files(current_generation(seed_index_copy))) == 1
    assert run_cli("verify", "--index", str(seed_index_copy)).returncode == 0


_GROWER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from test_docstore_parts import _grow
folder, n = Path(sys.argv[1]), int(sys.argv[2])
while True:  # one document a commit: new parts, links, tombstone-free merges (MAX_PARTS 3)
    import rag.docstore
    rag.docstore.MAX_PARTS = 3
    _grow(folder, [n])
    print(n, flush=True)
    n += 1
"""


@pytest.mark.slow
def test_kill_9_while_adding_parts_leaves_the_last_commit_whole(tmp_path):
    """Killed at random moments while it adds, links and merges parts, a writer leaves the last committed
    generation: every file checks out, and it holds every document reported committed, in order."""
    rng, folder, next_number = random.Random(13), tmp_path / "index", 0
    tests, root = Path(__file__).parent, Path(__file__).parent.parent
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{tests}"}
    for _ in range(4):
        writer = subprocess.Popen([sys.executable, "-c", _GROWER, str(folder), str(next_number), str(tests)],
                                  stdout=subprocess.PIPE, text=True, env=env)
        reported = [int(writer.stdout.readline())]  # one commit made: from here on, kill it anywhere
        time.sleep(rng.uniform(0, 1.5))
        writer.send_signal(signal.SIGKILL)
        reported += [int(word) for word in writer.stdout.read().split() if word.isdigit()]
        writer.wait()
        generation = current_generation(folder)
        assert damaged_files(generation, read_manifest(generation)) == []
        index = Index.load(folder, Settings())
        held = len(index.documents)
        assert held >= max(reported) + 1, "a commit that was reported is never lost"
        assert _texts(index) == [c.text for n in range(held) for c in _document(n)[1]]
        assert not structure_problems(index)
        next_number = held
    assert next_number >= 4


def test_a_reader_whose_generation_was_replaced_while_opening_opens_the_new_one(tmp_path, monkeypatch):
    folder = tmp_path / "index"
    _grow(folder, [0])
    live = current_generation(folder)
    asked = []

    def generation_gone_first(index_dir):
        asked.append(index_dir)
        return live.with_name("gen-1") if len(asked) == 1 else live  # deleted by two quick writers

    monkeypatch.setattr("rag.index.current_generation", generation_gone_first)
    assert len(Index.load(folder, Settings()).chunks) == 3 and len(asked) == 2


def test_damage_copied_into_a_new_generation_is_still_found(tmp_path, monkeypatch):
    """Where the file system has no hard links, parts are copied: a damaged one keeps its old checksum."""
    import errno

    folder = tmp_path / "index"
    _grow(folder, [0, 1])
    first = current_generation(folder)
    part = first / _part_files(first)[0]
    data = bytearray(part.read_bytes())
    at = data.index(b"Cranes0")
    data[at] ^= 0x01
    part.write_bytes(bytes(data))

    def no_links(source, target):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    monkeypatch.setattr("rag.integrity.QUICK_CHECK_BYTES", 0)  # as a large part: its size checked at open
    index = Index.load(folder, Settings())
    index.add_document(*_document(2))
    _save(index, folder)
    second = current_generation(folder)
    assert (second / _part_files(first)[0]).stat().st_ino != part.stat().st_ino  # a copy
    assert [name for name, _ in damaged_files(second, read_manifest(second))] == [_part_files(first)[0]]
