"""The small frozen values the engine hands to its front ends."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk: ``text == document[start:end]``."""

    source: str
    start: int
    end: int
    text: str
    score: float
    line: int = 1
    page: int | None = None
    sentences: tuple[tuple[int, int], ...] = ()
    # The span of the sentence that best matches the question, when one was picked out (the
    # closest passages of a question the documents do not cover): previews start there.
    focus: tuple[int, int] | None = None

    def to_json(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k != "sentences"}
        data["score"] = round(self.score, 4)
        for key in ("page", "focus"):
            if data[key] is None:
                data.pop(key)
        return data

    def as_citation(self, n: int) -> Citation:
        """The passage as a source to show and open: its best-matching sentence (or all of it)
        highlighted, for a question the documents do not cover."""
        start, end = self.focus if self.focus is not None else (self.start, self.end)
        line = self.line + self.text.count("\n", 0, start - self.start)
        return Citation(n, self.source, start, end, self.text[start - self.start:end - self.start],
                        line, self, self.page)

    def lead(self) -> tuple[int, str]:
        """(line, text) from its best-matching sentence on ("…" marks a cut), or of all of it."""
        if self.focus is None or self.focus[0] <= self.start:
            return self.line, self.text
        cut = self.focus[0] - self.start
        return self.line + self.text.count("\n", 0, cut), "… " + self.text[cut:]


@dataclass(frozen=True)
class Citation:
    """``[n]`` in an answer: ``text == document[start:end]``, inside ``passage``."""

    n: int
    source: str
    start: int
    end: int
    text: str
    line: int
    passage: Passage
    page: int | None = None

    def to_json(self) -> dict:
        data = {"n": self.n, "source": self.source, "start": self.start, "end": self.end,
                "text": self.text, "line": self.line,
                "passage": {"start": self.passage.start, "end": self.passage.end}}
        if self.page is not None:
            data["page"] = self.page
        return data


@dataclass(frozen=True)
class Answer:
    question: str
    found: bool
    text: str
    citations: tuple[Citation, ...] = ()
    passages: tuple[Passage, ...] = ()
    confidence: float = 0.0
    query: str = ""  # the question as searched, after follow-up resolution
    timings: dict = field(default_factory=dict)
    # What the confidence was computed from: the scorer's best probability, the best passage
    # cosine, the share of the question's words found, ...
    evidence: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "answer": self.text,
            "found": self.found,
            "citations": [c.to_json() for c in self.citations],
            "passages": [p.to_json() for p in self.passages],
            "confidence": round(self.confidence, 4),
            "query": self.query,
            "timings_ms": {k: round(v * 1000, 2) for k, v in self.timings.items()},
            "evidence": {k: round(v, 4) for k, v in self.evidence.items()},
        }


@dataclass(frozen=True)
class Turn:
    """One exchange of a conversation, kept for follow-up questions."""

    question: str
    answer: Answer


def line_of(text: str, offset: int) -> int:
    """The 1-based line of ``text`` that holds ``offset``."""
    return text.count("\n", 0, offset) + 1


def page_of(page_starts: Sequence[int], offset: int) -> int | None:
    """The 1-based page holding ``offset`` (PDFs), or None for a document without pages."""
    if not page_starts:
        return None
    return bisect.bisect_right(page_starts, offset)
