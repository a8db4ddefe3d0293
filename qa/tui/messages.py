"""What the workers report back to the UI thread: small, past-tense messages."""

from __future__ import annotations

from textual.message import Message

from qa.results import Answer
from qa.index.reports import IndexProgress, SyncReport


class EngineReady(Message):
    """The index and the model are loaded; questions can be answered."""

    def __init__(self, documents: int, chunks: int) -> None:
        super().__init__()
        self.documents = documents
        self.chunks = chunks


class CorpusChanged(Message):
    """Files were added, edited or deleted since the index was built."""

    def __init__(self, files: list[str]) -> None:
        super().__init__()
        self.files = files


class CorpusTouched(Message):
    """Files under the corpus folder were added, edited, moved or deleted (a finished burst)."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__()
        self.paths = paths


class WatchFailed(Message):
    """The folder cannot be watched (no file events left, say): the app falls back to looking."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class IndexCurrent(Message):
    """An automatic update found nothing to do (a file touched but not changed, say)."""


class IndexStarted(Message):
    """An index build began (``startup`` when the index was missing, ``auto`` when documents
    changing started it)."""

    def __init__(self, startup: bool, auto: bool = False) -> None:
        super().__init__()
        self.startup = startup
        self.auto = auto


class IndexProgressed(Message):
    def __init__(self, progress: IndexProgress) -> None:
        super().__init__()
        self.progress = progress


class IndexWaited(Message):
    """Another process holds the index lock; the build waits for it."""


class IndexSynced(Message):
    def __init__(self, report: SyncReport, startup: bool, warnings: list[str],
                 auto: bool = False) -> None:
        super().__init__()
        self.report = report
        self.auto = auto
        self.startup = startup
        self.warnings = warnings


class IndexChecked(Message):
    """The live index was compared with the loaded one. ``generation`` is set when a generation
    written by another process was taken up; ``error`` when one was written but cannot be used."""

    def __init__(self, generation: int | None = None, documents: int = 0, chunks: int = 0,
                 changed: list[str] | None = None, error: str | None = None) -> None:
        super().__init__()
        self.generation = generation
        self.documents = documents
        self.chunks = chunks
        self.changed = changed or []
        self.error = error


class AnswerReady(Message):
    """The answer to the question with this ``key`` (the transcript entry waiting for it)."""

    def __init__(self, key: int, answer: Answer) -> None:
        super().__init__()
        self.key = key
        self.answer = answer


def user_message(error: BaseException) -> str:
    """One sentence for the user: a QAError already is one; anything else is named briefly."""
    from qa.errors import QAError

    if isinstance(error, QAError):
        return str(error)
    detail = " ".join(str(error).split()) or "no details"
    return f"Unexpected {type(error).__name__}: {detail}"
