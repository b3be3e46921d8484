"""Bad inputs: odd file names, odd encodings, absurd words. Each is loaded, decoded or split sensibly, or
skipped with a reason; none stops the rest of a folder."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

import pytest

from rag import Assistant, Settings
from rag.chunking import chunk_text
from rag.documents import display_path, load_paths, safe_text
from rag.embedding import get_embedder
from rag.index import Index
from rag.ingest import token_offsets
from rag.loaders import SkipFile, decode_text

from conftest import ROOT, SEED_FILE, run_cli

BODY = "The harbour authority approved the new quay in March 2024. Work starts in the autumn.\n"


def write_bytes_name(folder, name: bytes, data: bytes) -> str:
    """Create a file whose name is raw bytes (any a POSIX file system allows); returns its fsdecoded path."""
    path = os.path.join(os.fsencode(str(folder)), name)
    with open(path, "wb") as handle:
        handle.write(data)
    return os.fsdecode(path)


# --- file names -----------------------------------------------------------------------------------------

BAD_NAMES = [
    b"bad\xffname.txt",                       # not UTF-8
    b"head\xfe\xfd.md",                       # not UTF-8, markdown with a heading (once failed at save)
    b"new\nline.txt",                         # newline
    "Ünïcödé — 名前 ✓.txt".encode(),          # unicode
    b"x" * 250 + b".txt",                     # as long as a name may be
    b"tab\tand\x07bell.txt",                  # control characters
]


@pytest.mark.slow
def test_odd_file_names_are_all_indexed_and_shown_safely(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for number, name in enumerate(BAD_NAMES):
        body = f"# Heading {number}\n\n{BODY}" if name.endswith(b".md") else f"Note {number}. {BODY}"
        write_bytes_name(docs, name, body.encode())
    index_dir = tmp_path / "index"
    assistant = Assistant.build([docs], index_dir=index_dir, settings=Settings(index=index_dir))

    report = assistant.ingest([docs])  # a second pass finds every odd name again, unchanged
    assert len(report.unchanged) == len(BAD_NAMES) and not report.skipped
    text = json.dumps(report.to_dict(), ensure_ascii=False)
    text.encode("utf-8")  # no lone surrogates left for a printer to choke on
    assert "bad\ufffdname.txt" in text and "new\\\\nline.txt" in text
    assert not [p for p in index_dir.iterdir() if p.name.startswith(".tmp-")]

    reopened = Index.load(index_dir, Settings(index=index_dir))
    titles = sorted(d.title for d in reopened.documents.values())
    assert "Heading 1" in titles and any(t.startswith("Bad\ufffdname") for t in titles)
    assert all(t.isprintable() and t.encode("utf-8") for t in titles)
    stored = {p for d in reopened.documents.values() for p in d.paths}
    assert os.fsdecode(os.path.join(os.fsencode(str(docs.resolve())), b"bad\xffname.txt")) in stored
    for citation in assistant.retrieve("When does work on the quay start?", k=len(BAD_NAMES)):
        (citation.source + citation.title).encode("utf-8")


def test_display_and_safe_text():
    assert display_path(os.fsdecode(b"/d/bad\xffname.txt")) == "/d/bad\ufffdname.txt"
    assert display_path("/d/new\nline.txt") == "/d/new\\nline.txt"
    assert display_path("/d/Ünïcödé.txt") == "/d/Ünïcödé.txt"
    assert safe_text("Bad\udcffname\n\tnotes") == "Bad\ufffdname notes"
    assert safe_text("a\ud800b") == "a?b"


def test_symlinked_folder_is_listed_as_skipped(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.txt").write_text(BODY)
    top = tmp_path / "top"
    top.mkdir()
    (top / "b.txt").write_text(BODY + "More.")
    (top / "linked").symlink_to(real, target_is_directory=True)
    (top / "loop").symlink_to(top, target_is_directory=True)
    report = load_paths([top])
    assert [d.path for d in report.documents] == [str((top / "b.txt").resolve())]
    reasons = {os.path.basename(s.path): s.reason for s in report.skipped}
    assert set(reasons) == {"linked", "loop"} and "symbolic link to a folder, not followed" in reasons["linked"]


# --- decoding -------------------------------------------------------------------------------------------

CZECH = "Příliš žluťoučký kůň úpěl ďábelské ódy. "


def test_utf8_with_a_few_bad_bytes_stays_utf8_and_is_reported(tmp_path):
    data = (CZECH * 10).encode() + b"\xff\xfe\x80" + (CZECH * 10).encode()
    decoded = decode_text(data)
    assert decoded.encoding is None and decoded.replaced == 3
    assert decoded.text.count("ů") == 20 and "\ufffd\ufffd\ufffd" in decoded.text
    path = tmp_path / "stray.txt"
    path.write_bytes(data)
    report = load_paths([path])
    assert report.notes == [f"{path.resolve()}: 3 invalid UTF-8 byte(s) shown as \ufffd"]


@pytest.mark.parametrize("text,codec,found", [
    (CZECH * 5, "cp1250", "cp1250"),
    ("Café crème brûlée à la française, naïve façade. " * 5, "cp1252", "cp1252"),
    ("café", "cp1252", "cp1252"),  # four bytes: not mistaken for two UTF-16 characters
    ("Съешь же ещё этих мягких французских булок, да выпей чаю. " * 5, "koi8_r", "koi8_r"),
    ("日本語のテキストです。これはテストです。\n" * 5, "shift_jis", "cp932"),
])
def test_legacy_encodings_when_the_whole_file_fits(text, codec, found):
    decoded = decode_text(text.encode(codec))
    assert decoded.text == text and decoded.encoding == found and decoded.replaced == 0


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_wide_unicode_without_bom_is_detected(codec):
    text = "Harbour notes.\nThe quay opens in 2025 — café on the pier.\n" * 3
    assert decode_text(text.encode(codec)) == (text, codec, 0)


@pytest.mark.parametrize("data", [
    random.Random(1).randbytes(20000).translate(bytes(range(128, 256)) * 2),  # random high bytes named .txt
    random.Random(2).randbytes(20000).translate(bytes(range(32, 256)) + bytes(range(32, 64))),  # no C0 controls
    random.Random(3).randbytes(20000),                                        # random bytes
    b"ok " + bytes(range(0x80, 0xa0)) * 50,                     # C1 control characters
], ids=["high", "printable", "random", "c1"])
def test_garbage_is_skipped_as_binary(data):
    with pytest.raises(SkipFile, match="binary content"):
        decode_text(data)


# --- chunking -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def offsets():
    return token_offsets(get_embedder(Settings().embed_model))


@pytest.mark.parametrize("run", ["x" * 5_000_000, "ab+/" * 250_000], ids=["5M-char word", "1M-char line"])
def test_unbroken_run_is_split_at_the_chunk_size(offsets, run):
    text = "A short opening sentence. " + run + " The end."
    started = time.perf_counter()
    chunks = chunk_text("d", text, offsets, max_tokens=160, overlap_tokens=32)
    assert time.perf_counter() - started < 30  # about 1 s alone; generous for busy machines
    assert len(chunks) > 1000 and max(len(c.text) for c in chunks) <= 640
    assert all(c.text == text[c.start:c.end] and c.n_tokens <= 160 for c in chunks)
    assert chunks[0].text == "A short opening sentence." and chunks[-1].text.endswith("The end.")
    sample = [c.text for c in chunks[1:6]]
    assert max(len(o) for o in offsets(sample)) <= 160  # the real tokenizer agrees with the budget


def test_normal_text_chunks_are_unchanged_by_the_run_rule(offsets):
    text = SEED_FILE.read_text(encoding="utf-8")
    chunks = chunk_text("d", text, offsets, max_tokens=160, overlap_tokens=32)
    assert all(c.n_tokens == len(o) for c, o in zip(chunks, offsets([c.text for c in chunks])))


# --- through the command line (one process each: the printing of odd names and bytes is what is tested) ----


def rag(*args: str | bytes) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, env=env, timeout=300)


@pytest.mark.slow
def test_cli_prints_odd_names_and_questions(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    write_bytes_name(docs, b"stray\xff.txt", (CZECH * 5).encode() + b"\xff\xfe\x80" + BODY.encode())
    write_bytes_name(docs, b"blob\xfe\nname.txt", bytes(range(0x80, 0x100)) * 40)
    index = str(tmp_path / "index")
    ingested = run_cli("ingest", str(docs), "--index", index)
    out = ingested.stdout
    assert ingested.returncode == 0, ingested.stderr
    assert "1 added" in out and "stray\ufffd.txt: 3 invalid UTF-8 byte(s)" in out
    assert "blob\ufffd\\nname.txt: binary content, not text" in out

    # Through a real process: undecodable bytes in argv, and the JSON printed to a pipe.
    asked = rag("ask", b"When does work on the quay start? caf\xe9", "--index", index, "--json")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout.decode("utf-8"))
    assert answer["question"].endswith("caf\ufffd") and "stray\ufffd.txt" in answer["sources"][0]["source"]
