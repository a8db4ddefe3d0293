"""The chat screen's actions in the command palette (ctrl+p)."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

COMMANDS = [
    ("Rebuild the index", "rebuild", "Index new and edited documents, drop deleted ones (ctrl+r)"),
    ("Export the conversation to Markdown", "export", "Questions, answers and cited text (ctrl+s)"),
    ("New conversation", "new_conversation", "Follow-ups stop using the questions so far (ctrl+n)"),
    ("Open the selected source", "open_citation", "Show the document at the cited span (ctrl+o)"),
    ("Keys", "app.help", "Every key binding (F1)"),
]


class ChatCommands(Provider):
    """Commands that act on the chat screen; offered only while it is the active screen."""

    def _commands(self):
        from qa.tui.screens.chat import ChatScreen

        if not isinstance(self.screen, ChatScreen):
            return []
        return [(name, partial(self.screen.run_action, action), help)
                for name, action, help in COMMANDS]

    async def discover(self) -> Hits:
        for name, run, help in self._commands():
            yield DiscoveryHit(name, run, help=help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, run, help in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, help=help)
