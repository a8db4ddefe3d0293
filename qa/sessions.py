"""What front ends that serve many clients at once (HTTP, MCP) share, over one Engine:
conversations by id, which expire and are capped in number, and one index update at a time whose
progress any number of listeners can follow. Imports no web framework."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence

from qa.engine import Conversation, Engine
from qa.errors import QAError
from qa.results import Answer

# A question (or query) longer than this is refused: answering reads only its first 2,000
# characters (qa.answer.ask.MAX_QUERY_CHARS), and a client should know.
MAX_QUESTION_CHARS = 2000
CONVERSATION_TTL = 30 * 60  # seconds after its last question
MAX_CONVERSATIONS = 1000


class ConversationExpired(QAError):
    """A conversation id that is unknown, or was forgotten (expired, or pushed out by newer ones)."""


class Conversations:
    """Conversations by id. Each is forgotten ``ttl`` seconds after its last question, and at
    most ``cap`` are kept: a new one pushes out the one left alone longest. Questions of one
    conversation are answered one at a time, in the order they came; different conversations
    are answered side by side."""

    def __init__(self, engine: Engine, ttl: float = CONVERSATION_TTL, cap: int = MAX_CONVERSATIONS,
                 clock: Callable[[], float] = time.monotonic):
        self.engine = engine
        self.ttl = ttl
        self.cap = cap
        self.clock = clock
        self._lock = threading.Lock()
        # id -> (conversation, its lock, when it was last used); least recently used first.
        self._kept: OrderedDict[str, tuple[Conversation, threading.Lock, float]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            self._expire(self.clock())
            return len(self._kept)

    def ask(self, question: str, conversation: str | None = None) -> tuple[str, Answer]:
        """Answer ``question`` in ``conversation`` (an id this returned before), or in a new one
        when it is None; returns the conversation's id and the answer."""
        ident, kept, lock = self._take(conversation)
        with lock:
            answer = kept.ask(question)
        with self._lock:
            if ident in self._kept:
                self._kept[ident] = (kept, lock, self.clock())
                self._kept.move_to_end(ident)
        return ident, answer

    def start(self, questions: Sequence[str] = ()) -> str:
        """A new conversation's id; with ``questions``, it has asked them already (the last
        few, as many as follow-ups look back on: a client that keeps the conversation itself, as
        OpenAI's chat API does, sends the earlier questions again, and follow-ups need their
        answers)."""
        from qa.answer.followup import HISTORY_TURNS

        ident, kept, lock = self._take(None)
        with lock:
            for question in list(questions)[-HISTORY_TURNS:]:
                kept.ask(question)
        return ident

    def _take(self, ident: str | None) -> tuple[str, Conversation, threading.Lock]:
        now = self.clock()
        with self._lock:
            self._expire(now)
            if ident is not None:
                if ident not in self._kept:
                    raise ConversationExpired(
                        f"conversation {ident!r} is unknown or has expired (after "
                        f"{self.ttl / 60:g} minutes without a question, or as one of more than "
                        f"{self.cap}); leave it out to start a new one")
                kept, lock, _ = self._kept[ident]
                self._kept[ident] = (kept, lock, now)
                self._kept.move_to_end(ident)
                return ident, kept, lock
            while len(self._kept) >= self.cap:
                self._kept.popitem(last=False)
            ident = secrets.token_urlsafe(12)
            kept, lock = Conversation(self.engine, record=False), threading.Lock()
            self._kept[ident] = (kept, lock, now)
            return ident, kept, lock

    def _expire(self, now: float) -> None:
        while self._kept:
            ident, (_, _, used) = next(iter(self._kept.items()))
            if now - used < self.ttl:
                break
            del self._kept[ident]


class UpdateRunning(QAError):
    """An index update was asked for while one is running."""


MAX_EVENTS = 2000


class IndexUpdates:
    """One index update at a time, run in a thread while questions go on being answered from the
    previous generation. Its progress is a list of events, each a small dict with an ``event``
    key: "started", "waiting" (another process is building), "progress" (phase, done, total,
    unit; consecutive ones of a phase replace each other), "warning" (source, reason), then
    "done" (the report, as `qa index --json` prints it) or "error" (message)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._changed = threading.Condition()
        self._events: list[tuple[int, dict]] = []
        self._seq = 0
        self._running = False
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        with self._changed:
            return self._running

    def start(self, rebuild: bool = False) -> None:
        """Start an update (``rebuild``: from scratch) and return at once; raises UpdateRunning
        while one runs."""
        with self._changed:
            if self._running:
                raise UpdateRunning("an index update is already running; follow it at "
                                    "GET /index/events, or ask again when it is done")
            self._running = True
            self._events = []
            self._post({"event": "started", "rebuild": rebuild})
        self._thread = threading.Thread(target=self._run, args=(rebuild,), name="qa-index-update",
                                        daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running update (if any) to end; False on a timeout."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def events(self, timeout: float | None = None, stop: Callable[[], bool] | None = None
               ) -> Iterator[dict | None]:
        """The events of the current (or last) update, from its start, as they come; ends
        after "done" or "error". Yields None when ``timeout`` seconds pass without one (a
        listener can then send a keep-alive, or return if ``stop()`` says so). With no update
        ever started, yields one "idle" event."""
        seen = 0
        while True:
            # Never yield with the lock held: the listener may stop (or be collected) in
            # another thread.
            with self._changed:
                fresh = [event for seq, event in self._events if seq > seen]
                idle = not self._running and not self._events
                over = not self._running and seen >= self._seq
                if not fresh and not idle and not over:
                    self._changed.wait(timeout)
                    fresh = [event for seq, event in self._events if seq > seen]
                seen = self._seq
            if idle:
                yield {"event": "idle"}
                return
            if not fresh:
                if over or (stop is not None and stop()):
                    return
                yield None
                continue
            for event in fresh:
                yield event
                if event["event"] in ("done", "error"):
                    return

    def _post(self, event: dict) -> None:
        """Record ``event`` (with the condition held) and wake the listeners."""
        self._seq += 1
        last = self._events[-1][1] if self._events else None
        if event["event"] == "progress" and last is not None and last["event"] == "progress" \
                and last["phase"] == event["phase"]:
            self._events[-1] = (self._seq, event)
        else:
            if len(self._events) >= MAX_EVENTS:  # keep "started" and the newest
                del self._events[1:len(self._events) // 2]
            self._events.append((self._seq, event))
        self._changed.notify_all()

    def post(self, event: dict) -> None:
        with self._changed:
            self._post(event)

    def _run(self, rebuild: bool) -> None:
        def progress(p) -> None:
            self.post({"event": "progress", "phase": p.phase, "done": p.done, "total": p.total,
                       "unit": p.unit})

        def warn(source: str, reason: str) -> None:
            self.post({"event": "warning", "source": source, "reason": reason})

        def waiting() -> None:
            self.post({"event": "waiting", "message": "another qa index is running; waiting for "
                                                      "it to finish"})

        try:
            report = self.engine.sync(rebuild=rebuild, progress=progress, warn=warn, on_wait=waiting)
            final = {"event": "done", **report.to_json()}
        except QAError as exc:
            final = {"event": "error", "message": str(exc)}
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            final = {"event": "error", "message": f"{exc.strerror or exc}{where}"}
        except Exception as exc:  # never a traceback to a listener; the server logs it
            final = {"event": "error", "message": f"the update failed ({type(exc).__name__})"}
            import logging

            logging.getLogger("qa").exception("index update failed")
        with self._changed:
            self._running = False
            self._post(final)
