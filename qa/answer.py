"""Extractive answers: score the sentences of the top passages and keep the best one to three.

Pure functions over plain values, so they are tested without a model or an index.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from qa.lexical import terms

MAX_ANSWER_CHARS = 450
MAX_SENTENCES = 3
PASSAGES_CONSIDERED = 4


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage."""

    passage: int  # rank of its passage, 0 = best
    source: str
    start: int
    end: int
    text: str
    position: int  # index of the sentence inside its passage


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    score: float
    overlap: float  # idf-weighted share of the question's terms found in the sentence


def idf(doc_freq: Mapping[str, int], num_docs: int, term: str) -> float:
    return math.log(1 + (num_docs - doc_freq.get(term, 0) + 0.5) / (doc_freq.get(term, 0) + 0.5))


def term_overlap(question_terms: Mapping[str, float], sentence: str,
                 weights_idf: Mapping[str, float]) -> float:
    """Share of the question's (idf x weight) mass whose terms occur in ``sentence``."""
    present = set(terms(sentence))
    total = sum(weights_idf[t] * w for t, w in question_terms.items())
    if total <= 0:
        return 0.0
    return sum(weights_idf[t] * w for t, w in question_terms.items() if t in present) / total


_WORDS = re.compile(r"\w+")


def score_sentences(
    candidates: Sequence[Candidate],
    question_terms: Mapping[str, float],
    doc_freq: Mapping[str, int],
    num_docs: int,
    passage_scores: Sequence[float],
    sentence_similarity: Sequence[float] | None = None,
) -> list[Scored]:
    """Score every candidate: lexical overlap, passage rank and (optionally) dense similarity.

    Weights were set on benchmarks/quality.py (SQuAD sample): overlap carries most of the signal,
    the passage prior breaks ties toward the best-ranked passage, and very short fragments lose.
    """
    weights_idf = {t: idf(doc_freq, num_docs, t) for t in question_terms}
    best_passage = max(passage_scores) if passage_scores else 1.0
    scored = []
    for i, candidate in enumerate(candidates):
        overlap = term_overlap(question_terms, candidate.text, weights_idf)
        prior = passage_scores[candidate.passage] / best_passage if best_passage > 0 else 0.0
        score = overlap + 0.35 * prior
        if sentence_similarity is not None:
            score += 0.6 * sentence_similarity[i]
        n_words = len(_WORDS.findall(candidate.text))
        if n_words < 5:
            score -= 0.25
        scored.append(Scored(candidate, score, overlap))
    return scored


def select_sentences(scored: Sequence[Scored], max_chars: int = MAX_ANSWER_CHARS,
                     max_sentences: int = MAX_SENTENCES, relative: float = 0.75) -> list[Scored]:
    """The best sentence, plus close runners-up while the answer stays under ``max_chars``.

    Returned in reading order: by passage rank, then position inside the passage.
    """
    if not scored:
        return []
    ranked = sorted(scored, key=lambda s: -s.score)
    best = ranked[0]
    chosen = [best]
    used = len(best.candidate.text)
    for other in ranked[1:]:
        if len(chosen) >= max_sentences:
            break
        if other.score < relative * best.score:
            break
        if used + len(other.candidate.text) + 1 > max_chars:
            continue
        if any(_same_text(other, c) for c in chosen):
            continue
        chosen.append(other)
        used += len(other.candidate.text) + 1
    return sorted(chosen, key=lambda s: (s.candidate.passage, s.candidate.start))


def _same_text(a: Scored, b: Scored) -> bool:
    return " ".join(a.candidate.text.lower().split()) == " ".join(b.candidate.text.lower().split())


def group_citations(chosen: Sequence[Scored]) -> list[list[Scored]]:
    """Group sentences that follow each other in one passage: each group becomes one [n]."""
    groups: list[list[Scored]] = []
    for item in chosen:
        last = groups[-1][-1].candidate if groups else None
        c = item.candidate
        if last and last.passage == c.passage and c.position == last.position + 1:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups
