"""The answerer registry: built-in modules are found without a list, plugins come through entry points,
and the names the settings accept are the registered ones."""
from __future__ import annotations

import threading
from importlib.metadata import EntryPoint

import pytest
from pydantic import ValidationError

from rag.backends import base
from rag.backends.base import ENTRY_POINT_GROUP, answerer_names, create_answerer
from rag.config import Settings
from rag.errors import ConfigError

PLUGIN = '''
from rag.backends.base import Answerer


class EchoAnswerer(Answerer):
    def answer(self, question, sources, history=None):
        yield f"{question} [1]."
'''


@pytest.fixture()
def plugin(monkeypatch, tmp_path):
    """A package on the path that offers ``echo`` (and one broken plugin) through the entry-point group."""
    (tmp_path / "echo_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    points = [EntryPoint("echo", "echo_plugin:EchoAnswerer", ENTRY_POINT_GROUP),
              EntryPoint("broken", "no_such_module_here:Nothing", ENTRY_POINT_GROUP)]
    monkeypatch.setattr(base, "entry_points", lambda group: [p for p in points if p.group == group])
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    monkeypatch.setattr(base, "_discovered", threading.Event())


def test_built_in_answerers_are_discovered_and_validated():
    assert {"extractive", "openai", "ollama"} <= set(answerer_names())
    with pytest.raises(ValidationError, match="unknown answerer 'gpt5'; valid: extractive, "):
        Settings(answerer="gpt5")
    # A name that skipped validation: the factory still names the valid ones.
    with pytest.raises(ConfigError, match="Unknown answerer 'missing'; valid: extractive"):
        create_answerer(Settings.model_construct(answerer="missing"))


def test_extractive_answerer_needs_the_embedder():
    with pytest.raises(ConfigError, match="create_answerer\\(settings, embedder\\)"):
        create_answerer(Settings(answerer="extractive"))


def test_a_plugin_answerer_is_selectable_by_its_entry_point_name(plugin):
    with pytest.warns(UserWarning, match="'broken'"):
        names = answerer_names()
    assert "echo" in names and "broken" not in names
    answerer = create_answerer(Settings(answerer="echo"))
    assert answerer.name == "echo" and "".join(answerer.answer("Why?", [])) == "Why? [1]."
