"""The `rag` command's exit codes, through real processes: 0 done, 1 gate failed or unexpected error,
2 usage / RagError / file-system problem, 130 interrupted (the index stays as it was)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from rag.cli import os_error_line

pytestmark = pytest.mark.slow


def _env(**extra: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def rag(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True,
                          env=_env(**env), timeout=300)


@pytest.mark.parametrize("args,usage,message", [
    (["nosuch"], "Usage: rag [OPTIONS] COMMAND", "No such command 'nosuch'"),
    (["ask"], "Usage: rag ask [OPTIONS]", "Missing argument"),
    (["ask", "q", "--top-k", "many"], "Usage: rag ask [OPTIONS]", "Invalid value for '--top-k'"),
])
def test_usage_errors_print_usage_and_exit_2(args, usage, message):
    result = rag(*args)
    assert result.returncode == 2
    assert usage in result.stderr and message in result.stderr
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr


def _item(facts: list[list[str]]) -> str:
    return json.dumps({"id": "when", "question": "When did China impose the rare metals controls?",
                       "reference_answer": "In July 2023.", "required_facts": facts, "answerable": True,
                       "gold_evidence": ["China imposed the rare metals controls in July 2023"]}) + "\n"


def test_eval_exits_0_when_the_gate_passes_and_1_when_it_fails(tmp_path, seed_assistant, seed_index_dir):
    from rag.evaluation import evaluate_and_report

    evalset, baseline = tmp_path / "set.jsonl", tmp_path / "baseline.json"
    evalset.write_text(_item([["July 2023"]]))
    evaluate_and_report(seed_assistant, evalset, baseline_path=baseline, update_baseline=True)

    passed = rag("eval", str(evalset), "--index", str(seed_index_dir), "--baseline", str(baseline))
    assert passed.returncode == 0, passed.stderr
    assert "gate: passed" in passed.stdout

    evalset.write_text(_item([["July 2023"], ["zebra"]]))  # the same question now misses a fact
    failed = rag("eval", str(evalset), "--index", str(seed_index_dir), "--baseline", str(baseline))
    assert failed.returncode == 1, failed.stderr
    assert "gate: FAILED" in failed.stdout and "REGRESSION" in failed.stdout


def _crashing(raise_statement: str, index, **env: str) -> subprocess.CompletedProcess:
    """`rag stats` in a real process, with Index.stats replaced by a function that raises."""
    crash = (f"import rag.cli, rag.index\ndef broken(*args):\n    {raise_statement}\n"
             "rag.index.Index.stats = broken\nrag.cli.main()")
    return subprocess.run([sys.executable, "-c", crash, "stats", "--index", str(index)], capture_output=True,
                          text=True, env=_env(**env), timeout=120)


def test_unexpected_error_is_one_line_exit_1_and_traceback_with_rag_debug(seed_index_dir):
    result = _crashing("1 / 0", seed_index_dir)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: unexpected ZeroDivisionError: division by zero (set RAG_DEBUG=1 for the traceback)"]
    debug = _crashing("1 / 0", seed_index_dir, RAG_DEBUG="1")
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_untranslated_file_system_error_names_the_path_and_exits_2(seed_index_dir):
    result = _crashing("raise OSError(28, 'No space left on device', '/x/y')", seed_index_dir)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: cannot write /x/y: No space left on device. Free some space and try again."]


def test_os_error_line_says_what_failed_and_the_fix():
    assert os_error_line(OSError(28, "No space left on device", "/x/y")) == (
        "error: cannot write /x/y: No space left on device. Free some space and try again.")
    assert os_error_line(PermissionError(13, "Permission denied", "/x")).startswith(
        "error: cannot open /x: Permission denied. Check its permissions")
    assert os_error_line(OSError(5, "Input/output error")) == (
        "error: file system error (OSError): Input/output error.")


def test_ctrl_c_during_ingest_exits_130_and_keeps_the_index(tmp_path, seed_index_copy):
    from rag import Settings
    from rag.index import Index

    before = set(Index.load(seed_index_copy, Settings(index=seed_index_copy)).documents)
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(4):  # ~100 chunks of distinct text: embedding takes seconds, enough to interrupt it
        words = " ".join(f"item{i}x{j} costs {j * i} yen in shop {j % 7}." for j in range(300))
        (docs / f"note{i}.txt").write_text(f"Note {i}\n\n{words}\n")
    command = [sys.executable, "-m", "rag.cli", "ingest", str(docs), "--index", str(seed_index_copy)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    seen, deadline = b"", time.monotonic() + 120
    while b"Embedding" not in seen and time.monotonic() < deadline and process.poll() is None:
        seen += os.read(process.stderr.fileno(), 4096)
    assert b"Embedding" in seen, seen
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, (seen + err).decode()
    assert err.decode().strip().splitlines()[-1] == "interrupted"
    after = Index.load(seed_index_copy, Settings(index=seed_index_copy))
    assert set(after.documents) == before
    assert not list(seed_index_copy.glob(".tmp-*"))


def test_ctrl_c_while_the_command_loads_exits_130_without_a_traceback(seed_index_copy):
    # -X importtime reports each import on stderr: pydantic is first imported by the command itself (after
    # main() installed its signal handling), so a SIGINT sent when it shows lands while the command loads.
    command = [sys.executable, "-X", "importtime", "-m", "rag.cli", "ask", "When did China impose the controls?",
               "--index", str(seed_index_copy)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    pydantic = re.compile(rb"\|\s+pydantic\n")
    seen, deadline = b"", time.monotonic() + 60
    while not pydantic.search(seen) and time.monotonic() < deadline and process.poll() is None:
        seen += os.read(process.stderr.fileno(), 65536)
    loaded = pydantic.search(seen)
    assert loaded and b"numpy" not in seen[:loaded.start()], seen[-2000:]
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    text = (seen + err).decode()
    assert process.returncode == 130 and "Traceback" not in text, text[-2000:]
    assert text.strip().splitlines()[-1] == "interrupted"
