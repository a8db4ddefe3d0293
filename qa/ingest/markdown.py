"""The block structure of a Markdown file, read from its lines (the text itself is not changed, so
citations index the file): headings, paragraphs, list items, table rows and fenced code."""

from __future__ import annotations

import re

from qa.ingest.html import Block

_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]|$)")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_ITEM = re.compile(r" {0,12}(?:[-*+•]|\d{1,3}[.)])[ \t]+\S")
_ROW = re.compile(r" {0,3}\|")
_THEMATIC = re.compile(r" {0,3}(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")


def markdown_blocks(text: str) -> tuple[Block, ...]:
    """Blocks of ``text`` in order; a paragraph's soft-wrapped lines are one block."""
    lines = text.split("\n")
    starts, offset = [], 0
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    blocks: list[Block] = []
    paragraph: list[int] = []  # line numbers of the open paragraph or item
    kind = "paragraph"

    def close() -> None:
        nonlocal paragraph
        if paragraph:
            first, last = paragraph[0], paragraph[-1]
            blocks.append(Block(starts[first], starts[last] + len(lines[last]), kind))
        paragraph = []

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            close()
            end = i + 1
            while end < len(lines) and not lines[end].lstrip().startswith(fence.group(1)):
                end += 1
            end = min(end, len(lines) - 1)
            blocks.append(Block(starts[i], starts[end] + len(lines[end]), "code"))
            i = end + 1
            continue
        atx = _ATX.match(line)
        if atx:
            close()
            blocks.append(Block(starts[i], starts[i] + len(line), "heading", len(atx.group(1))))
        elif not line.strip() or _THEMATIC.match(line) and not paragraph:
            close()
        elif _SETEXT.match(line) and len(paragraph) == 1 and kind == "paragraph":
            level = 1 if line.strip().startswith("=") else 2
            blocks.append(Block(starts[paragraph[0]], starts[i] + len(line), "heading", level))
            paragraph = []
        elif _ROW.match(line):
            close()
            blocks.append(Block(starts[i], starts[i] + len(line), "row"))
        elif _ITEM.match(line):
            close()
            kind = "item"
            paragraph = [i]
        else:
            if not paragraph:
                kind = "paragraph"
            paragraph.append(i)
        i += 1
    close()
    return tuple(b for b in blocks if text[b.start:b.end].strip())


def heading_name(heading: str) -> str:
    """A heading's words, without Markdown's marks ("## Install ##" -> "Install", a setext
    heading's underline left out)."""
    return " ".join(heading.strip().split("\n")[0].strip().strip("#").split())
