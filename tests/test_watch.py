"""`qa index --watch`: the index follows the folder (add, edit, rename, delete, a burst of saves),
and ctrl+c at any moment leaves a whole index."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, FakeEmbedder
from qa.engine import Engine

WAIT = 20  # seconds an update may take to arrive (debounced by about half a second)


class Watching:
    """Engine.watch in a thread, its reports in a queue."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.reports: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.engine.watch(self.reports.put, stop=self.stop)

    def __enter__(self) -> "Watching":
        self.thread.start()
        time.sleep(0.5)  # the watch is set up
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()

    def next(self):
        return self.reports.get(timeout=WAIT)

    def quiet(self, seconds: float = 2.5) -> bool:
        try:
            self.reports.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


def test_the_index_follows_the_folder(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ferry.txt").write_text("The harbour ferry leaves the north quay every twenty minutes.\n")
    embedder = FakeEmbedder()
    engine = Engine(corpus, tmp_path / "index", embedder)
    engine.sync()
    with Watching(engine) as watching:
        (corpus / "pier.md").write_text("# Pier\n\nThe island pier was rebuilt in 2019 with oak.\n")
        report = watching.next()
        assert report.sources == {"added": ["pier.md"]}
        assert engine.search("island pier rebuilt oak", k=1)[0].source == "pier.md"

        (corpus / "pier.md").write_text("# Pier\n\nThe island pier was rebuilt in 2021 with larch.\n")
        assert watching.next().sources == {"updated": ["pier.md"]}
        assert "larch" in engine.document_text("pier.md")

        # A burst of saves is one update.
        for n in range(8):
            with open(corpus / "ferry.txt", "a") as handle:
                handle.write(f"Timetable change number {n} was announced at the quay.\n")
            time.sleep(0.05)
        assert watching.next().sources == {"updated": ["ferry.txt"]}
        assert watching.quiet()

        # A move is the old name removed and the new one added, its chunks not embedded again.
        (corpus / "archive").mkdir()
        texts_before = embedder.texts_encoded
        os.replace(corpus / "pier.md", corpus / "archive" / "pier.md")
        report = watching.next()
        assert report.sources == {"added": ["archive/pier.md"], "removed": ["pier.md"]}
        assert report.chunks_embedded == 0 and embedder.texts_encoded == texts_before

        (corpus / "ferry.txt").unlink()
        assert watching.next().sources == {"removed": ["ferry.txt"]}
        assert set(engine.snapshot.documents) == {"archive/pier.md"}

        # Hidden files are not documents: no update.
        (corpus / ".notes.txt").write_text("A hidden scratch note.\n")
        assert watching.quiet()


def test_a_failed_update_is_reported_and_watching_goes_on(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ferry.txt").write_text("The harbour ferry leaves the north quay every twenty minutes.\n")
    engine = Engine(corpus, tmp_path / "index", FakeEmbedder())
    engine.sync()
    errors: list[str] = []
    reports: queue.Queue = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=engine.watch, args=(reports.put,),
                              kwargs={"on_error": lambda e: errors.append(str(e)), "stop": stop},
                              daemon=True)
    thread.start()
    time.sleep(0.5)
    (corpus / "ferry.txt").unlink()  # the folder holds no document: that update fails
    deadline = time.monotonic() + WAIT
    while not errors and time.monotonic() < deadline:
        time.sleep(0.1)
    assert errors and errors[0].startswith("no documents")
    (corpus / "quay.txt").write_text("The north quay is dredged every spring.\n")
    report = reports.get(timeout=WAIT)
    assert report.sources == {"added": ["quay.txt"], "removed": ["ferry.txt"]}
    stop.set()
    thread.join(10)


@pytest.mark.model
def test_ctrl_c_mid_update_leaves_the_previous_index(tmp_path):
    from test_crash import generate_bulk

    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    shutil.copy(ROOT / "seeds" / "000_5d4c552fcafd00ce.txt", corpus)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env["PYTHONUTF8"] = "1"
    watcher = subprocess.Popen([sys.executable, "-m", "qa", "index", "--watch", "--corpus",
                                str(corpus), "--index", str(index)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (index / "CURRENT").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        engine = Engine(corpus, index)
        generation = engine.snapshot.generation
        # 1,260 chunks: the update takes tens of seconds (the ONNX encoder embeds about 40 a
        # second here), so the interrupt lands in the middle of it.
        generate_bulk(corpus / "bulk", files=60)
        time.sleep(3.5)
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 0, err
    assert "Traceback" not in err
    assert err.rstrip().endswith("qa: stopped watching; the index is as the last finished update left it")
    assert "bulk/" not in out  # stopped before that update finished
    reopened = Engine(corpus, index)
    assert reopened.snapshot.generation == generation
    assert set(reopened.snapshot.documents) == {"000_5d4c552fcafd00ce.txt"}
    # (That the next build finishes the work, reusing what was embedded, test_crash shows.)


def test_qa_index_watch_names_each_skipped_file_once(tmp_path, monkeypatch, capsys):
    """The first build names the empty file; updates that still skip it for the same reason do
    not; fixed, it is not named; emptied again, it is named again."""
    import qa.engine
    import qa.index.watcher
    from qa.cli import main

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ferry.txt").write_text("The harbour ferry leaves the north quay every twenty minutes.\n")
    (corpus / "draft.txt").write_text("")
    warned: list[str] = []

    def batches(corpus, index_dir, stop=None, **options):
        """The folder's changes, made here one batch at a time; what each update warned."""
        for change in (lambda: (corpus / "pier.md").write_text("# Pier\n\nThe pier is oak.\n"),
                       lambda: (corpus / "quay.txt").write_text("The quay is dredged in spring.\n"),
                       lambda: (corpus / "draft.txt").write_text("The draft is written now.\n"),
                       lambda: (corpus / "draft.txt").write_text(""),
                       lambda: (corpus / "pier.md").write_text("# Pier\n\nThe pier is larch.\n")):
            warned.append(capsys.readouterr().err)
            change()
            yield ["changed"]
        warned.append(capsys.readouterr().err)

    monkeypatch.setattr(qa.engine, "MiniLMEmbedder", FakeEmbedder)
    monkeypatch.setattr(qa.index.watcher, "corpus_changes", batches)
    assert main(["index", "--watch", "--corpus", str(corpus), "--index", str(tmp_path / "i")]) == 0
    named = [err.count("skipped draft.txt: empty file") for err in warned]
    # first build, pier added, quay added, draft fixed, draft emptied, pier edited
    assert named == [1, 0, 0, 0, 1, 0], warned
    assert all(err.count("qa: warning:") == n for err, n in zip(warned, named)), warned
