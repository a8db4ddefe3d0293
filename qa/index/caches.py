"""What an unfinished build leaves in ``cache/`` for the next one: EmbeddingCache, the vectors it
embedded keyed by chunk-text hash, and the word-vector projection it fitted."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

from qa.index.late_interaction import Projection
from qa.index.records import load_npy

class EmbeddingCache:
    """Append-only store of vectors embedded by a build, keyed by chunk-text hash.

    Written batch by batch, so a build killed halfway does not have to embed those chunks again.
    A torn last record (kill -9 mid-write) is ignored on reading.
    """

    def __init__(self, index_dir: Path, model: str, dimension: int):
        self.folder = index_dir / "cache"
        self.dimension = dimension
        tag = hashlib.sha1(model.encode()).hexdigest()[:12]
        self.keys_path = self.folder / f"{tag}.keys"
        self.vectors_path = self.folder / f"{tag}.f32"

    def load(self) -> dict[str, np.ndarray]:
        """Vectors saved so far; a torn tail (kill -9 mid-write) is cut off so appends line up."""
        try:
            keys = [k for k in self.keys_path.read_text(encoding="ascii").split("\n") if len(k) == 40]
            raw = self.vectors_path.read_bytes()
        except (OSError, UnicodeDecodeError):
            # Missing or unreadable: start this model's cache afresh (keys and vectors together,
            # so later appends line up), leaving other models' caches alone.
            self.keys_path.unlink(missing_ok=True)
            self.vectors_path.unlink(missing_ok=True)
            return {}
        record = 4 * self.dimension
        count = min(len(keys), len(raw) // record)
        vectors = np.frombuffer(raw[: count * record], dtype=np.float32).reshape(count, self.dimension)
        with open(self.vectors_path, "r+b") as handle:
            handle.truncate(count * record)
        self.keys_path.write_text("".join(f"{k}\n" for k in keys[:count]), encoding="ascii")
        return {keys[i]: vectors[i] for i in range(count)}

    def append(self, keys: list[str], vectors: np.ndarray) -> None:
        """Vectors first, then keys: a key is only ever written after its vector."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.vectors_path, "ab") as handle:
            handle.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        with open(self.keys_path, "a", encoding="ascii") as handle:
            handle.write("".join(f"{k}\n" for k in keys))

    def drop(self) -> None:
        """Forget this cache's vectors only."""
        self.keys_path.unlink(missing_ok=True)
        self.vectors_path.unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove the whole cache folder (every model's vectors and the projection)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def cached_projection(index_dir: Path, model: str) -> Projection | None:
    """The word-vector projection an unfinished build fitted (its cached word vectors use it)."""
    try:
        return Projection.from_array(load_npy(_projection_path(index_dir, model)))
    except (OSError, ValueError, IndexError):
        return None


def cache_projection(index_dir: Path, model: str, projection: Projection) -> None:
    path = _projection_path(index_dir, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npy")
    np.save(temporary, projection.to_array(), allow_pickle=False)
    os.replace(temporary, path)


def _projection_path(index_dir: Path, model: str) -> Path:
    return index_dir / "cache" / f"{hashlib.sha1(model.encode()).hexdigest()[:12]}.projection.npy"
