"""Chunks and documents of a large generation, read on demand rather than parsed whole.

Up to COLUMNAR_FROM chunks a generation keeps them in chunks.json and documents.json, parsed
whole at load. Above, a JSON parse and a Python object per chunk cost most of start-up and of
memory (at 50k chunks 1.7 s of 2.5 s, growing linearly: half a minute at a million), so chunks
are columns of numbers in .npy files, memory-mapped, and documents' text is one UTF-8 file read
by memory map, one document at a time:

    chunks.npy            int64 (chunks, 7): id, document number, start, end, sentence count,
                          heading number, kinds length
    chunks-sentences.npy  int64 (sentences, 2): the sentence spans, chunk after chunk
    chunks-kinds.npy      uint8: the kinds letters, chunk after chunk
    chunks-hashes.npy     S40: each chunk's text hash
    chunks-headings.json  the distinct heading paths
    documents.txt         every document's text in UTF-8, in manifest order
    documents.npy         int64 (documents, 2): byte start and end of each in documents.txt

ChunkTable and DocumentTable stand in for the list of ChunkRecord and the dict of
StoredDocument: a chunk or document is built when asked for. Offsets stay character offsets into
the document's text, so citations are exact as before.
"""

from __future__ import annotations

import json
import mmap
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from qa.index.records import ChunkRecord, StoredDocument, mapped, stored_document

COLUMNAR_FROM = 20_000
CHUNK_FILES = ("chunks.npy", "chunks-sentences.npy", "chunks-kinds.npy", "chunks-hashes.npy",
               "chunks-headings.json")
TEXT_FILES = ("documents.txt", "documents.npy")
COLUMNAR_FILES = CHUNK_FILES + TEXT_FILES
ITER_BLOCK = 4096
# Documents kept decoded: the passages of one question come from a few documents.
CACHED_DOCUMENTS = 64


def is_columnar(files) -> bool:
    return "chunks.npy" in files


def save_tables(folder: Path, documents: Mapping[str, StoredDocument],
                chunks: Sequence[ChunkRecord], write_texts=None, made=None) -> None:
    """Write the columnar files of ``documents`` and ``chunks`` into ``folder``;
    ``write_texts(handle, documents)`` writes the documents' UTF-8 texts and gives their byte
    offsets (qa.index.kept_documents.write_texts), and ``made`` gives the chunk columns when
    the caller has them (qa.index.chunk_plan.columnar)."""
    write_texts = write_texts or _write_texts
    columns, spans, kinds, hashes, headings = made or _columns(documents, chunks)
    np.save(folder / "chunks.npy", columns, allow_pickle=False)
    np.save(folder / "chunks-sentences.npy", np.asarray(spans, np.int64).reshape(-1, 2),
            allow_pickle=False)
    np.save(folder / "chunks-kinds.npy", kinds, allow_pickle=False)
    np.save(folder / "chunks-hashes.npy", hashes, allow_pickle=False)
    (folder / "chunks-headings.json").write_text(json.dumps(list(headings), ensure_ascii=False),
                                                 encoding="utf-8")
    with open(folder / "documents.txt", "wb") as handle:
        offsets = write_texts(handle, documents)
    np.save(folder / "documents.npy", offsets, allow_pickle=False)


class ChunkTable(Sequence):
    """The chunks of a columnar generation; ``table[row]`` is its ChunkRecord."""

    def __init__(self, columns: np.ndarray, sentences: np.ndarray, kinds: np.ndarray,
                 hashes: np.ndarray, headings: list[str], sources: list[str]):
        self.columns, self.sentences, self.kinds = columns, sentences, kinds
        self.hashes, self.headings, self.sources = hashes, headings, sources
        self.sentence_first = _starts(columns[:, 4])
        self.kind_first = _starts(columns[:, 6])
        self._records: list[ChunkRecord] | None = None

    def __len__(self) -> int:
        return len(self.columns)

    def __getitem__(self, row):
        if isinstance(row, slice):
            return [self[r] for r in range(*row.indices(len(self)))]
        if self._records is not None:
            return self._records[row]
        if row < 0:
            row += len(self)
        chunk_id, document, start, end, count, heading, kinds = self.columns[row].tolist()
        first, kind_first = int(self.sentence_first[row]), int(self.kind_first[row])
        flat = self.sentences[first:first + count].tolist()
        return ChunkRecord(chunk_id, self.sources[document], start, end,
                           self.hashes[row].decode("ascii"), tuple(map(tuple, flat)),
                           self.headings[heading],
                           self.kinds[kind_first:kind_first + kinds].tobytes().decode("ascii"))

    def __iter__(self) -> Iterator[ChunkRecord]:
        # Whoever walks every chunk (a build, a scope) usually does it again: the records are kept
        # once made (about 1 KB each).
        if self._records is None:
            self._records = list(self._made())
        return iter(self._records)

    def _made(self) -> Iterator[ChunkRecord]:
        # Block by block: numpy's tolist() on a block costs far less than indexing row by row.
        for first in range(0, len(self), ITER_BLOCK):
            end = min(first + ITER_BLOCK, len(self))
            a, b = int(self.sentence_first[first]), int(self.sentence_first[end])
            spans = self.sentences[a:b].tolist()
            k = int(self.kind_first[first])
            kinds = self.kinds[k:int(self.kind_first[end])].tobytes().decode("ascii")
            hashes = self.hashes[first:end].tolist()
            at = kind_at = 0
            for i, (chunk_id, document, start, stop, count, heading, kind_count) in enumerate(
                    self.columns[first:end].tolist()):
                yield ChunkRecord(chunk_id, self.sources[document], start, stop,
                                  hashes[i].decode("ascii"), tuple(map(tuple, spans[at:at + count])),
                                  self.headings[heading], kinds[kind_at:kind_at + kind_count])
                at += count
                kind_at += kind_count

    @property
    def ids(self) -> np.ndarray:
        return self.columns[:, 0]

    def sentence_counts(self) -> np.ndarray:
        return self.columns[:, 4]

    def rows_of(self, sources) -> dict[str, list[tuple[int, int]]]:
        """(start, row) of every chunk of each of ``sources``, in row order."""
        number = {s: i for i, s in enumerate(self.sources)}
        wanted = {number[s]: s for s in sources if s in number}
        found: dict[str, list[tuple[int, int]]] = {s: [] for s in sources}
        rows = np.flatnonzero(np.isin(self.columns[:, 1], list(wanted)))
        for row, document, start in zip(rows.tolist(), self.columns[rows, 1].tolist(),
                                        self.columns[rows, 2].tolist()):
            found[wanted[document]].append((start, row))
        return found


def _write_texts(handle, documents) -> np.ndarray:
    offsets = np.zeros((len(documents), 2), np.int64)
    at = 0
    for i, document in enumerate(documents.values()):
        data = document.text.encode("utf-8", "surrogatepass")
        handle.write(data)
        offsets[i] = at, at + len(data)
        at += len(data)
    return offsets


def _columns(documents, chunks):
    """(columns, sentence spans, kinds, hashes, headings) of ``chunks``, record by record."""
    number = {source: i for i, source in enumerate(documents)}
    headings: dict[str, int] = {}
    columns = np.zeros((len(chunks), 7), np.int64)
    spans, kinds = [], []
    for row, c in enumerate(chunks):
        columns[row] = (c.id, number[c.source], c.start, c.end, len(c.sentences),
                        headings.setdefault(c.heading, len(headings)), len(c.kinds))
        spans.extend(x for span in c.sentences for x in span)
        kinds.append(c.kinds)
    return (columns, spans, np.frombuffer("".join(kinds).encode("ascii"), np.uint8),
            np.asarray([c.hash for c in chunks], dtype="S40"), list(headings))


def _starts(counts: np.ndarray) -> np.ndarray:
    starts = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=starts[1:])
    return starts


class RowOfId(Mapping):
    """Chunk id -> row, by binary search over the sorted ids (a dict of a million ints takes
    100 MB and a third of a second to build: only made when a build looks up every chunk)."""

    def __init__(self, ids: np.ndarray):
        self.order = np.argsort(ids, kind="stable")
        self.sorted = np.asarray(ids)[self.order]
        self.lookups = 0
        self.table: dict[int, int] | None = None

    def __getitem__(self, chunk_id) -> int:
        if self.table is not None:
            return self.table[chunk_id]
        self.lookups += 1
        if self.lookups > len(self.sorted) // 4 + 1000:
            # Looked up row by row over the whole index (a build): a dict is 20 times faster.
            self.table = dict(zip(self.sorted.tolist(), self.order.tolist()))
            return self.table[chunk_id]
        at = int(np.searchsorted(self.sorted, chunk_id))
        if at == len(self.sorted) or self.sorted[at] != chunk_id:
            raise KeyError(chunk_id)
        return int(self.order[at])

    def __len__(self) -> int:
        return len(self.sorted)

    def __iter__(self):
        return iter(self.sorted.tolist())


class DocumentTable(Mapping):
    """The documents of a columnar generation; ``table[source]`` is its StoredDocument, its text
    read from documents.txt when asked for (a few recent ones are kept)."""

    def __init__(self, manifest_documents: dict, structure: dict, text_path: Path,
                 offsets: np.ndarray):
        self.meta, self.structure, self.offsets = manifest_documents, structure, offsets
        self.number = {source: i for i, source in enumerate(manifest_documents)}
        with open(text_path, "rb") as handle:
            size = _file_size(handle)
            self.blob = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        self.cache: OrderedDict[str, StoredDocument] = OrderedDict()

    def __getitem__(self, source: str) -> StoredDocument:
        document = self.cache.get(source)
        if document is not None:
            self.cache.move_to_end(source)
            return document
        start, end = self.offsets[self.number[source]].tolist()  # KeyError for an unknown one
        text = self.blob[start:end].decode("utf-8", "surrogatepass")
        document = stored_document(source, self.meta[source], text, self.structure)
        self.cache[source] = document
        if len(self.cache) > CACHED_DOCUMENTS:
            self.cache.popitem(last=False)
        return document

    def raw_text(self, source: str) -> bytes:
        """The UTF-8 bytes of ``source``'s text, as stored (a build copies them undecoded)."""
        start, end = self.offsets[self.number[source]].tolist()
        return self.blob[start:end]

    def raw_size(self, source: str) -> int:
        start, end = self.offsets[self.number[source]].tolist()
        return end - start

    def __contains__(self, source) -> bool:
        return source in self.number

    def __len__(self) -> int:
        return len(self.number)

    def __iter__(self):
        return iter(self.number)


def _file_size(handle) -> int:
    import os

    return os.fstat(handle.fileno()).st_size


def load_tables(folder: Path, manifest: dict, structure: dict) -> tuple[DocumentTable, ChunkTable]:
    """The documents and chunks of a columnar generation (raises ValueError when they disagree)."""
    def array(name):
        return mapped(folder / name)

    columns = array("chunks.npy")
    headings = json.loads((folder / "chunks-headings.json").read_text(encoding="utf-8"))
    offsets = array("documents.npy")
    sources = list(manifest["documents"])
    chunks = ChunkTable(columns, array("chunks-sentences.npy"), array("chunks-kinds.npy"),
                        array("chunks-hashes.npy"), headings, sources)
    documents = DocumentTable(manifest["documents"], structure, folder / "documents.txt", offsets)
    if columns.ndim != 2 or columns.shape[1] != 7 or offsets.shape != (len(sources), 2) \
            or len(chunks.hashes) != len(columns) \
            or chunks.sentence_first[-1] != len(chunks.sentences) \
            or chunks.kind_first[-1] != len(chunks.kinds) \
            or (len(columns) and (columns[:, 1].min() < 0 or columns[:, 1].max() >= len(sources)
                                  or columns[:, 5].max() >= len(headings)
                                  or columns[:, 5].min() < 0)) \
            or (len(offsets) and offsets[-1, 1] > len(documents.blob)):
        raise ValueError("chunk tables do not line up")
    return documents, chunks
