"""Shared fixtures: every test gets its own index folder, and the seed index is built once per session."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from browser_fixtures import browser  # noqa: F401  (one Chromium for every browser test module; a second fails)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_FILE = SEEDS / "000_003981b1cdb900f2.txt"
# Fixtures that build an index with the real embedding model: a test that uses one is slow.
MODEL_FIXTURES = {"seed_index_dir"}


def pytest_collection_modifyitems(items):
    """Mark slow every test that reaches the seed index, directly or through another fixture."""
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def fast_tests_stay_fast(request, monkeypatch):
    """A test not marked slow or browser (so run by `make test-fast`) may not start a subprocess, load the
    embedding model's weights or import torch: mark it @pytest.mark.slow, or make it lighter."""
    if request.node.get_closest_marker("slow") or request.node.get_closest_marker("browser"):
        yield
        return

    def refuse(what: str):
        def refused(*args, **kwargs):
            raise AssertionError(f"{what} but is not marked @pytest.mark.slow")
        return refused

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse("starts a subprocess"))
    monkeypatch.setattr("safetensors.numpy.load_file", refuse("loads model weights"))
    if importlib.util.find_spec("onnxruntime"):
        monkeypatch.setattr("onnxruntime.InferenceSession", refuse("loads an ONNX model"))
    had_torch = "torch" in sys.modules
    yield
    if not had_torch and "torch" in sys.modules:
        pytest.fail("imports torch (the embedding model) but is not marked @pytest.mark.slow", pytrace=False)


@pytest.fixture(autouse=True)
def isolated_index(tmp_path, monkeypatch):
    """Send the default index (and uploads) to a temp folder so no test touches indexes/default."""
    for name in [n for n in os.environ if n.startswith("RAG_")]:
        monkeypatch.delenv(name)  # a developer's own settings must not change test results
    monkeypatch.setenv("RAG_INDEX", str(tmp_path / "index"))
    monkeypatch.setenv("RAG_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.chdir(tmp_path)  # and neither may a rag.toml in the working folder
    return tmp_path / "index"


@pytest.fixture(scope="session")
def seed_index_dir(tmp_path_factory) -> Path:
    """An index of the seed corpus, built once; copy it (seed_index_copy) before writing to it."""
    from rag import Assistant, Settings

    folder = tmp_path_factory.mktemp("seed") / "index"
    Assistant.build([SEEDS], index_dir=folder, settings=Settings(index=folder))
    return folder


@pytest.fixture()
def seed_index_copy(seed_index_dir, tmp_path) -> Path:
    target = tmp_path / "seed-index"
    shutil.copytree(seed_index_dir, target)
    return target


@pytest.fixture(scope="session")
def seed_assistant(seed_index_dir):
    """A read-only assistant over the seed index (extractive answerer)."""
    from rag import Assistant, Settings

    return Assistant.open(seed_index_dir, Settings(index=seed_index_dir, answerer="extractive"))


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``rag ARGS`` in this process, through the console entry point (so errors become exit codes as in a
    shell), its output caught by typer's CliRunner. Exit codes through a real process: test_cli_exit_codes.py.

    Example: ``run_cli("stats", "--index", str(folder), "--json").returncode  # 0``
    """
    import signal
    from unittest import mock

    from typer.testing import CliRunner

    from rag.cli import main

    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    with CliRunner().isolation(env=env) as (out, err, _), mock.patch.object(sys, "argv", ["rag", *args]):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            for signum, handler in handlers.items():  # main() installs its own
                signal.signal(signum, handler)
        return subprocess.CompletedProcess(["rag", *args], code, out.getvalue().decode(), err.getvalue().decode())


def write_unsealed_manifest(folder: Path, manifest: dict) -> None:
    """Write an edited manifest as a version before checksums would have: no checksums, no manifest.sum
    (tests use it to stand in for an index written by an older version)."""
    import json

    from rag.integrity import CHECKSUMS, MANIFEST, MANIFEST_SUM

    manifest.pop(CHECKSUMS, None)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    (folder / MANIFEST_SUM).unlink(missing_ok=True)
