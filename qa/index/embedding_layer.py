"""The bundled MiniLM's embedding layer in numpy: word, position and token-type tables, then a
LayerNorm. The ONNX files (the encoder's six layers, the answer scorer's first three) start after
it, so the word-embedding table is read from the bundled model.safetensors, never shipped twice."""

from __future__ import annotations

import json
import os

import numpy as np


class EmbeddingLayer:
    def __init__(self, path: str) -> None:
        from safetensors import safe_open

        with open(os.path.join(path, "config.json"), encoding="utf-8") as handle:
            self.eps = float(json.load(handle)["layer_norm_eps"])
        with safe_open(os.path.join(path, "model.safetensors"), framework="numpy") as weights:
            prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights.keys() else ""

            def get(name: str) -> np.ndarray:
                return weights.get_tensor(prefix + "embeddings." + name)

            self.words = get("word_embeddings.weight")
            self.positions = get("position_embeddings.weight")
            self.types = get("token_type_embeddings.weight")
            self.norm = (get("LayerNorm.weight"), get("LayerNorm.bias"))

    def __call__(self, ids: np.ndarray, types: np.ndarray | None = None) -> np.ndarray:
        """(batch, tokens) ids, and token types (all 0 when None), to (batch, tokens, hidden)."""
        kinds = self.types[0] if types is None else self.types[types]
        hidden = self.words[ids] + self.positions[: ids.shape[1]][None] + kinds
        centred = hidden - hidden.mean(axis=-1, keepdims=True)
        variance = (centred * centred).mean(axis=-1, keepdims=True)
        return (centred / np.sqrt(variance + self.eps) * self.norm[0] + self.norm[1]).astype(np.float32)
