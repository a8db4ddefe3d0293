"""qa mcp: the tools search, ask and show and the documents as resources, checked with the
official SDK's own client, in-process (fake embedder) and over stdio with `qa mcp` (real model)."""

from __future__ import annotations

import json
import sys

import anyio
import pytest

from qa.engine import Conversation, Engine

QUESTION = "Who chaired the NATO-Russia Council meeting?"


@pytest.fixture
def engine(seeds_copy, tmp_path, fake_embedder) -> Engine:
    engine = Engine(seeds_copy, tmp_path / "index", fake_embedder)
    engine.sync()
    return engine


def result_of(call) -> dict:
    """A tool's structured result; its text content says the same, as JSON."""
    assert not call.is_error, call.content
    assert json.loads(call.content[0].text) == call.structured_content
    return call.structured_content


def in_process(engine, check) -> None:
    from mcp import Client

    from qa.serve.mcp_server import create_server

    async def main():
        async with Client(create_server(engine)) as client:
            await check(client)

    anyio.run(main)


def test_the_tools_are_listed_with_what_they_take(engine):
    async def check(client):
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"search", "ask", "show"}
        assert tools["ask"].input_schema["required"] == ["question"]
        assert set(tools["search"].input_schema["properties"]) == {"query", "k", "within"}
        assert set(tools["show"].input_schema["properties"]) == {"source", "start", "end"}

    in_process(engine, check)


def test_ask_answers_as_the_engine_does_and_follow_ups_use_the_conversation(engine):
    plain = Conversation(engine)
    expected = [plain.ask(QUESTION).to_json(), plain.ask("What did he say?").to_json()]

    async def check(client):
        first = result_of(await client.call_tool("ask", {"question": QUESTION}))
        follow = result_of(await client.call_tool("ask", {
            "question": "What did he say?", "conversation": first["conversation"]}))
        for got, want in zip((first, follow), expected):
            assert got["answer"] == want["answer"]
            assert got["citations"] == json.loads(json.dumps(want["citations"]))
        assert "[1]" in first["answer"]

    in_process(engine, check)


def test_search_and_show_give_exact_spans(engine):
    async def check(client):
        found = result_of(await client.call_tool("search", {"query": "troops on the border", "k": 2}))
        assert len(found["results"]) == 2
        top = found["results"][0]
        shown = result_of(await client.call_tool("show", {
            "source": top["source"], "start": top["start"], "end": top["end"]}))
        assert shown["text"] == top["text"]
        within = result_of(await client.call_tool("search", {"query": "NATO", "within": top["source"]}))
        assert {r["source"] for r in within["results"]} == {top["source"]}

    in_process(engine, check)


def test_a_tool_error_is_one_message(engine):
    async def check(client):
        call = await client.call_tool("show", {"source": "../../etc/passwd"})
        assert call.is_error
        assert "no document '../../etc/passwd' in the index" in call.content[0].text
        call = await client.call_tool("ask", {"question": "x", "conversation": "gone"})
        assert call.is_error and "unknown or has expired" in call.content[0].text
        call = await client.call_tool("ask", {"question": "why " * 600})
        assert call.is_error and "at most 2,000 are read" in call.content[0].text

    in_process(engine, check)


def test_the_documents_are_resources(engine):
    async def check(client):
        resources = (await client.list_resources()).resources
        assert [r.name for r in resources] == engine.sources()
        first = resources[0]
        assert str(first.uri) == f"qa://documents/{engine.sources()[0]}"
        contents = (await client.read_resource(first.uri)).contents
        assert contents[0].text == engine.document_text(engine.sources()[0])

    in_process(engine, check)


@pytest.mark.model
def test_qa_mcp_over_stdio_answers_with_the_real_model(seeds_engine, tmp_path):
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "qa", "--corpus", str(seeds_engine.corpus), "--index", str(seeds_engine.index_dir), "mcp"],
        cwd=str(tmp_path))
    expected = seeds_engine.ask(QUESTION)

    async def main():
        async with Client(params) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools == {"search", "ask", "show"}
            answer = result_of(await client.call_tool("ask", {"question": QUESTION}))
            cited = answer["citations"][0]
            shown = result_of(await client.call_tool("show", {
                "source": cited["source"], "start": cited["start"], "end": cited["end"]}))
            return answer, shown

    answer, shown = anyio.run(main)
    assert answer["answer"] == expected.text and "Stoltenberg" in answer["answer"]
    assert shown["text"] == answer["citations"][0]["text"]
