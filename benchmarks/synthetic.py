"""Synthetic indexes made from a real one, for the scaling benchmark (benchmarks/scaling.py).

A real index of a real corpus (embedded by the real model) is copied ``copies`` times: copy k of
document ``a.txt`` is ``copy0007/a.txt``, the same bytes on disk, so its chunks, sentence spans,
BM25 counts, word vectors and boilerplate lines are the real ones repeated. Chunk vectors are the
real ones plus Gaussian noise, normalised (each real vector becomes a cluster of ``copies`` near
neighbours, which keeps an approximate index honest: its lists are not trivially separable).
Nothing is embedded: a synthetic build's time is writing time only.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from qa.index import ann, generations, store
from qa.index.late_interaction import TokenVectors
from qa.index.lexical import count_forms
from qa.index.records import ChunkRecord, StoredDocument
from qa.index.term_counts import TermCounts, bm25_from_counts, counts_of

NOISE = 0.03  # per dimension: a copy's vector has cosine about .86 to its original


def expected_of(manifest: dict, corpus: Path) -> dict:
    """What load_snapshot expects of an index with this manifest, pointed at ``corpus``."""
    keys = ("model", "dimension", "chunking", "word_vectors", "encoder")
    return {**{k: manifest[k] for k in keys if k in manifest}, "corpus": str(corpus.resolve())}


def synthesize(base_index: Path, base_corpus: Path, corpus: Path, index: Path, copies: int,
               seed: int = 0, noise: float = NOISE) -> int:
    """Write ``corpus`` (``copies`` copies of the base corpus's files) and its index, written by
    this qa's own generation writer; returns the number of chunks. With ``noise`` 0 and one copy,
    the base index itself in this qa's storage."""
    manifest = generations.read_manifest(base_index)
    base = store.load_snapshot(base_index, expected_of(manifest, Path(manifest["corpus"])))
    rng = np.random.default_rng(seed)
    shutil.rmtree(corpus, ignore_errors=True)
    shutil.rmtree(index, ignore_errors=True)
    n0 = len(base.chunks)
    id_span = int(base.manifest.get("next_chunk_id", 0)) or max(c.id for c in base.chunks) + 1
    documents: dict[str, StoredDocument] = {}
    chunks: list[ChunkRecord] = []
    for k in range(copies):
        prefix = f"copy{k:04d}/"
        for source, doc in base.documents.items():
            target = corpus / (prefix + source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(base_corpus / source, target)
            stat = os.stat(target)
            documents[prefix + source] = StoredDocument(
                prefix + source, doc.text, doc.sha256, doc.format, stat.st_size, stat.st_mtime_ns,
                doc.segments_hash, doc.page_starts, doc.blocks, doc.title, doc.locators,
                doc.author, doc.date)
        chunks += [ChunkRecord(k * id_span + c.id, prefix + c.source, c.start, c.end, c.hash,
                               c.sentences, c.heading, c.kinds) for c in base.chunks]
    real = np.vstack([base.vectors.reconstruct(c.id) for c in base.chunks]).astype(np.float32)
    all_ids = np.concatenate([np.asarray([c.id for c in base.chunks], np.int64) + k * id_span
                              for k in range(copies)])
    noisy = np.tile(real, (copies, 1))
    for k in range(copies):  # in place, copy by copy: a million rows of noise at once is 1.5 GB
        part = noisy[k * n0:(k + 1) * n0]
        if noise:
            part += rng.normal(0, noise, part.shape).astype(np.float32)
            part /= np.linalg.norm(part, axis=1, keepdims=True)
    vectors = ann.updated(None, [], all_ids, noisy, real.shape[1])
    del noisy
    # Copy k is the base's chunk order again, so every array is the base's, repeated.
    sentences = np.tile(np.asarray(base.sentence_vectors), (copies, 1))
    w = base.words
    words = TokenVectors(w.projection, np.tile(np.asarray(w.vectors), (copies, 1)),
                         np.tile(np.asarray(w.scales), copies), np.tile(np.asarray(w.ids), copies),
                         np.tile(np.asarray(w.counts), copies), w.vocabulary_size)
    counts = base.term_counts
    rows = np.asarray(counts.rows, np.int64)
    per_term = np.diff(counts.indptr)
    # Term t's chunks: its base rows in copy 0, then in copy 1, ... (chunk order).
    tiled_rows = np.concatenate([np.concatenate([rows[a:b] + k * n0 for k in range(copies)])
                                 for a, b in zip(counts.indptr[:-1], counts.indptr[1:])]) \
        if len(rows) else rows
    tiled_tf = np.concatenate([np.tile(counts.tf[a:b], copies)
                               for a, b in zip(counts.indptr[:-1], counts.indptr[1:])]) \
        if len(rows) else counts.tf
    indptr = np.concatenate([[0], np.cumsum(per_term * copies)]).astype(np.int64)
    tiled = TermCounts(counts.vocabulary, indptr, tiled_rows.astype(np.int32),
                       tiled_tf.astype(np.int32), np.tile(counts.lengths, copies))
    bm25 = bm25_from_counts(tiled)
    kept = {"bm25-tf.npy": tiled.tf, "bm25-lengths.npy": tiled.lengths,
            "words-docfreq.npy": np.asarray(base.kept["words-docfreq.npy"]) * copies}
    if "lines-keys.npy" in base.kept:
        kept["lines-keys.npy"] = np.tile(base.kept["lines-keys.npy"], copies)
        kept["lines-counts.npy"] = np.tile(base.kept["lines-counts.npy"], (copies, 1))
    assert counts_of(bm25, tiled.tf, tiled.lengths) is not None
    index.mkdir(parents=True)
    new_manifest = {k: v for k, v in base.manifest.items() if k not in ("documents", "files")}
    new_manifest.update(generation=1, corpus=str(corpus.resolve()),
                        next_chunk_id=copies * id_span, skipped={})
    forms = base.word_forms() or count_forms(base.chunk_text(c) for c in base.chunks)
    generations.write_generation(index, new_manifest, documents, chunks, vectors, bm25,
                                 tiled.doc_freq, sentences, words, kept,
                                 {form: n * copies for form, n in forms.items()})
    return len(chunks)
