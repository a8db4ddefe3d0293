"""qa as an MCP server (the official ``mcp`` SDK), for AI assistants: tools ``search``, ``ask``
and ``show``, and each indexed document as a resource ``qa://documents/{source}``. Every tool
returns what the CLI's --json prints, so a client can cite exact spans."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from qa.engine import Engine
from qa.errors import QAError
from qa.sessions import MAX_QUESTION_CHARS, Conversations

INSTRUCTIONS = (
    "Answers questions from a folder of documents with their own sentences, each cited by "
    "source and exact character span [start, end). Use `ask` for a short cited answer (pass the "
    "returned `conversation` back for follow-up questions), `search` for the best passages, and "
    "`show` to read a document, or a cited span of it, as indexed.")
URI_PREFIX = "qa://documents/"


def create_server(engine: Engine, conversations: Conversations | None = None):
    """An ``MCPServer`` over ``engine``; its documents are listed as resources."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
    from mcp.server.mcpserver.resources import FunctionResource

    from qa.serve.version import version

    conversations = conversations or Conversations(engine)
    server = MCPServer("qa", instructions=INSTRUCTIONS, version=version(), log_level="WARNING")

    def engine_call(function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except QAError as exc:
            raise ToolError(str(exc)) from None

    @server.tool()
    def ask(question: str, conversation: str | None = None) -> dict[str, Any]:
        """A short answer made of sentences from the documents, each cited [n] with its source
        and exact span, or found=false with the closest passages when the documents do not
        cover the question. Give the `conversation` of an earlier answer to ask a follow-up."""
        ident, answer = engine_call(conversations.ask, _capped(question), conversation)
        return {**answer.to_json(), "conversation": ident}

    @server.tool()
    def search(query: str, k: int = 5, within: str | None = None) -> dict[str, Any]:
        """The best `k` (1 to 50) passages for a query, with source, start, end, text and score;
        `within` keeps those of one document or folder (relative to the corpus)."""
        k = max(1, min(int(k), 50))
        query = _capped(query)
        if not any(ch.isalnum() for ch in query):
            passages = []
        elif within:
            passages = engine_call(engine.search_in, query, within, k)
        else:
            passages = engine_call(engine.search, query, k)
        return {"query": query, "results": [p.to_json() for p in passages]}

    @server.tool()
    def show(source: str, start: int | None = None, end: int | None = None) -> dict[str, Any]:
        """A document's text as indexed (what citation offsets point into), or the span
        [start, end) of it: give a citation's source, start and end to read it in place."""
        text = engine_call(engine.span, source, start, end, exact=True)
        start = start or 0
        return {"source": source, "start": start, "end": start + len(text), "text": text}

    def reader(source: str):
        def read() -> str:
            try:
                return engine.span(source, exact=True)
            except QAError as exc:
                raise ResourceNotFoundError(str(exc)) from None

        return read

    for source in engine.sources():
        server.add_resource(FunctionResource.from_function(
            reader(source), uri=URI_PREFIX + quote(source), name=source, mime_type="text/plain",
            description=f"the text of {source} as indexed (citation offsets point into it)"))
    return server


def _capped(text: str) -> str:
    if len(text) > MAX_QUESTION_CHARS:
        from mcp.server.mcpserver.exceptions import ToolError

        raise ToolError(f"the text is {len(text):,} characters long; at most "
                        f"{MAX_QUESTION_CHARS:,} are read")
    return text


def run_stdio(engine: Engine) -> None:
    """Serve MCP over stdin/stdout until the client closes it."""
    engine.load()
    create_server(engine).run("stdio")
