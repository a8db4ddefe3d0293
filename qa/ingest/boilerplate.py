"""Find the content of documents without rewriting them: page furniture only is left out.

The result is a list of *segments*: (start, end) spans of the original text made of consecutive
content lines. Everything outside the segments (menus, icon names, captions repeated across a
site, trailing tag lists) is skipped by the chunker, so offsets still index the file. A line of
prose, a heading, a list item or a line of code is never furniture.

For a converted document that knows its structure (HTML, Markdown: see ``Block``), furniture is
what the converter already left out, plus short links and labels repeated across documents. For
plain text, the rules are general, not copied from any corpus:
- a line without letters (a rule, a page number) is furniture;
- a line repeated across documents with under 30 words is a caption, byline, menu entry or site
  title (a line repeated inside one document is not: a refrain, a repeated definition);
- a run of three or more very short lines without final punctuation (a word or three each) is a
  menu, and short lines after the document's last sentence are tags, credits or share buttons;
  any other short line is a heading, and kept;
- a line whose words mostly share one affix ("bookmarkicon cameraicon checkicon") is a sprite or
  icon list.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from qa.ingest.html import Block

Span = tuple[int, int]

REPEATED_MAX_WORDS = 30
HEADING_MAX_WORDS = 16
HEADING_MAX_CHARS = 120
# In a structured document, a paragraph repeated across documents is a label when this short; a
# longer one ("For example, try the following") introduces what follows it.
REPEATED_LABEL_MAX_WORDS = 4
# Tags, credits and share buttons after the last sentence are this short.
TRAILING_MAX_WORDS = 8
# Menus: this many adjacent labels or more, each of a few plain words.
MENU_RUN = 3
_MENU_LABEL = re.compile(r"[^\W\d_][\w'’&-]*(?: [\w'’&-]+){0,2}")
# A hard-wrapped line is at least this share of its paragraph's longest line, which is this wide.
WRAP_RATIO = 0.6
WRAP_MIN_WIDTH = 40
# Sentence-final punctuation, possibly followed by closing quotes or brackets.
_SENTENCE_END = re.compile(r"""[.!?:…。！？]['"’”»)\]]*\s*$""")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_WORD = re.compile(r"\w+")
_LETTER = re.compile(r"[^\W\d_]")


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
    """Normalised short lines that occur in more than one document of the corpus."""
    counts: Counter[str] = Counter()
    for text in texts:
        keys = {normalise_line(line) for line in text.split("\n")}
        counts.update(key for key in keys if key and len(key.split()) < REPEATED_MAX_WORDS)
    return {line for line, count in counts.items() if count > 1}


# The version of the rules in this module. A build keeps the segments of a document it has seen
# unless lines repeated across documents changed for it; an index whose segments were found under
# other rules has every document segmented again (and compared). Bump it with any rule change.
SEGMENT_RULES = 1


def counted_lines(text: str) -> set[str]:
    """The normalised short lines of ``text`` that repeated_lines counts (once per document)."""
    keys = {normalise_line(line) for line in text.split("\n")}
    return {key for key in keys if key and len(key.split()) < REPEATED_MAX_WORDS}


def looked_up_lines(text: str, blocks: Sequence[Block] = ()) -> set[str]:
    """The keys content_segments looks up in the repeated lines besides ``counted_lines``: for a
    structured document, each block's text (a link inside a line, a paragraph of several)."""
    return {normalise_line(text[b.start:b.end]) for b in blocks}


def line_hash(key: str) -> int:
    """A stable 63-bit number for a normalised line (fits a signed 64-bit array)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class RepeatedLines:
    """Lines repeated across documents, known by their line_hash: what content_segments takes
    as ``repeated`` when the counts are kept from one build to the next as numbers."""

    def __init__(self, hashes: Iterable[int]):
        self.hashes = set(hashes)

    def __contains__(self, key: str) -> bool:
        return line_hash(key) in self.hashes


def is_boilerplate(line: str, repeated: set[str] = frozenset()) -> bool:
    """Whether ``line`` is furniture wherever it stands: no letter (a rule, a page number),
    repeated across documents, or a list of icon names."""
    stripped = line.strip()
    words = _WORD.findall(stripped)
    if not words or not _LETTER.search(stripped):
        return True  # rules, dingbats, a page number
    if normalise_line(stripped) in repeated:
        return True
    return not _SENTENCE_END.search(stripped) and _shares_affix(words)


def is_short(line: str) -> bool:
    """A line that does not read as a sentence: a heading, a label, a menu entry, a caption (a
    Markdown list item of three words or more is read as content)."""
    stripped = line.strip()
    if _SENTENCE_END.search(stripped):
        return False
    if len(stripped.split()) < HEADING_MAX_WORDS and len(stripped) < HEADING_MAX_CHARS:
        return not (_LIST_ITEM.match(line) and len(_WORD.findall(stripped)) >= 3)
    return False


# Words so common in prose that a line holding a few of them is not a list of names.
_FUNCTION_WORDS = frozenset("the a an of and or in on to is are was were for with by that this".split())


def _shares_affix(words: list[str]) -> bool:
    """True when most words share a 4-letter prefix or suffix, as icon/sprite lists do; a line
    with the small words of prose ("the", "of", "and") is prose, whatever its affixes."""
    if sum(w.lower() in _FUNCTION_WORDS for w in words) >= 2:
        return False
    long_words = [w.lower() for w in words if len(w) >= 6]
    if len(long_words) < 8:
        return False
    for affix in (lambda w: w[-4:], lambda w: w[:4]):
        _, count = Counter(map(affix, long_words)).most_common(1)[0]
        if count >= 0.4 * len(long_words):
            return True
    return False


def content_segments(text: str, repeated: set[str] = frozenset(),
                     blocks: Sequence[Block] = ()) -> list[Span]:
    """Maximal runs of consecutive content lines (or blocks), as spans of ``text`` (trimmed).

    A document the rules would empty entirely (a one-line note, a file copied twice in the corpus)
    keeps every line that has a word: for it the rules are wrong, and dropping it loses it.
    """
    lines = line_spans(text)
    if blocks:
        segments = _block_segments(text, blocks, repeated)
    else:
        skip = [is_boilerplate(text[s:e], repeated) for s, e in lines]
        short = [bool(text[s:e].strip()) and is_short(text[s:e]) for s, e in lines]
        _skip_menus(text, lines, short, skip)
        _skip_trailing(text, lines, short, skip)
        _join_headings(text, lines, short, skip)
        segments = _runs(text, lines, skip)
    return segments or _runs(text, lines, [not _WORD.search(text[s:e]) for s, e in lines])


def _skip_menus(text: str, lines: list[Span], short: list[bool], skip: list[bool]) -> None:
    """Mark runs of MENU_RUN or more adjacent one-to-three-word labels ("Home", "Sport",
    "Markets") as a menu. Indented lines and lines with symbols (code, commands) are not labels."""
    label = [short[i] and _MENU_LABEL.fullmatch(text[s:e]) is not None for i, (s, e) in enumerate(lines)]
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and label[j]:
            j += 1
        if j - i >= MENU_RUN:
            skip[i:j] = [True] * (j - i)
        i = max(j, i + 1)


def _skip_trailing(text: str, lines: list[Span], short: list[bool], skip: list[bool]) -> None:
    """Mark the short lines (TRAILING_MAX_WORDS at most) after the document's last sentence (tags,
    credits, "Share this"): a heading heads something, and nothing follows these."""
    for i in range(len(lines) - 1, -1, -1):
        s, e = lines[i]
        if not text[s:e].strip() or skip[i]:
            continue
        if not short[i] or text[s:e][:1].isspace() or len(text[s:e].split()) > TRAILING_MAX_WORDS:
            return
        skip[i] = True


def _join_headings(text: str, lines: list[Span], short: list[bool], skip: list[bool]) -> None:
    """Keep the blank lines after a heading (a short line that is kept) in its segment, so that
    it heads the paragraph it introduces rather than standing alone."""
    for i, (s, e) in enumerate(lines):
        if not short[i] or skip[i]:
            continue
        j = i + 1
        while j < len(lines) and not text[lines[j][0]:lines[j][1]].strip():
            j += 1
        if j < len(lines) and not skip[j]:
            skip[i + 1:j] = [False] * (j - i - 1)


def _block_segments(text: str, blocks: Sequence[Block], repeated: set[str]) -> list[Span]:
    """Runs of kept blocks with no word between them. A block is furniture when it is a lone link
    or a label of REPEATED_LABEL_MAX_WORDS words at most ("Back to top", "Edit on GitHub", "Note")
    repeated across documents, or short labels after the document's last paragraph; a heading,
    item, row or code is never furniture."""
    def label(block: Block) -> bool:
        return block.kind in ("link", "paragraph") and all(
            is_short(line) for line in text[block.start:block.end].split("\n") if line.strip())

    last = max((i for i, b in enumerate(blocks) if not label(b) and b.kind != "heading"), default=-1)
    segments: list[Span] = []
    current: Span | None = None
    for i, block in enumerate(blocks):
        body = text[block.start:block.end]
        furniture = not _WORD.search(body) or label(block) and (
            i > last or normalise_line(body) in repeated
            and (block.kind == "link" or len(body.split()) <= REPEATED_LABEL_MAX_WORDS))
        if furniture:
            if current:
                segments.append(current)
            current = None
            continue
        if current and not _WORD.search(text[current[1]:block.start]):
            current = (current[0], block.end)
        else:
            if current:
                segments.append(current)
            current = (block.start, block.end)
    if current:
        segments.append(current)
    return [trim_span(text, s, e) for s, e in segments]


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
    return [trim_span(text, s, e) for s, e in segments]


def trim_span(text: str, start: int, end: int) -> Span:
    """``(start, end)`` without the white space (and byte-order mark) at either end."""
    while start < end and (text[start].isspace() or text[start] == "\ufeff"):
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def corpus_segments(texts: Mapping[str, str],
                    blocks: Mapping[str, Sequence[Block]] | None = None) -> dict[str, list[Span]]:
    """Content segments for every document, using lines repeated across the corpus; ``blocks``
    gives the structure of the documents that have one."""
    repeated = repeated_lines(texts.values())
    blocks = blocks or {}
    return {source: content_segments(text, repeated, blocks.get(source, ()))
            for source, text in texts.items()}
