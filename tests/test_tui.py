"""The chat app driven through Pilot: ask, open a source, rebuild, wait for the model, markup."""

from __future__ import annotations

import asyncio
import html
import re
import shutil
import threading
from pathlib import Path

import pytest
from conftest import SEEDS, FakeEmbedder

from qa.engine import Engine
from qa.errors import QAError
from qa.tui.app import create_app
from qa.tui.screens.chat import ChatScreen
from qa.tui.screens.dialogs import ConfirmDialog, ErrorDialog, ExportDialog
from qa.tui.screens.document import DocumentScreen
from qa.tui.screens.help import HelpScreen
from qa.tui.widgets.citations import CitationItem, CitationsPanel, CitationView
from qa.tui.widgets.question_input import QuestionInput
from qa.tui.widgets.status import StatusBar
from qa.tui.widgets.transcript import AnswerEntry, NoteEntry, QuestionEntry, Transcript

SIZE = (120, 40)
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


class GatedEmbedder(FakeEmbedder):
    """A fake model whose load waits until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def load(self) -> None:
        assert self.gate.wait(30), "the test never opened the gate"


class BrokenEmbedder(FakeEmbedder):
    def load(self) -> None:
        raise QAError("the model files are missing; reinstall qa")


async def settle(pilot, rounds: int = 100) -> None:
    """Until no worker runs and the messages they posted are handled."""
    app = pilot.app
    for _ in range(rounds):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in app.workers):
            await pilot.pause()
            if not any(w.is_running for w in app.workers):
                return


async def until(pilot, condition, rounds: int = 400) -> None:
    for _ in range(rounds):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError("the app never reached the expected state")


async def ask(pilot, question: str) -> AnswerEntry:
    box = pilot.app.screen.query_one(QuestionInput)
    box.focus()
    box.value = question
    await pilot.press("enter")
    entry = pilot.app.screen.query(AnswerEntry).last()
    # The worker may be done before its AnswerReady message is handled: wait for the screen.
    await until(pilot, lambda: entry.answer is not None or entry.error is not None, rounds=3000)
    await settle(pilot)
    return entry


def painted(app) -> str:
    """The characters on screen, in order (from the SVG screenshot)."""
    svg = app.export_screenshot()
    parts = re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.S)
    return html.unescape("".join(parts)).replace("\xa0", " ")


def record_notifications(app) -> list[str]:
    seen: list[str] = []
    original = app.notify

    def notify(message, **kwargs):
        seen.append(str(message))
        return original(message, **kwargs)

    app.notify = notify
    return seen


@pytest.fixture
def fake_engine(seeds_copy, tmp_path) -> Engine:
    return Engine(seeds_copy, tmp_path / "index", FakeEmbedder())


# -- the real model -------------------------------------------------------------------------


@pytest.mark.model
async def test_ask_shows_an_answer_with_citation_markers(seeds_engine):
    app = create_app(seeds_engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        entry = await ask(pilot, "What did Grushko demand?")
        assert entry.answer is not None and entry.answer.found
        rendered = entry.render()
        assert "[1]" in rendered.plain
        marker_at = rendered.plain.index("[1]")
        assert any(span.start <= marker_at < span.end and span.style for span in rendered.spans)
        assert "[1]" in painted(app)
        panel = app.screen.query_one(CitationsPanel)
        items = list(panel.query(CitationItem))
        # Every citation in order, one entry per passage.
        assert [c.n for item in items for c in item.citations] == [c.n for c in entry.answer.citations]
        passages = [(i.citation.source, i.citation.passage.start) for i in items]
        assert len(set(passages)) == len(passages)
        assert "Grushko" in items[0].citation.text


@pytest.mark.model
async def test_a_declined_answer_offers_its_closest_passages_to_open(seeds_engine):
    app = create_app(seeds_engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        entry = await ask(pilot, "Who won the 2018 FIFA World Cup?")
        assert not entry.answer.found and entry.answer.passages
        panel = app.screen.query_one(CitationsPanel)
        shown = [item.citation for item in panel.query(CitationItem)]
        assert [c.source for c in shown] == [p.source for p in entry.answer.passages[:3]]
        assert "closest" in str(app.screen.query_one("#sources-hint").render())
        await pilot.press("ctrl+o")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DocumentScreen)
        await pilot.pause()
        first = shown[0]
        assert screen.highlighted == first.text == seeds_engine.document_text(first.source)[first.start:first.end]
        assert str(screen.query_one("#document-title").render()).startswith("closest passage: ")


@pytest.mark.model
async def test_opening_a_citation_shows_the_document_at_the_highlighted_span(seeds_engine):
    app = create_app(seeds_engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        entry = await ask(pilot, "What did Grushko demand?")
        citation = entry.answer.citations[0]
        app.screen.query_one(CitationsPanel).focus()
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DocumentScreen)
        await pilot.pause()
        document = seeds_engine.document_text(citation.source)
        assert screen.highlighted == citation.text == document[citation.start:citation.end]
        body = screen.query_one("#document-body")
        cited = screen.query_one("#document-cited")
        assert body.scroll_y > 0  # the cited line is far down the article
        assert cited.region.overlaps(body.region)  # scrolled into view
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ChatScreen)


# -- the fake model -------------------------------------------------------------------------


async def test_rebuild_after_adding_a_file_shows_progress_then_the_summary(fake_engine, seeds_copy):
    app = create_app(fake_engine, watch=False)  # ctrl+r, not the automatic update
    gate = threading.Event()
    sync = fake_engine.sync

    def paused_sync(progress=None, **kwargs):
        def report(p):
            progress(p)
            if p.phase == "embedding" and p.done == 0:
                assert gate.wait(30)
        return sync(progress=report, **kwargs)

    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "What did Grushko demand?")
        (seeds_copy / "new_article.txt").write_text(
            "Zanzibar accord.\n\nThe Zanzibar accord on fisheries was signed by minister Okonkwo "
            "in Lisbon on Tuesday.\n", encoding="utf-8")
        fake_engine.sync = paused_sync
        await pilot.press("ctrl+r")
        status = app.screen.query_one(StatusBar)
        await until(pilot, lambda: "embedding" in str(status.query_one("#progress-counts").content))
        assert status.has_class("-indexing")
        assert status.query_one("#progress").display
        assert "Rebuilding" in status.status
        gate.set()
        await until(pilot, lambda: "Index rebuilt" in status.status)
        assert not status.has_class("-indexing")
        assert "1 added, 0 updated, 0 removed" in status.status
        transcript = app.screen.query_one(Transcript)
        assert transcript.query(QuestionEntry).first().question == "What did Grushko demand?"
        entry = await ask(pilot, "Who signed the Zanzibar accord on fisheries?")
        sources = {c.source for c in entry.answer.citations} | {p.source for p in entry.answer.passages}
        assert "new_article.txt" in sources


async def test_keys_typed_while_the_app_starts_are_kept_for_the_question_box(fake_engine):
    from textual import events

    app = create_app(fake_engine)
    # What the terminal delivers before any screen is mounted: kept, not dropped.
    for key, character in [("H", "H"), ("o", "o"), ("x", "x"), ("backspace", None), ("w", "w"),
                           ("question_mark", "?"), ("enter", "\r")]:
        await app.on_event(events.Key(key, character))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        transcript = app.screen.query_one(Transcript)
        await until(pilot, lambda: transcript.query(QuestionEntry))
        assert transcript.query(QuestionEntry).first().question == "How?"
        assert app.screen.query_one(QuestionInput).value == ""
        await ask(pilot, "What did Grushko demand?")  # keys go straight through from now on
        assert len(transcript.query(QuestionEntry)) == 2


async def test_typing_while_the_sources_have_the_focus_starts_a_question(fake_engine):
    app = create_app(fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "What did Grushko demand?")
        panel = app.screen.query_one(CitationsPanel)
        panel.focus()
        await pilot.press("enter")  # opens the source in the viewer
        await pilot.pause()
        assert isinstance(app.screen, DocumentScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.focused is panel
        await pilot.press(*"Who", "space", *"is", "enter")
        await pilot.pause()
        transcript = app.screen.query_one(Transcript)
        await until(pilot, lambda: len(transcript.query(QuestionEntry)) == 2)
        assert transcript.query(QuestionEntry).last().question == "Who is"
        assert not isinstance(app.screen, DocumentScreen)


async def test_a_smaller_window_keeps_the_latest_answer_in_view(fake_engine):
    app = create_app(fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for question in ("What did Grushko demand?", "How long did the meeting last?",
                         "Who is Alexander Fomin?", "What did Stoltenberg say?"):
            await ask(pilot, question)
        transcript = app.screen.query_one(Transcript)
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        assert transcript.max_scroll_y > 0
        assert transcript.scroll_y == transcript.max_scroll_y


async def test_a_question_asked_before_the_first_build_says_it_waits_for_the_index(fake_engine):
    from textual import events

    gate = threading.Event()
    sync = fake_engine.sync

    def paused_sync(**kwargs):
        assert gate.wait(30)
        return sync(**kwargs)

    fake_engine.sync = paused_sync  # no index yet: the app builds one at start
    app = create_app(fake_engine)
    for character in "Hi?":
        await app.on_event(events.Key(character, character))
    await app.on_event(events.Key("enter", "\r"))
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.screen.query_one(Transcript)
        await until(pilot, lambda: transcript.query(AnswerEntry)
                    and "index" in transcript.query(AnswerEntry).first().pending)
        gate.set()
        await until(pilot, lambda: transcript.query(AnswerEntry).first().answer is not None)


async def test_a_document_added_while_the_app_is_open_is_noticed(fake_engine, seeds_copy, monkeypatch):
    import qa.tui.screens.chat as chat

    monkeypatch.setattr(chat, "CORPUS_CHECK_SECONDS", 0.1)
    app = create_app(fake_engine, watch=False)  # ctrl+r, not the automatic update
    seen = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        status = app.screen.query_one(StatusBar)
        assert "changed" not in status.status
        (seeds_copy / "ferry.txt").write_text("The ferry to Glimmerfjord sails at noon.\n", encoding="utf-8")
        await until(pilot, lambda: "1 file(s) changed" in status.status)
        assert "ctrl+r" in status.status
        told = [n for n in seen if "ferry.txt" in n]
        assert len(told) == 1
        await pilot.pause(0.5)  # later looks at the same change stay quiet
        assert len([n for n in seen if "ferry.txt" in n]) == 1
        await pilot.press("ctrl+r")
        await until(pilot, lambda: "Index rebuilt" in status.status)
        await pilot.pause(0.3)
        assert "changed" not in status.status and len([n for n in seen if "ferry.txt" in n]) == 1


async def test_a_citation_opened_after_its_document_changed_never_highlights_other_text(
        fake_engine, seeds_copy):
    app = create_app(fake_engine, watch=False)  # ctrl+r, not the automatic update
    seen = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # A question the fake model answers (since the answer rules of edc8be5 it declines "What
        # did Grushko demand?").
        entry = await ask(pilot, "What did Grushko say?")
        citation = entry.answer.citations[0]
        path = seeds_copy / citation.source
        original = path.read_text(encoding="utf-8")
        # A paragraph added at the top, then ctrl+r: the old offsets now point at other text.
        path.write_text("An editor's note added at the top of the article.\n\n" + original, encoding="utf-8")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: "Index rebuilt" in app.screen.query_one(StatusBar).status)
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, DocumentScreen))
        await pilot.pause()
        assert app.screen.highlighted == citation.text
        assert any("changed since this answer" in note for note in seen)
        await pilot.press("escape")
        # The cited sentence deleted from the file: nothing is highlighted, the notice says why.
        path.write_text(original.replace(citation.text, "A different sentence now."), encoding="utf-8")
        generation = fake_engine.snapshot.generation
        await pilot.press("ctrl+r")
        await until(pilot, lambda: fake_engine.snapshot.generation > generation)
        await settle(pilot)
        seen.clear()
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, ChatScreen)
        assert any("no longer holds the cited text" in note for note in seen)


async def test_the_palette_offers_one_keys_command(fake_engine):
    app = create_app(fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"keys")
        await until(pilot, lambda: "Every key binding" in painted(app))
        assert "Show help for the focused widget" not in painted(app)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))


async def test_rebuild_from_the_command_palette(fake_engine, seeds_copy):
    app = create_app(fake_engine, watch=False)  # ctrl+r, not the automatic update
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        (seeds_copy / "000_5d4c552fcafd00ce.txt").unlink()
        await pilot.press("ctrl+p")
        await pilot.press(*"rebuild")
        await until(pilot, lambda: "Rebuild the index" in painted(app))
        await pilot.press("enter")
        status = app.screen.query_one(StatusBar)
        await until(pilot, lambda: "Index rebuilt" in status.status)
        assert "0 added, 0 updated, 1 removed" in status.status


async def test_a_question_asked_while_the_model_loads_is_answered_when_it_is_ready(seeds_copy, tmp_path):
    embedder = GatedEmbedder()
    engine = Engine(seeds_copy, tmp_path / "index", embedder)
    engine.sync()
    app = create_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        status = app.screen.query_one(StatusBar)
        assert "Loading the model" in status.status
        box = app.screen.query_one(QuestionInput)
        assert box.has_focus
        await pilot.press(*"What did Grushko demand?", "enter")
        await pilot.pause()
        entry = app.screen.query_one(AnswerEntry)
        assert entry.answer is None and "model" in entry.pending
        embedder.gate.set()
        await until(pilot, lambda: entry.answer is not None, rounds=1000)
        assert entry.answer.question == "What did Grushko demand?"
        assert "Ready" in status.status


async def test_markup_in_documents_and_file_names_is_shown_literally(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEEDS / "001_c078bb18e931b7c1.txt", corpus / "news.txt")
    tricky = "[bold]notes[red].txt"
    (corpus / tricky).write_text(
        "Office notes.\n\nThe vault password is [bold]swordfish[/bold] and the vault manual is at "
        "[link=https://example.com]manual[/link] for everyone.\n", encoding="utf-8")
    engine = Engine(corpus, tmp_path / "index", FakeEmbedder())
    app = create_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        entry = await ask(pilot, "What is the vault password?")
        shown = entry.render().plain
        assert "[bold]swordfish[/bold]" in shown
        assert tricky in shown
        screen = painted(app)
        assert "[bold]swordfish[/bold]" in screen
        assert tricky in screen
        cited = [c for c in entry.answer.citations if c.source == tricky]
        assert cited, "the fake model should find the vault sentence"
        # The viewer shows the tags too.
        app.screen.query_one(CitationsPanel).focus()
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, DocumentScreen)
        assert "[link=https://example.com]manual[/link]" in painted(app)
        assert "[bold]swordfish[/bold]" in app.screen.highlighted


async def test_history_new_conversation_and_export(fake_engine, tmp_path):
    app = create_app(fake_engine, export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "What did Grushko demand?")
        await ask(pilot, "How long did the meeting last?")
        box = app.screen.query_one(QuestionInput)
        box.value = "draft"
        await pilot.press("up")
        assert box.value == "How long did the meeting last?"
        await pilot.press("up")
        assert box.value == "What did Grushko demand?"
        await pilot.press("down", "down")
        assert box.value == "draft"

        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ExportDialog)
        target = tmp_path / "chat.md"
        app.screen.query_one("#export-path").value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        markdown = target.read_text(encoding="utf-8")
        assert "## 1. What did Grushko demand?" in markdown
        assert "## 2. How long did the meeting last?" in markdown
        for turn in app.screen.conversation.turns:
            for c in turn.answer.citations:
                assert f"`{c.source}, line {c.line}`" in markdown

        # An existing file is never overwritten; a folder gets the file inside it.
        seen = record_notifications(app)
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.screen.query_one("#export-path").value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        assert target.read_text(encoding="utf-8") == markdown
        assert any("already exists" in n for n in seen)
        folder = tmp_path / "exports"
        folder.mkdir()
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.screen.query_one("#export-path").value = str(folder)
        await pilot.press("enter")
        await pilot.pause()
        [written] = folder.glob("qa-conversation-*.md")
        assert "## 2. How long did the meeting last?" in written.read_text(encoding="utf-8")

        # A new conversation forgets the context, not the answers: they stay on screen, and the
        # export holds both conversations, the boundary marked.
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen.conversation.turns == []
        assert len(app.screen.query(QuestionEntry)) == 2
        await ask(pilot, "Who chaired the meeting?")
        assert [t.question for t in app.screen.conversation.turns] == ["Who chaired the meeting?"]
        await pilot.press("ctrl+s")
        await pilot.pause()
        both = tmp_path / "both.md"
        app.screen.query_one("#export-path").value = str(both)
        await pilot.press("enter")
        await pilot.pause()
        markdown = both.read_text(encoding="utf-8")
        assert markdown.index("## 2. How long did the meeting last?") < markdown.index("New conversation") \
            < markdown.index("## 3. Who chaired the meeting?")


async def test_help_lists_every_binding(fake_engine):
    app = create_app(fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        described = {what for _, _, what in app.screen.rows()}
        for binding in [*app.BINDINGS, *ChatScreen.BINDINGS, *DocumentScreen.BINDINGS,
                        *QuestionInput.BINDINGS, *Transcript.BINDINGS]:
            assert binding.description in described
        assert any(keys.startswith("/in") for _, keys, _ in app.screen.rows())  # typed, not bound
        # Each place's keys form one run: "Question box enter" sits with the other question-box keys.
        places = [where for where, _, _ in app.screen.rows()]
        runs = [where for i, where in enumerate(places) if i == 0 or places[i - 1] != where]
        assert len(runs) == len(set(runs)), runs
        await pilot.press("escape")
        assert isinstance(app.screen, ChatScreen)


async def test_a_load_failure_is_one_sentence_in_a_modal(seeds_copy, tmp_path):
    engine = Engine(seeds_copy, tmp_path / "index", BrokenEmbedder())
    engine.sync()
    app = create_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ErrorDialog))
        await pilot.pause()
        assert "the model files are missing; reinstall qa" in painted(app)
        assert "Traceback" not in painted(app)
        await pilot.press("enter")
        assert isinstance(app.screen, ChatScreen)
        assert "Cannot answer" in app.screen.query_one(StatusBar).status


async def test_an_index_from_another_model_is_explained_and_rebuilt_with_ctrl_r(seeds_copy, tmp_path):
    class OtherModel(FakeEmbedder):
        name = "another-model"

    Engine(seeds_copy, tmp_path / "index", OtherModel()).sync()
    engine = Engine(seeds_copy, tmp_path / "index", FakeEmbedder())
    app = create_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ErrorDialog))
        await pilot.pause()
        assert "ctrl+r" in painted(app)
        await pilot.press("enter")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen)
                    and "Ready" in app.screen.query_one(StatusBar).status, rounds=1000)
        entry = await ask(pilot, "What did Grushko demand?")
        assert entry.answer is not None


async def test_an_index_of_another_folder_is_explained_not_announced_as_changes(seeds_copy, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "ferry.txt").write_text("The ferry to Glimmerfjord sails at noon every day.\n")
    Engine(seeds_copy, tmp_path / "index", FakeEmbedder()).sync()
    app = create_app(Engine(other, tmp_path / "index", FakeEmbedder()))
    seen = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ErrorDialog))
        await pilot.pause()
        assert "built for the folder" in painted(app)
        assert "you are asked first" in painted(app)
        assert not any("changed since" in note for note in seen)
        await pilot.press("enter")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))  # it belongs elsewhere
        await pilot.click("#confirm")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen)
                    and "Ready" in app.screen.query_one(StatusBar).status, rounds=1000)
        entry = await ask(pilot, "When does the ferry to Glimmerfjord sail?")
        assert entry.answer.citations and entry.answer.citations[0].source == "ferry.txt"


async def test_a_changed_corpus_is_announced_with_an_offer_to_rebuild(fake_engine, seeds_copy):
    fake_engine.sync()
    (seeds_copy / "later.txt").write_text("A later article.\n", encoding="utf-8")
    app = create_app(fake_engine, watch=False)  # ctrl+r, not the automatic update
    seen = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: any("later.txt" in m and "ctrl+r" in m for m in seen))


async def test_missing_index_is_built_on_start(fake_engine):
    app = create_app(fake_engine)
    assert not fake_engine.index_exists()
    async with app.run_test(size=SIZE) as pilot:
        status = app.screen.query_one(StatusBar)
        await until(pilot, lambda: "Ready" in status.status, rounds=1000)
        assert fake_engine.index_exists()


async def test_ctrl_o_after_an_answer_without_sources_says_why(fake_engine):
    app = create_app(fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        seen = record_notifications(app)
        await pilot.press("ctrl+o")
        assert "ask a question first" in seen[-1]
        entry = await ask(pilot, "???")  # declined: no words to search for
        assert not entry.answer.found and not entry.answer.citations
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert "no source or close passage" in seen[-1]


async def test_every_answer_after_ctrl_n_is_scrolled_fully_into_view(fake_engine, monkeypatch):
    # The race: on an answer, the transcript asked to scroll to its end "after the next
    # refresh"; when a refresh was already due (the cursor blinks twice a second), it ran before
    # the screen had taken in the answer's new height, so the scroll stopped at the answer's
    # first line and nothing scrolled again. Here every answer comes with a refresh due, after
    # the screen has settled (as with the real model, which takes a moment to answer).
    handle_answer = ChatScreen.on_answer_ready

    async def answer_with_a_refresh_due(screen, message):
        handle_answer(screen, message)
        for _ in range(3):  # while the answer and the transcript take in what they were told,
            await asyncio.sleep(0)
            screen._on_timer_update()  # a refresh that was due runs (as Pilot.pause runs it)

    monkeypatch.setattr(ChatScreen, "on_answer_ready", answer_with_a_refresh_due)
    released = threading.Event()
    answer_now = fake_engine.ask

    def answer_when_released(question, history=()):
        assert released.wait(30)
        released.clear()
        return answer_now(question, history)

    fake_engine.ask = answer_when_released
    questions = ["What did Grushko demand?", "How long did the meeting last?",
                 "Who is Alexander Fomin?", "What did Stoltenberg say?"]
    app = create_app(fake_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        transcript = app.screen.query_one(Transcript)
        cut = []
        for turn in range(20):
            await pilot.press("ctrl+n")
            app.screen.query_one(QuestionInput).value = questions[turn % len(questions)]
            await pilot.press("enter")
            entry = app.screen.query(AnswerEntry).last()
            await until(pilot, lambda: "Searching" in entry.pending)
            await pilot.pause()
            released.set()
            await until(pilot, lambda: entry.answer is not None)
            for _ in range(50):  # a scroll on its way lands within a few refreshes
                if entry.size.height > 1 and transcript.scroll_y == transcript.max_scroll_y:
                    break
                await pilot.pause(0.01)
            if transcript.scroll_y != transcript.max_scroll_y:
                cut.append((turn, transcript.scroll_y, transcript.max_scroll_y))
        assert not cut, f"answers left cut (turn, scroll, end): {cut}"


async def test_an_index_written_by_another_process_is_taken_up(fake_engine, seeds_copy, monkeypatch):
    import qa.tui.screens.chat as chat

    monkeypatch.setattr(chat, "INDEX_CHECK_SECONDS", 0.1)
    app = create_app(fake_engine)
    seen = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        status = app.screen.query_one(StatusBar)
        assert "5 documents" in status.status
        (seeds_copy / "ferry.txt").write_text(
            "Ferry timetable.\n\nThe ferry to Glimmerfjord sails at noon every Tuesday.\n",
            encoding="utf-8")
        # `qa index` in another shell: another engine writes the next generation.
        Engine(seeds_copy, fake_engine.index_dir, FakeEmbedder()).sync()
        await until(pilot, lambda: "6 documents" in status.status)
        assert "changed" not in status.status
        assert any("generation 2" in note for note in seen)
        entry = await ask(pilot, "When does the ferry to Glimmerfjord sail?")
        assert entry.answer.citations and entry.answer.citations[0].source == "ferry.txt"


async def test_an_unusable_index_written_by_another_process_is_told_once(fake_engine, tmp_path,
                                                                         monkeypatch):
    import qa.tui.screens.chat as chat

    monkeypatch.setattr(chat, "INDEX_CHECK_SECONDS", 0.1)
    other = tmp_path / "other"
    other.mkdir()
    (other / "ferry.txt").write_text("The ferry to Glimmerfjord sails at noon.\n", encoding="utf-8")
    app = create_app(fake_engine)
    seen = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # Another process re-points the index to another folder (qa index --rebuild there).
        Engine(other, fake_engine.index_dir, FakeEmbedder()).sync(rebuild=True)
        await until(pilot, lambda: any("could not be used" in n or "built for the folder" in n
                                       for n in seen))
        await pilot.pause(0.5)
        assert len([n for n in seen if "built for the folder" in n]) == 1
        entry = await ask(pilot, "What did Grushko demand?")  # from the index loaded before
        sources = {c.source for c in entry.answer.citations} | {p.source for p in entry.answer.passages}
        assert sources and "ferry.txt" not in sources
        assert "5 documents" in app.screen.query_one(StatusBar).status


async def test_the_first_build_shows_progress_per_file_and_per_batch(fake_engine, monkeypatch):
    shown = []
    show_progress = StatusBar.show_progress

    def record(bar, progress):
        shown.append(progress)
        show_progress(bar, progress)

    monkeypatch.setattr(StatusBar, "show_progress", record)
    app = create_app(fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "Ready" in app.screen.query_one(StatusBar).status, rounds=1000)
    steps = {phase: [(p.done, p.total) for p in shown if p is not None and p.phase == phase]
             for phase in ("checking", "reading", "embedding")}
    assert steps["checking"] == [(n, 5) for n in range(1, 6)]  # the five seed articles
    assert steps["reading"] == [(n, 5) for n in range(1, 6)]
    chunks = steps["embedding"][-1][1]
    assert steps["embedding"][-1] == (chunks, chunks)
    between = [done for done, _ in steps["embedding"] if 0 < done < chunks]
    assert len(between) >= 2 and between == sorted(between), steps["embedding"]


async def test_a_long_build_shows_the_time_left(fake_engine):
    from qa.index.reports import IndexProgress

    app = create_app(fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        bar = app.screen.query_one(StatusBar)
        now = [100.0]
        bar.clock = lambda: now[0]
        counts = bar.query_one("#progress-counts")
        bar.show_progress(IndexProgress("embedding", 0, 1000))
        now[0] += 1
        bar.show_progress(IndexProgress("embedding", 32, 1000))
        assert "left" not in str(counts.content)  # too soon to tell
        now[0] += 19
        bar.show_progress(IndexProgress("embedding", 128, 1000))
        assert str(counts.content) == "embedding 128/1000 chunks · about 2 min left"
        bar.show_progress(IndexProgress("writing", 0, 1))  # a new phase: its own pace
        assert "left" not in str(counts.content)


def test_time_left_wording():
    from qa.index.reports import IndexProgress, time_left

    assert time_left(IndexProgress("embedding", 0, 100), 60) == ""
    assert time_left(IndexProgress("embedding", 10, 100), 1) == ""  # too soon
    assert time_left(IndexProgress("embedding", 50, 100), 5) == ""  # a short build
    assert time_left(IndexProgress("embedding", 50, 100), 40) == "about 40 s left"
    assert time_left(IndexProgress("embedding", 10, 100), 60) == "about 9 min left"
    assert time_left(IndexProgress("embedding", 1, 100), 120) == "about 3 h 18 min left"
    assert time_left(IndexProgress("embedding", 100, 100), 60) == ""


def one_passage_answer(engine: Engine):
    """An answer citing two sentences of the longest passage and one of another passage."""
    from qa.results import Answer, Citation

    engine.sync()
    snap = engine.snapshot
    rows = sorted(range(len(snap.chunks)), key=lambda r: snap.chunks[r].end - snap.chunks[r].start)
    longest, other = rows[-1], rows[0]

    def cite(n, row, sentence):
        passage = engine.passage(row, 1.0)
        start, end = snap.chunks[row].sentences[sentence]
        text = snap.documents[passage.source].text
        return Citation(n, passage.source, start, end, text[start:end],
                        text.count("\n", 0, start) + 1, passage)

    citations = (cite(1, longest, 1), cite(2, longest, 3), cite(3, other, 0))
    return Answer("q", True, " ".join(f"{c.text} [{c.n}]" for c in citations), citations,
                  tuple(c.passage for c in citations))


async def test_the_sources_panel_shows_one_entry_per_passage_using_the_space(fake_engine):
    answer = one_passage_answer(fake_engine)
    fake_engine.ask = lambda question, history=(): answer
    longest = answer.citations[0].passage
    app = create_app(fake_engine)
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        await ask(pilot, "Anything?")
        panel = app.screen.query_one(CitationsPanel)
        items = list(panel.query(CitationItem))
        assert [[c.n for c in item.citations] for item in items] == [[1, 2], [3]]
        first = items[0].query_one(CitationView)
        shown = first.render().plain
        assert shown.startswith("[1] [2] ")
        # Room enough: the whole passage, nothing cut.
        assert longest.text in shown and "…" not in shown
        for size in ((80, 24), (120, 40)):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.2)
            share = panel.size.height // len(items)
            for item in items:
                view = item.query_one(CitationView)
                shown = view.render().plain
                for c in item.citations:
                    assert c.text in shown  # never cut inside what is cited
                # Within its share of the height, unless the cited sentences alone take more.
                assert item.region.height <= max(share, item_height_of_cited(view))


def item_height_of_cited(view) -> int:
    """Lines the entry takes showing only its label and cited sentences."""
    from qa.tui.render import passage_with_highlights

    cited = view._label() + passage_with_highlights(view.citations, context=0, between=False)
    return view._height(cited, view.size.width) + 1  # and the gap below it


async def test_export_goes_by_default_to_the_documents_folder_not_the_current_one(
        fake_engine, tmp_path, monkeypatch, user_data_dir):
    home, checkout = tmp_path / "home", tmp_path / "checkout"
    home.mkdir()
    checkout.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(checkout)  # the repository, in the README's flow
    for documents in (None, home / "Documents"):
        if documents is not None:
            documents.mkdir()
        app = create_app(fake_engine)
        seen = record_notifications(app)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await ask(pilot, "What did Grushko demand?")
            await pilot.press("ctrl+s")
            await until(pilot, lambda: isinstance(app.screen, ExportDialog))
            default = Path(app.screen.query_one("#export-path").value)
            folder = documents or user_data_dir / "qa" / "exports"
            assert default.parent == folder and default.name.startswith("qa-conversation-")
            await pilot.press("enter")
            await until(pilot, lambda: default.exists())
            assert "## 1. What did Grushko demand?" in default.read_text(encoding="utf-8")
            assert any(str(default) in note for note in seen)
            notes = [str(n.render()) for n in app.screen.query(NoteEntry)]
            assert any(str(default) in " ".join(note.split()) for note in notes)
            # A name alone goes in that folder too.
            await pilot.press("ctrl+s")
            await until(pilot, lambda: isinstance(app.screen, ExportDialog))
            app.screen.query_one("#export-path").value = "talks.md"
            await pilot.press("enter")
            await until(pilot, lambda: (folder / "talks.md").exists())
            (folder / "talks.md").unlink()
    assert list(checkout.iterdir()) == []


async def test_markdown_in_answers_is_rendered_and_the_f1_hint_stays_at_80x24(tmp_path, monkeypatch):
    import qa.tui.screens.chat as chat

    monkeypatch.setattr(chat, "CORPUS_CHECK_SECONDS", 0.1)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEEDS / "001_c078bb18e931b7c1.txt", corpus / "news.txt")
    (corpus / "minsk.md").write_text(
        "# Minsk\n\nThe **Minsk II** agreement on the [bold]ceasefire[/bold] was signed in "
        "*February 2015* in Minsk.\n", encoding="utf-8")
    engine = Engine(corpus, tmp_path / "index", FakeEmbedder())
    app = create_app(engine, watch=False)  # the long "changed: ctrl+r" status line is wanted
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        entry = await ask(pilot, "When was the Minsk II agreement signed?")
        assert entry.answer.citations[0].source == "minsk.md"
        shown = entry.render()
        assert "The Minsk II agreement" in shown.plain and "**" not in shown.plain
        at = shown.plain.index("Minsk II")
        assert any(s.start <= at < s.end and "bold" in str(s.style) for s in shown.spans)
        assert "[bold]ceasefire[/bold]" in shown.plain  # markup in documents: still literal
        screen = painted(app)
        assert "**Minsk II**" not in screen and "[bold]ceasefire[/bold]" in screen
        # The viewer keeps every character (offsets hold) and shows the emphasis.
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, DocumentScreen))
        await pilot.pause()
        citation = entry.answer.citations[0]
        assert app.screen.highlighted == citation.text and "**Minsk II**" in citation.text
        part = app.screen.query_one("#document-cited").render()
        at = part.plain.index("Minsk II")
        assert any(s.start <= at < s.end and "bold" in str(s.style) for s in part.spans)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen))
        # A long status (a changed file) still leaves the F1 hint on the status line.
        (corpus / "later.txt").write_text("A later article.\n", encoding="utf-8")
        status = app.screen.query_one(StatusBar)
        await until(pilot, lambda: "changed" in status.status)
        await pilot.pause(0.2)
        row = screen_rows(app)[-5]  # above the question box (3 rows) and the footer
        assert "changed" in row and row.rstrip().endswith("F1 help"), row


def screen_rows(app) -> list[str]:
    """The screen as rows of characters (from the SVG screenshot)."""
    svg = app.export_screenshot()
    rows: dict[float, list[tuple[float, str]]] = {}
    for x, y, text in re.findall(r'<text[^>]* x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg,
                                 flags=re.S):
        rows.setdefault(float(y), []).append((float(x), html.unescape(text).replace("\xa0", " ")))
    lines = []
    for y in sorted(rows):
        line = ""
        for x, text in sorted(rows[y]):
            line = line.ljust(round(x / 12.2)) + text
        lines.append(line)
    return lines
