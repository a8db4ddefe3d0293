"""qa serve under load, with the real model: concurrent clients get no error and answers identical
to `qa ask --json -`'s, and answers keep coming while POST /index rebuilds. A short run here (a
fixed number of questions, the rebuild held until answers were served during it); the 60 s run
with 32 clients is benchmarks/serve_load.py, run by the slow test below (--slow)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from serving import running

from qa.engine import Engine
from qa.serve.http import create_app

pytestmark = pytest.mark.model
ROOT = Path(__file__).resolve().parent.parent


def benchmark():
    spec = importlib.util.spec_from_file_location("serve_load", ROOT / "benchmarks" / "serve_load.py")
    module = sys.modules["serve_load"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_concurrent_clients_get_the_clis_answers_during_a_rebuild(seeds_engine, tmp_path):
    load_module = benchmark()
    index = tmp_path / "index"
    shutil.copytree(seeds_engine.index_dir, index)
    questions = load_module.QUESTIONS
    reference, _, _ = load_module.cli_reference(seeds_engine.corpus, index, questions, rounds=1)

    engine = Engine(seeds_engine.corpus, index, seeds_engine.embedder)
    engine.load()
    # The rebuild waits, in its embedding step, until 20 answers were served after it started.
    rebuilding = threading.Event()
    enough = threading.Event()

    class Held:
        """The real embedder, whose chunk encoding waits for ``enough``."""

        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def encode_chunks(self, *args, **kwargs):
            rebuilding.set()
            enough.wait(120)
            return self.inner.encode_chunks(*args, **kwargs)

    engine.embedder = Held(seeds_engine.embedder)
    app = create_app(engine, workers=2)
    with running(app) as (host, port):
        server = SimpleNamespace(host=host, port=port)
        stop = threading.Event()
        load = load_module.run_clients(server, questions, reference, clients=8, stop=stop,
                                       per_client=2 * len(questions))
        status, _ = load_module.post(host, port, "/index", {"rebuild": True})
        assert status == 202
        assert rebuilding.wait(120)
        served_before = len(load.latencies)
        while len(load.latencies) < served_before + 20 and any(t.is_alive() for t in load.threads):
            threading.Event().wait(0.05)
        answered_during = len(load.latencies) - served_before
        enough.set()
        events = list(engine_events(app))
        for thread in load.threads:
            thread.join(300)
    assert load.errors == []
    assert load.mismatches == []
    assert answered_during >= 20
    assert events[-1]["event"] == "done" and events[-1]["chunks_embedded"] > 0
    assert engine.snapshot.generation == events[-1]["generation"]
    assert len(load.latencies) == 8 * 2 * len(questions)


def engine_events(app):
    """The update's events, straight from the app's shared state."""
    api = app.app.state.api
    return (event for event in api.updates.events(timeout=5) if event is not None)


@pytest.mark.slow
def test_the_load_benchmark_passes(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "serve_load.py"),
                           "--clients", "32", "--seconds", "60"],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("PASS")


def test_qa_serve_answers_as_qa_ask_does(seeds_engine, tmp_path):
    load_module = benchmark()
    index = tmp_path / "index"
    shutil.copytree(seeds_engine.index_dir, index)
    reference, _, _ = load_module.cli_reference(seeds_engine.corpus, index, load_module.QUESTIONS[:3],
                                                rounds=1)
    server = load_module.start_server(seeds_engine.corpus, index, tmp_path / "serve.log")
    try:
        for question in load_module.QUESTIONS[:3]:
            status, answer = load_module.post(server.host, server.port, "/ask", {"question": question})
            assert status == 200 and load_module.comparable(answer) == reference[question]
    finally:
        server.stop()
    # uvicorn shuts down gracefully on SIGTERM, then ends by that signal, as a server should.
    assert server.process.returncode == -15
    log = (tmp_path / "serve.log").read_text()
    assert f"qa: serving {seeds_engine.corpus} on http://127.0.0.1:{server.port}" in log
    assert "Traceback" not in log
