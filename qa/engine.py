"""The one facade both front ends use: open, sync, search, ask, stats. Imports no Textual.

Heavy modules (torch, sentence-transformers, faiss, bm25s) are imported on first use, so opening
an engine and drawing a screen are instant; ``load()`` does the slow part, from any thread.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from qa.index import generations, locations, store
from qa.config import DEFAULT_MAX_FILE_BYTES, resolve_paths
from qa.ingest.documents import UNREADABLE, FileGone, SkipFile, file_sha256, scan_corpus
from qa.index.embedder import Embedder, MiniLMEmbedder
from qa.errors import BadSpan, IndexDamaged, IndexMissing, NoDocument, QAError
from qa.index.indexer import corpus_key, expected_params, in_folders
from qa.index.reports import IndexProgress, SyncReport
from qa.results import Answer, Citation, Passage, Turn, line_of, locator_at, page_of
from qa.search.scope import Scope


def default_scorer():
    """The answer-sentence scorer shipped in the package, or None when it is not there."""
    from qa.answer.scorer import SentenceScorer

    scorer = SentenceScorer()
    return scorer if scorer.available() else None


class Engine:
    """Question answering over one corpus folder and its index folder."""

    def __init__(self, corpus: Path, index_dir: Path, embedder: Embedder | None = None,
                 max_bytes: int = DEFAULT_MAX_FILE_BYTES, scorer=None):
        self.corpus = Path(corpus)
        self.index_dir = locations.location(index_dir)  # a folder, or a PostgreSQL store
        self.embedder = embedder or MiniLMEmbedder()
        # The answer-sentence scorer shipped in the package (qa/answer/model), or None.
        self.scorer = scorer if scorer is not None else default_scorer()
        self.max_bytes = max_bytes
        self._snapshot: store.IndexSnapshot | None = None
        self._refused: Path | None = None  # a new generation refresh() could not use
        self._lock = threading.RLock()
        # The generation a question in this thread is answered from (see ``pinned``).
        self._pinned = threading.local()
        # sha256 of files whose stamp differs from the manifest's, by (path, size, mtime): the app
        # asks for changed files every few seconds, and a touched or edited file is read once.
        self._digests: dict[tuple[Path, int, int], str] = {}

    @classmethod
    def open(cls, corpus: str | Path | None = None, index: str | Path | None = None,
             embedder: Embedder | None = None, **kwargs) -> "Engine":
        paths = resolve_paths(corpus and str(corpus), index and str(index))
        return cls(paths.corpus, paths.index, embedder, **kwargs)

    # -- the index -------------------------------------------------------------------------

    def index_exists(self) -> bool:
        return locations.live_key(self.index_dir) is not None

    def index_outdated(self) -> bool:
        """True when the index was made by an older qa: ``sync`` rebuilds it (an older schema, or
        vectors of another encoder of the model), or
        updates it without embedding anything (older word rules, or no folder recorded)."""
        try:
            manifest = locations.read_manifest(self.index_dir)
        except QAError:
            return False
        return store.is_older_schema(manifest) or store.older_terms(manifest) \
            or "corpus" not in manifest \
            or store.other_encoder(manifest, expected_params(self.embedder))

    def foreign_index_folder(self) -> str | None:
        """The folder the index was built for, when that is another folder that still exists:
        rebuilding it here would take that folder's index away. None otherwise."""
        try:
            built_for = locations.read_manifest(self.index_dir).get("corpus")
        except (QAError, AttributeError):
            return None
        if isinstance(built_for, str) and built_for != corpus_key(self.corpus) \
                and Path(built_for).is_dir():
            return built_for
        return None

    def built_for_another_folder(self) -> bool:
        """True when the index names another folder than this corpus as the one it was built
        for (whether or not that folder still exists): only ``qa index --rebuild`` or ctrl+r, after
        asking, may re-point it."""
        try:
            built_for = locations.read_manifest(self.index_dir).get("corpus")
        except (QAError, AttributeError):
            return False
        return isinstance(built_for, str) and built_for != corpus_key(self.corpus)

    def sync(self, rebuild: bool = False, progress: Callable[[IndexProgress], None] | None = None,
             warn: Callable[[str, str], None] | None = None,
             on_wait: Callable[[], None] | None = None) -> SyncReport:
        """Update the index from the corpus (incremental), then answer from the new one."""
        with self._lock:
            live = self._snapshot
        # The generation already loaded saves the build reading it again (when it is still live).
        report = locations.sync(self.corpus, self.index_dir, self.embedder, rebuild=rebuild,
                                progress=progress, warn=warn, on_wait=on_wait,
                                max_bytes=self.max_bytes, loaded=live)
        if live is not None and live.generation != report.generation:
            # Questions asked meanwhile (a server answers while it updates) keep the previous
            # generation until the new one is ready, then switch at once. The build hands over
            # the generation it wrote, already in memory.
            fresh = report.snapshot
            if fresh is None:
                try:
                    fresh = locations.load_snapshot(self.index_dir,
                                                    expected_params(self.embedder, self.corpus))
                except QAError:
                    fresh = None  # the next question says what is wrong
            with self._lock:
                self._snapshot = fresh
        return report

    def watch(self, on_update: Callable[[SyncReport], None], *,
              on_error: Callable[[QAError], None] | None = None,
              stop: threading.Event | None = None, warnings=None, **sync_options) -> None:
        """Keep the index current until ``stop`` is set (or ctrl+c): after each batch of changes
        in the corpus folder (qa.index.watcher), an incremental ``sync``; ``on_update`` gets each
        report that changed the index. A failed update goes to ``on_error`` (raised without one),
        and the next batch tries again. Call ``sync`` first: this waits for changes.

        ``warn`` (among ``sync_options``) hears each warning once, not on every update: again
        only when its reason changes, or when the file is fixed and later breaks again.
        ``warnings``: the qa.index.watcher.NewWarnings that filtered the first ``sync``, so the
        first update does not repeat it."""
        from qa.index.watcher import NewWarnings, corpus_changes

        told = warnings if warnings is not None else NewWarnings()
        if sync_options.get("warn") is not None:
            sync_options["warn"] = told.filter(sync_options["warn"])
        for _ in corpus_changes(self.corpus, self.index_dir, stop):
            try:
                report = self.sync(**sync_options)
            except QAError as exc:
                told.finished(complete=False)
                if on_error is None:
                    raise
                on_error(exc)
                continue
            told.finished()
            if report.changed:
                on_update(report)

    @property
    def snapshot(self) -> store.IndexSnapshot:
        """The live index, loaded and verified on first use (raises IndexMissing etc.); inside
        ``pinned()``, the generation pinned."""
        pinned = getattr(self._pinned, "snapshot", None)
        if pinned is not None:
            return pinned
        with self._lock:
            if self._snapshot is None:
                self._snapshot = locations.load_snapshot(self.index_dir,
                                                        expected_params(self.embedder, self.corpus))
            return self._snapshot

    def refresh(self) -> store.IndexSnapshot | None:
        """Take up a generation written since the index was loaded (by ``qa index`` in another
        shell, say): the new snapshot, or None when the loaded one is still the live one.

        Cheap when nothing changed (one read of the CURRENT pointer). Call it when no question is
        being answered: an answer reads the snapshot more than once.
        """
        with self._lock:
            loaded = self._snapshot
        if loaded is None:
            return None  # nothing loaded yet: the next use loads the live generation
        live = locations.live_key(self.index_dir)
        if live is None or live == loaded.path or live == self._refused:
            return None
        try:
            fresh = locations.load_snapshot(self.index_dir,
                                            expected_params(self.embedder, self.corpus))
        except QAError:
            self._refused = live  # said once; the loaded generation goes on answering
            raise
        with self._lock:
            if self._snapshot is loaded:
                self._snapshot = fresh
            return self._snapshot

    @contextmanager
    def pinned(self) -> Iterator[store.IndexSnapshot]:
        """Every read of ``snapshot`` in this thread meanwhile sees one generation, so a question
        asked while an update switches generations is answered wholly from one of them."""
        if getattr(self._pinned, "snapshot", None) is not None:
            yield self._pinned.snapshot
            return
        self._pinned.snapshot = self.snapshot
        try:
            yield self._pinned.snapshot
        finally:
            self._pinned.snapshot = None

    def load(self) -> None:
        """Load the index and the model; the slow start-up step, safe in a worker thread."""
        self.snapshot
        load_model = getattr(self.embedder, "load", None)
        if load_model:
            load_model()
        if self.scorer is not None:
            self.scorer.load()

    def changed_files(self, manifest: dict | None = None) -> list[str]:
        """Corpus files added, edited or deleted since the live index (or the generation whose
        ``manifest`` is given) was built."""
        if manifest is None:
            manifest = locations.read_manifest(self.index_dir)
        known = {s: (m["size"], m["mtime_ns"], m["sha256"]) for s, m in manifest["documents"].items()}
        known.update({s: (m["size"], m["mtime_ns"], m["sha256"])
                      for s, m in manifest.get("skipped", {}).items()})
        changed = []
        unreadable: dict[str, str] = {}  # folders that cannot be listed: their files are not gone
        files = scan_corpus(self.corpus, self.max_bytes, unreadable=unreadable)
        for file in files:
            size, mtime, digest = known.get(file.source, (None, None, None))
            if digest is None:
                changed.append(file.source)
            elif ((size, mtime) != (file.size, file.mtime_ns) or digest == UNREADABLE) \
                    and self._digest(file) != digest:
                changed.append(file.source)
        present = {f.source for f in files}
        changed.extend(sorted(s for s in known if s not in present and not in_folders(s, unreadable)))
        return changed

    def _digest(self, file) -> str | None:
        """The file's sha256: UNREADABLE when it cannot be read (as a build records it), None
        when it is gone."""
        key = (file.path, file.size, file.mtime_ns)
        if key not in self._digests:
            try:
                self._digests[key] = file_sha256(file.path)
            except FileGone:
                return None
            except SkipFile:
                return UNREADABLE  # not kept: a chmod changes neither size nor mtime
        return self._digests[key]

    def stats(self, verify: bool = False) -> dict:
        """What ``qa stats`` shows, all of one generation (a build switching generations
        meanwhile is sat out, not taken for damage). With ``verify``, every file is checked against
        its checksum first, and an index made by another schema, model or chunking is refused as
        search refuses it (one made for another folder is still described)."""
        expected = expected_params(self.embedder)

        def describe(path: Path) -> dict:
            if verify:
                manifest = generations.verify_generation(path)
                store.check_compatible(manifest, expected)
            else:
                manifest = generations.manifest_at(path)
            try:
                size = generations.disk_size(path)
            except FileNotFoundError:
                size = None
            if size is None or generations.current_path_safe(self.index_dir) != path:
                # Switched and removed while its files were counted: count the new one.
                raise IndexDamaged(f"index {path} was removed while it was read")
            return {"manifest": manifest, "size": size}

        live = locations.describe(self.index_dir, verify, expected) \
            or generations.read_live(self.index_dir, describe)
        manifest = live["manifest"]
        try:
            changed = self.changed_files(manifest)
        except QAError:
            changed = None
        return {
            "corpus": str(self.corpus),
            "index": locations.shown(self.index_dir),
            "documents": len(manifest["documents"]),
            "chunks": sum(m["chunks"] for m in manifest["documents"].values()),
            "skipped": len(manifest.get("skipped", {})),
            "model": manifest["model"],
            "dimension": manifest["dimension"],
            "generation": manifest["generation"],
            "built_at": manifest["built_at"],
            "build_seconds": manifest.get("build_seconds"),
            "size_bytes": live["size"],
            "changed_since_build": None if changed is None else len(changed),
            "changed_files": changed,
            "skipped_files": {s: m["reason"] for s, m in sorted(manifest.get("skipped", {}).items())},
            "files": [document_metadata(s, m) for s, m in sorted(manifest["documents"].items())],
        }

    def document_text(self, source: str, exact: bool = False) -> str:
        """The text citations index: for HTML and PDF, the extracted text. ``source`` is the path
        relative to the corpus folder, as citations give it; a path to the file itself (such as
        seeds/003.txt, from a shell's tab completion) works too, unless ``exact``, where only a
        source of the index is (a server must not resolve paths it is sent)."""
        documents = self.snapshot.documents
        if source not in documents and exact:
            raise NoDocument(f"no document {source!r} in the index")
        if source not in documents:
            try:
                relative = Path(source).resolve().relative_to(self.corpus.resolve()).as_posix()
            except (ValueError, OSError):
                relative = None
            if relative in documents:
                source = relative
            else:
                raise NoDocument(f"no document {source!r} in the index") from None
        return documents[source].text

    def document_details(self, source: str) -> dict:
        """The title, author and date (ISO 8601) the document states, those it has; nothing for a
        source the live index does not hold."""
        doc = self.snapshot.documents.get(source)
        if doc is None:
            return {}
        return {key: value for key, value in
                (("title", doc.title), ("author", doc.author), ("date", doc.date)) if value}

    def span(self, source: str, start: int | None = None, end: int | None = None,
             exact: bool = False, names: tuple[str, str] = ("start", "end")) -> str:
        """``document_text(source)[start:end]``, the whole text by default; a span outside the
        text or reversed is refused with a message saying which (``names`` are what the front
        end calls the two bounds)."""
        text = self.document_text(source, exact=exact)
        start = 0 if start is None else start
        end = len(text) if end is None else end
        if not (0 <= start <= end <= len(text)):
            if 0 <= start <= len(text) and 0 <= end <= len(text):
                raise BadSpan(f"span {start}:{end} is reversed: {names[0]} must not be after {names[1]}")
            raise BadSpan(f"span {start}:{end} is outside {source} (0:{len(text)})")
        return text[start:end]

    def sources(self) -> list[str]:
        """The documents of the live index, by source (the path relative to the corpus folder)."""
        return sorted(self.snapshot.documents)

    def current_citation(self, citation: Citation) -> Citation | None:
        """``citation`` as it stands in the live index: itself; moved (when its document was
        edited and re-indexed since, but still holds the cited text: the occurrence nearest the
        old place); or None when the cited text is no longer in the document."""
        with self.pinned():
            return self._current_citation(citation)

    def _current_citation(self, citation: Citation) -> Citation | None:
        text = self.document_text(citation.source)
        if text[citation.start:citation.end] == citation.text:
            return citation
        found = nearest_occurrence(text, citation.text, citation.start)
        if found is None:
            return None
        doc = self.snapshot.documents[citation.source]
        return dataclasses.replace(citation, start=found, end=found + len(citation.text),
                                   line=line_of(text, found), page=page_of(doc.page_starts, found),
                                   locator=locator_at(doc.locators, found))

    # -- questions -------------------------------------------------------------------------

    def search(self, query: str, k: int = 5, scope: Scope | None = None) -> list[Passage]:
        """The top ``k`` passages for ``query`` (fused dense + BM25, near-duplicates collapsed),
        from the documents in ``scope`` (all by default)."""
        from qa.answer.ask import retrieve

        with self.pinned():
            return retrieve(self, encodable(query), weights=None, k=k,
                            scoped=self.scoped(scope)).passages

    def search_in(self, query: str, within: str, k: int = 5) -> list[Passage]:
        """``search`` kept to one document or folder (``within``, relative to the corpus folder);
        nothing when no document is there."""
        if not within.strip("/"):
            return self.search(query, k)
        try:
            return self.search(query, k, self.scope([within]))
        except QAError:
            return []

    def ask(self, question: str, history: Sequence[Turn] = (), scope: Scope | None = None) -> Answer:
        """Answer ``question`` from the documents (those in ``scope``, or all), using ``history``
        to resolve follow-ups."""
        from qa.answer.ask import answer_question

        started = time.perf_counter()
        with self.pinned():
            answer = answer_question(self, encodable(question), history, self.scoped(scope))
        answer.timings["total"] = time.perf_counter() - started
        return answer

    def scope(self, paths: Sequence[str] = (), since: str | None = None) -> Scope:
        """A Scope of ``paths`` (folders, files or globs relative to the corpus folder; a path
        to a file or folder inside the corpus, as a shell completes it, works too) and ``since``
        (YYYY-MM-DD). Raises QAError for a date that is not one."""
        return Scope(tuple(self._corpus_relative(p) for p in paths), since)

    def scoped(self, scope: Scope | None):
        """The chunks of the live index in ``scope`` (qa.search.scope.scope_rows), or None for
        all of them; raises QAError when the scope holds no document."""
        from qa.search.scope import scope_rows

        return scope_rows(self.snapshot, scope) if scope else None

    def _corpus_relative(self, path: str) -> str:
        if not any(ch in path for ch in "*?["):
            try:
                inside = Path(path).resolve().relative_to(self.corpus.resolve())
            except (ValueError, OSError):
                inside = None
            if inside is not None and Path(path).exists() and \
                    (Path(path).is_absolute() or not (self.corpus / path).exists()):
                return inside.as_posix()
        return path

    # -- helpers for front ends --------------------------------------------------------------

    def passage(self, row: int, score: float) -> Passage:
        snap = self.snapshot
        chunk = snap.chunks[row]
        doc = snap.documents[chunk.source]
        return Passage(chunk.source, chunk.start, chunk.end, doc.text[chunk.start:chunk.end],
                       score, line_of(doc.text, chunk.start), page_of(doc.page_starts, chunk.start),
                       chunk.sentences, locator=locator_at(doc.locators, chunk.start))


class Conversation:
    """A sequence of questions sharing context; ``reset()`` forgets it.

    Follow-ups use ``history``, the last few turns (followup.recent), so a conversation of
    thousands of questions stays small; ``turns`` keeps every turn when ``record`` is true, as
    the app does to show and export them, and none otherwise (``qa ask -``).
    """

    def __init__(self, engine: Engine, record: bool = True, scope: Scope | None = None):
        self.engine = engine
        self.record = record
        self.turns: list[Turn] = []
        self.history: list[Turn] = []
        self.scope = scope  # the documents its questions are answered from (None: all)

    def ask(self, question: str) -> Answer:
        from qa.answer.followup import recent

        # Asked without a scope when there is none: engines standing in for this one in the app's
        # tests take (question, history).
        answer = self.engine.ask(question, self.history, scope=self.scope) if self.scope \
            else self.engine.ask(question, self.history)
        turn = Turn(question, answer, str(self.scope) if self.scope else None)
        if self.record:
            self.turns.append(turn)
        self.history = recent([*self.history, turn])
        return answer

    def reset(self) -> None:
        self.turns.clear()
        self.history.clear()


def document_metadata(source: str, meta: dict) -> dict:
    """What the index knows of one document, as `qa stats --json` lists it: its format, the title,
    author and date it states (when it has them) and its file's modification time."""
    from datetime import datetime, timezone

    modified = datetime.fromtimestamp(meta["mtime_ns"] / 1e9, timezone.utc)
    return {"source": source, "format": meta["format"], "chunks": meta["chunks"],
            **{key: meta[key] for key in ("title", "author", "date") if meta.get(key)},
            "modified": modified.isoformat(timespec="seconds")}


def encodable(text: str) -> str:
    """``text`` with lone surrogates (undecodable bytes typed or piped in) replaced by "?".

    The tokenizer and JSON output both reject them; every other character is kept.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def nearest_occurrence(text: str, needle: str, near: int) -> int | None:
    """The start of the occurrence of ``needle`` in ``text`` closest to offset ``near``."""
    if not needle:
        return None
    best, at = None, text.find(needle)
    while at != -1:
        if best is None or abs(at - near) < abs(best - near):
            best = at
        at = text.find(needle, at + 1)
    return best


__all__ = ["Answer", "Conversation", "Engine", "IndexMissing", "IndexProgress", "Passage",
           "QAError", "SyncReport", "Turn"]
