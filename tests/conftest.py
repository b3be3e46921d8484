"""Shared fixtures: every test gets its own index folder, and the seed index is built once per session."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_FILE = SEEDS / "000_003981b1cdb900f2.txt"


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


def write_unsealed_manifest(folder: Path, manifest: dict) -> None:
    """Write an edited manifest as a version before checksums would have: no checksums, no manifest.sum
    (tests use it to stand in for an index written by an older version)."""
    import json

    from rag.integrity import CHECKSUMS, MANIFEST, MANIFEST_SUM

    manifest.pop(CHECKSUMS, None)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    (folder / MANIFEST_SUM).unlink(missing_ok=True)
