"""Writing a generation into a PostgreSQL store (qa.index.pg_store), in one transaction: rows for
the documents and chunks that are new in it, ``died`` set on those it drops, the generation's
arrays, and the switch of ``qa_live``. Call with the writer's advisory lock held."""

from __future__ import annotations

import json

import numpy as np

from qa.index.pg_store import npy, word_bytes
from qa.index.store import IndexSnapshot
from qa.index.term_counts import TermCounts


def write_generation(conn, snapshot: IndexSnapshot, counts: TermCounts,
                     base: IndexSnapshot | None) -> int:
    """Insert ``snapshot``, built on the live generation ``base`` (None: on nothing), as a new
    generation and make it live. Returns its number.

    A chunk (a document) of ``base`` is kept, row and vector as they are, only when the new
    generation holds the very same record; every other live row is marked dropped."""
    with conn.transaction():
        number = conn.execute("SELECT coalesce(max(generation), 0) + 1 FROM qa_generations"
                              ).fetchone()[0]
        manifest = dict(snapshot.manifest, generation=number)
        manifest.pop("files", None)  # checksums of the scratch folder's files, not of these rows
        conn.execute("INSERT INTO qa_generations (generation, manifest) VALUES (%s, %s)",
                     (number, json.dumps(manifest, ensure_ascii=False)))
        _write_documents(conn, number, snapshot, base)
        _write_chunks(conn, number, snapshot, base)
        _write_arrays(conn, number, snapshot, counts)
        conn.execute("INSERT INTO qa_live (only_row, generation) VALUES (true, %s) "
                     "ON CONFLICT (only_row) DO UPDATE SET generation = excluded.generation",
                     (number,))
    return number


def _write_documents(conn, number: int, snapshot: IndexSnapshot, base) -> None:
    old = base.documents if base is not None else {}
    kept = [s for s, doc in snapshot.documents.items()
            if s in old and old[s].text == doc.text and _structure(old[s]) == _structure(doc)]
    conn.execute("UPDATE qa_documents SET died = %s WHERE died IS NULL AND NOT source = ANY(%s)",
                 (number, kept))
    keep = set(kept)
    with conn.cursor().copy("COPY qa_documents (source, born, text, structure) FROM STDIN") as copy:
        for source, doc in snapshot.documents.items():
            if source not in keep:
                copy.write_row((source, number, doc.text, _structure(doc)))


def _write_chunks(conn, number: int, snapshot: IndexSnapshot, base) -> None:
    old = {c.id: c for c in base.chunks} if base is not None else {}
    kept = [c.id for c in snapshot.chunks if old.get(c.id) == c]
    conn.execute("UPDATE qa_chunks SET died = %s WHERE died IS NULL AND NOT id = ANY(%s)",
                 (number, kept))
    keep = set(kept)
    with conn.cursor().copy("COPY qa_chunks (id, born, source, start_at, end_at, hash, sentences, "
                            "heading, kinds, embedding, sentence_vectors, words) "
                            "FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["bigint", "integer", "text", "integer", "integer", "text", "integer[]",
                        "text", "text", "vector", "bytea", "bytea"])
        for row, chunk in enumerate(snapshot.chunks):
            if chunk.id in keep:
                continue
            sentences = np.asarray(snapshot.chunk_sentence_vectors(row), np.float16)
            copy.write_row((chunk.id, number, chunk.source, chunk.start, chunk.end, chunk.hash,
                            [x for span in chunk.sentences for x in span], chunk.heading,
                            chunk.kinds, snapshot.vectors.reconstruct(chunk.id),
                            sentences.tobytes(), word_bytes(*snapshot.words.of_chunk(row))))


def _write_arrays(conn, number: int, snapshot: IndexSnapshot, counts: TermCounts) -> None:
    arrays = dict(snapshot.kept)
    arrays["chunk-ids.npy"] = np.asarray([c.id for c in snapshot.chunks], np.int64)
    arrays["words-projection.npy"] = snapshot.words.projection.to_array()
    arrays["bm25-tf.npy"], arrays["bm25-lengths.npy"] = counts.tf, counts.lengths
    arrays["bm25-indptr.npy"], arrays["bm25-rows.npy"] = counts.indptr, counts.rows
    arrays["bm25-vocabulary.npy"] = np.frombuffer(
        json.dumps(counts.vocabulary, ensure_ascii=False).encode("utf-8"), np.uint8)
    with conn.cursor().copy("COPY qa_arrays (generation, name, data) FROM STDIN") as copy:
        for name, array in arrays.items():
            copy.write_row((number, name, npy(array)))


def _structure(doc) -> str | None:
    if not (doc.blocks or doc.title or doc.locators or doc.author or doc.date):
        return None
    return json.dumps({
        "title": doc.title,
        "blocks": [x for b in doc.blocks for x in (b.start, b.end, b.kind, b.level)],
        "locators": [[x.start, x.kind, x.number, x.label, x.date] for x in doc.locators],
        "author": doc.author, "date": doc.date}, ensure_ascii=False)


def remove_old_generations(conn) -> None:
    """Delete every generation but the live one, and the rows only they held (a reader inside a
    transaction that began before keeps seeing its generation: PostgreSQL keeps deleted rows for
    older snapshots)."""
    with conn.transaction():
        live = conn.execute("SELECT generation FROM qa_live").fetchone()
        live = live[0] if live else -1
        conn.execute("DELETE FROM qa_chunks WHERE died <= %s OR born > %s", (live, live))
        conn.execute("DELETE FROM qa_documents WHERE died <= %s OR born > %s", (live, live))
        conn.execute("DELETE FROM qa_generations WHERE generation <> %s", (live,))
