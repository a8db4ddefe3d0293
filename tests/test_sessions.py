"""Conversations by id (expiry, cap, follow-ups as in one Conversation) and index updates run in
the background with their progress as events (qa/sessions.py), with the fake embedder."""

from __future__ import annotations

import threading

import pytest

from qa.engine import Conversation, Engine
from qa.errors import QAError
from qa.sessions import ConversationExpired, Conversations, IndexUpdates, UpdateRunning


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(seeds_copy, tmp_path, fake_embedder) -> Engine:
    engine = Engine(seeds_copy, tmp_path / "index", fake_embedder)
    engine.sync()
    return engine


def same(a, b) -> bool:
    strip = lambda answer: {k: v for k, v in answer.to_json().items() if k != "timings_ms"}
    return strip(a) == strip(b)


def test_a_conversation_by_id_answers_follow_ups_as_one_conversation_does(engine):
    conversations = Conversations(engine)
    ident, first = conversations.ask("Who chaired the NATO-Russia Council meeting?")
    same_ident, second = conversations.ask("What did he say?", ident)
    assert same_ident == ident
    plain = Conversation(engine)
    assert same(first, plain.ask("Who chaired the NATO-Russia Council meeting?"))
    assert same(second, plain.ask("What did he say?"))
    # A new conversation does not carry the first one's context.
    _, alone = conversations.ask("What did he say?")
    assert same(alone, Conversation(engine).ask("What did he say?"))


def test_conversations_expire_after_a_while_without_a_question(engine):
    clock = Clock()
    conversations = Conversations(engine, ttl=60, clock=clock)
    ident, _ = conversations.ask("Who chaired the meeting?")
    clock.now += 59
    conversations.ask("What did he say?", ident)  # a question keeps it alive
    clock.now += 59
    conversations.ask("And Grushko?", ident)
    clock.now += 61
    with pytest.raises(ConversationExpired, match="unknown or has expired"):
        conversations.ask("What did he say?", ident)
    assert len(conversations) == 0


def test_conversations_are_capped_and_the_one_left_alone_longest_goes_first(engine):
    clock = Clock()
    conversations = Conversations(engine, cap=3, clock=clock)
    idents = []
    for i in range(3):
        clock.now += 1
        idents.append(conversations.start())
    clock.now += 1
    conversations.ask("Who chaired the meeting?", idents[0])  # the oldest is used again
    clock.now += 1
    fourth = conversations.start()
    assert len(conversations) == 3
    with pytest.raises(ConversationExpired):
        conversations.ask("Who?", idents[1])  # the one left alone longest was dropped
    for ident in (idents[0], idents[2], fourth):
        conversations.ask("Who chaired the meeting?", ident)


def test_an_unknown_conversation_is_refused_not_started_silently(engine):
    with pytest.raises(ConversationExpired, match="leave it out to start a new one"):
        Conversations(engine).ask("Who?", "no-such-id")


def test_a_conversation_started_with_earlier_questions_has_asked_them(engine):
    conversations = Conversations(engine)
    ident = conversations.start(["Who chaired the NATO-Russia Council meeting?"])
    _, answer = conversations.ask("What did he say?", ident)
    plain = Conversation(engine)
    plain.ask("Who chaired the NATO-Russia Council meeting?")
    assert same(answer, plain.ask("What did he say?"))


def test_with_no_update_started_the_events_say_idle(engine):
    assert list(IndexUpdates(engine).events(timeout=1)) == [{"event": "idle"}]


def test_an_update_reports_its_progress_and_its_report(engine, seeds_copy):
    (seeds_copy / "new.txt").write_text("The ferry to Tallinn leaves at nine every morning.\n")
    updates = IndexUpdates(engine)
    updates.start()
    events = [e for e in updates.events(timeout=5) if e is not None]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "done"
    assert "progress" in kinds
    assert events[-1]["added"] == 1 and events[-1]["added_sources"] == ["new.txt"]
    assert not updates.running
    # A listener that comes later gets the story too (each phase's last progress).
    later = [e for e in updates.events(timeout=1) if e is not None]
    assert later[0] == events[0] and later[-1] == events[-1]
    assert {e["phase"] for e in later if e["event"] == "progress"} == \
        {e["phase"] for e in events if e["event"] == "progress"}


def test_only_one_update_runs_at_a_time(engine, monkeypatch):
    release = threading.Event()
    original = engine.sync

    def slow_sync(**kwargs):
        release.wait(30)
        return original(**kwargs)

    monkeypatch.setattr(engine, "sync", slow_sync)
    updates = IndexUpdates(engine)
    updates.start()
    with pytest.raises(UpdateRunning, match="already running"):
        updates.start()
    release.set()
    assert updates.wait(30)
    updates.start()  # and once it is done, another may start
    assert updates.wait(30)


def test_a_failed_update_ends_with_its_message(engine, monkeypatch):
    def broken(**kwargs):
        raise QAError("no documents in the corpus folder")

    monkeypatch.setattr(engine, "sync", broken)
    updates = IndexUpdates(engine)
    updates.start()
    events = [e for e in updates.events(timeout=5) if e is not None]
    assert events[-1] == {"event": "error", "message": "no documents in the corpus folder"}


def test_a_crash_in_an_update_is_an_error_event_without_a_traceback(engine, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(engine, "sync", broken)
    updates = IndexUpdates(engine)
    updates.start()
    last = [e for e in updates.events(timeout=5) if e is not None][-1]
    assert last == {"event": "error", "message": "the update failed (RuntimeError)"}


def test_a_question_asked_while_an_update_switches_generations_sees_one_of_them(engine, seeds_copy):
    # The engine pins the generation a question started with; sync's switch happens meanwhile.
    before = engine.snapshot.generation
    with engine.pinned() as snapshot:
        (seeds_copy / "new.txt").write_text("The ferry to Tallinn leaves at nine every morning.\n")
        done = threading.Thread(target=engine.sync)
        done.start()
        done.join()
        assert engine.snapshot is snapshot and snapshot.generation == before
    assert engine.snapshot.generation == before + 1
