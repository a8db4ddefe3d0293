"""The index on PostgreSQL + pgvector: a shared store that several qa processes read while one
writes (``qa index --store postgresql://…`` or ``QA_STORE``).

A generation is a set of rows, as a generation folder is a set of files; a document or chunk row
serves every generation from the one that added it (``born``) to the one that dropped it
(``died``), so an update writes only the rows it changes (qa.index.pg_write)::

    qa_live         one row: the live generation, switched in the transaction that writes it
    qa_generations  generation, manifest (json: its key order is the documents' order)
    qa_documents    source, born, died, text (what offsets index), structure
    qa_chunks       id, born, died, source, start_at, end_at, hash, sentence spans, heading,
                    kinds, embedding vector(d) (HNSW index, inner product), the chunk's sentence
                    vectors and word vectors (bytes)
    qa_arrays       generation, name, npy bytes: the chunk order, BM25 term counts, the word
                    projection and what the next build reuses (as the folder's files so named)

qa keeps source, start, end and text per chunk: citations are cut from the stored text as from
a folder, never by the server. BM25 is qa's own, rebuilt from the stored term counts, so fusion
is as with a folder. A reader reads the live generation in one REPEATABLE READ transaction; a
writer holds an advisory lock (qa.index.pg_sync) and switches ``qa_live`` in the transaction that
inserts the generation, so a reader never sees half a generation and an interrupted build is
simply rolled back. Older generations are deleted after the switch.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from qa.config import STORE_SCHEMES
from qa.errors import IndexDamaged, IndexMissing, QAError
from qa.index.ann import new_flat
from qa.index.late_interaction import Projection, TokenVectors
from qa.index.records import _documents_and_chunks, load_npy
from qa.index.store import KEPT_ARRAYS, IndexSnapshot, adopt_doc_freq, check_compatible
from qa.index.term_counts import TermCounts, bm25_from_counts

SCHEMES = STORE_SCHEMES
# pg_advisory_lock key of a writer: one writer per database.
WRITER_LOCK = 0x7161_5F69_6E64  # "qa_ind"
# The arrays a generation keeps whole (the rest is per chunk, in its row): the chunk order, the
# BM25 term counts, and what the next build reuses (as a folder's files of the same names).
ARRAYS = ("chunk-ids.npy", "words-projection.npy", "bm25-indptr.npy", "bm25-rows.npy",
          "bm25-vocabulary.npy", *KEPT_ARRAYS)
# Rows of one generation: a document or chunk row serves every generation from its ``born`` one
# until the one that dropped it (``died``), so an update writes only what it changed.
ALIVE = "born <= %(g)s AND (died IS NULL OR died > %(g)s)"


def is_store_url(index) -> bool:
    return isinstance(index, (str, PgStore)) and str(index).startswith(SCHEMES)


@dataclass(frozen=True)
class PgGeneration:
    """Names one generation of a store, as a generation folder's path does (snapshot.path)."""

    store: str
    generation: int

    @property
    def name(self) -> str:
        return f"gen-{self.generation:06d}"

    def __str__(self) -> str:
        return f"{self.store}#{self.name}"


class PgStore:
    """A PostgreSQL database holding qa's index, named by its URL."""

    def __init__(self, url: str):
        self.url = str(url.url if isinstance(url, PgStore) else url)

    def __str__(self) -> str:
        """The URL without its password (it is shown in messages)."""
        import re

        # user:password@ -> user:***@, whether or not the rest of the URL parses
        return re.sub(r"^([a-z]+://[^:/@?#]*):[^@/?#]*@", r"\1:***@", self.url)

    def __repr__(self) -> str:
        return f"PgStore({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, PgStore) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __fspath__(self) -> str:
        """The local folder where builds for this store are prepared (the file watcher leaves it
        out, as it leaves out an index folder)."""
        from qa.config import user_data_dir

        digest = hashlib.sha256(self.url.encode()).hexdigest()[:12]
        return str(user_data_dir() / "stores" / digest)

    def connect(self, **options):
        """A psycopg connection; an unreachable server or a bad URL is one QAError line."""
        try:
            import psycopg
        except ImportError:
            raise QAError("a PostgreSQL store needs psycopg: pip install 'psycopg[binary]'") from None
        try:
            conn = psycopg.connect(self.url, connect_timeout=10, **options)
        except (psycopg.Error, ValueError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            reason = reason.replace(self.url, str(self))  # libpq quotes the URL, password too
            raise QAError(f"cannot connect to the index store {self}: {reason[:300]}") from None
        _register_vector(conn)
        return conn

    def generation(self, number: int) -> PgGeneration:
        return PgGeneration(str(self), number)

    @contextmanager
    def reported(self):
        """A failure of the server (a broken connection, a missing privilege) as one QAError."""
        try:
            yield
        except QAError:
            raise
        except Exception as exc:
            import psycopg

            if not isinstance(exc, psycopg.Error):
                raise
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise QAError(f"the index store {self} failed: {reason[:300]}") from None


def _register_vector(conn) -> None:
    """Binary dumping and loading of pgvector's ``vector`` (float32 exactly, both ways)."""
    from psycopg.adapt import Dumper, Loader
    from psycopg.pq import Format
    from psycopg.types import TypeInfo

    info = TypeInfo.fetch(conn, "vector")
    if info is None:
        return  # no extension yet: ensure_schema creates it and registers again
    info.register(conn)

    class VectorDumper(Dumper):
        format = Format.BINARY
        oid = info.oid

        def dump(self, obj):
            array = np.asarray(obj, dtype=">f4").reshape(-1)
            return struct.pack(">HH", len(array), 0) + array.tobytes()

    class VectorLoader(Loader):
        format = Format.BINARY

        def load(self, data):
            return np.frombuffer(bytes(data), dtype=">f4", offset=4).astype(np.float32)

    conn.adapters.register_dumper(np.ndarray, VectorDumper)
    conn.adapters.register_dumper("vector", VectorDumper)
    conn.adapters.register_loader(info.oid, VectorLoader)


def ensure_schema(conn, dimension: int) -> None:
    """Create the extension and the tables when missing (the writer's first step)."""
    import psycopg

    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as exc:
        raise QAError("the index store needs pgvector: run `CREATE EXTENSION vector` in the "
                      f"database as its owner ({' '.join(str(exc).split())[:200]})") from None
    _register_vector(conn)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK + 1,))  # one creator
        conn.execute("""
            CREATE TABLE IF NOT EXISTS qa_generations (
                generation integer PRIMARY KEY, manifest json NOT NULL,
                written_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE IF NOT EXISTS qa_live (
                only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
                generation integer NOT NULL REFERENCES qa_generations);
            CREATE TABLE IF NOT EXISTS qa_documents (
                source text NOT NULL, born integer NOT NULL, died integer,
                text text NOT NULL, structure json, PRIMARY KEY (source, born));
            CREATE TABLE IF NOT EXISTS qa_arrays (
                generation integer REFERENCES qa_generations ON DELETE CASCADE,
                name text NOT NULL, data bytea NOT NULL, PRIMARY KEY (generation, name));""")
        # sentence_vectors: float16 rows, one per sentence; words: int32 ids, float16 scales
        # and int8 projected vectors of the chunk's word pieces (qa.index.late_interaction).
        conn.execute(f"""
            CREATE TABLE IF NOT EXISTS qa_chunks (
                id bigint NOT NULL, born integer NOT NULL, died integer, source text NOT NULL,
                start_at integer NOT NULL, end_at integer NOT NULL, hash text NOT NULL,
                sentences integer[] NOT NULL, heading text NOT NULL, kinds text NOT NULL,
                embedding vector({int(dimension)}) NOT NULL, sentence_vectors bytea NOT NULL,
                words bytea NOT NULL, PRIMARY KEY (id, born));
            CREATE INDEX IF NOT EXISTS qa_chunks_embedding ON qa_chunks
                USING hnsw (embedding vector_ip_ops);
            CREATE INDEX IF NOT EXISTS qa_chunks_alive ON qa_chunks (died, born);""")


def live_generation(conn) -> int | None:
    """The live generation's number, or None when the store holds no index (yet)."""
    import psycopg

    try:
        row = conn.execute("SELECT generation FROM qa_live").fetchone()
    except psycopg.errors.UndefinedTable:
        conn.rollback()
        return None
    return row[0] if row else None


def read_manifest(store: PgStore) -> dict:
    with store.connect() as conn:
        number = live_generation(conn)
        if number is None:
            raise IndexMissing(f"no index in {store}; run `qa index` first")
        return _manifest(conn, store, number)


def _manifest(conn, store: PgStore, number: int) -> dict:
    from qa.index.records import manifest_problem

    row = conn.execute("SELECT manifest FROM qa_generations WHERE generation = %s",
                       (number,)).fetchone()
    manifest = row[0] if row else None
    problem = "it is missing" if manifest is None else manifest_problem(manifest)
    if problem:
        raise IndexDamaged(f"index manifest in {store} is damaged ({problem}); "
                           "run `qa index --rebuild`")
    return manifest


def load_snapshot(store: PgStore, expected: dict, dense: str | None = None) -> IndexSnapshot:
    """The live generation, read in one REPEATABLE READ transaction (a writer switching
    generations meanwhile is not seen). ``dense``: "exact" keeps the vectors in a FAISS flat
    index in memory, as a folder does (the default, and what a build needs); "hnsw" leaves them
    in PostgreSQL and searches its HNSW index (QA_STORE_DENSE=hnsw)."""
    import faiss
    import psycopg

    dense = dense or os.environ.get("QA_STORE_DENSE", "exact")
    with store.connect() as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            number = live_generation(conn)
            if number is None:
                raise IndexMissing(f"no index in {store}; run `qa index` first")
            manifest = _manifest(conn, store, number)
            check_compatible(manifest, expected)
            try:
                snapshot = _read_generation(conn, store, number, manifest, dense == "hnsw")
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise IndexDamaged(f"index in {store} is inconsistent ({type(exc).__name__}); "
                                   "run `qa index --rebuild`") from None
    if dense == "hnsw":
        from qa.index.pg_vectors import PgVectors

        snapshot.vectors = PgVectors(store, number, len(snapshot.chunks))
    else:
        faiss.omp_set_num_threads(1)  # as for a folder (qa.index.store)
    return snapshot


def _read_generation(conn, store, number, manifest, leave_vectors) -> IndexSnapshot:
    alive = {"g": number}
    arrays = {name: load_npy(io.BytesIO(data)) for name, data in conn.execute(
        "SELECT name, data FROM qa_arrays WHERE generation = %(g)s", alive)}
    if any(name not in arrays for name in ARRAYS):
        raise IndexDamaged(f"index in {store} lacks some of its arrays; run `qa index --rebuild`")
    texts, structure = {}, {}
    for source, text, shape in conn.execute(
            f"SELECT source, text, structure FROM qa_documents WHERE {ALIVE}", alive):
        texts[source] = text
        if shape is not None:
            structure[source] = shape
    rows = {}
    embedding = "NULL" if leave_vectors else "embedding"
    with conn.cursor(binary=True) as cursor:
        cursor.execute("SELECT id, source, start_at, end_at, hash, sentences, heading, kinds, "
                       f"sentence_vectors, words, {embedding} FROM qa_chunks WHERE {ALIVE}", alive)
        for row in cursor:
            rows[row[0]] = row
    order = arrays["chunk-ids.npy"].tolist()
    if len(order) != len(rows) or any(i not in rows for i in order):
        raise IndexDamaged(f"index in {store} is inconsistent; run `qa index --rebuild`")
    ordered = [rows[i] for i in order]
    names = ("id", "source", "start", "end", "hash", "sentences", "heading", "kinds")
    columns = {name: [row[k] for row in ordered] for k, name in enumerate(names)}
    documents, chunks = _documents_and_chunks(manifest, texts, columns, structure)
    dimension = int(manifest["dimension"])
    projection = arrays["words-projection.npy"]
    words = _words(ordered, projection, int(manifest["vocabulary"]))
    sentences = np.concatenate([np.frombuffer(bytes(r[8]), np.float16).reshape(-1, dimension)
                                for r in ordered]) if ordered \
        else np.zeros((0, dimension), np.float16)
    vocabulary = json.loads(arrays["bm25-vocabulary.npy"].tobytes().decode("utf-8"))
    counts = TermCounts(vocabulary, arrays["bm25-indptr.npy"].astype(np.int64),
                        arrays["bm25-rows.npy"].astype(np.int32),
                        arrays["bm25-tf.npy"].astype(np.int32),
                        arrays["bm25-lengths.npy"].astype(np.int64))
    if len(sentences) != sum(len(c.sentences) for c in chunks) or len(counts.lengths) != len(chunks):
        raise IndexDamaged(f"index in {store} is inconsistent; run `qa index --rebuild`")
    index = new_flat(dimension)
    if chunks and not leave_vectors:
        index.add_with_ids(np.stack([r[10] for r in ordered]).astype(np.float32),
                           np.asarray(order, dtype=np.int64))
    kept = {name: arrays[name] for name in KEPT_ARRAYS}
    adopt_doc_freq(words, kept)
    return IndexSnapshot(store.generation(number), manifest, documents, chunks, index,
                         bm25_from_counts(counts), counts.doc_freq, sentences, words=words,
                         kept=kept)


def _words(rows, projection: np.ndarray, vocabulary: int) -> TokenVectors:
    """The word vectors of the chunks ``rows`` (in chunk order), from each row's ``words``."""
    dims = len(projection) - 1  # the mean, then one row per projected dimension
    ids, scales, vectors, counts = [], [], [], []
    for row in rows:
        data = bytes(row[9])
        n = len(data) // (6 + dims)
        ids.append(np.frombuffer(data, np.int32, n))
        scales.append(np.frombuffer(data, np.float16, n, 4 * n))
        vectors.append(np.frombuffer(data, np.int8, n * dims, 6 * n).reshape(n, dims))
        counts.append(n)
    ids = np.concatenate(ids) if ids else np.zeros(0, np.int32)
    if len(ids) and (ids.min() < 0 or ids.max() >= vocabulary):
        raise ValueError("word ids outside the vocabulary")
    return TokenVectors(Projection.from_array(projection),
                        np.concatenate(vectors) if vectors else np.zeros((0, dims), np.int8),
                        np.concatenate(scales) if scales else np.zeros(0, np.float16), ids,
                        np.asarray(counts, np.int32), vocabulary)


def word_bytes(vectors: np.ndarray, scales: np.ndarray, ids: np.ndarray) -> bytes:
    """One chunk's word vectors as its row keeps them (see _words)."""
    return (np.asarray(ids, np.int32).tobytes() + np.asarray(scales, np.float16).tobytes()
            + np.asarray(vectors, np.int8).tobytes())


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def store_size(store: PgStore) -> int:
    with store.connect() as conn:
        return int(conn.execute(
            "SELECT sum(pg_total_relation_size(c)) FROM unnest(ARRAY['qa_generations', "
            "'qa_live', 'qa_documents', 'qa_chunks', 'qa_arrays']::regclass[]) AS c").fetchone()[0])
