"""The small frozen values the engine hands to its front ends."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Locator:
    """Where a part of a converted document starts, beyond its line: a slide of a presentation, a
    chapter of a book, a message of a mailbox (PDF pages keep their own ``page``)."""

    start: int  # offset in the document's text
    kind: str  # "slide", "chapter" or "message"
    number: int  # 1-based, in the document's order
    label: str = ""  # the slide's or chapter's title, the message's subject and sender
    date: str = ""  # ISO date of a message

    def __str__(self) -> str:
        return f"{self.kind} {self.number}" + (f" ({self.label})" if self.label else "")

    def to_json(self) -> dict:
        data = {"kind": self.kind, "number": self.number, "label": self.label}
        if self.date:
            data["date"] = self.date
        return data


def locator_at(locators: Sequence[Locator], offset: int) -> Locator | None:
    """The part of the document holding ``offset``, or None (before the first, or none)."""
    at = bisect.bisect_right([loc.start for loc in locators], offset)
    return locators[at - 1] if at else None


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
    locator: Locator | None = None

    def to_json(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k not in ("sentences", "locator")}
        data["score"] = round(self.score, 4)
        for key in ("page", "focus"):
            if data[key] is None:
                data.pop(key)
        if self.locator is not None:
            data["locator"] = self.locator.to_json()
        return data

    def as_citation(self, n: int) -> Citation:
        """The passage as a source to show and open: its best-matching sentence (or all of it)
        highlighted, for a question the documents do not cover."""
        start, end = self.focus if self.focus is not None else (self.start, self.end)
        line = self.line + self.text.count("\n", 0, start - self.start)
        return Citation(n, self.source, start, end, self.text[start - self.start:end - self.start],
                        line, self, self.page, self.locator)

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
    locator: Locator | None = None

    def to_json(self) -> dict:
        data = {"n": self.n, "source": self.source, "start": self.start, "end": self.end,
                "text": self.text, "line": self.line,
                "passage": {"start": self.passage.start, "end": self.passage.end}}
        if self.page is not None:
            data["page"] = self.page
        if self.locator is not None:
            data["locator"] = self.locator.to_json()
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
    scope: str | None = None  # the documents it was answered from, when not all (qa.search.scope)


def line_of(text: str, offset: int) -> int:
    """The 1-based line of ``text`` that holds ``offset``."""
    return text.count("\n", 0, offset) + 1


def page_of(page_starts: Sequence[int], offset: int) -> int | None:
    """The 1-based page holding ``offset`` (PDFs), or None for a document without pages."""
    if not page_starts:
        return None
    return bisect.bisect_right(page_starts, offset)
