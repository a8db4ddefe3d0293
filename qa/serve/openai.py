"""OpenAI's chat-completions protocol, so a chat UI that speaks it can use qa as its "model".

The last user message is the question; the earlier user messages are the conversation (asked
again, so follow-ups resolve as in `qa ask -`), unless the request names a ``conversation`` id
from an earlier reply. The reply's text is the answer with its [n] markers; the citations travel
in the extra fields ``citations`` (and ``qa``: the whole answer, as `qa ask --json` prints it).
With ``stream: true`` the reply comes as server-sent ``chat.completion.chunk`` events, the
citations on the last one, then ``data: [DONE]``.
"""

from __future__ import annotations

import json
import re
import secrets
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from qa.serve.api import Api, BadRequest, call, json_body
from qa.sessions import MAX_QUESTION_CHARS

MODEL = "qa"


def _text(content, where: str) -> str:
    """A message's text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if all(isinstance(p, str) for p in parts):
            return "\n".join(parts)
    raise BadRequest(f"{where}: 'content' must be a string or a list of text parts")


def questions_of(body: dict) -> list[str]:
    """The user messages' texts, in order; the last one is the question."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list of {role, content} objects")
    questions = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"messages[{i}] must be an object with a 'role' and a 'content'")
        if message["role"] == "user":
            questions.append(_text(message.get("content"), f"messages[{i}]"))
    if messages[-1].get("role") != "user":
        raise BadRequest("the last message must be the user's question")
    question = questions[-1]
    if not question.strip():
        raise BadRequest("the last user message is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise BadRequest(f"the question is {len(question):,} characters long; at most "
                         f"{MAX_QUESTION_CHARS:,} are read", 413)
    return questions


async def chat_completions(api: Api, request: Request) -> Response:
    body = await json_body(request)
    questions = questions_of(body)
    conversation = body.get("conversation")
    if conversation is not None and not isinstance(conversation, str):
        raise BadRequest("'conversation' must be a string: an id an earlier reply gave")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be true or false")
    if conversation is None:
        conversation = await call(api, api.conversations.start, [q[:MAX_QUESTION_CHARS]
                                                                  for q in questions[:-1]])
    conversation, answer = await call(api, api.conversations.ask, questions[-1], conversation)
    ident, created = f"chatcmpl-{secrets.token_hex(12)}", int(time.time())
    extra = {"citations": [c.to_json() for c in answer.citations], "conversation": conversation,
             "qa": answer.to_json()}
    if not stream:
        return JSONResponse({
            "id": ident, "object": "chat.completion", "created": created, "model": MODEL,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer.text}}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            **extra,
        })

    def chunk(delta: dict, finish: str | None = None, **more) -> bytes:
        data = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more}
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()

    async def events():
        yield chunk({"role": "assistant", "content": ""})
        for piece in re.findall(r"\s*\S+|\s+$", answer.text):  # a word at a time, spaces kept
            yield chunk({"content": piece})
        yield chunk({}, "stop", **extra)
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"cache-control": "no-cache"})


async def models(api: Api, request: Request) -> Response:
    """The one model, for clients that list models before they chat."""
    return JSONResponse({"object": "list", "data": [
        {"id": MODEL, "object": "model", "created": 0, "owned_by": "qa"}]})
