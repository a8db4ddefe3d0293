"""Errors a user can cause. The CLI prints their message on one line and exits non-zero."""


class QAError(Exception):
    """A problem the user can act on: missing corpus, stale or damaged index, and so on."""


class IndexMissing(QAError):
    """There is no built index in the index folder."""


class IndexIncompatible(QAError):
    """The index was built with another model, chunking or schema."""


class IndexDamaged(QAError):
    """A file of the index is missing, truncated or altered."""


class IndexBusy(QAError):
    """Another process holds the index lock."""


class IndexReadOnly(QAError):
    """The index folder cannot be written (permissions, a read-only disk)."""


class DiskFull(QAError):
    """The disk holding the index has no room for a new generation; ``needed`` is about how many
    bytes it takes (None when unknown)."""

    def __init__(self, message: str, needed: int | None = None):
        super().__init__(message)
        self.needed = needed


class NoDocument(QAError):
    """A source that is not a document of the index."""


class BadSpan(QAError):
    """A span outside a document's text, or reversed."""


class SkipFile(Exception):
    """This file cannot be indexed; the message says why, in a few words. The build goes on
    without it, with one warning naming it (not a QAError: nothing stops)."""
