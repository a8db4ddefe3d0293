"""The index on PostgreSQL + pgvector: a shared store that several qa processes read while one
writes (``qa index --store postgresql://…`` or ``QA_STORE``).

Each generation is a set of rows, as a generation folder is a set of files::

    qa_live         one row: the live generation, switched in the transaction that writes it
    qa_generations  generation, manifest (json: its key order is the documents' order)
    qa_documents    generation, position, source, text (what offsets index), structure
    qa_chunks       generation, position, id, source, start_at, end_at, hash, sentence spans,
                    heading, kinds, embedding vector(d) (HNSW index, inner product)
    qa_arrays       generation, name, npy bytes: sentence and word vectors, BM25 term counts,
                    the arrays the next build reuses (the same arrays as the folder's files)

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.config import STORE_SCHEMES
from qa.errors import IndexDamaged, IndexMissing, QAError
from qa.index.records import WORD_FILES, ChunkRecord, _documents_and_chunks, load_words, save_words
from qa.index.store import IndexSnapshot, check_compatible
from qa.index.term_counts import TermCounts, bm25_from_counts

SCHEMES = STORE_SCHEMES
# pg_advisory_lock key of a writer: one writer per database.
WRITER_LOCK = 0x7161_5F69_6E64  # "qa_ind"
ARRAYS = ("sentences.npy", *WORD_FILES, "bm25-tf.npy", "bm25-lengths.npy", "words-docfreq.npy",
          "lines-keys.npy", "lines-counts.npy", "bm25-indptr.npy", "bm25-rows.npy")


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
                generation integer REFERENCES qa_generations ON DELETE CASCADE,
                position integer NOT NULL, source text NOT NULL, text text NOT NULL,
                structure json, PRIMARY KEY (generation, source));
            CREATE TABLE IF NOT EXISTS qa_arrays (
                generation integer REFERENCES qa_generations ON DELETE CASCADE,
                name text NOT NULL, data bytea NOT NULL, PRIMARY KEY (generation, name));""")
        conn.execute(f"""
            CREATE TABLE IF NOT EXISTS qa_chunks (
                generation integer REFERENCES qa_generations ON DELETE CASCADE,
                position integer NOT NULL, id bigint NOT NULL, source text NOT NULL,
                start_at integer NOT NULL, end_at integer NOT NULL, hash text NOT NULL,
                sentences integer[] NOT NULL, heading text NOT NULL, kinds text NOT NULL,
                embedding vector({int(dimension)}) NOT NULL, PRIMARY KEY (generation, id));
            CREATE INDEX IF NOT EXISTS qa_chunks_embedding ON qa_chunks
                USING hnsw (embedding vector_ip_ops);""")


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
    import faiss

    texts, structure = {}, {}
    for source, text, shape in conn.execute(
            "SELECT source, text, structure FROM qa_documents WHERE generation = %s "
            "ORDER BY position", (number,)):
        texts[source] = text
        if shape is not None:
            structure[source] = shape
    columns = {name: [] for name in ("id", "source", "start", "end", "hash", "sentences",
                                     "heading", "kinds")}
    vectors = []
    embedding = "NULL" if leave_vectors else "embedding"
    with conn.cursor(binary=True) as cursor:
        cursor.execute("SELECT id, source, start_at, end_at, hash, sentences, heading, kinds, "
                       f"{embedding} FROM qa_chunks WHERE generation = %s ORDER BY position",
                       (number,))
        for row in cursor:
            for name, value in zip(columns, row):
                columns[name].append(value)
            vectors.append(row[-1])
    arrays = {name: np.load(io.BytesIO(data), allow_pickle=False) for name, data in conn.execute(
        "SELECT name, data FROM qa_arrays WHERE generation = %s", (number,))}
    vocabulary = json.loads(arrays.pop("bm25-vocabulary.npy").tobytes().decode("utf-8")) \
        if "bm25-vocabulary.npy" in arrays else None
    documents, chunks = _documents_and_chunks(manifest, texts, columns, structure)
    if vocabulary is None or any(name not in arrays for name in ARRAYS):
        raise IndexDamaged(f"index in {store} lacks some of its arrays; run `qa index --rebuild`")
    counts = TermCounts(vocabulary, arrays["bm25-indptr.npy"].astype(np.int64),
                        arrays["bm25-rows.npy"].astype(np.int32),
                        arrays["bm25-tf.npy"].astype(np.int32),
                        arrays["bm25-lengths.npy"].astype(np.int64))
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(int(manifest["dimension"])))
    if chunks and not leave_vectors:
        index.add_with_ids(np.stack(vectors).astype(np.float32),
                           np.asarray(columns["id"], dtype=np.int64))
    words = _words_from(arrays, int(manifest["vocabulary"]))
    sentences = arrays["sentences.npy"]
    if len(sentences) != sum(len(c.sentences) for c in chunks) or len(words.counts) != len(chunks) \
            or len(counts.lengths) != len(chunks):
        raise IndexDamaged(f"index in {store} is inconsistent; run `qa index --rebuild`")
    kept = {name: arrays[name] for name in ("bm25-tf.npy", "bm25-lengths.npy",
                                            "words-docfreq.npy", "lines-keys.npy",
                                            "lines-counts.npy")}
    docfreq = kept["words-docfreq.npy"]
    if len(docfreq) == words.vocabulary_size + 1:
        words.__dict__["doc_freq"] = docfreq
    return IndexSnapshot(store.generation(number), manifest, documents, chunks, index,
                         bm25_from_counts(counts), counts.doc_freq, sentences, words=words,
                         kept=kept)


def _words_from(arrays: dict, vocabulary: int):
    import tempfile

    # load_words checks the arrays line up; it reads files, so hand it a folder of them.
    with tempfile.TemporaryDirectory() as folder:
        for name in WORD_FILES:
            np.save(Path(folder) / name, arrays[name], allow_pickle=False)
        return load_words(Path(folder), vocabulary)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def write_generation(conn, snapshot: IndexSnapshot, counts: TermCounts) -> int:
    """Insert ``snapshot`` as a new generation and make it live, in one transaction (call with
    the writer's lock held). Returns its number."""
    import tempfile

    with conn.transaction():
        number = conn.execute("SELECT coalesce(max(generation), 0) + 1 FROM qa_generations"
                              ).fetchone()[0]
        manifest = dict(snapshot.manifest, generation=number)
        manifest.pop("files", None)  # checksums of the scratch folder's files: not these rows
        conn.execute("INSERT INTO qa_generations (generation, manifest) VALUES (%s, %s)",
                     (number, json.dumps(manifest, ensure_ascii=False)))
        with conn.cursor().copy("COPY qa_documents (generation, position, source, text, "
                                "structure) FROM STDIN") as copy:
            for position, (source, doc) in enumerate(snapshot.documents.items()):
                copy.write_row((number, position, source, doc.text, _structure(doc)))
        with conn.cursor().copy("COPY qa_chunks (generation, position, id, source, start_at, "
                                "end_at, hash, sentences, heading, kinds, embedding) "
                                "FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["integer", "integer", "bigint", "text", "integer", "integer", "text",
                            "integer[]", "text", "text", "vector"])
            for position, chunk in enumerate(snapshot.chunks):
                copy.write_row((number, position, chunk.id, chunk.source, chunk.start, chunk.end,
                                chunk.hash, [x for span in chunk.sentences for x in span],
                                chunk.heading, chunk.kinds, snapshot.vectors.reconstruct(chunk.id)))
        with tempfile.TemporaryDirectory() as folder:
            save_words(Path(folder), snapshot.words)
            arrays = {name: np.load(Path(folder) / name) for name in WORD_FILES}
        arrays["sentences.npy"] = np.asarray(snapshot.sentence_vectors, dtype=np.float16)
        arrays.update(snapshot.kept)
        arrays["bm25-tf.npy"], arrays["bm25-lengths.npy"] = counts.tf, counts.lengths
        arrays["bm25-indptr.npy"], arrays["bm25-rows.npy"] = counts.indptr, counts.rows
        vocabulary = np.frombuffer(json.dumps(counts.vocabulary).encode("utf-8"), np.uint8)
        arrays["bm25-vocabulary.npy"] = vocabulary
        for name, array in arrays.items():
            conn.execute("INSERT INTO qa_arrays (generation, name, data) VALUES (%s, %s, %s)",
                         (number, name, _npy(array)))
        conn.execute("INSERT INTO qa_live (only_row, generation) VALUES (true, %s) "
                     "ON CONFLICT (only_row) DO UPDATE SET generation = excluded.generation",
                     (number,))
    return number


def _structure(doc) -> str | None:
    if not (doc.blocks or doc.title or doc.locators or doc.author or doc.date):
        return None
    return json.dumps({
        "title": doc.title, "blocks": [x for b in doc.blocks for x in (b.start, b.end, b.kind, b.level)],
        "locators": [[x.start, x.kind, x.number, x.label, x.date] for x in doc.locators],
        "author": doc.author, "date": doc.date}, ensure_ascii=False)


def remove_old_generations(conn) -> None:
    """Delete every generation but the live one (readers still inside a transaction that began
    before keep seeing theirs: PostgreSQL keeps deleted rows for older snapshots)."""
    with conn.transaction():
        conn.execute("DELETE FROM qa_generations WHERE generation <> "
                     "coalesce((SELECT generation FROM qa_live), -1)")


def store_size(store: PgStore) -> int:
    with store.connect() as conn:
        return int(conn.execute(
            "SELECT sum(pg_total_relation_size(c)) FROM unnest(ARRAY['qa_generations', "
            "'qa_live', 'qa_documents', 'qa_chunks', 'qa_arrays']::regclass[]) AS c").fetchone()[0])
