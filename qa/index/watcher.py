"""Notice a corpus folder changing, by watchfiles (the operating system's file events, read by
its Rust core; polling only where the system has no events).

A burst of saves (an editor writing a file several times, a folder copied in) is one batch: the
changes are gathered until none came for STEP_MS, or for DEBOUNCE_MS at most. What to do with a
batch is the caller's: Engine.watch brings the index up to date.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

# Changes are gathered until the folder is quiet this long...
STEP_MS = 400
# ...or this long at most, so a folder that never stops changing is still indexed.
DEBOUNCE_MS = 2000
READY_MS = 250


def corpus_changes(corpus: Path, index_dir: Path, stop: threading.Event | None = None,
                   step_ms: int = STEP_MS, debounce_ms: int = DEBOUNCE_MS,
                   ready: threading.Event | None = None) -> Iterator[list[str]]:
    """Each batch of changes under ``corpus``: the paths (relative, sorted) that were added,
    edited, moved or deleted. Hidden files and folders, and the index folder, are left out. Ends
    when ``stop`` is set; ctrl+c raises KeyboardInterrupt. ``ready`` is set once the folder is
    watched (a quarter of a second later at most): no change after that is missed."""
    from watchfiles import watch

    root = Path(corpus).resolve()
    index = Path(index_dir).resolve()

    def relevant(_change, path: str) -> bool:
        resolved = Path(path)
        if resolved == index or index in resolved.parents:
            return False
        try:
            parts = resolved.relative_to(root).parts
        except ValueError:
            return False
        return not any(part.startswith(".") for part in parts)

    # With ``ready``, watchfiles wakes every READY_MS without changes: the first wake says it watches.
    for changes in watch(root, watch_filter=relevant, step=step_ms, debounce=debounce_ms,
                         stop_event=stop, raise_interrupt=True, yield_on_timeout=ready is not None,
                         rust_timeout=READY_MS if ready is not None else 5_000):
        if ready is not None:
            ready.set()
        if not changes:
            continue
        yield sorted({Path(path).relative_to(root).as_posix() for _, path in changes})


class NewWarnings:
    """Tells each warning once while a folder is watched: an update passes on only the warnings
    the update before did not give, so a file skipped on every update is named once, and again
    when its reason changes or when it is fixed and later breaks again.

    ``filter(warn)`` is the ``warn`` to give a sync; call ``finished()`` after each sync.
    """

    def __init__(self) -> None:
        self._given: set[tuple[str, str]] = set()  # by the last finished update
        self._now: set[tuple[str, str]] = set()    # by the update under way

    def filter(self, warn: Callable[[str, str], None]) -> Callable[[str, str], None]:
        def once(source: str, reason: str) -> None:
            key = (source, reason)
            new = key not in self._given and key not in self._now
            self._now.add(key)
            if new:
                warn(source, reason)
        return once

    def finished(self, complete: bool = True) -> None:
        """An update ended; one cut short (``complete`` false) may not have named every file."""
        self._given = self._now if complete else self._given | self._now
        self._now = set()
