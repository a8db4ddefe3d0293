"""How the chat screen keeps its index current while it is open.

With watching on (the default; ``qa --no-watch`` turns it off) a thread follows the corpus
folder's file events (qa.index.watcher) and, once a burst of saves is over, the screen updates
the index in the background: questions go on being answered from the loaded generation, and the
new one is switched to when it is written. With watching off, the folder is looked at every few
seconds and the status line offers ctrl+r. Either way, a generation written by another process
(`qa index` in another shell) is taken up within a second.
"""

from __future__ import annotations

import threading
from pathlib import Path

from textual import work
from qa.index.watcher import NewWarnings
from qa.tui.messages import (CorpusChanged, CorpusTouched, IndexChecked, IndexCurrent, WatchFailed,
                             user_message)

# A burst of saves is one update: the folder must be quiet this long after a change...
QUIET_MS = 1000
# ...or the burst must have gone on this long (a folder that never stops changing is still indexed).
LONGEST_MS = 10_000


class CorpusWatcher:
    """Posts CorpusTouched to ``target`` after each burst of changes under ``corpus``.

    A plain daemon thread rather than a Textual worker: it runs as long as the screen, and a
    worker that never completes would keep ``App.workers.wait_for_complete`` waiting.
    """

    def __init__(self, target, corpus: Path, index_dir: Path) -> None:
        self.target = target
        self.corpus = corpus
        self.index_dir = index_dir
        self.stopped = threading.Event()
        self.ready = threading.Event()  # the folder is watched: no change is missed from now on
        self.thread = threading.Thread(target=self._run, name="qa-corpus-watcher", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()

    def _run(self) -> None:
        from qa.index.watcher import corpus_changes

        try:
            for paths in corpus_changes(self.corpus, self.index_dir, self.stopped,
                                        step_ms=QUIET_MS, debounce_ms=LONGEST_MS,
                                        ready=self.ready):
                self.target.post_message(CorpusTouched(paths))
        except Exception as exc:  # noqa: BLE001 - any failure means: not watching
            if not self.stopped.is_set():
                self.target.post_message(WatchFailed(user_message(exc)))


class IndexUpkeep:
    """The chat screen's side of keeping the index current (a mixin of ChatScreen, which holds
    ``engine``, ``ready``, ``failed``, ``indexing``, ``switching``, ``answering``, ``changed`` and
    ``counts``, and defines ``_sync``, ``_set_idle_status`` and ``_next_question``)."""

    def init_upkeep(self, watch: bool) -> None:
        self.watch = watch          # update the index by itself when documents change
        self.update_wanted = False  # documents changed since the last update began
        self.auto_updating = False  # the build under way was started by a change, not ctrl+r
        self.warned = NewWarnings()  # an automatic update tells each skipped file once
        self._watcher: CorpusWatcher | None = None

    def start_watching(self) -> None:
        """Follow the corpus folder's file events (when watching is on and the folder is there)."""
        if self.watch and self._watcher is None and Path(self.engine.corpus).is_dir():
            self._watcher = CorpusWatcher(self, self.engine.corpus, self.engine.index_dir)
            self._watcher.start()

    def on_unmount(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()

    # -- automatic updates -----------------------------------------------------------------

    def on_corpus_touched(self, message: CorpusTouched) -> None:
        self.update_wanted = True
        self.update_if_wanted()

    def on_watch_failed(self, message: WatchFailed) -> None:
        self.watch = False
        self._watcher = None
        self.notify(f"The documents folder cannot be watched ({message.error}); the app looks "
                    "at it every few seconds instead, and ctrl+r updates the index.",
                    title="Not watching the folder", severity="warning", timeout=12, markup=False)

    def update_if_wanted(self) -> None:
        """Start an automatic update when documents changed and nothing else holds the index."""
        if not (self.watch and self.update_wanted and self.ready) or self.failed \
                or self.indexing or self.switching:
            return
        self.update_wanted = False
        self.indexing = self.auto_updating = True  # at once: ctrl+r now waits for this one
        self.auto_update()

    @work(thread=True, exclusive=True, group="index", exit_on_error=False)
    def auto_update(self) -> None:
        engine = self.engine
        # Only the app's own index: one built for another folder is never re-pointed by itself.
        if engine.built_for_another_folder() or not engine.changed_files():
            self.post_message(IndexCurrent())
            return
        self._sync(startup=False, auto=True)

    def on_index_current(self, message: IndexCurrent) -> None:
        self.indexing = self.auto_updating = False
        self._set_idle_status()
        self.update_if_wanted()

    # -- looking every few seconds (watching off), and for other processes' generations ------

    def _check_corpus(self) -> None:
        if self.ready and not self.indexing and not self.failed and not self.watch:
            self.check_corpus()

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def check_corpus(self) -> None:
        self.post_message(CorpusChanged(self.engine.changed_files()))

    def on_corpus_changed(self, message: CorpusChanged) -> None:
        files = tuple(message.files)
        if files and self.watch:  # changed before the app started (or between two looks)
            self.update_wanted = True
            self.update_if_wanted()
            return
        if files == self.changed or self.indexing:
            return  # told already, or the rebuild under way takes them in
        self.changed = files
        self._set_idle_status()
        if not files:
            return
        names = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        self.notify(f"{len(files)} file(s) changed since the index was built ({names}). "
                    "Press ctrl+r to rebuild; answers come from the existing index until then.",
                    title="The documents changed", severity="warning", timeout=12, markup=False)

    def _check_index(self) -> None:
        # Never while a question is answered: an answer reads the index more than once.
        if self.ready and not self.indexing and not self.failed and not self.switching \
                and self.answering is None:
            self.switching = True
            self.check_index()

    @work(thread=True, exclusive=True, group="switch", exit_on_error=False)
    def check_index(self) -> None:
        try:
            snapshot = self.engine.refresh()
        except Exception as exc:
            self.post_message(IndexChecked(error=user_message(exc)))
            return
        if snapshot is None:
            self.post_message(IndexChecked())
            return
        try:
            changed = self.engine.changed_files()
        except Exception:
            changed = list(self.changed)
        self.post_message(IndexChecked(snapshot.generation, len(snapshot.documents),
                                       len(snapshot.chunks), changed))

    def on_index_checked(self, message: IndexChecked) -> None:
        from qa.tui.widgets.transcript import Transcript

        self.switching = False
        if message.error:
            self.notify(f"{message.error}. Answers still come from the index loaded before.",
                        title="A new index could not be used", severity="warning", timeout=12,
                        markup=False)
        elif message.generation is not None and not self.indexing:
            self.counts = (message.documents, message.chunks)
            self.changed = () if self.watch else tuple(message.changed)
            self.update_wanted = self.update_wanted or bool(self.watch and message.changed)
            what = (f"The index was updated outside the app (generation {message.generation}): "
                    f"{message.documents} documents, {message.chunks} passages")
            self.query_one(Transcript).add_note(f"{what}. Answers now come from it.")
            self.notify(f"{what}.", title="Index updated", markup=False)
            self._set_idle_status()
        self._next_question()
        self.update_if_wanted()
