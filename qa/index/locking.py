"""Who may write the index folder: IndexLock, the flock a build holds on ``.lock``, and the
checks that tell a read-only index folder (or disk) from other failures to write."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from qa.errors import IndexBusy, IndexReadOnly
from qa.index.generations import not_a_folder

LOCK = ".lock"


class IndexLock:
    """An exclusive flock on ``index/.lock``; released by the kernel if the holder dies."""

    def __init__(self, index_dir: Path, wait: bool = True, on_wait=None, timeout: float | None = None):
        self.path = index_dir / LOCK
        self.wait = wait
        self.on_wait = on_wait
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> "IndexLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except (NotADirectoryError, FileExistsError):
            raise not_a_folder(self.path.parent) from None
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise read_only(self.path.parent, exc) from None
            raise
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if not self.wait or (deadline is not None and time.monotonic() > deadline):
                    os.close(fd)
                    raise IndexBusy(f"another `qa index` is building {self.path.parent}") from None
                if not told and self.on_wait:
                    self.on_wait()
                    told = True
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def writable(index_dir: Path) -> bool:
    """Whether a build could write in ``index_dir`` (its folder and its lock file)."""
    lock = index_dir / LOCK
    return os.access(index_dir, os.W_OK | os.X_OK) and (not lock.exists() or os.access(lock, os.W_OK))


def read_only(index_dir: Path, exc: OSError) -> IndexReadOnly:
    return IndexReadOnly(f"cannot write the index in {index_dir} ({exc.strerror})")


def is_read_only(exc: BaseException, index_dir: Path) -> bool:
    """Whether ``exc`` is a refusal to write in ``index_dir`` (not, say, to read a document)."""
    if not isinstance(exc, OSError) or exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
        return False
    try:
        return Path(exc.filename).absolute().is_relative_to(Path(index_dir).absolute())
    except TypeError:  # no file name
        return False
