"""What every route of the API shares: the engine and its sessions, running engine calls in
worker threads, reading a request's JSON, and turning the engine's errors into HTTP ones."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import anyio
from starlette.exceptions import HTTPException
from starlette.requests import Request

from qa.engine import Engine
from qa.errors import BadSpan, IndexMissing, NoDocument, QAError
from qa.sessions import (
    MAX_QUESTION_CHARS,
    ConversationExpired,
    Conversations,
    IndexUpdates,
    UpdateRunning,
)


class BadRequest(HTTPException):
    """A request the API refuses, with the status and the one-line message to send."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(status, message)


class Api:
    """The engine and the shared state the routes use."""

    def __init__(self, engine: Engine, conversations: Conversations | None = None,
                 updates: IndexUpdates | None = None, workers: int | None = None):
        self.engine = engine
        self.conversations = conversations or Conversations(engine)
        self.updates = updates or IndexUpdates(engine)
        # Questions are CPU work: as many at once as there are cores, the rest wait their turn.
        self.limiter = anyio.CapacityLimiter(workers or os.cpu_count() or 2)

    async def run(self, function: Callable, *args):
        """``function(*args)`` in a worker thread."""
        return await anyio.to_thread.run_sync(function, *args, limiter=self.limiter)


def user_error(exc: QAError) -> BadRequest:
    """An error the request or the index caused, as an HTTP error with its one-line message."""
    if isinstance(exc, ConversationExpired):
        return BadRequest(str(exc), 404)
    if isinstance(exc, UpdateRunning):
        return BadRequest(str(exc), 409)
    if isinstance(exc, IndexMissing):
        return BadRequest(str(exc), 503)
    if isinstance(exc, NoDocument):
        return BadRequest(str(exc), 404)
    return BadRequest(str(exc), 422 if isinstance(exc, BadSpan) else 500)


async def call(api: Api, function: Callable, *args):
    """``function(*args)`` in a worker thread; the engine's errors become HTTP errors."""
    try:
        return await api.run(function, *args)
    except QAError as exc:
        raise user_error(exc) from None


# -- reading requests ------------------------------------------------------------------------


async def json_body(request: Request) -> dict:
    """The request's JSON object; a request with another content type or no object is refused
    (which also keeps a web page from posting to the API as a form)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise BadRequest("send a JSON body with the header 'Content-Type: application/json'", 415)
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def text_field(body: dict, name: str, limit: int = MAX_QUESTION_CHARS, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"'{name}' must be a non-empty string")
    if len(value) > limit:
        raise BadRequest(f"'{name}' is {len(value):,} characters long; at most {limit:,} are read",
                         413)
    return value


def int_field(value, name: str, low: int, high: int, default: int | None) -> int | None:
    if value is None:
        return default
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise BadRequest(f"'{name}' must be a whole number, not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"'{name}' must be a whole number from {low} to {high}")
    return value
