"""The chat app: ``qa`` or ``qa chat``. Screens and widgets live in their own modules.

Nothing here imports torch or the model: the first frame is drawn at once, and the chat screen
loads the index and the model in a worker thread.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from textual import events
from textual.app import App
from textual.binding import Binding

from qa.engine import Engine
from qa.tui.commands import ChatCommands
from qa.tui.screens.chat import ChatScreen
from qa.tui.screens.document import DocumentScreen
from qa.tui.screens.help import HelpScreen
from qa.tui.widgets.question_input import QuestionInput
from qa.tui.widgets.transcript import Transcript

# Besides printable characters, the keys kept for the question box when typed during start-up
# (Enter may arrive as ctrl+m or ctrl+j, depending on the terminal's mode when it was typed).
EARLY_KEYS = ("enter", "ctrl+m", "ctrl+j", "backspace")


class QAApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "qa"
    COMMANDS = App.COMMANDS | {ChatCommands}
    BINDINGS = [
        Binding("f1", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, engine: Engine, export_dir: Path | None = None, watch: bool = True) -> None:
        super().__init__()
        self.engine = engine
        self.export_dir = export_dir
        self.watch = watch  # update the index by itself when documents change
        self.sub_title = f"documents: {Path(engine.corpus).name or engine.corpus}"
        # Keys typed while the app starts arrive before any screen can take them; they are kept
        # for the chat screen's question box (see ChatScreen.on_mount), not dropped.
        self._early_keys: list[events.Key] | None = []

    async def on_event(self, event: events.Event) -> None:
        if self._early_keys is not None and isinstance(event, events.Key) \
                and not event.is_forwarded and (event.is_printable or event.key in EARLY_KEYS):
            self._early_keys.append(event)
            return
        await super().on_event(event)

    def take_early_keys(self) -> list[events.Key]:
        """The keys typed before the chat screen was mounted; from now on keys go through."""
        keys, self._early_keys = self._early_keys or [], None
        return keys

    def get_system_commands(self, screen):
        # Textual's own "Keys" opens its key panel; ours (F1, listed by ChatCommands as "Keys")
        # lists every key of the app. One "Keys" in the palette, not two.
        return [c for c in super().get_system_commands(screen) if c.title != "Keys"]

    def get_default_screen(self) -> ChatScreen:
        return ChatScreen(self.engine, self.export_dir, self.watch)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen([
                ("App", self.BINDINGS + [Binding("ctrl+p", "command_palette", "Command palette")]),
                ("Chat", ChatScreen.BINDINGS),
                ("Question box", QuestionInput.BINDINGS),
                ("Transcript", Transcript.BINDINGS),
                ("Sources", [Binding("up,down", "cursor", "Choose a source")]),
                ("Document", DocumentScreen.BINDINGS),
            ]))


def create_app(engine: Engine, export_dir: Path | None = None, watch: bool = True) -> QAApp:
    """The app over an engine you made: the real one, or one with a test embedder. With
    ``watch`` false it does not update the index by itself (it offers ctrl+r instead)."""
    return QAApp(engine, export_dir, watch)


def run(corpus: str | None = None, index: str | None = None, restore_terminal=None,
        watch: bool = True) -> int:
    """Open the chat app on ``corpus`` with its index in ``index``, then exit the process;
    ``restore_terminal()`` puts back the terminal's settings from before the app (see qa.cli);
    ``watch``: update the index by itself when documents change."""
    from qa.errors import QAError

    try:
        engine = Engine.open(corpus, index)
        if not engine.corpus.is_dir():
            raise QAError(f"no corpus folder at {engine.corpus}")
        app = create_app(engine, watch=watch)
        app.run()
    finally:
        if restore_terminal is not None:
            restore_terminal()
    # The screen is restored and every worker thread has finished (index writes are atomic
    # anyway); tearing down torch would only keep the terminal waiting for seconds.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(app.return_code or 0)
