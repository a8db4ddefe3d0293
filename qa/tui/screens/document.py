"""A whole document, scrolled to a citation with the cited span highlighted; Escape returns."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static

from qa.results import Citation
from qa.tui.render import is_markdown, show_markdown, source_label, split_document


class DocumentPart(Widget):
    """Part of the document text; the cited part styles its span with ``document--highlight``."""

    COMPONENT_CLASSES = {"document--highlight"}

    def __init__(self, text: Text, cited: tuple[int, int] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.text = text
        self.cited = cited

    def render(self) -> Text:
        if self.cited is None:
            return self.text
        text = self.text.copy()
        text.stylize(self.get_component_rich_style("document--highlight"), *self.cited)
        return text


class DocumentScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("c", "center", "Cited span"),
    ]

    def __init__(self, citation: Citation, text: str, closest: bool = False) -> None:
        super().__init__()
        self.citation = citation
        self.document = text
        self.closest = closest  # a closest passage of a declined answer: no [n] to show

    def compose(self) -> ComposeResult:
        c = self.citation
        title = Text.assemble(("closest passage: " if self.closest else f"[{c.n}] ", "bold"),
                              (source_label(c.source, c.line, c.page), "bold"),
                              f"  characters {c.start}–{c.end}")
        yield Static(title, id="document-title")
        before, middle, after, cited = split_document(self.document, c.start, c.end)
        with VerticalScroll(id="document-body"):
            yield DocumentPart(self._shown(before), id="document-before")
            yield DocumentPart(self._shown(middle), cited, id="document-cited")
            yield DocumentPart(self._shown(after), id="document-after")
        yield Footer()

    def _shown(self, part: str) -> Text:
        """Document text, literal; a Markdown document's emphasis shown with its markers kept,
        so every character stays where the offsets say."""
        text = Text(part)
        if is_markdown(self.citation.source):
            show_markdown(text)
        return text

    def on_mount(self) -> None:
        for part in self.query("#document-before, #document-after").results(DocumentPart):
            part.display = bool(part.text.plain)
        self.query_one("#document-body").focus()
        self.call_after_refresh(self.action_center)

    def action_center(self) -> None:
        self.query_one("#document-body", VerticalScroll).scroll_to_center(
            self.query_one("#document-cited"), animate=False)

    @property
    def highlighted(self) -> str:
        """The text shown highlighted (for tests and accessibility)."""
        part = self.query_one("#document-cited", DocumentPart)
        start, end = part.cited
        return part.text.plain[start:end]
