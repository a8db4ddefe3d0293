"""qa serve's HTTP API over the fake embedder: the same answers as the engine, conversations,
search, documents, index updates with progress, and the safety rules."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from serving import request, running, server_sent_events
from starlette.testclient import TestClient

from qa.engine import Conversation, Engine
from qa.serve.http import create_app

LOCAL = "http://127.0.0.1"
QUESTION = "Who chaired the NATO-Russia Council meeting?"


@pytest.fixture
def engine(seeds_copy, tmp_path, fake_embedder) -> Engine:
    engine = Engine(seeds_copy, tmp_path / "index", fake_embedder)
    engine.sync()
    engine.load()
    return engine


@pytest.fixture
def client(engine) -> TestClient:
    return TestClient(create_app(engine), base_url=LOCAL)


def without_timings(data: dict) -> dict:
    """An answer as JSON sends it, without what differs between two runs."""
    return {k: v for k, v in json.loads(json.dumps(data)).items()
            if k not in ("timings_ms", "conversation")}


def test_ask_returns_what_qa_ask_json_prints_and_a_conversation(client, engine):
    response = client.post("/ask", json={"question": QUESTION})
    assert response.status_code == 200
    data = response.json()
    assert without_timings(data) == without_timings(engine.ask(QUESTION).to_json())
    assert data["found"] and "[1]" in data["answer"]
    assert isinstance(data["conversation"], str) and data["conversation"]


def test_a_follow_up_in_the_same_conversation_uses_it(client, engine):
    first = client.post("/ask", json={"question": QUESTION}).json()
    follow = client.post("/ask", json={"question": "What did he say?",
                                       "conversation": first["conversation"]}).json()
    assert follow["conversation"] == first["conversation"]
    plain = Conversation(engine)
    plain.ask(QUESTION)
    assert without_timings(follow) == without_timings(plain.ask("What did he say?").to_json())
    alone = client.post("/ask", json={"question": "What did he say?"}).json()
    assert alone["conversation"] != first["conversation"]
    assert alone["query"] != follow["query"]


def test_an_expired_conversation_is_a_404_saying_so(client):
    response = client.post("/ask", json={"question": QUESTION, "conversation": "gone"})
    assert response.status_code == 404
    assert "unknown or has expired" in response.json()["error"]["message"]


def test_search_returns_the_engines_passages(client, engine):
    data = client.post("/search", json={"query": "troops on the border", "k": 3}).json()
    assert data["results"] == [p.to_json() for p in engine.search("troops on the border", 3)]
    assert len(data["results"]) == 3
    for result in data["results"]:
        assert set(result) >= {"source", "start", "end", "text", "score"}
        assert engine.document_text(result["source"])[result["start"]:result["end"]] == result["text"]


def test_search_in_keeps_one_document(client, engine):
    source = engine.sources()[2]
    data = client.post("/search", json={"query": "NATO Russia", "k": 5, "in": source}).json()
    assert data["results"] and {r["source"] for r in data["results"]} == {source}
    assert client.post("/search", json={"query": "NATO", "in": "nowhere/"}).json()["results"] == []


@pytest.mark.parametrize("body, message", [
    ({"query": "x", "k": 0}, "'k' must be a whole number from 1 to 50"),
    ({"query": "x", "k": "many"}, "'k' must be a whole number, not 'many'"),
    ({"query": ""}, "'query' must be a non-empty string"),
    ({"k": 3}, "'query' must be a non-empty string"),
])
def test_a_malformed_search_is_a_400_naming_the_field(client, body, message):
    response = client.post("/search", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == message


def test_documents_lists_the_index_and_serves_text_or_a_span(client, engine):
    sources = client.get("/documents").json()["documents"]
    assert sources == engine.sources() and len(sources) == 5
    whole = client.get(f"/documents/{sources[0]}").json()
    assert whole["text"] == engine.document_text(sources[0])
    span = client.get(f"/documents/{sources[0]}", params={"start": 10, "end": 60}).json()
    assert span == {"source": sources[0], "start": 10, "end": 60,
                    "text": engine.document_text(sources[0])[10:60]}


def test_a_citation_from_ask_is_served_exactly_by_documents(client):
    citation = client.post("/ask", json={"question": QUESTION}).json()["citations"][0]
    span = client.get(f"/documents/{citation['source']}",
                      params={"start": citation["start"], "end": citation["end"]}).json()
    assert span["text"] == citation["text"]


def test_a_span_outside_the_text_or_reversed_is_a_422(client, engine):
    source = engine.sources()[0]
    size = len(engine.document_text(source))
    response = client.get(f"/documents/{source}", params={"start": 0, "end": size + 1})
    assert response.status_code == 422
    assert response.json()["error"]["message"] == f"span 0:{size + 1} is outside {source} (0:{size})"
    response = client.get(f"/documents/{source}", params={"start": 9, "end": 4})
    assert response.json()["error"]["message"] == "span 9:4 is reversed: start must not be after end"
    assert client.get(f"/documents/{source}", params={"start": -1}).status_code == 400


@pytest.mark.parametrize("path", [
    "/documents/..%2F..%2Fetc%2Fpasswd",
    "/documents/../../etc/passwd",
    "/documents/%2Fetc%2Fpasswd",
    "/documents//etc/passwd",
    "/documents/..%252F..%252Fetc%252Fpasswd",
    "/documents/%2E%2E/%2E%2E/etc/passwd",
    "/documents/corpus/../../../etc/passwd",
    "/documents/..%5C..%5Cetc%5Cpasswd",
    "/documents/000_5d4c552fcafd00ce.txt%00.png",
])
def test_documents_serves_no_path_outside_the_index_however_encoded(engine, path):
    with running(create_app(engine)) as address:
        status, headers, body = request(address, "GET", path)
    assert status in (404, 400), (status, body)
    assert headers["content-type"] == "application/json"
    assert b"root:" not in body
    assert json.loads(body)["error"]["message"]


def test_a_corpus_file_that_is_not_indexed_is_not_served(engine, seeds_copy):
    (seeds_copy / "secret.txt").write_text("not indexed yet\n")
    with running(create_app(engine)) as address:
        status, _, body = request(address, "GET", "/documents/secret.txt")
    assert status == 404 and b"not indexed" not in body


def test_stats_describes_the_index(client):
    data = client.get("/stats").json()
    assert data["documents"] == 5 and data["generation"] == 1


def test_openapi_describes_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) == {"/ask", "/search", "/documents", "/documents/{source}", "/stats", "/index",
                          "/index/events", "/v1/chat/completions", "/v1/models"}


def test_an_update_streams_its_progress_and_a_second_is_told_one_runs(engine, seeds_copy):
    (seeds_copy / "ferry.txt").write_text("The ferry to Tallinn leaves at nine every morning.\n")
    release = threading.Event()
    original = engine.embedder.encode_chunks

    def held(*args, **kwargs):
        release.wait(30)
        return original(*args, **kwargs)

    engine.embedder.encode_chunks = held
    with running(create_app(engine)) as address:
        status, _, body = request(address, "POST", "/index")
        assert status == 202 and json.loads(body)["events"] == "/index/events"
        status, _, body = request(address, "POST", "/index", {"rebuild": True})
        assert status == 409 and "already running" in json.loads(body)["error"]["message"]
        # Meanwhile questions are answered from the previous generation.
        status, _, body = request(address, "POST", "/ask", {"question": "When does the ferry leave?"})
        assert status == 200 and "ferry.txt" not in body.decode()
        release.set()
        status, headers, body = request(address, "GET", "/index/events")
        assert headers["content-type"].startswith("text/event-stream")
        events = server_sent_events(body)
        status, _, after = request(address, "POST", "/search", {"query": "ferry to Tallinn", "k": 1})
    names = [name for name, _ in events]
    assert names[0] == "started" and names[-1] == "done" and "progress" in names
    assert json.loads(events[-1][1])["added_sources"] == ["ferry.txt"]
    assert json.loads(after)["results"][0]["source"] == "ferry.txt"


def test_index_events_without_an_update_say_idle(client):
    response = client.get("/index/events")
    assert server_sent_events(response.content) == [("idle", '{"event": "idle"}')]


# -- safety ----------------------------------------------------------------------------------


def test_with_a_token_every_request_must_carry_it(engine):
    client = TestClient(create_app(engine, token="s3cret"), base_url=LOCAL)
    for method, path in [("GET", "/stats"), ("GET", "/documents"), ("POST", "/ask"),
                         ("GET", "/openapi.json"), ("GET", "/"), ("GET", "/nope")]:
        response = client.request(method, path, json={"question": QUESTION})
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        assert "missing or wrong token" in response.json()["error"]["message"]
    wrong = client.get("/stats", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = client.get("/stats", headers={"Authorization": "Bearer s3cret"})
    assert right.status_code == 200


def test_with_a_token_any_host_name_is_served(engine):
    client = TestClient(create_app(engine, token="s3cret"), base_url="http://qa.example:8765")
    assert client.get("/stats", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_without_a_token_only_loopback_host_names_are_served(engine):
    # A web page whose DNS name was rebound to 127.0.0.1 sends its own name as Host.
    app = create_app(engine)
    for base in ("http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765"):
        assert TestClient(app, base_url=base).get("/stats").status_code == 200, base
    refused = TestClient(app, base_url="http://attacker.example").get("/stats")
    assert refused.status_code == 403
    assert "loopback" in refused.json()["error"]["message"]


def test_a_post_that_is_not_json_is_refused(client):
    # A web page can post a form to 127.0.0.1 without asking; never as application/json.
    response = client.post("/ask", content=json.dumps({"question": QUESTION}),
                           headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    response = client.post("/ask", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["message"] == "the body is not valid JSON"
    response = client.post("/ask", json=["a list"])
    assert response.json()["error"]["message"] == "the body must be a JSON object"


def test_bodies_and_questions_are_capped(engine):
    big = {"question": "x" * (300 * 1024)}
    long = {"question": "why " * 600}
    with running(create_app(engine)) as address:
        status, _, body = request(address, "POST", "/ask", big)
        assert status == 413 and "over the limit of 256 KB" in json.loads(body)["error"]["message"]
        status, _, body = request(address, "POST", "/ask", long)
        assert status == 413
        assert json.loads(body)["error"]["message"] == \
            "'question' is 2,400 characters long; at most 2,000 are read"
        # A body sent in chunks, with no length announced, is capped as it comes.
        host, port = address
        import http.client

        connection = http.client.HTTPConnection(host, port, timeout=30)
        chunks = (b"x" * 65536 for _ in range(8))
        connection.request("POST", "/ask", body=chunks,
                           headers={"Content-Type": "application/json"}, encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 413 and b"over the limit" in response.read()
        connection.close()


def test_errors_are_json_never_a_traceback(engine, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals at /home/someone")

    monkeypatch.setattr(engine, "search", broken)
    client = TestClient(create_app(engine), base_url=LOCAL, raise_server_exceptions=False)
    response = client.post("/search", json={"query": "NATO"})
    assert response.status_code == 500
    assert response.json() == {"error": {"message": "internal error (RuntimeError); the server's log "
                                                    "has the details", "type": "server_error",
                                         "status": 500}}
    assert "Traceback" not in response.text and "secret" not in response.text
    assert client.get("/nowhere").json()["error"]["message"] == \
        "no such endpoint: /nowhere (GET /openapi.json lists them)"
    assert client.get("/ask").json()["error"]["message"] == "GET is not allowed on /ask"


def test_qa_serve_refuses_to_listen_beyond_this_machine_without_a_token(tmp_path):
    done = subprocess.run([sys.executable, "-m", "qa", "serve", "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "QA_TOKEN": ""})
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "qa: listening on 0.0.0.0 lets other machines in: give a token with --token TOKEN (or "
        "$QA_TOKEN), which every request must then send"]


def test_a_port_in_use_is_one_line():
    from qa.errors import QAError
    from qa.serve.run import listening_socket

    taken = listening_socket("127.0.0.1", 0)
    port = taken.getsockname()[1]
    with pytest.raises(QAError, match=f"cannot listen on 127.0.0.1:{port}: Address already in use"):
        listening_socket("127.0.0.1", port)
    taken.close()


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.8.9.1", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.4", False), ("example.org", False), ("", False)])
def test_what_counts_as_this_machine(host, loopback):
    from qa.serve.guard import is_loopback

    assert is_loopback(host) is loopback
