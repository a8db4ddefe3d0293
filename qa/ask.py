"""From a question to an Answer: retrieve, fuse, collapse copies, pick sentences, cite, or abstain."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from qa.answer import (
    PASSAGES_CONSIDERED,
    Candidate,
    group_citations,
    score_sentences,
    select_sentences,
)
from qa.followup import Query, resolve
from qa.lexical import terms
from qa.results import Answer, Citation, Passage, Turn
from qa.retrieval import (
    BM25_WEIGHT,
    CANDIDATES,
    DENSE_WEIGHT,
    bm25_scores,
    collapse_near_duplicates,
    dense_ranking,
    reciprocal_rank_fusion,
    top_rows,
)

MAX_QUERY_CHARS = 2000
MAX_QUERY_TERMS = 64
# Below this confidence the answer says the documents do not cover the question.
# Calibrated on benchmarks/quality.py: in-corpus questions against out-of-corpus ones (the other
# benchmark set's questions asked of this corpus).
ABSTAIN_BELOW = 0.42
NOT_FOUND = "The documents do not seem to cover this."


@dataclass
class Retrieval:
    passages: list[Passage]
    rows: list[int]
    dense: dict[int, float]
    bm25: dict[int, float]
    timings: dict = field(default_factory=dict)


def retrieve(engine, text: str, weights: dict[str, float] | None, k: int = 5) -> Retrieval:
    """Fused dense + BM25 ranking of chunks for one query, near-duplicates collapsed."""
    snap = engine.snapshot
    timings = {}
    t0 = time.perf_counter()
    vector = engine.embedder.encode([text[:MAX_QUERY_CHARS]])[0]
    t1 = time.perf_counter()
    dense = dense_ranking(snap.vectors, vector, snap.row_of_id, CANDIDATES)
    if weights is None:
        weights = {t: 1.0 for t in terms(text[:MAX_QUERY_CHARS])}
    weights = dict(list(weights.items())[:MAX_QUERY_TERMS])
    lexical = top_rows(bm25_scores(snap.bm25, list(weights), list(weights.values())), CANDIDATES)
    fused = reciprocal_rank_fusion(
        [[r for r, _ in dense], [r for r, _ in lexical]], [DENSE_WEIGHT, BM25_WEIGHT]
    )
    head = [row for row, _ in fused[: max(4 * k, 20)]]
    score_of = dict(fused)
    kept = collapse_near_duplicates(head, [snap.chunk_text(snap.chunks[r]) for r in head])[:k]
    timings["embed"] = t1 - t0
    timings["search"] = time.perf_counter() - t1
    passages = [engine.passage(row, score_of[row]) for row in kept]
    return Retrieval(passages, kept, dict(dense), dict(lexical), timings)


def answer_question(engine, question: str, history: Sequence[Turn]) -> Answer:
    question = " ".join(question.split())
    if not question:
        return Answer(question, False, "Please type a question.")
    query: Query = resolve(question[:MAX_QUERY_CHARS], history)
    if not query.terms and not any(ch.isalnum() for ch in question):
        return Answer(question, False, "Please ask a question in words.", query=query.text)
    found = retrieve(engine, query.text, query.terms, k=8)
    t0 = time.perf_counter()
    snap = engine.snapshot
    top = found.passages[:PASSAGES_CONSIDERED]
    candidates = [
        Candidate(rank, p.source, s, e, snap.documents[p.source].text[s:e], position)
        for rank, p in enumerate(top)
        for position, (s, e) in enumerate(p.sentences)
    ]
    scored = score_sentences(candidates, query.terms, snap.doc_freq, len(snap.chunks),
                             [p.score for p in top])
    chosen = select_sentences(scored)
    confidence = _confidence(found, chosen)
    found.timings["answer"] = time.perf_counter() - t0
    if not chosen or confidence < ABSTAIN_BELOW:
        return Answer(question, False, NOT_FOUND, (), tuple(found.passages), confidence,
                      query.text, found.timings)
    citations, parts = [], []
    for n, group in enumerate(group_citations(chosen), 1):
        first, last = group[0].candidate, group[-1].candidate
        passage = top[first.passage]
        text = snap.documents[first.source].text
        citations.append(Citation(n, first.source, first.start, last.end, text[first.start:last.end],
                                  text.count("\n", 0, first.start) + 1, passage, passage.page))
        parts.append(f"{' '.join(' '.join(g.candidate.text.split()) for g in group)} [{n}]")
    return Answer(question, True, " ".join(parts), tuple(citations), tuple(found.passages),
                  confidence, query.text, found.timings)


def _confidence(found: Retrieval, chosen) -> float:
    """A 0..1 belief that the passages answer the question: dense similarity and term overlap."""
    if not found.rows or not chosen:
        return 0.0
    best_dense = max(found.dense.get(r, 0.0) for r in found.rows[:3])
    best_overlap = max(s.overlap for s in chosen)
    return 0.6 * best_dense + 0.4 * best_overlap
