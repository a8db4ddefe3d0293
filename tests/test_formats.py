"""Formats a user's folder really holds: HTML pages, PDFs, Markdown notes, text in old encodings.

Every file is made here. The fast tests index with the fake embedder; the new-user test at the end
runs the real `qa` commands with the bundled model on a mixed folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FakeEmbedder
from qa.engine import Engine
from qa.ingest.readers import SkipFile, decode_text, read_document, unwrap_lines

# -- files made for the tests ---------------------------------------------------------------------


def make_pdf(pages: list[list[str]]) -> bytes:
    """A minimal valid PDF: one Helvetica text stream per page, one printed line per string."""

    def escape(line: str) -> str:
        return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, lines in enumerate(pages):
        stream = ("BT /F1 11 Tf 14 TL 72 760 Td\n"
                  + "".join(f"({escape(line)}) Tj T*\n" for line in lines) + "ET").encode("cp1252")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources "
                       f"<< /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


NEWS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Council approves harbour footbridge | The Coastal Herald</title>
<script>window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);}
gtag('config', 'UA-000000-1'); var trackingPixelLoaded = true;</script>
<style>body { font-family: Georgia, serif; } .cookie-consent { position: fixed; }</style>
</head>
<body>
<div id="cookie-banner" class="cookie-consent">
  <p>We use cookies to improve your experience and to show personalised advertising.
  By continuing to browse you accept our cookie policy.</p>
  <button>Accept all cookies</button> <button>Manage preferences</button>
</div>
<header>
  <a href="/">The Coastal Herald</a>
  <nav><ul><li><a href="/news">News</a></li><li><a href="/sport">Sport</a></li>
  <li><a href="/weather">Weather</a></li><li><a href="/subscribe">Subscribe today</a></li></ul></nav>
</header>
<main>
<article>
  <h1>Council approves harbour footbridge</h1>
  <p>The city council voted on Tuesday to approve the construction of a pedestrian footbridge across
  the old harbour, ending a debate that lasted almost ten years.</p>
  <p>The footbridge will cost 48 million euros and is expected to open in the spring of 2027. It
  will connect the railway station with the museum district on the eastern quay.</p>
  <p>Mayor Johan Berg said the footbridge would cut the walk from the station to the museums from
  twenty-five minutes to eight. Opponents argued that the money should have gone to schools.</p>
  <p>Construction will be carried out by a consortium of two local firms, and the steel will be
  rolled in a foundry in the north of the country.</p>
</article>
</main>
<aside><h3>Most read</h3><ul><li><a href="/a">Storm closes ferry lines</a></li></ul></aside>
<footer>
  <p>Copyright 2024 The Coastal Herald. All rights reserved.</p>
  <p><a href="/privacy">Privacy policy</a> | <a href="/terms">Terms of use</a></p>
</footer>
<script src="/static/app.js"></script>
<script>document.getElementById('cookie-banner').style.display = 'block'; trackPageView();</script>
</body>
</html>
"""

# A report whose paragraphs wrap across printed lines, with a page number at the foot of each page.
PDF_PAGES = [
    ["Annual report of the Lakeside Rowing Club",
     "The Lakeside Rowing Club was founded in 1921 by twelve dock workers who",
     "wanted a place to row on the lake after their shifts, and they built the",
     "first wooden boathouse with their own hands.",
     "1"],
    ["Membership",
     "Membership grew to 340 rowers in the last season, the highest number in",
     "the long history of the club, thanks to a new programme for schools.",
     "2"],
    ["Finances",
     "The treasurer reported that the new carbon racing shells were paid for by",
     "a grant from the regional sports foundation and by donations from former members.",
     "3"],
]

MARKDOWN_NOTE = """# Garden notes

## Tomatoes

- Sow the tomato seeds indoors in early March, about six weeks before the last frost.
- Water the seedlings from below so that the leaves stay dry.

The greenhouse thermometer broke in April, so I bought a digital one with a minimum and maximum memory.

## Compost

Turn the compost heap every two weeks; it was ready after four months this year.
"""

LATIN1_TEXT = ("Café history\n\nThe café on the corner opened in 1952 and was run by Renée Dubois "
               "for forty years.\r\nIts famous crème brûlée was made with vanilla from Madagascar.\n")
CP1252_TEXT = ("The bakery’s “sourdough” costs €4 a loaf – and the baker says it rises for "
               "eighteen hours before baking.\n")
UTF16_TEXT = ("Der Bergführer erklärte, dass die Hütte auf 2450 Metern über dem Meer liegt.\n"
              "The mountain guide said that the hut lies 2450 metres above sea level.\n")


def write_mixed_corpus(folder: Path) -> Path:
    """A folder like a user's: a saved web page, a PDF, a note and texts in old encodings."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "harbour-news.html").write_text(NEWS_PAGE, encoding="utf-8")
    (folder / "rowing-report.pdf").write_bytes(make_pdf(PDF_PAGES))
    (folder / "garden-notes.md").write_text(MARKDOWN_NOTE, encoding="utf-8")
    (folder / "cafe-latin1.txt").write_bytes(LATIN1_TEXT.encode("latin-1"))
    (folder / "bakery-cp1252.txt").write_bytes(CP1252_TEXT.encode("cp1252"))
    (folder / "hut-utf16.txt").write_bytes(UTF16_TEXT.encode("utf-16"))  # with a BOM
    return folder


@pytest.fixture
def mixed_engine(tmp_path):
    corpus = write_mixed_corpus(tmp_path / "corpus")
    engine = Engine(corpus, tmp_path / "index", FakeEmbedder())
    warnings = []
    engine.sync(warn=lambda source, reason: warnings.append((source, reason)))
    assert warnings == []
    return engine


@pytest.fixture
def fake_cli(monkeypatch, capsys):
    """``qa`` run in-process with the fake embedder: returns (exit code, stdout, stderr)."""
    import qa.engine
    from qa.cli import main

    monkeypatch.setattr(qa.engine, "MiniLMEmbedder", FakeEmbedder)
    monkeypatch.delenv("QA_CORPUS", raising=False)
    monkeypatch.delenv("QA_INDEX", raising=False)

    def run(*args) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def run_qa(*args, stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real entry point, as a user types it."""
    env = {**os.environ, "PYTHONUTF8": "1"}
    env.pop("QA_CORPUS", None)
    env.pop("QA_INDEX", None)
    return subprocess.run([sys.executable, "-m", "qa", *map(str, args)], input=stdin,
                          capture_output=True, text=True, timeout=timeout, env=env)


# -- HTML ----------------------------------------------------------------------------------------


def test_html_keeps_the_article_and_drops_page_furniture(tmp_path):
    page = tmp_path / "news.html"
    page.write_text(NEWS_PAGE, encoding="utf-8")
    extracted = read_document(page)
    assert extracted.format == "html"
    assert "footbridge will cost 48 million euros" in extracted.text
    assert "rolled in a foundry in the north of the country." in extracted.text
    for furniture in ("cookie", "Accept all", "Subscribe", "Weather", "gtag", "trackPageView",
                      "dataLayer", "font-family", "Privacy policy", "All rights reserved",
                      "Most read", "Storm closes"):
        assert furniture not in extracted.text, furniture


def test_html_declared_charset_is_honoured(tmp_path):
    page = tmp_path / "old.htm"
    body = ("<html><head><meta http-equiv='Content-Type' content='text/html; charset=iso-8859-1'>"
            "</head><body><article><p>Le café de la gare a fermé ses portes après soixante ans de "
            "service, a annoncé la mairie jeudi.</p></article></body></html>")
    page.write_bytes(body.encode("latin-1"))
    assert "Le café de la gare a fermé" in read_document(page).text


def test_tiny_html_falls_back_to_its_text(tmp_path):
    page = tmp_path / "tiny.html"
    page.write_text("<html><body><nav>Home</nav><p>Only one short sentence here.</p>"
                    "<script>alert(1)</script></body></html>", encoding="utf-8")
    text = read_document(page).text
    assert "Only one short sentence here." in text
    assert "alert" not in text


def test_html_without_text_is_skipped(tmp_path):
    page = tmp_path / "blank.html"
    page.write_text("<html><head><script>var x = 1;</script></head><body></body></html>")
    with pytest.raises(SkipFile):
        read_document(page)


# -- PDF -----------------------------------------------------------------------------------------


def test_pdf_text_per_page_with_page_starts(tmp_path):
    path = tmp_path / "report.pdf"
    path.write_bytes(make_pdf(PDF_PAGES))
    extracted = read_document(path)
    assert extracted.format == "pdf"
    assert len(extracted.page_starts) == 3
    text, starts = extracted.text, extracted.page_starts
    pages = [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)])]
    assert pages[0].startswith("Annual report of the Lakeside Rowing Club")
    assert pages[1].startswith("Membership")
    assert pages[2].startswith("Finances")
    # Wrapped lines are joined, so a sentence is one line and not mistaken for headings.
    assert ("The Lakeside Rowing Club was founded in 1921 by twelve dock workers who wanted a place "
            "to row on the lake after their shifts, and they built the first wooden boathouse "
            "with their own hands.") in pages[0]
    assert "Membership grew to 340 rowers in the last season, the highest number in the long" \
        in pages[1]


def test_unwrap_lines_keeps_headings_and_short_last_lines_apart():
    page = ("Results\n"
            "The committee met on Monday and decided after a long discussion that the\n"
            "old pier will be repaired rather than replaced.\n"
            "A second paragraph starts here and runs on for a while until the line\n"
            "is full.\n"
            "7\n")
    assert unwrap_lines(page).split("\n") == [
        "Results",
        "The committee met on Monday and decided after a long discussion that the old pier will "
        "be repaired rather than replaced.",
        "A second paragraph starts here and runs on for a while until the line is full.",
        "7",
    ]


def test_damaged_pdf_is_skipped(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R >>\nendobj\ngarbage\x00\xff")
    with pytest.raises(SkipFile):
        read_document(path)


def test_pdf_citations_carry_the_page(mixed_engine):
    text = mixed_engine.document_text("rowing-report.pdf")
    answer = mixed_engine.ask("Membership grew to how many rowers last season?")
    assert answer.found, answer.text
    first = answer.citations[0]
    assert first.source == "rowing-report.pdf"
    assert "340 rowers" in first.text
    assert first.text == text[first.start:first.end]
    assert first.page == 2
    assert first.to_json()["page"] == 2
    passages = mixed_engine.search("carbon racing shells grant regional sports foundation", k=3)
    top = passages[0]
    assert (top.source, top.page) == ("rowing-report.pdf", 3)
    assert top.to_json()["page"] == 3
    assert top.text == text[top.start:top.end]


def test_text_formats_have_no_page(mixed_engine):
    for passage in mixed_engine.search("tomato seeds sow indoors March", k=3):
        if passage.source != "rowing-report.pdf":
            assert passage.page is None
            assert "page" not in passage.to_json()


# -- Markdown and encodings ---------------------------------------------------------------------


def test_markdown_offsets_point_into_the_file(mixed_engine):
    path = mixed_engine.corpus / "garden-notes.md"
    answer = mixed_engine.ask("When should tomato seeds be sown indoors?")
    assert answer.found, answer.text
    citation = answer.citations[0]
    assert citation.source == "garden-notes.md"
    assert "early March" in citation.text
    assert open(path, encoding="utf-8").read()[citation.start:citation.end] == citation.text


WRAPPED_NOTE = """# Board meeting

The board met on Thursday to discuss the budget for the coming year and
agreed to move the annual picnic from June to September because of the
heat last summer. The treasurer will send the new figures by Friday.

Home
Contact
"""


def test_hard_wrapped_paragraphs_are_content(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "board.md").write_text(WRAPPED_NOTE)
    (corpus / "other.txt").write_text("An unrelated note about the weather in the mountains.\n")
    engine = Engine(corpus, tmp_path / "index", FakeEmbedder())
    engine.sync()
    chunks = [c for c in engine.snapshot.chunks if c.source == "board.md"]
    indexed = " ".join(engine.snapshot.chunk_text(c) for c in chunks)
    assert "discuss the budget for the coming year" in indexed  # the first wrapped line
    assert "annual picnic from June to September" in indexed
    assert "Home" not in indexed  # the menu after the last paragraph
    assert "Board meeting" in indexed and chunks[0].heading == "Board meeting"
    [top] = engine.search("picnic moved from June to September", k=1)
    assert top.source == "board.md"
    assert top.text == WRAPPED_NOTE[top.start:top.end]
    # A sentence runs across the wrapped line breaks, so an answer cites it whole.
    first = WRAPPED_NOTE.index("The board met")
    assert (first, WRAPPED_NOTE.index("heat last summer.") + len("heat last summer.")) \
        in top.sentences
    answer = engine.ask("Why was the annual picnic moved from June to September?")
    assert answer.found and answer.citations[0].text.startswith("The board met on Thursday")
    assert answer.citations[0].text == WRAPPED_NOTE[answer.citations[0].start:answer.citations[0].end]


@pytest.mark.parametrize("original, encoding", [
    (LATIN1_TEXT, "latin-1"),
    (CP1252_TEXT, "cp1252"),
    (UTF16_TEXT, "utf-16"),
    (UTF16_TEXT, "utf-16-be-bom"),
    (UTF16_TEXT, "utf-8-sig"),
    ("Plain UTF-8 text: naïve café, 東京, emoji 🙂.\r\nSecond line.\n", "utf-8"),
])
def test_encodings_are_detected(original, encoding):
    if encoding == "utf-16-be-bom":
        data = b"\xfe\xff" + original.encode("utf-16-be")
    else:
        data = original.encode(encoding)
    text, _ = decode_text(data)
    # A UTF-8 BOM stays (as U+FEFF) so offsets index what `open(path).read()` gives.
    kept = "\ufeff" if encoding == "utf-8-sig" else ""
    assert text == kept + original.replace("\r\n", "\n")


def test_utf8_bom_file_offsets_index_what_python_reads(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notepad.txt").write_bytes(
        "The quillberry harvest began on Monday in the northern valley.\r\n\r\n"
        "Farmers expect a record crop.\r\n".encode("utf-8-sig"))
    engine = Engine(corpus, tmp_path / "index", FakeEmbedder())
    engine.sync()
    answer = engine.ask("When did the quillberry harvest begin?")
    assert answer.found
    on_disk = (corpus / "notepad.txt").read_text(encoding="utf-8")
    for citation in answer.citations:
        assert on_disk[citation.start:citation.end] == citation.text
        assert not citation.text.startswith("\ufeff")
    assert answer.citations[0].start == 1


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_text_not_binary(encoding):
    # Some Windows tools save "Unicode" text with no BOM; every other byte is then zero.
    text, found = decode_text(UTF16_TEXT.encode(encoding))
    assert (text, found) == (UTF16_TEXT.replace("\r\n", "\n"), encoding)


def test_sixteen_bit_numbers_are_still_binary():
    # Zeros in every other byte, like UTF-16, but the "text" would be control characters.
    data = bytes(b for n in range(2000) for b in ((n * 7) % 32, 0))
    with pytest.raises(SkipFile, match="binary"):
        decode_text(data)


def test_latin1_byte_undefined_in_cp1252_still_decodes():
    # 0x81 and 0x8d have no cp1252 character, so this can only be latin-1.
    text, encoding = decode_text("Grüße aus Köln, wie immer.\n".encode("latin-1") + b"\x81\x8d\n")
    assert encoding == "latin-1"
    assert text.startswith("Grüße aus Köln")


@pytest.mark.parametrize("source, question, expected", [
    ("cafe-latin1.txt", "Who ran the café on the corner?", "Renée Dubois"),
    ("bakery-cp1252.txt", "How much does the sourdough loaf cost at the bakery?", "€4"),
    ("hut-utf16.txt", "How high above sea level is the mountain hut?", "2450 metres"),
])
def test_old_encodings_are_answered_with_exact_offsets(mixed_engine, source, question, expected):
    text = mixed_engine.document_text(source)
    raw = (mixed_engine.corpus / source).read_bytes()
    answer = mixed_engine.ask(question)
    assert answer.found, answer.text
    cited = [c for c in answer.citations if c.source == source]
    assert cited, [c.source for c in answer.citations]
    assert any(expected in c.text for c in cited)
    for c in cited:
        assert c.text == text[c.start:c.end]
        assert c.page is None
    # The offsets index the decoded text, newlines as Python's text mode reads them.
    assert text == decode_text(raw)[0]


def test_converted_formats_are_shown_as_indexed(tmp_path, mixed_engine, fake_cli):
    corpus, index = mixed_engine.corpus, mixed_engine.index_dir
    for source in ("harbour-news.html", "rowing-report.pdf", "hut-utf16.txt"):
        text = mixed_engine.document_text(source)
        code, out, err = fake_cli("show", source, "--corpus", corpus, "--index", index)
        assert (code, err) == (0, "")
        assert out.rstrip("\n") == text.rstrip("\n")
        start = text.index("2450" if source == "hut-utf16.txt" else " ") + 1
        code, out, _ = fake_cli("show", source, "--start", start, "--end", start + 20,
                                "--corpus", corpus, "--index", index)
        assert out == text[start:start + 20] + ("" if text[start:start + 20].endswith("\n") else "\n")
    code, _, err = fake_cli("show", "rowing-report.pdf", "--start", 5, "--end", 10**6,
                            "--corpus", corpus, "--index", index)
    assert code == 1 and err.startswith("qa: ") and err.count("\n") == 1
    code, _, err = fake_cli("show", "nope.txt", "--corpus", corpus, "--index", index)
    assert code == 1 and "nope.txt" in err and err.count("\n") == 1
    # The file's own path (as a shell completes it) names the same document.
    code, out, err = fake_cli("show", corpus / "hut-utf16.txt", "--corpus", corpus, "--index", index)
    assert (code, err) == (0, "") and out.rstrip("\n") == mixed_engine.document_text("hut-utf16.txt").rstrip("\n")


# -- as a new user: the real commands and the real model --------------------------------------


@pytest.mark.model
def test_new_user_mixed_folder_end_to_end(tmp_path):
    corpus = write_mixed_corpus(tmp_path / "docs")
    (corpus / "photo-backup.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(4000))
    (corpus / "empty.txt").write_bytes(b"")
    index = tmp_path / "idx"

    built = run_qa("index", "--corpus", corpus, "--index", index)
    assert built.returncode == 0, built.stderr
    warnings = [line for line in built.stderr.splitlines() if line.startswith("qa: warning")]
    assert len(warnings) == 2, built.stderr
    assert any("photo-backup.txt" in w and "binary" in w for w in warnings)
    assert any("empty.txt" in w and "empty" in w for w in warnings)
    assert "Traceback" not in built.stderr
    assert "6 documents" in built.stdout

    questions = {
        "How much will the harbour footbridge cost?": ("harbour-news.html", "48 million euros"),
        "When was the Lakeside Rowing Club founded?": ("rowing-report.pdf", "1921"),
        "When should tomato seeds be sown indoors?": ("garden-notes.md", "early March"),
        "Who ran the café on the corner for forty years?": ("cafe-latin1.txt", "Renée Dubois"),
        "How high above sea level does the mountain hut lie?": ("hut-utf16.txt", "2450"),
    }
    # Odd questions ride in the same run (one model load): each gets an answer or a clear message.
    odd = ["[bold red]footbridge[/] [link=https://example.com]cost[/link]", "🚣 🌉 ❓",
           "?!?... ;;; ---", "harbour footbridge " * 530]
    # One conversation per question: an empty line between them starts a new one.
    asked = run_qa("ask", "--json", "-", "--corpus", corpus, "--index", index,
                   stdin="\n\n".join([*questions, *odd]) + "\n")
    assert asked.returncode == 0, asked.stderr
    assert "Traceback" not in asked.stderr
    answers = [json.loads(line) for line in asked.stdout.splitlines()]
    assert [a["question"] for a in answers] == [*questions, *(" ".join(q.split()) for q in odd)]
    for answer in answers[len(questions):]:
        assert answer["answer"].strip()
        for c in answer["citations"]:
            assert (corpus / c["source"]).is_file()

    # What `qa show` prints, read in-process here (the engine does not load the model for it).
    indexed = Engine.open(corpus, index)
    for answer in answers[:len(questions)]:
        source, expected = questions[answer["question"]]
        assert answer["found"], answer
        ours = [c for c in answer["citations"] if c["source"] == source]
        assert ours and any(expected in c["text"] for c in ours), answer
        for c in answer["citations"]:
            assert indexed.document_text(c["source"])[c["start"]:c["end"]] == c["text"]
        if source == "rowing-report.pdf":
            assert ours[0]["page"] == 1
        else:
            assert "page" not in ours[0]
        if source == "garden-notes.md":
            raw = (corpus / source).read_text(encoding="utf-8")
            assert raw[ours[0]["start"]:ours[0]["end"]] == ours[0]["text"]
    # `qa show` prints the extracted text; with --start/--end exactly the cited span.
    c = next(c for a in answers for c in a["citations"] if c["source"] == "harbour-news.html")
    whole = run_qa("show", c["source"], "--corpus", corpus, "--index", index)
    assert whole.returncode == 0, whole.stderr
    assert whole.stdout[c["start"]:c["end"]] == c["text"]
    span = run_qa("show", c["source"], "--start", c["start"], "--end", c["end"],
                  "--corpus", corpus, "--index", index)
    assert span.stdout == c["text"] + "\n"
