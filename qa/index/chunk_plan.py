"""The chunks of a generation being built, as a plan: runs of the previous generation's rows kept
as they are, and the chunks this build made, in row order.

A one-file update keeps nearly every chunk. Made into a ChunkRecord each, and each looked up
again by id to copy its sentence and word vectors and its term counts, the kept chunks of a
50k-chunk index cost seconds; as runs of rows, their arrays are copied slice by slice.
PlannedChunks is still a sequence of ChunkRecord (made when asked for), so code without a fast
path gives the same result, only slower.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from qa.index.records import ChunkRecord
from qa.index.tables import ChunkTable


def rows_by_source(previous) -> dict[str, Sequence[int]]:
    """The rows of each document's chunks in ``previous`` (an IndexSnapshot or None): a range
    each, as a build lays them out document after document."""
    if previous is None:
        return {}
    chunks = previous.chunks
    if isinstance(chunks, ChunkTable):
        numbers = np.asarray(chunks.columns[:, 1])
        order = np.argsort(numbers, kind="stable")  # already sorted, unless made otherwise
        ends = np.cumsum(np.bincount(numbers, minlength=len(chunks.sources))).tolist()
        if np.array_equal(order, np.arange(len(order))):
            return {s: range(a, b) for s, a, b in zip(chunks.sources, [0, *ends[:-1]], ends) if b > a}
        return {s: order[a:b].tolist() for s, a, b in zip(chunks.sources, [0, *ends[:-1]], ends)
                if b > a}
    found: dict[str, list[int]] = {}
    for row, chunk in enumerate(chunks):
        found.setdefault(chunk.source, []).append(row)
    return found


class PlannedChunks(Sequence):
    """The new generation's chunks: ``old_rows[row]`` is the previous generation's row a kept
    chunk comes from, -1 for a chunk of ``fresh`` (in order)."""

    def __init__(self, previous):
        self.previous = previous
        self.rows: list[int] = []
        self.fresh: list[ChunkRecord] = []
        self._fresh_at: list[int] = []  # the row of each fresh chunk
        self._fresh_of_row: dict[int, ChunkRecord] = {}

    def keep(self, rows: Sequence[int]) -> None:
        """Keep the previous generation's ``rows``, as they are."""
        self.rows.extend(rows)

    def add(self, record: ChunkRecord) -> None:
        self._fresh_at.append(len(self.rows))
        self._fresh_of_row[len(self.rows)] = record
        self.rows.append(-1)
        self.fresh.append(record)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, row):
        if isinstance(row, slice):
            return [self[r] for r in range(*row.indices(len(self)))]
        old = self.rows[row]
        if old >= 0:
            return self.previous.chunks[old]
        return self._fresh_of_row[row % len(self)]

    def __iter__(self) -> Iterator[ChunkRecord]:
        fresh = iter(self.fresh)
        for kind, a, b in self.runs():
            yield from (self.previous.chunks[a:b] if kind == "old"
                        else (next(fresh) for _ in range(a, b)))

    @property
    def old_rows(self) -> np.ndarray:
        return np.asarray(self.rows, np.int64)

    @property
    def fresh_rows(self) -> list[int]:
        return list(self._fresh_at)

    def new_row_of_old(self) -> np.ndarray:
        """For each row of the previous generation, its row here, or -1 when it is dropped."""
        size = len(self.previous.chunks) if self.previous is not None else 0
        mapping = np.full(size, -1, np.int64)
        old = self.old_rows
        kept = np.flatnonzero(old >= 0)
        mapping[old[kept]] = kept
        return mapping

    def dropped_rows(self) -> np.ndarray:
        return np.flatnonzero(self.new_row_of_old() < 0)

    def runs(self) -> list[tuple[str, int, int]]:
        """("old", first, end) for a run of consecutive previous rows, ("new", first, end) for
        fresh chunks (positions in ``fresh``), in row order."""
        old = self.old_rows
        if not len(old):
            return []
        # A run breaks where kept and fresh chunks meet, or a kept row does not follow the one
        # before it.
        fresh = old < 0
        breaks = np.flatnonzero((fresh[1:] != fresh[:-1])
                                | (~fresh[1:] & (old[1:] != old[:-1] + 1))) + 1
        bounds = [0, *breaks.tolist(), len(old)]
        out, fresh = [], 0
        for a, b in zip(bounds[:-1], bounds[1:]):
            if old[a] >= 0:
                out.append(("old", int(old[a]), int(old[a]) + b - a))
            else:
                out.append(("new", fresh, fresh + b - a))
                fresh += b - a
        return out

    def ids(self) -> np.ndarray:
        """Chunk ids in row order."""
        out = np.zeros(len(self), np.int64)
        old = self.old_rows
        kept = old >= 0
        out[kept] = previous_ids(self.previous)[old[kept]]
        out[~kept] = [c.id for c in self.fresh]
        return out


def previous_ids(previous) -> np.ndarray:
    chunks = previous.chunks
    if isinstance(chunks, ChunkTable):
        return np.asarray(chunks.ids, np.int64)
    return np.fromiter((c.id for c in chunks), np.int64, len(chunks))


def gather(arrays: Sequence[np.ndarray], first, runs, fresh_parts, firsts=None,
           copied: list | None = None) -> list[np.ndarray]:
    """Rows of ragged per-chunk ``arrays`` (chunk r owns rows first[r]:first[r + 1] of each; or
    ``firsts[i]`` for arrays[i]) in the order of ``runs`` (PlannedChunks.runs), with
    ``fresh_parts[i]`` (one tuple of arrays per fresh chunk) for the fresh ones: one slice per
    run of kept chunks. ``copied`` gets (first row, end row, first source row) of each kept run,
    in rows of arrays[0] (what qa.index.npy_files.save_array copies file to file)."""
    firsts = firsts or [first] * len(arrays)
    pieces: list[list[np.ndarray]] = [[] for _ in arrays]
    at = 0
    for kind, a, b in runs:
        if kind == "old":
            rows = int(firsts[0][b]) - int(firsts[0][a])
            if copied is not None:
                copied.append((at, at + rows, int(firsts[0][a])))
        else:
            rows = sum(len(fresh_parts[i][0]) for i in range(a, b))
        at += rows
        for part, (out, array, starts) in enumerate(zip(pieces, arrays, firsts)):
            if kind == "old":
                out.append(array[int(starts[a]):int(starts[b])])
            else:
                out.extend(fresh_parts[i][part] for i in range(a, b))
    return [np.concatenate(p) if p else a[:0] for p, a in zip(pieces, arrays)]


def columnar(plan: PlannedChunks, sources: list[str]):
    """The columns tables.save_tables writes for ``plan`` in a generation of ``sources``
    (columns, sentence spans, kinds, hashes, headings), kept rows copied from the previous
    generation's columns; None when that is not a ChunkTable."""
    table = plan.previous.chunks if plan.previous is not None else None
    if not isinstance(table, ChunkTable):
        return None
    number = {source: i for i, source in enumerate(sources)}
    old = plan.old_rows
    kept = old >= 0
    columns = np.zeros((len(old), 7), np.int64)
    columns[kept] = table.columns[old[kept]]
    renumber = np.asarray([number.get(s, -1) for s in table.sources] or [0], np.int64)
    columns[kept, 1] = renumber[columns[kept, 1]]
    # Headings numbered by first appearance, as a full build numbers them: old ones keep their
    # key, a new one gets its old key or one past them.
    heading_key = {h: i for i, h in enumerate(table.headings)}
    names = list(table.headings)
    for record in plan.fresh:
        if record.heading not in heading_key:
            heading_key[record.heading] = len(names)
            names.append(record.heading)
    fresh_at = np.asarray(plan.fresh_rows, np.int64)
    columns[fresh_at] = [(c.id, number[c.source], c.start, c.end, len(c.sentences),
                          heading_key[c.heading], len(c.kinds)) for c in plan.fresh] or \
        np.zeros((0, 7), np.int64)
    keys, first = np.unique(columns[:, 5], return_index=True)
    ordered = keys[np.argsort(first)]
    renamed = np.zeros(len(names), np.int64)
    renamed[ordered] = np.arange(len(ordered))
    columns[:, 5] = renamed[columns[:, 5]]
    runs = plan.runs()
    fresh_parts = [(np.asarray(c.sentences, np.int64).reshape(-1, 2),
                    np.frombuffer(c.kinds.encode("ascii"), np.uint8),
                    np.asarray([c.hash], "S40")) for c in plan.fresh]
    sentences, kinds, hashes = gather(
        [table.sentences, table.kinds, table.hashes], None, runs, fresh_parts,
        [table.sentence_first, table.kind_first, np.arange(len(table) + 1)])
    return columns, sentences, kinds, hashes, [names[k] for k in ordered.tolist()]


def counts_by_source(plan: PlannedChunks) -> dict[str, int]:
    """How many chunks each document has in ``plan``."""
    table = plan.previous.chunks if plan.previous is not None else None
    if not isinstance(table, ChunkTable):
        from collections import Counter

        return Counter(c.source for c in plan)
    old = plan.old_rows
    numbers = table.columns[old[old >= 0], 1]
    per_old = np.bincount(numbers, minlength=len(table.sources)).tolist()
    counts = {s: n for s, n in zip(table.sources, per_old) if n}
    for record in plan.fresh:
        counts[record.source] = counts.get(record.source, 0) + 1
    return counts


class PlannedWords:
    """The word vectors of a generation built from a plan, not joined in memory: kept runs of the
    previous generation's rows, copied file to file when written (qa.index.npy_files), and the
    fresh chunks' parts. Joining them took 0.04-0.56 s at 50k chunks (210 MB, most of it in pages
    new to the process); the generation's reader maps the written files instead."""

    def __init__(self, plan: PlannedChunks, fresh_parts: list, projection, vocabulary_size: int):
        self.old = plan.previous.words
        self.source = plan.previous.path
        self.runs = plan.runs()
        self.parts = fresh_parts  # (int8 vectors, float16 scales, int32 ids) per fresh chunk
        self.fresh_of_row = dict(zip(plan.fresh_rows, fresh_parts))
        self.projection, self.vocabulary_size = projection, vocabulary_size
        counts, = gather([self.old.counts], np.arange(len(self.old.counts) + 1), self.runs,
                         [(np.asarray([len(p[2])], np.int32),) for p in fresh_parts])
        self.counts = counts.astype(np.int32, copy=False)

    def of_chunk(self, row: int):
        """(vectors, scales, ids) of the fresh chunk ``row`` (the only ones asked for)."""
        return self.fresh_of_row[row]

    @property
    def words(self) -> int:
        return int(self.counts.sum())

    def pieces(self, part: int) -> list:
        """Array ``part`` (0 vectors, 1 scales, 2 ids) in row order: (first, end) rows of the
        previous generation's array, or the rows themselves."""
        out = []
        for kind, a, b in self.runs:
            if kind == "old":
                out.append((int(self.old.first[a]), int(self.old.first[b])))
            else:
                out.extend(self.parts[i][part] for i in range(a, b))
        return out

    def joined(self, part: int) -> np.ndarray:
        """Array ``part``, joined in memory."""
        old = (self.old.vectors, self.old.scales, self.old.ids)[part]
        pieces = [old[p[0]:p[1]] if isinstance(p, tuple) else p for p in self.pieces(part)]
        return np.concatenate(pieces) if pieces else old[:0]
