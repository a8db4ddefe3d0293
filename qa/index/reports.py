"""What a build tells its caller: IndexProgress while it runs (with time_left, the estimate a
front end shows beside it) and SyncReport when it ends, with name_list to name the documents
it changed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

LOADING_MODEL = "loading the model"


@dataclass(frozen=True)
class IndexProgress:
    """Posted while a build runs: ``phase`` is "reading", "chunking" (only for long texts),
    LOADING_MODEL (no counts: total 0), "embedding" or "writing"; ``unit`` names what is
    counted when the phase alone does not say it."""

    phase: str
    done: int
    total: int
    unit: str = ""


def time_left(progress: IndexProgress, elapsed: float) -> str:
    """"about 3 min left" for a phase that has run ``elapsed`` seconds at its pace so far; empty
    while it is too soon to tell, and for a phase that takes less than a quarter of a minute."""
    done, total = progress.done, progress.total
    if done <= 0 or done >= total or elapsed < 3:
        return ""
    left = elapsed * (total - done) / done
    if elapsed + left < 15:
        return ""
    if left < 60:
        return f"about {max(5, round(left / 5) * 5)} s left"
    minutes = round(left / 60)
    if minutes < 60:
        return f"about {minutes} min left"
    return f"about {minutes // 60} h {minutes % 60} min left"


@dataclass(frozen=True)
class SyncReport:
    added: int
    updated: int
    removed: int
    unchanged: int
    chunks_embedded: int
    documents: int
    chunks: int
    seconds: float
    generation: int
    skipped: dict[str, str] = field(default_factory=dict)
    # The documents behind the counts: {"added": [...], "updated": [...], "removed": [...]}.
    sources: dict[str, list[str]] = field(default_factory=dict)
    # The generation written, already loaded (None when nothing was written).
    snapshot: object = field(default=None, repr=False, compare=False)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unchanged} unchanged; {self.chunks_embedded} chunks embedded; "
            f"{self.documents} documents, {self.chunks} chunks in {self.seconds:.1f} s"
        )

    def to_json(self) -> dict:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "chunks_embedded": self.chunks_embedded,
            "documents": self.documents,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
            "generation": self.generation,
            "skipped": self.skipped,
            **{f"{kind}_sources": self.sources.get(kind, []) for kind in ("added", "updated", "removed")},
        }

    def changes(self, limit: int = 10) -> list[str]:
        """One line per kind of change naming the documents ("added: a.md, b.md"), at most
        ``limit`` names each."""
        return [f"{kind}: {name_list(self.sources[kind], limit)}"
                for kind in ("added", "updated", "removed") if self.sources.get(kind)]


def name_list(names: list[str], limit: int) -> str:
    """``names`` joined with commas, the first ``limit`` of them ("a.md, b.md and 3 more")."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


Progress = Callable[[IndexProgress], None]
