"""The index folder: round trip, incremental add/edit/delete, stable ids, leftovers, compatibility,
the embedding cache, and the lock. All with the fake embedder (no model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, FakeEmbedder
from qa.index import caches, generations, indexer, lexical, locking, records, store, vectors
from qa.engine import Engine
from qa.errors import IndexBusy, IndexDamaged, IndexIncompatible, IndexMissing

# Each document is a few paragraphs separated by blank lines, with one rare word per paragraph
# that only it contains. A paragraph of a .txt file is its own chunk; the two paragraphs of the
# Markdown file, one section under no heading, are packed into one chunk: 7 chunks in all.
DOCS = {
    "harbour.txt": [
        "The harbour board approved the zephyrine breakwater on Monday after a long debate.",
        "Fishermen said the old pier flooded every winter and the nets were lost twice.",
        "The works will start in spring and finish before the autumn storms arrive.",
    ],
    "orchard.md": [
        "The orchard cooperative planted four hundred quillberry trees along the river terraces.",
        "Volunteers pruned the older apple trees and repaired the irrigation channels.",
    ],
    "notes/railway.txt": [
        "The railway museum restored a marvolite steam engine built in the nineteenth century.",
        "Visitors can ride the restored carriages on the first Sunday of every month.",
        "The museum shop sells postcards, maps and small brass models of the locomotives.",
    ],
}


def write_doc(corpus: Path, source: str, paragraphs: list[str]) -> Path:
    path = corpus / source
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    for source, paragraphs in DOCS.items():
        write_doc(folder, source, paragraphs)
    return folder


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return tmp_path / "index"


def engine_for(corpus: Path, index_dir: Path, embedder=None) -> Engine:
    return Engine(corpus, index_dir, embedder or FakeEmbedder())


def sources_for(engine: Engine, query: str, k: int = 10) -> list[str]:
    return [p.source for p in engine.search(query, k=k)]


def chunk_ids(snapshot) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = {}
    for chunk in snapshot.chunks:
        ids.setdefault(chunk.source, []).append(chunk.id)
    return ids


def snapshot_of(index_dir: Path, embedder=None):
    return store.load_snapshot(index_dir, indexer.expected_params(embedder or FakeEmbedder()))


def check_whole(index_dir: Path, corpus: Path) -> None:
    """The live generation verifies, and every part of it agrees with the corpus."""
    snap = snapshot_of(index_dir)
    on_disk = {p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.is_file()}
    assert set(snap.documents) == on_disk
    assert snap.vectors.ntotal == len(snap.chunks)
    assert {c.source for c in snap.chunks} == on_disk
    ids = [c.id for c in snap.chunks]
    assert len(set(ids)) == len(ids)
    for chunk in snap.chunks:
        text = (corpus / chunk.source).read_text(encoding="utf-8")
        assert snap.documents[chunk.source].text == text
        assert snap.chunk_text(chunk) == text[chunk.start : chunk.end]
        # The stored vector is the embedding of exactly this chunk's text.
        expected = FakeEmbedder().encode([text[chunk.start : chunk.end]])[0]
        assert np.allclose(snap.vectors.reconstruct(chunk.id), expected, atol=1e-6)
    assert len(snap.bm25.vocab_dict) > 0


# -- round trip ------------------------------------------------------------------------------


def test_round_trip_build_reload_search(corpus, index_dir):
    report = engine_for(corpus, index_dir).sync()
    assert (report.added, report.updated, report.removed, report.unchanged) == (3, 0, 0, 0)
    assert report.documents == 3
    assert report.chunks == report.chunks_embedded == 7
    assert report.generation == 1

    # A new engine (a new process, in effect) reads the index back from disk.
    reloaded = engine_for(corpus, index_dir)
    assert reloaded.index_exists()
    check_whole(index_dir, corpus)
    passages = reloaded.search("quillberry trees", k=3)
    assert passages[0].source == "orchard.md"
    text = (corpus / "orchard.md").read_text(encoding="utf-8")
    for p in passages:
        assert p.text == (corpus / p.source).read_text(encoding="utf-8")[p.start : p.end]
    assert "quillberry" in text[passages[0].start : passages[0].end]

    manifest = json.loads((generations.current_path(index_dir) / "manifest.json").read_text())
    assert manifest["model"] == FakeEmbedder.name and manifest["dimension"] == FakeEmbedder.dimension
    assert manifest["chunking"] == indexer.CHUNKING
    assert set(manifest["files"]) >= {"vectors.faiss", "chunks.json", "documents.json", "terms.json"}
    assert not list(index_dir.rglob("*.pkl")) and not list(index_dir.rglob("*.pickle"))
    stats = reloaded.stats()
    assert (stats["documents"], stats["chunks"], stats["changed_since_build"]) == (3, 7, 0)


def test_search_without_an_index_says_how_to_build_one(corpus, index_dir):
    engine = engine_for(corpus, index_dir)
    assert not engine.index_exists()
    with pytest.raises(IndexMissing, match="qa index"):
        engine.search("anything")


# -- incremental -----------------------------------------------------------------------------


def test_nothing_changed_embeds_nothing_and_never_calls_the_model(corpus, index_dir):
    engine_for(corpus, index_dir).sync()
    before = sorted(p.name for p in index_dir.iterdir())

    class NoModel(FakeEmbedder):
        model_loaded = False

        def load(self):
            raise AssertionError("the model was loaded although nothing changed")

        def load_model(self):
            raise AssertionError("the model was loaded although nothing changed")

        def encode(self, texts, batch_size=32):
            raise AssertionError("the model was called although nothing changed")

    # Touching a file (new mtime, same bytes) is not a change either.
    os.utime(corpus / "harbour.txt", ns=(1, 1))
    report = engine_for(corpus, index_dir, NoModel()).sync()
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 0, 3)
    assert report.chunks_embedded == 0 and report.generation == 1 and not report.changed
    assert report.chunks == 7
    assert sorted(p.name for p in index_dir.iterdir()) == before


def test_a_build_says_it_is_loading_the_model_before_embedding(corpus, index_dir):
    from qa.index.reports import LOADING_MODEL

    class SlowModel(FakeEmbedder):
        model_loaded = False

        def needs_model(self, texts):
            return True

        def load_model(self):
            self.model_loaded = True

    phases = []
    engine_for(corpus, index_dir, SlowModel()).sync(progress=lambda p: phases.append((p.phase, p.total)))
    names = [phase for phase, _ in phases]
    assert (LOADING_MODEL, 0) in phases
    assert names.index(LOADING_MODEL) < names.index("embedding")
    assert "reading" in names[:names.index(LOADING_MODEL)]

    # A small update that does not need the full model says nothing of loading it.
    class FewChunks(SlowModel):
        def needs_model(self, texts):
            return False

        def load_model(self):
            raise AssertionError("loaded the model for a few chunks")

    write_doc(corpus, "notes/extra.txt", ["A new note about the lighthouse keeper's garden."])
    phases.clear()
    engine_for(corpus, index_dir, FewChunks()).sync(progress=lambda p: phases.append((p.phase, p.total)))
    assert LOADING_MODEL not in [phase for phase, _ in phases] and ("embedding", 1) in phases


def test_add_a_document(corpus, index_dir):
    engine_for(corpus, index_dir).sync()
    ids_before = chunk_ids(snapshot_of(index_dir))
    write_doc(corpus, "notes/garden.txt", [
        "The botanical garden opened a glasshouse for trembleweed orchids last week.",
        "Entry is free for children under twelve on weekdays.",
    ])
    embedder = FakeEmbedder()
    engine = engine_for(corpus, index_dir, embedder)
    report = engine.sync()
    assert (report.added, report.updated, report.removed, report.unchanged) == (1, 0, 0, 3)
    assert report.sources == {"added": ["notes/garden.txt"]}
    assert report.changes() == ["added: notes/garden.txt"]
    assert report.to_json()["added_sources"] == ["notes/garden.txt"]
    assert report.chunks_embedded == 2 == embedder.texts_encoded
    assert (report.documents, report.chunks, report.generation) == (4, 9, 2)
    assert sources_for(engine, "trembleweed orchids glasshouse")[0] == "notes/garden.txt"
    after = chunk_ids(snapshot_of(index_dir))
    assert {s: after[s] for s in ids_before} == ids_before  # untouched documents keep their ids
    assert min(after["notes/garden.txt"]) > max(i for ids in ids_before.values() for i in ids)
    check_whole(index_dir, corpus)


def test_changed_files_reads_a_touched_or_edited_file_once(corpus, index_dir, monkeypatch):
    import qa.engine

    engine = engine_for(corpus, index_dir)
    engine.sync()
    read = []
    real = qa.engine.file_sha256
    monkeypatch.setattr(qa.engine, "file_sha256", lambda path: read.append(path.name) or real(path))
    os.utime(corpus / "harbour.txt", ns=(1, 1))  # new stamp, same bytes: not a change
    for _ in range(3):  # the app asks every few seconds
        assert engine.changed_files() == []
    assert read == ["harbour.txt"]
    (corpus / "harbour.txt").write_text("The harbour was dredged again in May.\n")
    for _ in range(3):
        assert engine.changed_files() == ["harbour.txt"]
    assert read == ["harbour.txt", "harbour.txt"]


def test_edit_a_document_re_embeds_only_its_changed_chunks(corpus, index_dir):
    engine_for(corpus, index_dir).sync()
    ids_before = chunk_ids(snapshot_of(index_dir))
    paragraphs = list(DOCS["harbour.txt"])
    paragraphs[1] = "Fishermen said the new pier would shelter the glimmerfin boats all winter."
    write_doc(corpus, "harbour.txt", paragraphs)

    embedder = FakeEmbedder()
    engine = engine_for(corpus, index_dir, embedder)
    report = engine.sync()
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 1, 0, 2)
    assert report.chunks_embedded == 1 == embedder.texts_encoded  # the two other paragraphs are reused
    assert report.chunks == 7
    passages = engine.search("glimmerfin boats", k=3)
    assert passages[0].source == "harbour.txt" and "glimmerfin" in passages[0].text
    assert not any("nets were lost" in p.text for p in engine.search("nets were lost", k=10))
    after = chunk_ids(snapshot_of(index_dir))
    for source in ("orchard.md", "notes/railway.txt"):
        assert after[source] == ids_before[source]
    check_whole(index_dir, corpus)


def test_delete_a_document_removes_it_from_every_part(corpus, index_dir):
    engine_for(corpus, index_dir).sync()
    assert sources_for(engine_for(corpus, index_dir), "marvolite steam engine")[0] == "notes/railway.txt"
    ids_before = chunk_ids(snapshot_of(index_dir))
    (corpus / "notes/railway.txt").unlink()

    embedder = FakeEmbedder()
    engine = engine_for(corpus, index_dir, embedder)
    report = engine.sync()
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 1, 2)
    assert report.changes() == ["removed: notes/railway.txt"]
    assert report.chunks_embedded == 0 == embedder.texts_encoded
    assert (report.documents, report.chunks) == (2, 4)
    assert "notes/railway.txt" not in sources_for(engine, "marvolite steam engine museum")
    snap = snapshot_of(index_dir)
    for chunk_id in ids_before["notes/railway.txt"]:
        with pytest.raises(RuntimeError):
            snap.vectors.reconstruct(chunk_id)
    assert "marvolite" not in snap.doc_freq
    assert "marvolit" not in snap.doc_freq
    assert {s: ids for s, ids in chunk_ids(snap).items()} == {
        s: ids_before[s] for s in ("harbour.txt", "orchard.md")}
    check_whole(index_dir, corpus)


def test_delete_then_re_add_reuses_nothing_stale(corpus, index_dir):
    engine_for(corpus, index_dir).sync()
    saved = (corpus / "orchard.md").read_text(encoding="utf-8")
    (corpus / "orchard.md").unlink()
    engine_for(corpus, index_dir).sync()
    (corpus / "orchard.md").write_text(saved, encoding="utf-8")
    report = engine_for(corpus, index_dir).sync()
    assert report.added == 1 and report.chunks == 7
    check_whole(index_dir, corpus)


def test_rename_keeps_vectors_and_moves_the_source(corpus, index_dir):
    engine_for(corpus, index_dir).sync()
    (corpus / "orchard.md").rename(corpus / "farm.md")
    embedder = FakeEmbedder()
    engine = engine_for(corpus, index_dir, embedder)
    report = engine.sync()
    assert (report.added, report.removed) == (1, 1)
    assert report.chunks_embedded == 0 == embedder.texts_encoded  # same chunk texts, same vectors
    assert sources_for(engine, "quillberry trees")[0] == "farm.md"
    check_whole(index_dir, corpus)


def test_a_document_edited_down_to_a_menu_loses_its_old_chunks(corpus, index_dir):
    engine_for(corpus, index_dir).sync()
    old_ids = set(chunk_ids(snapshot_of(index_dir))["orchard.md"])
    (corpus / "orchard.md").write_text("Home\nNews\nContact us\n", encoding="utf-8")
    engine = engine_for(corpus, index_dir)
    report = engine.sync()
    assert (report.updated, report.unchanged, report.documents) == (1, 2, 3)
    snap = snapshot_of(index_dir)
    now = chunk_ids(snap).get("orchard.md", [])
    assert not old_ids & set(now)
    assert report.chunks == 6 + len(now)
    assert all("quillberry" not in snap.chunk_text(c) for c in snap.chunks)
    assert not any("quillberry" in p.text for p in engine.search("quillberry trees", k=10))
    assert engine.stats()["changed_since_build"] == 0
    check_whole(index_dir, corpus)


def test_identical_chunks_share_vectors_but_not_ids(corpus, index_dir):
    # Lines of 30 words or more, so the boilerplate rule for repeated lines leaves them alone.
    long_line = " ".join(["The cooperative measured rainfall on the terraces every morning"] * 4) + "."
    write_doc(corpus, "rain.txt", [long_line])
    engine_for(corpus, index_dir).sync()
    write_doc(corpus, "rain-copy.txt", [long_line])
    embedder = FakeEmbedder()
    report = engine_for(corpus, index_dir, embedder).sync()
    assert report.added == 1 and report.chunks == 9
    assert report.chunks_embedded == 0 == embedder.calls
    ids = chunk_ids(snapshot_of(index_dir))
    assert len(ids["rain.txt"]) == len(ids["rain-copy.txt"]) == 1
    assert ids["rain.txt"] != ids["rain-copy.txt"]
    check_whole(index_dir, corpus)


def test_seeds_copy_edit_is_reflected(seeds_copy, index_dir):
    engine_for(seeds_copy, index_dir).sync()
    first = sorted(seeds_copy.glob("*.txt"))[0]
    text = first.read_text(encoding="utf-8")
    first.write_text(text + "\nA spokesman confirmed the pelorvane agreement was signed at noon.\n",
                     encoding="utf-8")
    embedder = FakeEmbedder()
    engine = engine_for(seeds_copy, index_dir, embedder)
    report = engine.sync()
    assert (report.updated, report.unchanged) == (1, 4)
    assert 1 <= report.chunks_embedded <= 2  # the new paragraph, maybe the one it joined
    assert engine.search("pelorvane agreement", k=1)[0].source == first.name


# -- leftovers, damage, compatibility ---------------------------------------------------------


def test_leftovers_are_cleaned_by_the_next_run(corpus, index_dir):
    engine_for(corpus, index_dir).sync()
    live = generations.current_path(index_dir)
    (index_dir / ".build-000007-4242").mkdir()
    (index_dir / ".build-000007-4242" / "vectors.faiss").write_bytes(b"half written")
    (index_dir / "gen-000000").mkdir()
    (index_dir / "CURRENT.tmp-4242").write_text("gen-000007\n")

    report = engine_for(corpus, index_dir).sync()  # nothing changed: still cleans up
    assert report.chunks_embedded == 0
    assert sorted(p.name for p in index_dir.iterdir()) == sorted([".lock", "CURRENT", live.name])

    (index_dir / ".build-000009-1").mkdir()
    (corpus / "orchard.md").unlink()
    report = engine_for(corpus, index_dir).sync()
    assert report.generation == 2  # numbering moves past the old generation, not the leftover
    names = sorted(p.name for p in index_dir.iterdir())
    assert names == sorted([".lock", "CURRENT", generations.current_path(index_dir).name])
    assert live.name not in names  # the previous generation is gone once the new one is live
    check_whole(index_dir, corpus)


def test_damaged_index_is_refused_then_rebuilt(corpus, index_dir):
    engine_for(corpus, index_dir).sync()
    live = generations.current_path(index_dir)
    with open(live / "chunks.json", "r+b") as handle:
        handle.truncate(10)
    with pytest.raises(IndexDamaged, match="--rebuild"):
        snapshot_of(index_dir)
    warnings = []
    report = engine_for(corpus, index_dir).sync(warn=lambda s, r: warnings.append(r))
    assert report.added == 3 and report.chunks_embedded == 7
    assert warnings and "rebuilding" in warnings[0]
    check_whole(index_dir, corpus)


def test_garbled_pointer_is_damage_not_a_traceback(corpus, index_dir):
    engine_for(corpus, index_dir).sync()
    (index_dir / "CURRENT").write_text("../../etc\n")
    with pytest.raises(IndexDamaged):
        snapshot_of(index_dir)
    engine_for(corpus, index_dir).sync()
    check_whole(index_dir, corpus)


class OtherModel(FakeEmbedder):
    name = "another-model"


def test_another_model_is_refused_with_a_clear_message_and_rebuild_works(corpus, index_dir):
    engine_for(corpus, index_dir).sync()
    other = engine_for(corpus, index_dir, OtherModel())
    with pytest.raises(IndexIncompatible) as refused:
        other.sync()
    message = str(refused.value)
    assert "another-model" in message and FakeEmbedder.name in message and "--rebuild" in message
    with pytest.raises(IndexIncompatible):
        other.search("quillberry")

    report = other.sync(rebuild=True)
    assert report.added == 3 and report.chunks_embedded == 7
    manifest = generations.read_manifest(index_dir)
    assert manifest["model"] == "another-model"
    assert [p.source for p in other.search("quillberry trees", k=1)] == ["orchard.md"]
    with pytest.raises(IndexIncompatible):
        engine_for(corpus, index_dir).sync()


def test_other_chunking_parameters_are_refused(corpus, index_dir, monkeypatch):
    engine_for(corpus, index_dir).sync()
    monkeypatch.setattr(indexer, "CHUNKING", {**indexer.CHUNKING, "max_tokens": 120})
    with pytest.raises(IndexIncompatible, match="chunking.*--rebuild"):
        engine_for(corpus, index_dir).sync()
    report = engine_for(corpus, index_dir).sync(rebuild=True)
    assert report.added == 3 and report.chunks_embedded == report.chunks
    assert generations.read_manifest(index_dir)["chunking"]["max_tokens"] == 120


def test_another_schema_is_refused(corpus, index_dir):
    engine_for(corpus, index_dir).sync()
    live = generations.current_path(index_dir)
    manifest = json.loads((live / "manifest.json").read_text())
    manifest["schema"] = records.SCHEMA + 1
    (live / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexIncompatible, match="schema"):
        engine_for(corpus, index_dir).sync()


def test_an_index_made_by_an_older_qa_is_rebuilt_by_qa_index(corpus, index_dir):
    engine_for(corpus, index_dir).sync()
    live = generations.current_path(index_dir)
    manifest = json.loads((live / "manifest.json").read_text())
    manifest["schema"] = records.SCHEMA - 1
    (live / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexIncompatible, match="older qa.*run `qa index`"):
        engine_for(corpus, index_dir).snapshot
    warnings = []
    report = engine_for(corpus, index_dir).sync(warn=lambda source, reason: warnings.append(reason))
    assert report.added == 3 and report.chunks_embedded == report.chunks
    assert any("older qa" in w for w in warnings)
    assert generations.read_manifest(index_dir)["schema"] == records.SCHEMA


class RefusingEmbedder(FakeEmbedder):
    def encode(self, texts, batch_size=32):
        raise AssertionError("the model was called although no chunk changed")

    def encode_chunks(self, texts, spans):
        raise AssertionError("the model was called although no chunk changed")


def test_an_index_made_under_older_word_rules_gets_its_bm25_recomputed(corpus, index_dir,
                                                                        monkeypatch):
    # An index whose BM25 was made with other word rules (here: plain lower-cased words).
    monkeypatch.setattr(store, "terms", lambda text: text.lower().split())
    monkeypatch.setattr(indexer, "TERM_RULES", 1)
    engine_for(corpus, index_dir).sync()
    assert generations.read_manifest(index_dir)["terms"] == 1
    monkeypatch.undo()
    texts = [(corpus / c.source).read_text()[c.start:c.end] for c in snapshot_of(index_dir).chunks]
    _, fresh = store.bm25_index(texts)
    assert "say" in fresh  # "Fishermen said ..."
    # Loading answers with BM25 under today's rules at once ...
    assert snapshot_of(index_dir).doc_freq == fresh
    assert "harbour.txt" in sources_for(engine_for(corpus, index_dir), "what did the fishermen say")
    # ... and the next sync stores it, embedding nothing again.
    report = engine_for(corpus, index_dir, RefusingEmbedder()).sync()
    assert report.chunks_embedded == 0
    assert generations.read_manifest(index_dir)["terms"] == lexical.TERM_RULES
    assert json.loads((generations.current_path(index_dir) / "terms.json").read_text()) == fresh


def test_qa_ask_updates_an_index_made_before_folders_and_word_rules_were_recorded(
        corpus, index_dir, monkeypatch, capsys):
    import qa.engine
    from qa.cli import main

    monkeypatch.setattr(qa.engine, "MiniLMEmbedder", FakeEmbedder)
    engine_for(corpus, index_dir).sync()
    live = generations.current_path(index_dir)
    manifest = json.loads((live / "manifest.json").read_text())
    del manifest["corpus"], manifest["terms"]
    (live / "manifest.json").write_text(json.dumps(manifest))
    assert engine_for(corpus, index_dir).index_outdated()
    capsys.readouterr()
    assert main(["ask", "quillberry trees", "--corpus", str(corpus), "--index", str(index_dir)]) == 0
    assert "older qa; updating it" in capsys.readouterr().err
    updated = generations.read_manifest(index_dir)
    assert updated["corpus"] == str(corpus.resolve()) and updated["terms"] == lexical.TERM_RULES
    assert not engine_for(corpus, index_dir).index_outdated()


def test_qa_ask_rebuilds_an_index_made_by_an_older_qa(corpus, index_dir, monkeypatch, capsys):
    import qa.engine
    from conftest import FakeEmbedder
    from qa.cli import main

    monkeypatch.setattr(qa.engine, "MiniLMEmbedder", FakeEmbedder)
    engine_for(corpus, index_dir).sync()
    live = generations.current_path(index_dir)
    manifest = json.loads((live / "manifest.json").read_text())
    manifest["schema"] = records.SCHEMA - 1
    (live / "manifest.json").write_text(json.dumps(manifest))
    assert engine_for(corpus, index_dir).index_outdated()
    capsys.readouterr()
    assert main(["ask", "quillberry trees", "--corpus", str(corpus), "--index", str(index_dir)]) == 0
    assert "made by an older qa; rebuilding it" in capsys.readouterr().err
    assert not engine_for(corpus, index_dir).index_outdated()


# -- the embedding cache ---------------------------------------------------------------------


def test_embedding_cache_survives_a_torn_tail(tmp_path):
    cache = caches.EmbeddingCache(tmp_path, "m", 4)
    keys = [f"{i:040x}" for i in range(5)]
    vectors = np.arange(20, dtype=np.float32).reshape(5, 4)
    cache.append(keys[:3], vectors[:3])
    cache.append(keys[3:], vectors[3:])
    # kill -9 in the middle of the next append: half a vector written, no key for it.
    with open(cache.vectors_path, "ab") as handle:
        handle.write(np.ones(4, dtype=np.float32).tobytes()[:6])
    loaded = cache.load()
    assert set(loaded) == set(keys)
    for i, key in enumerate(keys):
        assert np.array_equal(loaded[key], vectors[i])
    # ...or the vector written and the key torn mid-line.
    cache.append([f"{9:040x}"], np.full((1, 4), 9, dtype=np.float32))
    with open(cache.keys_path, "a", encoding="ascii") as handle:
        handle.write("abc")
    with open(cache.vectors_path, "ab") as handle:
        handle.write(np.full(4, 7, dtype=np.float32).tobytes())
    loaded = cache.load()
    assert len(loaded) == 6 and np.array_equal(loaded[f"{9:040x}"], np.full(4, 9, dtype=np.float32))
    # Appends after a repair line up with their keys.
    cache.append([f"{10:040x}"], np.full((1, 4), 10, dtype=np.float32))
    loaded = cache.load()
    assert len(loaded) == 7 and np.array_equal(loaded[f"{10:040x}"], np.full(4, 10, dtype=np.float32))
    # A vector without its key (killed between the two writes) is dropped.
    with open(cache.vectors_path, "ab") as handle:
        handle.write(np.full(4, 11, dtype=np.float32).tobytes())
    assert len(cache.load()) == 7
    cache.clear()
    assert cache.load() == {}


def test_embedding_cache_is_per_model(tmp_path):
    caches.EmbeddingCache(tmp_path, "m1", 4).append([f"{1:040x}"], np.ones((1, 4), dtype=np.float32))
    assert caches.EmbeddingCache(tmp_path, "m2", 4).load() == {}
    assert len(caches.EmbeddingCache(tmp_path, "m1", 4).load()) == 1


class Interrupted(Exception):
    pass


class DiesAfter(FakeEmbedder):
    """Embeds ``batches`` batches, then fails the way Ctrl-C would."""

    def __init__(self, batches: int):
        super().__init__()
        self.batches = batches

    def encode(self, texts, batch_size=32):
        if self.calls >= self.batches:
            raise Interrupted
        return super().encode(texts, batch_size)


def test_an_interrupted_build_keeps_the_old_index_and_the_next_reuses_its_work(
        corpus, index_dir, monkeypatch):
    engine_for(corpus, index_dir).sync()
    before = sources_for(engine_for(corpus, index_dir), "marvolite steam engine")
    for n in range(12):
        write_doc(corpus, f"bulk/{n:02d}.txt", [f"Report {n} counted {n * 7} boats in the bay.",
                                                f"Inspector {n} signed page {n + 3} of the log."])
    monkeypatch.setattr(vectors, "EMBED_BATCH", 5)
    with pytest.raises(Interrupted):
        engine_for(corpus, index_dir, DiesAfter(batches=2)).sync()

    # The old generation is still the live one, whole, and answers the same way.
    assert generations.current_path(index_dir).name == "gen-000001"
    assert sources_for(engine_for(corpus, index_dir), "marvolite steam engine") == before
    cached = caches.EmbeddingCache(index_dir, FakeEmbedder.name, FakeEmbedder.dimension).load()
    assert len(cached) == 10

    embedder = FakeEmbedder()
    report = engine_for(corpus, index_dir, embedder).sync()
    assert report.added == 12 and report.chunks == 7 + 24
    assert report.chunks_embedded == 14 == embedder.texts_encoded  # 24 new, 10 from the cache
    assert not (index_dir / "cache").exists()
    check_whole(index_dir, corpus)


# -- the lock --------------------------------------------------------------------------------


class Gated(FakeEmbedder):
    """Blocks inside encode until released, to hold a build open."""

    def __init__(self):
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def encode(self, texts, batch_size=32):
        self.entered.set()
        assert self.release.wait(30)
        return super().encode(texts, batch_size)


def test_two_builds_at_once_the_second_waits_and_the_index_is_whole(corpus, index_dir):
    first_embedder = Gated()
    waited = threading.Event()
    results: dict[str, object] = {}

    def run(name, embedder, **kwargs):
        try:
            results[name] = engine_for(corpus, index_dir, embedder).sync(**kwargs)
        except Exception as exc:  # surfaced by the asserts below
            results[name] = exc

    first = threading.Thread(target=run, args=("first", first_embedder))
    first.start()
    assert first_embedder.entered.wait(30)
    # While the first build is embedding, a document is added and a second build starts.
    write_doc(corpus, "late.txt", ["A late report about the velloran festival arrived at midnight."])
    second = threading.Thread(target=run, args=("second", FakeEmbedder()),
                              kwargs={"on_wait": waited.set})
    second.start()
    assert waited.wait(30), "the second build did not wait for the lock"
    assert second.is_alive()
    first_embedder.release.set()
    first.join(30)
    second.join(30)
    assert not first.is_alive() and not second.is_alive()
    assert not isinstance(results["first"], Exception), results["first"]
    assert not isinstance(results["second"], Exception), results["second"]
    final = results["second"]
    assert final.documents == 4 and final.added == 1
    check_whole(index_dir, corpus)
    engine = engine_for(corpus, index_dir)
    assert engine.search("velloran festival", k=1)[0].source == "late.txt"
    assert sorted(p.name for p in index_dir.iterdir()) == sorted(
        [".lock", "CURRENT", generations.current_path(index_dir).name])


def test_the_lock_is_released_when_its_holder_is_killed(corpus, index_dir):
    index_dir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from qa.index.locking import IndexLock\n"
         "with IndexLock(Path(sys.argv[1])):\n"
         "    print('locked', flush=True); time.sleep(60)\n",
         str(index_dir)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexBusy, match="another"):
            with locking.IndexLock(index_dir, wait=False):
                pass
        holder.kill()
        holder.wait(10)
        with locking.IndexLock(index_dir, wait=False):  # free at once: the kernel dropped it
            pass
        assert engine_for(corpus, index_dir).sync().added == 3
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_a_reader_racing_a_build_reads_the_new_generation(corpus, index_dir, monkeypatch):
    engine_for(corpus, index_dir).sync()
    verify = generations.verify_files
    raced = []

    def verify_while_a_build_switches(path, manifest):
        # The reader has read CURRENT and the manifest; now another build finishes and removes
        # the generation it was about to read.
        if not raced:
            raced.append(path.name)
            write_doc(corpus, "late.txt", ["A late report about the velloran festival arrived."])
            engine_for(corpus, index_dir).sync()
        return verify(path, manifest)

    monkeypatch.setattr(generations, "verify_files", verify_while_a_build_switches)
    snap = snapshot_of(index_dir)
    assert raced == ["gen-000001"]
    assert snap.generation == 2 and "late.txt" in snap.documents


def test_nearest_occurrence_picks_the_copy_closest_to_the_old_place():
    from qa.engine import nearest_occurrence

    text = "Cited. Other text. Cited. More text here. Cited."
    assert nearest_occurrence(text, "Cited.", 0) == 0
    assert nearest_occurrence(text, "Cited.", 21) == 19
    assert nearest_occurrence(text, "Cited.", 100) == 42
    assert nearest_occurrence(text, "Gone.", 0) is None
    assert nearest_occurrence(text, "", 0) is None
