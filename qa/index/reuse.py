"""What a build keeps from the previous generation besides vectors: each document's short lines
(for boilerplate across documents), each chunk's BM25 term counts, the word pieces' document
frequencies. With them, an update does the per-document work for the documents it changes only.

Boilerplate: a line repeated across documents is furniture, so one document's edit can change
what another keeps. The build keeps the hashes of every document's short lines and counts them
afresh (numpy, cheap); a document it did not change is segmented again only when one of its own
lines became, or stopped being, repeated. It then gets the segments a full build would give it, and
only its chunks whose text changed are embedded (usually none: furniture is skipped, not chunked).
Keeping such a document's old chunks until it changes itself would save that, but would make the
index depend on the order of updates; this way an updated index is the one a full build makes.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from qa.index.lexical import count_forms, terms
from qa.index.chunk_plan import PlannedChunks
from qa.index.records import search_text
from qa.index.store import IndexSnapshot
from qa.index.term_counts import TermCounts, merge_counts
from qa.ingest.boilerplate import (SEGMENT_RULES, RepeatedLines, content_segments, counted_lines,
                                   line_hash, looked_up_lines)

Span = tuple[int, int]
Lines = tuple[np.ndarray, np.ndarray]  # hashes counted across documents, hashes only looked up


def document_lines(text: str, blocks=()) -> Lines:
    counted = {line_hash(k) for k in counted_lines(text)}
    extra = {line_hash(k) for k in looked_up_lines(text, blocks)} - counted
    return np.array(sorted(counted), np.int64), np.array(sorted(extra), np.int64)


def kept_lines(previous: IndexSnapshot | None) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    """The line hashes of the previous generation's documents: ({source: document number},
    every document's counted then looked-up hashes one after the other, (documents, 2) counts),
    or ({}, ...) when it has none."""
    empty = ({}, np.zeros(0, np.int64), np.zeros((0, 2), np.int32))
    if previous is None or previous.manifest.get("segment_rules") != SEGMENT_RULES \
            or "lines-keys.npy" not in previous.kept:
        return empty
    keys, counts = previous.kept["lines-keys.npy"], previous.kept["lines-counts.npy"]
    sources = list(previous.manifest["documents"])
    if len(counts) != len(sources) or int(counts.sum()) != len(keys):
        return empty
    return {source: i for i, source in enumerate(sources)}, np.asarray(keys), np.asarray(counts)


def repeated_hashes(keys: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Hashes counted in more than one document (``keys`` and ``counts`` as kept_lines)."""
    counted = np.repeat(np.tile([True, False], len(counts)), counts.reshape(-1)) if len(counts) \
        else np.zeros(0, bool)
    unique, seen = np.unique(keys[counted], return_counts=True)
    return unique[seen > 1]


def plan_segments(texts: dict, unchanged: set[str], previous: IndexSnapshot | None):
    """(segments of the documents that need segmenting, the line arrays to keep).

    ``texts`` maps each source to its document (text, blocks), in generation order; the
    ``unchanged`` documents are segmented only when repeated lines changed for them, or when the
    previous generation kept no line hashes. Kept documents' hashes are copied a run of
    documents at a time (one array per document took 0.25 s at 50k documents).
    """
    number, old_keys, old_counts = kept_lines(previous)
    old_ends = np.cumsum(old_counts.sum(axis=1)) if len(old_counts) else np.zeros(0, np.int64)
    keys, counts, run = [], [], None  # run: the previous documents [first, end) kept in a row
    kept_at: list[int] = []  # documents (new numbers) whose hashes were kept

    def close_run():
        if run is not None:
            first, end = run
            keys.append(old_keys[old_ends[first] - old_counts[first].sum():old_ends[end - 1]])
            counts.append(old_counts[first:end])

    for new, source in enumerate(texts):
        old = number.get(source) if source in unchanged else None
        if old is not None and run is not None and run[1] == old:
            run = (run[0], old + 1)
        else:
            close_run()
            run = None
            if old is not None:
                run = (old, old + 1)
            else:
                counted, extra = document_lines(texts[source].text, texts[source].blocks)
                keys.append(np.concatenate([counted, extra]))
                counts.append(np.array([[len(counted), len(extra)]], np.int32))
        if old is not None:
            kept_at.append(new)
    close_run()
    keys = np.concatenate(keys) if keys else np.zeros(0, np.int64)
    counts = np.concatenate(counts).astype(np.int32) if counts else np.zeros((0, 2), np.int32)
    repeated = repeated_hashes(keys, counts)
    sources = list(texts)
    quiet = np.zeros(len(sources), bool)
    quiet[kept_at] = True
    to_segment = {s for s, q in zip(sources, quiet.tolist()) if not q}
    if number:
        flipped = np.setxor1d(repeated_hashes(old_keys, old_counts), repeated)
        if len(flipped) and quiet.any():
            owner = np.repeat(np.arange(len(sources)), counts.sum(axis=1))
            hit = quiet[owner] & np.isin(keys, flipped)
            to_segment |= {sources[i] for i in np.unique(owner[hit]).tolist()}
    found = RepeatedLines(repeated.tolist())
    segments = {s: content_segments(texts[s].text, found, texts[s].blocks)
                for s in texts if s in to_segment}
    return segments, {"lines-keys.npy": keys, "lines-counts.npy": counts}


def term_counts_for(chunks, documents, previous: IndexSnapshot | None) -> TermCounts:
    """BM25 term counts of the new generation's ``chunks``: kept from the previous generation for
    the chunks it holds, counted for the others."""
    old = previous.term_counts if previous is not None else None
    fresh: dict[int, Counter] = {}
    lengths: dict[int, int] = {}
    if old is not None and isinstance(chunks, PlannedChunks):
        for row, chunk in zip(chunks.fresh_rows, chunks.fresh):
            found = terms(search_text(documents[chunk.source].text[chunk.start:chunk.end],
                                      chunk.heading))
            fresh[row] = Counter(found)
            lengths[row] = len(found)
        return merge_counts(old, chunks.new_row_of_old(), fresh, lengths, len(chunks))
    new_row_of_old = np.full(len(previous.chunks), -1, np.int64) if old is not None else None
    for row, chunk in enumerate(chunks):
        old_row = previous.row_of_id.get(chunk.id) if old is not None else None
        if old_row is not None:
            new_row_of_old[old_row] = row
            continue
        found = terms(search_text(documents[chunk.source].text[chunk.start:chunk.end], chunk.heading))
        fresh[row] = Counter(found)
        lengths[row] = len(found)
    return merge_counts(old, new_row_of_old, fresh, lengths, len(chunks))


def word_doc_freq(words, chunks, previous: IndexSnapshot | None) -> np.ndarray:
    """Chunks holding each word piece, for the new generation's ``words``: the previous
    generation's counts, less its dropped chunks', plus the new chunks'."""
    if previous is None or previous.words is None \
            or previous.words.vocabulary_size != words.vocabulary_size:
        return words.doc_freq
    if isinstance(chunks, PlannedChunks):
        new_rows, dropped = chunks.fresh_rows, chunks.dropped_rows().tolist()
    else:
        new_rows = [row for row, c in enumerate(chunks) if c.id not in previous.row_of_id]
        kept_ids = {c.id for c in chunks}
        dropped = [row for row, c in enumerate(previous.chunks) if c.id not in kept_ids]
    return (previous.words.doc_freq - _pieces_in(previous.words, dropped)
            + _pieces_in(words, new_rows))


def _pieces_in(words, rows: list[int]) -> np.ndarray:
    """How many of ``rows`` hold each word piece."""
    size = words.vocabulary_size + 1
    ids = [np.unique(words.of_chunk(row)[2]) for row in rows]
    flat = np.concatenate(ids).astype(np.int64) if ids else np.zeros(0, np.int64)
    return np.bincount(flat, minlength=size)[:size]


def word_forms_for(chunks, documents, previous: IndexSnapshot | None) -> dict[str, int]:
    """How often each word form occurs in the new generation's chunks (what the speller knows):
    the previous generation's counts, less its dropped chunks', plus the new chunks' (counting
    every chunk of a large index again took 7 s at 25k chunks, at the first question)."""
    old = previous.word_forms() if previous is not None else None
    if old is None:
        counts = count_forms(documents[c.source].text[c.start:c.end] for c in chunks)
        return dict(counts)
    counts = Counter(old)
    if isinstance(chunks, PlannedChunks):
        gone = (previous.chunks[row] for row in chunks.dropped_rows().tolist())
        new = chunks.fresh
    else:
        kept_ids = {c.id for c in chunks}
        gone = (c for c in previous.chunks if c.id not in kept_ids)
        new = (c for c in chunks if c.id not in previous.row_of_id)
    counts.subtract(count_forms(previous.chunk_text(c) for c in gone))
    counts.update(count_forms(documents[c.source].text[c.start:c.end] for c in new))
    return {form: n for form, n in counts.items() if n > 0}
