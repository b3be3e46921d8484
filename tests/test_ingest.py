"""Incremental ingestion: counts, replacement, pruning, duplicates, skipped files, bad paths."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag import Assistant, InputPathError, Settings
from rag.index import Index
from rag.ingest import ingest

from conftest import SEED_FILE, write_unsealed_manifest

pytestmark = pytest.mark.slow


def _corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SEED_FILE, folder / "seed.txt")
    (folder / "notes.md").write_text("# Gallium notes\n\nGallium is used in LEDs and in radar chips.\n")
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "tea.txt").write_text("Green tea is grown in Shizuoka. The harvest starts in April.\n")
    return folder


def _ingest(paths, index_dir, **kwargs):
    return ingest(paths, index_dir, Settings(index=index_dir), **kwargs)


def test_reingest_embeds_nothing(tmp_path):
    corpus, index_dir = _corpus(tmp_path / "docs"), tmp_path / "idx"
    first, _ = _ingest([corpus], index_dir)
    assert len(first.added) == 3 and first.chunks_embedded > 0
    generation = (index_dir / "CURRENT").read_text()
    second, index = _ingest([corpus], index_dir)
    assert second.chunks_embedded == 0
    assert len(second.unchanged) == 3 and not second.added and not second.updated
    assert (index_dir / "CURRENT").read_text() == generation, "an unchanged ingest writes nothing"
    assert len(index.chunks) == first.chunks


def test_changed_file_replaces_its_chunks(tmp_path):
    corpus, index_dir = _corpus(tmp_path / "docs"), tmp_path / "idx"
    _, before = _ingest([corpus], index_dir)
    old_ids = {c.chunk_id for c in before.chunks if "Shizuoka" in c.text}
    (corpus / "sub" / "tea.txt").write_text("Black tea is grown in Assam. The harvest starts in March.\n")
    report, after = _ingest([corpus], index_dir)
    assert report.updated == [str((corpus / "sub" / "tea.txt").resolve())]
    assert report.chunks_embedded == 1 and report.chunks_removed == 1
    texts = " ".join(c.text for c in after.chunks)
    assert "Assam" in texts and "Shizuoka" not in texts
    assert not old_ids & {c.chunk_id for c in after.chunks}
    reopened = Index.load(index_dir, Settings(index=index_dir))
    assert len(reopened.chunks) == len(after.chunks) == len(reopened.store)
    assert reopened.keyword.search("Assam", 3)[0].size == 1


def test_prune_removes_deleted_files_only_when_asked(tmp_path):
    corpus, index_dir = _corpus(tmp_path / "docs"), tmp_path / "idx"
    _ingest([corpus], index_dir)
    (corpus / "notes.md").unlink()
    kept, index = _ingest([corpus], index_dir)
    assert not kept.removed and len(index.documents) == 3
    pruned, index = _ingest([corpus], index_dir, prune=True)
    assert pruned.removed == [str((corpus / "notes.md").resolve())]
    assert len(index.documents) == 2 and all("Gallium is used" not in c.text for c in index.chunks)
    assert Assistant.open(index_dir, Settings(index=index_dir)).stats()["documents"] == 2


def test_identical_content_is_stored_once(tmp_path):
    corpus, index_dir = _corpus(tmp_path / "docs"), tmp_path / "idx"
    shutil.copy(corpus / "notes.md", corpus / "copy-of-notes.md")
    report, index = _ingest([corpus], index_dir)
    assert len(report.duplicates) == 1
    assert len(index.documents) == 3 and index.stats()["paths"] == 4
    notes = next(d for d in index.documents.values() if d.title == "Gallium notes")
    assert len(notes.paths) == 2
    # Removing one of the two names keeps the content; removing both drops it.
    (corpus / "notes.md").unlink()
    _, index = _ingest([corpus], index_dir, prune=True)
    assert len(index.documents) == 3
    (corpus / "copy-of-notes.md").unlink()
    _, index = _ingest([corpus], index_dir, prune=True)
    assert len(index.documents) == 2


def test_skipped_files_are_listed_not_fatal(tmp_path):
    corpus, index_dir = _corpus(tmp_path / "docs"), tmp_path / "idx"
    (corpus / "image.xyz").write_bytes(b"\x00\x01")
    (corpus / "empty.txt").write_text("")
    (corpus / "junk.txt").write_bytes(bytes(range(256)) * 40)
    report, _ = _ingest([corpus], index_dir)
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == {"image.xyz", "empty.txt", "junk.txt"}
    assert len(report.added) == 3


def test_bad_paths_raise_clear_errors(tmp_path):
    with pytest.raises(InputPathError, match="does-not-exist"):
        _ingest([tmp_path / "does-not-exist"], tmp_path / "idx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputPathError, match="empty"):
        _ingest([tmp_path / "empty"], tmp_path / "idx")
    assert not (tmp_path / "idx" / "CURRENT").exists()


def test_rebuild_starts_fresh(tmp_path):
    corpus, index_dir = _corpus(tmp_path / "docs"), tmp_path / "idx"
    first, _ = _ingest([corpus], index_dir)
    (corpus / "sub" / "tea.txt").unlink()
    report, index = _ingest([corpus], index_dir, rebuild=True)
    assert report.chunks_embedded == first.chunks_embedded - 1
    assert len(index.documents) == 2


def test_documents_of_only_stop_words_index_and_reload(tmp_path):
    corpus, index_dir = tmp_path / "docs", tmp_path / "idx"
    corpus.mkdir()
    (corpus / "a.txt").write_text("it is what it is\n")
    _ingest([corpus], index_dir)
    assistant = Assistant.open(index_dir, Settings(index=index_dir))
    assert assistant.stats()["chunks"] == 1
    assert assistant.ask("What is it?").text  # answered or abstained, never a crash


def test_prune_keeps_files_of_a_folder_that_cannot_be_listed(tmp_path, monkeypatch):
    import rag.ingest
    from rag.documents import LoadReport, SkippedFile, load_paths

    corpus, index_dir = _corpus(tmp_path / "docs"), tmp_path / "idx"
    _ingest([corpus], index_dir)

    def sub_unlistable(paths, max_file_mb=50.0):
        report = load_paths(paths, max_file_mb)
        sub = corpus / "sub"
        kept = [d for d in report.documents if not d.path.startswith(str(sub.resolve()))]
        return LoadReport(kept, report.skipped + [SkippedFile(str(sub.resolve()), "permission denied")], report.notes)

    monkeypatch.setattr(rag.ingest, "load_paths", sub_unlistable)
    report, index = _ingest([corpus], index_dir, prune=True)
    assert report.removed == [] and len(index.documents) == 3


def test_vanished_files_are_pointed_out_without_prune(tmp_path):
    corpus, index_dir = _corpus(tmp_path / "docs"), tmp_path / "idx"
    _ingest([corpus], index_dir)
    (corpus / "notes.md").unlink()
    report, _ = _ingest([corpus], index_dir)
    assert any("--prune" in note and "1 indexed file" in note for note in report.notes)


def test_unchanged_ingest_saves_the_context_index_an_older_index_lacks(tmp_path):
    import json

    from rag.index import CONTEXT_KEYWORD_DIR, MANIFEST
    from rag.storage import current_generation

    corpus, index_dir = _corpus(tmp_path / "docs"), tmp_path / "idx"
    _ingest([corpus], index_dir)
    folder = current_generation(index_dir)
    shutil.rmtree(folder / CONTEXT_KEYWORD_DIR)  # as a version without the context index wrote it
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["context_keyword"]
    write_unsealed_manifest(folder, manifest)
    report, _ = _ingest([corpus], index_dir)
    assert report.chunks_embedded == 0 and len(report.unchanged) == 3
    upgraded = current_generation(index_dir)
    assert upgraded != folder and (upgraded / CONTEXT_KEYWORD_DIR).exists()
    assert not Index.load(index_dir, Settings(index=index_dir)).needs_save
