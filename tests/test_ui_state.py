"""The chat's browser-kept conversations, logins and document library, as pure functions (no browser)."""
from __future__ import annotations


import pytest

from rag.errors import ConfigError
from rag.ui import conversations as convs
from rag.ui.auth import hash_password, load_users, read_users, verify_password
from rag.ui.render import for_end_user
from rag.ui.library import LibraryRow, filter_rows, render_library


def test_conversations_save_list_rename_delete():
    store = convs.save(convs.empty(), "a", ["<p>x</p>"], [["When?", "July [1]."]], [["When?", "July [1]."]])
    store = convs.save(store, "b", ["<p>y</p>"], [["Who?", "Ann."]], [["Who?", "Ann."]])
    assert [c for _, c in convs.choices(store)] == ["b", "a"] and store["current"] == "b"
    assert convs.choices(store)[1][0] == "When?"
    store = convs.rename(store, "a", "  Rare   metals ")
    assert dict((c, t) for t, c in convs.choices(store))["a"] == "Rare metals"
    assert convs.rename(store, "a", "   ") == store
    store = convs.delete(store, "b")
    assert [c for _, c in convs.choices(store)] == ["a"] and store["current"] == "a"
    assert convs.delete(store, "a") == {"current": "", "items": {}}
    assert convs.save(convs.empty(), "c", [], [], [])["items"] == {}  # an empty chat is not kept


def test_a_damaged_store_is_treated_as_empty_and_old_conversations_are_dropped():
    assert convs.checked(None) == convs.empty() and convs.checked({"items": 3}) == convs.empty()
    store = convs.empty()
    for n in range(convs.MAX_CONVERSATIONS + 3):
        store = convs.save(store, f"c{n}", ["m"], [], [[f"q{n}", "a"]])
    assert len(store["items"]) == convs.MAX_CONVERSATIONS and "c0" not in store["items"]


def test_markdown_export_lists_questions_answers_and_sources():
    md = convs.to_markdown({"title": "Metals", "log": [["When?", "In July [1].\n\nSources:\n[1] Notes (n.txt)"]]})
    assert md == "# Metals\n\n**You:** When?\n\n**Assistant:** In July [1].\n\nSources:\n\n- [1] Notes (n.txt)\n"
    assert convs.to_markdown({}) == "# Conversation\n"


def test_passwords_are_checked_against_hashes_from_the_users_file(tmp_path):
    stored = hash_password("s3cret", iterations=1000)
    assert verify_password("s3cret", stored) and not verify_password("wrong", stored)
    assert not verify_password("s3cret", "garbage") and not verify_password("x", "pbkdf2_sha256$1$!!$!!")
    users = tmp_path / "users.txt"
    users.write_text(f"# team\nann:{stored}\n\n", encoding="utf-8")
    check = load_users(users)
    assert check("ann", "s3cret") and not check("ann", "nope") and not check("bob", "s3cret")


@pytest.mark.parametrize("content", ["", "ann:plaintext\n", ":pbkdf2_sha256$1$a$b\n"])
def test_a_bad_users_file_is_a_config_error_naming_the_fix(tmp_path, content):
    users = tmp_path / "users.txt"
    users.write_text(content)
    with pytest.raises(ConfigError, match="rag hash-password"):
        read_users(users)
    with pytest.raises(ConfigError, match="Cannot read"):
        read_users(tmp_path / "missing.txt")


def test_end_users_never_see_setting_names():
    message = "The question is 10,000 characters long; the limit is 2,000 (RAG_MAX_QUESTION_CHARS). Ask less."
    assert for_end_user(message) == "The question is 10,000 characters long; the limit is 2,000. Ask less."
    locked = "Another process is writing to the index. Try again later, or wait longer with RAG_LOCK_TIMEOUT."
    assert for_end_user(locked) == "Another process is writing to the index."
    assert for_end_user("Set RAG_X.") == "Set RAG_X."


def test_library_search_and_table():
    rows = [LibraryRow("/u/報告.txt", "報告.txt", "Quarterly report", "2025-01-02", 2048, 3, 1_700_000_000.0),
            LibraryRow("/s/notes.md", "notes.md", "Export notes", "", 10, 1, None)]
    assert filter_rows(rows, "REPORT") == rows[:1] and filter_rows(rows, "") == rows
    assert filter_rows(rows, "export notes") == rows[1:] and filter_rows(rows, "報告") == rows[:1]
    html = render_library(rows[:1], total=2)
    assert "1 of 2 files" in html and "報告.txt" in html and "2.0 KB" in html
    assert "file missing" in render_library(rows[1:], total=1)
    assert "No documents" in render_library([], total=0)


def test_rag_hash_password_writes_a_line_the_users_file_accepts(tmp_path):
    from typer.testing import CliRunner

    from rag.cli import app as cli

    result = CliRunner().invoke(cli, ["hash-password", "ann"], input="pw one\npw one\n")
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("ann:pbkdf2_sha256$") and "pw one" not in line
    users = tmp_path / "users.txt"
    users.write_text(line + "\n")
    assert load_users(users)("ann", "pw one")
    assert CliRunner().invoke(cli, ["hash-password", "a:b"], input="x\nx\n").exit_code == 2
