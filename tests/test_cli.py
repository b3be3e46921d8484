"""The `rag` command: JSON outputs for scripts, and errors as one line with exit code 2, never a traceback."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, SEEDS

pytestmark = pytest.mark.slow


def rag(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=300)


def test_ingest_stats_ask_json(tmp_path):
    index = str(tmp_path / "idx")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "seed.txt").write_text((SEEDS / "000_003981b1cdb900f2.txt").read_text())
    (tmp_path / "docs" / "logo.png").write_bytes(b"\x89PNG")
    first = rag("ingest", str(tmp_path / "docs"), "--index", index, "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert len(report["added"]) == 1 and report["chunks_embedded"] > 0
    assert report["skipped"] == [{"path": str((tmp_path / "docs" / "logo.png").resolve()), "reason": "unsupported type .png"}]
    again = json.loads(rag("ingest", str(tmp_path / "docs"), "--index", index, "--json").stdout)
    assert again["chunks_embedded"] == 0 and len(again["unchanged"]) == 1

    stats = json.loads(rag("stats", "--index", index, "--json").stdout)
    assert stats["documents"] == 1 and stats["chunks"] == report["chunks"] and stats["dimension"] == 384
    assert stats["size_bytes"] > 0 and stats["model"]

    asked = rag("ask", "When did China impose the rare metals controls?", "--index", index, "--json")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert "July 2023" in answer["answer"] and answer["abstained"] is False
    citation = answer["citations"][0]
    assert set(citation) >= {"number", "title", "source", "url", "date", "text", "start", "end", "score", "supported"}
    assert f"[{citation['number']}]" in answer["answer"] and citation["supported"] is True
    assert answer["timings"]["total_ms"] > 0

    plain = rag("ask", "Who led the Chinese delegation?", "--index", index)
    assert plain.returncode == 0 and "do not answer" in plain.stdout


@pytest.mark.parametrize("args,env,message", [
    (["ask", "anything", "--index", "{tmp}/none"], {}, "No index at"),
    (["ask", "   ", "--index", "{seed}"], {}, "question is empty"),
    (["stats", "--index", "{tmp}/none"], {}, "No index at"),
    (["ingest", "{tmp}/missing", "--index", "{tmp}/idx"], {}, "no such file or folder"),
    (["ask", "hello", "--index", "{seed}"], {"RAG_ANSWERER": "gpt5"}, "unknown answerer"),
    (["ask", "hello", "--index", "{seed}"], {"RAG_ANSWERER": "openai", "RAG_LLM_BASE_URL": "http://127.0.0.1:9/v1",
                                             "RAG_LLM_RETRIES": "0"}, "Cannot reach"),
])
def test_errors_are_one_line_and_exit_2(tmp_path, seed_index_dir, args, env, message):
    filled = [a.format(tmp=tmp_path, seed=seed_index_dir) for a in args]
    result = rag(*filled, env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
