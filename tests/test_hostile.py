"""Hostile input: bad files, huge lines, markup in documents, odd questions, a damaged index.

Nothing a file or a question contains may crash a build, lose the index or style the terminal.
Everything runs with the fake embedder; the real model sees odd questions in test_formats.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest

from conftest import FakeEmbedder
from qa.ingest.boilerplate import content_segments
from qa.ingest.chunking import MAX_CHUNK_CHARS, chunk_segments, default_token_counter
from qa.config import MAX_CHUNK_TOKENS
from qa.ingest.documents import scan_corpus
from qa.engine import Conversation, Engine
from test_formats import fake_cli, make_pdf  # noqa: F401  (fake_cli is a fixture)

GOOD = ("The lighthouse keeper logged every passing ship in a leather book. "
        "In 1893 the keeper recorded a storm that lasted eleven days.\n")


def one_line_messages(err: str) -> list[str]:
    lines = err.splitlines()
    assert "Traceback" not in err
    assert all(line.startswith("qa: ") for line in lines), err
    return lines


# -- bad files ---------------------------------------------------------------------------------


def test_bad_files_are_skipped_with_one_line_each(tmp_path, fake_cli):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    (corpus / "lighthouse.txt").write_text(GOOD)
    (corpus / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(3000))
    noise = bytes(random.Random(1).choice(range(1, 32)) for _ in range(3000))  # no NUL bytes
    (corpus / "noise.md").write_bytes(noise)
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "blank.md").write_bytes(b"  \n\n\t \r\n")
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf\n")
    # Not a bad file: UTF-16 without a byte order mark is read as text.
    (corpus / "utf16-no-bom.txt").write_bytes("The harbour ferry sails at noon.".encode("utf-16-le"))
    (corpus / "notes.docx").write_bytes(b"PK\x03\x04 not really a zip archive")
    (corpus / "sheet.xlsx").write_bytes(b"PK\x03\x04 not a supported type")  # ignored silently
    (corpus / b"caf\xe9.txt".decode("utf-8", "surrogateescape")).write_text(GOOD)
    (corpus / "red\x1b[31m.txt").write_text(GOOD)

    code, out, err = fake_cli("index", "--corpus", corpus, "--index", index)
    assert code == 0
    warnings = one_line_messages(err)
    assert len(warnings) == 8, err
    assert "\x1b" not in err and "utf16-no-bom.txt" not in err
    for name in ("photo.txt", "noise.md", "empty.txt", "blank.md", "broken.pdf", "notes.docx",
                 "caf", "red\u241b[31m.txt"):
        assert sum(name in w for w in warnings) == 1, (name, err)
    assert all(w.startswith("qa: warning: skipped ") for w in warnings)
    assert "sheet.xlsx" not in err
    stats = json.loads(fake_cli("stats", "--json", "--corpus", corpus, "--index", index)[1])
    assert (stats["documents"], stats["skipped"]) == (2, 6)
    code, out, _ = fake_cli("search", "storm keeper eleven days", "--corpus", corpus, "--index", index)
    assert code == 0 and "lighthouse.txt" in out
    code, out, _ = fake_cli("show", "utf16-no-bom.txt", "--corpus", corpus, "--index", index)
    assert code == 0 and out.strip() == "The harbour ferry sails at noon."
    # Nothing changed: the next run says so, still naming the skipped files.
    code, out, err = fake_cli("index", "--corpus", corpus, "--index", index)
    assert code == 0 and "up to date" in out and len(one_line_messages(err)) == 8


def test_a_corpus_of_only_bad_files_is_one_clear_error(tmp_path, fake_cli):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "bin.txt").write_bytes(b"\x00\x01\x02" * 100)
    code, _, err = fake_cli("index", "--corpus", corpus, "--index", tmp_path / "index")
    assert code == 1
    lines = one_line_messages(err)
    assert lines[-1].startswith("qa: ") and "no readable documents" in lines[-1]


def test_damaged_pdf_and_html_files_never_crash_a_read(tmp_path, capfd):
    from qa.ingest.readers import SkipFile, read_document

    from test_formats import NEWS_PAGE, PDF_PAGES

    rng = random.Random(0)
    for i in range(120):
        data = bytearray(make_pdf(PDF_PAGES) if i % 2 == 0 else NEWS_PAGE.encode())
        for _ in range(rng.randint(1, 20)):
            pos = rng.randrange(len(data))
            choice = rng.random()
            if choice < 0.5:
                data[pos] = rng.randrange(256)
            elif choice < 0.8:
                del data[pos:pos + rng.randint(1, 50)]
            else:
                data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
        path = tmp_path / f"mangled-{i}.{'pdf' if i % 2 == 0 else 'html'}"
        path.write_bytes(bytes(data))
        try:
            assert read_document(path).text.strip()
        except SkipFile as exc:
            assert str(exc) and "\n" not in str(exc)
    assert capfd.readouterr().err == ""  # the PDF library's own complaints stay quiet


def test_a_named_pipe_is_not_read(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "note.txt").write_text(GOOD)
    os.mkfifo(corpus / "pipe.txt")  # reading it would block forever
    assert [f.source for f in scan_corpus(corpus, 10**6)] == ["note.txt"]


def test_utf8_with_a_stray_byte_keeps_its_characters():
    from qa.ingest.readers import decode_text

    data = "Grüße aus Köln — naïve café, 東京.\n".encode() + b"one stray caf\xe9 byte\n"
    text, encoding = decode_text(data)
    assert encoding == "utf-8"
    assert text.startswith("Grüße aus Köln — naïve café, 東京.\n")
    assert text.endswith("one stray caf\ufffd byte\n")


def test_notes_the_boilerplate_rules_would_empty_are_still_indexed(tmp_path, fake_cli):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    (corpus / "todo.txt").write_text("buy oat milk\n")  # one short line without a full stop
    (corpus / "copy-1.md").write_text(GOOD)  # the same file twice: every line is "repeated"
    (corpus / "copy-2.md").write_text(GOOD)
    (corpus / "rule.txt").write_text("----\n****\n")  # no word at all: nothing to index
    code, out, err = fake_cli("index", "--corpus", corpus, "--index", index)
    assert code == 0, err
    [warning] = one_line_messages(err)
    assert "rule.txt" in warning and "no text" in warning
    assert "3 documents" in out
    code, out, _ = fake_cli("search", "oat milk", "--corpus", corpus, "--index", index)
    assert "todo.txt" in out
    code, out, _ = fake_cli("search", "lighthouse keeper storm", "--corpus", corpus, "--index", index)
    assert "copy-1.md" in out or "copy-2.md" in out


def test_files_over_the_size_limit_are_skipped(tmp_path, fake_cli):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    (corpus / "small.txt").write_text(GOOD)
    (corpus / "huge.txt").write_text(_words(9000) + ".\n")  # about 50 KB
    code, out, err = fake_cli("index", "--max-file-mb", "0.01", "--corpus", corpus, "--index", index)
    assert code == 0
    [warning] = one_line_messages(err)
    assert "huge.txt" in warning and "0.01 MB" in warning
    assert "1 documents" in out
    # Without the flag (default 50 MB) the file is indexed.
    code, out, err = fake_cli("index", "--corpus", corpus, "--index", index)
    assert code == 0 and err == "" and "2 documents" in out


def test_hidden_folders_and_symlinks_out_of_the_corpus_are_ignored(tmp_path):
    corpus, outside = tmp_path / "corpus", tmp_path / "outside"
    (corpus / ".git" / "objects").mkdir(parents=True)
    (corpus / "sub" / ".cache").mkdir(parents=True)
    outside.mkdir()
    (corpus / "keep.txt").write_text(GOOD)
    (corpus / "sub" / "also.md").write_text("The harbour master keeps the tide tables up to date.\n")
    (corpus / ".git" / "description.txt").write_text("Unnamed repository; edit this file.\n")
    (corpus / ".git" / "objects" / "pack.txt").write_text(GOOD)
    (corpus / "sub" / ".cache" / "page.html").write_text("<p>cached</p>")
    (corpus / ".hidden.txt").write_text(GOOD)
    (outside / "secret.txt").write_text("The vault code is 4417.\n")
    (corpus / "link-out.txt").symlink_to(outside / "secret.txt")
    (corpus / "dir-out").symlink_to(outside, target_is_directory=True)
    (corpus / "link-in.txt").symlink_to(corpus / "keep.txt")
    (corpus / "dangling.txt").symlink_to(tmp_path / "missing.txt")
    (corpus / "loop").symlink_to(corpus, target_is_directory=True)

    # A link inside the corpus would index its target twice; the target is indexed by its name.
    sources = [f.source for f in scan_corpus(corpus, 10**6)]
    assert sources == ["keep.txt", "sub/also.md"]

    engine = Engine(corpus, tmp_path / "index", FakeEmbedder())
    report = engine.sync()
    assert report.documents == 2
    assert engine.search("lighthouse keeper storm", k=5)[0].source == "keep.txt"
    assert all("4417" not in p.text for p in engine.search("vault code", k=10))


# -- long lines and markup ---------------------------------------------------------------------


def _words(n: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    vowels, consonants = "aeiou", "bcdfghklmnprstvz"
    return " ".join(
        "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(1, 4)))
        for _ in range(n)
    )


@pytest.mark.parametrize("line", [
    pytest.param(_words(6000)[:30_000], id="30KB-of-words"),
    pytest.param(" ".join(_words(9000, seed=3).replace(" ", "")[i:i + 97]
                          for i in range(0, 29_700, 97)), id="30KB-of-long-words"),
    pytest.param("z" * 30_000, id="30KB-without-spaces"),
    pytest.param(", ".join(_words(5000).split(" "))[:30_000], id="30KB-of-commas"),
])
def test_a_30kb_line_without_punctuation_becomes_chunks_within_the_limit(tmp_path, line):
    assert len(line) >= 29_900
    text = f"A short title\n\n{line}\n\nThe end of the file is a sentence.\n"
    counter = default_token_counter()
    segments = content_segments(text)
    chunks = chunk_segments(text, segments, counter, MAX_CHUNK_TOKENS)
    body_start = text.index(line)
    body_end = body_start + len(line.rstrip())
    # The title heads the line's first chunk; the line's pieces, in order, make up all of it.
    pieces = [(s, e) for c in chunks for s, e in c.sentences if s >= body_start and e <= body_end]
    covered = [c for c in chunks if c.end > body_start and c.start < body_end]
    assert pieces, "the long line was lost"
    assert pieces[0][0] == body_start and pieces[-1][1] == body_end
    assert "".join(text[s:e] for s, e in pieces).replace(" ", "") == line.replace(" ", "")
    counts = counter.count([text[c.start:c.end] for c in chunks])
    assert max(counts) <= MAX_CHUNK_TOKENS
    # Readable pieces, whatever the tokenizer makes of them (a run of letters is one [UNK]).
    assert max(c.end - c.start for c in chunks) <= MAX_CHUNK_CHARS
    # Through the indexer too: the document has chunks and all of them fit the model.
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "long.txt").write_text(text)
    engine = Engine(corpus, tmp_path / "index", FakeEmbedder())
    assert engine.sync().chunks >= len(covered)
    snap = engine.snapshot
    assert max(counter.count([snap.chunk_text(c) for c in snap.chunks])) <= MAX_CHUNK_TOKENS


MARKUP_DOC = ("Release notes for the harbour radio: [bold red]ALERT[/] the squelch knob was moved "
              "to the left panel. See [link=https://example.com/evil]the manual[/link] for the "
              "wiring of channel sixteen, and [/] closes nothing.\n"
              "The :warning: emoji code and \x1b[31m escape bytes stay plain text as well.\n")


def test_rich_markup_in_documents_is_printed_literally(tmp_path, fake_cli):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    (corpus / "radio.md").write_text(MARKUP_DOC)
    (corpus / "other.txt").write_text(GOOD)
    common = ("--corpus", corpus, "--index", index)
    assert fake_cli("index", *common)[0] == 0

    code, out, err = fake_cli("search", "squelch knob left panel manual", *common)
    assert code == 0 and err == ""
    assert "[bold red]ALERT[/] the squelch knob" in out
    assert "[link=https://example.com/evil]the manual[/link]" in out

    code, out, _ = fake_cli("ask", "Where was the squelch knob moved to?", *common)
    assert code == 0
    assert "[bold red]ALERT[/]" in out

    code, out, _ = fake_cli("search", "squelch", "--json", *common)
    assert json.loads(out)["results"][0]["text"].count("[/]") == 2

    # Control characters cannot drive the terminal: each is shown as one visible character, so
    # offsets still match the file.
    code, out, _ = fake_cli("show", "radio.md", *common)
    assert out == MARKUP_DOC.replace("\x1b", "\u241b")
    code, out, _ = fake_cli("search", "emoji code escape bytes plain text", *common)
    assert "\x1b" not in out and "\u241b[31m escape bytes" in out


# -- odd questions -----------------------------------------------------------------------------

ODD_QUESTIONS = [
    "",
    "   \t  ",
    "?",
    "?!?... ;;; --- !!!",
    "[bold red]lighthouse[/]",
    "[link=https://example.com]keeper[/link] [/]",
    "🙂🚢⚓",
    "what about 🌊 storms?",
    "storm keeper ship " * 700,  # over 10,000 characters
    "x" * 10_000,
    "\x00\x1b[31m\u202e\ufeff",
    "ناطور المنارة؟",
    "the of and a to",
    "storm \udcff\udcfe keeper \ud800",  # undecodable bytes from argv or a pipe, a lone surrogate
]


@pytest.fixture
def lighthouse_engine(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "lighthouse.txt").write_text(GOOD)
    (corpus / "radio.md").write_text(MARKUP_DOC)
    engine = Engine(corpus, tmp_path / "index", FakeEmbedder())
    engine.sync()
    return engine


@pytest.mark.parametrize("question", ODD_QUESTIONS, ids=range(len(ODD_QUESTIONS)))
def test_odd_questions_get_an_answer_or_a_clear_message(lighthouse_engine, question):
    answer = lighthouse_engine.ask(question)
    assert answer.text.strip()
    if not question.strip():
        assert not answer.found
    for c in answer.citations:
        assert c.text == lighthouse_engine.document_text(c.source)[c.start:c.end]
    json.dumps(answer.to_json(), ensure_ascii=False)
    for passage in lighthouse_engine.search(question, k=3):
        assert passage.text == lighthouse_engine.document_text(passage.source)[passage.start:passage.end]


def test_odd_follow_ups_in_a_conversation(lighthouse_engine):
    conversation = Conversation(lighthouse_engine)
    assert conversation.ask("What did the lighthouse keeper record in 1893?").text
    for question in ODD_QUESTIONS:
        assert conversation.ask(question).text.strip()


def test_odd_questions_on_the_command_line(lighthouse_engine, fake_cli):
    common = ("--corpus", lighthouse_engine.corpus, "--index", lighthouse_engine.index_dir)
    for question in ODD_QUESTIONS:
        for extra in ((), ("--json",)):
            code, out, err = fake_cli("ask", *extra, *common, "--", question)
            assert code == 0, err
            assert out.strip() and "Traceback" not in err
            if extra:
                assert json.loads(out)["answer"].strip()
        code, out, err = fake_cli("search", *common, "--", question)
        assert code == 0 and "Traceback" not in err
        if not any(ch.isalnum() for ch in question):  # no word, so nothing matches it
            assert out.strip() == "no matching passages: the query has no words"


def test_search_k_and_show_spans_that_mean_nothing_are_refused(lighthouse_engine, fake_cli, capsys):
    common = ("--corpus", lighthouse_engine.corpus, "--index", lighthouse_engine.index_dir)
    for k in ("0", "-3"):
        with pytest.raises(SystemExit) as exit_:
            fake_cli("search", "keeper", "-k", k, *common)
        assert exit_.value.code == 2 and "1 or more" in capsys.readouterr().err
    code, _, err = fake_cli("show", "lighthouse.txt", "--start", "30", "--end", "10", *common)
    assert code == 1 and err.strip().splitlines() == ["qa: span 30:10 is reversed: --start must not be after --end"]


# -- a damaged index ---------------------------------------------------------------------------


def _generation(index: Path) -> Path:
    return index / (index / "CURRENT").read_text().strip()


def _garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 8] = b"\xff\x00garble"[: len(data) - middle] or b"x"
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "truncate-vectors": lambda i: _truncate(_generation(i) / "vectors.faiss"),
    "garble-vectors": lambda i: _garble(_generation(i) / "vectors.faiss"),
    "truncate-chunks": lambda i: _truncate(_generation(i) / "chunks.json"),
    "garble-chunks": lambda i: _garble(_generation(i) / "chunks.json"),
    "garble-documents": lambda i: _garble(_generation(i) / "documents.json"),
    "empty-terms": lambda i: (_generation(i) / "terms.json").write_text("{}"),
    "garble-bm25": lambda i: _garble(next(p for p in sorted((_generation(i) / "bm25").iterdir()))),
    "delete-bm25": lambda i: shutil.rmtree(_generation(i) / "bm25"),
    "delete-vectors": lambda i: (_generation(i) / "vectors.faiss").unlink(),
    "delete-manifest": lambda i: (_generation(i) / "manifest.json").unlink(),
    "truncate-manifest": lambda i: _truncate(_generation(i) / "manifest.json"),
    "manifest-without-checksums": lambda i: _edit_manifest(i, lambda m: m.pop("files")),
    "manifest-forgets-documents": lambda i: _edit_manifest(i, lambda m: m["documents"].clear()),
    "garble-current": lambda i: (i / "CURRENT").write_bytes(b"\xff\xfe\x00garbage"),
    "empty-current": lambda i: (i / "CURRENT").write_text(""),
    "current-to-nowhere": lambda i: (i / "CURRENT").write_text("gen-000999\n"),
    "delete-generation": lambda i: shutil.rmtree(_generation(i)),
}


def _edit_manifest(index: Path, change) -> None:
    path = _generation(index) / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


@pytest.fixture
def built(tmp_path, fake_cli):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    (corpus / "lighthouse.txt").write_text(GOOD)
    (corpus / "radio.md").write_text(MARKUP_DOC)
    assert fake_cli("index", "--corpus", corpus, "--index", index)[0] == 0
    return corpus, index


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_index_is_reported_in_one_line_then_recovered(built, fake_cli, damage):
    corpus, index = built
    common = ("--corpus", corpus, "--index", index)
    DAMAGE[damage](index)
    for command in (("search", "storm"), ("ask", "What did the keeper record?"),
                    ("show", "lighthouse.txt"), ("stats",)):
        code, out, err = fake_cli(*command, *common)
        assert code == 1, (command, out, err)
        assert out == ""
        [line] = one_line_messages(err)
        assert "qa index --rebuild" in line, line
    # Engine users (the app) get the same error, not empty results.
    from qa.errors import QAError

    with pytest.raises(QAError, match="qa index --rebuild"):
        Engine(corpus, index, FakeEmbedder()).search("storm")

    code, out, err = fake_cli("index", *common)
    assert code == 0, err
    assert "Traceback" not in err and "2 documents" in out
    code, out, err = fake_cli("search", "storm keeper eleven days", *common)
    assert code == 0 and err == "" and "lighthouse.txt" in out
    code, out, _ = fake_cli("stats", "--json", *common)
    assert json.loads(out)["documents"] == 2


def test_an_index_path_that_is_a_file_is_one_clear_error(tmp_path, fake_cli):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "note.txt").write_text(GOOD)
    not_a_folder = tmp_path / "index"
    not_a_folder.write_text("I am a file")
    for command in (("index",), ("search", "storm"), ("ask", "storm?"), ("stats",)):
        code, out, err = fake_cli(*command, "--corpus", corpus, "--index", not_a_folder)
        assert code == 1, (command, err)
        [line] = one_line_messages(err)
        assert "not a folder" in line or "Not a directory" in line, line
