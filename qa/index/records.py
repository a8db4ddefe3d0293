"""What a generation's files hold and how they are encoded: the schema number, the chunk and
document records (ChunkRecord, StoredDocument), the shape a manifest must have, the columnar
chunks.json encoding, the word-vector files, and the rebuilding of documents and chunks from
what was read. The lowest layer of the index folder: it reads and writes no folder itself."""

from __future__ import annotations

import mmap
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.index.late_interaction import Projection, TokenVectors
from qa.ingest.html import Block
from qa.results import Locator

SCHEMA = 7  # 2: sentence vectors (sentences.npy); 3: word vectors (words-*.npy);
# 4: a list marker ("1.") is part of its item's sentence; 5: structured HTML and Markdown
# (structure.json), headings kept, chunks know their heading path; 6: office, mail, notebook and
# table formats, locators (slide, chapter, message) and metadata (title, author, date) per document;
# 7: the terms of definition lists are sentences of their own kind ("d")

Span = tuple[int, int]


@dataclass(frozen=True)
class ChunkRecord:
    id: int
    source: str
    start: int
    end: int
    hash: str
    sentences: tuple[Span, ...]
    heading: str = ""  # the headings the chunk sits under, "Title > Section"
    kinds: str = ""  # one letter per sentence, as qa.ingest.chunking.ChunkSpan.kinds

    def kind(self, position: int) -> str:
        return self.kinds[position] if position < len(self.kinds) else "t"


def search_text(text: str, heading: str) -> str:
    """What a chunk is searched by: its heading path, then its text."""
    return f"{heading}\n{text}" if heading else text


@dataclass(frozen=True)
class StoredDocument:
    source: str
    text: str
    sha256: str
    format: str
    size: int
    mtime_ns: int
    segments_hash: str
    page_starts: tuple[int, ...] = ()
    blocks: tuple[Block, ...] = ()
    title: str = ""
    locators: tuple[Locator, ...] = ()
    author: str = ""
    date: str = ""  # ISO 8601, as the file states it; see ``day``

    @property
    def day(self) -> str:
        """The document's date as YYYY-MM-DD: the one it states, else its file's modification
        time (UTC)."""
        if self.date[:10]:
            return self.date[:10]
        from datetime import datetime, timezone

        return datetime.fromtimestamp(self.mtime_ns / 1e9, timezone.utc).date().isoformat()


# The fields of a manifest of this schema that the code reads, and their types. The manifest is
# checked once, when it is read, so no reader meets a KeyError or a "generation" of "abc".
MANIFEST_FIELDS = {"generation": int, "built_at": str, "model": str, "dimension": int,
                   "vocabulary": int, "documents": dict}
MANIFEST_OPTIONAL = {"corpus": str, "next_chunk_id": int, "skipped": dict, "files": dict,
                     "build_seconds": (int, float), "encoder": str, "sizes": dict,
                     "samples": dict}
DOCUMENT_FIELDS = {"sha256": str, "format": str, "size": int, "mtime_ns": int, "segments_hash": str,
                   "chunks": int}
SKIPPED_FIELDS = {"reason": str, "sha256": str, "size": int, "mtime_ns": int}


def manifest_problem(manifest) -> str | None:
    """What is wrong with the shape of ``manifest``, in a few words, or None.

    A manifest of another schema needs only a schema number: check_compatible refuses it.
    """
    if not isinstance(manifest, dict):
        return f"it is {_json_kind(manifest)}, not an object"
    if not _is_a(manifest.get("schema"), int):
        return "schema is not a whole number"
    if manifest["schema"] != SCHEMA:
        return None
    for key, kind in MANIFEST_FIELDS.items():
        if key not in manifest:
            return f"no {key}"
        if not _is_a(manifest[key], kind):
            return f"{key} is not {_kind_name(kind)}"
    for key, kind in MANIFEST_OPTIONAL.items():
        if key in manifest and not _is_a(manifest[key], kind):
            return f"{key} is not {_kind_name(kind)}"
    if manifest["generation"] < 1:
        return "generation is not a positive number"
    for group, fields in (("documents", DOCUMENT_FIELDS), ("skipped", SKIPPED_FIELDS)):
        for source, meta in manifest.get(group, {}).items():
            if not isinstance(meta, dict):
                return f"{group} entry {source!r} is not an object"
            for key, kind in fields.items():
                if not _is_a(meta.get(key), kind):
                    return f"{group} entry {source!r} has no {key}"
            starts = meta.get("page_starts", [])
            if not isinstance(starts, list) or not all(_is_a(x, int) for x in starts):
                return f"{group} entry {source!r} has bad page starts"
    return None


def _is_a(value, kind) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def _json_kind(value) -> str:
    if value is None:
        return "null"
    return {bool: "true or false", list: "a list", str: "text"}.get(type(value), "a number")


def _kind_name(kind) -> str:
    return {int: "a whole number", str: "text", dict: "an object"}.get(kind, "a number")


SCANNED_IDS = 1 << 22
WORD_FILES = ("words-vectors.npy", "words-scales.npy", "words-ids.npy", "words-counts.npy",
              "words-projection.npy")


def load_words(path: Path, vocabulary_size: int) -> TokenVectors:
    """The word vectors of a generation, memory-mapped (pages are read as questions touch them)."""
    vectors, scales, ids, counts, projection = [
        mapped(path / name, scattered=name in ("words-vectors.npy", "words-scales.npy"))
        for name in WORD_FILES]
    if not (len(vectors) == len(scales) == len(ids) == int(counts.sum())) or vectors.dtype != np.int8:
        raise ValueError("word vectors do not line up")
    # The ids' range is checked where reading them all is cheap; a large index's ids are vouched
    # for by the checksums alone (60 M ids at a million chunks: reading them took seconds), and
    # idf_weights clips them anyway.
    if 0 < len(ids) <= SCANNED_IDS and (ids.min() < 0 or ids.max() >= vocabulary_size):
        raise ValueError("word ids out of range")
    return TokenVectors(Projection.from_array(projection), vectors, scales, ids, counts, vocabulary_size)


# np.load parses each .npy header with ast.literal_eval, and CPython 3.11's compiler is not safe to
# run in two threads at once ("SystemError: AST constructor recursion depth mismatch", seen once in
# a dozen runs of two readers beside a build): every .npy qa reads is opened under this lock.
NPY_LOCK = threading.Lock()


def load_npy(file, **options) -> np.ndarray:
    """np.load of ``file`` (a path or a binary file), under NPY_LOCK."""
    with NPY_LOCK:
        return np.load(file, allow_pickle=False, **options)


def mapped(path: Path, scattered: bool = False) -> np.ndarray:
    """The array in the .npy file ``path``, memory-mapped read-only: a plain ndarray view of the
    map (slicing an np.memmap costs ten times more, and builds slice once per chunk). A
    ``scattered`` array is read a few rows here and there, without read-ahead around each."""
    array = load_npy(path, mmap_mode="r")
    handle = getattr(array, "_mmap", None)
    if scattered and handle is not None and hasattr(mmap, "MADV_RANDOM"):
        handle.madvise(mmap.MADV_RANDOM)
    return np.asarray(array)


def word_arrays(words: TokenVectors) -> dict[str, np.ndarray]:
    """The arrays of the word-vector files (WORD_FILES), as stored."""
    arrays = (words.vectors.astype(np.int8, copy=False), words.scales.astype(np.float16, copy=False),
              words.ids.astype(np.int32, copy=False), words.counts.astype(np.int32, copy=False),
              words.projection.to_array())
    return dict(zip(WORD_FILES, arrays))


def save_words(path: Path, words: TokenVectors) -> None:
    for name, array in word_arrays(words).items():
        np.save(path / name, np.ascontiguousarray(array), allow_pickle=False)


def _blocks(flat: list) -> tuple[Block, ...]:
    return tuple(Block(int(flat[i]), int(flat[i + 1]), str(flat[i + 2]), int(flat[i + 3]))
                 for i in range(0, len(flat), 4))


def _locators(rows: list) -> tuple[Locator, ...]:
    return tuple(Locator(int(start), str(kind), int(number), str(label), str(date))
                 for start, kind, number, label, date in rows)


def stored_document(source: str, meta: dict, text: str, structure_json: dict) -> StoredDocument:
    """A document from its manifest entry, its text and structure.json."""
    structure = structure_json.get(source, {})
    return StoredDocument(
        source=source,
        text=text,
        sha256=meta["sha256"],
        format=meta["format"],
        size=meta["size"],
        mtime_ns=meta["mtime_ns"],
        segments_hash=meta["segments_hash"],
        page_starts=tuple(meta.get("page_starts", ())),
        blocks=_blocks(structure.get("blocks", [])),
        title=structure.get("title", ""),
        locators=_locators(structure.get("locators", [])),
        author=structure.get("author", ""),
        date=structure.get("date", ""),
    )


def _documents_and_chunks(manifest: dict, documents_json: dict, chunks_json: dict,
                          structure_json: dict | None = None):
    structure_json = structure_json or {}
    documents = {source: stored_document(source, meta, documents_json[source], structure_json)
                 for source, meta in manifest["documents"].items()}
    chunks = decode_chunks(chunks_json)
    if set(documents_json) != set(documents) or any(c.source not in documents for c in chunks):
        raise ValueError("documents and chunks disagree")
    return documents, chunks


def encode_chunks(chunks: list[ChunkRecord]) -> dict:
    return {
        "id": [c.id for c in chunks],
        "source": [c.source for c in chunks],
        "start": [c.start for c in chunks],
        "end": [c.end for c in chunks],
        "hash": [c.hash for c in chunks],
        "sentences": [[x for span in c.sentences for x in span] for c in chunks],
        "heading": [c.heading for c in chunks],
        "kinds": [c.kinds for c in chunks],
    }


def decode_chunks(data: dict) -> list[ChunkRecord]:
    paths = data.get("heading") or [""] * len(data["id"])
    counts = data.get("kinds") or [""] * len(data["id"])
    return [
        ChunkRecord(i, src, s, e, h, tuple(zip(flat[0::2], flat[1::2])), path, count)
        for i, src, s, e, h, flat, path, count in zip(
            data["id"], data["source"], data["start"], data["end"], data["hash"], data["sentences"],
            paths, counts)
    ]
