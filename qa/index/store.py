"""The index as readers use it: IndexSnapshot, one finished generation loaded in memory; the
checks that an index fits this qa (schema, model, encoder, chunking, folder); and load_snapshot,
which reads the live generation while its checksums are verified. The files themselves are
described in qa.index.generations (layout, writing) and qa.index.records (their contents)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.errors import IndexDamaged, IndexIncompatible
from qa.index.generations import _verify_meanwhile, manifest_at, read_live
from qa.index.late_interaction import TokenVectors
from qa.index.lexical import TERM_RULES, terms
from qa.index.records import (SCHEMA, ChunkRecord, StoredDocument, _documents_and_chunks,
                              NPY_LOCK, load_words, mapped, search_text)
from qa.index.tables import ChunkTable, RowOfId, is_columnar, load_tables
from qa.index.term_counts import BM25_PARAMS, bm25_from_counts, counts_of, merge_counts

# Chunks whose terms a snapshot keeps at once (questions read about 20 each): a long-running
# server on a large index would otherwise keep those of every chunk it ever considered.
TERMS_KEPT = 20_000


@dataclass
class IndexSnapshot:
    """One finished generation, loaded in memory."""

    path: Path
    manifest: dict
    documents: dict[str, StoredDocument]  # or a DocumentTable (qa.index.tables), read on demand
    chunks: list[ChunkRecord]  # or a ChunkTable
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
        if isinstance(self.chunks, ChunkTable):  # a large generation: no object per chunk
            self.row_of_id = RowOfId(self.chunks.ids)
            self.sentence_first = self.chunks.sentence_first[:-1]
            return
        self.row_of_id = {chunk.id: row for row, chunk in enumerate(self.chunks)}
        counts = np.fromiter((len(c.sentences) for c in self.chunks), dtype=np.int64,
                             count=len(self.chunks))
        self.sentence_first = np.concatenate([[0], np.cumsum(counts)[:-1]]) if len(counts) else counts

    def rows_of(self, sources) -> dict[str, list[tuple[int, int]]]:
        """(start, row) of every chunk of each of ``sources``, in row order."""
        if isinstance(self.chunks, ChunkTable):
            return self.chunks.rows_of(sources)
        found: dict[str, list[tuple[int, int]]] = {source: [] for source in sources}
        for row, c in enumerate(self.chunks):  # one pass over the chunks, however many sources
            if c.source in found:
                found[c.source].append((c.start, row))
        return found

    def chunk_terms(self, row: int) -> list[str]:
        """BM25 terms of chunk ``row``, kept with the snapshot (TERMS_KEPT chunks' at most)."""
        cached = self._terms.get(row)
        if cached is None:
            from qa.index.lexical import terms

            if len(self._terms) >= TERMS_KEPT:
                self._terms.clear()
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
        if isinstance(self.chunks, ChunkTable):
            return self.sentence_vectors[first : first + int(self.chunks.sentence_counts()[row])]
        return self.sentence_vectors[first : first + len(self.chunks[row].sentences)]

    def word_forms(self) -> dict[str, int] | None:
        """How often each word form occurs in the chunks (forms.json, stored by the build), or
        None for a generation without it."""
        forms = self.derived.get("forms")
        if forms is None and FORMS_FILE in self.manifest.get("files", {}):
            try:
                forms = json.loads((self.path / FORMS_FILE).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None  # removed by a newer build meanwhile: counted from the texts instead
            self.derived["forms"] = forms
        return forms if isinstance(forms, dict) else None

    @property
    def generation(self) -> int:
        return int(self.manifest["generation"])

    def chunk_text(self, chunk: ChunkRecord) -> str:
        return self.documents[chunk.source].text[chunk.start : chunk.end]


def sentence_total(chunks) -> int:
    if isinstance(chunks, ChunkTable):
        return int(chunks.sentence_first[-1])
    return sum(len(c.sentences) for c in chunks)


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
        columnar = is_columnar(manifest.get("files", {}))
        if columnar:
            tables = load_tables(path, manifest, _read_structure(path))
        else:
            chunks_json = json.loads((path / "chunks.json").read_text(encoding="utf-8"))
            documents_json = json.loads((path / "documents.json").read_text(encoding="utf-8"))
            structure_json = _read_structure(path)
        doc_freq = json.loads((path / "terms.json").read_text(encoding="utf-8"))
        # Memory-mapped: an approximate index's lists are read as queries probe them (reading a
        # million vectors whole took 1.3 s); a build copies it from the file (ann.updated).
        vectors = faiss.read_index(str(path / "vectors.faiss"),
                                   faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        # Arrays are memory-mapped: start-up reads their headers, questions the pages they touch.
        with NPY_LOCK:  # bm25s reads .npy files too
            bm25 = bm25s.BM25.load(str(path / "bm25"), load_corpus=False, mmap=True)
        sentence_vectors = mapped(path / "sentences.npy", scattered=True)
        words = load_words(path, int(manifest["vocabulary"]))
        kept = {name: mapped(path / name) for name in KEPT_ARRAYS
                if name in manifest.get("files", {})}
    except Exception as exc:  # any parse failure of a checksummed file means damage
        if checking is not None:
            checking.result()  # damage found by the checksums is reported as such
        raise IndexDamaged(f"index in {path} cannot be read ({type(exc).__name__}); "
                           "run `qa index --rebuild`") from None
    if checking is not None:
        checking.result()
    try:
        documents, chunks = tables if columnar else _documents_and_chunks(
            manifest, documents_json, chunks_json, structure_json)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IndexDamaged(f"index in {path} is inconsistent ({type(exc).__name__}); "
                           "run `qa index --rebuild`") from None
    if vectors.ntotal != len(chunks) or len(sentence_vectors) != sentence_total(chunks) \
            or len(words.counts) != len(chunks):
        raise IndexDamaged(f"index in {path} is inconsistent; run `qa index --rebuild`")
    adopt_doc_freq(words, kept)
    snapshot = IndexSnapshot(path, manifest, documents, chunks, vectors, bm25, doc_freq,
                             sentence_vectors, words=words, kept=kept)
    if older_terms(manifest):
        # Made under older word rules: answer with BM25 recomputed in memory (about a second per
        # million characters) until the next `qa index` stores it.
        snapshot.bm25, snapshot.doc_freq = bm25_index(
            [search_text(snapshot.chunk_text(c), c.heading) for c in chunks])
    return snapshot


FORMS_FILE = "forms.json"
# Arrays a generation may hold for the next build to reuse (older generations lack them).
KEPT_ARRAYS = ("bm25-tf.npy", "bm25-lengths.npy", "words-docfreq.npy", "lines-keys.npy",
               "lines-counts.npy")


def loaded_words(path: Path, vocabulary_size: int, kept: dict[str, np.ndarray]) -> TokenVectors:
    """The word vectors of the generation in ``path``, mapped as a reader maps them, with the
    doc-freqs the build stored."""
    words = load_words(path, vocabulary_size)
    adopt_doc_freq(words, kept)
    return words


def adopt_doc_freq(words: TokenVectors, kept: dict[str, np.ndarray]) -> None:
    """The word pieces' document frequencies the build stored, taken by ``words`` so they are
    not counted again (older generations lack them, or hold another vocabulary's)."""
    docfreq = kept.get("words-docfreq.npy")
    if docfreq is not None and len(docfreq) == words.vocabulary_size + 1:
        words.__dict__["doc_freq"] = docfreq


def bm25_index(chunk_texts: list[str]):
    """BM25 over the chunks' terms, and each term's document frequency."""
    tokens = [terms(text) for text in chunk_texts]
    counts = merge_counts(None, None, {row: Counter(doc) for row, doc in enumerate(tokens)},
                          {row: len(doc) for row, doc in enumerate(tokens)}, len(tokens))
    return bm25_from_counts(counts), counts.doc_freq


def _read_structure(path: Path) -> dict:
    """structure.json of a generation: per document, its title and blocks."""
    file = path / "structure.json"
    return json.loads(file.read_text(encoding="utf-8")) if file.exists() else {}
