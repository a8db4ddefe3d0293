"""The main screen: transcript, sources, status line and question box, plus the workers."""

from __future__ import annotations

import itertools
import os
from collections import deque
from datetime import datetime
from pathlib import Path

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, ListView, Static
from textual.worker import Worker, WorkerState, get_current_worker

from qa.engine import Conversation, Engine
from qa.results import Turn
from qa.tui.autoupdate import IndexUpkeep
from qa.tui.export import conversation_markdown, default_export_dir, export_target, write_export
from qa.tui.messages import (AnswerReady, CorpusChanged, EngineReady, IndexProgressed, IndexStarted,
                             IndexSynced, IndexWaited, user_message)
from qa.tui.screens.dialogs import ConfirmDialog, ErrorDialog, ExportDialog
from qa.tui.screens.document import DocumentScreen
from qa.tui.widgets.citations import CitationItem, CitationsPanel
from qa.tui.widgets.question_input import QuestionInput
from qa.tui.widgets.status import StatusBar
from qa.tui.widgets.transcript import Transcript


class BuildCancelled(Exception):
    """Raised from the progress callback when the app quits mid-build (the old index stays)."""


def sync_summary(report) -> str:
    """The counts a user cares about (no timings, so the screen is the same on every run)."""
    return (f"{report.added} added, {report.updated} updated, {report.removed} removed · "
            f"{report.documents} documents, {report.chunks} chunks")


# With watching off (qa --no-watch), how often the open app looks for documents added, edited or
# deleted (a scan of file sizes and modification times; only files whose stamp changed are hashed).
CORPUS_CHECK_SECONDS = 5.0
# How often it looks for an index generation written by another process (`qa index` in another
# shell): one read of the index's CURRENT pointer.
INDEX_CHECK_SECONDS = 1.0
# The closest passages a declined answer offers in the sources panel (the transcript lists as many).
CLOSEST_SHOWN = 3


class ChatScreen(IndexUpkeep, Screen):
    BINDINGS = [
        Binding("ctrl+o", "open_citation", "Open source"),
        Binding("ctrl+n", "new_conversation", "New chat"),
        Binding("ctrl+r", "rebuild", "Rebuild index"),
        Binding("ctrl+s", "export", "Export"),
        Binding("escape", "focus_question", "Question box", show=False),
    ]

    def __init__(self, engine: Engine, export_dir: Path | None = None, watch: bool = True) -> None:
        super().__init__()
        self.init_upkeep(watch)
        self.engine = engine
        self.export_dir = export_dir
        self.conversation = Conversation(engine)
        self.earlier: list[list[Turn]] = []  # the turns of the conversations before this one
        self.ready = False          # the index and the model are loaded
        self.failed = False         # they could not be: nothing can be answered
        self.indexing = False
        self.building = ""          # what the status line says while the index is built
        self.switching = False      # looking for, or loading, a generation written elsewhere
        self.answering: int | None = None
        self.counts = (0, 0)
        self.changed: tuple[str, ...] = ()  # files changed since the build, as last told
        self.waiting: deque[tuple[int, str]] = deque()
        self._keys = itertools.count(1)
        self._workers: dict[Worker, int] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            yield Transcript(id="transcript")
            with Vertical(id="sources") as sources:
                sources.border_title = "Sources"
                yield Static(Text("Ask a question; the sources of the answer appear here."),
                             id="sources-hint")
                yield CitationsPanel(self.engine.document_details, id="citations")
        yield StatusBar(id="status-bar")
        # Not selected on focus: a letter typed elsewhere moves here and must not be replaced by
        # the next one (see on_key).
        yield QuestionInput(placeholder="Ask a question about the documents and press Enter",
                            id="question", select_on_focus=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(StatusBar).set_status("Loading the model… you can type a question meanwhile.", busy=True)
        self.query_one(Transcript).add_note(
            f"Ask about the documents in {self.engine.corpus} (index: {self.engine.index_dir}). "
            "Answers are sentences quoted from them; each [n] names its source, listed on the "
            "right. F1 lists the keys.")
        box = self.query_one(QuestionInput)
        box.focus()
        for key in self.app.take_early_keys():  # typed before this screen could take them
            if key.key != "backspace" and not key.is_printable:  # Enter
                box.post_message(Input.Submitted(box, box.value))
                box.value = ""
            elif key.key == "backspace":
                box.action_delete_left()
            elif key.character:
                box.insert_text_at_cursor(key.character)
        # Start the slow work once the first frame is on screen.
        self.call_after_refresh(self.prepare)
        self.start_watching()

    # -- workers (threads; they only post messages) ----------------------------------------

    @work(thread=True, exclusive=True, group="engine", exit_on_error=False)
    def prepare(self, rebuild: bool = False) -> None:
        """Build the index if it is missing (or ``rebuild``), note changed files, then load."""
        engine = self.engine
        if rebuild or not engine.index_exists() or engine.index_outdated():
            self._sync(startup=True, rebuild=rebuild)
        else:
            engine.snapshot  # an unusable index is the one thing to report, not its "changes"
            changed = engine.changed_files()
            if changed:
                self.post_message(CorpusChanged(changed))
        engine.load()
        stats = engine.stats()
        self.post_message(EngineReady(stats["documents"], stats["chunks"]))

    @work(thread=True, exclusive=True, group="index", exit_on_error=False)
    def rebuild_index(self) -> None:
        self._sync(startup=False)

    def _sync(self, startup: bool, rebuild: bool = False, auto: bool = False) -> None:
        warnings: list[str] = []
        worker = get_current_worker()

        def progress(p) -> None:
            # Quitting cancels the worker; stop at the next batch rather than hold the exit.
            if worker.is_cancelled:
                raise BuildCancelled()
            self.post_message(IndexProgressed(p))

        self.post_message(IndexStarted(startup, auto))
        try:
            report = self.engine.sync(
                rebuild=rebuild,
                progress=progress,
                # Each skipped file is told once, not on every update (qa.index.watcher).
                warn=self.warned.filter(lambda source, reason: warnings.append(
                    f"skipped {source}: {reason}" if source else reason)),
                on_wait=lambda: self.post_message(IndexWaited()),
            )
        except BaseException:
            self.warned.finished(complete=False)
            raise
        self.warned.finished()
        self.post_message(IndexSynced(report, startup, warnings, auto))

    @work(thread=True, group="answer", exit_on_error=False)
    def answer(self, conversation: Conversation, key: int, question: str) -> None:
        self.post_message(AnswerReady(key, conversation.ask(question)))

    # -- questions --------------------------------------------------------------------------

    @on(Input.Submitted, "#question")
    def ask(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question:
            return
        if question == "/in" or question.startswith("/in "):
            self.set_scope(question[3:].split())
            return
        box = self.query_one(QuestionInput)
        box.remember(question)
        box.value = ""
        key = next(self._keys)
        self.query_one(Transcript).add_exchange(question, key, self._pending_text())
        self.waiting.append((key, question))
        self._next_question()

    def set_scope(self, paths: list[str]) -> None:
        """``/in PATH...``: answer only from the documents there (folders, files or globs
        relative to the corpus folder, as `qa ask --in`); ``/in`` alone: from all of them."""
        if paths and not self.ready:
            self.notify("The index is not loaded yet; set the scope once it is.", markup=False)
            return
        try:
            scope = self.engine.scope(paths) if paths else None
            self.engine.scoped(scope)  # a scope holding no document is refused now
        except Exception as exc:  # a QAError naming the path
            self.notify(user_message(exc), title="Cannot set the scope", severity="error",
                        markup=False)
            return
        self.query_one(QuestionInput).value = ""
        self.conversation.scope = scope
        self.notify(f"Answering from {scope} only; /in alone answers from every document."
                    if scope else "Answering from every document.", markup=False)
        self._set_idle_status()

    def _pending_text(self) -> str:
        if self.failed:
            return "Cannot answer: the index could not be loaded."
        if self.indexing and not self.ready:
            return "Waiting for the index to be built; this question will be answered then…"
        if not self.ready:
            return "Waiting for the model to load; this question will be answered then…"
        return "Waiting for the previous answer…"

    def _next_question(self) -> None:
        """Answer the oldest waiting question if the engine is free. An update under way does not
        hold it up: the question is answered from the generation loaded (Engine.pinned)."""
        if not self.ready or self.switching or self.answering is not None or not self.waiting:
            return
        key, question = self.waiting.popleft()
        entry = self.query_one(Transcript).entry(key)
        if entry is not None:
            entry.set_pending("Searching the documents…")
        self.answering = key
        self.query_one(StatusBar).set_status("Answering…", busy=True)
        self._workers[self.answer(self.conversation, key, question)] = key

    def on_answer_ready(self, message: AnswerReady) -> None:
        self.answering = None
        transcript = self.query_one(Transcript)
        entry = transcript.entry(message.key)
        if entry is not None:
            entry.set_answer(message.answer)
            transcript.select(entry)
            transcript.scroll_end(animate=False)
        self._set_idle_status()
        self._next_question()

    @on(Transcript.AnswerSelected)
    async def show_sources(self, event: Transcript.AnswerSelected) -> None:
        answer = event.entry.answer
        citations = answer.citations if answer else ()
        closest = () if citations or answer is None else \
            tuple(p.as_citation(n) for n, p in enumerate(answer.passages[:CLOSEST_SHOWN], 1))
        hint = self.query_one("#sources-hint", Static)
        hint.display = not citations
        if answer is not None and not citations:
            hint.update(Text("Not in the documents. The closest passages (enter opens):" if closest
                             else "Not in the documents: no sources for this answer."))
        await self.query_one(CitationsPanel).show(citations or closest, closest=bool(closest))

    @on(ListView.Selected, "#citations")
    def open_selected(self, event: ListView.Selected) -> None:
        if isinstance(event.item, CitationItem):
            self.open_document(event.item.citation, self.query_one(CitationsPanel).closest)

    def open_document(self, citation, closest: bool = False) -> None:
        try:
            text = self.engine.document_text(citation.source)
            current = self.engine.current_citation(citation)
        except Exception as exc:  # an index rebuilt without that file, for one
            self.notify(user_message(exc), title="Cannot open the source", severity="error",
                        markup=False)
            return
        # The index may have been rebuilt since the answer: never highlight whatever text now
        # sits at the old offsets.
        if current is None:
            self.notify(f"{citation.source} changed since this answer and no longer holds the "
                        "cited text; ask again to cite the current version.",
                        title="Cannot open the source", severity="error", markup=False)
            return
        if current is not citation:
            self.notify(f"{citation.source} changed since this answer; the cited text is now at "
                        f"line {current.line}.", markup=False)
        self.app.push_screen(DocumentScreen(current, text, closest))

    # -- the engine's state -----------------------------------------------------------------

    def on_engine_ready(self, message: EngineReady) -> None:
        first = not self.ready
        self.ready = True
        self.counts = (message.documents, message.chunks)
        self._set_idle_status()
        self._next_question()
        if first:
            # Documents added or edited while the app is open are noticed too, not only at start
            # (by the watcher, or with watching off by looking); so is an index another process wrote.
            self.set_interval(CORPUS_CHECK_SECONDS, self._check_corpus)
            self.set_interval(INDEX_CHECK_SECONDS, self._check_index)
        self.update_if_wanted()

    def _set_idle_status(self) -> None:
        if not self.ready or self.answering is not None:
            return
        if self.indexing:  # answering while an update runs: say so again once the answer is in
            self.query_one(StatusBar).set_status(self.building, busy=True)
            return
        documents, chunks = self.counts
        changed = f" · {len(self.changed)} file(s) changed: ctrl+r updates the index" \
            if self.changed else ""
        scope = f" · in {self.conversation.scope}" if self.conversation.scope else ""
        self.query_one(StatusBar).set_status(
            f"Ready · {documents} documents, {chunks} passages indexed{scope}{changed}")

    def on_index_started(self, message: IndexStarted) -> None:
        self.indexing = True
        for key, _ in self.waiting if not self.ready else ():  # they wait for the build now
            entry = self.query_one(Transcript).entry(key)
            if entry is not None:
                entry.set_pending(self._pending_text())
        self.building = ("Building the index (none yet)…" if message.startup else
                         "Documents changed: updating the index…" if message.auto else
                         "Rebuilding the index…")
        if self.answering is None:
            self.query_one(StatusBar).set_status(self.building, busy=True)
        self.query_one(StatusBar).show_progress(None)

    def on_index_progressed(self, message: IndexProgressed) -> None:
        self.query_one(StatusBar).show_progress(message.progress)

    def on_index_waited(self, message: IndexWaited) -> None:
        self.building = "Waiting for another qa process to finish indexing…"
        self.query_one(StatusBar).set_status(self.building, busy=True)

    def on_index_synced(self, message: IndexSynced) -> None:
        self.indexing = self.auto_updating = False
        self.changed = ()
        status = self.query_one(StatusBar)
        status.hide_progress()
        summary = sync_summary(message.report)
        self.counts = (message.report.documents, message.report.chunks)
        if message.startup:
            status.set_status(f"Index built: {summary}. Loading the model…", busy=True)
        elif message.auto and not message.report.changed:
            self._set_idle_status()  # another process had indexed the change (or it was undone)
        elif message.auto:  # said briefly: it happens whenever documents are saved
            if self.answering is None:
                status.set_status(f"Index updated: {summary} · Ready")
            self.notify("; ".join(message.report.changes(limit=3)) or summary,
                        title="Index updated", markup=False)
        else:
            changes = "".join(f"\n{line}" for line in message.report.changes())
            self.query_one(Transcript).add_note(f"Index rebuilt: {summary}.{changes}")
            status.set_status(f"Index rebuilt: {summary} · Ready")
        if not message.auto:
            self.notify(summary, title="Index built" if message.startup else "Index rebuilt",
                        markup=False)
        for warning in message.warnings[:5]:
            self.notify(warning, severity="warning", markup=False)
        self._next_question()
        self.update_if_wanted()

    # -- failures: every worker error lands here --------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR or event.worker.is_cancelled:
            return
        if event.worker.group == "switch":
            self.switching = False  # unexpected: the worker reports failures as IndexChecked
            self._next_question()
            return
        if event.worker.group == "watch":
            return  # a failed look at the folder changes nothing; the next one may succeed
        worker = event.worker
        error = user_message(worker.error)
        if worker.group == "answer":
            key = self._workers.pop(worker, None)
            self.answering = None
            entry = self.query_one(Transcript).entry(key) if key is not None else None
            if entry is not None:
                entry.set_failed(f"Could not answer: {error}")
            self.notify(error, title="Could not answer", severity="error", markup=False)
            self._set_idle_status()
            self._next_question()
        elif worker.group == "index":
            what = "Index update failed" if self.auto_updating else "Rebuild failed"
            self.indexing = self.auto_updating = False
            self.query_one(StatusBar).hide_progress()
            self.query_one(StatusBar).set_status(f"{what}: {error}")
            self.notify(f"{error}. Answers come from the index loaded before.", title=what,
                        severity="error", markup=False)
            self._next_question()
        else:
            self.failed = True
            self.indexing = False
            self.query_one(StatusBar).hide_progress()
            self.query_one(StatusBar).set_status(f"Cannot answer: {error}")
            for key, _ in self.waiting:
                entry = self.query_one(Transcript).entry(key)
                if entry is not None:
                    entry.set_failed(f"Cannot answer: {error}")
            self.waiting.clear()
            hint = ("Press ctrl+r to rebuild it for this folder (you are asked first: it holds "
                    "another folder's documents), or ctrl+q to quit."
                    if self.engine.foreign_index_folder() else
                    "Press ctrl+r to rebuild the index from the documents, or ctrl+q to quit.")
            self.app.push_screen(ErrorDialog("The index could not be loaded", error, hint))

    # -- actions ----------------------------------------------------------------------------

    def action_focus_question(self) -> None:
        self.query_one("#question").focus()

    def on_key(self, event: events.Key) -> None:
        """A letter typed while the transcript or the sources have the focus (after Escape from
        the document viewer, say) starts a question: it goes to the question box, not nowhere."""
        box = self.query_one(QuestionInput)
        if not event.is_printable or event.character is None or self.focused is box \
                or isinstance(self.focused, Input):
            return
        event.stop()
        event.prevent_default()
        box.focus()
        box.insert_text_at_cursor(event.character)

    def action_open_citation(self) -> None:
        panel = self.query_one(CitationsPanel)
        if panel.current is None:
            message = ("This answer has no source or close passage to open."
                       if self.all_turns() else "No source to open yet: ask a question first.")
            self.notify(message, severity="warning")
            return
        self.open_document(panel.current, panel.closest)

    def action_new_conversation(self) -> None:
        """Follow-ups stop using the questions so far; those stay on screen and in the export."""
        if self.conversation.turns:
            self.earlier.append(list(self.conversation.turns))
        self.conversation = Conversation(self.engine, scope=self.conversation.scope)
        # Questions still waiting (typed while the model loads) stay on screen, so they are still
        # answered, in the new conversation.
        self.query_one(Transcript).add_note(
            "New conversation: follow-up questions no longer use the questions above.")
        self.query_one("#question").focus()

    def action_rebuild(self) -> None:
        if self.indexing:
            self.notify("The index is already being built.", severity="warning")
            return
        if self.failed:
            built_for = self.engine.foreign_index_folder()
            if built_for is None:
                self._rebuild_unusable(True)
                return
            # Another folder's index: rebuilding it here takes it away from that folder.
            corpus = os.path.abspath(self.engine.corpus)
            self.app.push_screen(ConfirmDialog(
                "Rebuild another folder's index?",
                f"The index in {self.engine.index_dir} holds the documents of {built_for}. "
                f"Rebuilding it for {corpus} deletes it: {built_for} would have to be indexed "
                "again.\n\nTo keep both, quit and open qa without --index (or QA_INDEX): each "
                "folder then gets an index of its own.",
                f"Rebuild it for {Path(corpus).name or corpus}", "Keep it"),
                self._rebuild_unusable)
            return
        self.rebuild_index()

    def _rebuild_unusable(self, confirmed: bool | None) -> None:
        """The index is unusable: build it anew, then load it."""
        if not confirmed or not self.failed:
            return
        self.failed = False
        self.ready = False
        self.prepare(rebuild=True)

    def all_turns(self) -> list[Turn]:
        """Every question asked since the app started, earlier conversations first."""
        return [turn for turns in self.earlier for turn in turns] + list(self.conversation.turns)

    def action_export(self) -> None:
        if not self.all_turns():
            self.notify("Nothing to export yet: ask a question first.", severity="warning")
            return
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        default = self._export_folder() / f"qa-conversation-{stamp}.md"
        self.app.push_screen(ExportDialog(str(default), str(self._export_folder())), self.export_to)

    def _export_folder(self) -> Path:
        return self.export_dir or default_export_dir()

    def export_to(self, path: str | None) -> None:
        if not path:
            return
        # A missing folder (qa's data folder on first use, or one typed) is made.
        target = export_target(path, self._export_folder(), datetime.now().strftime("%Y%m%d-%H%M%S"))
        if target.exists():
            self.notify(f"{target} already exists; it was left as it is. Export again under "
                        "another name.", title="Not exported", severity="warning", markup=False)
            return
        try:
            starts, count = [], 0
            for turns in self.earlier:
                count += len(turns)
                starts.append(count + 1)
            markdown = conversation_markdown(self.all_turns(), str(self.engine.corpus),
                                             datetime.now().strftime("%Y-%m-%d %H:%M"),
                                             self.engine.current_citation, new_conversation_at=starts)
            write_export(target, markdown)  # never over an existing file
        except OSError as exc:
            self.notify(f"Could not write {target}: {exc.strerror or exc}", title="Export failed",
                        severity="error", markup=False)
            return
        target = Path(os.path.abspath(target))
        self.notify(f"Saved {len(self.all_turns())} question(s) to {target}",
                    title="Exported", markup=False)
        self.query_one(Transcript).add_note(
            f"Exported {len(self.all_turns())} question(s) with their sources to {target}")
