"""Build or update the index incrementally: the only writer of the index folder."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from qa.index import caches, generations, locking, records, store
from qa.ingest.boilerplate import SEGMENT_RULES
from qa.ingest.chunking import ChunkSpan, chunk_segments, default_token_counter
from qa.config import DEFAULT_MAX_FILE_BYTES, MAX_CHUNK_TOKENS
from qa.ingest.documents import (UNREADABLE, CorpusFile, FileGone, SkipFile, load_document,
                                 read_corpus_file, scan_corpus)
from qa.index.embedder import Embedder, Encoded, encode_chunks_plainly
from qa.errors import DiskFull, IndexDamaged, IndexIncompatible, IndexMissing, QAError
from qa.index.late_interaction import (
    PROJECTED_DIMS,
    TOKENS_FORMAT,
    Projection,
    TokenVectors,
    quantize,
)
from qa.index.lexical import TERM_RULES
from qa.ingest.readers import FORMATS
from qa.index.reuse import plan_segments, term_counts_for, word_doc_freq
from qa.index.records import ChunkRecord, Span, StoredDocument, search_text
from qa.index.term_counts import bm25_from_counts

# Change a value here whenever sentence splitting or chunk packing changes: an unchanged document
# keeps its old chunks and sentence spans, so an index built by the old rules must be refused.
# (Boilerplate changes bump qa.ingest.boilerplate.SEGMENT_RULES instead: documents are then
# segmented again and compared.)
CHUNKING = {"max_tokens": MAX_CHUNK_TOKENS, "sentences": "blingfire-unwrapped-lines-markers",
            "boilerplate": 2, "sections": "headings-start-chunks"}
EMBED_BATCH = 128
# Chunks embedded between two progress reports: the model's own batch (sentence-transformers
# encodes 32 texts at a time), so the bar moves as the model works and the vectors are those one
# call for the whole batch gives.
PROGRESS_BATCH = 32
LOADING_MODEL = "loading the model"


@dataclass(frozen=True)
class IndexProgress:
    """Posted while a build runs: ``phase`` is "reading", "chunking" (only for long texts),
    LOADING_MODEL (no counts: total 0), "embedding" or "writing"; ``unit`` names what is
    counted when the phase alone does not say it."""

    phase: str
    done: int
    total: int
    unit: str = ""


def time_left(progress: IndexProgress, elapsed: float) -> str:
    """"about 3 min left" for a phase that has run ``elapsed`` seconds at its pace so far; empty
    while it is too soon to tell, and for a phase that takes less than a quarter of a minute."""
    done, total = progress.done, progress.total
    if done <= 0 or done >= total or elapsed < 3:
        return ""
    left = elapsed * (total - done) / done
    if elapsed + left < 15:
        return ""
    if left < 60:
        return f"about {max(5, round(left / 5) * 5)} s left"
    minutes = round(left / 60)
    if minutes < 60:
        return f"about {minutes} min left"
    return f"about {minutes // 60} h {minutes % 60} min left"


@dataclass(frozen=True)
class SyncReport:
    added: int
    updated: int
    removed: int
    unchanged: int
    chunks_embedded: int
    documents: int
    chunks: int
    seconds: float
    generation: int
    skipped: dict[str, str] = field(default_factory=dict)
    # The documents behind the counts: {"added": [...], "updated": [...], "removed": [...]}.
    sources: dict[str, list[str]] = field(default_factory=dict)
    # The generation written, already loaded (None when nothing was written).
    snapshot: object = field(default=None, repr=False, compare=False)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unchanged} unchanged; {self.chunks_embedded} chunks embedded; "
            f"{self.documents} documents, {self.chunks} chunks in {self.seconds:.1f} s"
        )

    def to_json(self) -> dict:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "chunks_embedded": self.chunks_embedded,
            "documents": self.documents,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
            "generation": self.generation,
            "skipped": self.skipped,
            **{f"{kind}_sources": self.sources.get(kind, []) for kind in ("added", "updated", "removed")},
        }

    def changes(self, limit: int = 10) -> list[str]:
        """One line per kind of change naming the documents ("added: a.md, b.md"), at most
        ``limit`` names each."""
        return [f"{kind}: {name_list(self.sources[kind], limit)}"
                for kind in ("added", "updated", "removed") if self.sources.get(kind)]


def name_list(names: list[str], limit: int) -> str:
    """``names`` joined with commas, the first ``limit`` of them ("a.md, b.md and 3 more")."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def expected_params(embedder: Embedder, corpus: Path | None = None) -> dict:
    """What an index must have been built with to be used here; with ``corpus``, also the folder
    it indexes (an index belongs to one folder: see store.check_compatible)."""
    params = {"model": embedder.name, "dimension": embedder.dimension, "chunking": CHUNKING,
              "word_vectors": TOKENS_FORMAT}
    encoder = getattr(embedder, "encoder", None)
    if encoder:
        params["encoder"] = encoder
    if corpus is not None:
        params["corpus"] = corpus_key(corpus)
    return params


def cache_name(embedder: Embedder) -> str:
    """What an unfinished build's cached vectors are filed under: the model and its encoder."""
    encoder = getattr(embedder, "encoder", None) or store.FP32
    return embedder.name if encoder == store.FP32 else f"{embedder.name} [{encoder}]"


def corpus_key(corpus: Path) -> str:
    return str(Path(corpus).expanduser().resolve())


Warn = Callable[[str, str], None]
Progress = Callable[[IndexProgress], None]


def sync(
    corpus: Path,
    index_dir: Path,
    embedder: Embedder,
    *,
    rebuild: bool = False,
    progress: Progress | None = None,
    warn: Warn | None = None,
    on_wait: Callable[[], None] | None = None,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
    loaded: store.IndexSnapshot | None = None,
) -> SyncReport:
    """Bring the index in ``index_dir`` up to date with ``corpus``.

    Unchanged documents keep their chunks and vectors; a chunk whose text was embedded before (in
    the previous generation or by an interrupted build) is not embedded again. When nothing
    changed, nothing is written and the model is never loaded. ``loaded``: the live generation
    as the caller already holds it (an engine that answers from it), used instead of reading it
    again when it is still the live one.
    """
    began = time.perf_counter()
    expected = expected_params(embedder, corpus)
    warn = warn or (lambda source, reason: None)
    with locking.IndexLock(index_dir, on_wait=on_wait):
        try:
            return _sync_locked(corpus, index_dir, embedder, expected, rebuild, progress, warn,
                                max_bytes, began, loaded)
        except (DiskFull, OSError, RuntimeError) as exc:
            if locking.is_read_only(exc, index_dir):
                raise locking.read_only(index_dir, exc) from None
            if not (isinstance(exc, DiskFull) or generations.is_disk_full(exc)):
                raise
            # Give the space back: the abandoned build and the embeddings cached for resuming it.
            generations.remove_leftovers(index_dir, keep=generations.current_path_safe(index_dir))
            caches.EmbeddingCache(index_dir, cache_name(embedder), embedder.dimension).clear()
            needed = exc.needed if isinstance(exc, DiskFull) else None
            raise DiskFull(generations.disk_full_message(index_dir, needed), needed) from None


def _sync_locked(corpus, index_dir, embedder, expected, rebuild, progress, warn, max_bytes, began,
                 loaded=None):
    """sync() with the lock held."""
    recovered = generations.recover_pointer(index_dir)
    if recovered is not None:
        warn("", f"the index pointer {index_dir / generations.CURRENT} was missing; restored it to "
             f"generation {int(recovered.name[len(generations.GEN_PREFIX):])}, the newest complete one")
    if rebuild:
        previous = None
    elif _still_live(loaded, index_dir, expected):
        previous = loaded
    else:
        previous = _load_previous(index_dir, expected, warn)
    generations.remove_leftovers(
        index_dir, keep=previous.path if previous else generations.current_path_safe(index_dir))
    unreadable: dict[str, str] = {}
    files = scan_corpus(corpus, max_bytes, warn, unreadable)
    files = sorted(files + _kept_from(unreadable, corpus, previous), key=lambda f: f.source)
    if not files:
        cannot = "".join(f"; cannot read {folder} ({reason})" for folder, reason in unreadable.items())
        kinds = ", ".join(s for s in FORMATS if s not in (".text", ".markdown", ".htm", ".xhtml"))
        raise QAError(f"no documents ({kinds}) in corpus folder {corpus}{cannot}")
    for folder, reason in sorted(unreadable.items()):
        kept = sum(in_folders(f.source, [folder]) for f in files)
        warn("", f"cannot read the folder {folder} ({reason}); " + (
            f"the {kept} document{'s' if kept != 1 else ''} indexed from it {'are' if kept != 1 else 'is'} kept"
            if kept else "its files are not indexed"))
    files, hashes, contents = _hashes(files, previous, max_bytes, warn, progress)
    old_skipped = previous.manifest.get("skipped", {}) if previous else {}
    if previous is not None and _unchanged(files, hashes, previous, old_skipped, expected):
        for source, meta in old_skipped.items():
            warn(source, meta["reason"])
        return SyncReport(0, 0, 0, len(previous.documents), 0, len(previous.documents),
                          len(previous.chunks), time.perf_counter() - began,
                          previous.generation, {s: m["reason"] for s, m in old_skipped.items()})
    return _build(index_dir, embedder, expected, files, hashes, contents, previous,
                  old_skipped, progress, warn, began)


def _kept_from(unreadable: dict[str, str], corpus: Path, previous) -> list[CorpusFile]:
    """The files the previous generation holds from folders that cannot be listed now, as they
    were: a folder that cannot be read is not a deleted one."""
    if not unreadable or previous is None:
        return []
    stamps = {s: (d.size, d.mtime_ns) for s, d in previous.documents.items()}
    stamps.update({s: (m["size"], m["mtime_ns"]) for s, m in previous.manifest.get("skipped", {}).items()})
    root = Path(corpus).resolve()
    return [CorpusFile(root / source, source, size, mtime)
            for source, (size, mtime) in stamps.items() if in_folders(source, unreadable)]


def in_folders(source: str, folders) -> bool:
    """Whether the document ``source`` lies in one of ``folders`` (paths relative to the corpus)."""
    return any(source.startswith(folder + "/") for folder in folders)


def _still_live(loaded, index_dir: Path, expected: dict) -> bool:
    """Whether ``loaded`` is the live generation, made for ``expected`` (its files were checked
    when it was loaded, and a generation is never written again)."""
    if loaded is None or generations.current_path_safe(index_dir) != loaded.path:
        return False
    try:
        store.check_compatible(loaded.manifest, expected)
    except IndexIncompatible:
        return False
    return (loaded.path / "manifest.json").is_file()


def _load_previous(index_dir: Path, expected: dict, warn: Warn):
    try:
        return store.load_snapshot(index_dir, expected)
    except IndexMissing:
        return None
    except IndexDamaged:
        # Not a skipped file: an empty source tells the front end to print the reason alone.
        warn("", f"the index in {index_dir} is damaged; rebuilding it from the documents")
        return None
    except IndexIncompatible:
        manifest = generations.read_manifest(index_dir)
        if store.is_older_schema(manifest):
            # Made by an older qa with the same documents in mind: nothing to keep, rebuild.
            warn("", f"the index in {index_dir} was made by an older qa; rebuilding it")
            return None
        if store.other_encoder(manifest, expected):
            # The same model run by another encoder: every vector is embedded again, so that
            # questions and documents are encoded alike.
            warn("", f"the index in {index_dir} was embedded by another encoder of the model "
                 f"({store.encoder_of(manifest)}); rebuilding it")
            return None
        raise


def _hashes(files: list[CorpusFile], previous, max_bytes: int, warn: Warn,
            progress: Progress | None = None):
    """(the files still there, their content hashes, the bytes of those the build has not seen).

    Size + mtime are trusted for files the previous build already hashed; any other file is
    opened once, and the bytes hashed are the bytes the build reads (read_corpus_file). A file
    deleted or swapped for a symlink since the scan is left out with a warning; one that cannot
    be read is hashed as UNREADABLE, its SkipFile standing for its bytes (the build skips it).
    """
    known = {}
    if previous is not None:
        known = {s: (d.size, d.mtime_ns, d.sha256) for s, d in previous.documents.items()}
        for source, meta in previous.manifest.get("skipped", {}).items():
            known[source] = (meta["size"], meta["mtime_ns"], meta["sha256"])
    kept, result, contents = [], {}, {}

    def unseen(file: CorpusFile) -> bool:
        size, mtime, digest = known.get(file.source, (None, None, None))
        return (size, mtime) != (file.size, file.mtime_ns) or digest == UNREADABLE

    to_read, read = sum(map(unseen, files)), 0
    for file in files:
        size, mtime, digest = known.get(file.source, (None, None, None))
        if unseen(file):
            read += 1
            if progress is not None:  # the files not seen before are read here, once
                progress(IndexProgress("checking", read, to_read, "files"))
            try:
                data, fresh = read_corpus_file(file, max_bytes)
            except FileGone as exc:
                warn(file.source, str(exc))
                continue
            except SkipFile as exc:  # no permission, an I/O error: maybe readable next time
                data, fresh = exc, UNREADABLE
            if fresh != digest:  # new or edited: the build extracts these very bytes
                contents[file.source] = data
            digest = fresh
        kept.append(file)
        result[file.source] = digest
    return kept, result, contents


def _unchanged(files, hashes, previous, old_skipped, expected) -> bool:
    if store.older_terms(previous.manifest):
        return False  # same documents, but BM25 must be recomputed under the new word rules
    if previous.manifest.get("corpus") != expected["corpus"]:
        return False  # a folder that moved (or an index from before folders were recorded)
    seen = set(previous.documents) | set(old_skipped)
    if {f.source for f in files} != seen:
        return False
    for source, digest in hashes.items():
        old = previous.documents.get(source)
        old_digest = old.sha256 if old else old_skipped[source]["sha256"]
        if digest != old_digest:
            return False
    return True


def _build(index_dir, embedder, expected, files, hashes, contents, previous, old_skipped, progress,
           warn, began):
    report = progress or (lambda p: None)
    old_docs = previous.documents if previous else {}
    texts: dict[str, tuple[CorpusFile, object]] = {}
    skipped: dict[str, dict] = {}
    for done, file in enumerate(files, 1):
        digest = hashes[file.source]
        old = old_docs.get(file.source)
        if old is not None and old.sha256 == digest:
            texts[file.source] = (file, old)
        elif file.source in old_skipped and old_skipped[file.source]["sha256"] == digest:
            skipped[file.source] = old_skipped[file.source]
            warn(file.source, old_skipped[file.source]["reason"])
        else:
            try:
                data = contents.pop(file.source, None)
                if isinstance(data, SkipFile):
                    raise data
                texts[file.source] = (file, load_document(file, digest, data))
            except SkipFile as exc:
                warn(file.source, str(exc))
                skipped[file.source] = {"reason": str(exc), "sha256": digest,
                                        "size": file.size, "mtime_ns": file.mtime_ns}
        report(IndexProgress("reading", done, len(files)))
    if not texts:
        raise QAError("no readable documents in the corpus folder")

    unchanged = {s for s, (_, doc) in texts.items() if s in old_docs and old_docs[s].sha256 == doc.sha256}
    new_texts = [doc.text for s, (_, doc) in texts.items() if s not in unchanged]
    chunking = _ChunkingProgress(report, sum(map(len, new_texts)))
    segments, kept = plan_segments({s: doc for s, (_, doc) in texts.items()}, unchanged, previous)
    counter = default_token_counter()
    old_chunks: dict[str, list[ChunkRecord]] = {}
    for chunk in previous.chunks if previous else ():
        old_chunks.setdefault(chunk.source, []).append(chunk)
    next_id = int(previous.manifest.get("next_chunk_id", 0)) if previous else 0

    documents: dict[str, StoredDocument] = {}
    chunks: list[ChunkRecord] = []
    fresh: list[ChunkRecord] = []
    counts = Counter()
    sources: dict[str, list[str]] = {}
    for source, (file, doc) in texts.items():
        old = old_docs.get(source)
        # A document not segmented again keeps its segments (plan_segments).
        segments_hash = _digest(json.dumps(segments[source])) if source in segments else old.segments_hash
        kind = "unchanged" if old and old.sha256 == doc.sha256 else "updated" if old else "added"
        counts[kind] += 1
        if kind != "unchanged":
            sources.setdefault(kind, []).append(source)
        documents[source] = StoredDocument(source, doc.text, doc.sha256, doc.format, file.size,
                                           file.mtime_ns, segments_hash, tuple(doc.page_starts),
                                           tuple(doc.blocks), doc.title, tuple(doc.locators),
                                           doc.author, doc.date)
        if old and old.sha256 == doc.sha256 and old.segments_hash == segments_hash:
            chunks.extend(old_chunks.get(source, ()))
            continue
        for span in chunk_in_batches(doc.text, segments[source], counter, chunking.reached,
                                     doc.blocks, doc.title):
            text = doc.text[span.start:span.end]
            record = ChunkRecord(next_id, source, span.start, span.end,
                                 _chunk_hash(text, span), span.sentences,
                                 span.heading, span.kinds)
            next_id += 1
            chunks.append(record)
            fresh.append(record)
        chunking.document_done(len(doc.text))
    removed_sources = set(old_docs) - set(documents)
    keep_ids = {c.id for c in chunks}
    dropped = [c.id for c in (previous.chunks if previous else ()) if c.id not in keep_ids]

    vectors, fresh_sentences, fresh_words, projection, embedded = _vectors_for(
        fresh, documents, previous, embedder, index_dir, report)
    sentence_vectors = _sentence_matrix(chunks, previous, fresh_sentences, embedder.dimension)
    vocabulary = previous.words.vocabulary_size if previous is not None else embedder_vocabulary(embedder)
    words = _word_vectors(chunks, previous, fresh_words, projection, vocabulary, embedder.dimension)
    index = _faiss_index(previous, dropped, fresh, vectors, embedder.dimension)
    report(IndexProgress("writing", 0, 1))
    term_counts = term_counts_for(chunks, documents, previous)
    bm25, doc_freq = bm25_from_counts(term_counts), term_counts.doc_freq
    kept["bm25-tf.npy"], kept["bm25-lengths.npy"] = term_counts.tf, term_counts.lengths
    words.__dict__["doc_freq"] = kept["words-docfreq.npy"] = word_doc_freq(words, chunks, previous)
    generation = generations.next_generation(index_dir)
    manifest = {
        "schema": records.SCHEMA,
        **expected,
        "generation": generation,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "next_chunk_id": next_id,
        "bm25": store.BM25_PARAMS,
        "terms": TERM_RULES,
        "vocabulary": words.vocabulary_size,
        "segment_rules": SEGMENT_RULES,
        "skipped": skipped,
    }
    seconds = time.perf_counter() - began
    manifest["build_seconds"] = round(seconds, 3)
    final = generations.write_generation(index_dir, manifest, documents, chunks, index, bm25,
                                         doc_freq, sentence_vectors, words, kept)
    # The generation as a reader would load it, without reading it back.
    snapshot = store.IndexSnapshot(final, generations.manifest_at(final), documents, chunks, index,
                                   bm25, doc_freq, sentence_vectors, words=words, kept=kept)
    generations.remove_leftovers(index_dir, keep=final)
    caches.EmbeddingCache(index_dir, cache_name(embedder), embedder.dimension).clear()
    report(IndexProgress("writing", 1, 1))
    if removed_sources:
        sources["removed"] = sorted(removed_sources)
    return SyncReport(counts["added"], counts["updated"], len(removed_sources), counts["unchanged"],
                      embedded, len(documents), len(chunks), time.perf_counter() - began,
                      generation, {s: m["reason"] for s, m in skipped.items()},
                      {kind: sorted(names) for kind, names in sources.items()}, snapshot)


# Text handed to the chunker at once: splitting sentences and counting word pieces for a whole
# 200 MB file at once took 6 GB; a batch at a time keeps that to a few tens of MB.
CHUNK_BATCH_CHARS = 1 << 20


def chunk_in_batches(text: str, segments: list[Span], counter, reached=None, blocks=(),
                     title: str = "") -> Iterator[ChunkSpan]:
    """chunk_segments over ``segments`` a batch of about CHUNK_BATCH_CHARS at a time, telling
    ``reached(offset)`` how far into ``text`` it got after each batch.

    A chunk never spans two segments, so batches of whole segments give the chunks one call
    would. A longer segment (a long file without blank lines) is cut at line breaks ending a
    sentence, which no sentence or wrapped paragraph crosses. A structured document (HTML,
    Markdown: ``blocks``) is chunked in one call, which follows its headings from the first.
    """
    if blocks:
        yield from chunk_segments(text, segments, counter, MAX_CHUNK_TOKENS, blocks, title)
        if reached:
            reached(len(text))
        return
    batch: list[Span] = []
    size = 0
    for piece in (p for segment in segments for p in _pieces(text, segment)):
        batch.append(piece)
        size += piece[1] - piece[0]
        if size >= CHUNK_BATCH_CHARS:
            yield from chunk_segments(text, batch, counter, MAX_CHUNK_TOKENS)
            if reached:
                reached(piece[1])
            batch, size = [], 0
    if batch:
        yield from chunk_segments(text, batch, counter, MAX_CHUNK_TOKENS)


_LINE_ENDS_SENTENCE = re.compile(r"[.!?…。！？]['\"’”»)\]]*[ \t]*\n")


def _pieces(text: str, segment: Span) -> Iterator[Span]:
    start, end = segment
    while end - start > 2 * CHUNK_BATCH_CHARS:
        cut = _LINE_ENDS_SENTENCE.search(text, start + CHUNK_BATCH_CHARS, end)
        if cut is None:
            break
        yield start, cut.end() - 1
        start = cut.end()
    yield start, end


class _ChunkingProgress:
    """Progress through the text to chunk (in KB, or MB from 10 MB), reported when there is enough
    of it to wait for."""

    def __init__(self, report: Progress, total_chars: int):
        self.report = report if total_chars > CHUNK_BATCH_CHARS else None
        self.total = total_chars
        self.before = 0  # characters of the documents already chunked
        self._post(0)

    def reached(self, offset: int) -> None:
        self._post(self.before + offset)

    def document_done(self, length: int) -> None:
        self.before += length
        self.total = max(self.total, self.before)  # a document re-chunked for boilerplate only
        self._post(self.before)

    def _post(self, done: int) -> None:
        if self.report is not None:
            unit, size = ("MB", 1 << 20) if self.total >= 10 << 20 else ("KB", 1 << 10)
            total = -(-self.total // size)
            self.report(IndexProgress("chunking", total if done >= self.total else done // size,
                                      total, unit))


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
    if previous is not None:
        reusable = {c.hash: row for row, c in enumerate(previous.chunks)}
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


def _word_vectors(chunks, previous, fresh_words, projection, vocabulary_size, dimension) -> TokenVectors:
    """Word vectors of every chunk of the new generation, in chunk order."""
    parts = [fresh_words[c.hash] if c.hash in fresh_words
             else previous.words.of_chunk(previous.row_of_id[c.id]) for c in chunks]
    if projection is None:  # no chunk at all, nothing to fit on
        projection = Projection.fit(np.zeros((0, dimension), np.float32))
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


def _sentence_matrix(chunks, previous, fresh_sentences, dimension) -> np.ndarray:
    """Sentence vectors of every chunk of the new generation, in chunk order."""
    parts = []
    for chunk in chunks:
        if chunk.hash in fresh_sentences:
            parts.append(fresh_sentences[chunk.hash])
        else:  # kept unchanged from the previous generation
            parts.append(previous.chunk_sentence_vectors(previous.row_of_id[chunk.id]))
    if not parts:
        return np.zeros((0, dimension), dtype=np.float16)
    return np.concatenate(parts).astype(np.float16)


def _faiss_index(previous, dropped_ids, fresh, vectors, dimension):
    import faiss

    if previous is not None:
        # A copy: the previous generation may still be answering questions meanwhile.
        index = faiss.clone_index(previous.vectors)
        if dropped_ids:
            index.remove_ids(np.asarray(dropped_ids, dtype=np.int64))
    else:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
    if fresh:
        index.add_with_ids(vectors, np.asarray([c.id for c in fresh], dtype=np.int64))
    return index


def _chunk_hash(text: str, span) -> str:
    """What a chunk's vectors depend on: its searched text, and how it is cut into sentences
    (the same words may be one heading in one place and two sentences of a table row in another)."""
    cuts = [(s - span.start, e - span.start) for s, e in span.sentences]
    return _digest(json.dumps([search_text(text, span.heading), cuts, span.kinds]))


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()
