"""Notice a corpus folder changing, by watchfiles (the operating system's file events, read by
its Rust core; polling only where the system has no events).

A burst of saves (an editor writing a file several times, a folder copied in) is one batch: the
changes are gathered until none came for STEP_MS, or for DEBOUNCE_MS at most. What to do with a
batch is the caller's: Engine.watch brings the index up to date.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

# Changes are gathered until the folder is quiet this long...
STEP_MS = 400
# ...or this long at most, so a folder that never stops changing is still indexed.
DEBOUNCE_MS = 2000


def corpus_changes(corpus: Path, index_dir: Path, stop: threading.Event | None = None,
                   step_ms: int = STEP_MS, debounce_ms: int = DEBOUNCE_MS) -> Iterator[list[str]]:
    """Each batch of changes under ``corpus``: the paths (relative, sorted) that were added,
    edited, moved or deleted. Hidden files and folders, and the index folder, are left out. Ends
    when ``stop`` is set; ctrl+c raises KeyboardInterrupt."""
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

    for changes in watch(root, watch_filter=relevant, step=step_ms, debounce=debounce_ms,
                         stop_event=stop, raise_interrupt=True):
        yield sorted({Path(path).relative_to(root).as_posix() for _, path in changes})
