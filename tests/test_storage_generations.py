"""Generation bookkeeping in rag/storage.py: which generation folders survive a write."""
from __future__ import annotations

from pathlib import Path

from rag.storage import CURRENT, write_generation


def _write(index_dir: Path, marker: str) -> Path:
    return write_generation(index_dir, lambda folder: (folder / "data.txt").write_text(marker))


def test_a_write_keeps_the_live_and_the_previously_live_generation(tmp_path):
    index_dir = tmp_path / "index"
    first = _write(index_dir, "one")
    second = _write(index_dir, "two")
    third = _write(index_dir, "three")
    assert (index_dir / CURRENT).read_text().strip() == third.name
    assert sorted(p.name for p in index_dir.glob("gen-*")) == sorted([second.name, third.name])
    assert not first.exists()


def test_an_orphan_from_a_killed_writer_never_displaces_the_previously_live_generation(tmp_path):
    # A writer killed after renaming its generation into place but before swapping CURRENT leaves a
    # newer folder that was never live; readers may still be opening the one CURRENT named.
    index_dir = tmp_path / "index"
    _write(index_dir, "old")
    live = _write(index_dir, "live")
    orphan = index_dir / "gen-99999999999999999999"
    orphan.mkdir()
    (orphan / "data.txt").write_text("never live")
    newest = _write(index_dir, "new")
    survivors = sorted(p.name for p in index_dir.glob("gen-*"))
    assert survivors == sorted([live.name, newest.name])
    assert (live / "data.txt").read_text() == "live"
