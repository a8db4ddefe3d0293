"""Word, OpenDocument, RTF, PowerPoint, EPUB, mail, notebooks, reStructuredText and tables, read
from files the real tools wrote (tests/fixtures/formats, see its README), and their damaged,
password-protected and scanned variants."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import FakeEmbedder
from qa.engine import Engine
from qa.errors import SkipFile
from qa.ingest.readers import read_document, read_document_bytes
from test_formats import fake_cli  # noqa: F401  (a fixture)

FIXTURES = Path(__file__).parent / "fixtures" / "formats"
READABLE = ["report.docx", "report.odt", "report.rtf", "slides.pptx", "book.epub",
            "dredging.eml", "harbour.mbox", "notebook.ipynb", "guide.rst", "ports.csv",
            "ports.tsv", "report.pdf"]
LOCKED = ["locked.docx", "locked.odt", "locked.pptx", "locked.pdf"]


def blocks_of(extracted) -> list[tuple[str, int, str]]:
    return [(b.kind, b.level, extracted.text[b.start:b.end]) for b in extracted.blocks]


# -- structure ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["report.docx", "report.odt", "report.rtf"])
def test_word_processor_files_keep_headings_items_and_rows(name):
    extracted = read_document(FIXTURES / name)
    blocks = blocks_of(extracted)
    assert blocks[0] == ("heading", 1, "Harbour Ferry Annual Report 2024")
    assert ("heading", 2, "Fleet") in blocks and ("heading", 2, "Timetable") in blocks
    assert ("item", 1, "- Solveig: electric, 150 passengers") in blocks
    assert ("row", 0, "North quay to Island pier | 06:10 | 23:40") in blocks
    assert extracted.title == "Harbour Ferry Annual Report 2024"
    # Blocks are apart by a blank line; the rows of one table and the items of one list by a
    # line break.
    assert "twenty.\n\nWinter" not in extracted.text
    assert "- Solveig: electric, 150 passengers\n- Tora: diesel, 120 passengers" in extracted.text
    assert "Fleet\n\nThe oldest boat" in extracted.text
    if name != "report.rtf":  # RTF's metadata is not read
        assert extracted.author == "Ingrid Solberg"


def test_slides_are_headed_and_located():
    extracted = read_document(FIXTURES / "slides.pptx")
    blocks = blocks_of(extracted)
    headings = [text for kind, level, text in blocks if kind == "heading" and level == 1]
    assert headings == ["Slide 1: Lighthouse Restoration Project",
                        "Slide 2: Why restore the lighthouse", "Slide 3: Budget", "Slide 4: Schedule"]
    assert ("row", 0, "Lantern glass | 310,000 kroner") in blocks
    assert ("item", 1, "- Storms in 2022 cracked the lantern room glass") in blocks
    # Speaker notes are read, under their slide.
    notes = blocks.index(("heading", 2, "Notes"))
    assert blocks[notes + 1][2].startswith("Remind the board that the county listed")
    assert [(loc.kind, loc.number, loc.label) for loc in extracted.locators] == [
        ("slide", 1, "Lighthouse Restoration Project"), ("slide", 2, "Why restore the lighthouse"),
        ("slide", 3, "Budget"), ("slide", 4, "Schedule")]
    for locator, heading in zip(extracted.locators, headings):
        assert extracted.text[locator.start:].startswith(heading)
    assert (extracted.title, extracted.author) == ("Lighthouse Restoration Project", "Tomas Eriksen")


def test_book_chapters_are_located_by_the_table_of_contents():
    extracted = read_document(FIXTURES / "book.epub")
    assert [(loc.number, loc.label) for loc in extracted.locators] == [
        (1, "The Quarry"), (2, "The Merchant"), (3, "The Return")]
    assert extracted.text[extracted.locators[1].start:].startswith("The Merchant\n\nAnders Holm")
    assert ("heading", 2, "His ledger") in blocks_of(extracted)
    assert (extracted.title, extracted.author, extracted.date) == ("The Salt Road", "Helga Vik",
                                                                   "2021-09-01")


def test_a_mailbox_is_one_document_with_a_locator_per_message():
    extracted = read_document(FIXTURES / "harbour.mbox")
    assert [(loc.number, loc.label, loc.date[:10]) for loc in extracted.locators] == [
        (1, "Dredging of the north quay — Anna Berg", "2025-03-03"),
        (2, "Re: Dredging of the north quay — Jørgen Dahl", "2025-03-04"),
        (3, "Summer timetable — Anna Berg", "2025-06-20")]
    # formail escaped a body line starting with "From "; it is read as written.
    assert "\nFrom 1 July the last ferry leaves" in extracted.text
    assert ">From" not in extracted.text
    assert extracted.date.startswith("2025-06-20")  # the newest message


def test_an_email_is_titled_by_subject_and_sender():
    extracted = read_document(FIXTURES / "dredging.eml")
    assert extracted.title == "Dredging of the north quay — Anna Berg"
    assert (extracted.author, extracted.date) == ("Anna Berg", "2025-03-03T09:14:27+01:00")
    assert "From: Anna Berg <anna.berg@example.org>" in extracted.text
    assert "The contractor, Nordvik Marine, quoted 2.3 million kroner" in extracted.text
    assert "<html" not in extracted.text and extracted.text.count("Nordvik Marine") == 1


def test_notebook_cells_without_outputs():
    extracted = read_document(FIXTURES / "notebook.ipynb")
    blocks = blocks_of(extracted)
    assert blocks[0] == ("heading", 1, "Tide gauge analysis")
    assert ("heading", 2, "Highest tide") in blocks
    assert any(kind == "code" and "pd.read_csv" in text for kind, _, text in blocks)
    assert "UNIQUEOUTPUTMARKER" not in extracted.text and "412.0" not in extracted.text


def test_restructured_text_is_rendered_by_docutils():
    extracted = read_document(FIXTURES / "guide.rst")
    blocks = blocks_of(extracted)
    assert blocks[0] == ("heading", 1, "Boathouse guide")
    assert ("heading", 2, "Safety rules") in blocks
    assert ("item", 1, "- Boats must be back before sunset.") in blocks
    assert ("code", 0, "safe --code 4471 --open") in blocks
    assert "====" not in extracted.text and "::" not in extracted.text


@pytest.mark.parametrize("name", ["ports.csv", "ports.tsv"])
def test_table_rows_name_their_columns(name):
    blocks = blocks_of(read_document(FIXTURES / name))
    assert blocks[0] == ("row", 0, "Port | Country | Berths | Opened")
    assert ("row", 0, "Port: Hamnö | Country: Sweden | Berths: 22 | Opened: 1898") in blocks
    assert len(blocks) == 5


def test_semicolon_separated_csv():
    text = "Name;City;Founded\nSjøbua;Lindvik;1931\n".encode()
    blocks = blocks_of(read_document_bytes(text, "csv"))
    assert blocks[1] == ("row", 0, "Name: Sjøbua | City: Lindvik | Founded: 1931")


# -- what cannot be read ----------------------------------------------------------------------------


@pytest.mark.parametrize("name, kind", [("report.docx", "docx"), ("report.odt", "odt"),
                                        ("slides.pptx", "pptx"), ("book.epub", "epub")])
def test_a_cut_short_archive_is_skipped_as_damaged(name, kind):
    data = (FIXTURES / name).read_bytes()
    with pytest.raises(SkipFile, match=rf"^damaged \.{kind} file \(not a readable zip archive\)$"):
        read_document_bytes(data[:len(data) // 2], kind)


@pytest.mark.parametrize("kind, other", [("docx", "book.epub"), ("pptx", "report.docx"),
                                         ("odt", "report.docx"), ("epub", "slides.pptx")])
def test_another_zip_archive_is_not_taken_for_the_format(kind, other):
    with pytest.raises(SkipFile, match=rf"^not a \.{kind} file \(a zip archive without "):
        read_document_bytes((FIXTURES / other).read_bytes(), kind)


def test_an_archive_that_would_unpack_too_large_is_not_read(monkeypatch):
    from qa.ingest import office

    monkeypatch.setattr(office, "MAX_UNPACKED_BYTES", 10_000)
    with pytest.raises(SkipFile, match="^unpacks to more than"):
        read_document(FIXTURES / "report.docx")


@pytest.mark.parametrize("kind, data, reason", [
    ("rtf", b"This was never RTF, just text with a .rtf name.", "damaged RTF document"),
    ("notebook", (FIXTURES / "notebook.ipynb").read_bytes()[:300], "damaged notebook (not JSON"),
    ("notebook", b'["a list, not a notebook"]', "not a Jupyter notebook"),
    ("mbox", b"Subject: no From_ line\n\nJust one message without an envelope.\n", "not a mailbox"),
    ("email", b"Dear board, this note lost its headers on the way.\n", "not an e-mail"),
    ("csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01", "binary file"),
    ("pdf", (FIXTURES / "report.pdf").read_bytes()[:2000], "unreadable PDF"),
])
def test_other_damaged_files_say_why(kind, data, reason):
    with pytest.raises(SkipFile) as caught:
        read_document_bytes(data, kind)
    assert str(caught.value).startswith(reason), str(caught.value)


@pytest.mark.parametrize("name", LOCKED)
def test_password_protected_files_are_skipped_as_encrypted(name):
    with pytest.raises(SkipFile, match="encrypted") as caught:
        read_document(FIXTURES / name)
    assert "password-protected" in str(caught.value)


def test_a_pdf_with_only_restrictions_is_read(tmp_path):
    # An owner password and no user password: readers open it without asking (AES-256).
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(FIXTURES / "report.pdf"))
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-256")
    path = tmp_path / "restricted.pdf"
    writer.write(path)
    assert "412,000 passengers" in read_document(path).text


def test_a_scan_without_tesseract_says_ocr_would_read_it(monkeypatch):
    from qa.ingest import ocr

    monkeypatch.setattr(ocr, "tesseract", lambda: None)
    with pytest.raises(SkipFile) as caught:
        read_document(FIXTURES / "scanned.pdf")
    assert str(caught.value) == ("no text layer (a scanned PDF?); OCR would read it: install "
                                 "tesseract (apt-get install tesseract-ocr)")


@pytest.mark.skipif(shutil.which("tesseract") is None,
                    reason="tesseract is not installed (optional: apt-get install tesseract-ocr)")
def test_a_scan_is_read_by_ocr_when_tesseract_is_installed():
    extracted = read_document(FIXTURES / "scanned.pdf")
    assert extracted.page_starts == (0,)
    assert "harbour ferry carried 412,000 passengers in 2024" in extracted.text


# -- indexed and asked ------------------------------------------------------------------------------


@pytest.fixture
def office_corpus(tmp_path) -> Path:
    corpus = tmp_path / "office"
    corpus.mkdir()
    for name in READABLE + LOCKED:
        shutil.copy(FIXTURES / name, corpus / name)
    data = (FIXTURES / "report.docx").read_bytes()
    (corpus / "damaged.docx").write_bytes(data[:len(data) // 2])
    return corpus


def test_every_format_is_indexed_and_the_bad_ones_listed(office_corpus, tmp_path, fake_cli):
    index = tmp_path / "index"
    code, out, err = fake_cli("index", "--corpus", office_corpus, "--index", index)
    assert code == 0, err
    warnings = err.splitlines()
    assert sorted(warnings) == sorted([
        "qa: warning: skipped damaged.docx: damaged .docx file (not a readable zip archive)",
        *(f"qa: warning: skipped {name}: encrypted (password-protected); save it without a "
          "password to index it" for name in ("locked.docx", "locked.odt", "locked.pptx")),
        "qa: warning: skipped locked.pdf: encrypted PDF (password-protected)"])
    code, out, _ = fake_cli("stats", "--corpus", office_corpus, "--index", index)
    assert f"documents    {len(READABLE)} (5 skipped)" in out
    assert "skipped      locked.pdf: encrypted PDF (password-protected)" in out.splitlines()
    assert "skipped      damaged.docx: damaged .docx file (not a readable zip archive)" in out
    stats = json.loads(fake_cli("stats", "--json", "--corpus", office_corpus, "--index", index)[1])
    assert stats["skipped_files"]["locked.odt"].startswith("encrypted")
    files = {f["source"]: f for f in stats["files"]}
    assert set(files) == set(READABLE)
    assert files["book.epub"]["title"] == "The Salt Road" and files["book.epub"]["date"] == "2021-09-01"
    assert files["report.docx"]["author"] == "Ingrid Solberg"
    assert files["ports.csv"]["modified"][:4].isdigit() and "title" not in files["ports.csv"]


QUESTIONS = [
    ("When was the oldest boat, the Marit, retired?", "report.docx", "retired in October", None),
    ("What does the lantern glass cost?", "slides.pptx", "Lantern glass | 310,000 kroner", "slide 3"),
    ("When did the last cart travel the salt road?", "book.epub", "in 1902", "chapter 3"),
    ("When does the last ferry leave the island pier in the summer?", "harbour.mbox",
     "00:30 on Fridays", "message 3"),
    ("When was the highest water level of the year measured?", "notebook.ipynb", "21 October", None),
    ("When does the boathouse open?", "guide.rst", "7 in the morning", None),
]


@pytest.mark.parametrize("question, source, quoted, where", QUESTIONS)
def test_answers_cite_converted_text_with_its_locator(office_corpus, tmp_path, question, source,
                                                      quoted, where):
    for name in READABLE:  # one file of each kind answers, so each is asked on its own
        if name != source:
            (office_corpus / name).unlink()
    engine = Engine(office_corpus, tmp_path / "index", FakeEmbedder())
    engine.sync()
    answer = engine.ask(question)
    assert answer.found, answer.text
    first = answer.citations[0]
    assert first.source == source and quoted in first.text
    assert first.text == engine.document_text(source)[first.start:first.end]
    if where is None:
        assert first.locator is None and "locator" not in first.to_json()
    else:
        kind, number = where.split()
        assert (first.locator.kind, first.locator.number) == (kind, int(number))
        assert first.to_json()["locator"]["number"] == int(number)
        passage = engine.search(question, k=1)[0]
        assert passage.locator is not None and passage.to_json()["locator"]["kind"] == kind


def test_the_command_line_names_the_slide(office_corpus, tmp_path, fake_cli):
    index = tmp_path / "index"
    fake_cli("index", "--corpus", office_corpus, "--index", index)
    code, out, _ = fake_cli("ask", "What does the lantern glass cost?", "--corpus", office_corpus,
                            "--index", index)
    assert code == 0
    assert "[1] slides.pptx, line 1" in out and ", slide 3 (Budget) [" in out
    code, out, _ = fake_cli("show", "slides.pptx", "--corpus", office_corpus, "--index", index)
    assert out.startswith("Slide 1: Lighthouse Restoration Project\n\n")


@pytest.mark.model
def test_real_model_answers_from_each_format(office_corpus, tmp_path, real_embedder):
    engine = Engine(office_corpus, tmp_path / "index", real_embedder)
    engine.sync()
    for question, source, quoted, _ in QUESTIONS + [
        ("How many passengers did the harbour ferry carry in 2024?", None, "412,000", None),
        ("How many berths does Hamnö have?", "ports", "Berths: 22", None),
        ("Who quoted 2.3 million kroner for the dredging?", None, "Nordvik Marine", None),
    ]:
        answer = engine.ask(question)
        assert answer.found, (question, answer.text)
        cited = " ".join(c.text for c in answer.citations)
        assert quoted in cited, (question, answer.text)
        if source is not None:  # the report is in four formats: any of them answers
            stem = source.rsplit(".", 1)[0]
            assert answer.citations[0].source.startswith(stem), (question, answer.citations)
