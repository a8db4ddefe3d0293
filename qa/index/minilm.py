"""The bundled all-MiniLM-L6-v2 network run in numpy, for questions: no torch to import.

Importing sentence-transformers (torch and transformers) takes 7 to 10 s on these machines, and a
question needs one forward pass of a six-layer BERT over a few dozen word pieces: about 10 MFLOP a
word piece, a few milliseconds in numpy. So questions are encoded here, from the same weights
(model.safetensors) and the same tokenizer (tokenizer.json) the package ships, while documents are
still embedded by sentence-transformers when an index is built. tests/test_minilm.py checks that
both give the same token embeddings and sentence vector for the same text.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to within 1.2e-7 (Numerical Recipes' erfc, Chebyshev fit), elementwise, in float32."""
    z = np.abs(x).astype(np.float64)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0).astype(np.float32)


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU: x * Phi(x)."""
    return x * 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(variance + eps) * weight + bias


class MiniLM:
    """A BERT encoder's forward pass over one text: (token embeddings, input ids)."""

    def __init__(self, path: str) -> None:
        from safetensors.numpy import load_file
        from threadpoolctl import ThreadpoolController
        from tokenizers import Tokenizer

        with open(os.path.join(path, "config.json"), encoding="utf-8") as handle:
            config = json.load(handle)
        with open(os.path.join(path, "sentence_bert_config.json"), encoding="utf-8") as handle:
            max_length = int(json.load(handle)["max_seq_length"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        # numpy's OpenBLAS, held to one thread during a forward pass: its worker threads spin while
        # they wait, and with the two cores busy a question took 263 ms with them against 26 ms
        # without; on an idle machine one thread is as fast for matrices this small.
        self._blas = ThreadpoolController().select(user_api="blas")
        self.tokenizer = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_length)
        weights = load_file(os.path.join(path, "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""

        def get(name: str) -> np.ndarray:
            return weights[prefix + name]

        def linear(name: str) -> tuple[np.ndarray, np.ndarray]:
            # Stored (out, in); kept transposed and contiguous so a forward pass is x @ W + b.
            return np.ascontiguousarray(get(name + ".weight").T), get(name + ".bias")

        self.words = get("embeddings.word_embeddings.weight")
        self.positions = get("embeddings.position_embeddings.weight")
        self.token_type = get("embeddings.token_type_embeddings.weight")[0]
        self.embedding_norm = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self.layers = []
        for i in range(int(config["num_hidden_layers"])):
            layer = f"encoder.layer.{i}."
            query, key, value = (linear(layer + f"attention.self.{part}")
                                 for part in ("query", "key", "value"))
            self.layers.append({
                # One matrix for the three projections: one matmul instead of three.
                "qkv": (np.concatenate([query[0], key[0], value[0]], axis=1),
                        np.concatenate([query[1], key[1], value[1]])),
                "attention_out": linear(layer + "attention.output.dense"),
                "attention_norm": (get(layer + "attention.output.LayerNorm.weight"),
                                   get(layer + "attention.output.LayerNorm.bias")),
                "intermediate": linear(layer + "intermediate.dense"),
                "output": linear(layer + "output.dense"),
                "output_norm": (get(layer + "output.LayerNorm.weight"),
                                get(layer + "output.LayerNorm.bias")),
            })

    def forward(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Token embeddings (tokens, hidden) of ``text`` with [CLS] and [SEP], and the input ids,
        truncated to the model's max_seq_length as sentence-transformers does."""
        matrix, ids, _ = self.forward_with_offsets(text)
        return matrix, ids

    def forward_with_offsets(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``forward`` and each token's (start, end) characters in ``text`` ((0, 0) for [CLS]
        and [SEP])."""
        encoding = self.tokenizer.encode(text)
        with self._blas.limit(limits=1):
            matrix, ids = self._forward(np.asarray(encoding.ids, dtype=np.int32))
        return matrix, ids, np.asarray(encoding.offsets, dtype=np.int64).reshape(len(ids), 2)

    def token_count(self, text: str) -> int:
        return len(self.tokenizer.encode(text).ids)

    def _forward(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(ids)
        x = self.words[ids] + self.positions[:n] + self.token_type
        x = _layer_norm(x, *self.embedding_norm, self.eps)
        hidden = x.shape[1]
        size = hidden // self.heads
        scale = np.float32(1.0 / math.sqrt(size))
        for layer in self.layers:
            qkv = x @ layer["qkv"][0] + layer["qkv"][1]
            q, k, v = (qkv[:, i * hidden:(i + 1) * hidden].reshape(n, self.heads, size).transpose(1, 0, 2)
                       for i in range(3))
            scores = (q @ k.transpose(0, 2, 1)) * scale
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(1, 0, 2).reshape(n, hidden)
            attended = context @ layer["attention_out"][0] + layer["attention_out"][1]
            x = _layer_norm(x + attended, *layer["attention_norm"], self.eps)
            inner = _gelu(x @ layer["intermediate"][0] + layer["intermediate"][1])
            out = inner @ layer["output"][0] + layer["output"][1]
            x = _layer_norm(x + out, *layer["output_norm"], self.eps)
        return x.astype(np.float32), ids
