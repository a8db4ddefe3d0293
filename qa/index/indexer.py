"""Build or update the index incrementally: the only writer of the index folder. The vectors of
new chunks are assembled in qa.index.vectors, long texts are chunked in qa.index.chunk_batches,
and what a build reports is in qa.index.reports.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from qa.index import caches, generations, locking, records, store
from qa.index.chunk_plan import PlannedChunks, PlannedWords, previous_ids, rows_by_source
from qa.index.chunk_batches import _ChunkingProgress, chunk_in_batches
from qa.ingest.boilerplate import SEGMENT_RULES
from qa.ingest.chunking import default_token_counter
from qa.config import DEFAULT_MAX_FILE_BYTES, MAX_CHUNK_TOKENS
from qa.ingest.documents import (UNREADABLE, CorpusFile, FileGone, SkipFile, load_document,
                                 read_corpus_file, scan_corpus)
from qa.index.embedder import Embedder
from qa.index.kept_documents import AsRead, BuiltDocuments, as_loaded
from qa.errors import DiskFull, IndexDamaged, IndexIncompatible, IndexMissing, QAError
from qa.index.late_interaction import TOKENS_FORMAT
from qa.index.lexical import TERM_RULES
from qa.ingest.readers import FORMATS
from qa.index.reports import IndexProgress, Progress, SyncReport
from qa.index.reuse import plan_segments, term_counts_for, word_doc_freq, word_forms_for
from qa.index.records import ChunkRecord, StoredDocument, search_text
from qa.index.term_counts import bm25_from_counts
from qa.index.vectors import (_faiss_index, _sentence_matrix, _vectors_for, _word_vectors,
                              cache_name, embedder_vocabulary)

# Change a value here whenever sentence splitting or chunk packing changes: an unchanged document
# keeps its old chunks and sentence spans, so an index built by the old rules must be refused.
# (Boilerplate changes bump qa.ingest.boilerplate.SEGMENT_RULES instead: documents are then
# segmented again and compared.)
CHUNKING = {"max_tokens": MAX_CHUNK_TOKENS, "sentences": "blingfire-unwrapped-lines-markers",
            "boilerplate": 2, "sections": "headings-start-chunks"}


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


def corpus_key(corpus: Path) -> str:
    return str(Path(corpus).expanduser().resolve())


Warn = Callable[[str, str], None]


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
    stamps = {s: (m["size"], m["mtime_ns"]) for s, m in previous.manifest["documents"].items()}
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
    return previous_or_none(lambda: store.load_snapshot(index_dir, expected),
                            lambda: generations.read_manifest(index_dir), index_dir, expected, warn)


def previous_or_none(load, read_manifest, where, expected: dict, warn: Warn):
    """``load()``'s generation to build on, or None when there is none or it cannot serve
    (damaged, made by an older qa, embedded by another encoder): then the build starts over, with
    a warning saying why. Another incompatibility (another model, folder) is raised."""
    try:
        return load()
    except IndexMissing:
        return None
    except IndexDamaged:
        # Not a skipped file: an empty source tells the front end to print the reason alone.
        warn("", f"the index in {where} is damaged; rebuilding it from the documents")
        return None
    except IndexIncompatible:
        manifest = read_manifest()
        if store.is_older_schema(manifest):
            # Made by an older qa with the same documents in mind: nothing to keep, rebuild.
            warn("", f"the index in {where} was made by an older qa; rebuilding it")
            return None
        if store.other_encoder(manifest, expected):
            # The same model run by another encoder: every vector is embedded again, so that
            # questions and documents are encoded alike.
            warn("", f"the index in {where} was embedded by another encoder of the model "
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
    # The manifest's entries, not the documents: a large generation's are read on demand.
    stored = previous.manifest["documents"] if previous is not None else {}
    skipped = previous.manifest.get("skipped", {}) if previous is not None else {}
    nothing = {"size": None, "mtime_ns": None, "sha256": None}
    known = [skipped.get(f.source) or stored.get(f.source, nothing) for f in files]
    seen = [(m["size"], m["mtime_ns"]) == (f.size, f.mtime_ns) and m["sha256"] != UNREADABLE
            for f, m in zip(files, known)]
    kept, result, contents = [], {}, {}
    to_read, read = seen.count(False), 0
    for file, meta, trusted in zip(files, known, seen):
        digest = meta["sha256"]
        if not trusted:
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
    stored = previous.manifest["documents"]
    seen = set(stored) | set(old_skipped)
    if {f.source for f in files} != seen:
        return False
    for source, digest in hashes.items():
        old = stored.get(source)
        old_digest = old["sha256"] if old else old_skipped[source]["sha256"]
        if digest != old_digest:
            return False
    return True


def _build(index_dir, embedder, expected, files, hashes, contents, previous, old_skipped, progress,
           warn, began):
    report = progress or (lambda p: None)
    old_docs = previous.documents if previous else {}
    # The previous generation's documents as its manifest lists them: a document whose hash is
    # the same is kept without being read (a large generation's texts are read on demand).
    stored = previous.manifest["documents"] if previous else {}
    texts: dict[str, tuple[CorpusFile, object]] = {}  # the document read, or None when kept
    skipped: dict[str, dict] = {}
    for done, file in enumerate(files, 1):
        digest = hashes[file.source]
        if file.source in stored and stored[file.source]["sha256"] == digest:
            texts[file.source] = (file, None)
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

    unchanged = {s for s, (_, doc) in texts.items() if doc is None}
    new_texts = [doc.text for s, (_, doc) in texts.items() if doc is not None]
    chunking = _ChunkingProgress(report, sum(map(len, new_texts)))
    segments, kept = plan_segments(AsRead(texts, old_docs), unchanged, previous)
    counter = default_token_counter()
    old_rows = rows_by_source(previous)
    next_id = int(previous.manifest.get("next_chunk_id", 0)) if previous else 0

    fresh_documents: dict[str, StoredDocument] = {}
    as_stored: set[str] = set()
    chunks = PlannedChunks(previous)  # kept rows of the previous generation, and fresh chunks
    counts = Counter()
    sources: dict[str, list[str]] = {}
    for source, (file, doc) in texts.items():
        meta = stored.get(source)
        kind = "unchanged" if doc is None else "updated" if meta else "added"
        counts[kind] += 1
        if kind != "unchanged":
            sources.setdefault(kind, []).append(source)
        # A document not segmented again keeps its segments (plan_segments).
        segments_hash = _digest(json.dumps(segments[source])) if source in segments \
            else meta["segments_hash"]
        if doc is None and segments_hash == meta["segments_hash"]:
            if (file.size, file.mtime_ns) == (meta["size"], meta["mtime_ns"]):
                as_stored.add(source)  # kept as stored, never made an object
            else:  # touched, not changed: the same document under its new stamp
                fresh_documents[source] = dataclasses.replace(
                    old_docs[source], size=file.size, mtime_ns=file.mtime_ns)
            chunks.keep(old_rows.get(source, ()))
            continue
        doc = doc if doc is not None else old_docs[source]  # segmented again for boilerplate
        fresh_documents[source] = StoredDocument(
            source, doc.text, doc.sha256, doc.format, file.size, file.mtime_ns, segments_hash,
            tuple(doc.page_starts), tuple(doc.blocks), doc.title, tuple(doc.locators), doc.author,
            doc.date)
        for span in chunk_in_batches(doc.text, segments[source], counter, chunking.reached,
                                     doc.blocks, doc.title):
            text = doc.text[span.start:span.end]
            record = ChunkRecord(next_id, source, span.start, span.end,
                                 _chunk_hash(text, span), span.sentences,
                                 span.heading, span.kinds)
            next_id += 1
            chunks.add(record)
        chunking.document_done(len(doc.text))
    documents = BuiltDocuments(list(texts), fresh_documents, as_stored, previous)
    removed_sources = set(old_docs) - set(documents)
    fresh = chunks.fresh
    dropped = previous_ids(previous)[chunks.dropped_rows()] if previous else []

    vectors, fresh_sentences, fresh_words, projection, embedded = _vectors_for(
        fresh, documents, previous, embedder, index_dir, report)
    copies: dict = {}  # runs of rows kept from the previous generation's files
    sentence_vectors = _sentence_matrix(chunks, previous, fresh_sentences, embedder.dimension, copies)
    vocabulary = previous.words.vocabulary_size if previous is not None else embedder_vocabulary(embedder)
    words = _word_vectors(chunks, previous, fresh_words, projection, vocabulary, embedder.dimension)
    index = _faiss_index(previous, dropped, fresh, vectors, embedder.dimension)
    report(IndexProgress("writing", 0, 1))
    term_counts = term_counts_for(chunks, documents, previous)
    bm25, doc_freq = bm25_from_counts(term_counts), term_counts.doc_freq
    kept["bm25-tf.npy"], kept["bm25-lengths.npy"] = term_counts.tf, term_counts.lengths
    words.__dict__["doc_freq"] = kept["words-docfreq.npy"] = word_doc_freq(words, chunks, previous)
    forms = word_forms_for(chunks, documents, previous)
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
    final, manifest, structure = generations.write_generation(
        index_dir, manifest, documents, chunks, index, bm25, doc_freq, sentence_vectors, words,
        kept, forms, copies)
    # The generation as a reader would load it, without reading it back (an update's word
    # vectors, which were never joined in memory, mapped from their files).
    if isinstance(words, PlannedWords):
        words = store.loaded_words(final, words.vocabulary_size, kept)
    snapshot = store.IndexSnapshot(final, manifest, *as_loaded(documents, chunks, final, manifest,
                                                               structure),
                                   index, bm25, doc_freq, sentence_vectors, words=words,
                                   kept=kept, derived={"forms": forms})
    generations.remove_leftovers(index_dir, keep=final)
    caches.EmbeddingCache(index_dir, cache_name(embedder), embedder.dimension).clear()
    report(IndexProgress("writing", 1, 1))
    if removed_sources:
        sources["removed"] = sorted(removed_sources)
    return SyncReport(counts["added"], counts["updated"], len(removed_sources), counts["unchanged"],
                      embedded, len(documents), len(chunks), time.perf_counter() - began,
                      generation, {s: m["reason"] for s, m in skipped.items()},
                      {kind: sorted(names) for kind, names in sources.items()}, snapshot)


def _chunk_hash(text: str, span) -> str:
    """What a chunk's vectors depend on: its searched text, and how it is cut into sentences
    (the same words may be one heading in one place and two sentences of a table row in another)."""
    cuts = [(s - span.start, e - span.start) for s, e in span.sentences]
    return _digest(json.dumps([search_text(text, span.heading), cuts, span.kinds]))


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()
