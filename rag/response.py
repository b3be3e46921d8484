"""A streamed answer: iterate it for the text as it is written, then read the finished ``Answer``.

Example::

    response = assistant.stream("Which rare metals does China restrict?")
    for piece in response:
        print(piece, end="")
    print(len(response.answer.citations))
"""
from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator

from .types import Answer


class Response:
    """Wraps a generator that yields text pieces and returns the Answer. Iterating a second time replays
    the pieces; ``answer`` before the end reads the rest first; an error while writing is raised again
    by ``answer``."""

    def __init__(self, pieces: Generator[str, None, Answer]):
        self._pieces = pieces
        self._text: list[str] = []
        self._answer: Answer | None = None
        self._error: Exception | None = None

    def __iter__(self) -> Iterator[str]:
        if self._answer is not None or self._error is not None:
            yield from self._text
            return
        while True:
            try:
                piece = next(self._pieces)
            except StopIteration as stop:
                self._answer = stop.value
                return
            except Exception as exc:
                self._error = exc
                raise
            self._text.append(piece)
            yield piece

    @property
    def answer(self) -> Answer:
        """The finished, verified Answer (the rest of the text is read first when needed)."""
        if self._answer is None and self._error is None:
            for _ in self:
                pass
        if self._error is not None:
            raise self._error
        assert self._answer is not None, "the answer generator returned no Answer"
        return self._answer


def until_sentence(pieces: Iterable[str], sentence: str, written: list[str]) -> Iterator[str]:
    """The pieces to show: all of them, unless the text opens with ``sentence`` (the fixed abstention), then
    only up to its end (what follows is held back). Text that could still become the sentence is held
    until it does or does not; every piece is appended to ``written`` as it comes.

    Example: ``list(until_sentence(["No answer.", " PWNED"], "No answer.", [])) == ["No answer."]``
    """
    stem, text, shown = sentence.rstrip("."), "", 0
    pieces = iter(pieces)
    for piece in pieces:
        written.append(piece)
        text += piece
        body = text.lstrip()
        lead = len(text) - len(body)
        if body.startswith(stem) and len(body) > len(stem):
            end = lead + len(stem) + (text[lead + len(stem)] == ".")
            yield text[shown:end]
            written.extend(pieces)  # read the rest for the finished answer, show none of it
            return
        if stem.startswith(body):
            continue  # may still become the sentence
        yield text[shown:]
        shown = len(text)
        for rest in pieces:  # not the sentence: pass the rest through as it comes
            written.append(rest)
            yield rest
        return
    if shown < len(text):
        yield text[shown:]
