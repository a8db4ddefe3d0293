"""The API's OpenAPI description, served at /openapi.json (written out: the API is small)."""

from __future__ import annotations

from qa.serve.version import version


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _ok(schema: dict, description: str = "OK", media: str = "application/json") -> dict:
    return {"description": description, "content": {media: {"schema": schema}}}


_ERRORS = {str(code): {"description": text, "content": {"application/json": {"schema": _ref("Error")}}}
           for code, text in [(400, "a malformed request"), (401, "no token, or a wrong one"),
                              (413, "a body or question over the limit"),
                              (415, "a body that is not JSON")]}

_CITATION = {"type": "object", "properties": {
    "n": {"type": "integer"}, "source": {"type": "string"}, "start": {"type": "integer"},
    "end": {"type": "integer", "description": "exclusive"},
    "text": {"type": "string", "description": "exactly the document's text[start:end]"},
    "line": {"type": "integer"}, "page": {"type": "integer"},
    "passage": {"type": "object", "properties": {"start": {"type": "integer"},
                                                 "end": {"type": "integer"}}}}}

_PASSAGE = {"type": "object", "properties": {
    "source": {"type": "string"}, "start": {"type": "integer"}, "end": {"type": "integer"},
    "text": {"type": "string"}, "score": {"type": "number"}, "line": {"type": "integer"},
    "page": {"type": "integer"}}}

_ANSWER = {"type": "object", "description": "the object `qa ask --json` prints, and the "
           "conversation's id", "properties": {
    "question": {"type": "string"}, "answer": {"type": "string", "description": "with [n] markers"},
    "found": {"type": "boolean", "description": "false: the documents do not cover it"},
    "citations": {"type": "array", "items": _ref("Citation")},
    "passages": {"type": "array", "items": _ref("Passage")},
    "confidence": {"type": "number"}, "query": {"type": "string"},
    "timings_ms": {"type": "object"}, "conversation": {"type": "string"}}}

OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "qa", "version": version(),
             "description": "Answers from a folder of documents, made of their own sentences, each "
                            "cited by file and exact character span. With a token, send "
                            "'Authorization: Bearer TOKEN'. Errors are {\"error\": {\"message\", "
                            "\"type\", \"status\"}}."},
    "components": {
        "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                "message": {"type": "string"}, "type": {"type": "string"},
                "status": {"type": "integer"}}}}},
            "Citation": _CITATION, "Passage": _PASSAGE, "Answer": _ANSWER,
        },
    },
    "security": [{"token": []}],
    "paths": {
        "/ask": {"post": {
            "summary": "a short cited answer, or 'not in the documents' with the closest passages",
            "requestBody": _json_body({"type": "object", "required": ["question"], "properties": {
                "question": {"type": "string", "maxLength": 2000},
                "conversation": {"type": "string", "description": "an id from an earlier answer: "
                                 "follow-up questions use that conversation"}}}),
            "responses": {"200": _ok(_ref("Answer")), **_ERRORS,
                          "404": {"description": "the conversation expired or is unknown"}}}},
        "/search": {"post": {
            "summary": "the best passages for a query (retrieval only)",
            "requestBody": _json_body({"type": "object", "required": ["query"], "properties": {
                "query": {"type": "string", "maxLength": 2000},
                "k": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
                "in": {"type": "string", "description": "only passages of this document or "
                       "folder (relative to the corpus), among the best 100"}}}),
            "responses": {"200": _ok({"type": "object", "properties": {
                "query": {"type": "string"},
                "results": {"type": "array", "items": _ref("Passage")}}}), **_ERRORS}}},
        "/documents": {"get": {
            "summary": "the sources of the indexed documents",
            "responses": {"200": _ok({"type": "object", "properties": {
                "documents": {"type": "array", "items": {"type": "string"}}}})}}},
        "/documents/{source}": {"get": {
            "summary": "a document's text as indexed (what offsets point into), or a span of it",
            "parameters": [
                {"name": "source", "in": "path", "required": True, "schema": {"type": "string"},
                 "description": "as citations give it; only documents of the index are served"},
                {"name": "start", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                {"name": "end", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
            "responses": {"200": _ok({"type": "object", "properties": {
                "source": {"type": "string"}, "start": {"type": "integer"},
                "end": {"type": "integer"}, "text": {"type": "string"}}}),
                "404": {"description": "not a document of the index"},
                "422": {"description": "a span outside the text, or reversed"}}}},
        "/stats": {"get": {"summary": "what `qa stats --json` prints",
                           "responses": {"200": _ok({"type": "object"})}}},
        "/index": {"post": {
            "summary": "start an index update (only changed documents are embedded) and return "
                       "at once; follow it at /index/events",
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"rebuild": {"type": "boolean", "default": False}}}}}},
            "responses": {"202": _ok({"type": "object"}, "started"),
                          "409": {"description": "an update is already running"}}}},
        "/index/events": {"get": {
            "summary": "the running (or last) update's progress as server-sent events: started, "
                       "waiting, progress {phase, done, total, unit}, warning {source, reason}, "
                       "then done (the report of `qa index --json`) or error {message}; idle when "
                       "no update was started",
            "responses": {"200": _ok({"type": "string"}, "an event stream", "text/event-stream")}}},
        "/v1/chat/completions": {"post": {
            "summary": "OpenAI-compatible chat: the last user message is the question, earlier "
                       "ones the conversation; the citations are in the extra field 'citations'",
            "requestBody": _json_body({"type": "object", "required": ["messages"], "properties": {
                "model": {"type": "string"}, "stream": {"type": "boolean"},
                "conversation": {"type": "string"},
                "messages": {"type": "array", "items": {"type": "object", "properties": {
                    "role": {"type": "string"}, "content": {}}}}}}),
            "responses": {"200": _ok({"type": "object"}, "a chat.completion, or with stream: "
                                     "chat.completion.chunk events"), **_ERRORS}}},
        "/v1/models": {"get": {"summary": "the one model, 'qa'",
                               "responses": {"200": _ok({"type": "object"})}}},
    },
}
