"""The README's Python example runs as written (against a temporary index folder)."""
from __future__ import annotations

import re

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def test_python_example_runs(tmp_path, monkeypatch, capsys):
    block = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    code = block.replace('"indexes/default"', repr(str(tmp_path / "index"))).replace('["seeds"]', repr([str(ROOT / "seeds")]))
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "July 2023" in out and "[1]" in out
    assert "gallium" in out, "the streamed example answers too"
