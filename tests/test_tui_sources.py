"""The sources panel names, under each source, where in the document the passage is (page, slide,
chapter, message) and what the document states of itself (title, author, date), in one dim line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import FakeEmbedder

from qa.engine import Engine
from qa.results import Answer
from qa.tui.app import create_app
from qa.tui.render import source_details
from qa.tui.widgets.citations import CitationView
from test_tui import anyio_backend, ask, settle  # noqa: F401

pytestmark = pytest.mark.anyio
FORMATS = Path(__file__).parent / "fixtures" / "formats"


def test_details_say_the_place_then_what_the_document_states():
    from qa.results import Locator

    slide = Locator(0, "slide", 1, "Lighthouse Restoration Project")
    message = Locator(0, "message", 2, "Re: Dredging — Jørgen Dahl", "2025-03-04T16:40:02+01:00")
    deck = {"title": "Lighthouse Restoration Project", "author": "Tomas Eriksen",
            "date": "2026-01-05T07:38:15Z"}
    # The deck's title is the slide's: said once.
    assert source_details(None, slide, deck) == \
        "slide 1 (Lighthouse Restoration Project) · Tomas Eriksen · 2026-01-05"
    # A message's own date, not the mailbox's newest.
    assert source_details(None, message, {"date": "2025-06-20T11:02:45+02:00"}) == \
        "message 2 (Re: Dredging — Jørgen Dahl) · 2025-03-04"
    assert source_details(4, None, {"title": "Annual\nreport"}) == "page 4 · Annual report"
    assert source_details(None, None, {}) == ""
    # Narrow: the part's title is shortened first, so the date stays; then the line is cut.
    mailbox = {"date": "2025-06-20"}
    assert source_details(None, message, mailbox, width=34) == "message 2 (Re: Dred…) · 2025-03-04"
    assert source_details(None, message, mailbox, width=30) == "message 2 · 2025-03-04"
    assert source_details(None, message, mailbox, width=12) == "message 2 ·…"
    assert source_details(None, slide, deck, width=200) == source_details(None, slide, deck)


def answer_citing(engine: Engine, places: dict[str, int]) -> Answer:
    """An answer citing, in each document, the first chunk of its part number ``places[source]``
    (0: its first chunk)."""
    def part(row: int) -> int:
        locator = engine.passage(row, 1.0).locator
        return locator.number if locator else 0

    citations = []
    for source, number in places.items():
        row = next(row for row, chunk in enumerate(engine.snapshot.chunks)
                   if chunk.source == source and (number == 0 or part(row) == number))
        citations.append(engine.passage(row, 1.0).as_citation(len(citations) + 1))
    return Answer("q", True, " ".join(f"{c.text} [{c.n}]" for c in citations), tuple(citations),
                  tuple(c.passage for c in citations), 0.9, "q")


async def test_each_source_shows_its_place_and_metadata_in_one_dim_line(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("report.pdf", "slides.pptx", "harbour.mbox", "book.epub", "dredging.eml"):
        shutil.copy(FORMATS / name, corpus / name)
    shutil.copy(Path(__file__).parent.parent / "seeds" / "000_5d4c552fcafd00ce.txt",
                corpus / "news.txt")
    engine = Engine(corpus, tmp_path / "index", FakeEmbedder())
    engine.sync()
    answer = answer_citing(engine, {"book.epub": 2, "harbour.mbox": 2, "slides.pptx": 2,
                                    "report.pdf": 0, "dredging.eml": 0, "news.txt": 0})
    engine.ask = lambda question, history=(): answer
    app = create_app(engine, watch=False)
    async with app.run_test(size=(220, 80)) as pilot:
        await settle(pilot)
        await ask(pilot, "Anything?")
        lines = {view.citations[0].source: view.render().plain.split("\n")[:2]
                 for view in app.screen.query(CitationView)}
        assert lines["book.epub"][1] == "chapter 2 (The Merchant) · The Salt Road · Helga Vik · 2021-09-01"
        assert lines["harbour.mbox"][1] == \
            "message 2 (Re: Dredging of the north quay — Jørgen Dahl) · 2025-03-04"
        # The slide's title shortened, to keep the deck's title, author and date on the line.
        assert lines["slides.pptx"][1].startswith("slide 2 (Why restore")
        assert "…) · Lighthouse Restoration Project · Tomas Eriksen · 20" in lines["slides.pptx"][1]
        assert lines["report.pdf"][1].startswith("page 1")
        # The e-mail's passage opens with its subject, the title: not said twice.
        assert lines["dredging.eml"][1] == "Anna Berg · 2025-03-03"
        assert lines["book.epub"][0] == "[1] book.epub, line " + str(answer.citations[0].line)
        # A plain text file states none of it: no line under its name.
        assert lines["news.txt"][1] in answer.citations[-1].passage.text
        details = next(v for v in app.screen.query(CitationView)
                       if v.citations[0].source == "book.epub")
        styles = {str(span.style) for span in details.render().spans
                  if span.start == len(lines["book.epub"][0]) + 1}
        assert any("dim" in style for style in styles)
        # In a narrow panel the line is cut short, never wrapped.
        await pilot.resize_terminal(100, 40)
        await pilot.pause(0.2)
        shown = details.render().plain.split("\n")[1]
        assert shown.endswith("…") and len(shown) <= details.size.width
        mailbox = next(v for v in app.screen.query(CitationView)
                       if v.citations[0].source == "harbour.mbox")
        shown = mailbox.render().plain.split("\n")[1]
        assert shown.startswith("message 2 (Re: ") and shown.endswith("…) · 2025-03-04")
        assert len(shown) <= mailbox.size.width


async def test_a_passage_that_opens_with_the_documents_title_does_not_show_it_twice(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "lib.md").write_text("# Library hours\n\nThe library opens at 9 and closes at 18 on "
                                   "weekdays. On Saturdays it closes at 13.\n", encoding="utf-8")
    (corpus / "guide.md").write_text("# Opening times\n\nSee the desk.\n\n" + "Filler sentence here. " * 80
                                     + "\n\n## Weekends\n\nOn Sundays the library is shut.\n",
                                     encoding="utf-8")
    engine = Engine(corpus, tmp_path / "index", FakeEmbedder())
    engine.sync()
    later = max(row for row, chunk in enumerate(engine.snapshot.chunks) if chunk.source == "guide.md")
    first = next(row for row, chunk in enumerate(engine.snapshot.chunks) if chunk.source == "lib.md")
    citations = [engine.passage(first, 1.0).as_citation(1), engine.passage(later, 1.0).as_citation(2)]
    answer = Answer("q", True, " ".join(f"{c.text} [{c.n}]" for c in citations), tuple(citations),
                    tuple(c.passage for c in citations))
    engine.ask = lambda question, history=(): answer
    app = create_app(engine, watch=False)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await ask(pilot, "When does it close?")
        lines = {view.citations[0].source: view.render().plain.split("\n")[:2]
                 for view in app.screen.query(CitationView)}
        assert lines["lib.md"][1].lstrip("# ") == "Library hours"  # the passage's own heading
        assert "Library hours" not in lines["lib.md"][1].replace("# Library hours", "")
        # A later passage of a titled document still says which document it is from.
        assert lines["guide.md"][1] == "Opening times"
