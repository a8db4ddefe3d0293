"""Answers, passages and documents as ``rich.text.Text``: document text is data, never markup.

Pure functions (no Textual), so the rules for what is shown are testable on their own.
"""

from __future__ import annotations

import re


from rich.style import Style
from rich.text import Text

from qa.results import Answer, Citation, Passage

MARKER = re.compile(r"\[(\d+)\]")
SNIPPET_CHARS = 160


def answer_text(answer: Answer, marker: Style | str = "bold") -> Text:
    """The answer with its ``[n]`` markers styled (only numbers that are real citations)."""
    text = Text(answer.text)
    cited = {c.n for c in answer.citations}
    for match in MARKER.finditer(answer.text):
        if int(match.group(1)) in cited:
            text.stylize(marker, match.start(), match.end())
    return text


def source_label(source: str, line: int, page: int | None = None) -> str:
    """``file, line 30`` (and the page for paged formats)."""
    return f"{source}, line {line}" + (f", page {page}" if page else "")


def sources_text(answer: Answer, marker: Style | str = "bold", dim: Style | str = "dim") -> Text:
    """The numbered sources under an answer, or the closest passages when it is not found."""
    text = Text()
    if answer.citations:
        for c in answer.citations:
            text.append("\n")
            text.append(f"[{c.n}]", marker)
            text.append(" " + source_label(c.source, c.line, c.page), dim)
    elif answer.passages:
        text.append("\nClosest passages:", dim)
        for p in answer.passages[:3]:
            text.append("\n• ")
            text.append(source_label(p.source, p.line, p.page), dim)
            text.append(": " + snippet(p.text))
    return text


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The text on one line, cut at ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def passage_with_highlight(citation: Citation, highlight: Style | str = "reverse") -> Text:
    """The citation's passage with the cited sentence(s) highlighted inside it."""
    passage: Passage = citation.passage
    start = min(max(citation.start - passage.start, 0), len(passage.text))
    end = min(max(citation.end - passage.start, start), len(passage.text))
    if not passage.text or (start == end and citation.text):
        # The passage does not contain the citation: show the cited text alone.
        return Text(citation.text, style=highlight)
    # Trim surrounding blank space without moving the highlighted span.
    left = len(passage.text) - len(passage.text.lstrip())
    right = len(passage.text.rstrip())
    left, right = min(left, start), max(right, end)
    text = Text(passage.text[left:right])
    text.stylize(highlight, start - left, end - left)
    return text


def split_document(text: str, start: int, end: int) -> tuple[str, str, str, tuple[int, int]]:
    """The document cut around the lines holding ``[start:end]``: before, those lines, after,
    and the span inside the middle part, so a viewer can scroll straight to it."""
    start = min(max(start, 0), len(text))
    end = min(max(end, start), len(text))
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    before = text[:line_start].removesuffix("\n")
    after = text[line_end:].removeprefix("\n")
    return before, text[line_start:line_end], after, (start - line_start, end - line_start)
