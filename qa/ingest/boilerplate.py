"""Find the content of scraped pages without rewriting them.

The result is a list of *segments*: (start, end) spans of the original text made of consecutive
content lines. Everything outside the segments (menus, icon names, captions, tag lists, headings,
lines repeated across documents) is skipped by the chunker, so offsets still index the file.

The rules are general, not copied from any corpus:
- a line without letters or digits is furniture;
- a line repeated in the corpus (in two documents, or twice in one) with under 30 words is a
  caption, byline, menu entry or title;
- a short line (under 16 words and 120 characters) that does not end like a sentence is a
  heading, menu entry or caption, unless it is a Markdown list item of three words or more (the
  character bound keeps text written without spaces, such as Chinese, and long unbroken lines);
- a line of a hard-wrapped paragraph (nearly as long as the paragraph's longest line) that runs
  into a content line is content too;
- a line whose words mostly share one affix ("bookmarkicon cameraicon checkicon") is a sprite or
  icon list.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping

Span = tuple[int, int]

REPEATED_MAX_WORDS = 30
HEADING_MAX_WORDS = 16
HEADING_MAX_CHARS = 120
# A hard-wrapped line is at least this share of its paragraph's longest line, which is this wide.
WRAP_RATIO = 0.6
WRAP_MIN_WIDTH = 40
# Sentence-final punctuation, possibly followed by closing quotes or brackets.
_SENTENCE_END = re.compile(r"""[.!?:…。！？]['"’”»)\]]*\s*$""")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_WORD = re.compile(r"\w+")


def line_spans(text: str) -> list[Span]:
    """(start, end) of every line, newline excluded."""
    spans, start = [], 0
    for match in re.finditer("\n", text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return spans


def normalise_line(line: str) -> str:
    return " ".join(line.lower().split())


def repeated_lines(texts: Iterable[str]) -> set[str]:
    """Normalised short lines that occur more than once in the whole corpus."""
    counts: Counter[str] = Counter()
    for text in texts:
        for line in text.split("\n"):
            key = normalise_line(line)
            if key and len(key.split()) < REPEATED_MAX_WORDS:
                counts[key] += 1
    return {line for line, count in counts.items() if count > 1}


def is_boilerplate(line: str, repeated: set[str] = frozenset()) -> bool:
    stripped = line.strip()
    if not stripped:
        return True
    words = _WORD.findall(stripped)
    if not words:
        return True
    if normalise_line(stripped) in repeated:
        return True
    if _SENTENCE_END.search(stripped):
        return False
    if len(stripped.split()) < HEADING_MAX_WORDS and len(stripped) < HEADING_MAX_CHARS:
        return not (_LIST_ITEM.match(line) and len(words) >= 3)
    return _shares_affix(words)


def _shares_affix(words: list[str]) -> bool:
    """True when most words share a 4-letter prefix or suffix, as icon/sprite lists do."""
    long_words = [w.lower() for w in words if len(w) >= 6]
    if len(long_words) < 8:
        return False
    for affix in (lambda w: w[-4:], lambda w: w[:4]):
        _, count = Counter(map(affix, long_words)).most_common(1)[0]
        if count >= 0.4 * len(long_words):
            return True
    return False


def content_segments(text: str, repeated: set[str] = frozenset()) -> list[Span]:
    """Maximal runs of consecutive content lines, as spans of ``text`` (trimmed of blanks).

    A document the rules would empty entirely (a one-line note, a file copied twice in the corpus)
    keeps every line that has a word: for it the rules are wrong, and dropping it loses it.
    """
    lines = line_spans(text)
    skip = [is_boilerplate(text[s:e], repeated) for s, e in lines]
    _keep_wrapped_lines(text, lines, skip, repeated)
    segments = _runs(text, lines, skip)
    return segments or _runs(text, lines, [not _WORD.search(text[s:e]) for s, e in lines])


def _keep_wrapped_lines(text: str, lines: list[Span], skip: list[bool], repeated: set[str]) -> None:
    """Mark as content the lines of a hard-wrapped paragraph that runs into a content line.

    Notes and plain-text files often wrap paragraphs at a fixed width; each line alone looks like
    a heading (short, no full stop). A line is a wrapped one when it is nearly as long as the
    longest line of its block of non-blank lines; headings and menu entries are much shorter.
    """
    width = _block_widths(text, lines)
    for i in range(len(lines) - 2, -1, -1):
        if not skip[i] or skip[i + 1]:
            continue
        line = text[lines[i][0]:lines[i][1]].strip()
        if (width[i] >= WRAP_MIN_WIDTH and len(line) >= WRAP_RATIO * width[i]
                and len(_WORD.findall(line)) >= 4 and normalise_line(line) not in repeated):
            skip[i] = False


def _block_widths(text: str, lines: list[Span]) -> list[int]:
    """For every line, the length of the longest line in its block of consecutive non-blank lines."""
    lengths = [len(text[s:e].strip()) for s, e in lines]
    widths = [0] * len(lines)
    start = 0
    for i in range(len(lines) + 1):
        if i == len(lines) or not lengths[i]:
            block = max(lengths[start:i], default=0)
            widths[start:i] = [block] * (i - start)
            start = i + 1
    return widths


def _runs(text: str, lines: list[Span], skip: list[bool]) -> list[Span]:
    segments: list[Span] = []
    current: Span | None = None
    for (start, end), skipped in zip(lines, skip):
        if skipped:
            if current:
                segments.append(current)
            current = None
            continue
        current = (current[0], end) if current else (start, end)
    if current:
        segments.append(current)
    return [_trim(text, s, e) for s, e in segments]


def _trim(text: str, start: int, end: int) -> Span:
    while start < end and (text[start].isspace() or text[start] == "\ufeff"):
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def corpus_segments(texts: Mapping[str, str]) -> dict[str, list[Span]]:
    """Content segments for every document, using lines repeated across the corpus."""
    repeated = repeated_lines(texts.values())
    return {source: content_segments(text, repeated) for source, text in texts.items()}
