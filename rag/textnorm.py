"""Text as a rule-based screen should read it: compatibility forms folded (NFKC), invisible characters
(zero-width, bidi controls, soft hyphens) dropped, Cyrillic/Greek look-alike letters inside Latin words
mapped to Latin, and leetspeak digits inside words read as letters ("1gn0re" -> "Ignore").

The result keeps a map back to the original text, so spans found in it can be reported in the original.

Example: ``unmask("Ign\\u200bore")[0] == "Ignore"``
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence

# Characters that render as nothing (or only steer text direction) and can split a word unseen.
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
                        "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]")
# Cyrillic and Greek letters that look like Latin ones (a small subset of Unicode's confusables list).
_CONFUSABLES = str.maketrans(
    "АВЕЅІЈКМНОРСТХУаеіјорсуххѕԁԛԝһӏ"  # Cyrillic
    "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧοιαν",  # Greek
    "ABESIJKMHOPCTXYaeijopcyxxsdqwhl"
    "ABEZHIKMNOPTYXoiav")
_LOOKALIKE = frozenset(chr(c) for c in _CONFUSABLES)
_LEET = str.maketrans("013457", "oieast")
# Only a word with a Latin letter and a digit or a Greek/Cyrillic letter can change. _WORD finds those words,
# each from its start (the lookbehind keeps the scan linear).
_LATIN = re.compile(r"[A-Za-z]")
_SUSPECT = re.compile(r"[\d\u0370-\u03ff\u0400-\u052f]")
_WORD = re.compile(r"(?<![^\W_])(?=[^\W_]*?[A-Za-z])[^\W_]*?[\d\u0370-\u03ff\u0400-\u052f][^\W_]*")
_RUN_CHAR = re.compile(r"[\w\u0370-\u052f]")  # the chars of a _WORD match, and underscores
_RUN = re.compile(r"[\w\u0370-\u052f]*")


def unmask(text: str) -> tuple[str, Sequence[int]]:
    """(screened text, origin): ``origin[j]`` is the index in ``text`` of the char that gave char ``j``.

    Example: ``unmask("prev1ous")[0] == "previous"``
    """
    screened, origin = _folded(text)
    if not _SUSPECT.search(screened):
        return screened, origin
    pieces, last = [], 0
    for match in _suspect_words(screened):  # same length in and out: origin stays valid
        word = match.group(0)
        fixed = _read_word(word)
        if fixed != word:
            pieces += [screened[last:match.start()], fixed]
            last = match.end()
    return "".join(pieces) + screened[last:], origin


def _suspect_words(text: str) -> Iterator[re.Match]:
    """``_WORD.finditer(text)``, searched only in the runs of word chars that hold a digit or a Greek or
    Cyrillic letter (a word never spans two runs): in prose most of the text is skipped at C speed."""
    end = 0
    while found := _SUSPECT.search(text, end):
        start = found.start()
        while start > 0 and _RUN_CHAR.match(text[start - 1]):
            start -= 1
        run = _RUN.match(text, found.start())
        assert run is not None  # _RUN ends in "*": it matches, if only the empty string
        end = run.end()
        yield from _WORD.finditer(text, start, end)


def _folded(text: str) -> tuple[str, Sequence[int]]:
    """``text`` with invisible characters dropped and each other char NFKC-folded, and the origin map."""
    changed = {} if text.isascii() else {
        c: folded for c in set(text)
        if (folded := "" if _INVISIBLE.match(c) else unicodedata.normalize("NFKC", c)) != c}
    if not changed:
        return text, range(len(text))
    pieces, origin, last = [], [], 0
    for match in re.finditer("[" + "".join(map(re.escape, changed)) + "]", text):
        at = match.start()
        pieces += [text[last:at], changed[match.group(0)]]
        origin += [*range(last, at), *[at] * len(changed[match.group(0)])]
        last = at + 1
    return "".join(pieces) + text[last:], origin + list(range(last, len(text)))


def _read_word(word: str) -> str:
    """A word with look-alike letters or leetspeak digits among Latin letters read as plain Latin."""
    if not _LATIN.search(word):
        return word  # "2024", "Москва": nothing to read as Latin
    latin = len(_LATIN.findall(word))
    if any(c in _LOOKALIKE for c in word):
        word = word.translate(_CONFUSABLES)
    digits = sum(c.isdigit() for c in word)
    # "1gn0re", "prev1ous"; not "2024", "K2", "1990s", "mp3" (too few letters around the digits).
    if digits and latin >= 3 and digits <= latin:
        # A digit that opens the word reads as a capital, so "1gn0re" can still start a sentence.
        first = word[0].translate(_LEET)
        word = (first.upper() if word[0].isdigit() else first) + word[1:].translate(_LEET)
    return word


def original_span(origin: Sequence[int], start: int, end: int) -> tuple[int, int]:
    """The span in the original text of screened chars [start, end).

    Example: ``original_span([0, 2, 3], 1, 3) == (2, 4)``
    """
    return origin[start], origin[end - 1] + 1
