"""Checksums of a generation's files: the sha256 of each, its size, and for a large file the
sha256 of blocks spread over it, which a load checks instead of every byte (see
qa.index.generations.verify_files)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# Files up to this size are hashed whole at every load (every file of an index of a few thousand
# chunks); larger ones by samples.
WHOLE_HASH_BYTES = 4 << 20
SAMPLE_BLOCKS, SAMPLE_BYTES = 64, 4096


def sampled_sha256(path: Path) -> str | None:
    """sha256 of SAMPLE_BLOCKS blocks of SAMPLE_BYTES spread evenly over the file, first and last
    included, and of its size."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            digest = hashlib.sha256(str(size).encode())
            last = max(size - SAMPLE_BYTES, 0)
            for block in range(SAMPLE_BLOCKS):
                handle.seek(last * block // (SAMPLE_BLOCKS - 1))
                digest.update(handle.read(SAMPLE_BYTES))
            return digest.hexdigest()
    except OSError:
        return None


def matches(path: Path, digest: str, size: int | None, sample: str | None) -> bool:
    """Whether the file ``path`` has the recorded ``size`` and, when it is small or has no
    ``sample``, the sha256 ``digest``, else the sampled one (no size recorded: the digest)."""
    if size is None:
        return sha256_of(path) == digest
    try:
        if path.stat().st_size != size:
            return False
    except OSError:
        return False
    return sampled_sha256(path) == sample if sample is not None else sha256_of(path) == digest


def of_files(folder: Path, files: list[Path]) -> tuple[dict, dict, dict]:
    """(sha256, size and, for files over WHOLE_HASH_BYTES, sampled sha256) of each of ``files``,
    by name relative to ``folder``."""
    return gathered(folder, {file: of_file(file) for file in files})


def of_file(file: Path) -> tuple[str | None, int, str | None]:
    """(sha256, size, sampled sha256 or None for a small file) of ``file``."""
    size = file.stat().st_size
    return sha256_of(file), size, sampled_sha256(file) if size > WHOLE_HASH_BYTES else None


def gathered(folder: Path, checks: dict) -> tuple[dict, dict, dict]:
    """of_files' three dicts from {file: of_file(file)}."""
    names = {file: file.relative_to(folder).as_posix() for file in checks}
    return ({names[f]: c[0] for f, c in checks.items()}, {names[f]: c[1] for f, c in checks.items()},
            {names[f]: c[2] for f, c in checks.items() if c[2] is not None})


def sha256_of(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None
