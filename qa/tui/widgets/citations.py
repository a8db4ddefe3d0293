"""The sources of the selected answer: file and line, the cited sentence lit inside its passage."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget
from textual.widgets import ListItem, ListView

from qa.results import Citation
from qa.tui.render import passage_with_highlight, source_label


class CitationView(Widget):
    COMPONENT_CLASSES = {"citation--label", "citation--highlight"}

    def __init__(self, citation: Citation, closest: bool = False) -> None:
        super().__init__()
        self.citation = citation
        self.closest = closest  # a closest passage of a question not found: no [n] in any answer

    def render(self) -> Text:
        c = self.citation
        label = Text.assemble(
            ("closest: " if self.closest else f"[{c.n}] ", self.get_component_rich_style("citation--label")),
            (source_label(c.source, c.line, c.page), self.get_component_rich_style("citation--label")),
            "\n",
        )
        return label + passage_with_highlight(c, self.get_component_rich_style("citation--highlight"))


class CitationItem(ListItem):
    def __init__(self, citation: Citation, closest: bool = False) -> None:
        super().__init__(CitationView(citation, closest))
        self.citation = citation


class CitationsPanel(ListView):
    """Enter (or a click) on a source opens the document at the cited span."""

    closest = False  # the items are the closest passages of a declined answer, not its sources

    async def show(self, citations: tuple[Citation, ...], closest: bool = False) -> None:
        """The sources of an answer; or, ``closest``, the passages nearest a question the
        documents do not cover."""
        self.closest = closest
        await self.clear()  # the old items gone first, so that index 0 is the new first item
        await self.extend(CitationItem(c, closest) for c in citations)
        self.index = 0 if citations else None
        self.border_subtitle = "enter opens" if citations else ""

    @property
    def current(self) -> Citation | None:
        item = self.highlighted_child
        return item.citation if isinstance(item, CitationItem) else None
