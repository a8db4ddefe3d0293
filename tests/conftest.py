"""Shared fixtures: a fake deterministic embedder for fast tests, the real model for the rest."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


class FakeEmbedder:
    """Bag of hashed words: deterministic, instant, and similar texts get similar vectors."""

    name = "fake-hashed-words"
    dimension = 64
    vocabulary_size = 1000

    def __init__(self) -> None:
        self.calls = 0
        self.texts_encoded = 0

    def load(self) -> None:
        pass

    def encode(self, texts, batch_size: int = 32) -> np.ndarray:
        self.calls += 1
        self.texts_encoded += len(texts)
        return self._vectors(texts)

    def encode_chunks(self, texts, spans):
        """Like the real embedder: sentence and word vectors come with the chunk's one encoding."""
        from qa.index.embedder import Encoded

        vectors = self.encode(texts)
        sentences = [self._vectors([text[s:e] for s, e in text_spans]) if text_spans
                     else np.zeros((0, self.dimension), np.float32)
                     for text, text_spans in zip(texts, spans)]
        return Encoded(vectors, sentences, [self._words(text) for text in texts])

    def encode_query(self, text):
        self.calls += 1
        return (self._vectors([text])[0], *self._words(text))

    def _words(self, text):
        """Each kept word's own hashed vector, and a vocabulary id from its hash."""
        from qa.index.lexical import STOP_WORDS

        words = [w for w in re.findall(r"\w+", text.lower()) if w not in STOP_WORDS]
        ids = np.array([hashlib.md5(w.encode()).digest()[2] * 3 % self.vocabulary_size
                        for w in words], dtype=np.int32)
        vectors = self._vectors(words) if words else np.zeros((0, self.dimension), np.float32)
        return vectors, ids

    def _vectors(self, texts) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.md5(word.encode()).digest()
                out[row, digest[0] % self.dimension] += 1.0 if digest[1] % 2 else -1.0
            out[row, -1] += 0.01  # never a zero vector
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out


@pytest.fixture(autouse=True)
def user_data_dir(tmp_path_factory, monkeypatch) -> Path:
    """The user's data dir, where qa keeps the index of each folder by default: a temporary one,
    so no test writes into the real one (subprocesses inherit it)."""
    folder = tmp_path_factory.mktemp("user-data")
    monkeypatch.setenv("XDG_DATA_HOME", str(folder))
    return folder


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def seeds_copy(tmp_path: Path) -> Path:
    """A writable copy of the seed corpus."""
    target = tmp_path / "corpus"
    shutil.copytree(SEEDS, target)
    for path in target.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    return target


@pytest.fixture(scope="session")
def real_embedder():
    """The bundled all-MiniLM-L6-v2, loaded once for the whole test session."""
    from qa.index.embedder import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    embedder.load()
    return embedder


@pytest.fixture(scope="session")
def seeds_engine(tmp_path_factory, real_embedder):
    """An engine over the seeds with a real index built once per session (read-only use)."""
    from qa.engine import Engine

    index = tmp_path_factory.mktemp("seeds-index")
    engine = Engine(SEEDS, index, real_embedder)
    engine.sync()
    return engine


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true",
                     help="also run the tests marked slow (the 60 s load test)")


def pytest_collection_modifyitems(config, items):
    """Tests marked slow run only when asked for (--slow, or -m naming them): CI stays short."""
    if config.getoption("--slow") or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow (or -m slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
