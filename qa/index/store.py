"""The index folder: generations on disk, an atomic switch, checksums and a lock.

Layout of ``embeddings/``::

    CURRENT             name of the live generation, replaced atomically (os.replace)
    gen-000007/         one complete index
        manifest.json   schema, model, chunking, generation, documents, checksums of the files
        vectors.faiss   IndexIDMap2(IndexFlatIP), ids are stable chunk ids
        chunks.json     chunk ids, sources, spans, sentence spans, text hashes (columnar)
        documents.json  the extracted text of every document (what offsets index)
        terms.json      document frequency of every BM25 term (for sentence scoring)
        bm25/           bm25s arrays and vocabulary (npy + json, no pickle)
        sentences.npy   float16 vectors of every chunk's sentences, in chunk order
        words-*.npy     int8 word vectors of every chunk (see qa.index.late_interaction): vectors,
                        scales, vocabulary ids, counts per chunk, and the projection they share
        words-docfreq.npy  chunks holding each word piece (for the question's idf weights)
        bm25-tf.npy, bm25-lengths.npy  term counts behind bm25/ (see qa.index.term_counts)
        lines-keys.npy, lines-counts.npy  hashes of each document's short lines (boilerplate)
    .lock               flock()ed by a build; the kernel releases it when the process dies
    .build-*/           a generation being written; removed by the next build if abandoned
    cache/              embeddings computed by an unfinished build, reused by the next one

A reader only ever follows CURRENT to a finished generation, so killing a build at any moment
leaves the previous index usable.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.errors import (DiskFull, IndexBusy, IndexDamaged, IndexIncompatible, IndexMissing,
                       IndexReadOnly, QAError)
from qa.index.late_interaction import Projection, TokenVectors
from qa.ingest.html import Block
from qa.index.lexical import TERM_RULES, terms
from qa.index.term_counts import BM25_PARAMS, bm25_from_counts, counts_of, merge_counts
from qa.results import Locator

SCHEMA = 6  # 2: sentence vectors (sentences.npy); 3: word vectors (words-*.npy);
# 4: a list marker ("1.") is part of its item's sentence; 5: structured HTML and Markdown
# (structure.json), headings kept, chunks know their heading path; 6: office, mail, notebook and
# table formats, locators (slide, chapter, message) and metadata (title, author, date) per document
CURRENT = "CURRENT"
LOCK = ".lock"
BUILD_PREFIX = ".build-"
GEN_PREFIX = "gen-"

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


@dataclass
class IndexSnapshot:
    """One finished generation, loaded in memory."""

    path: Path
    manifest: dict
    documents: dict[str, StoredDocument]
    chunks: list[ChunkRecord]
    vectors: object  # faiss.IndexIDMap2
    bm25: object  # bm25s.BM25
    doc_freq: dict[str, int]
    # One float16 row per sentence, in chunk order: chunk r's sentences start at sentence_first[r].
    sentence_vectors: np.ndarray | None = None
    row_of_id: dict[int, int] = field(default_factory=dict)
    sentence_first: np.ndarray | None = None
    words: TokenVectors | None = None
    _terms: dict[int, list[str]] = field(default_factory=dict, repr=False)
    # What later stages derive from this generation once and keep with it (a speller, say).
    derived: dict = field(default_factory=dict, repr=False)
    # What the next build reuses (KEPT_ARRAYS), when the generation has them.
    kept: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.row_of_id = {chunk.id: row for row, chunk in enumerate(self.chunks)}
        counts = np.fromiter((len(c.sentences) for c in self.chunks), dtype=np.int64,
                             count=len(self.chunks))
        self.sentence_first = np.concatenate([[0], np.cumsum(counts)[:-1]]) if len(counts) else counts

    def chunk_terms(self, row: int) -> list[str]:
        """BM25 terms of chunk ``row``, computed once per snapshot."""
        cached = self._terms.get(row)
        if cached is None:
            from qa.index.lexical import terms

            chunk = self.chunks[row]
            cached = self._terms[row] = terms(search_text(self.chunk_text(chunk), chunk.heading))
        return cached

    @property
    def term_counts(self):
        """The BM25 term counts of every chunk (qa.index.term_counts.TermCounts), or None."""
        if "bm25-tf.npy" not in self.kept or older_terms(self.manifest):
            return None
        return counts_of(self.bm25, self.kept["bm25-tf.npy"], self.kept["bm25-lengths.npy"])

    def chunk_sentence_vectors(self, row: int) -> np.ndarray:
        first = int(self.sentence_first[row])
        return self.sentence_vectors[first : first + len(self.chunks[row].sentences)]

    @property
    def generation(self) -> int:
        return int(self.manifest["generation"])

    def chunk_text(self, chunk: ChunkRecord) -> str:
        return self.documents[chunk.source].text[chunk.start : chunk.end]


def generation_dir(index_dir: Path, generation: int) -> Path:
    return index_dir / f"{GEN_PREFIX}{generation:06d}"


def current_path(index_dir: Path) -> Path | None:
    """The live generation folder, or None when no index was ever finished here."""
    try:
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        # Lost (deleted by hand, or by a tool cleaning the folder): the generations are still
        # there. Answer from the newest whole one; the next `qa index` writes the pointer back.
        complete = complete_generations(index_dir, verify=False)
        return complete[0] if complete else None
    except NotADirectoryError:
        raise not_a_folder(index_dir) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexDamaged(f"index pointer {index_dir / CURRENT} is unreadable "
                           f"({type(exc).__name__}); run `qa index --rebuild`") from None
    if not name.startswith(GEN_PREFIX) or "/" in name:
        raise IndexDamaged(f"index pointer {index_dir / CURRENT} is garbled; run `qa index --rebuild`")
    return index_dir / name


def not_a_folder(index_dir: Path) -> QAError:
    """The error for an index path that is a file, or lies inside one, naming the file."""
    blocking = next((p for p in (index_dir, *index_dir.parents) if p.exists()), index_dir)
    if blocking == index_dir:
        return QAError(f"index path {index_dir} is a file, not a folder")
    return QAError(f"index path {index_dir} is inside {blocking}, which is a file, not a folder")


def current_path_safe(index_dir: Path) -> Path | None:
    """Like current_path, but None instead of an error for a garbled pointer."""
    try:
        return current_path(index_dir)
    except IndexDamaged:
        return None


def complete_generations(index_dir: Path, verify: bool) -> list[Path]:
    """Generation folders holding a whole index, newest first: a manifest that lists files which
    are all there (a build writes its manifest last, then renames its folder), or with ``verify``,
    whose files all match their checksums."""
    try:
        folders = [p for p in index_dir.iterdir() if p.name.startswith(GEN_PREFIX)
                   and p.name[len(GEN_PREFIX):].isdigit()]
    except OSError:
        return []
    complete = []
    for folder in sorted(folders, key=lambda p: int(p.name[len(GEN_PREFIX):]), reverse=True):
        try:
            if verify:
                verify_generation(folder)
            else:
                files = manifest_at(folder).get("files")
                if not isinstance(files, dict) or not all((folder / f).is_file() for f in files):
                    continue
        except (IndexDamaged, AttributeError, TypeError, OSError):
            continue
        complete.append(folder)
    return complete


def recover_pointer(index_dir: Path) -> Path | None:
    """Write a lost CURRENT back, naming the newest generation whose files all check out; None when
    CURRENT is there or no generation is whole (call with the lock held)."""
    if (index_dir / CURRENT).exists() or not index_dir.is_dir():
        return None
    complete = complete_generations(index_dir, verify=True)
    if not complete:
        return None
    _point_to(index_dir, complete[0])
    return complete[0]


def read_manifest(index_dir: Path) -> dict:
    """The live manifest, checked for readability only (cheap; no checksums)."""
    return read_live(index_dir, manifest_at)


def manifest_at(path: Path) -> dict:
    """The manifest of the generation folder ``path``, checked for shape (not checksums)."""
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexDamaged(f"index {path} has no manifest; run `qa index --rebuild`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise IndexDamaged(f"index manifest in {path} is damaged; run `qa index --rebuild`") from None
    problem = manifest_problem(manifest)
    if problem:
        raise IndexDamaged(f"index manifest in {path} is damaged ({problem}); "
                           "run `qa index --rebuild`")
    return manifest


# The fields of a manifest of this schema that the code reads, and their types. The manifest is
# checked once, when it is read, so no reader meets a KeyError or a "generation" of "abc".
MANIFEST_FIELDS = {"generation": int, "built_at": str, "model": str, "dimension": int,
                   "vocabulary": int, "documents": dict}
MANIFEST_OPTIONAL = {"corpus": str, "next_chunk_id": int, "skipped": dict, "files": dict,
                     "build_seconds": (int, float), "encoder": str}
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


# How many generation switches a reader sits out before it gives up (each one is a whole build).
SWITCHES_WAITED = 10


def read_live(index_dir: Path, read):
    """``read(path)`` on the live generation folder ``path``, pinned to that one folder.

    A build that switches CURRENT and removes the folder while it is read is not damage: the
    new generation is read instead. Damage is reported only when CURRENT stayed where it was.
    """
    for _ in range(SWITCHES_WAITED):
        path = current_path(index_dir)
        if path is None:
            raise IndexMissing(f"no index in {index_dir}; run `qa index` first")
        try:
            return read(path)
        except IndexDamaged:
            if current_path_safe(index_dir) == path:
                raise
    raise IndexBusy(f"the index in {index_dir} changed {SWITCHES_WAITED} times while it was read "
                    "(another `qa index` is writing it); try again")


def is_older_schema(manifest: dict) -> bool:
    schema = manifest.get("schema")
    return isinstance(schema, int) and schema < SCHEMA


def older_terms(manifest: dict) -> bool:
    """Whether the index's BM25 and document frequencies were computed under older word rules."""
    return manifest.get("terms", 1) != TERM_RULES


# The encoder family of an index that records none: sentence-transformers in fp32, which built
# every index before encoders were recorded; the shipped ONNX encoder gives the same vectors.
FP32 = "fp32"


def encoder_of(params: dict) -> str:
    return params.get("encoder") or FP32


def other_encoder(manifest: dict, expected: dict) -> bool:
    """Whether the index's vectors were made from the same model by an encoder of another family
    (a quantised one): close vectors, not the same, so the index is rebuilt rather than asked
    with this encoder's questions."""
    return (manifest.get("model") == expected.get("model")
            and manifest.get("dimension") == expected.get("dimension")
            and encoder_of(manifest) != encoder_of(expected))


def check_compatible(manifest: dict, expected: dict) -> None:
    """Refuse an index built by another schema, model or chunking, saying what differs."""
    if is_older_schema(manifest):
        raise IndexIncompatible(
            f"index was made by an older qa (schema {manifest['schema']}, now {SCHEMA}); "
            "run `qa index` to rebuild it"
        )
    if manifest.get("schema") != SCHEMA:
        raise IndexIncompatible(
            f"index schema {manifest.get('schema')} is not {SCHEMA}; run `qa index --rebuild`"
        )
    # An index belongs to the folder it was built from. Answering another folder's questions from
    # it would cite files of the wrong folder; re-pointing it silently would throw away its work.
    # A recorded folder that no longer exists was moved or renamed: the index follows it.
    built_for, wanted = manifest.get("corpus"), expected.get("corpus")
    if built_for and wanted and built_for != wanted and Path(built_for).is_dir():
        raise IndexIncompatible(
            f"index was built for the folder {built_for}, not {wanted}; give this folder an index "
            "of its own with --index DIR, or run `qa index --rebuild` to re-point this one"
        )
    if other_encoder(manifest, expected):
        raise IndexIncompatible(
            f"index vectors were made by another encoder of the model "
            f"({encoder_of(manifest)}, this qa uses {encoder_of(expected)}); "
            "run `qa index` to rebuild it"
        )
    for key in ("model", "dimension", "chunking", "word_vectors"):
        if manifest.get(key) != expected[key]:
            raise IndexIncompatible(
                f"index was built with {key} {manifest.get(key)!r}, this qa uses {expected[key]!r}; "
                "run `qa index --rebuild`"
            )


def load_snapshot(index_dir: Path, expected: dict, verify: bool = True) -> IndexSnapshot:
    """Load the live generation, verifying every file against the manifest's checksums.

    A build that switches CURRENT while this reads (and removes the generation being read) is
    not damage: the new generation is read instead.
    """
    return read_live(index_dir, lambda path: _load_generation(path, expected, verify))


def _load_generation(path: Path, expected: dict, verify: bool) -> IndexSnapshot:
    import bm25s
    import faiss

    # One query against a flat index of a few thousand vectors takes well under a millisecond on
    # one thread; FAISS's OpenMP threads, left spinning after each search, would steal the cores
    # torch needs for the next query embedding (measured: embed + search 21 ms -> 10 ms).
    faiss.omp_set_num_threads(1)

    manifest = manifest_at(path)
    check_compatible(manifest, expected)
    checking = _verify_meanwhile(path, manifest) if verify else None
    try:
        chunks_json = json.loads((path / "chunks.json").read_text(encoding="utf-8"))
        documents_json = json.loads((path / "documents.json").read_text(encoding="utf-8"))
        structure_json = _read_structure(path)
        doc_freq = json.loads((path / "terms.json").read_text(encoding="utf-8"))
        vectors = faiss.read_index(str(path / "vectors.faiss"))
        bm25 = bm25s.BM25.load(str(path / "bm25"), load_corpus=False)
        sentence_vectors = np.load(path / "sentences.npy", allow_pickle=False)
        words = load_words(path, int(manifest["vocabulary"]))
        kept = {name: np.load(path / name, allow_pickle=False) for name in KEPT_ARRAYS
                if name in manifest.get("files", {})}
    except Exception as exc:  # any parse failure of a checksummed file means damage
        if checking is not None:
            checking.result()  # damage found by the checksums is reported as such
        raise IndexDamaged(f"index in {path} cannot be read ({type(exc).__name__}); "
                           "run `qa index --rebuild`") from None
    if checking is not None:
        checking.result()
    try:
        documents, chunks = _documents_and_chunks(manifest, documents_json, chunks_json,
                                                  structure_json)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IndexDamaged(f"index in {path} is inconsistent ({type(exc).__name__}); "
                           "run `qa index --rebuild`") from None
    if vectors.ntotal != len(chunks) or len(sentence_vectors) != sum(len(c.sentences) for c in chunks) \
            or len(words.counts) != len(chunks):
        raise IndexDamaged(f"index in {path} is inconsistent; run `qa index --rebuild`")
    docfreq = kept.get("words-docfreq.npy")
    if docfreq is not None and len(docfreq) == words.vocabulary_size + 1:
        words.__dict__["doc_freq"] = docfreq  # stored by the build: not counted again here
    snapshot = IndexSnapshot(path, manifest, documents, chunks, vectors, bm25, doc_freq,
                             sentence_vectors, words=words, kept=kept)
    if older_terms(manifest):
        # Made under older word rules: answer with BM25 recomputed in memory (about a second per
        # million characters) until the next `qa index` stores it.
        snapshot.bm25, snapshot.doc_freq = bm25_index(
            [search_text(snapshot.chunk_text(c), c.heading) for c in chunks])
    return snapshot


# Arrays a generation may hold for the next build to reuse (older generations lack them).
KEPT_ARRAYS = ("bm25-tf.npy", "bm25-lengths.npy", "words-docfreq.npy", "lines-keys.npy",
               "lines-counts.npy")


def _verify_meanwhile(path: Path, manifest: dict):
    """verify_files in a thread, while the caller parses the files (hashing releases the GIL):
    a future whose result() raises IndexDamaged."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1)
    checking = pool.submit(verify_files, path, manifest)
    pool.shutdown(wait=False)  # the one thread ends with its task
    return checking


def bm25_index(chunk_texts: list[str]):
    """BM25 over the chunks' terms, and each term's document frequency."""
    tokens = [terms(text) for text in chunk_texts]
    counts = merge_counts(None, None, {row: Counter(doc) for row, doc in enumerate(tokens)},
                          {row: len(doc) for row, doc in enumerate(tokens)}, len(tokens))
    return bm25_from_counts(counts), counts.doc_freq


WORD_FILES = ("words-vectors.npy", "words-scales.npy", "words-ids.npy", "words-counts.npy",
              "words-projection.npy")


def load_words(path: Path, vocabulary_size: int) -> TokenVectors:
    arrays = [np.load(path / name, allow_pickle=False) for name in WORD_FILES]
    vectors, scales, ids, counts, projection = arrays
    if not (len(vectors) == len(scales) == len(ids) == int(counts.sum())) or vectors.dtype != np.int8 \
            or (len(ids) and (ids.min() < 0 or ids.max() >= vocabulary_size)):
        raise ValueError("word vectors do not line up")
    return TokenVectors(Projection.from_array(projection), vectors, scales, ids, counts, vocabulary_size)


def save_words(path: Path, words: TokenVectors) -> None:
    arrays = (words.vectors.astype(np.int8), words.scales.astype(np.float16),
              words.ids.astype(np.int32), words.counts.astype(np.int32), words.projection.to_array())
    for name, array in zip(WORD_FILES, arrays):
        np.save(path / name, np.ascontiguousarray(array), allow_pickle=False)


# Every generation has these; a manifest that does not list them all cannot vouch for the index.
REQUIRED_FILES = ("chunks.json", "documents.json", "terms.json", "vectors.faiss", "sentences.npy",
                  *WORD_FILES)


def verify_files(path: Path, manifest: dict) -> None:
    """Check every file of a generation against the manifest's checksums (raises IndexDamaged)."""
    files = manifest.get("files")
    if not isinstance(files, dict) or any(name not in files for name in REQUIRED_FILES):
        raise IndexDamaged(f"index manifest in {path} lists no checksums; run `qa index --rebuild`")
    for name, digest in files.items():
        if _sha256_of(path / name) != digest:
            raise IndexDamaged(
                f"index file {path / name} is damaged or missing; run `qa index --rebuild`"
            )


def verify_index(index_dir: Path) -> dict:
    """The live manifest, after checking every file it lists (for commands that load nothing)."""
    return read_live(index_dir, verify_generation)


def verify_generation(path: Path) -> dict:
    """The manifest of the generation folder ``path``, after checking every file it lists."""
    manifest = manifest_at(path)
    verify_files(path, manifest)
    try:
        documents_json = json.loads((path / "documents.json").read_text(encoding="utf-8"))
        chunks_json = json.loads((path / "chunks.json").read_text(encoding="utf-8"))
        _documents_and_chunks(manifest, documents_json, chunks_json)
    except (OSError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IndexDamaged(f"index in {path} is inconsistent ({type(exc).__name__}); "
                           "run `qa index --rebuild`") from None
    return manifest


def _read_structure(path: Path) -> dict:
    """structure.json of a generation: per document, its title and blocks."""
    file = path / "structure.json"
    return json.loads(file.read_text(encoding="utf-8")) if file.exists() else {}


def _blocks(flat: list) -> tuple[Block, ...]:
    return tuple(Block(int(flat[i]), int(flat[i + 1]), str(flat[i + 2]), int(flat[i + 3]))
                 for i in range(0, len(flat), 4))


def _locators(rows: list) -> tuple[Locator, ...]:
    return tuple(Locator(int(start), str(kind), int(number), str(label), str(date))
                 for start, kind, number, label, date in rows)


def _documents_and_chunks(manifest: dict, documents_json: dict, chunks_json: dict,
                          structure_json: dict | None = None):
    structure_json = structure_json or {}
    documents = {
        source: StoredDocument(
            source=source,
            text=documents_json[source],
            sha256=meta["sha256"],
            format=meta["format"],
            size=meta["size"],
            mtime_ns=meta["mtime_ns"],
            segments_hash=meta["segments_hash"],
            page_starts=tuple(meta.get("page_starts", ())),
            blocks=_blocks(structure_json.get(source, {}).get("blocks", [])),
            title=structure_json.get(source, {}).get("title", ""),
            locators=_locators(structure_json.get(source, {}).get("locators", [])),
            author=structure_json.get(source, {}).get("author", ""),
            date=structure_json.get(source, {}).get("date", ""),
        )
        for source, meta in manifest["documents"].items()
    }
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


def write_generation(
    index_dir: Path,
    manifest: dict,
    documents: dict[str, StoredDocument],
    chunks: list[ChunkRecord],
    vectors,
    bm25,
    doc_freq: dict[str, int],
    sentence_vectors: np.ndarray,
    words: TokenVectors,
    kept: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write a complete generation beside the live one, then switch CURRENT to it atomically.

    Raises DiskFull, before writing anything when the disk plainly lacks the room; what a failed
    attempt left behind is for remove_leftovers.
    """
    needed = generation_bytes(documents, chunks, vectors, bm25, doc_freq, sentence_vectors, words)
    if free_bytes(index_dir) < needed:
        raise DiskFull(disk_full_message(index_dir, needed), needed)
    try:
        return _write_generation(index_dir, manifest, documents, chunks, vectors, bm25, doc_freq,
                                 sentence_vectors, words, kept or {})
    except (OSError, RuntimeError) as exc:  # FAISS reports a failed write as a RuntimeError
        if not is_disk_full(exc):
            raise
        raise DiskFull(disk_full_message(index_dir, needed), needed) from None


def generation_bytes(documents, chunks, vectors, bm25, doc_freq, sentence_vectors, words) -> int:
    """About how many bytes a generation takes on disk (never much more: the disk check made with
    it must not refuse a build that fits)."""
    texts = sum(len(d.text.encode("utf-8", "surrogatepass")) + len(d.source) + 8
                for d in documents.values())
    manifest = sum(len(s) + 250 for s in documents)
    chunk_records = sum(40 + len(c.source) + 8 * len(c.sentences) for c in chunks)
    terms = sum(len(t) + 6 for t in doc_freq)
    faiss_bytes = int(vectors.ntotal) * (4 * int(vectors.d) + 8)
    arrays = 2 * sentence_vectors.size + words.vectors.size + 2 * words.scales.size \
        + 4 * words.ids.size + 4 * words.counts.size + words.projection.to_array().nbytes
    scores = getattr(bm25, "scores", None) or {}
    bm25_bytes = sum(a.nbytes for a in scores.values() if isinstance(a, np.ndarray)) \
        + sum(len(t) + 6 for t in getattr(bm25, "vocab_dict", None) or {})
    return texts + manifest + chunk_records + terms + faiss_bytes + arrays + bm25_bytes


def free_bytes(index_dir: Path) -> int:
    """Free space for an unprivileged user on the disk that holds (or will hold) ``index_dir``."""
    folder = Path(index_dir).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full: an OSError, FAISS's
    RuntimeError naming it, or numpy's "708480 requested and 423872 written"."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "No space left on device" in text or "Disk quota exceeded" in text \
        or re.search(r"\d+ requested and \d+ written", text) is not None


def disk_full_message(index_dir: Path, needed: int | None) -> str:
    """One line for a build the disk had no room for: where, how much, what is left."""
    free = free_bytes(index_dir)
    kept = "; the previous index is kept" if current_path_safe(index_dir) is not None else ""
    if needed is None:
        return f"the disk is full: no room for the index in {index_dir} ({_mb(free)} free){kept}"
    return (f"not enough disk space for the index in {index_dir}: about {_mb(max(needed, 1))} "
            f"needed, {_mb(free)} free{kept}")


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB" if size >= 100 * 1024 else f"{size / 1024:.0f} KB"


def _write_generation(index_dir, manifest, documents, chunks, vectors, bm25, doc_freq,
                      sentence_vectors, words, kept) -> Path:
    import faiss

    generation = int(manifest["generation"])
    build = index_dir / f"{BUILD_PREFIX}{generation:06d}-{os.getpid()}"
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    _write_json(build / "chunks.json", encode_chunks(chunks))
    _write_json(build / "documents.json", {s: d.text for s, d in documents.items()})
    _write_json(build / "structure.json", {
        s: {"title": d.title, "blocks": [x for b in d.blocks for x in (b.start, b.end, b.kind, b.level)],
            "locators": [[x.start, x.kind, x.number, x.label, x.date] for x in d.locators],
            "author": d.author, "date": d.date}
        for s, d in documents.items() if d.blocks or d.title or d.locators or d.author or d.date})
    _write_json(build / "terms.json", doc_freq)
    faiss.write_index(vectors, str(build / "vectors.faiss"))
    np.save(build / "sentences.npy", np.ascontiguousarray(sentence_vectors, dtype=np.float16),
            allow_pickle=False)
    save_words(build, words)
    bm25.save(str(build / "bm25"), show_progress=False)
    for name, array in kept.items():
        np.save(build / name, np.ascontiguousarray(array), allow_pickle=False)
    files = sorted(p for p in build.rglob("*") if p.is_file())
    for file in files:
        _fsync(file)
    manifest = dict(manifest)
    per_source = Counter(c.source for c in chunks)  # one pass: a per-document scan is quadratic
    manifest["documents"] = {
        s: {
            "sha256": d.sha256,
            "format": d.format,
            "size": d.size,
            "mtime_ns": d.mtime_ns,
            "segments_hash": d.segments_hash,
            "chunks": per_source[s],
            **({"page_starts": list(d.page_starts)} if d.page_starts else {}),
            # What the file says of itself, for `qa stats` (which reads nothing else).
            **{key: value[:MAX_METADATA_CHARS] for key, value in
               (("title", d.title), ("author", d.author), ("date", d.date)) if value},
        }
        for s, d in documents.items()
    }
    manifest["files"] = {p.relative_to(build).as_posix(): _sha256_of(p) for p in files}
    _write_json(build / "manifest.json", manifest)
    _fsync(build / "manifest.json")
    final = generation_dir(index_dir, generation)
    if final.exists():
        shutil.rmtree(final)
    os.rename(build, final)
    _fsync_dir(index_dir)
    _point_to(index_dir, final)
    return final


# A title or author longer than this is cut in the manifest (the text keeps it whole).
MAX_METADATA_CHARS = 200


def _point_to(index_dir: Path, generation: Path) -> None:
    """Switch CURRENT to ``generation`` atomically."""
    pointer = index_dir / f"{CURRENT}.tmp-{os.getpid()}"
    pointer.write_text(generation.name + "\n", encoding="utf-8")
    _fsync(pointer)
    os.replace(pointer, index_dir / CURRENT)
    _fsync_dir(index_dir)


def remove_leftovers(index_dir: Path, keep: Path | None) -> None:
    """Delete abandoned builds and generations other than ``keep`` (call with the lock held)."""
    if not index_dir.is_dir():
        return
    for entry in index_dir.iterdir():
        abandoned = entry.name.startswith(BUILD_PREFIX) or entry.name.startswith(f"{CURRENT}.tmp")
        old = entry.name.startswith(GEN_PREFIX) and (keep is None or entry.name != keep.name)
        if abandoned or old:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def next_generation(index_dir: Path) -> int:
    numbers = [0]
    if index_dir.is_dir():
        for entry in index_dir.iterdir():
            for prefix in (GEN_PREFIX, BUILD_PREFIX):
                if entry.name.startswith(prefix):
                    digits = entry.name[len(prefix) :].split("-")[0]
                    if digits.isdigit():
                        numbers.append(int(digits))
    return max(numbers) + 1


def disk_size(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class IndexLock:
    """An exclusive flock on ``index/.lock``; released by the kernel if the holder dies."""

    def __init__(self, index_dir: Path, wait: bool = True, on_wait=None, timeout: float | None = None):
        self.path = index_dir / LOCK
        self.wait = wait
        self.on_wait = on_wait
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> "IndexLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except (NotADirectoryError, FileExistsError):
            raise not_a_folder(self.path.parent) from None
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise read_only(self.path.parent, exc) from None
            raise
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if not self.wait or (deadline is not None and time.monotonic() > deadline):
                    os.close(fd)
                    raise IndexBusy(f"another `qa index` is building {self.path.parent}") from None
                if not told and self.on_wait:
                    self.on_wait()
                    told = True
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def writable(index_dir: Path) -> bool:
    """Whether a build could write in ``index_dir`` (its folder and its lock file)."""
    lock = index_dir / LOCK
    return os.access(index_dir, os.W_OK | os.X_OK) and (not lock.exists() or os.access(lock, os.W_OK))


def read_only(index_dir: Path, exc: OSError) -> IndexReadOnly:
    return IndexReadOnly(f"cannot write the index in {index_dir} ({exc.strerror})")


def is_read_only(exc: BaseException, index_dir: Path) -> bool:
    """Whether ``exc`` is a refusal to write in ``index_dir`` (not, say, to read a document)."""
    if not isinstance(exc, OSError) or exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
        return False
    try:
        return Path(exc.filename).absolute().is_relative_to(Path(index_dir).absolute())
    except TypeError:  # no file name
        return False


class EmbeddingCache:
    """Append-only store of vectors embedded by a build, keyed by chunk-text hash.

    Written batch by batch, so a build killed halfway does not have to embed those chunks again.
    A torn last record (kill -9 mid-write) is ignored on reading.
    """

    def __init__(self, index_dir: Path, model: str, dimension: int):
        self.folder = index_dir / "cache"
        self.dimension = dimension
        tag = hashlib.sha1(model.encode()).hexdigest()[:12]
        self.keys_path = self.folder / f"{tag}.keys"
        self.vectors_path = self.folder / f"{tag}.f32"

    def load(self) -> dict[str, np.ndarray]:
        """Vectors saved so far; a torn tail (kill -9 mid-write) is cut off so appends line up."""
        try:
            keys = [k for k in self.keys_path.read_text(encoding="ascii").split("\n") if len(k) == 40]
            raw = self.vectors_path.read_bytes()
        except (OSError, UnicodeDecodeError):
            # Missing or unreadable: start this model's cache afresh (keys and vectors together,
            # so later appends line up), leaving other models' caches alone.
            self.keys_path.unlink(missing_ok=True)
            self.vectors_path.unlink(missing_ok=True)
            return {}
        record = 4 * self.dimension
        count = min(len(keys), len(raw) // record)
        vectors = np.frombuffer(raw[: count * record], dtype=np.float32).reshape(count, self.dimension)
        with open(self.vectors_path, "r+b") as handle:
            handle.truncate(count * record)
        self.keys_path.write_text("".join(f"{k}\n" for k in keys[:count]), encoding="ascii")
        return {keys[i]: vectors[i] for i in range(count)}

    def append(self, keys: list[str], vectors: np.ndarray) -> None:
        """Vectors first, then keys: a key is only ever written after its vector."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.vectors_path, "ab") as handle:
            handle.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        with open(self.keys_path, "a", encoding="ascii") as handle:
            handle.write("".join(f"{k}\n" for k in keys))

    def drop(self) -> None:
        """Forget this cache's vectors only."""
        self.keys_path.unlink(missing_ok=True)
        self.vectors_path.unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove the whole cache folder (every model's vectors and the projection)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def cached_projection(index_dir: Path, model: str) -> Projection | None:
    """The word-vector projection an unfinished build fitted (its cached word vectors use it)."""
    try:
        return Projection.from_array(np.load(_projection_path(index_dir, model), allow_pickle=False))
    except (OSError, ValueError, IndexError):
        return None


def cache_projection(index_dir: Path, model: str, projection: Projection) -> None:
    path = _projection_path(index_dir, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npy")
    np.save(temporary, projection.to_array(), allow_pickle=False)
    os.replace(temporary, path)


def _projection_path(index_dir: Path, model: str) -> Path:
    return index_dir / "cache" / f"{hashlib.sha1(model.encode()).hexdigest()[:12]}.projection.npy"


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


def _sha256_of(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        _fsync(path)
    except OSError:
        pass
