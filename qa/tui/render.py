"""Answers, passages and documents as ``rich.text.Text``: document text is data, never markup.

Pure functions (no Textual), so the rules for what is shown are testable on their own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.style import Style
from rich.text import Text

from qa.results import Answer, Citation, Passage

MARKER = re.compile(r"\[(\d+)\]")
SNIPPET_CHARS = 160
PASSAGE_CONTEXT = 320


# Markdown emphasis: **bold** or __bold__, *italic* or _italic_ (not inside a word, so that
# snake_case and 2*3*4 stay as they are).
EMPHASIS = re.compile(
    r"(?<![\\\w*])(?P<b>\*\*)(?=\S)(?P<bold>.+?)(?<=\S)\*\*(?![\w*])"
    r"|(?<![\\\w_])(?P<u>__)(?=\S)(?P<bold2>.+?)(?<=\S)__(?![\w_])"
    r"|(?<![\\\w*])\*(?=[^\s*])(?P<italic>.+?)(?<=[^\s*])\*(?![\w*])"
    r"|(?<![\\\w_])_(?=[^\s_])(?P<italic2>.+?)(?<=[^\s_])_(?![\w_])")


def is_markdown(source: str) -> bool:
    return source.lower().endswith((".md", ".markdown"))


def emphasis_spans(text: str, offset: int = 0) -> list[tuple[int, int, str, int]]:
    """Markdown emphasis in ``text``: (start, end, "bold" or "italic", marker length) of each
    emphasised run, markers included, nested runs after the run holding them."""
    spans = []
    for match in EMPHASIS.finditer(text):
        name = next(n for n in ("bold", "bold2", "italic", "italic2") if match.group(n) is not None)
        marker = 2 if name.startswith("bold") else 1
        spans.append((offset + match.start(), offset + match.end(), name.rstrip("2"), marker))
        spans += emphasis_spans(match.group(name), offset + match.start(name))
    return spans


def markdown_inline(text: str) -> Text:
    """``text`` with its Markdown emphasis shown (**Minsk II** in bold) and the asterisks or
    underscores gone; everything else literal, never Rich markup."""
    shown = Text()
    at = 0
    for match in EMPHASIS.finditer(text):
        name = next(n for n in ("bold", "bold2", "italic", "italic2") if match.group(n) is not None)
        shown.append(text[at:match.start()])
        inner = markdown_inline(match.group(name))
        inner.stylize(name.rstrip("2"))
        shown.append_text(inner)
        at = match.end()
    shown.append(text[at:])
    return shown


def show_markdown(text: Text, start: int = 0, end: int | None = None,
                  marker_style: Style | str = "dim") -> None:
    """Style the Markdown emphasis of ``text.plain[start:end]`` in place, the markers kept (dim):
    for document text, whose characters must all stay where citations point."""
    for s, e, style, marker in emphasis_spans(text.plain[start:end], start):
        text.stylize(style, s + marker, e - marker)
        text.stylize(marker_style, s, s + marker)
        text.stylize(marker_style, e - marker, e)


def answer_text(answer: Answer, marker: Style | str = "bold") -> Text:
    """The answer with its ``[n]`` markers styled (only numbers that are real citations); the
    sentences quoted from Markdown documents with their emphasis shown, as those documents mean
    it (the asterisks gone)."""
    cited = {c.n: c for c in answer.citations}
    text = Text()
    at = 0
    for match in MARKER.finditer(answer.text):
        citation = cited.get(int(match.group(1)))
        if citation is None:
            continue
        quoted = answer.text[at:match.start()]
        text.append_text(markdown_inline(quoted) if is_markdown(citation.source) else Text(quoted))
        text.append(match.group(0), marker)
        at = match.end()
    text.append(answer.text[at:])
    return text


def source_label(source: str, line: int, page: int | None = None) -> str:
    """``file, line 30`` (and the page for paged formats)."""
    return f"{source}, line {line}" + (f", page {page}" if page else "")


def source_details(page: int | None, locator, details: dict, width: int = 0) -> str:
    """The line under a source in the sources panel: where in the document the passage is (page,
    slide, chapter or message, with its title) and what the document states of itself (title,
    author, date), those it has; a part already said (a slide titled as the deck) is left out.

    Within ``width`` (when given) the part's title is shortened first, so that the date and author
    stay; then the line is cut short.
    """
    def one_line(text: str) -> str:  # whatever the file holds
        return " ".join(text.split())

    label = one_line(locator.label) if locator is not None else ""
    place = ", ".join(p for p in (f"page {page}" if page else "",
                                  f"{locator.kind} {locator.number}" if locator else "") if p)
    date = (locator.date if locator is not None and locator.date else details.get("date", ""))[:10]
    others: list[str] = []
    for part in (details.get("title", ""), details.get("author", ""), date):
        part = one_line(part)
        if part and part not in label and not any(part in earlier for earlier in others):
            others.append(part)

    def joined(label: str) -> str:
        return " · ".join(p for p in (f"{place} ({label})" if label else place, *others) if p)

    line = joined(label)
    if not 0 < width < len(line):
        return line
    room = width - len(joined("")) - len(" ()")
    line = joined(label[:room - 1] + "…" if room >= 6 else "")
    return line if len(line) <= width else line[:width - 1] + "…"


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
            line, lead = p.lead()
            text.append("\n• ")
            text.append(source_label(p.source, line, p.page), dim)
            text.append(": " + snippet(lead))
    return text


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The text on one line, cut after the last whole word that fits in ``limit`` characters
    ("…" marks the cut)."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat.rfind(" ", 0, limit)
    if cut <= limit // 2:  # one very long word: cut inside it rather than show next to nothing
        cut = limit - 1
    return flat[:cut].rstrip(" ,;:") + "…"


def passage_with_highlight(citation: Citation, highlight: Style | str = "reverse",
                           context: int = PASSAGE_CONTEXT) -> Text:
    """The cited sentence(s) highlighted inside their passage, with at most ``context``
    characters of the passage on each side (cut at a space, marked with "…")."""
    return passage_with_highlights((citation,), highlight, context)


def passage_with_highlights(citations: Sequence[Citation], highlight: Style | str = "reverse",
                            context: int = PASSAGE_CONTEXT, between: bool = True) -> Text:
    """Citations of one passage highlighted inside it, with at most ``context`` characters of the
    passage before the first and after the last (cut at a space, marked with "…"), and, unless
    ``between`` is False, the text between them. Never cut inside a citation."""
    passage: Passage = citations[0].passage
    text = passage.text
    spans = sorted((c.start - passage.start, c.end - passage.start) for c in citations)
    if not all(0 <= s <= e <= len(text) and text[s:e] == c.text
               for (s, e), c in zip([(c.start - passage.start, c.end - passage.start)
                                     for c in citations], citations)):
        # Not inside the passage: the cited text alone.
        return Text(" … ".join(c.text for c in citations), style=highlight)
    start, end = spans[0][0], max(e for _, e in spans)
    left = max(0, start - context)
    if left:
        space = text.find(" ", left, start)
        left = space + 1 if space >= 0 else start
    right = min(len(text), end + context)
    if right < len(text):
        space = text.rfind(" ", end, right)
        right = space if space >= 0 else end
    # Leading and trailing blank space adds nothing; the highlighted spans never move.
    while left < start and text[left].isspace():
        left += 1
    while right > end and text[right - 1].isspace():
        right -= 1
    shown = Text("…" if left else "")
    markdown = is_markdown(passage.source)

    def append(piece: str, style: Style | str = "") -> None:
        if not markdown:
            shown.append(piece, style)
            return
        rendered = markdown_inline(piece)
        if style:
            rendered.stylize(style)
        shown.append_text(rendered)

    at = left  # how far into the passage ``shown`` has come
    for s, e in spans:
        s = max(s, at)
        if s > at:
            gap = text[at:s]
            append(gap if between or not gap.strip() else " … ")
        append(text[s:e] if e > s else "", highlight)
        at = max(at, e)
    append(text[at:right])
    if right < len(text):
        shown.append("…")
    return shown


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
