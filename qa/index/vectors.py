"""The vectors of a new generation: for each new chunk its chunk, sentence and word vectors,
reused by text hash from the previous generation or an unfinished build's cache, or embedded in
batches (reporting progress and caching as it goes); then the sentence matrix, the word vectors
and the FAISS index of every chunk, in chunk order."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from qa.index import caches, generations, store
from qa.index.embedder import Embedder, Encoded, encode_chunks_plainly
from qa.index.late_interaction import PROJECTED_DIMS, Projection, TokenVectors, quantize
from qa.index.chunk_plan import PlannedChunks, PlannedWords, gather
from qa.index.records import search_text
from qa.index.tables import ChunkTable
from qa.index.reports import LOADING_MODEL, IndexProgress

EMBED_BATCH = 128
# Chunks embedded between two progress reports: the model's own batch (sentence-transformers
# encodes 32 texts at a time), so the bar moves as the model works and the vectors are those one
# call for the whole batch gives.
PROGRESS_BATCH = 32


def cache_name(embedder: Embedder) -> str:
    """What an unfinished build's cached vectors are filed under: the model and its encoder."""
    encoder = getattr(embedder, "encoder", None) or store.FP32
    return embedder.name if encoder == store.FP32 else f"{embedder.name} [{encoder}]"


WordParts = tuple[np.ndarray, np.ndarray, np.ndarray]  # int8 vectors, scales, vocabulary ids


def _vectors_for(fresh, documents, previous, embedder, index_dir, report):
    """Chunk, sentence and word vectors for new chunks: reused by text hash, embedded otherwise.

    Returns (chunk vectors in ``fresh`` order, {chunk hash: sentence vectors}, {chunk hash: word
    parts}, the word projection, chunks embedded). The projection is the previous generation's,
    or an unfinished build's, or fitted on the first batch embedded here.
    """
    dim = embedder.dimension
    vectors = np.zeros((len(fresh), dim), dtype=np.float32)
    sentences: dict[str, np.ndarray] = {}
    words: dict[str, WordParts] = {}
    reusable: dict[str, int] = {}
    if previous is not None and fresh:
        reusable = hash_rows(previous.chunks)
    resume = _ResumeCache(index_dir)
    cache = caches.EmbeddingCache(index_dir, cache_name(embedder), dim)
    sentence_cache = caches.EmbeddingCache(index_dir, cache_name(embedder) + "#sentences", dim)
    word_cache = caches.EmbeddingCache(index_dir, cache_name(embedder) + "#words", PROJECTED_DIMS + 1)
    projection = previous.words.projection if previous is not None else None
    cached_projection = caches.cached_projection(index_dir, cache_name(embedder))
    if projection is None:
        projection = cached_projection
    elif cached_projection is None or not _same_projection(projection, cached_projection):
        # Cached word vectors, if any, were projected another way (an unfinished --rebuild).
        word_cache.drop()
        resume.write(caches.cache_projection, index_dir, cache_name(embedder), projection)
    cached, cached_sentences, cached_words = cache.load(), sentence_cache.load(), word_cache.load()
    todo: dict[str, list[int]] = {}
    for row, chunk in enumerate(fresh):
        count = len(chunk.sentences)
        keys = [_sentence_key(chunk.hash, i) for i in range(count)]
        from_cache = _cached_words(cached_words, chunk.hash)
        if chunk.hash in cached and all(k in cached_sentences for k in keys) and from_cache is not None:
            vectors[row] = cached[chunk.hash]
            sentences[chunk.hash] = np.stack([cached_sentences[k] for k in keys]) if keys \
                else np.zeros((0, dim), np.float32)
            words[chunk.hash] = from_cache
        elif chunk.hash in reusable and len(previous.chunks[reusable[chunk.hash]].sentences) == count:
            old_row = reusable[chunk.hash]
            vectors[row] = previous.vectors.reconstruct(previous.chunks[old_row].id)
            sentences[chunk.hash] = previous.chunk_sentence_vectors(old_row).astype(np.float32)
            words[chunk.hash] = previous.words.of_chunk(old_row)
        else:
            todo.setdefault(chunk.hash, []).append(row)
    if not todo:
        return vectors, sentences, words, projection, 0
    keys = list(todo)
    first_of = {c.hash: c for c in fresh}
    text_of = {h: search_text(documents[c.source].text[c.start:c.end], c.heading)
               for h, c in first_of.items()}
    # Sentence spans are offsets into the chunk's text, which follows its heading path.
    shift = {h: len(text_of[h]) - (c.end - c.start) - c.start for h, c in first_of.items()}
    # Longest first, so the progress bar slows down rather than stalling at the end.
    keys.sort(key=lambda k: -len(text_of[k]))
    if not getattr(embedder, "model_loaded", True) and \
            embedder.needs_model([text_of[k] for k in keys]):
        # Importing torch and sentence-transformers takes 5 to 10 s: say so rather than sit
        # at "embedding 0/N".
        report(IndexProgress(LOADING_MODEL, 0, 0))
        embedder.load_model()
    report(IndexProgress("embedding", 0, len(keys)))
    encode = getattr(embedder, "encode_chunks", None)
    for first in range(0, len(keys), EMBED_BATCH):
        batch = keys[first : first + EMBED_BATCH]
        texts = [text_of[k] for k in batch]
        spans = [[(s + shift[k], e + shift[k]) for s, e in first_of[k].sentences] for k in batch]
        encoded = _encode_reporting(
            lambda t, s: encode(t, s) if encode is not None else encode_chunks_plainly(embedder, t, s),
            texts, spans, lambda n: report(IndexProgress("embedding", first + n, len(keys))))
        if projection is None:
            # A fresh index: fit on this first (longest-first) batch, a few thousand words or more.
            sample = encoded.all_tokens
            if sample is None:
                sample = np.concatenate([m for m, _ in encoded.words] or [np.zeros((0, dim), np.float32)])
            projection = Projection.fit(sample)
            resume.write(caches.cache_projection, index_dir, cache_name(embedder), projection)
        projected = [(projection.apply(matrix), ids) for matrix, ids in encoded.words]
        # Sentences and words first: a chunk key in the cache promises they are there.
        sentence_keys = [_sentence_key(k, i) for k, lst in zip(batch, encoded.sentences) for i in range(len(lst))]
        if sentence_keys:
            resume.write(sentence_cache.append, sentence_keys, np.concatenate(encoded.sentences))
        word_keys, word_rows = _word_cache_records(batch, projected)
        resume.write(word_cache.append, word_keys, word_rows)
        resume.write(cache.append, batch, encoded.vectors)
        for key, vector, sentence_vectors, (matrix, ids) in zip(batch, encoded.vectors, encoded.sentences, projected):
            vectors[todo[key]] = vector
            sentences[key] = sentence_vectors
            words[key] = (*quantize(matrix), ids.astype(np.int32))
    return vectors, sentences, words, projection, len(keys)


def _encode_reporting(encode, texts: list[str], spans: list, done: Callable[[int], None]) -> Encoded:
    """``encode(texts, spans)`` in steps of PROGRESS_BATCH texts, calling ``done(count)`` after
    each; the parts are joined into what one call gives."""
    parts = []
    for start in range(0, len(texts), PROGRESS_BATCH):
        parts.append(encode(texts[start:start + PROGRESS_BATCH], spans[start:start + PROGRESS_BATCH]))
        done(min(start + PROGRESS_BATCH, len(texts)))
    if len(parts) == 1:
        return parts[0]
    tokens = [p.all_tokens for p in parts if p.all_tokens is not None]
    return Encoded(np.concatenate([p.vectors for p in parts]),
                   [m for p in parts for m in p.sentences], [w for p in parts for w in p.words],
                   np.concatenate(tokens) if tokens else None)


class _ResumeCache:
    """Writes to the embedding cache, which only saves work when a build is interrupted: on a
    full disk it is removed, and the build goes on without it (its vectors are in memory)."""

    def __init__(self, index_dir: Path):
        self.folder = index_dir / "cache"
        self.on = True

    def write(self, action, *args) -> None:
        if not self.on:
            return
        try:
            action(*args)
        except (OSError, RuntimeError) as exc:
            if not generations.is_disk_full(exc):
                raise
            self.on = False
            shutil.rmtree(self.folder, ignore_errors=True)


def _same_projection(a: Projection, b: Projection) -> bool:
    return a.components.shape == b.components.shape and np.array_equal(a.to_array(), b.to_array())


def _word_cache_records(batch: list[str], projected) -> tuple[list[str], np.ndarray]:
    """Cache rows per chunk: one per word (vector, id), then a header row holding the count, so
    a header is only ever written after the words it vouches for."""
    keys, rows = [], []
    for key, (matrix, ids) in zip(batch, projected):
        header = np.zeros((1, PROJECTED_DIMS + 1), np.float32)
        header[0, 0] = len(ids)
        rows += [np.hstack([matrix, ids.astype(np.float32)[:, None]]), header]
        keys += [_word_key(key, i) for i in range(len(ids))] + [_word_key(key, "count")]
    return keys, np.concatenate(rows) if rows else np.zeros((0, PROJECTED_DIMS + 1), np.float32)


def _cached_words(cached: dict[str, np.ndarray], chunk_hash: str) -> WordParts | None:
    header = cached.get(_word_key(chunk_hash, "count"))
    if header is None:
        return None
    keys = [_word_key(chunk_hash, i) for i in range(int(header[0]))]
    if not all(k in cached for k in keys):
        return None
    rows = np.stack([cached[k] for k in keys]) if keys else np.zeros((0, PROJECTED_DIMS + 1), np.float32)
    return (*quantize(rows[:, :PROJECTED_DIMS]), rows[:, PROJECTED_DIMS].astype(np.int32))


def _word_key(chunk_hash: str, index) -> str:
    return hashlib.sha1(f"{chunk_hash}:w{index}".encode()).hexdigest()


def hash_rows(chunks) -> dict[str, int]:
    """Row of each chunk text hash (the last, for a text in several chunks)."""
    if isinstance(chunks, ChunkTable):
        return {h.decode("ascii"): row for row, h in enumerate(chunks.hashes.tolist())}
    return {c.hash: row for row, c in enumerate(chunks)}


def _word_vectors(chunks, previous, fresh_words, projection, vocabulary_size, dimension):
    """Word vectors of every chunk of the new generation, in chunk order: a TokenVectors, or
    for an update a PlannedWords (qa.index.chunk_plan)."""
    if projection is None:  # no chunk at all, nothing to fit on
        projection = Projection.fit(np.zeros((0, dimension), np.float32))
    if isinstance(chunks, PlannedChunks) and previous is not None:
        # Kept chunks' words stay where they are, copied file to file when written.
        return PlannedWords(chunks, [fresh_words[c.hash] for c in chunks.fresh], projection,
                            vocabulary_size)
    parts = [fresh_words[c.hash] if c.hash in fresh_words
             else previous.words.of_chunk(previous.row_of_id[c.id]) for c in chunks]
    dims = projection.components.shape[0]
    return TokenVectors(
        projection,
        np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, dims), np.int8),
        np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.float16),
        np.concatenate([p[2] for p in parts]).astype(np.int32) if parts else np.zeros(0, np.int32),
        np.asarray([len(p[2]) for p in parts], dtype=np.int32),
        vocabulary_size,
    )


def embedder_vocabulary(embedder) -> int:
    """Vocabulary size for word ids (1 for an embedder without word vectors: it has no ids)."""
    return int(getattr(embedder, "vocabulary_size", 1))


def _sentence_key(chunk_hash: str, index: int) -> str:
    return hashlib.sha1(f"{chunk_hash}:{index}".encode()).hexdigest()


def _sentence_matrix(chunks, previous, fresh_sentences, dimension, copies: dict | None = None) -> np.ndarray:
    """Sentence vectors of every chunk of the new generation, in chunk order; ``copies`` gets
    the runs of rows of the previous generation's file they hold (generations.write_generation)."""
    if isinstance(chunks, PlannedChunks) and previous is not None:
        # Kept chunks' sentences a slice per run of rows, as stored (float16).
        first = np.append(previous.sentence_first, len(previous.sentence_vectors))
        parts = [(np.asarray(fresh_sentences[c.hash], dtype=np.float16).reshape(-1, dimension),)
                 for c in chunks.fresh]
        copied: list = []
        matrix, = gather([previous.sentence_vectors], first, chunks.runs(), parts, copied=copied)
        if copies is not None:
            copies["sentences.npy"] = (previous.path / "sentences.npy", copied)
        return matrix.astype(np.float16, copy=False)
    parts = []
    for chunk in chunks:
        if chunk.hash in fresh_sentences:
            parts.append(np.asarray(fresh_sentences[chunk.hash], dtype=np.float16))
        else:  # kept unchanged from the previous generation
            parts.append(previous.chunk_sentence_vectors(previous.row_of_id[chunk.id]))
    if not parts:
        return np.zeros((0, dimension), dtype=np.float16)
    # float16 parts joined as float16: one float32 part would make the whole join float32 first.
    return np.concatenate(parts).astype(np.float16, copy=False)


def _faiss_index(previous, dropped_ids, fresh, vectors, dimension):
    """The chunk index of the new generation (qa.index.ann: fp16, exact or approximate by size)."""
    from qa.index import ann

    return ann.updated(previous.vectors if previous is not None else None, dropped_ids,
                       np.asarray([c.id for c in fresh], dtype=np.int64), vectors, dimension,
                       previous.path / "vectors.faiss" if previous is not None else None)
