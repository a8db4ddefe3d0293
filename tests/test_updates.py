"""Updates that cost what changed: what an update keeps from the previous generation gives the
index a full build of the same folder gives."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from conftest import SEEDS
from qa.index import caches, store
from qa.index.lexical import terms
from qa.index.term_counts import bm25_from_counts, merge_counts


def seed_paragraphs(limit: int = 400) -> list[str]:
    found = []
    for path in sorted(SEEDS.glob("*.txt")):
        found += [p for p in path.read_text(encoding="utf-8").split("\n") if p.strip()]
    return found[:limit]


def test_bm25_from_term_counts_scores_every_term_as_bm25s_does():
    import bm25s

    texts = seed_paragraphs() + [""]  # a chunk without terms too
    tokens = [terms(t) for t in texts]
    expected = bm25s.BM25(**store.BM25_PARAMS)
    expected.index(tokens, show_progress=False)
    ours, doc_freq = store.bm25_index(texts)
    assert doc_freq == dict(Counter(t for doc in tokens for t in set(doc)))
    for term, number in expected.vocab_dict.items():
        if term:
            assert np.array_equal(ours.get_scores_from_ids([ours.vocab_dict[term]]),
                                  expected.get_scores_from_ids([number])), term


def test_merged_counts_are_those_counted_afresh():
    texts = seed_paragraphs(120)
    tokens = [terms(t) for t in texts]

    def counted(rows):
        return merge_counts(None, None, {n: Counter(tokens[r]) for n, r in enumerate(rows)},
                            {n: len(tokens[r]) for n, r in enumerate(rows)}, len(rows))

    before = counted(range(100))
    # Drop chunks 10-29, keep the others in order, add chunks 100-119 between and after them.
    after_rows = list(range(10)) + list(range(100, 110)) + list(range(30, 100)) + list(range(110, 120))
    new_row_of_old = np.full(100, -1)
    for new, old in enumerate(after_rows):
        if old < 100:
            new_row_of_old[old] = new
    fresh = {n: Counter(tokens[r]) for n, r in enumerate(after_rows) if r >= 100}
    merged = merge_counts(before, new_row_of_old, fresh,
                          {n: len(tokens[r]) for n, r in enumerate(after_rows) if r >= 100},
                          len(after_rows))
    afresh = counted(after_rows)
    assert merged.vocabulary == afresh.vocabulary
    for name in ("indptr", "rows", "tf", "lengths"):
        assert np.array_equal(getattr(merged, name), getattr(afresh, name)), name
    assert np.array_equal(bm25_from_counts(merged).scores["data"], bm25_from_counts(afresh).scores["data"])


def test_counts_merged_in_order_are_those_counted_afresh_whatever_was_dropped_or_added():
    # Kept rows in order (as a build keeps them) take merge_counts' insertion path: random
    # layouts with terms that vanish, new terms before and after the old ones, empty chunks.
    import random

    rng = random.Random(1)
    words = [f"w{i:02d}" for i in range(40)]

    def counted(docs):
        return merge_counts(None, None, dict(enumerate(docs)),
                            {i: sum(d.values()) for i, d in enumerate(docs)}, len(docs))

    for trial in range(200):
        docs = [Counter(rng.choices(words, k=rng.randint(0, 8))) for _ in range(rng.randint(1, 25))]
        layout = []  # an old row number, or a fresh Counter
        for row in range(len(docs)):
            if rng.random() < 0.2:
                layout.append(Counter(rng.choices(words + ["a0", "zz"], k=rng.randint(0, 6))))
            if rng.random() < 0.8:
                layout.append(row)
        new_row_of_old = np.full(len(docs), -1)
        fresh = {}
        for new, item in enumerate(layout):
            if isinstance(item, int):
                new_row_of_old[item] = new
            else:
                fresh[new] = item
        merged = merge_counts(counted(docs), new_row_of_old, fresh,
                              {row: sum(c.values()) for row, c in fresh.items()}, len(layout))
        afresh = counted([docs[x] if isinstance(x, int) else x for x in layout])
        assert merged.vocabulary == afresh.vocabulary, trial
        for name in ("indptr", "rows", "tf", "lengths"):
            assert np.array_equal(getattr(merged, name), getattr(afresh, name)), (trial, name)


FOOTER = "Printed by the Harbour Gazette"
MENU = "Home\nNews\nSport\nWeather\n"


def page(title: str, body: str, footer: str = FOOTER) -> str:
    return f"{MENU}\n{title}\n\n{body}\n\n{footer}\n"


def same_index(a, b) -> None:
    """Two snapshots hold the same documents, chunks, BM25 and word-piece counts."""
    def chunk_rows(snapshot):
        return [(c.source, c.start, c.end, c.hash, c.sentences, c.heading, c.kinds) for c in snapshot.chunks]

    def document_rows(snapshot):
        return {s: (d.text, d.segments_hash, d.sha256, d.size, d.mtime_ns, d.blocks, d.title)
                for s, d in snapshot.documents.items()}

    assert document_rows(a) == document_rows(b)
    assert a.manifest["documents"] == b.manifest["documents"]
    assert chunk_rows(a) == chunk_rows(b)
    assert a.doc_freq == b.doc_freq
    assert a.bm25.vocab_dict == b.bm25.vocab_dict
    for key in ("data", "indices", "indptr"):
        assert np.array_equal(a.bm25.scores[key], b.bm25.scores[key]), key
    assert np.array_equal(a.words.doc_freq, b.words.doc_freq)
    assert np.array_equal(a.sentence_vectors, b.sentence_vectors)
    for key in ("vectors", "scales", "ids", "counts"):
        assert np.array_equal(getattr(a.words, key), getattr(b.words, key)), key


def answer_of(engine, question: str):
    """An answer without its timings, its passages as (source, start, end, score)."""
    answer = engine.ask(question)
    passages = [(p.source, p.start, p.end, round(p.score, 6)) for p in answer.passages]
    return answer.text, answer.citations, passages


def test_an_index_updated_file_by_file_is_the_one_a_full_build_makes(tmp_path):
    updated_file_by_file(tmp_path)


def test_a_large_index_updated_file_by_file_is_the_one_a_full_build_makes(tmp_path, monkeypatch):
    # Stored columnar (as above tables.COLUMNAR_FROM chunks): kept documents and chunks are
    # copied as stored, never made into records; a touched file is kept under its new stamp.
    import os

    from qa.index import tables

    monkeypatch.setattr(tables, "COLUMNAR_FROM", 10)

    def touch_and_edit(corpus):
        os.utime(corpus / "page1.txt", ns=(1, 1_700_000_000_000_000_000))
        (corpus / "page3.txt").write_text(page("Page 3", "A page made anew.\n\nIn two paragraphs."))

    updated_file_by_file(tmp_path, [touch_and_edit])


def updated_file_by_file(tmp_path, more_steps=()):
    from conftest import FakeEmbedder
    from qa.engine import Engine

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    paragraphs = seed_paragraphs(60)
    for n in range(6):
        (corpus / f"page{n}.txt").write_text(page(f"Page {n}", "\n\n".join(paragraphs[n * 8:n * 8 + 8])))
    (corpus / "notes.md").write_text("# Notes\n\n" + "\n\n".join(paragraphs[50:55]) + "\n")
    (corpus / "pair-a.txt").write_text(page("Pair A", paragraphs[56], "Set in Caslon by the night shift"))
    engine = Engine(corpus, tmp_path / "index", FakeEmbedder())
    questions = ["Who printed the gazette?", "What happened in the harbour?", "Home"]
    steps = [
        # a line now in two documents: furniture in both, so pair-a.txt is segmented again
        lambda: (corpus / "pair-b.txt").write_text(page("Pair B", paragraphs[57], "Set in Caslon by the night shift")),
        lambda: (corpus / "page2.txt").write_text(page("Page 2", paragraphs[58] + "\n\nA new closing line.")),
        lambda: (corpus / "notes.md").write_text("# Notes\n\n## Later\n\n" + paragraphs[59] + "\n"),
        lambda: (corpus / "page4.txt").unlink(),
        lambda: (corpus / "pair-b.txt").unlink(),  # the line is no longer repeated: kept again
        *(lambda step=step: step(corpus) for step in more_steps),
    ]
    engine.sync()
    for step in steps:
        step()
        report = engine.sync()
        assert report.changed
        updated = engine.snapshot
        # The word-vector projection is fitted once, by an index's first build, and kept: give
        # the full build the same one (as it would take it from an interrupted build's cache).
        full = tmp_path / f"full-{report.generation}"
        caches.cache_projection(full, FakeEmbedder.name, updated.words.projection)
        fresh = Engine(corpus, full, FakeEmbedder())
        fresh.sync()
        same_index(updated, fresh.snapshot)
        # What a later process loads from disk is what the build handed over.
        same_index(updated, Engine(corpus, tmp_path / "index", FakeEmbedder()).snapshot)
        for question in questions:
            assert answer_of(engine, question) == answer_of(fresh, question), question
    texts = [engine.snapshot.chunk_text(c) for c in engine.snapshot.chunks]
    assert any("Set in Caslon" in t for t in texts)  # alone again, no longer furniture


def test_removing_a_file_embeds_nothing_and_reads_no_other_file(tmp_path):
    from conftest import FakeEmbedder
    from qa.engine import Engine

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    paragraphs = seed_paragraphs(40)
    for n in range(4):
        (corpus / f"page{n}.txt").write_text(page(f"Page {n}", "\n\n".join(paragraphs[n * 8:n * 8 + 8])))
    embedder = FakeEmbedder()
    engine = Engine(corpus, tmp_path / "index", embedder)
    engine.sync()
    before = {c.id for c in engine.snapshot.chunks if c.source != "page1.txt"}
    (corpus / "page1.txt").unlink()
    report = engine.sync()
    assert report.removed == 1 and report.chunks_embedded == 0
    assert {c.id for c in engine.snapshot.chunks} == before
