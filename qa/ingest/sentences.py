"""Sentence spans of a document's text: blingfire, one line at a time (a line break ends a
sentence, but the lines of a hard-wrapped paragraph are one line), list markers kept with their
item. Every span is (start, end) into the text, end exclusive."""

from __future__ import annotations

import re

from qa.ingest.boilerplate import (
    _LIST_ITEM,
    _SENTENCE_END,
    WRAP_MIN_WIDTH,
    WRAP_RATIO,
    Span,
    line_spans,
    trim_span,
)

_FALLBACK_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
# A line that starts a new block even right after a wrapped line: a list item, heading, table row.
_NEW_BLOCK = re.compile(_LIST_ITEM.pattern + r"|^\s*(?:#|\|)")


def split_sentences(text: str, start: int, end: int) -> list[Span]:
    """Sentence spans of ``text[start:end]``; each line is split on its own.

    A hard-wrapped paragraph counts as one line: its line breaks become spaces for the splitter
    (one character for one, so offsets hold), and a sentence may then span a wrapped line break.
    """
    spans: list[Span] = []
    for line_start, line_end in _unwrapped_lines(text[start:end]):
        line = text[start + line_start : start + line_end].replace("\n", " ")
        for s, e in _line_sentences(line):
            spans.append((start + line_start + s, start + line_start + e))
    return spans


def _unwrapped_lines(text: str) -> list[Span]:
    """Line spans of ``text``, with the lines of a hard-wrapped paragraph joined into one.

    A line is wrapped into the next when it does not end like a sentence and is nearly as long as
    the longest line here (the rule the boilerplate module uses), unless the next line starts a
    list item, a heading or a table row.
    """
    lines = line_spans(text)
    lengths = [len(text[s:e].strip()) for s, e in lines]
    width = max(lengths, default=0)
    if width < WRAP_MIN_WIDTH or len(lines) < 2:
        return lines
    joined: list[Span] = []
    for i, (s, e) in enumerate(lines):
        if joined and _wraps(text, lines[i - 1], lengths[i - 1], width) and lengths[i] \
                and not _NEW_BLOCK.match(text[s:e]):
            joined[-1] = (joined[-1][0], e)
        else:
            joined.append((s, e))
    return joined


def _wraps(text: str, line: Span, length: int, width: int) -> bool:
    content = text[line[0]:line[1]].strip()
    return length >= WRAP_RATIO * width and not _SENTENCE_END.search(content)


def _line_sentences(line: str) -> list[Span]:
    if not line.strip():
        return []
    spans = _blingfire_sentences(line)
    if spans is None:
        spans, pos = [], 0
        for match in _FALLBACK_SENTENCE_END.finditer(line):
            spans.append((pos, match.start()))
            pos = match.end()
        spans.append((pos, len(line)))
    return _markers_joined(line, [t for t in (trim_span(line, s, e) for s, e in spans) if t[1] > t[0]])


# A list item's marker alone ("1." of "1. Check the calendar", which the splitter takes for a
# sentence of its own) is no sentence: it is joined to the text it numbers.
_MARKER_ONLY = re.compile(r"(?:\(?(?:\d{1,3}|[A-Za-z]|[ivxIVX]{1,4})[.)]|[-*+•–])")


def _markers_joined(line: str, spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for span in spans:
        if out and _MARKER_ONLY.fullmatch(line[out[-1][0]:out[-1][1]]):
            out[-1] = (out[-1][0], span[1])
        else:
            out.append(span)
    return out


def _blingfire_sentences(line: str) -> list[Span] | None:
    """blingfire's spans, or None when they do not tile the line sensibly."""
    import blingfire

    try:
        _, offsets = blingfire.text_to_sentences_and_offsets(line)
    except Exception:  # blingfire raises plain errors on odd input; fall back to the regex
        return None
    spans, previous_end = [], 0
    for s, e in offsets:
        if not (previous_end <= s <= e <= len(line)):
            return None
        spans.append((s, e))
        previous_end = e
    covered = "".join(line[s:e] for s, e in spans)
    if "".join(covered.split()) != "".join(line.split()):
        return None  # blingfire dropped or moved characters
    if not spans:
        return None
    # Give characters between spans to the sentence before them, so nothing is lost.
    starts = [0] + [s for s, _ in spans[1:]]
    ends = [s for s, _ in spans[1:]] + [len(line)]
    return list(zip(starts, ends))
