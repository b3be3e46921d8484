"""Conversations kept in the browser (gradio's BrowserState, i.e. localStorage): save, list, switch,
rename, delete, and export one as Markdown with its sources. Pure functions over a plain dict:

``{"current": ID, "items": {ID: {"title", "chat", "turns", "log", "updated"}}}`` where ``chat`` is the
rendered messages, ``turns`` the (question, answer text) history for follow-ups and ``log`` the
(question, answer with sources as plain text) pairs the export uses.

Example: ``store = save(empty(), "c1", chat, turns, log); choices(store) == [("When did ...?", "c1")]``
"""
from __future__ import annotations

import time
import uuid

TITLE_CHARS = 60
# Conversations kept per browser; the oldest go first (localStorage holds a few MB).
MAX_CONVERSATIONS = 50


def empty() -> dict:
    """A store with no conversations."""
    return {"current": "", "items": {}}


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def checked(store) -> dict:
    """``store`` when it has the expected shape (a browser may hold an old or damaged one), else empty()."""
    if isinstance(store, dict) and isinstance(store.get("items"), dict):
        return store
    return empty()


def title_of(question: str) -> str:
    """A conversation's default title: its first question, shortened."""
    question = " ".join(question.split())
    return question if len(question) <= TITLE_CHARS else question[: TITLE_CHARS - 1].rstrip() + "…"


def save(store: dict, conv_id: str, chat: list, turns: list, log: list) -> dict:
    """``store`` with conversation ``conv_id`` holding these messages (a new store; empty chats are not kept)."""
    store = checked(store)
    items = dict(store["items"])
    if chat and conv_id:
        old = items.get(conv_id, {})
        title = old.get("title") or (title_of(log[0][0]) if log else "Conversation")
        items[conv_id] = {"title": title, "chat": chat, "turns": turns, "log": log, "updated": time.time()}
    for stale in sorted(items, key=lambda i: items[i].get("updated", 0))[:-MAX_CONVERSATIONS]:
        del items[stale]
    return {"current": conv_id, "items": items}


def choices(store: dict) -> list[tuple[str, str]]:
    """(title, id) of every conversation, most recently used first."""
    items = checked(store)["items"]
    return [(items[i].get("title") or "Conversation", i)
            for i in sorted(items, key=lambda i: -items[i].get("updated", 0))]


def rename(store: dict, conv_id: str, title: str) -> dict:
    """``store`` with ``conv_id`` titled ``title`` (blank titles are ignored)."""
    store = checked(store)
    title = " ".join((title or "").split())[:120]
    if conv_id not in store["items"] or not title:
        return store
    items = dict(store["items"])
    items[conv_id] = {**items[conv_id], "title": title}
    return {**store, "items": items}


def delete(store: dict, conv_id: str) -> dict:
    """``store`` without ``conv_id``; the current one becomes the most recent left (or none)."""
    store = checked(store)
    items = {i: c for i, c in store["items"].items() if i != conv_id}
    rest = choices({"items": items})
    return {"current": rest[0][1] if rest else "", "items": items}


def to_markdown(conversation: dict) -> str:
    """One conversation as Markdown: its title, then each question and answer with the answer's sources.

    Example: ``to_markdown({"title": "T", "log": [["Q?", "A [1].\\n\\nSources:\\n[1] Doc"]]})``
    """
    parts = [f"# {conversation.get('title') or 'Conversation'}"]
    for question, answer in conversation.get("log", []):
        parts.append(f"**You:** {question}")
        text, _, sources = answer.partition("\n\nSources:\n")
        parts.append(f"**Assistant:** {text}")
        if sources:
            parts.append("Sources:\n\n" + "\n".join(f"- {line}" for line in sources.splitlines()))
    return "\n\n".join(parts) + "\n"
