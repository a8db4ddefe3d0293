"""Find the documents of a corpus folder and read them."""

from __future__ import annotations

import errno
import hashlib
import os
import stat as stat_module
from dataclasses import dataclass
from pathlib import Path

from qa.config import DEFAULT_MAX_FILE_BYTES
from qa.errors import QAError
from qa.ingest.html import Block
from qa.ingest.readers import FORMATS, Extracted, SkipFile, format_of, read_document_bytes, visible_controls
from qa.results import Locator


# A longer path fails in every call that takes one (ENAMETOOLONG: PATH_MAX on Linux).
MAX_PATH_BYTES = 4096


@dataclass(frozen=True)
class CorpusFile:
    """A file of the corpus that looks indexable, before it is read."""

    location: str | Path  # where it is; the scan gives a str (a Path each took 0.3 s at 50k files)
    source: str  # path relative to the corpus folder, with forward slashes
    size: int
    mtime_ns: int

    @property
    def path(self) -> Path:
        return Path(self.location)


@dataclass(frozen=True)
class Document:
    source: str
    text: str
    sha256: str
    format: str
    page_starts: tuple[int, ...] = ()
    blocks: tuple[Block, ...] = ()
    title: str = ""
    locators: tuple[Locator, ...] = ()
    author: str = ""
    date: str = ""


def scan_corpus(corpus: Path, max_bytes: int, warn=None,
                unreadable: dict[str, str] | None = None) -> list[CorpusFile]:
    """List indexable files under ``corpus``, sorted by source.

    Hidden files and folders are ignored, and so are symlinks: one leading out of the corpus
    would expose files the user did not point at, and one leading inside would index its target
    twice (and the boilerplate rules drop lines repeated across documents). Symlinked folders are
    never followed.
    Files over ``max_bytes`` are reported through ``warn`` and left out.
    A subfolder that cannot be listed is added to ``unreadable`` (its path relative to the corpus:
    the reason): its files are unknown, not gone. An unreadable corpus folder is a QAError.
    """
    if not corpus.exists():
        raise QAError(f"corpus folder not found: {corpus}")
    if not corpus.is_dir():
        raise QAError(f"corpus is not a folder: {corpus}")
    root = corpus.resolve()

    def cannot_list(error: OSError) -> None:
        if isinstance(error, (FileNotFoundError, NotADirectoryError)):
            return  # removed (or replaced by a file) since its parent was listed: gone indeed
        if Path(error.filename) == root:
            raise QAError(f"cannot read the corpus folder {corpus} ({error.strerror})")
        if unreadable is not None:
            unreadable[Path(error.filename).relative_to(root).as_posix()] = error.strerror or str(error)

    found: list[CorpusFile] = []
    base = str(root)
    # Names and one lstat per file, not Path objects: 50k files took 1.0 s, now 0.25 s.
    for folder, dirs, files in os.walk(root, onerror=cannot_list, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and _short_enough(Path(folder, d), root, warn, "/")
                         and _inside(Path(folder, d), root))
        prefix = "" if folder == base else os.path.relpath(folder, base).replace(os.sep, "/") + "/"
        for name in sorted(files):
            full = os.path.join(folder, name)
            if name.startswith(".") or FORMATS.get(os.path.splitext(name)[1].lower()) is None \
                    or (len(os.fsencode(full)) >= MAX_PATH_BYTES
                        and not _short_enough(Path(full), root, warn)):
                continue
            try:
                stat = os.lstat(full)  # a symlink's own: it is left out (see above)
            except OSError as exc:
                _warn(warn, prefix + name, f"cannot read ({exc.strerror})")
                continue
            if stat_module.S_ISLNK(stat.st_mode):
                continue
            source = _utf8_name(prefix + name)
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
                _warn(warn, source, _too_large(max_bytes))
                continue
            found.append(CorpusFile(full, source, stat.st_size, stat.st_mtime_ns))
    return found


def _short_enough(path: Path, root: Path, warn, suffix: str = "") -> bool:
    """False, with a warning naming it in short, for a path too long for the system to open."""
    if len(os.fsencode(path)) < MAX_PATH_BYTES:
        return True
    source = _utf8_name(path.relative_to(root).as_posix()) + suffix
    if len(source) > 60:
        source = f"{source[:28]}…{source[-28:]}"
    _warn(warn, source, f"path is longer than {MAX_PATH_BYTES:,} bytes")
    return False


def _utf8_name(name: str) -> str:
    """``name`` as UTF-8 text. In an ASCII locale (LC_ALL=C) Python reads the UTF-8 bytes of a
    file name as escapes: read them back, so a document's source is the same in every locale."""
    if _encodable(name):
        return name
    try:
        return os.fsencode(name).decode("utf-8")
    except UnicodeDecodeError:
        return name


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


class FileGone(SkipFile):
    """The file is no longer one of the corpus: deleted, or replaced by a symlink or a folder,
    since the folder was scanned. A build leaves it out rather than recording it as skipped."""


# The content hash recorded for a file that could not be read; never trusted by size and mtime
# (a chmod changes neither), so each build tries the file again.
UNREADABLE = ""
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a named pipe swapped in must not block the open
_BLOCK = 1 << 20


def read_corpus_file(file: CorpusFile, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> tuple[bytes, str]:
    """(bytes, sha256) of ``file``, both from one open file.

    The scan saw a regular file, but its path may have changed since: a symlink swapped in for
    the file, or for a folder above it, would get a file from outside the corpus indexed. So each
    step down from the corpus folder is opened relative to the one above without following
    symlinks, the open file is checked with fstat, and the bytes hashed are the bytes read.
    Raises FileGone, or SkipFile when the file cannot be read or grew past ``max_bytes``.
    """
    depth = file.source.count("/") + 1
    root = file.path.parents[depth - 1]  # file.path is the corpus folder / source
    parts = file.path.parts[-depth:]  # the names as the system gives them (see _utf8_name)
    try:
        if os.open in os.supports_dir_fd:
            fd = os.open(root, os.O_RDONLY | _DIRECTORY)
            for name in parts[:-1]:
                fd = _open_below(fd, name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW)
            fd = _open_below(fd, parts[-1], os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
        else:
            fd = os.open(file.path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise _unreadable(exc) from None
    with os.fdopen(fd, "rb", buffering=0) as handle:
        try:
            _check_regular(os.fstat(fd), max_bytes)
            digest, blocks, size = hashlib.sha256(), [], 0
            while block := handle.read(_BLOCK):
                size += len(block)
                if size > max_bytes:  # it grew after the scan
                    raise SkipFile(_too_large(max_bytes))
                digest.update(block)
                blocks.append(block)
        except OSError as exc:
            raise _unreadable(exc) from None
    return b"".join(blocks), digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of the regular file at ``path`` (never of a symlink's target); raises FileGone or
    SkipFile as read_corpus_file does."""
    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise _unreadable(exc) from None
    with os.fdopen(fd, "rb", buffering=0) as handle:
        try:
            _check_regular(os.fstat(fd), None)
            while block := handle.read(_BLOCK):
                digest.update(block)
        except OSError as exc:
            raise _unreadable(exc) from None
    return digest.hexdigest()


def _open_below(folder_fd: int, name: str, flags: int) -> int:
    """Open ``name`` in the folder open as ``folder_fd``, then close that folder."""
    try:
        return os.open(name, flags, dir_fd=folder_fd)
    except OSError as exc:
        # O_NOFOLLOW met a symlink: ELOOP for a file (EMLINK on FreeBSD), ENOTDIR for a folder
        if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
            try:
                link = stat_module.S_ISLNK(os.lstat(name, dir_fd=folder_fd).st_mode)
            except OSError:
                link = False
            raise FileGone("replaced by a symlink while indexing" if link
                           else "moved while indexing") from None
        raise
    finally:
        os.close(folder_fd)


def _check_regular(stat: os.stat_result, max_bytes: int | None) -> None:
    if not stat_module.S_ISREG(stat.st_mode):
        raise FileGone("no longer a regular file")
    if max_bytes is not None and stat.st_size > max_bytes:
        raise SkipFile(_too_large(max_bytes))


def _unreadable(exc: OSError) -> SkipFile:
    if exc.errno == errno.ENOENT:
        return FileGone("deleted while indexing")
    if exc.errno in (errno.ELOOP, errno.EMLINK):
        return FileGone("replaced by a symlink while indexing")
    return SkipFile(f"cannot read ({exc.strerror or exc})")


def _too_large(max_bytes: int) -> str:
    return f"larger than the {max_bytes / (1024 * 1024):.3g} MB limit (--max-file-mb)"


def load_document(file: CorpusFile, sha256: str, data: bytes | None = None) -> Document:
    """Extract one file, from ``data`` (its bytes, as read_corpus_file returned them) or read
    now; raises SkipFile when it cannot be used."""
    if data is None:
        data, sha256 = read_corpus_file(file)
    extracted: Extracted = read_document_bytes(data, format_of(file.path))
    return Document(file.source, extracted.text, sha256, extracted.format, extracted.page_starts,
                    extracted.blocks, extracted.title, extracted.locators, extracted.author,
                    extracted.date)


__all__ = ["UNREADABLE", "CorpusFile", "Document", "FileGone", "SkipFile", "file_sha256",
           "load_document", "read_corpus_file", "scan_corpus"]
