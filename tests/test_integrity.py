"""Index integrity: every bit flip in every index file is an error naming the file or changes nothing;
`rag verify` flags it; ingest repairs it or refuses; files that became unusable stop being sources; a
writer killed at any moment leaves the last committed generation loadable and sound."""
from __future__ import annotations

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

from rag import Assistant, IndexCorruptError, Settings
from rag.audit import audit
from rag.index import Index
from rag.ingest import ingest
from rag.integrity import CHECKSUMS, MANIFEST, MANIFEST_SUM, read_manifest, verify_files
from rag.storage import CURRENT, current_generation

from conftest import ROOT, SEED_FILE, SEEDS, run_cli, write_unsealed_manifest

QUESTION = "When did China impose the rare metals controls?"


def _answer(index_dir: Path) -> dict:
    answer = Assistant.open(index_dir, Settings(index=index_dir, answerer="extractive")).ask(QUESTION)
    return {"text": answer.text, "citations": [(c.doc_id, c.start, c.end, c.text, c.date, c.title)
                                                for c in answer.citations]}


def _index_files(index_dir: Path) -> list[Path]:
    folder = current_generation(index_dir)
    return [index_dir / CURRENT] + sorted(p for p in folder.rglob("*") if p.is_file())


def _corruptions(data: bytes, rng: random.Random) -> list[tuple[str, bytes]]:
    """Two single-bit flips at random places and eight bytes overwritten with random ones."""
    found = []
    for _ in range(2):
        at, bit = rng.randrange(len(data)), rng.randrange(8)
        found.append((f"bit {bit} of byte {at}", data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1:]))
    at = rng.randrange(max(1, len(data) - 8))
    noise = bytes(rng.randrange(256) for _ in range(8))
    found.append((f"8 bytes at {at}", data[:at] + noise + data[at + 8:]))
    return [(what, damaged) for what, damaged in found if damaged != data]


@pytest.mark.slow
def test_bit_flips_in_every_index_file_are_caught_never_answered(seed_index_copy):
    original = _answer(seed_index_copy)
    rng = random.Random(11)
    tried = detected = harmless = 0
    silent, unflagged = [], []
    for path in _index_files(seed_index_copy):
        pristine = path.read_bytes()
        for what, damaged in _corruptions(pristine, rng):
            tried += 1
            path.write_bytes(damaged)
            try:
                Index.load(seed_index_copy, Settings())
                opened = True
            except IndexCorruptError as exc:
                opened = False
                assert path.name in str(exc) or path.parent.name in str(exc), (path, what, str(exc))
            if opened and _answer(seed_index_copy) != original:
                silent.append(f"{path.name}: {what}")
            flagged = not audit(seed_index_copy, Settings())["sound"]
            detected += not opened
            # A CURRENT whose name still reads the same (a flip to trailing whitespace) is not damage.
            harmless += opened and not flagged and path.name == CURRENT
            if not flagged and not (opened and path.name == CURRENT):
                unflagged.append(f"{path.name}: {what}")
            path.write_bytes(pristine)
    assert tried >= 40, "every file of the generation, the manifest and CURRENT included"
    assert silent == [], f"{len(silent)} of {tried} corruptions silently changed the answer"
    assert unflagged == [], "rag verify flags every damaged file"
    assert detected + harmless == tried


def test_the_reported_july_flip_is_an_error_naming_the_file(seed_index_copy):
    documents = next(current_generation(seed_index_copy).glob("docstore/part-*.sqlite"))
    data = bytearray(documents.read_bytes())
    at = data.index(b"July 2023") + len("July 202")
    data[at] ^= 1  # "2023" -> "2022"
    documents.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match=r"docstore/part-\w+\.sqlite.*rag ingest"):
        Index.load(seed_index_copy, Settings())
    found = audit(seed_index_copy, Settings())
    assert not found["sound"] and {p["file"] for p in found["problems"]} >= {f"docstore/{documents.name}"}
    assert any("content hash" in p["problem"] for p in found["problems"])


def test_a_sound_index_verifies_and_an_older_one_opens_then_gains_checksums(seed_index_copy):
    assert audit(seed_index_copy, Settings())["sound"]
    folder = current_generation(seed_index_copy)
    write_unsealed_manifest(folder, json.loads((folder / MANIFEST).read_text()))
    older = Index.load(seed_index_copy, Settings())
    assert older.needs_save and audit(seed_index_copy, Settings())["sound"]
    report, _ = ingest([SEEDS], seed_index_copy, Settings(index=seed_index_copy))
    assert report.chunks_embedded == 0 and report.unchanged
    manifest = read_manifest(current_generation(seed_index_copy))
    assert CHECKSUMS in manifest and (current_generation(seed_index_copy) / MANIFEST_SUM).exists()


def _set_bm25_id(index_dir: Path, position: int, value: int) -> None:
    path = next((current_generation(index_dir) / "bm25").glob("part-*.rows.npy"))
    ids = np.load(path)
    ids[position] = value
    path.unlink()  # parts are hard-linked between generations: damage this generation's copy only
    np.save(path, ids)


@pytest.mark.parametrize("sealed", [True, False], ids=["checksummed", "older-index"])
def test_out_of_range_bm25_ids_are_caught_at_open_and_by_verify(seed_index_copy, sealed):
    folder = current_generation(seed_index_copy)
    if not sealed:  # no checksum to catch it: the structural check must
        write_unsealed_manifest(folder, json.loads((folder / MANIFEST).read_text()))
    _set_bm25_id(seed_index_copy, 0, 99)
    with pytest.raises(IndexCorruptError, match="bm25"):
        Index.load(seed_index_copy, Settings())
    assert "bm25" in {p["file"] for p in audit(seed_index_copy, Settings())["problems"]}
    _set_bm25_id(seed_index_copy, 0, -1)
    with pytest.raises(IndexCorruptError, match="bm25"):
        Index.load(seed_index_copy, Settings())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["docstore/part-*.sqlite", "vectors/part-*.faiss", "bm25/part-*.text.npy"])
def test_ingest_repairs_a_damaged_file(seed_index_copy, name):
    original = _answer(seed_index_copy)
    target = next(current_generation(seed_index_copy).glob(name))
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x04
    target.write_bytes(bytes(data))
    report, _ = ingest([SEEDS], seed_index_copy, Settings(index=seed_index_copy))
    assert any(note.startswith(f"repaired: {name.split('/')[0]}") for note in report.notes), report.notes
    if not name.startswith("bm25"):  # a keyword index is rebuilt from the docstore: the documents are intact
        assert report.unchanged == [] and report.repaired == [str(SEED_FILE.resolve())], "never 'unchanged' over damage"
    assert audit(seed_index_copy, Settings())["sound"]
    assert _answer(seed_index_copy) == original


@pytest.mark.slow
def test_ingest_of_another_folder_rereads_damaged_documents_from_their_files(seed_index_copy, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "cranes.txt").write_text("Port cranes were inspected in March. The inspection found no faults.")
    documents = next(current_generation(seed_index_copy).glob("docstore/part-*.sqlite"))
    documents.write_bytes(documents.read_bytes().replace(b"July 2023", b"July 2022"))
    report, index = ingest([other], seed_index_copy, Settings(index=seed_index_copy))
    assert report.repaired == [str(SEED_FILE.resolve())] and report.added == [str((other / "cranes.txt").resolve())]
    assert "July 2023" in next(d.text for d in index.documents.values() if str(SEED_FILE.resolve()) in d.paths)
    assert audit(seed_index_copy, Settings())["sound"]


@pytest.mark.slow
def test_rag_verify_exits_0_when_sound_and_2_naming_each_damaged_file(seed_index_copy):
    sound = subprocess.run([sys.executable, "-m", "rag.cli", "verify", "--index", str(seed_index_copy)],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert sound.returncode == 0 and "sound" in sound.stdout, sound.stderr
    folder = current_generation(seed_index_copy)
    for name in ("vectors/parts.json", "bm25_context/parts.json"):
        data = bytearray((folder / name).read_bytes())
        data[-3] ^= 0x10
        (folder / name).write_bytes(bytes(data))
    damaged = run_cli("verify", "--index", str(seed_index_copy), "--json")  # in this process
    assert damaged.returncode == 2, damaged.stderr
    found = json.loads(damaged.stdout)
    assert not found["sound"] and {"vectors/parts.json", "bm25_context/parts.json"} <= {
        p["file"] for p in found["problems"]}


def test_ingest_refuses_a_damaged_manifest_with_the_rebuild_hint(seed_index_copy):
    manifest = current_generation(seed_index_copy) / MANIFEST
    manifest.write_bytes(manifest.read_bytes().replace(b'"dimension": 384', b'"dimension": 385'))
    with pytest.raises(IndexCorruptError, match=r"manifest\.json.*--rebuild"):
        ingest([SEEDS], seed_index_copy, Settings(index=seed_index_copy))


@pytest.mark.parametrize("name, damage, named, says", [
    (MANIFEST, b"{not json", MANIFEST, "does not match its checksum"),
    (MANIFEST_SUM, b"", MANIFEST_SUM, "is damaged (it does not hold a CRC-32 checksum)"),
    (MANIFEST_SUM, bytes(range(200, 240)), MANIFEST_SUM, "is damaged (it does not hold a CRC-32 checksum)"),
    (MANIFEST_SUM, b"0badf00d\n", MANIFEST, "does not match its checksum"),
    (CURRENT, b"gen-../../etc", CURRENT, "not a generation name"),
])
def test_a_damaged_manifest_checksum_or_pointer_is_named_and_the_hint_is_rebuild(seed_index_copy, name, damage,
                                                                                named, says):
    folder = current_generation(seed_index_copy)
    (seed_index_copy / CURRENT if name == CURRENT else folder / name).write_bytes(damage)
    shown = run_cli("verify", "--index", str(seed_index_copy))
    assert shown.returncode == 2 and f"{named}: " in shown.stdout and says in shown.stdout, shown.stdout
    rebuild = f"Rebuild it with `rag ingest PATH... --index {seed_index_copy} --rebuild`."
    assert shown.stdout.strip().endswith(rebuild) and "Repair it" not in shown.stdout, shown.stdout
    assert audit(seed_index_copy, Settings())["rebuild"] is True
    asked = run_cli("ask", QUESTION, "--index", str(seed_index_copy))
    assert asked.returncode == 2 and "--rebuild" in asked.stderr and "Repair it" not in asked.stderr, asked.stderr
    with pytest.raises(IndexCorruptError, match=r"--rebuild"):
        ingest([SEEDS], seed_index_copy, Settings(index=seed_index_copy))


@pytest.mark.slow
def test_rebuild_fixes_a_damaged_manifest_checksum(seed_index_copy):
    (current_generation(seed_index_copy) / MANIFEST_SUM).write_bytes(b"")
    report, _ = ingest([SEEDS], seed_index_copy, Settings(index=seed_index_copy), rebuild=True)
    assert report.documents >= 1 and audit(seed_index_copy, Settings())["sound"]


@pytest.mark.slow
@pytest.mark.parametrize("content, reason", [(b"", "empty file"), (b"\x00\x01\x02\xff" * 64, "binary")])
def test_a_file_that_became_empty_or_binary_is_no_longer_a_source(tmp_path, content, reason):
    corpus, index_dir = tmp_path / "docs", tmp_path / "idx"
    corpus.mkdir()
    (corpus / "cranes.txt").write_text("Port cranes were inspected in March. The inspection found no faults.")
    (corpus / "grain.txt").write_text("Grain exports rose by a tenth in the spring after the new harbour opened.")
    ingest([corpus], index_dir, Settings(index=index_dir))
    (corpus / "cranes.txt").write_bytes(content)
    report, index = ingest([corpus], index_dir, Settings(index=index_dir))
    cranes = str((corpus / "cranes.txt").resolve())
    assert report.removed == [cranes]
    assert any(cranes in note and "removed" in note and reason in note for note in report.notes)
    assert not any("cranes" in c.text for c in Index.load(index_dir, Settings()).chunks)
    assert len(index.documents) == 1 and audit(index_dir, Settings())["sound"]


# Read at import: the autouse fixture clears RAG_* variables before each test runs.
KILL_ITERATIONS = int(os.environ.get("RAG_KILL_ITERATIONS", "3"))
_WRITER = """
import json, os, sys
from pathlib import Path
from rag.integrity import seal
from rag.storage import IndexLock, write_generation
index_dir, n = Path(sys.argv[1]), int(sys.argv[2])
while True:
    n += 1
    def write(folder):
        for name in ("documents.jsonl", "chunks.jsonl", "sub/vectors.bin"):
            (folder / name).parent.mkdir(exist_ok=True)
            (folder / name).write_bytes(os.urandom(int.from_bytes(os.urandom(2), "big")) + str(n).encode())
        seal(folder, {"commit": n})
    with IndexLock(index_dir):
        write_generation(index_dir, write)
    print(n, flush=True)
"""


@pytest.mark.slow
def test_kill_9_while_writing_generations_leaves_the_last_commit_sound(tmp_path):
    iterations = KILL_ITERATIONS
    rng, index_dir, committed = random.Random(9), tmp_path / "idx", 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(iterations):
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(index_dir), str(committed)],
                                  stdout=subprocess.PIPE, text=True, env=env)
        first = int(writer.stdout.readline())  # it committed once: from here on, kill it anywhere
        time.sleep(rng.uniform(0, 0.3))
        writer.send_signal(signal.SIGKILL)
        printed = [first, *(int(word) for word in writer.stdout.read().split() if word.isdigit())]
        writer.wait()
        folder = current_generation(index_dir)
        manifest = read_manifest(folder)
        verify_files(folder, manifest)
        assert manifest["commit"] >= max(printed), "a commit that was reported is never lost"
        assert (folder / "documents.jsonl").read_bytes().endswith(str(manifest["commit"]).encode())
        committed = manifest["commit"]
    assert committed >= iterations
