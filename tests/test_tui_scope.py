"""The app's scope: `/in PATH` typed in the question box, shown in the status line."""

from __future__ import annotations

import pytest

from qa.tui.app import create_app
from qa.tui.widgets.question_input import QuestionInput
from qa.tui.widgets.status import StatusBar
from qa.tui.widgets.transcript import AnswerEntry
from test_tui import SIZE, anyio_backend, ask, fake_engine, record_notifications, settle  # noqa: F401

pytestmark = pytest.mark.anyio
ARTICLE = "003_284a1730d43f9d1a.txt"


async def command(pilot, text: str) -> None:
    box = pilot.app.screen.query_one(QuestionInput)
    box.focus()
    box.value = text
    await pilot.press("enter")
    await settle(pilot)


def status(app) -> str:
    return str(app.screen.query_one(StatusBar).query_one("#status-text").render())


async def test_in_sets_and_clears_the_scope(fake_engine):
    app = create_app(fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        seen = record_notifications(app)
        await command(pilot, f"/in {ARTICLE}")
        assert f"in {ARTICLE}" in status(app)
        assert not app.screen.query(AnswerEntry)  # a command, not a question
        assert app.screen.query_one(QuestionInput).value == ""
        entry = await ask(pilot, "What did Grushko demand?")
        cited = {c.source for c in entry.answer.citations} or {p.source for p in entry.answer.passages}
        assert cited == {ARTICLE}
        assert app.screen.all_turns()[-1].scope == ARTICLE  # so an export says so
        await command(pilot, "/in minutes")
        assert any("--in minutes" in s for s in seen)
        assert f"in {ARTICLE}" in status(app)  # unchanged
        app.screen.action_new_conversation()
        await settle(pilot)
        assert app.screen.conversation.scope is not None  # a new conversation keeps the scope
        await command(pilot, "/in")
        assert " · in " not in status(app)
        assert app.screen.conversation.scope is None
