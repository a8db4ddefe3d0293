"""Small modal dialogs: a one-sentence error, a yes-or-no question, and where to export the
conversation."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ErrorDialog(ModalScreen[None]):
    """A failure the user must see before going on: one sentence, then OK."""

    BINDINGS = [Binding("escape,enter", "app.pop_screen", "Close")]

    def __init__(self, title: str, message: str, hint: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="error-dialog", classes="dialog") as dialog:
            dialog.border_title = self.title_text
            yield Static(Text(self.message), id="error-message")
            if self.hint:
                yield Static(Text(self.hint), id="error-hint")
            with Horizontal(classes="buttons"):
                yield Button("OK", variant="primary", id="ok")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss()


class ConfirmDialog(ModalScreen[bool]):
    """A question before something that cannot be undone; dismisses with True only for the
    confirm button (Escape, or the other button, says no)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, message: str, confirm: str, cancel: str = "Cancel") -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.labels = (confirm, cancel)

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog", classes="dialog") as dialog:
            dialog.border_title = self.title_text
            yield Static(Text(self.message), id="confirm-message")
            with Horizontal(classes="buttons"):
                yield Button(self.labels[0], variant="warning", id="confirm")
                yield Button(self.labels[1], variant="primary", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()  # Enter alone never destroys anything

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")

    def action_cancel(self) -> None:
        self.dismiss(False)


class ExportDialog(ModalScreen[str | None]):
    """Asks for the Markdown file to write; dismisses with the path, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default_path: str, folder: str = "") -> None:
        super().__init__()
        self.default_path = default_path
        self.folder = folder

    def compose(self) -> ComposeResult:
        with Vertical(id="export-dialog", classes="dialog") as dialog:
            dialog.border_title = "Export the conversation to Markdown"
            yield Label(Text(f"File (a name alone goes in {self.folder}):" if self.folder
                             else "File:"))
            yield Input(self.default_path, id="export-path", select_on_focus=False)
            with Horizontal(classes="buttons"):
                yield Button("Export", variant="primary", id="export")
                yield Button("Cancel", id="cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "export":
            self.dismiss(self.query_one(Input).value.strip() or None)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
