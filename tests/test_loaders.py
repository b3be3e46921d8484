"""The loader registry: a decorated function is all a new file type needs."""
from __future__ import annotations

import pytest

from rag import loaders
from rag.documents import discover_files, load_file
from rag.loaders import Extracted, extract, loader, supported_suffixes


@pytest.fixture()
def registry(monkeypatch):
    """The loader registry, restored after the test."""
    monkeypatch.setattr(loaders, "_LOADERS", dict(loaders._LOADERS))


def test_built_in_loaders_cover_the_documented_types():
    assert supported_suffixes() == {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"}
    assert extract("a.HTM", b"<title>T</title><p>Body</p>").title == "T"
    assert extract("a.unknown", b"plain").text == "plain"  # read as plain text


def test_a_registered_loader_is_found_loaded_and_listed(registry, tmp_path):
    @loader(".RST")
    def extract_rst(data: bytes) -> Extracted:
        return Extracted(text=data.decode().replace("=", "").strip())

    (tmp_path / "notes.rst").write_bytes(b"Title\n=====\n\nRestructured body.")
    (tmp_path / "notes.odt").write_bytes(b"no loader")
    assert ".rst" in supported_suffixes()
    files, skipped = discover_files([tmp_path])
    assert [f.name for f in files] == ["notes.rst"] and [s.reason for s in skipped] == ["unsupported type .odt"]
    assert load_file(tmp_path / "notes.rst", 1).text == "Title\n\n\nRestructured body."
