"""The HTTP API (Starlette): each route reads its request, calls the Engine (in a worker thread,
so the server keeps serving meanwhile) and returns what the CLI's --json would print. The logic
lives in the engine and qa.sessions; this module only translates."""

from __future__ import annotations

import json

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from qa.engine import Engine
from qa.serve import openai
from qa.serve.api import Api, BadRequest, call, int_field, json_body, text_field, user_error
from qa.serve.guard import Guard, TooLarge, error_body
from qa.serve.version import version
from qa.sessions import Conversations, IndexUpdates, UpdateRunning

KEEP_ALIVE_SECONDS = 15


def create_app(engine: Engine, token: str | None = None, web: bool = False,
               conversations: Conversations | None = None, updates: IndexUpdates | None = None,
               workers: int | None = None, web_command: str | None = None):
    """The ASGI application: the API, its safety rules (qa.serve.guard) and, with ``web``, the
    chat app for a browser at /web (``web_command`` starts one app per browser tab)."""
    api = Api(engine, conversations, updates, workers)

    def route(path: str, handler, methods=("GET",)) -> Route:
        async def endpoint(request: Request):
            return await handler(api, request)

        return Route(path, endpoint, methods=list(methods))

    routes = [
        route("/", home),
        route("/openapi.json", openapi_document),
        route("/ask", ask, ["POST"]),
        route("/search", search, ["POST"]),
        route("/documents", documents),
        route("/documents/{source:path}", document),
        route("/stats", stats),
        route("/index", start_update, ["POST"]),
        route("/index/events", update_events),
        route("/v1/chat/completions", openai.chat_completions, ["POST"]),
        route("/v1/models", openai.models),
    ]
    if web:
        from qa.serve.web import web_routes

        routes.extend(web_routes(web_command or _chat_command(engine)))
    app = Starlette(routes=routes, exception_handlers={
        HTTPException: _http_error,
        TooLarge: _too_large,
        Exception: _server_error,
    })
    app.state.api = api
    return Guard(app, token=token)


def _chat_command(engine: Engine) -> str:
    import shlex
    import sys

    return shlex.join([sys.executable, "-m", "qa", "--corpus", str(engine.corpus),
                       "--index", getattr(engine.index_dir, "url", None) or str(engine.index_dir),
                       "--max-file-mb", repr(engine.max_bytes / (1024 * 1024)), "chat"])


# -- errors ----------------------------------------------------------------------------------


def error(status: int, message: str) -> Response:
    return Response(error_body(status, message), status, media_type="application/json")


async def _http_error(request: Request, exc: HTTPException) -> Response:
    message = exc.detail
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.url.path} (GET /openapi.json lists them)"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    return error(exc.status_code, message)


async def _too_large(request: Request, exc: TooLarge) -> Response:
    from qa.serve.guard import MAX_BODY_BYTES

    return error(413, f"the request body is over the limit of {MAX_BODY_BYTES // 1024} KB")


async def _server_error(request: Request, exc: Exception) -> Response:
    import logging

    logging.getLogger("qa").error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error(500, f"internal error ({type(exc).__name__}); the server's log has the details")


# -- routes ----------------------------------------------------------------------------------


async def home(api: Api, request: Request) -> Response:
    return JSONResponse({
        "name": "qa", "version": version(),
        "description": "Extractive question answering with exact citations over a folder of "
                       "documents; see /openapi.json",
        "endpoints": ["POST /ask", "POST /search", "GET /documents", "GET /documents/{source}",
                      "GET /stats", "POST /index", "GET /index/events",
                      "POST /v1/chat/completions", "GET /v1/models", "GET /openapi.json"],
    })


async def openapi_document(api: Api, request: Request) -> Response:
    from qa.serve.openapi import OPENAPI

    return JSONResponse(OPENAPI)


async def ask(api: Api, request: Request) -> Response:
    body = await json_body(request)
    question = text_field(body, "question")
    conversation = body.get("conversation")
    if conversation is not None and not isinstance(conversation, str):
        raise BadRequest("'conversation' must be a string: an id an earlier answer gave")
    ident, answer = await call(api, api.conversations.ask, question, conversation)
    return JSONResponse({**answer.to_json(), "conversation": ident})


async def search(api: Api, request: Request) -> Response:
    body = await json_body(request)
    query = text_field(body, "query")
    k = int_field(body.get("k"), "k", 1, 50, 5)
    within = body.get("in")
    if within is not None and not isinstance(within, str):
        raise BadRequest("'in' must be a string: a document or folder, relative to the corpus")
    if not any(ch.isalnum() for ch in query):  # as `qa search`: no words, no passages
        passages = []
    elif within:
        passages = await call(api, api.engine.search_in, query, within, k)
    else:
        passages = await call(api, api.engine.search, query, k)
    return JSONResponse({"query": query, "results": [p.to_json() for p in passages]})


async def documents(api: Api, request: Request) -> Response:
    return JSONResponse({"documents": await call(api, api.engine.sources)})


async def document(api: Api, request: Request) -> Response:
    source = request.path_params["source"]
    start = int_field(request.query_params.get("start"), "start", 0, 2**62, None)
    end = int_field(request.query_params.get("end"), "end", 0, 2**62, None)
    text = await call(api, lambda: api.engine.span(source, start, end, exact=True))
    start = start or 0
    return JSONResponse({"source": source, "start": start, "end": start + len(text), "text": text})


async def stats(api: Api, request: Request) -> Response:
    return JSONResponse(await call(api, api.engine.stats))


async def start_update(api: Api, request: Request) -> Response:
    body = await json_body(request) if await request.body() else {}
    rebuild = body.get("rebuild", False)
    if not isinstance(rebuild, bool):
        raise BadRequest("'rebuild' must be true or false")
    try:
        api.updates.start(rebuild=rebuild)
    except UpdateRunning as exc:
        raise user_error(exc) from None
    return JSONResponse({"started": True, "rebuild": rebuild, "events": "/index/events"},
                        status_code=202)


async def update_events(api: Api, request: Request) -> Response:
    """The running (or last) update's progress as server-sent events, one JSON object each."""
    events = api.updates.events(timeout=KEEP_ALIVE_SECONDS)

    async def stream():
        while True:
            event = await anyio.to_thread.run_sync(next, events, "end")
            if event == "end":
                return
            if event is None:
                if await request.is_disconnected():
                    return
                yield b": keep-alive\n\n"
                continue
            yield f"event: {event['event']}\ndata: {json.dumps(event)}\n\n".encode()
            if event["event"] in ("done", "error", "idle"):
                return

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no"})
