"""One line above the input: what the app is doing, a progress bar while indexing, and the F1
hint, which stays at the right end however long the rest is (that is cut short instead)."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from qa.index.reports import IndexProgress, time_left

UNITS = {"checking": "files", "reading": "files", "embedding": "chunks", "writing": "steps"}


class StatusBar(Horizontal):
    clock = staticmethod(time.monotonic)  # when each phase began, for the time left

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._phase: tuple[str, float] | None = None
    def compose(self) -> ComposeResult:
        yield Static(id="status-text")
        yield ProgressBar(id="progress", show_eta=False)
        yield Static(id="progress-counts")
        yield Static("F1 help", id="status-hint")

    def on_mount(self) -> None:
        self.set_class(False, "-indexing")

    def set_status(self, text: str, busy: bool = False) -> None:
        self.query_one("#status-text", Static).update(Text(text))
        self.set_class(busy, "-busy")

    @property
    def status(self) -> str:
        return str(self.query_one("#status-text", Static).content)

    def show_progress(self, progress: IndexProgress | None) -> None:
        self.add_class("-indexing")
        bar = self.query_one(ProgressBar)
        counts = self.query_one("#progress-counts", Static)
        if progress is None or progress.total <= 0:
            bar.update(total=1, progress=0)  # not indeterminate: its animation never settles
            counts.update(Text(progress.phase + "…") if progress is not None else "")
            return
        bar.update(total=progress.total, progress=progress.done)
        if self._phase is None or self._phase[0] != progress.phase:
            self._phase = (progress.phase, self.clock())
        unit = progress.unit or UNITS.get(progress.phase, "")
        left = time_left(progress, self.clock() - self._phase[1])
        counts.update(Text(f"{progress.phase} {progress.done}/{progress.total} {unit}".rstrip()
                           + (f" · {left}" if left else "")))

    def hide_progress(self) -> None:
        self.remove_class("-indexing")
        self._phase = None
