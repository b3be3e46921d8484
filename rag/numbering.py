"""Source numbers in citing order: the sources an answer cites become 1..n in the order its text first
cites them (so the markers have no gaps), and the uncited sources follow in rank order.

Numbering happens once, when the Answer is built, so ``[n]`` means the same source in the text, the UI,
the CLI JSON and the eval report.

Example: ``citing_order("B [3]. A [1].", [1, 2, 3]) == {3: 1, 1: 2, 2: 3}``
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from .text import MARKER, marker_numbers
from .types import Citation, SentenceCheck


def citing_order(text: str, numbers: list[int]) -> dict[int, int]:
    """Old number -> new number: cited ones (among ``numbers``) by first citation, then the rest in order.

    Example: ``citing_order("No markers.", [1, 2]) == {1: 1, 2: 2}``
    """
    known = set(numbers)
    order: list[int] = []
    for match in MARKER.finditer(text):
        order.extend(n for n in marker_numbers(match.group(1)) if n in known and n not in order)
    order.extend(n for n in numbers if n not in order)
    return {old: new for new, old in enumerate(order, start=1)}


def renumber_markers(text: str, mapping: dict[int, int]) -> str:
    """``text`` with every marker's numbers mapped (numbers not in ``mapping`` kept as they are).

    Example: ``renumber_markers("A [2-3].", {2: 1, 3: 2}) == "A [1, 2]."``
    """
    def swap(match) -> str:
        numbers = [mapping.get(n, n) for n in marker_numbers(match.group(1))]
        return "[" + ", ".join(str(n) for n in dict.fromkeys(numbers)) + "]"

    return MARKER.sub(swap, text)


def renumber(text: str, sources: list[Citation], checks: list[SentenceCheck],
             mapping: dict[int, int]) -> tuple[str, list[Citation], list[SentenceCheck]]:
    """Text, sources (sorted by their new number) and sentence checks with ``mapping`` applied; the inputs
    are not changed.

    Example: ``renumber("A [2].", sources, [], {2: 1, 1: 2})[0] == "A [1]."``
    """
    def key(numbers: dict) -> dict:
        return {mapping.get(n, n): value for n, value in numbers.items()}

    new_sources = sorted((replace(c, number=mapping.get(c.number, c.number)) for c in sources),
                         key=lambda c: c.number)
    new_checks = [replace(check, sentence=renumber_markers(check.sentence, mapping),
                          cited=[mapping.get(n, n) for n in check.cited],
                          citation_supported=key(check.citation_supported), evidence=key(check.evidence))
                  for check in checks]
    return renumber_markers(text, mapping), new_sources, new_checks


class LiveNumbering:
    """Citing-order numbers for text that arrives in pieces: each source gets the next number when a marker
    first cites it, as :func:`citing_order` gives for the whole text, so what streams matches the Answer.
    A piece ending inside a possible marker (``"... [1"``) is held back until the marker is complete.

    Example: ``live = LiveNumbering([1, 2, 3]); live.feed("B [3"); live.feed("]. A [1].") == "B [1]. A [2]."``
    """

    # Longer than any marker the grammar accepts ("[100, 101, 102]"...): an unclosed "[" this far back is text.
    HOLD_CHARS = 40

    def __init__(self, numbers: Iterable[int]):
        self.known = set(numbers)
        self.mapping: dict[int, int] = {}
        self._held = ""

    def feed(self, piece: str) -> str:
        """The text that can be shown now, renumbered (possibly empty)."""
        text = self._held + piece
        at = text.rfind("[")
        cut = at if at >= 0 and "]" not in text[at:] and len(text) - at <= self.HOLD_CHARS else len(text)
        ready, self._held = text[:cut], text[cut:]
        return self._renumber(ready)

    def flush(self) -> str:
        """Whatever was held back, at the end of the stream."""
        ready, self._held = self._held, ""
        return self._renumber(ready)

    def _renumber(self, text: str) -> str:
        for match in MARKER.finditer(text):
            for n in marker_numbers(match.group(1)):
                if n in self.known and n not in self.mapping:
                    self.mapping[n] = len(self.mapping) + 1
        return renumber_markers(text, self.mapping)
