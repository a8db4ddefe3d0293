"""The conversation: questions, answers with styled ``[n]`` markers and their sources."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.events import Click, Resize
from textual.geometry import Size
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from qa.results import Answer
from qa.tui.render import answer_text, sources_text


class QuestionEntry(Static):
    """A question the user asked, shown literally."""

    def __init__(self, question: str) -> None:
        super().__init__(Text.assemble(("You  ", "bold"), question))
        self.question = question


class NoteEntry(Static):
    """A line from the app itself: a new conversation, an index rebuild."""

    def __init__(self, note: str) -> None:
        super().__init__(Text(note))


class AnswerEntry(Widget):
    """An answer (or its placeholder while it is on the way); click to show its sources."""

    COMPONENT_CLASSES = {"answer--marker", "answer--source", "answer--pending"}

    def __init__(self, key: int, pending: str) -> None:
        super().__init__(classes="-pending")
        self.key = key
        self.pending = pending
        self.answer: Answer | None = None
        self.error: str | None = None

    def render(self) -> Text:
        if self.answer is None:
            style = self.get_component_rich_style("answer--pending")
            return Text(self.error or self.pending, style=style)
        marker = self.get_component_rich_style("answer--marker")
        source = self.get_component_rich_style("answer--source")
        return answer_text(self.answer, marker) + sources_text(self.answer, marker, source)

    def set_pending(self, pending: str) -> None:
        self.pending = pending
        self.refresh(layout=True)

    def set_answer(self, answer: Answer) -> None:
        self.answer = answer
        self.remove_class("-pending")
        self.add_class("-found" if answer.found else "-not-found")
        self.refresh(layout=True)

    def set_failed(self, error: str) -> None:
        self.error = error
        self.remove_class("-pending")
        self.add_class("-failed")
        self.refresh(layout=True)

    def on_click(self, event: Click) -> None:
        if self.answer is not None and isinstance(self.parent, Transcript):
            self.parent.select(self)


class Transcript(VerticalScroll, can_focus=True):
    """The scrolling conversation; Up / Down choose which answer's sources are shown."""

    BINDINGS = [
        Binding("up", "select_previous", "Previous answer", show=False),
        Binding("down", "select_next", "Next answer", show=False),
    ]

    class AnswerSelected(Message):
        def __init__(self, entry: AnswerEntry) -> None:
            super().__init__()
            self.entry = entry

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.selected: AnswerEntry | None = None

    def watch_virtual_size(self, old: Size, new: Size) -> None:
        """Scrolled to the end before the content grew: stay at the end.

        A scroll_end alone runs "after the next refresh", and a refresh already due when an answer
        came could run before the answer's new height was laid out: the transcript then stayed at
        the answer's first line. This runs once the new height is known.
        """
        if new.height > old.height:
            old_end = old.height - (self.container_size.height - self.scrollbar_size_horizontal)
            if self.scroll_y >= old_end:
                self.scroll_end(animate=False)

    def add_exchange(self, question: str, key: int, pending: str) -> AnswerEntry:
        entry = AnswerEntry(key, pending)
        self.mount(QuestionEntry(question))
        self.mount(entry)
        self.scroll_end(animate=False)
        return entry

    def add_note(self, note: str) -> None:
        self.mount(NoteEntry(note))
        self.scroll_end(animate=False)

    def on_resize(self, event: Resize) -> None:
        """A new width rewraps every answer: keep the chosen answer (the latest, by default) in
        view rather than wherever the old scroll offset now lands."""
        entries = self.answered()
        target = self.selected if self.selected in entries else None
        if target is None or target is entries[-1]:
            self.call_after_refresh(self.scroll_end, animate=False)
        else:
            self.call_after_refresh(self.scroll_to_widget, target, animate=False)

    def entry(self, key: int) -> AnswerEntry | None:
        for entry in self.query(AnswerEntry):
            if entry.key == key:
                return entry
        return None

    def answered(self) -> list[AnswerEntry]:
        return [e for e in self.query(AnswerEntry) if e.answer is not None]

    def select(self, entry: AnswerEntry) -> None:
        if self.selected is not None and self.selected.is_attached:
            self.selected.remove_class("-selected")
        self.selected = entry
        entry.add_class("-selected")
        self.post_message(self.AnswerSelected(entry))

    def _move(self, step: int) -> None:
        entries = self.answered()
        if not entries:
            return
        if self.selected in entries:
            index = min(max(entries.index(self.selected) + step, 0), len(entries) - 1)
        else:
            index = len(entries) - 1
        self.select(entries[index])
        self.scroll_to_widget(entries[index], animate=False)

    def action_select_previous(self) -> None:
        self._move(-1)

    def action_select_next(self) -> None:
        self._move(1)
