"""Updates that cost what changed: what an update keeps from the previous generation gives the
index a full build of the same folder gives."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from conftest import SEEDS
from qa.index import store
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
