"""Snapshots of the chat app's main states (pytest-textual-snapshot).

They test the screen, not the ranking: a stub engine with the facade's methods and fixed,
exactly-cited answers keeps them stable while the retrieval code changes (the Pilot tests in
test_tui.py use the real engine). Nothing on screen depends on the clock or on temp paths.
Regenerate with: pytest tests/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual.widgets import Input
from textual.worker import get_current_worker

from qa.index.reports import IndexProgress, SyncReport
from qa.results import Answer, Citation, Passage
from qa.tui.app import create_app
from qa.tui.widgets.transcript import AnswerEntry

SIZE = (120, 40)

HEADLINE = "Council meets again\n\n"
FILLER = "".join(
    f"Item {n} of the agenda was discussed at length, and the delegates agreed to return to it.\n\n"
    for n in range(1, 25))
KEY_PARAGRAPH = ("The envoy said his country's core demand was a written promise that the alliance "
                 "would not grow any further. He called the talks frank but difficult. "
                 "Reporters asked about [bold]sanctions[/bold]; he did not answer.\n\n")
TAIL = "".join(f"Closing note {n}: the next meeting has no date yet.\n\n" for n in range(1, 12))
DOCUMENTS = {
    "council.txt": HEADLINE + FILLER + KEY_PARAGRAPH + TAIL,
    "briefing.txt": "Briefing\n\nThe meeting lasted four hours and ended without a joint statement.\n",
}


def cite(n: int, source: str, sentence: str, paragraph: str) -> Citation:
    text = DOCUMENTS[source]
    p_start = text.index(paragraph)
    start = text.index(sentence)
    line = text.count("\n", 0, start) + 1
    passage = Passage(source, p_start, p_start + len(paragraph), paragraph, 0.9,
                      text.count("\n", 0, p_start) + 1)
    return Citation(n, source, start, start + len(sentence), sentence, line, passage)


class StubEngine:
    """The facade the app uses, with fixed answers; ``load`` and ``sync`` can be held open."""

    corpus = Path("snapshot-corpus")
    index_dir = Path("snapshot-index")

    def __init__(self, hold_load: bool = False, hold_sync: bool = False) -> None:
        self.release = threading.Event()
        self.held = 0
        self.hold_load = hold_load
        self.hold_sync = hold_sync

    snapshot = None  # loaded and verified: the real one raises when the index is unusable

    def index_exists(self) -> bool:
        return True

    def index_outdated(self) -> bool:
        return False

    def changed_files(self) -> list[str]:
        return []

    def refresh(self):
        return None  # no other process writes this index

    def hold(self) -> None:
        """Wait until released, or until the app quits (which cancels the worker)."""
        worker = get_current_worker()
        self.held += 1
        while not self.release.wait(0.05) and not worker.is_cancelled:
            pass

    def load(self) -> None:
        if self.hold_load:
            self.hold()

    def stats(self) -> dict:
        return {"documents": 2, "chunks": 40}

    def sync(self, rebuild=False, progress=None, warn=None, on_wait=None) -> SyncReport:
        if progress:
            progress(IndexProgress("reading", 3, 3))
            progress(IndexProgress("embedding", 3, 8))
        if self.hold_sync:
            self.hold()
        return SyncReport(1, 0, 0, 2, 8, 3, 48, 0.5, 2)

    def document_text(self, source: str) -> str:
        return DOCUMENTS[source]

    def document_details(self, source: str) -> dict:
        return {}  # plain text files state no title, author or date

    def current_citation(self, citation):
        assert DOCUMENTS[citation.source][citation.start:citation.end] == citation.text
        return citation

    def ask(self, question: str, history=()) -> Answer:
        if "demand" in question:
            first = cite(1, "council.txt",
                         "The envoy said his country's core demand was a written promise that the "
                         "alliance would not grow any further.", KEY_PARAGRAPH.strip())
            second = cite(2, "briefing.txt", "The meeting lasted four hours and ended without a "
                          "joint statement.", "The meeting lasted four hours and ended without a "
                          "joint statement.")
            return Answer(question, True, f"{first.text} [1] {second.text} [2]", (first, second),
                          (first.passage, second.passage), 0.8, question)
        return Answer(question, False, "The documents do not seem to cover this.", (),
                      (cite(1, "briefing.txt", "Briefing", "Briefing").passage,), 0.1, question)


@pytest.fixture(autouse=True)
def steady_cursor(monkeypatch):
    """The question box's cursor does not blink here: its 0.5 s timer would otherwise hide it in
    a picture taken on a slow (busy) machine, and not on a fast one."""
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


@pytest.fixture
def stub():
    engines: list[StubEngine] = []

    def make(**kwargs) -> StubEngine:
        engines.append(StubEngine(**kwargs))
        return engines[-1]

    yield make
    for engine in engines:
        engine.release.set()


async def settle(pilot) -> None:
    """Until no worker runs (their messages may still be on the way: see ``ask``)."""
    for _ in range(50):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            return


async def ask(pilot, question: str) -> None:
    pilot.app.screen.query_one("#question").value = question  # typing key by key is slow
    await pilot.press("enter")
    entry = pilot.app.screen.query(AnswerEntry).last()
    for _ in range(500):  # until the answer is on screen, not just computed
        await settle(pilot)
        if entry.answer is not None:
            return
        await pilot.pause(0.01)
    raise AssertionError(f"no answer to {question!r}")


async def answered(pilot) -> None:
    await settle(pilot)
    await ask(pilot, "What did the envoy demand?")
    await ask(pilot, "Who won the football match?")
    # Show the found answer's sources again, as clicking it would.
    pilot.app.screen.query_one("#transcript").action_select_previous()
    await pilot.pause()


def test_start_while_the_model_loads(snap_compare, stub):
    assert snap_compare(create_app(stub(hold_load=True)), terminal_size=SIZE)


def test_answered(snap_compare, stub):
    assert snap_compare(create_app(stub()), terminal_size=SIZE, run_before=answered)


def test_citation_viewer(snap_compare, stub):
    async def open_first(pilot):
        await answered(pilot)
        await pilot.press("ctrl+o")
        await pilot.pause()
        await pilot.pause()

    assert snap_compare(create_app(stub()), terminal_size=SIZE, run_before=open_first)


def test_help(snap_compare, stub):
    async def help(pilot):
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(create_app(stub()), terminal_size=SIZE, run_before=help)


def test_rebuild_in_progress(snap_compare, stub):
    async def rebuild(pilot):
        await settle(pilot)
        await pilot.press("ctrl+r")
        for _ in range(100):
            await pilot.pause(0.02)
            if "embedding" in str(pilot.app.screen.query_one("#progress-counts").content):
                break

    assert snap_compare(create_app(stub(hold_sync=True)), terminal_size=SIZE, run_before=rebuild)
