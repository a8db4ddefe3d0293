"""Where an index lives: a folder (qa.index.generations, the default) or a PostgreSQL store
(qa.index.pg_store, named by a postgresql:// URL). The engine and the CLI reach either through
these few functions, so every command that takes --index takes a store URL the same way."""

from __future__ import annotations

import os
from pathlib import Path

from qa.index import generations, indexer, pg_store, pg_sync, store
from qa.index.pg_store import PgStore, is_store_url


def location(index) -> Path | PgStore:
    """A PgStore for a store URL, else the index folder's Path."""
    if isinstance(index, PgStore):
        return index
    return PgStore(index) if is_store_url(index) else Path(index)


def live_key(index):
    """What names the live generation (a folder's path, a store's PgGeneration), or None when
    there is none."""
    if isinstance(index, PgStore):
        with index.reported(), index.connect() as conn:
            number = pg_store.live_generation(conn)
        return None if number is None else index.generation(number)
    return generations.current_path_safe(index)


def read_manifest(index) -> dict:
    if isinstance(index, PgStore):
        with index.reported():
            return pg_store.read_manifest(index)
    return generations.read_manifest(index)


def load_snapshot(index, expected: dict) -> store.IndexSnapshot:
    if isinstance(index, PgStore):
        with index.reported():
            return pg_store.load_snapshot(index, expected)
    return store.load_snapshot(index, expected)


def sync(corpus: Path, index, embedder, **options):
    if isinstance(index, PgStore):
        with index.reported():
            return pg_sync.sync(corpus, index, embedder, **options)
    return indexer.sync(corpus, index, embedder, **options)


def describe(index, verify: bool, expected: dict) -> dict:
    """{"manifest", "size"} of the live generation (a store: its tables' size)."""
    if isinstance(index, PgStore):
        with index.reported():
            if verify:  # reading it whole is the check a store has (no files to hash)
                manifest = pg_store.load_snapshot(index, expected).manifest
            else:
                manifest = pg_store.read_manifest(index)
            return {"manifest": manifest, "size": pg_store.store_size(index)}
    return None


def shown(index) -> str:
    """The index as `qa stats` names it: a folder's absolute path, a store's URL (no password)."""
    return str(index) if isinstance(index, PgStore) else os.path.abspath(index)
