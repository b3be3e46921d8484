"""Plain data passed between the stages: Citation and Answer (the public contracts).

Example: ``Citation(number=1, doc_id="ab12", title="Notes", source="a.txt", text="...", start=0, end=42)``
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Citation:
    """One passage shown as source ``[number]``; ``start``/``end`` are char offsets in the document text."""

    number: int
    doc_id: str
    title: str
    source: str
    text: str
    start: int
    end: int
    score: float = 0.0
    url: str | None = None
    date: str | None = None
    chunk_id: str = ""
    page: int | None = None
    # Filled by citation verification: whether the sentences citing it are supported by it.
    supported: bool | None = None
    support_score: float | None = None
    # Char spans within ``text`` of the sentence(s) that support the answer sentences citing this source
    # (what the UI highlights); empty when nothing in the passage supports them.
    evidence: list[tuple[int, int]] = field(default_factory=list)
    # Char spans within ``text`` holding text addressed to AI systems (see rag/injection.py): never quoted
    # as an answer, labelled in the LLM prompt, warned about in the UI.
    instructions: list[tuple[int, int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready dict of every field."""
        return asdict(self)


@dataclass
class SentenceCheck:
    """Verification result for one answer sentence and the sources it cites."""

    sentence: str
    cited: list[int]
    support_score: float
    supported: bool
    # Per cited source number: does that passage support this sentence?
    citation_supported: dict[int, bool] = field(default_factory=dict)
    # Why the sentence is unsupported, in words ("the passage does not mention 2024"); empty when supported.
    reason: str = ""
    # Per cited source number: char spans within that source's text of the supporting sentence(s).
    evidence: dict[int, list[tuple[int, int]]] = field(default_factory=dict)


@dataclass
class Answer:
    """An answer whose ``text`` carries ``[n]`` markers that point into ``citations`` by number.

    ``sources`` are every retrieved passage, numbered 1..k in rank order (the numbers the answerer saw);
    ``citations`` are the subset the text cites, with the same numbers, so ``[n]`` always means source n.
    """

    text: str
    citations: list[Citation] = field(default_factory=list)
    sources: list[Citation] = field(default_factory=list)
    abstained: bool = False
    question: str = ""
    standalone_question: str = ""
    sentences: list[SentenceCheck] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    answerer: str = ""

    @property
    def unsupported_sentences(self) -> list[str]:
        """Answer sentences whose citations failed verification."""
        return [s.sentence for s in self.sentences if not s.supported]

    def to_dict(self) -> dict:
        """The JSON shape used by ``rag ask --json`` and the eval report."""
        return {
            "question": self.question,
            "standalone_question": self.standalone_question,
            "answer": self.text,
            "abstained": self.abstained,
            "answerer": self.answerer,
            "citations": [c.to_dict() for c in self.citations],
            "sources": [c.to_dict() for c in self.sources],
            "unsupported_sentences": self.unsupported_sentences,
            "timings": self.timings,
        }
