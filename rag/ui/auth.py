"""Logins for a shared chat: ``RAG_AUTH`` names a file of ``user:hash`` lines, checked through gradio's auth.

Hashes are PBKDF2-SHA256 (stdlib), written as ``pbkdf2_sha256$ITERATIONS$SALT$HASH``; ``rag hash-password
USER`` prints a line for the file. Passwords themselves are never stored.

Example: ``check = load_users(Path("users.txt")); check("ann", "secret")  # True or False``
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError

SCHEME = "pbkdf2_sha256"
# OWASP's 2023 figure for PBKDF2-SHA256.
ITERATIONS = 600_000


def hash_password(password: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """A storable hash of ``password``: ``hash_password("pw").startswith("pbkdf2_sha256$")``."""
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a hash from :func:`hash_password` (constant-time comparison)."""
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        computed = hashlib.pbkdf2_hmac("sha256", password.encode(), _unb64(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(computed, _unb64(digest))


def read_users(path: Path) -> dict[str, str]:
    """User name -> hash from a ``user:hash`` file (blank lines and ``#`` comments skipped).

    Example: ``read_users(Path("users.txt")) == {"ann": "pbkdf2_sha256$600000$..."}``
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"Cannot read the RAG_AUTH file {path}: {exc.strerror or exc}. Fix the path.") from exc
    users = {}
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, stored = line.partition(":")
        if not sep or not user.strip() or not stored.strip().startswith(SCHEME + "$"):
            raise ConfigError(f"{path} line {number} is not 'user:{SCHEME}$...'; "
                              "write it with `rag hash-password USER`.")
        users[user.strip()] = stored.strip()
    if not users:
        raise ConfigError(f"The RAG_AUTH file {path} lists no users; add one with `rag hash-password USER`.")
    return users


def load_users(path: Path) -> Callable[[str, str], bool]:
    """Gradio's ``auth`` callable for the users in ``path`` (read once, at start)."""
    users = read_users(path)

    def check(user: str, password: str) -> bool:
        stored = users.get(user)
        return stored is not None and verify_password(password, stored)

    return check


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError("bad base64") from exc
