"""Whole documents in: converted HTML and Markdown keep their structure, every sentence of the
content lands in exactly one chunk, furniture in none, and chunks know their heading path."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.config import MAX_CHUNK_TOKENS
from qa.ingest.boilerplate import corpus_segments
from qa.ingest.chunking import chunk_segments, default_token_counter
from qa.ingest.html import html_to_text
from qa.ingest.markdown import markdown_blocks

PAGE = """<!DOCTYPE html><html><head><title>Widget manual</title><style>p {color: red}</style></head>
<body>
<header><a href="/">Home</a> <a href="/docs">Docs</a></header>
<nav><ul><li><a href="a.html">Install</a></li><li><a href="b.html">Use</a></li></ul></nav>
<div class="sidebar" role="navigation"><p>Quick search</p></div>
<main>
<h1>Widgets<a class="headerlink" href="#w">¶</a></h1>
<p>A widget turns
   the crank twice
   a minute. It never stops.</p>
<h2><a href="#faq-why">Why does the widget hum?</a></h2>
<p>The humming comes from the <code>gearbox</code>, which is
normal.</p>
<ul><li>Oil it every month.</li><li>Keep it <em>dry</em>.</li></ul>
<div class="highlight"><pre><span>$ widget --start</span>
<span>$ widget --status</span></pre></div>
<table><tr><th>Option</th><th>Meaning</th></tr><tr><td>--fast</td><td>runs twice as fast</td></tr></table>
<ul class="toc"><li><a href="#a">First part</a></li><li><a href="#b">Second part</a></li></ul>
<p hidden>Secret text.</p>
<p style="display: none">Invisible text.</p>
</main>
<footer role="contentinfo"><p>Copyright 2024 Widget Co.</p></footer>
<script>var x = "not text";</script>
</body></html>"""


def test_html_keeps_content_structure_and_drops_furniture():
    converted = html_to_text(PAGE)
    text = converted.text
    blocks = {(b.kind, text[b.start:b.end]) for b in converted.blocks}
    assert ("heading", "Widgets") in blocks  # the permalink mark is gone
    assert ("heading", "Why does the widget hum?") in blocks  # a linked heading is kept
    # A paragraph wrapped in the source is one line: no sentence ends at a line break.
    assert ("paragraph", "A widget turns the crank twice a minute. It never stops.") in blocks
    assert ("paragraph", "The humming comes from the gearbox, which is normal.") in blocks
    assert ("item", "- Oil it every month.") in blocks and ("item", "- Keep it dry.") in blocks
    assert ("code", "$ widget --start\n$ widget --status") in blocks
    assert ("row", "--fast | runs twice as fast") in blocks
    for furniture in ["Home", "Install", "Quick search", "First part", "Secret", "Invisible",
                      "Copyright", "not text", "color", "¶"]:
        assert furniture not in text, furniture
    assert converted.title == "Widgets"


def test_xhtml_with_an_xml_declaration_is_read():
    page = '<?xml version="1.0" encoding="UTF-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">' \
           "<body><h1>Title</h1><p>Body text here.</p></body></html>"
    assert html_to_text(page).text == "Title\n\nBody text here."


def test_layout_tables_are_read_as_blocks_not_rows():
    page = "<body><table><tr><td><h2>Part one</h2><p>First paragraph.</p></td>" \
           "<td><p>Second paragraph.</p></td></tr></table></body>"
    converted = html_to_text(page)
    assert converted.text == "Part one\n\nFirst paragraph.\n\nSecond paragraph."


def test_markdown_blocks():
    text = ("# Guide\n\nSome text that wraps\nover two lines.\n\n## Setup\n\n- first step\n"
            "  continues here\n- second step\n\n```sh\nmake install\n```\n\n| a | b |\n|---|---|\n"
            "| 1 | 2 |\n\nTitle\n=====\n")
    kinds = [(b.kind, b.level, text[b.start:b.end]) for b in markdown_blocks(text)]
    assert kinds == [
        ("heading", 1, "# Guide"),
        ("paragraph", 0, "Some text that wraps\nover two lines."),
        ("heading", 2, "## Setup"),
        ("item", 0, "- first step\n  continues here"),
        ("item", 0, "- second step"),
        ("code", 0, "```sh\nmake install\n```"),
        ("row", 0, "| a | b |"), ("row", 0, "|---|---|"), ("row", 0, "| 1 | 2 |"),
        ("heading", 1, "Title\n====="),
    ]


def chunks_of(documents: dict[str, tuple[str, tuple]], max_tokens: int = MAX_CHUNK_TOKENS):
    segments = corpus_segments({s: t for s, (t, _) in documents.items()},
                               {s: b for s, (_, b) in documents.items() if b})
    counter = default_token_counter()
    return {s: chunk_segments(t, segments[s], counter, max_tokens, b)
            for s, (t, b) in documents.items()}


def test_chunks_start_at_headings_and_know_their_path():
    converted = html_to_text(PAGE)
    [(source, chunks)] = chunks_of({"page.html": (converted.text, converted.blocks)}).items()
    text = converted.text
    assert [c.heading for c in chunks] == ["Widgets", "Widgets > Why does the widget hum?"]
    second = chunks[1]
    assert text[second.start:second.end].startswith("Why does the widget hum?")
    assert second.headings == 1  # its first sentence is the heading
    assert "$ widget --start\n$ widget --status" in [text[s:e] for s, e in second.sentences]


# -- property: every content sentence in exactly one chunk, furniture in none ------------------

WORD = st.text(st.characters(min_codepoint=0x61, max_codepoint=0x7A), min_size=2, max_size=9)
SENTENCE = st.lists(WORD, min_size=3, max_size=14).map(lambda w: " ".join(w).capitalize() + ".")
HEADING = st.lists(WORD, min_size=1, max_size=5).map(lambda w: " ".join(w).title())
BLOCK = st.one_of(
    st.tuples(st.just("p"), st.lists(SENTENCE, min_size=1, max_size=4)),
    st.tuples(st.just("h"), HEADING.map(lambda h: [h])),
    st.tuples(st.just("ul"), st.lists(SENTENCE, min_size=1, max_size=4)),
    st.tuples(st.just("pre"), st.lists(WORD.map(lambda w: f"$ run {w} --now"), min_size=1, max_size=20)),
)
FURNITURE = ["<nav><a href='x'>XQZmenu one</a> <a href='y'>XQZmenu two</a></nav>",
             "<footer>XQZfooter credit line</footer>",
             "<ul><li><a href='#1'>XQZlink first</a></li><li><a href='#2'>XQZlink second</a></li></ul>",
             "<div role='search'><p>XQZsearch box</p></div>"]


def page_of(blocks, furniture_at: int, level: int) -> str:
    html = []
    for i, (kind, parts) in enumerate(blocks):
        if i == furniture_at:
            html.append(FURNITURE[i % len(FURNITURE)])
        if kind == "p":
            html.append("<p>" + "\n   ".join(parts) + "</p>")  # wrapped in the source
        elif kind == "h":
            html.append(f"<h{level}><a href='#x'>{parts[0]}</a></h{level}>")
        elif kind == "ul":
            html.append("<ul>" + "".join(f"<li>{p}</li>" for p in parts) + "</ul>")
        else:
            html.append("<pre>" + "\n".join(parts) + "</pre>")
    return "<html><body>" + "\n".join(html) + "</body></html>"


def normal(text: str) -> str:
    return " ".join(text.split())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(BLOCK, min_size=1, max_size=25), st.integers(0, 25), st.integers(1, 4),
       st.sampled_from([90, MAX_CHUNK_TOKENS]))
def test_every_content_sentence_lands_in_exactly_one_chunk(blocks, furniture_at, level, budget):
    converted = html_to_text(page_of(blocks, furniture_at, level))
    chunks = chunks_of({"page.html": (converted.text, converted.blocks)}, budget)["page.html"]
    text = converted.text
    units = [normal(text[s:e]) for c in chunks for s, e in c.sentences]
    code = [u for u in units if u.startswith("$ run")]
    prose = [u for u in units if not u.startswith("$ run")]
    expected = [("- " + part) if kind == "ul" else part
                for kind, parts in blocks if kind != "pre" for part in parts]
    # Every sentence, item and heading, in order, nothing lost or repeated, and none cut in two
    # (the splitter may keep two generated sentences together: "Aa ab. Bb." reads "ab." as an
    # abbreviation).
    assert " ".join(prose) == " ".join(expected)
    for part in expected:
        assert any(part in unit for unit in prose), part
    # Code keeps its lines: every line in exactly one unit (long examples are cut by lines).
    lines = [line for u in code for line in u.split(" $ ")]
    assert [line.removeprefix("$ ") for line in lines] == [
        line.removeprefix("$ ") for kind, parts in blocks if kind == "pre" for line in parts]
    assert "XQZ" not in " ".join(units)
    first_heading = next((b.start for b in converted.blocks if b.kind == "heading"), None)
    for chunk in chunks:
        assert bool(chunk.heading) == (first_heading is not None and chunk.start >= first_heading)


@pytest.mark.parametrize("markup", ["", "<html></html>", "<p>", "\x00\x01", "<<<>>>"])
def test_broken_markup_never_raises(markup):
    converted = html_to_text(markup)
    assert converted is None or isinstance(converted.text, str)


def test_definition_terms_are_their_own_kind_and_stay_with_their_description():
    options = "".join(f"<dt>-{chr(97 + i)}</dt><dt>--option-{i}</dt><dd><p>" +
                      " ".join(f"Option {i} changes setting number {j} of the widget." for j in range(6)) +
                      "</p></dd>" for i in range(12))
    converted = html_to_text(f"<html><body><h1>Widget</h1><h2>Options</h2><dl>{options}</dl></body></html>")
    [(source, chunks)] = chunks_of({"page.html": (converted.text, converted.blocks)}, 120).items()
    text = converted.text
    assert len(chunks) > 3
    kinds = {text[s:e]: k for c in chunks for (s, e), k in zip(c.sentences, c.kinds)}
    assert kinds["-a"] == kinds["--option-0"] == "d" and kinds["Widget"] == "h"
    assert kinds["Option 0 changes setting number 0 of the widget."] == "t"
    for chunk in chunks:  # a chunk never ends with a term: it goes with what defines it
        assert not chunk.kinds.endswith("d"), [text[s:e] for s, e in chunk.sentences]


MANUAL = """<html><head><title>git-shortlog(1)</title></head><body><h1>git-shortlog(1)</h1>
<h2>NAME</h2><p>git-shortlog - Summarize git log output</p>
<h2>OPTIONS</h2><dl>
<dt>-n</dt><dt>--numbered</dt><dd><p>Sort output according to the number of commits per author
instead of author alphabetic order.</p></dd>
<dt>-s</dt><dt>--summary</dt><dd><p>Suppress commit description and provide a commit count
summary only.</p></dd>
<dt>-e</dt><dt>--email</dt><dd><p>Show the email address of each author.</p></dd>
</dl></body></html>"""


def test_an_answer_from_a_definition_list_names_the_term(tmp_path, real_embedder):
    from qa.engine import Engine

    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "git-shortlog.html").write_text(MANUAL, encoding="utf-8")
    engine = Engine(corpus, tmp_path / "index", real_embedder)
    engine.sync()
    answer = engine.ask("Which option sorts authors by how many commits they made?")
    assert answer.found
    assert answer.text.startswith("-n, --numbered: Sort output according to the number of commits")
    first = answer.citations[0]
    assert first.text.startswith("-n") and first.text.endswith("alphabetic order.")
    assert engine.snapshot.documents[first.source].text[first.start:first.end] == first.text
