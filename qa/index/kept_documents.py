"""The documents of a generation being built: those the build read, and those it keeps exactly as
the previous generation stores them.

A kept document (same bytes, same stamp, same segments) is not made into a StoredDocument: its
text, structure and manifest entry are copied as the previous generation stores them. Making every
kept document of a 50k-document folder an object (its text decoded, its blocks parsed) took 4 s of
a one-file update, four times over; writing them back re-encoded every text.

Also how a document is written: its structure.json entry, its manifest entry, its UTF-8 bytes,
whether it came from this build or from the previous generation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from qa.index.records import StoredDocument
from qa.index.tables import DocumentTable, is_columnar, load_tables

# A title or author longer than this is cut in the manifest (the text keeps it whole).
MAX_METADATA_CHARS = 200


class BuiltDocuments(Mapping):
    """``fresh`` documents (read or restamped by this build) and the ``kept`` sources of
    ``previous`` (an IndexSnapshot), in ``order``; ``built[source]`` is a StoredDocument, made
    when asked for."""

    def __init__(self, order: list[str], fresh: dict[str, StoredDocument], kept: set[str],
                 previous):
        self.order, self.fresh, self.kept, self.previous = order, fresh, kept, previous

    def __getitem__(self, source: str) -> StoredDocument:
        document = self.fresh.get(source)
        if document is not None:
            return document
        if source in self.kept:
            return self.previous.documents[source]
        raise KeyError(source)

    def __contains__(self, source) -> bool:
        return source in self.fresh or source in self.kept

    def __iter__(self) -> Iterator[str]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)

    def stored(self, source: str) -> bool:
        """Whether ``source`` is kept as the previous generation stores it."""
        return source in self.kept


def as_loaded(documents: BuiltDocuments, chunks, final: Path, manifest: dict, structure: dict):
    """(documents, chunks) of the generation written in ``final`` as a reader holds them: a
    large one's read on demand from its own files (not from the previous generation's, which
    the next update would chain to), a small one's as a dict and a list."""
    if is_columnar(manifest["files"]):
        return load_tables(final, manifest, structure)
    return {source: documents[source] for source in documents}, list(chunks)


class AsRead(dict):
    """Each document of ``texts`` as read, or as the previous generation holds it (made when
    asked for: plan_segments asks only for those it segments)."""

    def __init__(self, texts, old_docs):
        super().__init__((s, doc) for s, (_, doc) in texts.items())
        self.old_docs = old_docs

    def __getitem__(self, source):
        doc = super().__getitem__(source)
        return doc if doc is not None else self.old_docs[source]


def _previous_table(documents):
    """The previous generation's DocumentTable when ``documents`` keeps documents from one
    (raw bytes and structure can be copied from it), else None."""
    if not isinstance(documents, BuiltDocuments) or not documents.kept:
        return None
    table = documents.previous.documents
    return table if isinstance(table, DocumentTable) else None


def text_bytes(documents: Mapping[str, StoredDocument], source: str) -> bytes:
    """The UTF-8 text of ``source``, copied as stored when it is kept."""
    table = _previous_table(documents)
    if table is not None and documents.stored(source):
        return table.raw_text(source)
    return documents[source].text.encode("utf-8", "surrogatepass")


def write_texts(handle, documents: Mapping[str, StoredDocument]) -> np.ndarray:
    """Write each document's UTF-8 text into ``handle``, one after the other; their (documents,
    2) byte offsets. Kept documents in a row are one slice of the previous generation's file
    (written one by one, 50k documents took 0.2 s)."""
    table = _previous_table(documents)
    starts, ends = (table.offsets[:, 0].tolist(), table.offsets[:, 1].tolist()) if table else ([], [])
    lengths = np.zeros(len(documents), np.int64)
    run = None  # (first byte, end byte) of the previous file still to copy

    for i, source in enumerate(documents):
        if table is not None and documents.stored(source):
            n = table.number[source]
            lengths[i] = ends[n] - starts[n]
            if run is not None and run[1] == starts[n]:
                run = (run[0], ends[n])
                continue
            if run is not None:
                handle.write(table.blob[run[0]:run[1]])
            run = (starts[n], ends[n])
            continue
        if run is not None:
            handle.write(table.blob[run[0]:run[1]])
            run = None
        data = documents[source].text.encode("utf-8", "surrogatepass")
        handle.write(data)
        lengths[i] = len(data)
    if run is not None:
        handle.write(table.blob[run[0]:run[1]])
    offsets = np.zeros((len(documents), 2), np.int64)
    np.cumsum(lengths, out=offsets[:, 1])
    offsets[:, 0] = offsets[:, 1] - lengths
    return offsets


def text_size(documents: Mapping[str, StoredDocument], source: str) -> int:
    """len(text_bytes(documents, source)), without the bytes of a kept document."""
    table = _previous_table(documents)
    if table is not None and documents.stored(source):
        return table.raw_size(source)
    return len(text_bytes(documents, source))


def structure_json(documents: Mapping[str, StoredDocument]) -> dict:
    """structure.json of ``documents``: per document that has any, its title, blocks, locators,
    author and date (kept documents' entries as stored)."""
    table = _previous_table(documents)
    out = {}
    for source in documents:
        if table is not None and documents.stored(source):
            entry = table.structure.get(source)
        else:
            entry = structure_entry(documents[source])
        if entry is not None:
            out[source] = entry
    return out


def structure_entry(d: StoredDocument) -> dict | None:
    if not (d.blocks or d.title or d.locators or d.author or d.date):
        return None
    return {"title": d.title, "blocks": [x for b in d.blocks for x in (b.start, b.end, b.kind, b.level)],
            "locators": [[x.start, x.kind, x.number, x.label, x.date] for x in d.locators],
            "author": d.author, "date": d.date}


def manifest_documents(documents: Mapping[str, StoredDocument], chunks_of: Mapping[str, int]) -> dict:
    """The manifest's "documents": per document its hash, format, stamp, segments hash, chunk
    count, page starts and what the file says of itself (a kept document's entry as stored,
    which has the same chunks: its segments did not change)."""
    keeps = isinstance(documents, BuiltDocuments) and bool(documents.kept)
    previous = documents.previous.manifest["documents"] if keeps else {}
    out = {}
    for source in documents:
        if keeps and documents.stored(source) \
                and previous.get(source, {}).get("chunks") == chunks_of.get(source, 0):
            out[source] = previous[source]
        else:
            out[source] = manifest_entry(documents[source], chunks_of.get(source, 0))
    return out


def manifest_entry(d: StoredDocument, chunks: int) -> dict:
    return {
        "sha256": d.sha256,
        "format": d.format,
        "size": d.size,
        "mtime_ns": d.mtime_ns,
        "segments_hash": d.segments_hash,
        "chunks": chunks,
        **({"page_starts": list(d.page_starts)} if d.page_starts else {}),
        # What the file says of itself, for `qa stats` (which reads nothing else).
        **{key: value[:MAX_METADATA_CHARS] for key, value in
           (("title", d.title), ("author", d.author), ("date", d.date)) if value},
    }
