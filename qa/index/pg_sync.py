"""Writing a PostgreSQL store (sync), and dense search served by its HNSW index (PgVectors).

A build for a store is the folder build itself (qa.index.indexer), run in a scratch folder with
the store's live generation handed to it as the previous one: unchanged documents keep their
chunks, vectors and term counts exactly as a folder keeps them, and only new chunks are embedded.
The generation it makes is then inserted in one transaction that also switches ``qa_live``.
The writer holds a PostgreSQL advisory lock from reading the live generation to the switch, so
two writers take turns and the second builds on the first one's generation.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path

from qa.errors import IndexIncompatible
from qa.index import generations, indexer, pg_store, pg_write, store
from qa.index.pg_store import WRITER_LOCK, PgStore
from qa.index.reports import SyncReport
from qa.index.term_counts import counts_of


def sync(corpus: Path, target: PgStore, embedder, *, rebuild: bool = False, progress=None,
         warn=None, on_wait=None, max_bytes=None, loaded=None) -> SyncReport:
    """Bring the store up to date with ``corpus`` (as qa.index.indexer.sync does a folder)."""
    expected = indexer.expected_params(embedder, corpus)
    warn = warn or (lambda source, reason: None)
    options = {} if max_bytes is None else {"max_bytes": max_bytes}
    with target.connect(autocommit=True) as conn:
        pg_store.ensure_schema(conn, embedder.dimension)
        _lock(conn, on_wait)
        try:
            pg_write.remove_old_generations(conn)  # what an earlier writer did not get to
            previous = None if rebuild else _previous(target, conn, expected, loaded, warn)
            scratch_parent = Path(target.__fspath__())
            scratch_parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix="build-", dir=scratch_parent))
            try:
                report = indexer.sync(corpus, scratch, embedder, rebuild=rebuild, progress=progress,
                                      warn=warn, loaded=_seed(scratch, previous), **options)
                built = report.snapshot
                if built is None:
                    return dataclasses.replace(report, snapshot=None)
                counts = counts_of(built.bm25, built.kept["bm25-tf.npy"],
                                   built.kept["bm25-lengths.npy"])
                number = pg_write.write_generation(conn, built, counts, previous)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
                try:
                    scratch_parent.rmdir()  # unless another build of this store is under way
                except OSError:
                    pass
            pg_write.remove_old_generations(conn)
        finally:
            if not conn.closed and not conn.broken:  # else the server let go of the lock itself
                conn.execute("SELECT pg_advisory_unlock(%s)", (WRITER_LOCK,))
    built.path = target.generation(number)
    built.manifest = dict(built.manifest, generation=number)
    built.manifest.pop("files", None)
    return dataclasses.replace(report, generation=number, snapshot=built)


def _lock(conn, on_wait) -> None:
    """Wait for the writer's advisory lock (released by the server if this process dies)."""
    told = False
    while not conn.execute("SELECT pg_try_advisory_lock(%s)", (WRITER_LOCK,)).fetchone()[0]:
        if not told and on_wait:
            on_wait()
            told = True
        time.sleep(0.1)


def _previous(target: PgStore, conn, expected: dict, loaded, warn):
    """The live generation to build on, or None (rebuilding, with a warning saying why)."""
    number = pg_store.live_generation(conn)
    if number is None:
        return None
    if loaded is not None and getattr(loaded, "path", None) == target.generation(number) \
            and hasattr(loaded.vectors, "reconstruct"):
        try:
            store.check_compatible(loaded.manifest, expected)
            return loaded
        except IndexIncompatible:
            pass
    return indexer.previous_or_none(lambda: pg_store.load_snapshot(target, expected, dense="exact"),
                                    lambda: pg_store.read_manifest(target), target, expected, warn)


def _seed(scratch: Path, previous):
    """Lay ``previous`` out in the scratch folder as its live generation (a manifest and the
    CURRENT pointer are all the folder build looks at when it is handed the generation)."""
    if previous is None:
        return None
    folder = generations.generation_dir(scratch, previous.generation)
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(previous.manifest), encoding="utf-8")
    (scratch / generations.CURRENT).write_text(folder.name + "\n", encoding="utf-8")
    seeded = dataclasses.replace(previous, path=folder)
    return seeded
