"""Asking within part of the collection: --in PATH (folders, files, globs) and --since DATE."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import FakeEmbedder
from qa.engine import Conversation, Engine
from qa.errors import QAError
from qa.search.scope import Scope, in_scope_path, normalise
from test_formats import fake_cli  # noqa: F401  (a fixture)

FIXTURES = Path(__file__).parent / "fixtures" / "formats"


@pytest.mark.parametrize("source, path, inside", [
    ("reports/2024/q1.docx", "reports", True),
    ("reports/2024/q1.docx", "reports/2024", True),
    ("reports/2024/q1.docx", "reports/2024/q1.docx", True),
    ("reports-old/q1.docx", "reports", False),
    ("reports/2024/q1.docx", "reports/*.docx", False),  # * stays within one folder
    ("reports/q1.docx", "reports/*.docx", True),
    ("reports/2024/q1.docx", "reports/**/*.docx", True),
    ("reports/q1.docx", "reports/**/*.docx", True),
    ("reports/2024/q1.docx", "reports/202?", True),  # a glob matching a folder: what is in it
    ("reports/2024/q1.docx", "*/2024", True),
    ("notes/a.md", "**/*.docx", False),
    ("notes/a.md", "notes/[ab].md", True),
    ("notes/c.md", "notes/[!ab].md", True),
    ("notes/a.md", "", True),
])
def test_scope_paths(source, path, inside):
    assert in_scope_path(source, path) is inside


def test_scope_paths_are_written_as_sources():
    assert [normalise(p) for p in ("./reports/", "reports//2024", ".", "a\\b")] == \
        ["reports", "reports/2024", "", "a/b"]
    assert str(Scope(("reports", "*.md"), "2024-01-01")) == "reports, *.md; since 2024-01-01"
    with pytest.raises(QAError, match="YYYY-MM-DD"):
        Scope(since="2024-02-30")


def write(folder: Path, name: str, text: str, mtime: str | None = None) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if mtime:
        from datetime import datetime, timezone

        stamp = datetime.fromisoformat(mtime).replace(tzinfo=timezone.utc).timestamp()
        os.utime(path, (stamp, stamp))


@pytest.fixture
def scoped_engine(tmp_path) -> Engine:
    corpus = tmp_path / "corpus"
    write(corpus, "reports/2023/ferry.md", "# Ferry 2023\n\nThe ferry carried 371,000 passengers "
          "in 2023, and the harbour fee was raised to 40 kroner.\n", "2023-12-20T10:00:00")
    write(corpus, "reports/2024/ferry.md", "# Ferry 2024\n\nThe ferry carried 412,000 passengers "
          "in 2024, and the harbour fee stayed at 40 kroner.\n", "2024-12-18T10:00:00")
    write(corpus, "notes/harbour.txt", "Notes from the harbour meeting: the ferry passengers asked "
          "for a shelter on the island pier.\n", "2024-03-01T10:00:00")
    shutil.copy(FIXTURES / "harbour.mbox", corpus / "notes" / "harbour.mbox")
    engine = Engine(corpus, tmp_path / "index", FakeEmbedder())
    engine.sync()
    return engine


def sources(passages) -> set[str]:
    return {p.source for p in passages}


def test_search_and_ask_stay_in_scope(scoped_engine):
    everything = sources(scoped_engine.search("ferry passengers", k=10))
    assert {"reports/2023/ferry.md", "reports/2024/ferry.md", "notes/harbour.txt"} <= everything
    scope = scoped_engine.scope(["reports/2023"])
    assert sources(scoped_engine.search("ferry passengers", k=10, scope=scope)) == \
        {"reports/2023/ferry.md"}
    answer = scoped_engine.ask("How many passengers did the ferry carry in 2023?", scope=scope)
    assert answer.found and {c.source for c in answer.citations} == {"reports/2023/ferry.md"}
    assert "371,000" in answer.citations[0].text
    # Repeatable: any of the paths; globs too.
    scope = scoped_engine.scope(["reports/2024/ferry.md", "notes/*.txt"])
    assert sources(scoped_engine.search("ferry passengers", k=10, scope=scope)) == \
        {"reports/2024/ferry.md", "notes/harbour.txt"}


def test_since_uses_the_stated_date_or_the_modification_time(scoped_engine):
    scope = scoped_engine.scope(since="2024-06-01")
    found = scoped_engine.search("ferry passengers harbour fee kroner", k=10, scope=scope)
    assert "reports/2023/ferry.md" not in sources(found)  # modified in December 2023
    assert "notes/harbour.txt" not in sources(found)  # March 2024
    assert "reports/2024/ferry.md" in sources(found)
    # Each message of a mailbox has its own date: only the June message is that recent.
    passages = scoped_engine.search("last ferry island pier dredging north quay", k=10,
                                    scope=scoped_engine.scope(["notes/harbour.mbox"], "2025-06-01"))
    assert passages and {p.locator.number for p in passages} == {3}


def test_a_scope_without_documents_is_one_clear_error(scoped_engine):
    with pytest.raises(QAError, match="^--in minutes: no document of the index is there"):
        scoped_engine.search("ferry", scope=scoped_engine.scope(["minutes"]))
    with pytest.raises(QAError, match="^no document in reports/2023 is dated 2024-01-01 or later$"):
        scoped_engine.ask("ferry?", scope=scoped_engine.scope(["reports/2023"], "2024-01-01"))


def test_a_path_as_the_shell_completes_it(scoped_engine, monkeypatch):
    monkeypatch.chdir(scoped_engine.corpus.parent)
    assert scoped_engine.scope(["corpus/reports/2023/"]).paths == ("reports/2023",)
    assert scoped_engine.scope([str(scoped_engine.corpus / "notes")]).paths == ("notes",)
    assert scoped_engine.scope(["reports"]).paths == ("reports",)


def test_a_conversation_keeps_its_scope(scoped_engine):
    conversation = Conversation(scoped_engine, scope=scoped_engine.scope(["reports/2024"]))
    first = conversation.ask("How many passengers did the ferry carry in 2024?")
    assert first.found and "412,000" in first.citations[0].text
    again = conversation.ask("And the harbour fee?")
    assert all(c.source == "reports/2024/ferry.md" for c in again.citations)


def test_the_scope_filters_before_ranking(tmp_path):
    # 150 documents match the query better than the one in scope; a filter applied after the
    # ranking (of the best 100 candidates) would find nothing there.
    corpus = tmp_path / "corpus"
    for i in range(150):
        write(corpus, f"loud/{i:03d}.txt", f"Lighthouse lamp lighthouse keeper lighthouse {i}.\n")
    write(corpus, "quiet/keeper.txt", "The keeper of the old lighthouse retired in 1989 after thirty "
          "years on the rock, and the lamp was automated.\n")
    engine = Engine(corpus, tmp_path / "index", FakeEmbedder())
    engine.sync()
    assert "quiet/keeper.txt" not in sources(engine.search("lighthouse keeper lamp", k=20))
    [top] = engine.search("lighthouse keeper lamp", k=1, scope=engine.scope(["quiet"]))
    assert top.source == "quiet/keeper.txt"
    answer = engine.ask("When did the lighthouse keeper retire?", scope=engine.scope(["quiet"]))
    assert answer.found and "1989" in answer.citations[0].text


def test_command_line_scope(scoped_engine, fake_cli, monkeypatch):
    corpus, index = scoped_engine.corpus, scoped_engine.index_dir
    code, out, err = fake_cli("search", "ferry passengers", "--in", "reports/2024", "--in",
                              "notes/*.txt", "--corpus", corpus, "--index", index, "-k", "9")
    assert code == 0, err
    assert "reports/2024/ferry.md" in out and "notes/harbour.txt" in out
    assert "reports/2023" not in out and "harbour.mbox" not in out
    code, out, err = fake_cli("ask", "How many passengers did the ferry carry in 2023?", "--in",
                              "reports/2023", "--corpus", corpus, "--index", index)
    assert code == 0 and "371,000" in out and "412,000" not in out
    code, out, err = fake_cli("ask", "ferry?", "--in", "minutes", "--corpus", corpus, "--index", index)
    assert (code, out) == (1, "") and err.count("\n") == 1 and err.startswith("qa: --in minutes")
    with pytest.raises(SystemExit) as exited:  # a usage error, as argparse reports them
        fake_cli("search", "ferry", "--since", "2024-13-01", "--corpus", corpus, "--index", index)
    assert exited.value.code == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("How many passengers did the ferry carry in 2024?\n"))
    code, out, err = fake_cli("ask", "--json", "-", "--since", "2024-06-01", "--corpus", corpus,
                              "--index", index)
    answer = json.loads(out)
    assert code == 0 and answer["found"]
    assert {c["source"] for c in answer["citations"]} == {"reports/2024/ferry.md"}
