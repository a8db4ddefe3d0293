"""POST /v1/chat/completions speaks OpenAI's chat protocol, streamed or not (fake embedder)."""

from __future__ import annotations

import json

import pytest
from serving import server_sent_events
from starlette.testclient import TestClient

from qa.engine import Conversation, Engine
from qa.serve.http import create_app

QUESTION = "Who chaired the NATO-Russia Council meeting?"


@pytest.fixture
def engine(seeds_copy, tmp_path, fake_embedder) -> Engine:
    engine = Engine(seeds_copy, tmp_path / "index", fake_embedder)
    engine.sync()
    return engine


@pytest.fixture
def client(engine) -> TestClient:
    return TestClient(create_app(engine), base_url="http://127.0.0.1")


def chat(*contents: str) -> list[dict]:
    """Alternating user and assistant messages, ending with the user's."""
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": text}
            for i, text in enumerate(contents)]


def test_a_reply_is_the_answer_with_its_markers_and_the_citations_beside_it(client, engine):
    data = client.post("/v1/chat/completions", json={"model": "qa", "messages": chat(QUESTION)}).json()
    answer = engine.ask(QUESTION)
    assert data["object"] == "chat.completion" and data["model"] == "qa"
    choice = data["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": answer.text}
    assert choice["finish_reason"] == "stop"
    assert "[1]" in choice["message"]["content"]
    assert data["citations"] == json.loads(json.dumps([c.to_json() for c in answer.citations]))
    assert data["qa"]["answer"] == answer.text and data["conversation"]


def test_earlier_user_messages_are_the_conversation(client, engine):
    messages = chat(QUESTION, "(whatever the client shows)", "What did he say?")
    data = client.post("/v1/chat/completions", json={"messages": messages}).json()
    plain = Conversation(engine)
    plain.ask(QUESTION)
    assert data["choices"][0]["message"]["content"] == plain.ask("What did he say?").text
    # The id it returns continues the conversation without sending it again.
    again = client.post("/v1/chat/completions", json={
        "messages": chat("And Grushko?"), "conversation": data["conversation"]}).json()
    assert again["choices"][0]["message"]["content"] == plain.ask("And Grushko?").text


def test_a_streamed_reply_comes_a_word_at_a_time_with_the_citations_last(client, engine):
    response = client.post("/v1/chat/completions",
                           json={"messages": chat(QUESTION), "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [data for _, data in server_sent_events(response.content)]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    answer = engine.ask(QUESTION)
    assert text == answer.text and len(chunks) > 5
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert [c["n"] for c in chunks[-1]["citations"]] == [c.n for c in answer.citations]


def test_content_given_as_text_parts_is_read(client, engine):
    messages = [{"role": "system", "content": "You are helpful."},
                {"role": "user", "content": [{"type": "text", "text": QUESTION}]}]
    data = client.post("/v1/chat/completions", json={"messages": messages}).json()
    assert data["choices"][0]["message"]["content"] == engine.ask(QUESTION).text


@pytest.mark.parametrize("body, message", [
    ({}, "'messages' must be a non-empty list of {role, content} objects"),
    ({"messages": []}, "'messages' must be a non-empty list of {role, content} objects"),
    ({"messages": [{"role": "assistant", "content": "hi"}]}, "the last message must be the user's question"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0]: 'content' must be a string or a list of text parts"),
    ({"messages": [{"role": "user", "content": "  "}]}, "the last user message is empty"),
    ({"messages": ["hello"]}, "messages[0] must be an object with a 'role' and a 'content'"),
    ({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "'stream' must be true or false"),
])
def test_a_malformed_chat_request_is_a_400_naming_what_is_wrong(client, body, message):
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == {"message": message, "type": "invalid_request_error",
                                        "status": 400}


def test_the_model_list_names_qa(client):
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["qa"]
