"""The generations on disk: the CURRENT pointer and its recovery, reading a manifest and the live
generation (pinned while a build switches it), checking files against their checksums, writing a
whole generation and switching to it atomically, the disk-full checks and messages, and the
removal of abandoned builds.

Layout of ``embeddings/``::

    CURRENT             name of the live generation, replaced atomically (os.replace)
    gen-000007/         one complete index
        manifest.json   schema, model, chunking, generation, documents, checksums of the files
                        (sha256, size, and sampled sha256 of large ones: qa.index.checksums)
        vectors.faiss   IndexIDMap2(IndexFlatIP), ids are stable chunk ids; above
                        ann.FLAT_LIMIT chunks an IVF of fp16 vectors (see qa.index.ann)
        chunks.json     chunk ids, sources, spans, sentence spans, text hashes (columnar)
        documents.json  the extracted text of every document (what offsets index); above
                        tables.COLUMNAR_FROM chunks both are chunks*.npy and documents.txt,
                        read on demand (see qa.index.tables)
        forms.json      how often each word form occurs (the speller's counts)
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
import json
import os
import re
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from qa.index import checksums, chunk_plan, tables
from qa.errors import DiskFull, IndexBusy, IndexDamaged, IndexMissing, QAError
from qa.index.kept_documents import manifest_documents, structure_json, text_size, write_texts
from qa.index.late_interaction import TokenVectors
from qa.index.npy_files import save_vectors
from qa.index.records import (WORD_FILES, ChunkRecord, StoredDocument, _documents_and_chunks,
                              encode_chunks, manifest_problem)

CURRENT = "CURRENT"
BUILD_PREFIX = ".build-"
GEN_PREFIX = "gen-"


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


def _verify_meanwhile(path: Path, manifest: dict):
    """verify_files in a thread, while the caller parses the files (hashing releases the GIL):
    a future whose result() raises IndexDamaged."""
    pool = ThreadPoolExecutor(max_workers=1)
    checking = pool.submit(verify_files, path, manifest)
    pool.shutdown(wait=False)  # the one thread ends with its task
    return checking


# Every generation has these; a manifest that does not list them all cannot vouch for the index.
REQUIRED_FILES = ("chunks.json", "documents.json", "terms.json", "vectors.faiss", "sentences.npy",
                  *WORD_FILES)


def verify_files(path: Path, manifest: dict) -> None:
    """The check made whenever a generation is loaded (raises IndexDamaged): every file has the
    size the manifest records; small files match their sha256 and larger ones the sha256 of
    blocks spread over them (qa.index.checksums: a truncated, replaced or half-overwritten file
    is found, one flipped byte may not be; verify_generation, behind `qa stats`, hashes
    everything). Hashing every byte took 0.24 s at 50k chunks and grows with the index (several
    seconds at a million). A generation whose manifest records no sizes (made before they were)
    is hashed whole, as it always was."""
    files = _listed_files(path, manifest)
    sizes, samples = manifest.get("sizes"), manifest.get("samples")
    if not isinstance(sizes, dict) or not isinstance(samples, dict):
        return verify_all_files(path, manifest)
    for name, digest in files.items():
        if not checksums.matches(path / name, digest, sizes.get(name), samples.get(name)):
            raise IndexDamaged(
                f"index file {path / name} is damaged or missing; run `qa index --rebuild`"
            )


def verify_all_files(path: Path, manifest: dict) -> None:
    """Check every byte of every file of a generation against the manifest's checksums."""
    for name, digest in _listed_files(path, manifest).items():
        if checksums.sha256_of(path / name) != digest:
            raise IndexDamaged(
                f"index file {path / name} is damaged or missing; run `qa index --rebuild`"
            )


def _listed_files(path: Path, manifest: dict) -> dict:
    files = manifest.get("files")
    required = REQUIRED_FILES
    if isinstance(files, dict) and tables.is_columnar(files):
        required = (*tables.COLUMNAR_FILES, *REQUIRED_FILES[2:])
    if not isinstance(files, dict) or any(name not in files for name in required):
        raise IndexDamaged(f"index manifest in {path} lists no checksums; run `qa index --rebuild`")
    return files


def verify_index(index_dir: Path) -> dict:
    """The live manifest, after checking every file it lists (for commands that load nothing)."""
    return read_live(index_dir, verify_generation)


def verify_generation(path: Path) -> dict:
    """The manifest of the generation folder ``path``, after checking every file it lists."""
    manifest = manifest_at(path)
    # Without its samples a manifest's files are hashed whole (see verify_files).
    verify_files(path, {key: value for key, value in manifest.items() if key != "samples"})
    try:
        if tables.is_columnar(manifest["files"]):
            tables.load_tables(path, manifest, {})
        else:
            documents_json = json.loads((path / "documents.json").read_text(encoding="utf-8"))
            chunks_json = json.loads((path / "chunks.json").read_text(encoding="utf-8"))
            _documents_and_chunks(manifest, documents_json, chunks_json)
    except (OSError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IndexDamaged(f"index in {path} is inconsistent ({type(exc).__name__}); "
                           "run `qa index --rebuild`") from None
    return manifest


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
    forms: dict[str, int] | None = None,
    copies: dict | None = None,
) -> tuple[Path, dict, dict]:
    """Write a complete generation beside the live one, then switch CURRENT to it atomically.
    Returns its folder, and its manifest and structure.json as written (a build hands them to
    its snapshot rather than reading them back: 0.35 s for the manifest alone at 50k documents).

    ``copies``: {file name: (the previous generation's file, runs of rows it holds)}, copied
    file to file (qa.index.npy_files). Raises DiskFull, before writing anything when the disk
    plainly lacks the room; what a failed attempt left behind is for remove_leftovers.
    """
    needed = generation_bytes(documents, chunks, vectors, bm25, doc_freq, sentence_vectors, words)
    if free_bytes(index_dir) < needed:
        raise DiskFull(disk_full_message(index_dir, needed), needed)
    try:
        return _write_generation(index_dir, manifest, documents, chunks, vectors, bm25, doc_freq,
                                 sentence_vectors, words, kept or {}, forms, copies)
    except (OSError, RuntimeError) as exc:  # FAISS reports a failed write as a RuntimeError
        if not is_disk_full(exc):
            raise
        raise DiskFull(disk_full_message(index_dir, needed), needed) from None


def generation_bytes(documents, chunks, vectors, bm25, doc_freq, sentence_vectors, words) -> int:
    """About how many bytes a generation takes on disk (never much more: the disk check made with
    it must not refuse a build that fits)."""
    texts = sum(text_size(documents, s) + len(s) + 8 for s in documents)
    manifest = sum(len(s) + 250 for s in documents)
    chunk_records = 40 * len(chunks) + 8 * len(sentence_vectors) + (
        sum(len(s) * n for s, n in chunk_plan.counts_by_source(chunks).items())
        if isinstance(chunks, chunk_plan.PlannedChunks) else sum(len(c.source) for c in chunks))
    terms = sum(len(t) + 6 for t in doc_freq)
    faiss_bytes = int(vectors.ntotal) * (4 * int(vectors.d) + 8)
    word_count = words.words if isinstance(words, chunk_plan.PlannedWords) else len(words.ids)
    arrays = 2 * sentence_vectors.size + (words.projection.components.shape[0] + 6) * word_count \
        + 4 * len(words.counts) + words.projection.to_array().nbytes
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
                      sentence_vectors, words, kept, forms=None, copies=None):
    import faiss

    generation = int(manifest["generation"])
    build = index_dir / f"{BUILD_PREFIX}{generation:06d}-{os.getpid()}"
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    # Each file is flushed and hashed in one of two threads as soon as it is written, beside the
    # writing of the next ones (both release the GIL): at 50k chunks, 0.45 s of flushing and
    # hashing 368 MB done one after the other, then in two threads after the writing (0.3 s).
    with ThreadPoolExecutor(max_workers=2) as pool:
        checks = {}

        def written(*paths):
            for path in paths:
                checks[path] = pool.submit(_flushed_and_hashed, path)

        written(*save_vectors(build, sentence_vectors, words, copies or {}))
        faiss.write_index(vectors, str(build / "vectors.faiss"))
        written(build / "vectors.faiss")
        if len(chunks) > tables.COLUMNAR_FROM:
            made = chunk_plan.columnar(chunks, list(documents)) \
                if isinstance(chunks, chunk_plan.PlannedChunks) else None
            tables.save_tables(build, documents, chunks, write_texts, made)
        else:
            _write_json(build / "chunks.json", encode_chunks(chunks))
            _write_json(build / "documents.json", {s: documents[s].text for s in documents})
        structure = structure_json(documents)
        _write_json(build / "structure.json", structure)
        _write_json(build / "terms.json", doc_freq)
        if forms is not None:
            _write_json(build / "forms.json", forms)  # the speller's word counts (store.word_forms)
        bm25.save(str(build / "bm25"), show_progress=False)
        for name, array in kept.items():
            np.save(build / name, np.ascontiguousarray(array), allow_pickle=False)
        written(*(p for p in sorted(build.rglob("*")) if p.is_file() and p not in checks))
        manifest = dict(manifest)
        per_source = chunk_plan.counts_by_source(chunks) \
            if isinstance(chunks, chunk_plan.PlannedChunks) else Counter(c.source for c in chunks)
        manifest["documents"] = manifest_documents(documents, per_source)
        manifest["files"], manifest["sizes"], manifest["samples"] = checksums.gathered(
            build, {path: check.result() for path, check in sorted(checks.items())})
    _write_json(build / "manifest.json", manifest)
    _fsync(build / "manifest.json")
    final = generation_dir(index_dir, generation)
    if final.exists():
        shutil.rmtree(final)
    os.rename(build, final)
    _fsync_dir(index_dir)
    _point_to(index_dir, final)
    return final, manifest, structure


def _flushed_and_hashed(path: Path):
    """checksums.of_file(path), once the file is on disk."""
    _fsync(path)
    return checksums.of_file(path)


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


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


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
