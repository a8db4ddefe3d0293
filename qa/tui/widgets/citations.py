"""The sources of the selected answer: file and line, the cited sentences lit inside their passage.

One entry per passage (two sentences cited from one passage share it), each shown as fully as the
panel's height allows when divided among the entries, and never cut inside a cited sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.text import Text
from textual.geometry import Size
from textual.visual import visualize
from textual.widget import Widget
from textual.widgets import ListItem, ListView

from qa.errors import QAError
from qa.results import Citation
from qa.tui.render import passage_with_highlights, source_details, source_label

# Lines an entry takes besides its passage: the label, and the gap below it (ListItem padding);
# one more for the details line, when the entry has one.
ENTRY_EXTRA_LINES = 2
# Passage lines an entry gets however many entries share the panel.
MIN_PASSAGE_LINES = 3


def group_by_passage(citations: Sequence[Citation]) -> list[tuple[Citation, ...]]:
    """The citations in order, those of one passage together (where the first of them stands)."""
    groups: dict[tuple[str, int, int], list[Citation]] = {}
    for c in citations:
        groups.setdefault((c.source, c.passage.start, c.passage.end), []).append(c)
    return [tuple(group) for group in groups.values()]


def _opens_with(text: str, title: str) -> bool:
    """Whether the first line of ``text`` is ``title``, give or take Markdown's heading marks."""
    title = " ".join(title.split())
    first = text.lstrip().split("\n", 1)[0].lstrip("#").strip()
    return bool(title) and " ".join(first.split()) == title


class CitationView(Widget):
    COMPONENT_CLASSES = {"citation--label", "citation--details", "citation--highlight"}

    def __init__(self, citations: Sequence[Citation], closest: bool = False,
                 document: dict | None = None) -> None:
        super().__init__()
        self.citations = tuple(citations)
        self.closest = closest  # a closest passage of a question not found: no [n] in any answer
        self.document = document or {}  # the title, author and date the document states
        first = self.citations[0]
        if _opens_with(getattr(first.passage, "text", ""), self.document.get("title", "")):
            # A passage that starts with the document's title ("# Library hours") says it already.
            self.document = {k: v for k, v in self.document.items() if k != "title"}
        # Page or part, title, author, date: one dim line under the name (when there is any).
        self.details = source_details(first.page, first.locator, self.document)
        self.lines: int | None = None  # passage lines this entry may fill; None: a fixed context
        self._measuring: int | None = None

    def fit(self, lines: int | None) -> None:
        """Show at most ``lines`` lines of the passage (more only for the cited text itself)."""
        if lines != self.lines:
            self.lines = lines
            self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self._measuring = width  # render for the width being measured, not the last one laid out
        try:
            return super().get_content_height(container, viewport, width)
        finally:
            self._measuring = None

    def render(self) -> Text:
        width = self._measuring or self.size.width
        return self._label(width) + self._passage(width)

    def _label(self, width: int = 0) -> Text:
        style = self.get_component_rich_style("citation--label")
        first = self.citations[0]
        markers = "closest: " if self.closest else "".join(f"[{c.n}] " for c in self.citations)
        label = Text.assemble((markers, style), (source_label(first.source, first.line), style),
                              "\n")
        if self.details:  # kept to one line, at the panel's width
            details = source_details(first.page, first.locator, self.document, width)
            label.append_text(Text(details + "\n",
                                   self.get_component_rich_style("citation--details")))
        return label

    def _passage(self, width: int) -> Text:
        highlight = self.get_component_rich_style("citation--highlight")
        passage_chars = len(self.citations[0].passage.text)
        if self.lines is None or width <= 0:
            return passage_with_highlights(self.citations, highlight)
        whole = passage_with_highlights(self.citations, highlight, context=passage_chars)
        if self._height(whole, width) <= self.lines:
            return whole
        tight = passage_with_highlights(self.citations, highlight, context=0)
        if self._height(tight, width) > self.lines:
            # The text between two cited sentences does not fit either: "…" stands for it.
            return passage_with_highlights(self.citations, highlight, context=0, between=False)
        # The most context that fits (the shown text grows with the context).
        low, high = 0, passage_chars
        while low < high:
            middle = (low + high + 1) // 2
            if self._height(passage_with_highlights(self.citations, highlight, middle), width) \
                    <= self.lines:
                low = middle
            else:
                high = middle - 1
        return passage_with_highlights(self.citations, highlight, context=low)

    def _height(self, text: Text, width: int) -> int:
        """Lines ``text`` takes at ``width``, wrapped as this widget wraps it."""
        return visualize(self, text).get_height(self.styles, width)


class CitationItem(ListItem):
    def __init__(self, citations: Sequence[Citation], closest: bool = False,
                 document: dict | None = None) -> None:
        super().__init__(CitationView(citations, closest, document))
        self.citations = tuple(citations)

    @property
    def citation(self) -> Citation:
        """What Enter opens: the first citation of the passage."""
        return self.citations[0]


class CitationsPanel(ListView):
    """Enter (or a click) on a source opens the document at the cited span."""

    closest = False  # the items are the closest passages of a declined answer, not its sources

    def __init__(self, describe: Callable[[str], dict] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.describe = describe  # a source's title, author and date (Engine.document_details)

    async def show(self, citations: tuple[Citation, ...], closest: bool = False) -> None:
        """The sources of an answer; or, ``closest``, the passages nearest a question the
        documents do not cover."""
        self.closest = closest
        await self.clear()  # the old items gone first, so that index 0 is the new first item
        groups = [(c,) for c in citations] if closest else group_by_passage(citations)
        await self.extend(CitationItem(group, closest, self._document(group[0].source))
                          for group in groups)
        self.index = 0 if citations else None
        self.border_subtitle = "enter opens" if citations else ""
        self._share_height()

    def _document(self, source: str) -> dict:
        try:
            return self.describe(source) if self.describe else {}
        except QAError:  # the index cannot be read now: the name and place still say enough
            return {}

    def on_resize(self) -> None:
        self._share_height()

    def _share_height(self) -> None:
        """Divide the panel's height among the entries: each shows as much of its passage as fits
        in its share (the list scrolls when the cited sentences alone take more)."""
        views = list(self.query(CitationView))
        if not views or not self.size.height:
            return
        share = self.size.height // len(views) - ENTRY_EXTRA_LINES
        for view in views:
            view.fit(max(MIN_PASSAGE_LINES, share - bool(view.details)))

    @property
    def current(self) -> Citation | None:
        item = self.highlighted_child
        return item.citation if isinstance(item, CitationItem) else None
