"""The `qa` command through its real entry points (`qa` script and `python -m qa`), in subprocesses.

Only three subprocesses load the real model (one build, two searches); the rest never import torch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SEEDS
from qa.index import generations

QA_SCRIPT = Path(sys.executable).parent / "qa"

HEAVY = ("torch", "sentence_transformers", "faiss", "transformers", "textual")


def qa(*args: str, cwd: Path, env: dict | None = None, script: bool = False, timeout: float = 300):
    """Run qa with a clean environment (no QA_* variables unless given)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    base.update(env or {})
    command = [str(QA_SCRIPT)] if script else [sys.executable, "-m", "qa"]
    return subprocess.run(command + list(args), cwd=cwd, env=base, capture_output=True, text=True,
                          timeout=timeout)


def assert_user_error(done, *needles: str) -> None:
    assert done.returncode == 1, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("qa: ")
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert done.stdout == ""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder laid out like the repository: ./seeds (a copy) and ./embeddings (empty)."""
    root = tmp_path_factory.mktemp("cli")
    shutil.copytree(SEEDS, root / "seeds")
    return root


@pytest.fixture(scope="module")
def built(workdir) -> dict:
    """`qa index --json` run once with the real model, from the folder with the defaults."""
    done = qa("index", "--json", cwd=workdir, script=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# -- no model needed ---------------------------------------------------------------------------


def test_help_is_the_fast_path_and_imports_nothing_heavy(tmp_path):
    done = qa("--help", cwd=tmp_path, script=True)
    assert done.returncode == 0
    for command in ("index", "search", "ask", "stats", "show", "chat"):
        assert command in done.stdout
    traced = subprocess.run([sys.executable, "-X", "importtime", "-m", "qa", "--help"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert traced.returncode == 0
    imported = {line.split("|")[-1].strip().split(".")[0] for line in traced.stderr.splitlines()
                if "|" in line}
    assert "qa" in imported
    assert not imported & set(HEAVY), imported & set(HEAVY)


def test_subcommand_help(tmp_path):
    for command in ("index", "search", "stats"):
        done = qa(command, "--help", cwd=tmp_path)
        assert done.returncode == 0 and "--corpus" in done.stdout and "--index" in done.stdout


def test_help_names_the_default_index_as_it_is_chosen(tmp_path, user_data_dir):
    """Not "./embeddings" for every folder: that is the index of ./seeds only (see
    tests/test_default_index.py)."""
    for args in (["--help"], ["ask", "--help"]):
        done = qa(*args, cwd=tmp_path, env={"COLUMNS": "200"})
        said = " ".join(done.stdout.split())
        assert "$QA_INDEX or ./embeddings" not in said
        assert "./embeddings for ./seeds" in said and str(user_data_dir / "qa" / "indexes") in said


def test_missing_corpus_folder_is_one_line(tmp_path):
    done = qa("index", "--corpus", str(tmp_path / "nope"), "--index", str(tmp_path / "ix"), cwd=tmp_path)
    assert_user_error(done, "corpus folder not found", "nope")


def test_no_watch_is_refused_outside_the_chat_app(tmp_path):
    """`qa --no-watch index` would otherwise be accepted and the flag silently ignored."""
    done = qa("--no-watch", "index", "--corpus", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qa: --no-watch is for the chat app"), done.stderr
    assert not (tmp_path / "embeddings").exists()


def test_missing_default_corpus_is_one_line(tmp_path):
    assert_user_error(qa("index", cwd=tmp_path, script=True), "seeds")


def test_empty_corpus_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "picture.png").write_bytes(b"\x89PNG")
    done = qa("index", "--json", cwd=tmp_path, env={"QA_CORPUS": str(tmp_path / "empty"),
                                                   "QA_INDEX": str(tmp_path / "ix")})
    assert_user_error(done, "no documents")
    assert store_current(tmp_path / "ix") is None


def test_search_without_an_index_is_one_line(tmp_path, seeds_copy):
    done = qa("search", "anything", "--corpus", str(seeds_copy), "--index", str(tmp_path / "none"),
              cwd=tmp_path)
    assert_user_error(done, "no index", "qa index")


def test_stats_without_an_index_is_one_line(tmp_path, seeds_copy):
    done = qa("stats", "--json", "--corpus", str(seeds_copy), "--index", str(tmp_path / "none"),
              cwd=tmp_path)
    assert_user_error(done, "no index")


def test_index_of_another_model_is_one_line_for_search(tmp_path, fake_embedder):
    from qa.engine import Engine

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The orchard was planted in the spring of that year.\n")
    Engine(corpus, tmp_path / "ix", fake_embedder).sync()
    done = qa("search", "orchard", "--corpus", str(corpus), "--index", str(tmp_path / "ix"),
              cwd=tmp_path)
    # Built by another (fake) model: refused with a clear line, not a traceback.
    assert_user_error(done, "--rebuild")


def test_a_corpus_flag_naming_no_folder_is_one_line_for_every_command(tmp_path, fake_embedder):
    from qa.engine import Engine

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The orchard was planted in the spring of that year.\n")
    Engine(corpus, tmp_path / "ix", fake_embedder).sync()
    # A typo in --corpus must not answer from the index of some other folder.
    for command in (["ask", "orchard"], ["search", "orchard"], ["stats"], ["show", "a.txt"]):
        done = qa(*command, "--corpus", str(tmp_path / "typo"), "--index", str(tmp_path / "ix"),
                  cwd=tmp_path)
        assert_user_error(done, "corpus folder not found", "typo")
    assert_user_error(qa("ask", "orchard", "--corpus", str(corpus / "a.txt"), "--index", str(tmp_path / "ix"),
                         cwd=tmp_path), "is not a folder")


def test_an_index_belongs_to_its_folder(tmp_path, fake_embedder):
    from qa.engine import Engine

    first, second = tmp_path / "first", tmp_path / "second"
    for folder, text in ((first, "The orchard was planted in spring."), (second, "The ferry sails at noon.")):
        folder.mkdir()
        (folder / "a.txt").write_text(text + "\n")
    Engine(first, tmp_path / "ix", fake_embedder).sync()
    # Another folder with the same index: refused (by ask, search and index alike), saying how to
    # give it its own index; the first folder's index is left as it was.
    for command in (["ask", "ferry"], ["search", "ferry"], ["index"], ["stats"], ["stats", "--json"]):
        done = qa(*command, "--corpus", str(second), "--index", str(tmp_path / "ix"), cwd=tmp_path)
        assert_user_error(done, "built for the folder", str(first), "--index DIR")
        if command[0] == "stats":  # says which folder it was asked about, too
            assert f"not {second}" in done.stderr
    assert Engine(first, tmp_path / "ix", fake_embedder).search("orchard", k=1)[0].text.startswith("The orchard")
    # A folder that moved takes its index along.
    moved = tmp_path / "moved"
    first.rename(moved)
    assert Engine(moved, tmp_path / "ix", fake_embedder).search("orchard", k=1)[0].source == "a.txt"
    report = Engine(moved, tmp_path / "ix", fake_embedder).sync()
    assert report.chunks_embedded == 0
    assert generations.read_manifest(tmp_path / "ix")["corpus"] == str(moved.resolve())


def store_current(index: Path):
    from qa.index import generations

    return generations.current_path_safe(index)


# -- the real model --------------------------------------------------------------------------


@pytest.mark.model
def test_index_json_and_no_change_rerun(workdir, built):
    keys = {"added", "updated", "removed", "unchanged", "chunks_embedded", "documents", "chunks",
            "seconds"}
    assert keys <= set(built)
    assert (built["added"], built["updated"], built["removed"], built["unchanged"]) == (5, 0, 0, 0)
    assert built["documents"] == 5
    assert built["chunks"] == built["chunks_embedded"] > 5
    assert isinstance(built["seconds"], float)
    assert (workdir / "embeddings" / "CURRENT").is_file()

    again = qa("index", "--json", cwd=workdir)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["chunks_embedded"] == 0 and report["unchanged"] == 5
    assert report["chunks"] == built["chunks"]
    assert again.stderr == ""  # no progress bar when stderr is not a terminal

    plain = qa("index", cwd=workdir, script=True)
    assert plain.returncode == 0 and plain.stdout.strip().startswith("index is up to date")


@pytest.mark.model
def test_search_json_shape_with_env_vars(workdir, built, tmp_path):
    env = {"QA_CORPUS": str(workdir / "seeds"), "QA_INDEX": str(workdir / "embeddings")}
    done = qa("search", "What did Grushko demand?", "-k", "4", "--json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["query"] == "What did Grushko demand?"
    assert 1 <= len(data["results"]) <= 4
    for result in data["results"]:
        assert {"source", "start", "end", "text", "score"} <= set(result)
        assert not Path(result["source"]).is_absolute()
        text = (workdir / "seeds" / result["source"]).read_text(encoding="utf-8")
        assert result["text"] == text[result["start"] : result["end"]]
        assert isinstance(result["score"], float)
    assert "Grushko" in data["results"][0]["text"]
    scores = [r["score"] for r in data["results"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.model
def test_search_text_with_flags_overriding_env(workdir, built, tmp_path):
    env = {"QA_CORPUS": str(tmp_path / "wrong"), "QA_INDEX": str(tmp_path / "wrong-index")}
    done = qa("search", "NATO expansion to the east", "-k", "2", "--corpus", str(workdir / "seeds"),
              "--index", str(workdir / "embeddings"), cwd=tmp_path, env=env, script=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1. ") and "\n2. " in done.stdout and "\n3. " not in done.stdout
    assert ".txt:" in done.stdout and "score" in done.stdout


@pytest.mark.model
def test_stats_json_defaults_env_and_staleness(workdir, built, tmp_path):
    done = qa("stats", "--json", cwd=workdir)  # defaults: ./seeds and ./embeddings
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    assert stats["documents"] == 5 and stats["chunks"] == built["chunks"]
    assert stats["model"].endswith("all-MiniLM-L6-v2")
    assert stats["generation"] >= 1 and stats["size_bytes"] > 0
    assert stats["changed_since_build"] == 0

    # Through the environment, from elsewhere, the corpus having one more file since the build.
    env = {"QA_CORPUS": str(workdir / "seeds"), "QA_INDEX": str(workdir / "embeddings")}
    new = workdir / "seeds" / "new.md"
    new.write_text("A new note about the harbour works, written today.\n")
    try:
        stats = json.loads(qa("stats", "--json", cwd=tmp_path, env=env).stdout)
        assert stats["changed_since_build"] == 1 and stats["changed_files"] == ["new.md"]
        assert "1 file(s) since the build (new.md)" in qa("stats", cwd=tmp_path, env=env).stdout
    finally:
        new.unlink()
    # A copy of the folder is another folder: its index is not this one (see
    # test_an_index_belongs_to_its_folder).
    corpus = tmp_path / "corpus"
    shutil.copytree(workdir / "seeds", corpus)
    done = qa("stats", cwd=tmp_path, env={**env, "QA_CORPUS": str(corpus)})
    assert_user_error(done, "built for the folder", f"not {corpus}")

    text = qa("stats", cwd=workdir, script=True)
    assert text.returncode == 0
    for label in ("documents", "chunks", "model", "generation", "built", "changed"):
        assert label in text.stdout
