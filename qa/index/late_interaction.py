"""Late interaction: a passage scores by how well each question word finds its match in it.

The bi-encoder squeezes a passage into one mean vector; its token embeddings (from the same
forward pass, before pooling) still say what each word meant in its context. For every word of
the question, take its best cosine against the passage's words, and average these with idf
weights (MaxSim, as in ColBERT). Added to the fused score of the head of the ranking, it lifted
passage MRR@10 on held-out benchmark questions (outside the evaluated samples) from .677 to .695
on news and from .879 to .902 on SQuAD (R@1 .571 -> .598 and .821 -> .851).

Stored compactly: stop words, punctuation and special tokens are dropped; vectors are projected
onto the corpus's own top principal directions and quantized to int8 with one scale per row
(about 70 bytes per kept word: 12 MB for the 1.6 M characters of the SQuAD corpus). The
projection is fitted once, on every token of the first batch a fresh index embeds (a few
thousand tokens are enough), and kept by incremental builds; `qa index --rebuild` fits it anew.
A projection fitted on another kind of text lost half the gain on news.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

PROJECTED_DIMS = 64
# The weight of the MaxSim score (0..1) added to the fused score (0..~1.2) of the head. Held-out
# answers' MRR@10 for 2 / 2.5 / 3 / 4 / 5: news .690 .692 .692 .694 .690, SQuAD .893 .894 .897
# .898 .898; 2.5 also keeps every question of tests/test_seed_questions.py answered (3 lost one).
TOKEN_WEIGHT = 2.5
# Described in the manifest: an index whose word vectors were kept by other rules is refused.
TOKENS_FORMAT = {"dims": PROJECTED_DIMS, "keep": "no-stopwords-punctuation-specials", "quant": "int8"}


def keep_vocabulary(tokens: Sequence[str], special: set[int]) -> np.ndarray:
    """Boolean per vocabulary id: is this word piece worth a vector (not a stop word, not
    punctuation, not a special token)?"""
    from qa.index.lexical import STOP_WORDS

    keep = np.zeros(len(tokens), dtype=bool)
    for i, token in enumerate(tokens):
        if i in special or token.startswith("[") and token.endswith("]"):
            continue
        word = token[2:] if token.startswith("##") else token
        if not any(ch.isalnum() for ch in word) or token in STOP_WORDS:
            continue
        keep[i] = True
    return keep


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


@dataclass(frozen=True)
class Projection:
    """Centre, then project onto the top principal directions; rows come out unit length."""

    mean: np.ndarray  # (dimension,)
    components: np.ndarray  # (PROJECTED_DIMS, dimension), orthonormal rows

    @classmethod
    def fit(cls, vectors: np.ndarray, dims: int = PROJECTED_DIMS) -> "Projection":
        """Principal directions of ``vectors`` (any number of rows, even fewer than ``dims``:
        the eigenvectors of the covariance always give a full orthonormal basis)."""
        vectors = np.asarray(vectors, dtype=np.float64)
        dimension = vectors.shape[1]
        mean = vectors.mean(axis=0) if len(vectors) else np.zeros(dimension)
        centred = vectors - mean
        _, eigenvectors = np.linalg.eigh(centred.T @ centred)
        components = eigenvectors[:, ::-1].T[:dims]
        return cls(mean.astype(np.float32), np.ascontiguousarray(components, dtype=np.float32))

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        return unit_rows((np.asarray(vectors, dtype=np.float32) - self.mean) @ self.components.T)

    def to_array(self) -> np.ndarray:
        return np.vstack([self.mean[None, :], self.components]).astype(np.float32)

    @classmethod
    def from_array(cls, array: np.ndarray) -> "Projection":
        array = np.asarray(array, dtype=np.float32)
        return cls(array[0].copy(), np.ascontiguousarray(array[1:]))


def quantize(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and one float16 scale per row (rows are unit length, so scales are <= 1)."""
    rows = np.asarray(rows, dtype=np.float32)
    scales = np.abs(rows).max(axis=1) / 127.0 if len(rows) else np.zeros(0, np.float32)
    scales = np.maximum(scales, 1e-8)
    quantized = np.clip(np.round(rows / scales[:, None]), -127, 127).astype(np.int8)
    return quantized, scales.astype(np.float16)


def dequantize(quantized: np.ndarray, scales: np.ndarray) -> np.ndarray:
    return quantized.astype(np.float32) * scales.astype(np.float32)[:, None]


def idf_weights(doc_freq: np.ndarray, num_chunks: int, ids: np.ndarray) -> np.ndarray:
    """BM25's idf of each word piece, from the number of chunks holding it."""
    counts = doc_freq[np.clip(ids, 0, len(doc_freq) - 1)].astype(np.float64) if len(doc_freq) \
        else np.zeros(len(ids))
    return np.log(1.0 + (num_chunks - counts + 0.5) / (counts + 0.5))


def maxsim(query: np.ndarray, weights: np.ndarray, passage: np.ndarray) -> float:
    """Weighted mean over the query's word vectors of their best cosine in the passage."""
    if len(query) == 0 or len(passage) == 0:
        return 0.0
    best = (query @ passage.T).max(axis=1)
    total = float(weights.sum())
    return float(best @ weights) / total if total > 0 else float(best.mean())


@dataclass
class TokenVectors:
    """The kept word vectors of every chunk of a generation, in chunk order."""

    projection: Projection
    vectors: np.ndarray  # (words, PROJECTED_DIMS) int8
    scales: np.ndarray  # (words,) float16
    ids: np.ndarray  # (words,) int32 vocabulary ids
    counts: np.ndarray  # (chunks,) int32 words per chunk
    vocabulary_size: int

    def __post_init__(self) -> None:
        self.first = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)

    @cached_property
    def doc_freq(self) -> np.ndarray:
        """Document frequency of each word piece over chunks (for the question's idf weights);
        computed at the first question, not for every generation a build writes."""
        chunk_of = np.repeat(np.arange(len(self.counts)), self.counts)
        pairs = np.unique(chunk_of.astype(np.int64) * (self.vocabulary_size + 1) + self.ids)
        return np.bincount(pairs % (self.vocabulary_size + 1), minlength=self.vocabulary_size + 1)

    def of_chunk(self, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(int8 vectors, scales, ids) of chunk ``row``: the form a new generation copies."""
        a, b = self.first[row], self.first[row + 1]
        return self.vectors[a:b], self.scales[a:b], self.ids[a:b]

    def matrix(self, row: int) -> np.ndarray:
        vectors, scales, _ = self.of_chunk(row)
        return dequantize(vectors, scales)

    def query_scores(self, query_vectors: np.ndarray, query_ids: np.ndarray,
                     rows: Sequence[int]) -> list[float]:
        """MaxSim of the question (raw word vectors, kept words only) against each chunk row."""
        if len(query_ids) == 0:
            return [0.0] * len(rows)
        query = self.projection.apply(query_vectors)
        weights = idf_weights(self.doc_freq, len(self.counts), np.asarray(query_ids))
        return self._maxsims(query, weights, rows)

    def _maxsims(self, query: np.ndarray, weights: np.ndarray, rows: Sequence[int]) -> list[float]:
        """maxsim of ``query`` against each of ``rows`` in one product: the rows' int8 vectors
        side by side, each column scaled after the product (as dequantize scales it before)."""
        rows = list(rows)
        parts = [self.of_chunk(row) for row in rows]
        sizes = [len(vectors) for vectors, _, _ in parts]
        if not sum(sizes):
            return [0.0] * len(rows)
        vectors = np.concatenate([v for v, _, _ in parts]).astype(np.float32)
        scales = np.concatenate([s for _, s, _ in parts]).astype(np.float32)
        cosines = (query @ vectors.T) * scales
        starts = np.cumsum([0] + sizes[:-1])
        filled = [size > 0 for size in sizes]
        best = np.maximum.reduceat(cosines, starts[filled], axis=1)  # (query words, filled rows)
        total = float(weights.sum())
        means = best.T @ weights / total if total > 0 else best.mean(axis=0)
        found = iter(means.tolist())
        return [next(found) if full else 0.0 for full in filled]
