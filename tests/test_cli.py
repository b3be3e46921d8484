"""The `rag` command: JSON outputs for scripts, and errors as one line with exit code 2, never a traceback.
Run in this process (run_cli), but for one smoke test through a real process."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, SEEDS, run_cli

pytestmark = pytest.mark.slow
rag = run_cli


def test_stats_json_through_a_real_process(seed_index_dir):
    done = subprocess.run([sys.executable, "-m", "rag.cli", "stats", "--index", str(seed_index_dir), "--json"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["documents"] == 1


def test_ingest_stats_ask_json(tmp_path):
    index = str(tmp_path / "idx")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "seed.txt").write_text((SEEDS / "000_003981b1cdb900f2.txt").read_text())
    (tmp_path / "docs" / "logo.png").write_bytes(b"\x89PNG")
    first = rag("ingest", str(tmp_path / "docs"), "--index", index, "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert len(report["added"]) == 1 and report["chunks_embedded"] > 0
    logo = str((tmp_path / "docs" / "logo.png").resolve())
    assert report["skipped"] == [{"path": logo, "reason": "unsupported type .png"}]
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


def test_ask_names_each_unsupported_sentence_and_why(seed_assistant, seed_index_dir):
    from fake_llm_server import FakeLLMServer, Script

    question = "When did China impose the rare metals controls?"
    number = next(c.number for c in seed_assistant.retrieve(question) if "July 2023" in c.text)
    faithful = f"China imposed controls on rare metals in July 2023 [{number}]."
    with FakeLLMServer() as llm:
        llm.reset(Script(reply=f"{faithful} China also banned exports of lithium to Japan in 2024 [{number}]."))
        env = {"RAG_ANSWERER": "openai", "RAG_LLM_BASE_URL": llm.url + "/v1", "RAG_LLM_RETRIES": "0",
               "RAG_LLM_TIMEOUT": "5"}
        result = rag("ask", question, "--index", str(seed_index_dir), env=env)
    assert result.returncode == 0, result.stderr
    flagged = [line for line in result.stdout.splitlines() if line.startswith("unsupported: ")]
    assert len(flagged) == 1, result.stdout
    assert flagged[0].startswith("unsupported: China also banned exports of lithium to Japan in 2024.")
    assert flagged[0].endswith(")") and "(the passage does not mention " in flagged[0]
