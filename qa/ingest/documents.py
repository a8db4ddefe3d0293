"""Find the documents of a corpus folder and read them."""

from __future__ import annotations

import hashlib
import os
import stat as stat_module
from dataclasses import dataclass
from pathlib import Path

from qa.errors import QAError
from qa.ingest.readers import Extracted, SkipFile, format_of, read_document, visible_controls


@dataclass(frozen=True)
class CorpusFile:
    """A file of the corpus that looks indexable, before it is read."""

    path: Path
    source: str  # path relative to the corpus folder, with forward slashes
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Document:
    source: str
    text: str
    sha256: str
    format: str
    page_starts: tuple[int, ...] = ()


def scan_corpus(corpus: Path, max_bytes: int, warn=None) -> list[CorpusFile]:
    """List indexable files under ``corpus``, sorted by source.

    Hidden files and folders are ignored, and so are symlinks: one leading out of the corpus
    would expose files the user did not point at, and one leading inside would index its target
    twice (and the boilerplate rules drop lines repeated across documents). Symlinked folders are
    never followed.
    Files over ``max_bytes`` are reported through ``warn`` and left out.
    """
    if not corpus.exists():
        raise QAError(f"corpus folder not found: {corpus}")
    if not corpus.is_dir():
        raise QAError(f"corpus is not a folder: {corpus}")
    root = corpus.resolve()
    found: list[CorpusFile] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and _inside(Path(folder, d), root))
        for name in sorted(files):
            path = Path(folder, name)
            if name.startswith(".") or format_of(path) is None or path.is_symlink():
                continue
            try:
                stat = path.stat()
            except OSError as exc:
                _warn(warn, path.relative_to(root).as_posix(), f"cannot read ({exc.strerror})")
                continue
            source = path.relative_to(root).as_posix()
            if not stat_module.S_ISREG(stat.st_mode):
                continue  # a named pipe or device would block or never end when read
            if not _encodable(source):
                # Undecodable bytes in a name: it could not be stored in the index or typed back.
                _warn(warn, source.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
                      "file name is not valid UTF-8")
                continue
            if visible_controls(source) != source:
                # Printed in every citation, such a name could drive the terminal.
                _warn(warn, visible_controls(source), "file name has control characters")
                continue
            if stat.st_size > max_bytes:
                _warn(warn, source, f"larger than the {max_bytes / (1024 * 1024):.3g} MB limit "
                      "(--max-file-mb)")
                continue
            found.append(CorpusFile(path, source, stat.st_size, stat.st_mtime_ns))
    return found


def _encodable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _inside(path: Path, root: Path) -> bool:
    """True unless ``path`` is a symlink whose target lies outside ``root``."""
    if not path.is_symlink():
        return True
    try:
        return path.resolve().is_relative_to(root)
    except OSError:
        return False


def _warn(warn, source: str, reason: str) -> None:
    if warn is not None:
        warn(source, reason)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_document(file: CorpusFile, sha256: str) -> Document:
    """Read and extract one file; raises SkipFile when it cannot be used."""
    extracted: Extracted = read_document(file.path)
    return Document(file.source, extracted.text, sha256, extracted.format, extracted.page_starts)


__all__ = ["CorpusFile", "Document", "SkipFile", "file_sha256", "load_document", "scan_corpus"]
