"""The chat app keeps its index current by itself: documents added, edited or removed while it is
open are indexed in the background (a burst of saves is one update), questions are answered
meanwhile from the generation loaded; `qa --no-watch` turns that off; another folder's index is
never updated by itself."""

from __future__ import annotations

import threading

import pytest
from conftest import FakeEmbedder

import qa.tui.autoupdate as autoupdate
from qa.engine import Engine
from qa.index import generations
from qa.tui.app import create_app
from qa.tui.widgets.question_input import QuestionInput
from qa.tui.widgets.status import StatusBar
from qa.tui.widgets.transcript import AnswerEntry
from test_tui import (SIZE, anyio_backend, ask, fake_engine, record_notifications,  # noqa: F401
                      settle, until)

pytestmark = pytest.mark.anyio
FERRY = "Ferry timetable.\n\nThe ferry to Glimmerfjord sails at noon every Tuesday.\n"
WAIT = 1500  # rounds of 20 ms: 30 s for an update to arrive on a busy machine


@pytest.fixture(autouse=True)
def short_quiet(monkeypatch):
    """A burst is over after 0.3 s of quiet here (1 s in the app): the tests wait less."""
    monkeypatch.setattr(autoupdate, "QUIET_MS", 300)


async def watching(pilot) -> StatusBar:
    """Until the app is ready and its watcher follows the folder; its status bar."""
    await settle(pilot)
    screen = pilot.app.screen
    await until(pilot, lambda: screen.ready and screen._watcher is not None
                and screen._watcher.ready.is_set(), rounds=WAIT)
    return screen.query_one(StatusBar)


def generation(engine: Engine) -> int:
    return generations.read_manifest(engine.index_dir)["generation"]


async def test_a_document_added_while_the_app_is_open_is_indexed_by_itself(fake_engine, seeds_copy):
    app = create_app(fake_engine)
    seen = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        status = await watching(pilot)
        assert "5 documents" in status.status
        (seeds_copy / "ferry.txt").write_text(FERRY, encoding="utf-8")
        await until(pilot, lambda: "6 documents" in status.status, rounds=WAIT)  # no ctrl+r
        assert "Index updated: 1 added" in status.status
        assert any("added: ferry.txt" in note for note in seen)
        assert "ctrl+r" not in status.status
        entry = await ask(pilot, "When does the ferry to Glimmerfjord sail?")
        assert entry.answer.citations and entry.answer.citations[0].source == "ferry.txt"
        # Removed: the next update drops it.
        (seeds_copy / "ferry.txt").unlink()
        await until(pilot, lambda: "5 documents" in status.status, rounds=WAIT)
        assert "ferry.txt" not in fake_engine.sources()


async def test_questions_are_answered_from_the_loaded_index_while_it_updates(fake_engine, seeds_copy):
    gate = threading.Event()
    sync = fake_engine.sync

    def held_sync(progress=None, **kwargs):
        def report(p):
            progress(p)
            if p.phase == "embedding" and p.done == 0:
                assert gate.wait(30)
        return sync(progress=report, **kwargs)

    app = create_app(fake_engine)
    try:
        async with app.run_test(size=SIZE) as pilot:
            status = await watching(pilot)
            fake_engine.sync = held_sync
            (seeds_copy / "ferry.txt").write_text(FERRY, encoding="utf-8")
            counts = status.query_one("#progress-counts")
            await until(pilot, lambda: "embedding" in str(counts.content), rounds=WAIT)
            assert "updating the index" in status.status and status.has_class("-indexing")
            # Not held up by the update (`ask` would wait for every worker, the update's too).
            box = app.screen.query_one(QuestionInput)
            box.value = "What did Grushko say?"
            await pilot.press("enter")
            entry = app.screen.query(AnswerEntry).last()
            await until(pilot, lambda: entry.answer is not None or entry.error is not None,
                        rounds=WAIT)
            await pilot.pause()
            assert entry.answer is not None and entry.answer.citations
            assert all(c.source != "ferry.txt" for c in entry.answer.passages)
            assert "updating the index" in status.status  # said again once the answer is in
            gate.set()
            await until(pilot, lambda: "6 documents" in status.status, rounds=WAIT)
            entry = await ask(pilot, "When does the ferry to Glimmerfjord sail?")
            assert entry.answer.citations[0].source == "ferry.txt"
    finally:
        gate.set()


async def test_a_burst_of_saves_is_one_update(fake_engine, seeds_copy):
    app = create_app(fake_engine)
    seen = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        status = await watching(pilot)
        before = generation(fake_engine)
        for n in range(3):
            (seeds_copy / f"note-{n}.txt").write_text(f"Note {n} about the harbour quay.\n")
        await until(pilot, lambda: "8 documents" in status.status, rounds=WAIT)
        assert "3 added" in status.status
        assert generation(fake_engine) == before + 1
        assert len([note for note in seen if "added: note-0.txt" in note]) == 1


async def test_documents_changed_before_the_app_opened_are_indexed_at_start(fake_engine, seeds_copy):
    fake_engine.sync()
    (seeds_copy / "ferry.txt").write_text(FERRY, encoding="utf-8")
    app = create_app(fake_engine)
    seen = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        status = pilot.app.screen.query_one(StatusBar)
        await until(pilot, lambda: "6 documents" in status.status, rounds=WAIT)
        assert not any("ctrl+r" in note for note in seen)


async def test_with_no_watch_the_app_offers_ctrl_r_and_does_not_update_by_itself(
        fake_engine, seeds_copy, monkeypatch):
    import qa.tui.screens.chat as chat

    monkeypatch.setattr(chat, "CORPUS_CHECK_SECONDS", 0.1)
    app = create_app(fake_engine, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        status = app.screen.query_one(StatusBar)
        assert app.screen._watcher is None
        before = generation(fake_engine)
        (seeds_copy / "ferry.txt").write_text(FERRY, encoding="utf-8")
        await until(pilot, lambda: "1 file(s) changed: ctrl+r" in status.status, rounds=WAIT)
        await pilot.pause(1.0)  # longer than a burst's quiet: an update would have begun
        await settle(pilot)
        assert generation(fake_engine) == before and "5 documents" in status.status
        await pilot.press("ctrl+r")
        await until(pilot, lambda: "Index rebuilt" in status.status, rounds=WAIT)
        assert generation(fake_engine) == before + 1


def test_no_watch_reaches_the_app_from_the_command_line(monkeypatch, seeds_copy):
    import qa.tui.app
    from qa.cli import main

    calls = []
    monkeypatch.setattr(qa.tui.app, "run", lambda *args, **kwargs: calls.append(kwargs) or 0)
    corpus = ["--corpus", str(seeds_copy)]
    for argv in (corpus, [*corpus, "--no-watch"], [*corpus, "chat", "--no-watch"],
                 [*corpus, "--no-watch", "chat"]):
        assert main(argv) == 0
    assert [call["watch"] for call in calls] == [True, False, False, False]


async def test_another_folders_index_is_never_updated_by_itself(fake_engine, seeds_copy, tmp_path,
                                                                monkeypatch):
    import qa.tui.screens.chat as chat

    monkeypatch.setattr(chat, "INDEX_CHECK_SECONDS", 0.1)
    other = tmp_path / "other"
    other.mkdir()
    (other / "pier.txt").write_text("The island pier was rebuilt in 2019 with oak.\n")
    touched = threading.Event()
    handle = autoupdate.IndexUpkeep.on_corpus_touched
    monkeypatch.setattr(autoupdate.IndexUpkeep, "on_corpus_touched",
                        lambda screen, message: (handle(screen, message), touched.set()))
    app = create_app(fake_engine)
    seen = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await watching(pilot)
        # Another process re-points the index to another folder (qa index --rebuild there).
        Engine(other, fake_engine.index_dir, FakeEmbedder()).sync(rebuild=True)
        await until(pilot, lambda: any("built for the folder" in n for n in seen), rounds=WAIT)
        (seeds_copy / "ferry.txt").write_text(FERRY, encoding="utf-8")
        await until(pilot, touched.is_set, rounds=WAIT)
        await settle(pilot)
        assert not app.screen.indexing
        manifest = generations.read_manifest(fake_engine.index_dir)
        assert set(manifest["documents"]) == {"pier.txt"}  # still the other folder's
        assert not any("added: ferry.txt" in n for n in seen)
        assert "5 documents" in app.screen.query_one(StatusBar).status


async def test_a_skipped_file_is_told_once_not_on_every_update(fake_engine, seeds_copy):
    (seeds_copy / "draft.txt").write_text("")  # skipped: empty
    app = create_app(fake_engine)
    seen = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        status = await watching(pilot)  # the index is built at start, naming draft.txt
        assert len([n for n in seen if "draft.txt" in n]) == 1
        (seeds_copy / "ferry.txt").write_text(FERRY, encoding="utf-8")
        await until(pilot, lambda: "6 documents" in status.status, rounds=WAIT)
        (seeds_copy / "ferry.txt").write_text(FERRY + "It returns at six.\n", encoding="utf-8")
        await until(pilot, lambda: any("updated: ferry.txt" in n for n in seen), rounds=WAIT)
        assert len([n for n in seen if "draft.txt" in n]) == 1
        # Fixed, then emptied again: told again.
        (seeds_copy / "draft.txt").write_text("A draft about the ferry.\n")
        await until(pilot, lambda: "7 documents" in status.status, rounds=WAIT)
        (seeds_copy / "draft.txt").write_text("")
        await until(pilot, lambda: len([n for n in seen if "draft.txt: empty" in n]) == 2,
                    rounds=WAIT)
