"""Hybrid retrieval: dense (FAISS) and BM25 rankings, fused, with near-duplicates collapsed.

The ranking functions are pure, over lists of chunk rows, so they are tested without a model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

# Normalised score fusion rather than reciprocal rank fusion: on held-out questions of both
# benchmark sets (benchmarks/quality.py data, questions outside the evaluated samples) it beat
# RRF clearly on SQuAD (MRR .864 vs .841 at best k/weights) and matched it on news, because the
# score gaps carry information that ranks throw away. Cosines are min-max scaled over the
# candidates, BM25 is divided by its maximum. Long, descriptive questions make BM25 noisy and
# short keyword questions make dense vague, so the dense weight grows with the number of query
# terms: weight = clip(0.3 + 0.03 * terms, 0.35, 0.8).
CANDIDATES = 100
DENSE_BASE, DENSE_PER_TERM, DENSE_MIN, DENSE_MAX = 0.3, 0.03, 0.35, 0.8
# Re-ranking the head by shared word pairs ("Super Bowl", "Minsk agreements") rewards passages
# that match the question's phrases, not just its words: +.022 MRR on SQuAD, neutral on news.
RERANK_HEAD = 20
BIGRAM_WEIGHT = 0.2


def dense_weight(num_terms: int) -> float:
    return min(DENSE_MAX, max(DENSE_MIN, DENSE_BASE + DENSE_PER_TERM * num_terms))


def normalized_score_fusion(
    dense: Sequence[tuple[int, float]], lexical: Sequence[tuple[int, float]], weight: float
) -> list[tuple[int, float]]:
    """Fuse (row, score) lists: weight * minmax(cosine) + (1 - weight) * bm25 / max(bm25).

    A row missing from the dense list gets the lowest candidate cosine; one missing from BM25
    gets 0. Returns (row, fused score) best first.
    """
    dense_scores = dict(dense)
    lexical_scores = dict(lexical)
    if dense_scores:
        low, high = min(dense_scores.values()), max(dense_scores.values())
    else:
        low = high = 0.0
    span = (high - low) or 1.0
    top_lexical = max(lexical_scores.values(), default=0.0) or 1.0
    fused = {
        row: weight * (dense_scores.get(row, low) - low) / span
        + (1 - weight) * lexical_scores.get(row, 0.0) / top_lexical
        for row in dense_scores.keys() | lexical_scores.keys()
    }
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


def bigram_overlap(question_terms: Sequence[str], passage_terms: Sequence[str]) -> float:
    """Share of the question's consecutive term pairs that also occur in the passage."""
    wanted = set(zip(question_terms, question_terms[1:]))
    if not wanted:
        return 0.0
    return len(wanted & set(zip(passage_terms, passage_terms[1:]))) / len(wanted)


def rerank_by_phrases(
    fused: Sequence[tuple[int, float]], question_terms: Sequence[str], passage_terms
) -> list[tuple[int, float]]:
    """Add BIGRAM_WEIGHT x bigram overlap to the head of the fused list; ``passage_terms(row)``."""
    head = [(row, score + BIGRAM_WEIGHT * bigram_overlap(question_terms, passage_terms(row)))
            for row, score in fused[:RERANK_HEAD]]
    head.sort(key=lambda pair: (-pair[1], pair[0]))
    return head + list(fused[RERANK_HEAD:])


def rerank_by_words(fused: Sequence[tuple[int, float]], word_scores: Sequence[float],
                    weight: float) -> list[tuple[int, float]]:
    """Add ``weight`` x the late-interaction score (qa.index.late_interaction) of each of the first
    ``len(word_scores)`` rows of the fused list, and re-sort that head."""
    head = [(row, score + weight * extra) for (row, score), extra in zip(fused, word_scores)]
    head.sort(key=lambda pair: (-pair[1], pair[0]))
    return head + list(fused[len(head):])


_SHINGLE_WORD = re.compile(r"\w+")


def shingles(text: str, size: int = 4) -> frozenset[tuple[str, ...]]:
    words = _SHINGLE_WORD.findall(text.lower())
    if len(words) < size:
        return frozenset([tuple(words)]) if words else frozenset()
    return frozenset(tuple(words[i : i + size]) for i in range(len(words) - size + 1))


def is_near_duplicate(a: frozenset, b: frozenset, threshold: float = 0.6) -> bool:
    """True when most of the shorter text's word 4-grams also occur in the longer one."""
    if not a or not b:
        return False
    overlap = len(a & b)
    return overlap / min(len(a), len(b)) >= threshold


def collapse_near_duplicates(
    ranked: Sequence[int], texts=None, threshold: float = 0.6, limit: int | None = None,
    grams_of=None,
) -> list[int]:
    """Keep the first of every group of near-duplicate texts, preserving rank order.

    ``texts[i]`` (a sequence, or a function of i) is the text of ``ranked[i]``; or, in place of
    texts, ``grams(i)`` gives its word 4-grams (kept by whoever calls this often). Containment (not
    Jaccard) so a paragraph quoted inside a longer one also counts as a copy. Stops once
    ``limit`` items are kept.
    """
    if grams_of is None:
        text_of = texts if callable(texts) else texts.__getitem__
        grams_of = lambda i: shingles(text_of(i))  # noqa: E731
    kept: list[int] = []
    kept_shingles: list[frozenset] = []
    for i, item in enumerate(ranked):
        if limit is not None and len(kept) >= limit:
            break
        grams = grams_of(i)
        if any(is_near_duplicate(grams, other, threshold) for other in kept_shingles):
            continue
        kept.append(item)
        kept_shingles.append(grams)
    return kept


def dense_ranking(index, query_vector: np.ndarray, row_of_id: dict[int, int], n: int,
                  only: np.ndarray | None = None):
    """(row, cosine) pairs from FAISS, best first; with ``only`` (chunk ids), among those alone
    (FAISS skips the others while it searches)."""
    if index.ntotal == 0:
        return []
    query = query_vector.reshape(1, -1).astype(np.float32)
    if only is None:
        scores, ids = index.search(query, min(n, index.ntotal))
    elif hasattr(index, "search_among"):  # not FAISS: a store's own index (qa.index.pg_vectors)
        if not len(only):
            return []
        scores, ids = index.search_among(query, min(n, len(only)), only)
    else:
        import faiss

        from qa.index.ann import search_parameters

        if not len(only):
            return []
        selector = faiss.IDSelectorBatch(only)
        scores, ids = index.search(query, min(n, len(only)),
                                   params=search_parameters(index, selector, len(only)))
    return [(row_of_id[int(i)], float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0]


def within(scores: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    """``scores`` (one per chunk) with every row outside ``rows`` zeroed (None: all kept)."""
    if rows is None:
        return scores
    kept = np.zeros_like(scores)
    kept[rows] = scores[rows]
    return kept


def bm25_scores(bm25, query_terms: Sequence[str], weights: Sequence[float] | None = None) -> np.ndarray:
    """BM25 score of every chunk for ``query_terms`` (unknown terms ignored; weights per term)."""
    vocab = bm25.vocab_dict
    num_docs = bm25.scores["num_docs"]
    total = np.zeros(num_docs, dtype=np.float32)
    weights = weights or [1.0] * len(query_terms)
    by_weight: dict[float, list[int]] = {}
    for term, weight in zip(query_terms, weights):
        if term in vocab:
            by_weight.setdefault(weight, []).append(vocab[term])
    for weight, ids in by_weight.items():
        total += weight * bm25.get_scores_from_ids(ids)
    return total


def top_rows(scores: np.ndarray, n: int) -> list[tuple[int, float]]:
    if scores.size == 0:
        return []
    n = min(n, scores.size)
    rows = np.argpartition(-scores, n - 1)[:n]
    rows = rows[np.argsort(-scores[rows], kind="stable")]
    return [(int(r), float(scores[r])) for r in rows if scores[r] > 0]


def lexical_candidates(scores: np.ndarray, dense: Sequence[tuple[int, float]],
                       n: int) -> list[tuple[int, float]]:
    """BM25's top ``n`` rows, plus every dense candidate with its own BM25 score.

    Without the second part a passage the dense side found, and BM25 ranked just below its top
    ``n``, would be fused as if it shared no word with the question (held-out news: passage
    MRR .708 -> .710; SQuAD unchanged).
    """
    lexical = top_rows(scores, n)
    listed = {row for row, _ in lexical}
    lexical += [(row, float(scores[row])) for row, _ in dense
                if row not in listed and scores[row] > 0]
    return lexical
