"""F1: every key binding of the app, gathered from the bindings themselves."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEY_NAMES = {"escape": "esc"}

# Keys handled by widgets rather than bindings with a description.
EXTRA = [
    ("Question box", "enter", "Ask the question"),
    ("Question box", "/in PATH…", "Answer only from those files or folders (globs work); /in alone: all"),
    ("Sources", "enter / click", "Open the source at the cited span"),
    ("Transcript", "click", "Show that answer's sources"),
    ("Everywhere", "tab / shift+tab", "Move between the transcript, sources and question box"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "app.pop_screen", "Close help")]

    def __init__(self, sections: Iterable[tuple[str, Iterable]]) -> None:
        super().__init__()
        self.sections = [(name, list(bindings)) for name, bindings in sections]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog") as dialog:
            dialog.border_title = "Keys"
            dialog.border_subtitle = "escape closes"
            yield Static(self.table(), id="help-table")

    def rows(self) -> list[tuple[str, str, str]]:
        """(where, keys, what) for every binding with a description and every extra key, grouped by
        where they work, in the order of the sections."""
        rows: dict[tuple[str, str, str], list[str]] = {}
        for name, bindings in self.sections:
            for binding in Binding.make_bindings(bindings):
                if binding.description:
                    keys = rows.setdefault((name, binding.action, binding.description), [])
                    keys.extend(KEY_NAMES.get(k, k) for k in binding.key.split(","))
        rows = [(name, " / ".join(keys), what) for (name, _, what), keys in rows.items()]
        rows.extend(EXTRA)
        order = {name: i for i, (name, _) in enumerate(self.sections)}
        return sorted(rows, key=lambda row: order.get(row[0], len(order)))  # stable: keeps key order

    def table(self) -> Table:
        table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold")
        table.add_column("Where")
        table.add_column("Key", style="bold")
        table.add_column("Does")
        for where, keys, what in self.rows():
            table.add_row(Text(where), Text(keys), Text(what))
        return table
