"""Chunking a long text a batch at a time: chunk_in_batches gives the chunks one call of the
chunker would, but keeps its memory to a few tens of MB, and _ChunkingProgress reports how far
into the text it got."""

from __future__ import annotations

import re
from collections.abc import Iterator

from qa.config import MAX_CHUNK_TOKENS
from qa.index.records import Span
from qa.index.reports import IndexProgress, Progress
from qa.ingest.chunking import ChunkSpan, chunk_segments

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
