"""Faults found by probing qa as a hostile or unlucky user would (issue 15): unreadable files,
files swapped or deleted mid-build, odd terminals, odd flags, odd names, long conversations.

The CLI runs in a subprocess through its real entry point (``qa.cli.main``) with the fake
embedder, so each run takes half a second and no model is loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FakeEmbedder
from qa.engine import Engine
from test_formats import fake_cli  # noqa: F401  (a fixture: qa run in-process)

TESTS = Path(__file__).resolve().parent
RUN_WITH_FAKE_EMBEDDER = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); import conftest, qa.engine; "
    "qa.engine.MiniLMEmbedder = conftest.FakeEmbedder; "
    "from qa.cli import main; sys.exit(main())"
)
LIGHTHOUSE = ("The lighthouse keeper logged every passing ship in a leather book. "
              "In 1893 the keeper recorded a storm that lasted eleven days.\n")
FERRY = "The harbour ferry sails at noon and returns before dark.\n"


def fake_qa(*args, cwd: Path | None = None, env: dict | None = None, stdin: str | None = None,
            unprivileged: bool = False) -> subprocess.CompletedProcess:
    """``qa ARGS`` in a subprocess with the fake embedder; with ``unprivileged``, without root's
    capabilities (so a mode-000 file really cannot be read)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("QA_", "PYTHONIOENCODING"))}
    base.update(env or {})
    command = [sys.executable, "-c", RUN_WITH_FAKE_EMBEDDER, str(TESTS), *map(str, args)]
    if unprivileged:
        command = without_privileges() + command
    return subprocess.run(command, cwd=cwd, env=base, input=stdin, capture_output=True,
                          text=True, timeout=120)


def without_privileges() -> list[str]:
    """The command prefix that drops root's capabilities (none needed for another user)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a mode-000 file stays readable")
    return [setpriv, "--bounding-set=-all", "--inh-caps=-all"]


@pytest.fixture(scope="module")
def permissions_apply(tmp_path_factory) -> None:
    """Skips the test where even without root's capabilities a mode-000 file can be read."""
    locked = tmp_path_factory.mktemp("probe") / "locked.txt"
    locked.write_text("x")
    locked.chmod(0)
    probe = subprocess.run([*without_privileges(), sys.executable, "-c",
                            "import sys; open(sys.argv[1], 'rb')", str(locked)], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("this system lets the test read a mode-000 file")


def warnings_of(done: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert all(line.startswith("qa: ") for line in lines), done.stderr
    return lines


def one_line_error(done: subprocess.CompletedProcess, *needles: str) -> str:
    assert done.returncode != 0, done
    lines = warnings_of(done)
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert done.stdout == ""
    return lines[0]


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "lighthouse.txt").write_text(LIGHTHOUSE)
    (folder / "ferry.txt").write_text(FERRY)
    return folder


# -- item 9: an unreadable file is skipped, never a failure ------------------------------------


def test_an_unreadable_file_is_skipped_with_a_warning(corpus, tmp_path, permissions_apply):
    locked = corpus / "locked.txt"
    locked.write_text("The locked note says the vault opens at dawn.\n")
    locked.chmod(0)
    common = ("--corpus", corpus, "--index", tmp_path / "index")
    done = fake_qa("index", "--json", *common, unprivileged=True)
    assert done.returncode == 0, done.stderr
    assert warnings_of(done) == ["qa: warning: skipped locked.txt: cannot read (Permission denied)"]
    report = json.loads(done.stdout)
    assert report["documents"] == 2 and report["skipped"] == {
        "locked.txt": "cannot read (Permission denied)"}
    # Nothing changed: up to date, still naming it; ask does not call it a change.
    again = fake_qa("index", *common, unprivileged=True)
    assert again.returncode == 0 and "up to date" in again.stdout
    assert warnings_of(again) == ["qa: warning: skipped locked.txt: cannot read (Permission denied)"]
    done = fake_qa("ask", "When does the ferry sail?", *common, unprivileged=True)
    assert done.returncode == 0 and "ferry.txt" in done.stdout and warnings_of(done) == []
    # Readable again: the next build indexes it.
    locked.chmod(0o644)
    done = fake_qa("index", "--json", *common, unprivileged=True)
    assert done.returncode == 0 and warnings_of(done) == []
    assert json.loads(done.stdout)["added_sources"] == ["locked.txt"]


def test_an_indexed_file_made_unreadable_does_not_break_ask_search_or_stats(corpus, tmp_path,
                                                                           permissions_apply):
    common = ("--corpus", corpus, "--index", tmp_path / "index")
    Engine(corpus, tmp_path / "index", FakeEmbedder()).sync()  # what `qa index` did
    ferry = corpus / "ferry.txt"
    ferry.write_text("The harbour ferry now sails at one and returns before dark.\n")
    ferry.chmod(0)
    for command in (("ask", "What did the keeper record?"), ("search", "keeper"), ("stats",)):
        done = fake_qa(*command, *common, unprivileged=True)
        assert done.returncode == 0, (command, done.stderr)
        assert "ferry.txt" in "".join(warnings_of(done)) + done.stdout  # named as changed
    done = fake_qa("index", "--json", *common, unprivileged=True)
    assert done.returncode == 0, done.stderr
    assert warnings_of(done) == ["qa: warning: skipped ferry.txt: cannot read (Permission denied)"]
    assert json.loads(done.stdout)["documents"] == 1


# -- item 10: a symlink swapped in during a build never gets an outside file indexed -----------

SECRET = "The secret outside the corpus is the launch code tangerine forty two.\n"


def swap_after_scan(monkeypatch, swap) -> None:
    """Run ``swap()`` right after the build has scanned the corpus folder, before any file of
    it is read: the moment a racing attacker aims for."""
    import qa.index.indexer

    real = qa.index.indexer.scan_corpus

    def scan_then_swap(*args, **kwargs):
        files = real(*args, **kwargs)
        swap()
        return files

    monkeypatch.setattr(qa.index.indexer, "scan_corpus", scan_then_swap)


def test_a_file_swapped_for_a_symlink_after_the_scan_is_not_read(corpus, tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (corpus / "z_target.txt").write_text("The target note is harmless.\n")
    (corpus / "sub").mkdir()
    (corpus / "sub" / "note.txt").write_text("The sub note is harmless too.\n")

    def swap():
        (corpus / "z_target.txt").unlink()
        (corpus / "z_target.txt").symlink_to(outside / "secret.txt")
        shutil.rmtree(corpus / "sub")
        (corpus / "sub").symlink_to(outside, target_is_directory=True)
        (outside / "note.txt").write_text(SECRET)

    swap_after_scan(monkeypatch, swap)
    warned = []
    engine = Engine(corpus, tmp_path / "index", FakeEmbedder())
    report = engine.sync(warn=lambda source, reason: warned.append((source, reason)))
    texts = [doc.text for doc in engine.snapshot.documents.values()]
    assert not any("tangerine" in text for text in texts)
    assert sorted(engine.snapshot.documents) == ["ferry.txt", "lighthouse.txt"]
    assert sorted(source for source, _ in warned) == ["sub/note.txt", "z_target.txt"]
    assert all("symlink" in reason for _, reason in warned), warned
    assert report.documents == 2
    assert "tangerine" not in engine.ask("What is the launch code?").text


# -- item 13: a file deleted between the scan and its read is skipped --------------------------


def test_a_file_deleted_after_the_scan_is_skipped_with_a_warning(corpus, tmp_path, monkeypatch):
    (corpus / "gone.txt").write_text("This note is deleted while the index is built.\n")
    swap_after_scan(monkeypatch, lambda: (corpus / "gone.txt").unlink())
    warned = []
    engine = Engine(corpus, tmp_path / "index", FakeEmbedder())
    report = engine.sync(warn=lambda source, reason: warned.append((source, reason)))
    assert warned == [("gone.txt", "deleted while indexing")]
    assert report.documents == 2 and report.skipped == {}
    assert sorted(engine.snapshot.documents) == ["ferry.txt", "lighthouse.txt"]
    monkeypatch.undo()
    again = engine.sync()  # the deleted file is simply not there any more: nothing to do
    assert not again.changed and again.generation == report.generation


# -- item 16: an ASCII terminal gets escapes, never a traceback --------------------------------

CAFE = "The café “Nord” opened in 1893 beside the lighthouse, and its owner was Zoë Ångström.\n"
ASCII_TERMINALS = {
    "PYTHONIOENCODING=ascii": {"PYTHONIOENCODING": "ascii"},
    "LC_ALL=C": {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"},
}


@pytest.fixture
def cafe_index(corpus, tmp_path) -> tuple[str, ...]:
    (corpus / "café.txt").write_text(CAFE, encoding="utf-8")
    Engine(corpus, tmp_path / "index", FakeEmbedder()).sync()
    return ("--corpus", str(corpus), "--index", str(tmp_path / "index"))


@pytest.mark.parametrize("terminal", ASCII_TERMINALS)
def test_ask_on_an_ascii_stdout(cafe_index, terminal):
    env = ASCII_TERMINALS[terminal]
    question = "When did the café open?"
    done = fake_qa("ask", question, *cafe_index, env=env)
    assert done.returncode == 0 and warnings_of(done) == [], done.stderr
    assert done.stdout.isascii() and "caf\\xe9" in done.stdout and "1893" in done.stdout
    done = fake_qa("ask", "--json", question, *cafe_index, env=env)
    assert done.returncode == 0 and warnings_of(done) == [], done.stderr
    answer = json.loads(done.stdout)  # JSON's own escapes: the same text once parsed
    quoted = [c["text"] for c in answer["citations"]] + [p["text"] for p in answer["passages"]]
    assert CAFE.strip() in [text.strip() for text in quoted]
    assert answer["question"] == question  # the UTF-8 bytes of the argument, read as UTF-8


def test_every_command_on_an_ascii_locale(cafe_index):
    env, question = ASCII_TERMINALS["LC_ALL=C"], "When did the café open?"
    done = fake_qa("ask", "--json", "-", *cafe_index, env=env, stdin=question + "\nWho owned it?\n")
    assert done.returncode == 0 and warnings_of(done) == [], done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["question"] for line in lines] == [question, "Who owned it?"]
    for args in (("search", "café"), ("search", "--json", "café"), ("show", "café.txt"),
                 ("stats",)):
        done = fake_qa(*args, *cafe_index, env=env)
        assert done.returncode == 0 and warnings_of(done) == [], (args, done.stderr)
        assert done.stdout.isascii(), args


# -- items 17 and 7: flags and folders that mean nothing get one clear line --------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "0", "-1", "-0.5", "ten"])
def test_a_max_file_size_that_means_nothing_is_refused_in_one_line(tmp_path, value):
    done = fake_qa("index", f"--max-file-mb={value}", "--corpus", tmp_path, "--index",
                   tmp_path / "index")
    line = one_line_error(done, "--max-file-mb", "greater than 0", repr(value))
    assert done.returncode == 2, line  # a usage error, as for -k 0


def test_a_huge_max_file_size_means_no_limit(corpus, tmp_path):
    done = fake_qa("index", "--max-file-mb=1e308", "--corpus", corpus, "--index", tmp_path / "ix")
    assert done.returncode == 0 and warnings_of(done) == [], done.stderr


def test_usage_errors_are_one_line(tmp_path):
    done = fake_qa("ask", cwd=tmp_path)
    assert done.returncode == 2
    assert warnings_of(done) == ["qa: the following arguments are required: question "
                                 "(see `qa ask --help`)"]


def test_show_says_a_start_past_the_end_is_out_of_range(corpus, tmp_path):
    Engine(corpus, tmp_path / "index", FakeEmbedder()).sync()
    common = ("--corpus", corpus, "--index", tmp_path / "index")
    size = len(FERRY)
    one_line_error(fake_qa("show", "ferry.txt", "--start", "99999", *common),
                   f"span 99999:{size} is outside ferry.txt (0:{size})")
    one_line_error(fake_qa("show", "ferry.txt", "--start", "5", "--end", "99999", *common),
                   f"span 5:99999 is outside ferry.txt (0:{size})")
    one_line_error(fake_qa("show", "ferry.txt", "--start", "9", "--end", "4", *common),
                   "span 9:4 is reversed")


def test_a_missing_default_corpus_says_how_to_name_one(tmp_path):
    for args in ((), ("chat",), ("ask", "When does the ferry sail?"), ("index",)):
        line = one_line_error(fake_qa(*args, cwd=tmp_path), "corpus folder not found: seeds",
                              "--corpus DIR")
        assert fake_qa(*args, cwd=tmp_path).returncode == 1, line
    line = one_line_error(fake_qa("index", cwd=tmp_path, env={"QA_CORPUS": "notes"}),
                          "corpus folder not found: notes", "QA_CORPUS")


# -- item 18: a path too long for the system is skipped with a short warning --------------------


def make_deep_file(folder: Path, length: int) -> str:
    """A file at a path over ``length`` characters under ``folder`` (made folder by folder: the
    whole path is too long for one call); returns its source, relative to ``folder``."""
    names, fd = [], os.open(folder, os.O_RDONLY)
    try:
        while len(str(folder)) + sum(len(n) + 1 for n in names) < length:
            names.append(f"{len(names):02d}" + "d" * 198)
            os.mkdir(names[-1], dir_fd=fd)
            inner = os.open(names[-1], os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        note = os.open("deep.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(note, b"A deep note about the harbour ferry at noon.\n")
        os.close(note)
    finally:
        os.close(fd)
    return "/".join(names + ["deep.txt"])


def test_a_path_too_long_for_the_system_is_skipped_with_a_short_warning(corpus, tmp_path):
    deep = make_deep_file(corpus, 4200)
    common = ("--corpus", corpus, "--index", tmp_path / "index")
    done = fake_qa("index", "--json", *common)
    assert done.returncode == 0, done.stderr[:500]
    (warning,) = warnings_of(done)
    assert len(warning) < 200 and warning.startswith("qa: warning: skipped 00ddd")
    assert warning.endswith(": path is longer than 4,096 bytes"), warning
    assert json.loads(done.stdout)["documents"] == 2
    again = fake_qa("index", *common)
    assert again.returncode == 0 and "up to date" in again.stdout and warnings_of(again) == [warning]
    done = fake_qa("ask", "When does the ferry sail?", *common)
    assert done.returncode == 0 and warnings_of(done) == [] and deep not in done.stdout


# -- item 20: control and bidi characters in names and text are escaped in human output ----------

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: reverses what follows on a terminal


def test_control_and_bidi_characters_are_escaped_in_human_output(corpus, tmp_path):
    (corpus / "two\nlines.txt").write_text("The glimmerfin boats sail from the north pier at dawn.\n")
    (corpus / "tab\there.txt").write_text("The tabbed ledger lists every cargo of salted herring.\n")
    (corpus / f"evil{RLO}txt.md").write_text(f"The quarry bell rings {RLO}twice at noon{chr(0x202c)}.\n")
    common = ("--corpus", corpus, "--index", tmp_path / "index")
    done = fake_qa("index", *common)
    assert done.returncode == 0 and warnings_of(done) == [], done.stderr
    added = done.stdout.splitlines()[1]
    assert "two\\nlines.txt" in added and "tab\\there.txt" in added and "evil\\u202etxt.md" in added

    done = fake_qa("search", "glimmerfin herring quarry bell", "-k", "5", *common)
    assert done.returncode == 0, done.stderr
    assert RLO not in done.stdout and "\t" not in done.stdout
    heads = [line for line in done.stdout.splitlines() if line[:1].isdigit()]
    assert len(heads) == 5  # each result's heading stays on its line
    assert any(h.startswith(("1. two\\nlines.txt:", "2. two\\nlines.txt:", "3. two\\nlines.txt:"))
               for h in heads), heads
    assert "The quarry bell rings \\u202etwice at noon\\u202c." in done.stdout

    for question in ("Where do the glimmerfin boats sail from?", "When does the quarry bell ring?"):
        done = fake_qa("ask", question, *common)
        assert done.returncode == 0, done.stderr
        assert RLO not in done.stdout and not any(line.startswith("lines.txt")
                                                  for line in done.stdout.splitlines())
    # --json is escaped by JSON itself: the names and the text come back exactly.
    done = fake_qa("search", "--json", "glimmerfin herring quarry bell", "-k", "5", *common)
    sources = {r["source"] for r in json.loads(done.stdout)["results"]}
    assert {"two\nlines.txt", "tab\there.txt", f"evil{RLO}txt.md"} <= sources

    # Warnings and lists of changed files name them escaped too.
    (corpus / f"evil{RLO}txt.md").write_text("The quarry bell was melted down.\n")
    for command in (("stats",), ("ask", "glimmerfin")):
        done = fake_qa(*command, *common)
        assert done.returncode == 0 and "evil\\u202etxt.md" in done.stdout + done.stderr
        assert RLO not in done.stdout + done.stderr
    (corpus / "two\nlines.txt").write_bytes(b"\x00\x01binary now")
    done = fake_qa("index", *common)
    assert warnings_of(done) == ["qa: warning: skipped two\\nlines.txt: binary file (contains NUL bytes)"]
    assert RLO not in done.stdout and "updated: evil\\u202etxt.md" in done.stdout


def test_show_prints_the_exact_text_to_a_pipe_and_escapes_it_on_a_terminal(corpus, tmp_path):
    import pty

    text = f"The quarry bell rings {RLO}twice at noon.\nIt rang\tonce in 1893.\n"
    (corpus / "bell.txt").write_text(text)
    Engine(corpus, tmp_path / "index", FakeEmbedder()).sync()
    common = ("--corpus", corpus, "--index", tmp_path / "index")
    assert fake_qa("show", "bell.txt", *common).stdout == text  # what the offsets index
    main, terminal = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-c", RUN_WITH_FAKE_EMBEDDER, str(TESTS), "show",
                               "bell.txt", *map(str, common)], stdout=terminal, timeout=120)
        os.close(terminal)
        terminal = None
        shown = b""
        while True:
            try:
                block = os.read(main, 4096)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not block:
                break
            shown += block
    finally:
        os.close(main)
        if terminal is not None:
            os.close(terminal)
    assert done.returncode == 0
    assert shown.decode().replace("\r\n", "\n") == text.replace(RLO, "\\u202e")


# -- item 21: a long conversation keeps a bounded history ----------------------------------------

QUESTIONS = ["What did the keeper record in 1893?", "How long did it last?",
             "Who won the 2018 World Cup?", "What is the capital of Peru?",
             "When does the ferry sail?", "And when does it return?"]


def test_follow_ups_use_a_bounded_history_and_answer_as_with_all_of_it(corpus, tmp_path):
    from qa.answer.followup import HISTORY_TURNS
    from qa.engine import Conversation
    from qa.results import Turn

    engine = Engine(corpus, tmp_path / "index", FakeEmbedder())
    engine.sync()
    conversation, everything = Conversation(engine), []
    # Many unanswered turns in a row must not push out the last answered one.
    script = QUESTIONS[:2] + ["What is the capital of Peru?"] * (HISTORY_TURNS + 3) + QUESTIONS * 6
    for question in script:
        unbounded = engine.ask(question, everything)
        answer = conversation.ask(question)
        assert answer.to_json() | {"timings_ms": None} == unbounded.to_json() | {"timings_ms": None}
        everything.append(Turn(question, unbounded))
        assert len(conversation.history) <= HISTORY_TURNS + 1
    assert len(conversation.turns) == len(script)  # the app still shows and exports every turn


def test_a_stream_of_questions_keeps_no_record_of_its_turns(corpus, tmp_path, monkeypatch,
                                                             fake_cli):
    import io

    import qa.engine
    from qa.answer.followup import HISTORY_TURNS

    Engine(corpus, tmp_path / "index", FakeEmbedder()).sync()
    made = []

    class Recorded(qa.engine.Conversation):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(qa.engine, "Conversation", Recorded)
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(QUESTIONS * 50) + "\n"))
    code, out, err = fake_cli("ask", "--json", "-", "--corpus", corpus, "--index", tmp_path / "index")
    assert code == 0 and len(out.splitlines()) == len(QUESTIONS) * 50, err
    (conversation,) = made
    assert conversation.turns == [] and len(conversation.history) <= HISTORY_TURNS + 1
