"""Storage for large indexes (qa.index.ann, memory-mapped arrays, sampled checksums): fp16
vectors round trip, arrays are mapped not read, the approximate index above FLAT_LIMIT answers
and updates like the exact one, and damage is still found. All with the fake embedder."""

from __future__ import annotations

import json
import mmap
from pathlib import Path

import numpy as np
import pytest

from conftest import FakeEmbedder
from qa.index import ann, checksums, generations, indexer, store
from qa.engine import Engine
from qa.errors import IndexDamaged

WORDS = ("harbour pier breakwater orchard quillberry terrace railway museum engine carriage "
         "lantern meadow glacier canyon ferry market bakery violin theatre comet").split()


def write_corpus(folder: Path, documents: int, paragraphs: int = 4) -> None:
    """``documents`` files of ``paragraphs`` one-chunk paragraphs, each with its own rare word."""
    for d in range(documents):
        lines = [f"Note {d} paragraph {p} mentions the {WORDS[(d + p) % len(WORDS)]} and the "
                 f"rareword{d}x{p} of the {WORDS[(d * 3 + p) % len(WORDS)]}." for p in range(paragraphs)]
        path = folder / f"note{d:03d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n\n".join(lines) + "\n", encoding="utf-8")


def snapshot_of(index: Path):
    return store.load_snapshot(index, indexer.expected_params(FakeEmbedder()))


def test_an_approximate_index_stores_float16_vectors_that_round_trip(tmp_path, monkeypatch):
    monkeypatch.setattr(ann, "FLAT_LIMIT", 100)
    write_corpus(tmp_path / "c", 40)
    Engine(tmp_path / "c", tmp_path / "i", FakeEmbedder()).sync()
    snap = snapshot_of(tmp_path / "i")
    assert ann.is_approximate(snap.vectors)
    embedder = FakeEmbedder()
    for chunk in snap.chunks[::7]:
        expected = embedder.encode([snap.chunk_text(chunk)])[0]
        stored = snap.vectors.reconstruct(chunk.id)
        np.testing.assert_allclose(stored, expected.astype(np.float16).astype(np.float32), atol=1e-6)


def test_arrays_are_memory_mapped_not_read(tmp_path):
    write_corpus(tmp_path / "c", 3)
    Engine(tmp_path / "c", tmp_path / "i", FakeEmbedder()).sync()
    snap = snapshot_of(tmp_path / "i")
    assert is_mapped(snap.sentence_vectors)
    assert is_mapped(snap.words.vectors) and is_mapped(snap.words.ids)
    assert all(is_mapped(a) for a in snap.kept.values()) and len(snap.kept) >= 3
    assert is_mapped(snap.bm25.scores["data"])


def is_mapped(array: np.ndarray) -> bool:
    """Whether ``array`` is a view of a memory map (not a copy read into memory)."""
    while array is not None:
        if isinstance(array, (np.memmap, mmap.mmap)):
            return True
        array = getattr(array, "base", None)
    return False


def test_an_index_above_the_limit_is_approximate_and_finds_what_the_exact_one_finds(
        tmp_path, monkeypatch):
    write_corpus(tmp_path / "c", 40)  # 160 chunks
    exact = Engine(tmp_path / "c", tmp_path / "exact", FakeEmbedder())
    exact.sync()
    monkeypatch.setattr(ann, "FLAT_LIMIT", 100)
    approximate = Engine(tmp_path / "c", tmp_path / "ann", FakeEmbedder())
    approximate.sync()
    assert ann.is_approximate(approximate.snapshot.vectors)
    assert not ann.is_approximate(exact.snapshot.vectors)
    for d in (0, 17, 39):
        question = f"rareword{d}x2"
        assert approximate.search(question, k=1)[0].text == exact.search(question, k=1)[0].text


def test_an_approximate_index_removes_and_adds_by_id(tmp_path, monkeypatch):
    monkeypatch.setattr(ann, "FLAT_LIMIT", 100)
    corpus = tmp_path / "c"
    write_corpus(corpus, 40)
    engine = Engine(corpus, tmp_path / "i", FakeEmbedder())
    engine.sync()
    before = engine.snapshot
    gone = [c.id for c in before.chunks if c.source == "note005.txt"]
    (corpus / "note005.txt").unlink()
    (corpus / "extra.txt").write_text("The zanzibarine lighthouse keeper counted ships.\n")
    report = engine.sync()
    assert report.removed == 1 and report.added == 1
    snap = snapshot_of(tmp_path / "i")
    assert ann.is_approximate(snap.vectors) and snap.vectors.ntotal == len(snap.chunks)
    for chunk_id in gone:
        with pytest.raises(RuntimeError):
            snap.vectors.reconstruct(chunk_id)
    assert Engine(corpus, tmp_path / "i", FakeEmbedder()).search("zanzibarine lighthouse")[0].source \
        == "extra.txt"
    # Scoped to a few chunks, every one of them is reachable (all lists are probed).
    scoped = Engine(corpus, tmp_path / "i", FakeEmbedder())
    passages = scoped.search("lighthouse", k=3, scope=scoped.scope(["note007.txt"]))
    assert passages and {p.source for p in passages} == {"note007.txt"}


def test_an_approximate_index_shrinking_below_half_the_limit_is_exact_again(tmp_path, monkeypatch):
    monkeypatch.setattr(ann, "FLAT_LIMIT", 100)
    corpus = tmp_path / "c"
    write_corpus(corpus, 40)
    engine = Engine(corpus, tmp_path / "i", FakeEmbedder())
    engine.sync()
    for d in range(30):
        (corpus / f"note{d:03d}.txt").unlink()
    engine.sync()
    snap = snapshot_of(tmp_path / "i")
    assert not ann.is_approximate(snap.vectors)
    assert snap.vectors.ntotal == len(snap.chunks) == 40


def test_recall_at_10_of_the_approximate_index_against_exact():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(200, 64)).astype(np.float32)
    points = centres[rng.integers(0, 200, 20_000)] + rng.normal(0, 0.3, (20_000, 64)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    index = ann.approximate(np.arange(len(points), dtype=np.int64), points)
    queries = points[rng.integers(0, len(points), 100)] + rng.normal(0, 0.1, (100, 64)).astype(np.float32)
    truth = np.argsort(-(queries @ points.T), axis=1)[:, :10]
    _, found = index.search(queries.astype(np.float32), 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found)])
    assert recall >= 0.95, recall


def test_a_generation_without_sizes_loads_hashed_whole_and_its_update_records_them(tmp_path):
    write_corpus(tmp_path / "c", 5)
    engine = Engine(tmp_path / "c", tmp_path / "i", FakeEmbedder())
    engine.sync()
    path = generations.current_path(tmp_path / "i")
    # As an older qa wrote it: no sizes or samples in the manifest.
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["sizes"], manifest["samples"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert snapshot_of(tmp_path / "i").vectors.ntotal == 20
    _flip(path / "words-vectors.npy", 200)
    with pytest.raises(IndexDamaged):
        snapshot_of(tmp_path / "i")
    _flip(path / "words-vectors.npy", 200)
    (tmp_path / "c" / "note009.txt").write_text("A new note about the glacier ferry.\n")
    engine.sync()
    manifest = json.loads((generations.current_path(tmp_path / "i") / "manifest.json").read_text())
    assert set(manifest["sizes"]) == set(manifest["files"])


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_large_files_are_checked_by_size_and_samples_at_load_and_whole_by_verify(
        tmp_path, monkeypatch):
    monkeypatch.setattr(checksums, "WHOLE_HASH_BYTES", 0)  # every file counts as large
    monkeypatch.setattr(checksums, "SAMPLE_BYTES", 64)  # and its samples leave gaps
    write_corpus(tmp_path / "c", 30)
    Engine(tmp_path / "c", tmp_path / "i", FakeEmbedder()).sync()
    path = generations.current_path(tmp_path / "i")
    manifest = generations.manifest_at(path)
    assert set(manifest["samples"]) == set(manifest["files"])
    words = path / "words-vectors.npy"
    size = words.stat().st_size
    assert size > 64 * checksums.SAMPLE_BYTES  # the samples leave gaps
    snapshot_of(tmp_path / "i")
    # A byte between two sampled blocks: not seen at load, seen by a full verification.
    gap = (size - checksums.SAMPLE_BYTES) // (checksums.SAMPLE_BLOCKS - 1) + checksums.SAMPLE_BYTES + 1
    _flip(words, gap)
    snapshot_of(tmp_path / "i")
    with pytest.raises(IndexDamaged):
        generations.verify_generation(path)
    _flip(words, gap)
    _flip(words, size - 10)  # the last block is sampled
    with pytest.raises(IndexDamaged):
        snapshot_of(tmp_path / "i")
    _flip(words, size - 10)
    with open(words, "ab") as handle:  # longer than recorded
        handle.write(b"\0")
    with pytest.raises(IndexDamaged):
        snapshot_of(tmp_path / "i")


def test_a_columnar_generation_holds_what_the_json_one_holds(tmp_path, monkeypatch):
    from qa.index import tables

    corpus = tmp_path / "c"
    write_corpus(corpus, 12)
    (corpus / "guide.md").write_text("# Guide\n\n## Ferries\n\nThe ferry leaves at noon.\n\n"
                                     "- one item\n- two items\n\nCafé naïve — ünïcode text.\n")
    as_json = Engine(corpus, tmp_path / "json", FakeEmbedder())
    as_json.sync()
    monkeypatch.setattr(tables, "COLUMNAR_FROM", 10)
    columnar = Engine(corpus, tmp_path / "col", FakeEmbedder())
    columnar.sync()
    files = generations.manifest_at(generations.current_path(tmp_path / "col"))["files"]
    assert "chunks.npy" in files and "chunks.json" not in files and "documents.json" not in files
    a, b = snapshot_of(tmp_path / "json"), snapshot_of(tmp_path / "col")
    assert isinstance(b.chunks, tables.ChunkTable) and isinstance(b.documents, tables.DocumentTable)
    assert list(b.chunks) == list(a.chunks) and b.chunks[-1] == a.chunks[-1]
    assert dict(b.documents) == dict(a.documents)
    assert all(b.row_of_id[c.id] == row for row, c in enumerate(a.chunks))
    assert 10**9 not in b.row_of_id and b.row_of_id.get(10**9) is None
    assert np.array_equal(b.sentence_first, a.sentence_first)
    assert all(np.array_equal(b.chunk_sentence_vectors(r), a.chunk_sentence_vectors(r))
               for r in range(len(a.chunks)))
    assert b.rows_of({"guide.md", "note003.txt"}) == a.rows_of({"guide.md", "note003.txt"})
    for question in ("When does the ferry leave?", "rareword7x1 museum"):
        assert [(p.source, p.start, p.end) for p in columnar.search(question)] == \
            [(p.source, p.start, p.end) for p in as_json.search(question)]
        assert columnar.ask(question).text == as_json.ask(question).text
    # Updates read the columnar generation and write one again.
    (corpus / "note004.txt").unlink()
    (corpus / "guide.md").write_text("# Guide\n\nThe ferry now leaves at one.\n")
    report = columnar.sync()
    assert (report.removed, report.updated) == (1, 1)
    snap = snapshot_of(tmp_path / "col")
    assert "note004.txt" not in snap.documents and len(snap.chunks) == snap.vectors.ntotal
    assert snap.documents["guide.md"].text == "# Guide\n\nThe ferry now leaves at one.\n"
    generations.verify_generation(generations.current_path(tmp_path / "col"))


def test_a_damaged_columnar_generation_is_reported_not_read(tmp_path, monkeypatch):
    from qa.index import tables

    monkeypatch.setattr(tables, "COLUMNAR_FROM", 10)
    write_corpus(tmp_path / "c", 12)
    Engine(tmp_path / "c", tmp_path / "i", FakeEmbedder()).sync()
    path = generations.current_path(tmp_path / "i")
    for name in ("chunks.npy", "documents.txt", "chunks-headings.json"):
        original = (path / name).read_bytes()
        _flip(path / name, len(original) - 3)
        with pytest.raises(IndexDamaged):
            snapshot_of(tmp_path / "i")
        (path / name).write_bytes(original)
    snapshot_of(tmp_path / "i")


def test_the_spellers_word_counts_are_stored_and_kept_up_to_date_by_updates(tmp_path):
    from qa.index.lexical import count_forms

    corpus = tmp_path / "c"
    write_corpus(corpus, 6)
    engine = Engine(corpus, tmp_path / "i", FakeEmbedder())
    engine.sync()
    (corpus / "note002.txt").unlink()
    (corpus / "note003.txt").write_text("The Glacier ferry's captain met the glacier guide.\n")
    (corpus / "new.txt").write_text("Quillberry jam, quillberry pie.\n")
    engine.sync()
    snap = snapshot_of(tmp_path / "i")
    assert "forms.json" in snap.manifest["files"]
    assert snap.word_forms() == dict(count_forms(snap.chunk_text(c) for c in snap.chunks))
    assert engine.ask("quilberry pie").query == "quillberry pie"


def test_row_of_id_answers_the_same_by_search_and_by_table():
    from qa.index.tables import RowOfId

    ids = np.array([40, 7, 99, 3, 12], np.int64)
    rows = RowOfId(ids)
    expected = {40: 0, 7: 1, 99: 2, 3: 3, 12: 4}
    assert dict(rows) == expected and rows.get(5) is None and 8 not in rows and 99 in rows
    for _ in range(1100):
        rows[7]
    assert rows.table is not None and dict(rows) == expected and rows.get(5) is None
