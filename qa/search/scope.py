"""Asking within part of the collection: which chunks a question may be answered from.

A scope names folders, files or globs relative to the corpus folder (``reports/2024``,
``notes/*.md``, ``**/minutes-*.docx``) and an earliest date. It becomes the set of chunk rows
retrieval ranks (qa.answer.ask.retrieve filters before ranking: the dense search gets an id
selector, BM25 scores outside the scope are zeroed), computed once per scope and generation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from qa.errors import QAError
from qa.results import locator_at

_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Scope:
    """Documents under any of ``paths`` (all when empty), dated ``since`` (YYYY-MM-DD) or later.

    A document's date is the one its file states (an e-mail's Date, a book's publication date,
    an Office file's last change), else its file's modification time; each message of a
    mailbox has its own."""

    paths: tuple[str, ...] = ()
    since: str | None = None

    def __post_init__(self) -> None:
        if self.since is not None:
            from datetime import date

            try:
                date.fromisoformat(self.since)
            except ValueError:
                raise QAError(f"--since {self.since}: expected a date as YYYY-MM-DD") from None
            if len(self.since) != 10:
                raise QAError(f"--since {self.since}: expected a date as YYYY-MM-DD")

    def __bool__(self) -> bool:
        return bool(self.paths or self.since)

    def __str__(self) -> str:
        parts = [", ".join(self.paths)] if self.paths else []
        if self.since:
            parts.append(f"since {self.since}")
        return "; ".join(parts) or "all documents"


def normalise(path: str) -> str:
    """A scope path as sources are written: forward slashes, no ``./``, no trailing slash."""
    path = path.replace("\\", "/").strip()
    while path.startswith("./"):
        path = path[2:]
    path = re.sub(r"/{2,}", "/", path).rstrip("/")
    return "" if path == "." else path


def glob_pattern(glob: str) -> re.Pattern:
    """A compiled glob over sources: ``*`` and ``?`` stay within one folder, ``**`` crosses
    folders, ``[abc]`` is a class."""
    out, i = [], 0
    while i < len(glob):
        ch = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif ch == "*":
            out.append("[^/]*")
            i += 1
        elif ch == "?":
            out.append("[^/]")
            i += 1
        elif ch == "[" and "]" in glob[i + 2:]:
            end = glob.index("]", i + 2)
            body = glob[i + 1:end]
            out.append("[" + ("^" + re.escape(body[1:]) if body[:1] == "!" else re.escape(body)) + "]")
            i = end + 1
        else:
            out.append(re.escape(ch))
            i += 1
    return re.compile("".join(out))


def in_scope_path(source: str, path: str) -> bool:
    """Whether the document ``source`` is ``path``, lies under the folder ``path``, or (a glob)
    is matched by it or lies under a folder it matches."""
    if not path:
        return True
    if not _GLOB.search(path):
        return source == path or source.startswith(path + "/")
    pattern = glob_pattern(path)
    parts = source.split("/")
    return any(pattern.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1))


@dataclass(frozen=True)
class ScopedRows:
    """The chunks a scope leaves: their rows (sorted) and their FAISS ids."""

    rows: np.ndarray
    ids: np.ndarray
    members: frozenset[int]


def scope_rows(snapshot, scope: Scope) -> ScopedRows | None:
    """The chunks of ``snapshot`` in ``scope``, or None when the scope is the whole index.
    Raises QAError, naming what matched nothing, when no chunk is in scope."""
    if not scope:
        return None
    key = ("scope", scope)
    cached = snapshot.derived.get(key)
    if cached is not None:
        return cached
    paths = [normalise(p) for p in scope.paths]
    for path, given in zip(paths, scope.paths):
        if not any(in_scope_path(source, path) for source in snapshot.documents):
            raise QAError(f"--in {given}: no document of the index is there (paths are relative "
                          "to the corpus folder)")
    sources = {s for s in snapshot.documents if not paths or any(in_scope_path(s, p) for p in paths)}
    rows = [row for row, chunk in enumerate(snapshot.chunks) if chunk.source in sources
            and (not scope.since or _dated(snapshot.documents[chunk.source], chunk.start) >= scope.since)]
    if not rows:
        where = f" in {', '.join(scope.paths)}" if scope.paths else ""
        raise QAError(f"no document{where} is dated {scope.since} or later")
    array = np.asarray(rows, dtype=np.int64)
    result = snapshot.derived[key] = ScopedRows(array, chunk_ids(snapshot, array), frozenset(rows))
    return result


def _dated(document, offset: int) -> str:
    """The day (YYYY-MM-DD) of the part of ``document`` at ``offset``: a message's own date in a
    mailbox, else the document's."""
    locator = locator_at(document.locators, offset)
    if locator is not None and locator.date:
        return locator.date[:10]
    return document.day


def chunk_ids(snapshot, rows: np.ndarray) -> np.ndarray:
    """The FAISS ids of chunk ``rows``."""
    return np.fromiter((snapshot.chunks[int(r)].id for r in rows), dtype=np.int64, count=len(rows))
