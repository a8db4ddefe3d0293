"""HTML to text that keeps the page's structure: one block per heading, paragraph, list item,
table row or code example, blank lines between blocks.

Page furniture is left out by what the markup says it is, not by word lists: scripts and forms,
the landmarks a page declares as navigation, banner, footer or search (``<nav>``, ``role=...``),
hidden elements, lists and tables made only of links (menus, tables of contents, previous/next
bars), and links without a word (permalink marks such as ``¶``). When the page marks its main
content (``<main>``, ``role=main``, a single ``<article>``), only that is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.results import Locator

# Never content: code, styling, widgets and embedded objects.
_DROPPED_TAGS = frozenset("""script style noscript template svg math canvas iframe object embed
    form button input select textarea option datalist dialog head title meta link""".split())
# Landmarks that hold furniture wherever they are, and those that do only outside the content.
_FURNITURE_ROLES = frozenset("""navigation banner contentinfo search menu menubar toolbar dialog
    alertdialog tablist directory""".split())
_OUTER_FURNITURE_TAGS = frozenset({"nav", "header", "footer", "aside"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCK_TAGS = frozenset("""address article aside blockquote body center details div dl dd dt
    fieldset figure figcaption footer header hgroup hr li main nav ol p pre section summary
    table tbody thead tfoot tr td th caption ul menu""".split()) | frozenset(_HEADINGS)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
# Blocks that are navigation when every word in them is a link (two links or more).
_LINK_CONTAINERS = frozenset("ul ol menu dl table div section p".split())
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_HAS_WORD = re.compile(r"\w")
_WORD_CHARS = re.compile(r"\w")
# A <br> while inline text is gathered; source line breaks are white space like any other.
_BREAK = "\u2028"


@dataclass(frozen=True)
class Block:
    """A span of the converted text and what it is: "heading" (``level`` 1-6), "paragraph",
    "item" (of a list; ``level`` is its depth), "code", "row" (of a table), "term" (of a
    definition list), or "link" (a paragraph that is nothing but a link)."""

    start: int
    end: int
    kind: str
    level: int = 0


@dataclass(frozen=True)
class Converted:
    text: str
    blocks: tuple[Block, ...]
    title: str
    locators: tuple[Locator, ...] = ()
    author: str = ""
    date: str = ""


def html_to_text(markup: str) -> Converted | None:
    """The structured text of an HTML page, or None when lxml cannot parse it."""
    try:
        import lxml.html

        # lxml refuses a str that declares its encoding (XHTML's <?xml ...?>); it is decoded.
        root = lxml.html.document_fromstring(_XML_DECLARATION.sub("", markup, count=1))
    except Exception:  # empty, binary or badly broken markup
        return None
    title = " ".join((root.findtext(".//title") or "").split())
    walker = _Walker()
    for node in _content_roots(root):
        walker.block(node)
    walker.flush()
    return walker.converted(title)


def _content_roots(root) -> list:
    """The elements that hold the page's main content, outermost first."""
    mains = [e for e in root.iter() if _tag(e) == "main" or _attr(e, "role") == "main"]
    mains = [e for e in mains if not any(a in mains for a in e.iterancestors())]
    if mains:
        return mains
    articles = [e for e in root.iter() if _tag(e) == "article"]
    if len(articles) == 1:
        return articles
    body = root.find("body")
    return [body if body is not None else root]


def _tag(element) -> str:
    tag = element.tag
    return tag.lower() if isinstance(tag, str) else ""


def _attr(element, name: str) -> str:
    return (element.get(name) or "").strip().lower()


def _is_furniture(element, in_content: bool) -> bool:
    tag = _tag(element)
    if not tag or tag in _DROPPED_TAGS:
        return True
    if element.get("hidden") is not None or _attr(element, "aria-hidden") == "true":
        return True
    if _HIDDEN_STYLE.search(element.get("style") or ""):
        return True
    if set(_attr(element, "role").split()) & _FURNITURE_ROLES:
        return True
    return tag in _OUTER_FURNITURE_TAGS and not in_content


def _collapse(text: str) -> str:
    """Runs of white space as one space, but line breaks from <br> kept."""
    lines = (" ".join(part.split()) for part in text.split(_BREAK))
    return "\n".join(line for line in lines if line)


class _Walker:
    """Walks the content elements and collects blocks: (kind, level, text)."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, int, str]] = []
        self.inline: list[str] = []
        self.kind = ("paragraph", 0)  # what an inline run flushed now becomes
        self.marker = ""  # a list item's marker, given to its first run only
        self.depth = 0  # list nesting
        self.in_content = False  # inside <main>/<article>: header and aside are content there

    # -- inline text ---------------------------------------------------------------------

    def text_of(self, element) -> str:
        """The inline text of ``element`` (its tail excluded), furniture and permalinks left out."""
        parts: list[str] = []
        self._inline_into(element, parts)
        return _collapse("".join(parts))

    def _inline_into(self, element, parts: list[str]) -> None:
        tag = _tag(element)
        if _is_furniture(element, True) or (tag == "a" and not _HAS_WORD.search(element.text_content())):
            return
        if tag == "br":
            parts.append(_BREAK)
            return
        if tag == "img":
            return
        parts.append(element.text or "")
        for child in element:
            self._inline_into(child, parts)
            parts.append(child.tail or "")
        if tag in _BLOCK_TAGS:
            parts.append(" ")

    @staticmethod
    def link_only(element, links: int = 1) -> bool:
        """Whether every word of ``element`` is inside a link, and it has ``links`` links or more."""
        words = len(_WORD_CHARS.findall(element.text_content()))
        anchors = list(element.iter("a"))
        if not words or len(anchors) < links:
            return False
        return sum(len(_WORD_CHARS.findall(a.text_content())) for a in anchors) >= words

    # -- blocks --------------------------------------------------------------------------

    def flush(self) -> None:
        text = _collapse("".join(self.inline))
        self.inline = []
        if not text:
            return
        kind, level = self.kind
        if kind == "item":
            text, self.marker = self.marker + text, ""
        self.blocks.append((kind, level, text))

    def add(self, kind: str, level: int, text: str) -> None:
        self.flush()
        if text.strip():
            self.blocks.append((kind, level, text))

    def block(self, element) -> None:
        """Walk a block-level element (or an inline one met at block level)."""
        tag = _tag(element)
        if _is_furniture(element, self.in_content):
            return
        if tag not in _BLOCK_TAGS:
            self._inline_child(element)
            return
        outer_content = self.in_content
        self.in_content = outer_content or tag in ("main", "article") or _attr(element, "role") == "main"
        try:
            self._block(element, tag)
        finally:
            self.in_content = outer_content

    def _inline_child(self, element) -> None:
        if _tag(element) == "br":
            self.inline.append(_BREAK)
        else:
            self._inline_into(element, self.inline)
        self.inline.append(element.tail or "")

    def _children(self, element) -> None:
        self.inline.append(element.text or "")
        for child in element:
            self.block(child)
            if _tag(child) in _BLOCK_TAGS:
                self.inline.append(child.tail or "")

    def _block(self, element, tag: str) -> None:
        self.flush()
        if tag in _LINK_CONTAINERS and self.link_only(element, links=2):
            return  # a menu, a table of contents, a breadcrumb trail, a previous / next bar
        if tag in _HEADINGS:
            self.add("heading", _HEADINGS[tag], self.text_of(element))
        elif tag == "pre":
            self.add("code", 0, _code_text(element))
        elif tag in ("ul", "ol", "menu"):
            self._list(element, ordered=tag == "ol")
        elif tag == "table" and not _is_layout_table(element):
            self._table(element)
        elif tag == "dt":
            self.add("term", 0, self.text_of(element))
        elif tag == "p" and self.link_only(element) and self.kind[0] != "item":
            self.add("link", 0, self.text_of(element))
        else:
            self._children(element)
        self.flush()

    def _list(self, element, ordered: bool) -> None:
        number = int(element.get("start") or 1) if (element.get("start") or "1").isdigit() else 1
        saved = (self.kind, self.marker)
        self.depth += 1
        for child in element:
            if _tag(child) != "li":
                self.block(child)
                continue
            self.flush()
            self.kind = ("item", self.depth)
            self.marker = "  " * (self.depth - 1) + (f"{number}. " if ordered else "- ")
            number += 1
            self._children(child)
            self.flush()
        self.depth -= 1
        self.kind, self.marker = saved

    def _table(self, element) -> None:
        rows = [tr for tr in element.iter("tr") if not _is_furniture(tr, True)]
        cells = [[self.text_of(cell) for cell in tr if _tag(cell) in ("td", "th")] for tr in rows]
        caption = element.find("caption")
        if caption is not None:
            self.add("paragraph", 0, self.text_of(caption))
        for row in cells:
            filled = [" ".join(c.split()) for c in row]
            if any(filled):
                self.add("row", 0, " | ".join(filled))

    def converted(self, title: str) -> Converted:
        laid = TextBuilder()
        for kind, level, text in self.blocks:
            laid.add(kind, level, text)
        text, blocks = laid.text(), tuple(laid.blocks)
        headings = [b for b in blocks if b.kind == "heading" and b.level == 1]
        if headings:
            title = text[headings[0].start:headings[0].end]
        return Converted(text, blocks, title)


class TextBuilder:
    """Text laid out block by block, as every converted format is: a blank line between blocks,
    a single line break between the items of one list or the rows of one table. ``locate``
    marks where a slide, chapter or message starts (the next block)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.blocks: list[Block] = []
        self.locators: list[Locator] = []
        self._pending: list[tuple] = []
        self._offset = 0

    def add(self, kind: str, level: int, text: str) -> None:
        """Append one block (its text as it is; one without a visible character is left out)."""
        if not text.strip():
            return
        if self.parts:
            previous = self.blocks[-1].kind
            separator = "\n" if kind == previous and kind in ("item", "row") else "\n\n"
            self.parts.append(separator)
            self._offset += len(separator)
        if self._pending:
            self.locators += [Locator(self._offset, *args) for args in self._pending]
            self._pending = []
        self.parts.append(text)
        self.blocks.append(Block(self._offset, self._offset + len(text), kind, level))
        self._offset += len(text)

    def extend(self, converted: Converted) -> None:
        """Append the blocks of a converted page (a chapter of a book, the HTML part of a mail)."""
        for block in converted.blocks:
            self.add(block.kind, block.level, converted.text[block.start:block.end])

    def locate(self, kind: str, number: int, label: str = "", date: str = "") -> None:
        """The next block starts a new ``kind`` (slide, chapter, message) numbered ``number``."""
        self._pending = [(kind, number, label, date)]

    def text(self) -> str:
        return "".join(self.parts)

    def converted(self, title: str | None = None, author: str = "", date: str = "") -> Converted:
        """The text laid out so far; ``title`` (None: the first top-level heading, if any)."""
        text = self.text()
        if title is None:
            first = next((b for b in self.blocks if b.kind == "heading" and b.level == 1), None)
            title = text[first.start:first.end] if first else ""
        return Converted(text, tuple(self.blocks), " ".join(title.split()), tuple(self.locators),
                         " ".join(author.split()), date)


def _is_layout_table(table) -> bool:
    """A table used to lay out a page rather than to hold data: its cells hold blocks (one
    paragraph alone in a cell is data: word processors write every cell so)."""
    for cell in table.iter("td", "th"):
        inner = [e for e in cell.iterdescendants()
                 if _tag(e) in ("p", "div", "pre", "ul", "ol", "table", "h1", "h2", "h3", "dl")]
        if inner and not (len(inner) == 1 and _tag(inner[0]) == "p"):
            return True
    return False


def _code_text(element) -> str:
    """A code example as it is shown: its lines, trailing spaces and blank edges removed."""
    parts: list[str] = []

    def collect(node) -> None:
        if _is_furniture(node, True):
            return
        if _tag(node) == "br":
            parts.append("\n")
        parts.append(node.text or "")
        for child in node:
            collect(child)
            parts.append(child.tail or "")

    collect(element)
    lines = [line.rstrip() for line in "".join(parts).expandtabs(4).split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)
