"""Each corpus folder gets an index of its own by default, and an index built for another folder is
never replaced without a confirmation naming both folders (the CLI in subprocesses, the app through
Pilot)."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SEEDS, FakeEmbedder

from qa.config import resolve_paths
from qa.engine import Engine
from qa.index import generations

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def run_qa(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real entry point, without QA_* variables unless given."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "qa", *map(str, args)], cwd=cwd, env=base,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A folder laid out like the repository, its ./embeddings built for its ./seeds."""
    work = tmp_path / "work"
    shutil.copytree(SEEDS, work / "seeds")
    Engine(work / "seeds", work / "embeddings", FakeEmbedder()).sync()
    return work


@pytest.fixture
def notes(tmp_path) -> Path:
    folder = tmp_path / "my notes"
    folder.mkdir()
    (folder / "ferry.txt").write_text(
        "Ferry timetable.\n\nThe ferry to Glimmerfjord sails at noon every Tuesday.\n",
        encoding="utf-8")
    return folder


def test_the_default_index_is_per_folder_and_seeds_keep_embeddings(tmp_path, monkeypatch, notes):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QA_INDEX", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    (tmp_path / "seeds").mkdir()
    assert resolve_paths().index == Path("embeddings")
    assert resolve_paths("seeds").index == Path("embeddings")
    assert resolve_paths(str(tmp_path / "seeds")).index == Path("embeddings")
    mine = resolve_paths(str(notes)).index
    assert mine.parent == tmp_path / "data" / "qa" / "indexes"
    assert mine.name.startswith("my-notes-")
    # The same folder named another way gets the same index; another folder of the same name not.
    assert resolve_paths(os.path.relpath(notes)).index == mine
    twin = tmp_path / "elsewhere" / "my notes"
    twin.mkdir(parents=True)
    assert resolve_paths(str(twin)).index != mine
    # --index and QA_INDEX still win.
    assert resolve_paths(str(notes), "ix").index == Path("ix")
    monkeypatch.setenv("QA_INDEX", "shared")
    assert resolve_paths(str(notes)).index == Path("shared")


def test_qa_index_on_another_folder_leaves_the_seeds_index_alone(tmp_path, workdir, notes):
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    before = (workdir / "embeddings" / "CURRENT").read_text()
    done = run_qa("index", "--corpus", notes, cwd=workdir, env=env)
    assert done.returncode == 0, done.stderr
    [index] = (tmp_path / "data" / "qa" / "indexes").iterdir()
    assert generations.read_manifest(index)["corpus"] == str(notes.resolve())
    assert (workdir / "embeddings" / "CURRENT").read_text() == before
    assert generations.read_manifest(workdir / "embeddings")["corpus"] \
        == str((workdir / "seeds").resolve())
    asked = run_qa("ask", "When does the ferry to Glimmerfjord sail?", "--corpus", notes,
                   cwd=workdir, env=env)
    assert asked.returncode == 0 and "ferry.txt" in asked.stdout, asked.stderr
    # qa stats names the index in use, as a full path.
    stats = run_qa("stats", "--corpus", notes, cwd=workdir, env=env)
    assert stats.returncode == 0, stats.stderr
    assert f"index        {index}" in stats.stdout
    as_json = json.loads(run_qa("stats", "--json", "--corpus", notes, cwd=workdir, env=env).stdout)
    assert as_json["index"] == str(index)


def test_qa_index_rebuild_of_another_folders_index_needs_a_confirmation(tmp_path, workdir, notes):
    index = workdir / "embeddings"
    before = (index / "CURRENT").read_text()
    # No terminal to ask on: refused, in one line naming both folders.
    done = run_qa("index", "--rebuild", "--corpus", notes, "--index", index, cwd=workdir)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("qa: ") and str((workdir / "seeds").resolve()) in line \
        and str(notes.resolve()) in line
    assert (index / "CURRENT").read_text() == before
    # On a terminal: asked, naming both; "n" keeps it, "y" rebuilds it for the notes.
    for answer, rebuilt in (("n", False), ("y", True)):
        code, shown = on_a_terminal(["index", "--rebuild", "--corpus", str(notes), "--index",
                                     str(index)], workdir, answer)
        assert str((workdir / "seeds").resolve()) in shown and str(notes.resolve()) in shown
        assert (code == 0) == rebuilt, shown
        corpus = generations.read_manifest(index)["corpus"]
        assert corpus == str((notes if rebuilt else workdir / "seeds").resolve())


def on_a_terminal(args: list[str], cwd: Path, answer: str) -> tuple[int, str]:
    """Run qa with a pseudo-terminal for stdin and stderr; type ``answer`` when it asks."""
    main, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env["COLUMNS"] = "300"
    process = subprocess.Popen([sys.executable, "-m", "qa", *args], cwd=cwd, env=env,
                               stdin=secondary, stderr=secondary, stdout=subprocess.PIPE)
    os.close(secondary)
    shown, answered = b"", False
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        if not ready:
            process.kill()
            raise AssertionError(f"qa said nothing for a minute: {shown!r}")
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the process closed the terminal
            break
        if not chunk:
            break
        shown += chunk
        if not answered and b"[y/N]" in shown:
            os.write(main, answer.encode() + b"\n")
            answered = True
    os.close(main)
    return process.wait(60), shown.decode("utf-8", "replace").replace("\r\n", "\n")


async def test_the_app_asks_before_rebuilding_another_folders_index(workdir, notes):
    from qa.tui.app import create_app
    from qa.tui.screens.chat import ChatScreen
    from qa.tui.screens.dialogs import ConfirmDialog, ErrorDialog
    from qa.tui.widgets.status import StatusBar
    from test_tui import settle, until

    index = workdir / "embeddings"
    before = (index / "CURRENT").read_text()
    app = create_app(Engine(notes, index, FakeEmbedder()))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ErrorDialog))
        await pilot.press("enter")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        question = app.screen.message
        assert str((workdir / "seeds").resolve()) in question and str(notes.resolve()) in question
        await pilot.press("escape")  # kept: nothing rebuilt
        await settle(pilot)
        assert isinstance(app.screen, ChatScreen)
        assert (index / "CURRENT").read_text() == before
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.click("#confirm")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen)
                    and "Ready" in app.screen.query_one(StatusBar).status, rounds=1000)
        assert generations.read_manifest(index)["corpus"] == str(notes.resolve())


async def test_the_app_names_the_index_it_uses(tmp_path, monkeypatch, notes):
    from qa.tui.app import create_app
    from qa.tui.widgets.status import StatusBar
    from qa.tui.widgets.transcript import NoteEntry
    from test_tui import until

    monkeypatch.delenv("QA_INDEX", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    engine = Engine.open(notes, embedder=FakeEmbedder())
    assert engine.index_dir == resolve_paths(str(notes)).index  # the CLI's index for this folder
    app = create_app(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "Ready" in app.screen.query_one(StatusBar).status, rounds=1000)
        first = str(app.screen.query(NoteEntry).first().render())
        assert str(engine.index_dir) in " ".join(first.split())
        assert generations.read_manifest(engine.index_dir)["corpus"] == str(notes.resolve())
