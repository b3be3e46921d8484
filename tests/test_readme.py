"""The README's Python example runs as written (against a temporary index folder); its configuration table
names every setting."""
from __future__ import annotations

import re

import pytest

from conftest import ROOT
from rag.config import Settings


def test_every_setting_is_in_the_configuration_table():
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `RAG_")]
    documented = {name for row in rows for name in re.findall(r"`(RAG_[A-Z0-9_]+)`", row.split("|")[1])}
    assert {f"RAG_{field.upper()}" for field in Settings.model_fields} - documented == set()


@pytest.mark.slow
def test_python_example_runs(tmp_path, monkeypatch, capsys):
    block = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    code = block.replace('"indexes/default"', repr(str(tmp_path / "index")))
    code = code.replace('["seeds"]', repr([str(ROOT / "seeds")]))
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "July 2023" in out and "[1]" in out
    assert "gallium" in out, "the streamed example answers too"
