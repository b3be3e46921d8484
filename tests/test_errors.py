"""Every error a user can cause or meet is a RagError with one line that names the thing and the fix:
damaged pointers, wrong folders, permissions, a full disk, bad settings and config files, bad questions,
history and k, a busy port, a lock held too long."""
from __future__ import annotations

import builtins
import errno
import json
import os
import socket
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from rag import (
    ConfigError, IndexAccessError, IndexCorruptError, IndexLockedError, IndexNotFoundError, QuestionError,
    RagError, Settings,
)
from rag.chunking import Chunk
from rag.documents import Document, SkippedFile
from rag.index import Index
from rag.ingest import ingest
from rag.storage import CURRENT, IndexLock, current_generation
from rag.ui.render import port_problem
from rag.ui.uploads import rejected_uploads

from conftest import write_unsealed_manifest


def one_line(error: BaseException) -> str:
    message = str(error)
    assert "\n" not in message and len(message) < 400, message
    return message


# --- the index folder ----------------------------------------------------------------------------------


@pytest.mark.parametrize("content,problem", [
    (b"", "is empty"),
    (b"\xff\xfe\x00garbage\x01", "not a generation name"),
    (b"gen-1\n", "names gen-1, which does not exist"),
    (b"../../etc\n", "not a generation name"),
    (b"/etc\n", "not a generation name"),
])
def test_damaged_current_pointer_is_named(seed_index_copy, content, problem):
    live = current_generation(seed_index_copy).name
    (seed_index_copy / CURRENT).write_bytes(content)
    with pytest.raises(IndexCorruptError) as caught:
        Index.load(seed_index_copy, Settings())
    message = one_line(caught.value)
    assert f"{seed_index_copy / CURRENT} " in message and problem in message
    assert "--rebuild" in message and live in message  # and the generation it could point at instead


def test_index_option_naming_a_file(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not an index")
    with pytest.raises(IndexNotFoundError, match="is a file, not an index folder"):
        Index.load(a_file, Settings())
    with pytest.raises(IndexNotFoundError, match="is a file"):
        Index.load(a_file / "inside", Settings())
    with pytest.raises(IndexAccessError, match="is a file, not an index folder") as caught:
        IndexLock(a_file)
    one_line(caught.value)


def denied(monkeypatch, suffix: str) -> None:
    """Make opening any path ending in ``suffix`` fail as it would without permission (tests run as root)."""
    real_open, real_read_bytes = builtins.open, Path.read_bytes

    def check(path) -> None:
        if str(path).endswith(suffix):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(builtins, "open", lambda path, *a, **k: (check(path), real_open(path, *a, **k))[1])
    monkeypatch.setattr(Path, "read_bytes", lambda self: (check(self), real_read_bytes(self))[1])


@pytest.mark.parametrize("name", [CURRENT, "manifest.json", ".sqlite", ".faiss"])
def test_permission_denied_on_index_files(seed_index_copy, monkeypatch, name):
    denied(monkeypatch, name)
    with pytest.raises(IndexAccessError) as caught:
        Index.load(seed_index_copy, Settings())
    message = one_line(caught.value)
    assert message.startswith("Permission denied: cannot read ") and name in message and "--index" in message


def test_permission_denied_when_writing(seed_index_copy, monkeypatch):
    index = Index.load(seed_index_copy, Settings())
    text = "The harbour was dredged in May."
    doc = Document("f" * 16, "f" * 64, text, ["/extra.txt"], "Extra", size=len(text))
    vector = np.ones((1, index.store.dimension), np.float32) / np.sqrt(index.store.dimension)
    index.add_document(doc, [Chunk("f" * 16 + "-00000", "f" * 16, 0, 0, len(text), 8, text)], vector)
    denied(monkeypatch, ".sqlite")  # the new documents' part
    with pytest.raises(IndexAccessError, match="cannot write .* Give this user write access"):
        index.save(seed_index_copy)


def generations(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(("gen-", ".tmp-gen")))


@pytest.mark.parametrize("failing", ["vectors", "pointer"])
def test_disk_full_keeps_the_previous_index_and_no_partial_generation(seed_index_copy, monkeypatch, failing):
    """A failing writer stands in for a full disk (ENOSPC at a file write, or at the pointer swap)."""
    before, live = generations(seed_index_copy), (seed_index_copy / CURRENT).read_bytes()
    index = Index.load(seed_index_copy, Settings())
    index.manifest["touched"] = True  # a new generation, different from the live one

    real_replace = os.replace

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        if failing == "vectors":
            patch.setattr("rag.stores.faiss.FaissStore.save", full)
        else:  # everything written, then the swap of CURRENT fails
            patch.setattr(os, "replace",
                          lambda src, dst: (full if str(dst).endswith(CURRENT) else real_replace)(src, dst))
        with pytest.raises(IndexAccessError) as caught:
            index.save(seed_index_copy)
    message = one_line(caught.value)
    assert message.startswith(f"No space left on the disk holding {seed_index_copy}") and "Free some space" in message
    assert generations(seed_index_copy) == before and (seed_index_copy / CURRENT).read_bytes() == live
    assert not [p for p in seed_index_copy.iterdir() if p.name.startswith(".tmp-")]
    assert len(Index.load(seed_index_copy, Settings()).chunks) == len(index.chunks)


def test_an_emptied_docstore_part_is_blamed_not_the_next_one(seed_index_copy):
    folder = current_generation(seed_index_copy)
    manifest = json.loads((folder / "manifest.json").read_text())
    part = folder / manifest["docstore"]["parts"][0]["file"]
    part.write_bytes(b"")
    # As an index written before checksums: the part itself must be named.
    write_unsealed_manifest(folder, manifest)
    with pytest.raises(IndexCorruptError) as caught:
        Index.load(seed_index_copy, Settings())
    message = one_line(caught.value)
    assert str(part) in message and "--rebuild" in message


@pytest.mark.slow
def test_lock_held_too_long_names_the_setting(tmp_path, monkeypatch):
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:
        with IndexLock(tmp_path / "index"):
            holding.set()
            done.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(10)
    monkeypatch.setenv("RAG_LOCK_TIMEOUT", "0.2")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("A short note about the harbour.")
    try:
        with pytest.raises(IndexLockedError, match=r"after 0\.2 s.*RAG_LOCK_TIMEOUT") as caught:
            ingest([tmp_path / "docs"], tmp_path / "index", Settings())
        one_line(caught.value)
    finally:
        done.set()
        thread.join()


# --- settings and config files ----------------------------------------------------------------------------


@pytest.mark.parametrize("name,value,field", [
    ("RAG_MAX_FILE_MB", "-1", "max_file_mb"),
    ("RAG_MAX_FILE_MB", "nan", "max_file_mb"),
    ("RAG_MAX_UPLOAD_MB", "0", "max_upload_mb"),
    ("RAG_CHUNK_OVERLAP_TOKENS", "160", "chunk_overlap_tokens"),
    ("RAG_CHUNK_OVERLAP_TOKENS", "-1", "chunk_overlap_tokens"),
    ("RAG_TITLE_PREFIX_TOKENS", "-5", "title_prefix_tokens"),
    ("RAG_LLM_TIMEOUT", "0", "llm_timeout"),
    ("RAG_LLM_RETRIES", "-1", "llm_retries"),
    ("RAG_LOCK_TIMEOUT", "-3", "lock_timeout"),
    ("RAG_TOP_K", "0", "top_k"),
])
def test_settings_refuse_impossible_limits(monkeypatch, name, value, field):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert [e["loc"] for e in caught.value.errors()] == [(field,)]


def test_sane_settings_are_accepted():
    settings = Settings(max_file_mb=0.5, chunk_overlap_tokens=0, llm_retries=0, lock_timeout=30)
    assert settings.lock_timeout == 30 and settings.chunk_overlap_tokens == 0


@pytest.mark.parametrize("content,expected", [
    (b"top_k = 3\nchunk_tokens = = 5\n", "line 2"),
    (b"top_k = 3\nanswerer = 'extractive\n", "end of document"),
    (b"top_k = \xff\n", "not valid TOML"),
])
def test_malformed_rag_toml_names_the_file_and_line(tmp_path, content, expected):
    (tmp_path / "rag.toml").write_bytes(content)  # the autouse fixture runs each test in tmp_path
    with pytest.raises(ConfigError) as caught:
        Settings()
    message = one_line(caught.value)
    assert str(tmp_path / "rag.toml") in message and expected in message and "Fix" in message


# --- questions, history and k -----------------------------------------------------------------------------


def test_non_utf8_bytes_in_a_question_are_replaced(seed_assistant):
    question = os.fsdecode(b"When did China impose the rare metals controls? caf\xe9\xff")
    answer = seed_assistant.ask(question)
    assert answer.question.endswith("caf\ufffd\ufffd")
    json.dumps(answer.to_dict(), ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("history,shown", [
    (["ab", "cd"], "turn 1 must be a (question, answer_text) pair of strings, not 'ab'"),
    ([(None, None)], "turn 1"),
    ([("q", "a"), ("only a question",)], "turn 2"),
    ([("q", 3)], "turn 1"),
    ("ab", "not str"),
    ({"q": "a"}, "not dict"),
    (42, "not int"),
])
def test_malformed_history_is_refused_clearly(seed_assistant, history, shown):
    with pytest.raises(QuestionError) as caught:
        seed_assistant.ask("And when did that start?", history=history)
    assert shown in one_line(caught.value)


def test_long_history_gives_a_bounded_standalone_question(seed_assistant):
    turn = ("What did they say about it? " * 70, "They said it started then. " * 200)
    answer = seed_assistant.ask("And when did that start?", history=[turn] * 50 + [["Which controls?", "Gallium."]])
    assert len(answer.standalone_question) <= seed_assistant.settings.max_question_chars
    assert answer.standalone_question.startswith("And when did that start?")


@pytest.mark.parametrize("k", [0, -1, "3", 2.5, True])
def test_retrieve_k_must_be_a_positive_int(seed_assistant, k):
    with pytest.raises(QuestionError, match="k must be a positive whole number") as caught:
        seed_assistant.retrieve("rare metals", k=k)
    one_line(caught.value)


def test_retrieve_k_none_means_the_default(seed_assistant):
    default = seed_assistant.retrieve("rare metals", k=None)
    top_k = seed_assistant.retrieve("rare metals", k=seed_assistant.settings.top_k)
    assert [c.chunk_id for c in default] == [c.chunk_id for c in top_k]
    assert len(seed_assistant.retrieve("rare metals", k=2)) == 2


# --- the chat app ------------------------------------------------------------------------------------------


def test_busy_port_is_one_line_naming_rag_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert port_problem("127.0.0.1", port) == (
            f"port {port} is in use; set RAG_PORT to a free port (or stop the program using it).")
    assert port_problem("127.0.0.1", port) is None


def test_rejected_uploads_are_the_skipped_ones(tmp_path):
    kept, rejected = tmp_path / "a.txt", tmp_path / "b.txt"
    assert rejected_uploads([kept, rejected], [SkippedFile(str(rejected), "binary content, not text")]) == [rejected]


def test_every_error_here_is_a_rag_error():
    assert all(issubclass(e, RagError) for e in (IndexAccessError, IndexCorruptError, ConfigError, QuestionError))
    assert sys.modules["rag"].IndexAccessError is IndexAccessError
