"""The index folder under stress: builds switching generations under readers, unreadable folders,
a full disk, a wrong-shaped manifest, a lost CURRENT pointer, odd index paths.

Whatever happens, a command a user runs gets an answer or one line starting with ``qa:``, and the
previous index is never lost. Everything runs with the fake embedder; commands run through the
real entry point (``qa.cli.main``) in a subprocess, or in-process where a build must be raced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import ROOT, FakeEmbedder
from qa.engine import Engine
from qa.index import caches, generations, records
from test_formats import fake_cli  # noqa: F401  (a fixture)

TESTS = Path(__file__).resolve().parent
# `python -m qa` with the fake embedder in place of the real model.
FAKE_QA = ("import sys; sys.path.insert(0, {tests!r}); from conftest import FakeEmbedder; "
           "import qa.engine; qa.engine.MiniLMEmbedder = FakeEmbedder; "
           "from qa.cli import main; sys.exit(main(sys.argv[1:]))").format(tests=str(TESTS))


def fake_qa(*args, env: dict | None = None, prefix: tuple = ()) -> subprocess.CompletedProcess:
    """``qa ARGS`` in a subprocess, through the real entry point, with the fake embedder."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    base.update(env or {})
    return subprocess.run([*prefix, sys.executable, "-c", FAKE_QA, *map(str, args)], cwd=ROOT,
                          env=base, capture_output=True, text=True, timeout=120)


def one_line(done: subprocess.CompletedProcess) -> str:
    """The one ``qa:`` line of a command that failed as a user error should."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qa: "), done.stderr
    return lines[0]


DOCS = {
    "lighthouse.txt": "The lighthouse keeper logged every passing ship in a leather book. "
                      "In 1893 the keeper recorded a storm that lasted eleven days.\n",
    "harbour.md": "Fishermen said the harbour froze twice that winter. "
                  "The ferry to the island stopped for a month.\n",
    "notes/orchard.txt": "The orchard behind the chapel grows quillberry trees. "
                         "They flower in April and fruit in late summer.\n",
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    for source, text in DOCS.items():
        (folder / source).parent.mkdir(parents=True, exist_ok=True)
        (folder / source).write_text(text)
    return folder


@pytest.fixture
def index(tmp_path: Path, corpus: Path) -> Path:
    """An index of ``corpus``, built once."""
    folder = tmp_path / "index"
    Engine(corpus, folder, FakeEmbedder()).sync()
    return folder


# -- 8: readers during a generation switch ---------------------------------------------------


def test_stats_read_while_a_build_switches_generations_is_the_new_one(corpus, index, monkeypatch,
                                                                      capsys):
    import qa.engine
    from qa.cli import main

    monkeypatch.setattr(qa.engine, "MiniLMEmbedder", FakeEmbedder)
    verify = generations.verify_files
    raced = []

    def verify_while_a_build_switches(path, manifest):
        # `qa stats` has read CURRENT; now another `qa index` finishes and removes that generation.
        if not raced:
            raced.append(path.name)
            (corpus / "late.txt").write_text("A late report about the velloran festival arrived.\n")
            Engine(corpus, index, FakeEmbedder()).sync()
        return verify(path, manifest)

    monkeypatch.setattr(generations, "verify_files", verify_while_a_build_switches)
    capsys.readouterr()
    code = main(["stats", "--json", "--corpus", str(corpus), "--index", str(index)])
    out, err = capsys.readouterr()
    assert raced == ["gen-000001"]
    assert code == 0 and err == "", err
    stats = json.loads(out)
    assert (stats["generation"], stats["documents"], stats["changed_since_build"]) == (2, 4, 0)


def test_readers_never_see_damage_while_builds_switch_generations(corpus, index, monkeypatch, capsys):
    """One thread edits a file and re-indexes 12 times; two others run `qa stats`, `qa show` and
    a search meanwhile. Every one of them must succeed: a switch is not damage."""
    import qa.engine
    from qa.cli import main

    monkeypatch.setattr(qa.engine, "MiniLMEmbedder", FakeEmbedder)
    common = ["--corpus", str(corpus), "--index", str(index)]
    finished = threading.Event()
    failures: list[str] = []
    reads = []

    def build() -> None:
        try:
            for n in range(12):
                (corpus / "log.txt").write_text(f"Entry {n}: the keeper saw {n} ships today.\n")
                Engine(corpus, index, FakeEmbedder()).sync()
        finally:
            finished.set()

    def read() -> None:
        while not finished.is_set():
            for command in (["stats", "--json"], ["show", "lighthouse.txt"]):
                if main([*command, *common]) != 0:
                    failures.append(" ".join(command))
            try:
                Engine(corpus, index, FakeEmbedder()).search("storm keeper")
            except Exception as exc:  # noqa: BLE001 - any failure is the bug
                failures.append(f"search: {exc!r}")
            reads.append(1)

    threads = [threading.Thread(target=build)] + [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    err = capsys.readouterr().err
    assert len(reads) > 2
    assert failures == [], err
    assert generations.read_manifest(index)["generation"] == 13


# -- 15: a missing CURRENT pointer -----------------------------------------------------------


def test_a_missing_pointer_recovers_the_generation_instead_of_deleting_it(corpus, index):
    common = ("--corpus", corpus, "--index", index)
    (index / "CURRENT").unlink()
    done = fake_qa("ask", "How long did the storm last?", *common)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "lighthouse.txt" in done.stdout
    assert sorted(p.name for p in index.glob("gen-*")) == ["gen-000001"]
    stats = json.loads(fake_qa("stats", "--json", *common).stdout)
    assert (stats["generation"], stats["documents"]) == (1, 3)
    # `qa index` writes the pointer back and says so; nothing is embedded again.
    done = fake_qa("index", "--json", *common)
    assert done.returncode == 0, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("qa: warning: ") and "CURRENT" in line and "generation 1" in line, line
    report = json.loads(done.stdout)
    assert (report["generation"], report["chunks_embedded"]) == (1, 0)
    assert (index / "CURRENT").read_text().strip() == "gen-000001"
    assert fake_qa("index", *common).stderr == ""


def test_a_missing_pointer_recovers_the_newest_generation_that_is_whole(corpus, index, tmp_path):
    import shutil

    common = ("--corpus", corpus, "--index", index)
    kept = tmp_path / "gen-000001"
    shutil.copytree(index / "gen-000001", kept)
    (corpus / "late.txt").write_text("A late report about the velloran festival arrived.\n")
    Engine(corpus, index, FakeEmbedder()).sync()
    shutil.copytree(kept, index / "gen-000001")
    (index / "gen-000002" / "chunks.json").write_text("{}")  # damaged: its checksum fails
    (index / "CURRENT").unlink()
    done = fake_qa("index", "--json", *common)
    assert done.returncode == 0, done.stderr
    assert "generation 1" in done.stderr and "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    # Generation 1 is kept: only the document it lacks is embedded.
    assert (report["added"], report["unchanged"], report["chunks_embedded"]) == (1, 3, 1)
    assert fake_qa("search", "velloran festival", *common).stdout.count("late.txt") == 1


# -- 14: a manifest of the wrong shape --------------------------------------------------------


def _live_manifest(index: Path) -> Path:
    return index / (index / "CURRENT").read_text().strip() / "manifest.json"


def _reshape(index: Path, change) -> None:
    path = _live_manifest(index)
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps(change(manifest)))


def _set(key, value):
    return lambda m: {**m, key: value}


def _without(key):
    return lambda m: {k: v for k, v in m.items() if k != key}


def _each_document(change):
    def apply(m):
        m["documents"] = {s: change(dict(meta)) for s, meta in m["documents"].items()}
        return m
    return apply


SHAPES = {
    "null": lambda m: None,
    "list": lambda m: [],
    "string": lambda m: "gen-000001",
    "schema-as-text": _set("schema", str(records.SCHEMA)),
    "schema-true": _set("schema", True),
    "generation-as-text": _set("generation", "abc"),
    "no-generation": _without("generation"),
    "no-built-at": _without("built_at"),
    "no-model": _without("model"),
    "no-vocabulary": _without("vocabulary"),
    "documents-list": _set("documents", []),
    "skipped-list": _set("skipped", []),
    "skipped-without-reason": _set("skipped", {"x.txt": {"sha256": "0" * 64}}),
    "document-without-chunks": _each_document(lambda d: {k: v for k, v in d.items() if k != "chunks"}),
    "document-null": _each_document(lambda d: None),
    "size-as-text": _each_document(lambda d: {**d, "size": "12"}),
    "corpus-number": _set("corpus", 5),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_a_wrong_shaped_manifest_is_one_line_and_plain_qa_index_repairs_it(corpus, index, shape,
                                                                           fake_cli):
    common = ("--corpus", corpus, "--index", index)
    _reshape(index, SHAPES[shape])
    for command in (("stats",), ("stats", "--json"), ("search", "storm"),
                    ("ask", "How long did the storm last?"), ("show", "lighthouse.txt")):
        code, out, err = fake_cli(*command, *common)
        assert (code, out) == (1, ""), (command, out, err)
        assert "Traceback" not in err
        [line] = err.splitlines()
        assert line.startswith("qa: index manifest in ") and "is damaged" in line, line
        assert "qa index" in line, line
    code, out, err = fake_cli("index", *common)
    assert code == 0 and "3 documents" in out, err
    assert all(line.startswith("qa: warning: ") for line in err.splitlines()), err
    code, out, err = fake_cli("search", "storm keeper eleven days", *common)
    assert code == 0 and err == "" and "lighthouse.txt" in out


def test_a_null_manifest_through_the_real_entry_point(corpus, index):
    common = ("--corpus", corpus, "--index", index)
    _live_manifest(index).write_text("null")
    line = one_line(fake_qa("ask", "How long did the storm last?", *common))
    assert "manifest" in line and "damaged" in line, line
    done = fake_qa("index", *common)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert fake_qa("ask", "How long did the storm last?", *common).returncode == 0


# -- 12: a full disk --------------------------------------------------------------------------


def _words(count: int, seed: int = 3) -> str:
    import random

    rng = random.Random(seed)
    vocabulary = ["harbour", "keeper", "storm", "ledger", "ferry", "orchard", "quill", "tide",
                  "beacon", "lantern", "gull", "pier"]
    return " ".join(rng.choice(vocabulary) + ("." if i % 12 == 11 else "") for i in range(count))


def _unshare_works() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.skipif(sys.platform != "linux" or not _unshare_works(),
                    reason="needs a private mount namespace (unshare -rm) for a small tmpfs")
def test_a_full_disk_is_one_line_naming_the_index_and_the_space_needed(corpus, tmp_path):
    """On a real full disk (a 256 KB tmpfs): the first build fits, the second does not."""
    disk = tmp_path / "disk"
    disk.mkdir()
    index = disk / "index"
    big = tmp_path / "big.txt"
    big.write_text(_words(60000))
    steps = [["index", "--corpus", corpus, "--index", index],
             ["cp", big, corpus / "big.txt"],
             ["index", "--corpus", corpus, "--index", index],
             ["ls", "-A", index],
             ["search", "storm eleven days", "--corpus", corpus, "--index", index]]
    driver = ("import json, subprocess, sys\n"
              f"steps = {json.dumps([[str(a) for a in step] for step in steps])}\n"
              "out = []\n"
              "for step in steps:\n"
              "    command = step if step[0] in ('cp', 'ls') else [sys.executable, '-c', "
              f"{FAKE_QA!r}, *step]\n"
              "    done = subprocess.run(command, capture_output=True, text=True)\n"
              "    out.append([done.returncode, done.stdout, done.stderr])\n"
              "print(json.dumps(out))\n")
    done = subprocess.run(["unshare", "-rm", "sh", "-c",
                           'mount -t tmpfs -o size=256k tmpfs "$0" && exec "$@"', str(disk),
                           sys.executable, "-c", driver], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    first, _, full, listing, search = json.loads(done.stdout)
    assert first[0] == 0, first
    assert full[0] == 1 and full[1] == "", full
    assert "Traceback" not in full[2]
    [line] = full[2].splitlines()
    assert line.startswith(f"qa: not enough disk space for the index in {index}: about "), line
    assert " MB needed, " in line and "the previous index is kept" in line, line
    # Nothing of the failed build is left taking space; the previous index answers.
    assert sorted(listing[1].split()) == [".lock", "CURRENT", "gen-000001"]
    assert search[0] == 0 and "lighthouse.txt" in search[1], search


def _no_space(*args, **kwargs):
    raise OSError(28, "No space left on device")


def _build_files(path: str) -> bool:
    return f"{os.sep}{generations.BUILD_PREFIX}" in str(path)


FULL_DISK_FAULTS = {
    # FAISS reports a failed write as a RuntimeError naming the error.
    "faiss": ("faiss", "write_index", RuntimeError(
        "Error in faiss::FileIOWriter::operator() ... ret == (n) failed: write error: "
        "No space left on device")),
    # numpy's short write carries no errno.
    "numpy": ("numpy", "save", OSError("708480 requested and 423872 written")),
    "json": ("generations", "_write_json", OSError(28, "No space left on device")),
    "pointer": ("generations", "_point_to", OSError(28, "No space left on device")),
}


@pytest.mark.parametrize("fault", FULL_DISK_FAULTS)
def test_a_disk_filling_up_while_a_generation_is_written(corpus, index, fake_cli, monkeypatch, fault):
    import faiss
    import numpy

    module, name, error = FULL_DISK_FAULTS[fault]
    target = {"faiss": faiss, "numpy": numpy, "generations": generations}[module]
    real = getattr(target, name)

    def fails_in_a_build(*args, **kwargs):
        if fault == "pointer" or any(_build_files(arg) for arg in args[:2]):
            raise error
        return real(*args, **kwargs)

    (corpus / "big.txt").write_text(_words(3000))
    common = ("--corpus", corpus, "--index", index)
    monkeypatch.setattr(target, name, fails_in_a_build)
    code, out, err = fake_cli("index", *common)
    assert (code, out) == (1, ""), err
    assert "Traceback" not in err
    [line] = err.splitlines()
    assert line.startswith(f"qa: not enough disk space for the index in {index}: about "), line
    assert "needed" in line and "the previous index is kept" in line, line
    assert sorted(p.name for p in index.iterdir()) == [".lock", "CURRENT", "gen-000001"]
    monkeypatch.setattr(target, name, real)
    code, out, err = fake_cli("search", "storm eleven days", *common)
    assert code == 0 and "lighthouse.txt" in out
    code, out, err = fake_cli("index", "--json", *common)
    assert code == 0 and json.loads(out)["added"] == 1


def test_a_full_disk_while_embedding_drops_the_resume_cache_and_goes_on(corpus, index, monkeypatch):
    monkeypatch.setattr(caches.EmbeddingCache, "append", _no_space)
    (corpus / "big.txt").write_text(_words(3000))
    report = Engine(corpus, index, FakeEmbedder()).sync()
    assert report.added == 1 and report.chunks_embedded > 0
    assert not (index / "cache").exists()


# -- 11: an unreadable folder is not a deleted one ---------------------------------------------


def _without_privileges() -> tuple:
    """A command prefix under which mode 000 means unreadable (root reads everything)."""
    if os.geteuid() != 0:
        return ()
    try:
        ok = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", "true"],
                            capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    if not ok:
        pytest.skip("running as root without setpriv: permissions cannot be dropped")
    return ("setpriv", "--bounding-set=-all", "--inh-caps=-all")


@pytest.fixture
def locked(request):
    """chmod a folder to 000 for the test, and back afterwards."""
    folders = []

    def lock(folder: Path) -> Path:
        folder.chmod(0)
        folders.append(folder)
        return folder

    yield lock
    for folder in folders:
        folder.chmod(0o755)


def test_an_unreadable_subfolder_keeps_its_documents_with_a_warning(corpus, index, locked):
    plain = _without_privileges()
    common = ("--corpus", corpus, "--index", index)
    locked(corpus / "notes")
    done = fake_qa("index", "--json", *common, prefix=plain)
    assert done.returncode == 0, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("qa: warning: ") and "notes" in line and "Permission denied" in line, line
    assert "kept" in line, line
    report = json.loads(done.stdout)
    assert (report["removed"], report["documents"], report["chunks_embedded"]) == (0, 3, 0)
    # Nor is it "changed since the build".
    stats = json.loads(fake_qa("stats", "--json", *common, prefix=plain).stdout)
    assert (stats["documents"], stats["changed_since_build"]) == (3, 0)
    done = fake_qa("ask", "What grows behind the chapel?", *common, prefix=plain)
    assert done.returncode == 0 and done.stderr == "" and "notes/orchard.txt" in done.stdout
    # An edit elsewhere is still taken in, and the folder's documents still kept.
    (corpus / "harbour.md").write_text("Fishermen said the harbour froze three times that winter.\n")
    report = json.loads(fake_qa("index", "--json", *common, prefix=plain).stdout)
    assert (report["updated"], report["removed"], report["documents"]) == (1, 0, 3)


def test_an_unreadable_corpus_folder_is_one_honest_line(corpus, index, locked):
    plain = _without_privileges()
    common = ("--corpus", corpus, "--index", index)
    locked(corpus)
    line = one_line(fake_qa("index", *common, prefix=plain))
    assert line == f"qa: cannot read the corpus folder {corpus} (Permission denied)", line
    assert (index / "CURRENT").read_text().strip() == "gen-000001"
    stats = json.loads(fake_qa("stats", "--json", *common, prefix=plain).stdout)
    assert (stats["documents"], stats["changed_since_build"]) == (3, None)


# -- 23: smaller ones ------------------------------------------------------------------------


def test_an_index_path_under_a_file_blames_the_file(corpus, tmp_path, fake_cli):
    afile = tmp_path / "notes.txt"
    afile.write_text("not a folder\n")
    for command in (("index",), ("stats",), ("search", "storm"), ("ask", "storm?"),
                    ("show", "lighthouse.txt")):
        code, out, err = fake_cli(*command, "--corpus", corpus, "--index", afile / "sub")
        assert (code, out) == (1, ""), (command, err)
        assert err.splitlines() == [f"qa: index path {afile / 'sub'} is inside {afile}, which is "
                                    "a file, not a folder"], (command, err)
    line = one_line(fake_qa("index", "--corpus", corpus, "--index", afile / "sub" / "deeper"))
    assert f"inside {afile}, which is a file" in line, line
    # The file itself as the index path is still named as such.
    code, _, err = fake_cli("stats", "--corpus", corpus, "--index", afile)
    assert code == 1 and err == f"qa: index path {afile} is a file, not a folder\n", err


def test_stats_refuses_an_index_that_search_refuses(corpus, index):
    """The index was built by another (the fake) model: the real qa's stats says so, as search
    does, instead of describing it as fine."""
    common = ("--corpus", corpus, "--index", index)
    base = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}

    def real_qa(*args):
        return subprocess.run([sys.executable, "-m", "qa", *map(str, args)], cwd=ROOT, env=base,
                              capture_output=True, text=True, timeout=120)

    search = one_line(real_qa("search", "storm", *common))
    stats = one_line(real_qa("stats", *common))
    assert "fake-hashed-words" in stats and "--rebuild" in stats
    assert stats == search


def _made_by_an_older_qa(index: Path) -> None:
    """An index from before folders and word rules were recorded: search answers from it; ask
    would update it first."""
    _reshape(index, lambda m: {k: v for k, v in m.items() if k not in ("corpus", "terms")})


def _read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)


@pytest.fixture
def writable_again():
    folders = []
    yield folders.append
    for folder in folders:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_a_read_only_index_made_by_an_older_qa_still_answers(corpus, index, writable_again):
    plain = _without_privileges()
    common = ("--corpus", corpus, "--index", index)
    _made_by_an_older_qa(index)
    _read_only(index)
    writable_again(index)
    before = sorted(p.name for p in index.iterdir())
    done = fake_qa("search", "storm eleven days", *common, prefix=plain)
    assert done.returncode == 0 and "lighthouse.txt" in done.stdout, done.stderr
    done = fake_qa("ask", "How long did the storm last?", *common, prefix=plain)
    assert done.returncode == 0, done.stderr
    assert "lighthouse.txt" in done.stdout
    [line] = done.stderr.splitlines()
    assert line.startswith("qa: warning: ") and "older qa" in line and "read-only" in line, line
    line = one_line(fake_qa("index", *common, prefix=plain))
    assert line == f"qa: cannot write the index in {index} (Permission denied)", line
    assert sorted(p.name for p in index.iterdir()) == before


# -- 22: a long text is chunked a batch at a time, with progress -------------------------------


def _paragraphs(count: int, blank_lines: bool) -> str:
    import random

    rng = random.Random(11)
    vocabulary = ["harbour", "keeper", "storm", "ledger", "ferry", "orchard", "quill", "tide",
                  "beacon", "lantern", "gull", "pier", "winter", "island", "logbook"]
    paragraphs = []
    for _ in range(count):
        sentences = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(5, 20))).capitalize()
                     + rng.choice([".", "!", "?"]) for _ in range(rng.randint(2, 7))]
        paragraphs.append(" ".join(sentences))
    return ("\n\n" if blank_lines else "\n").join(paragraphs) + "\n"


def test_chunking_a_batch_at_a_time_gives_the_same_chunks(monkeypatch):
    from qa.config import MAX_CHUNK_TOKENS
    from qa.index import chunk_batches
    from qa.ingest.boilerplate import content_segments
    from qa.ingest.chunking import chunk_segments, default_token_counter

    counter = default_token_counter()
    text = _paragraphs(300, blank_lines=True)
    segments = content_segments(text)
    whole = chunk_segments(text, segments, counter, MAX_CHUNK_TOKENS)
    monkeypatch.setattr(chunk_batches, "CHUNK_BATCH_CHARS", 2000)
    reached = []
    assert list(chunk_batches.chunk_in_batches(text, segments, counter, reached.append)) == whole
    assert len(reached) > 10 and reached == sorted(reached) and reached[-1] < len(text)


def test_a_long_text_without_blank_lines_is_chunked_in_bounded_batches(monkeypatch):
    from qa.config import MAX_CHUNK_TOKENS
    from qa.index import chunk_batches
    from qa.ingest.boilerplate import content_segments
    from qa.ingest.chunking import default_token_counter

    text = _paragraphs(300, blank_lines=False)  # one paragraph a line: one long segment
    segments = content_segments(text)
    assert len(segments) == 1
    monkeypatch.setattr(chunk_batches, "CHUNK_BATCH_CHARS", 2000)
    handed = []
    real = chunk_batches.chunk_segments

    def chunk_segments(text, batch, counter, max_tokens):
        handed.append(sum(e - s for s, e in batch))
        return real(text, batch, counter, max_tokens)

    monkeypatch.setattr(chunk_batches, "chunk_segments", chunk_segments)
    chunks = list(chunk_batches.chunk_in_batches(text, segments, default_token_counter()))
    assert len(handed) > 10 and max(handed) < 3 * 2000 + 1000
    # Every chunk is still exact and within budget, and no sentence is lost or cut.
    words = []
    for chunk in chunks:
        assert chunk.tokens <= MAX_CHUNK_TOKENS
        assert text[chunk.start:chunk.end].strip() == text[chunk.start:chunk.end]
        words += [w for s, e in chunk.sentences for w in text[s:e].split()]
    assert words == text.split()


def test_a_build_reports_progress_inside_a_long_document(corpus, tmp_path, monkeypatch):
    from qa.index import chunk_batches

    monkeypatch.setattr(chunk_batches, "CHUNK_BATCH_CHARS", 2000)
    (corpus / "long.txt").write_text(_paragraphs(200, blank_lines=True))
    events = []
    Engine(corpus, tmp_path / "index", FakeEmbedder()).sync(progress=events.append)
    chunking = [e for e in events if e.phase == "chunking"]
    assert len(chunking) > 10 and {e.unit for e in chunking} == {"KB"}
    characters = sum(len(p.read_text()) for p in corpus.rglob("*.*"))
    assert chunking[0].done == 0 and chunking[-1].done == chunking[-1].total == -(-characters // 1024)
    assert [e.done for e in chunking] == sorted(e.done for e in chunking)
    phases = [e.phase for e in events]
    assert phases.index("chunking") > phases.index("reading") and "chunking" not in phases[phases.index("embedding"):]
