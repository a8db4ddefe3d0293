"""Split content segments into sentences and pack them into chunks the model reads whole.

Every span here is (start, end) into the document text, end exclusive, so
``text[start:end]`` is always the sentence or chunk. Sentences come from blingfire, one line at a
time (a line break always ends a sentence); a sentence longer than the token budget is cut at word
boundaries of the model's own tokenizer.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from qa.ingest.boilerplate import _LIST_ITEM, _SENTENCE_END, WRAP_MIN_WIDTH, WRAP_RATIO, Span, line_spans

_FALLBACK_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
# A line that starts a new block even right after a wrapped line: a list item, heading, table row.
_NEW_BLOCK = re.compile(_LIST_ITEM.pattern + r"|^\s*(?:#|\|)")


@dataclass(frozen=True)
class ChunkSpan:
    start: int
    end: int
    sentences: tuple[Span, ...]
    tokens: int


class TokenCounter:
    """Word-piece counts and offsets from the bundled model's tokenizer (no torch needed)."""

    def __init__(self, tokenizer_json: str):
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(tokenizer_json)
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()

    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    @property
    def vocabulary_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    def vocabulary(self) -> tuple[list[str], set[int]]:
        """Every word piece by id, and the ids of the special tokens ([CLS], [SEP], ...)."""
        tokens = [self._tokenizer.id_to_token(i) for i in range(self.vocabulary_size)]
        special = {i for i, token in self._tokenizer.get_added_tokens_decoder().items() if token.special}
        return tokens, special

    def offsets(self, text: str) -> list[tuple[int, int]]:
        return self._tokenizer.encode(text, add_special_tokens=False).offsets


@lru_cache(maxsize=1)
def default_token_counter() -> TokenCounter:
    from qa.config import model_path

    return TokenCounter(os.path.join(model_path(), "tokenizer.json"))


def split_sentences(text: str, start: int, end: int) -> list[Span]:
    """Sentence spans of ``text[start:end]``; each line is split on its own.

    A hard-wrapped paragraph counts as one line: its line breaks become spaces for the splitter
    (one character for one, so offsets hold), and a sentence may then span a wrapped line break.
    """
    spans: list[Span] = []
    for line_start, line_end in _unwrapped_lines(text[start:end]):
        line = text[start + line_start : start + line_end].replace("\n", " ")
        for s, e in _line_sentences(line):
            spans.append((start + line_start + s, start + line_start + e))
    return spans


def _unwrapped_lines(text: str) -> list[Span]:
    """Line spans of ``text``, with the lines of a hard-wrapped paragraph joined into one.

    A line is wrapped into the next when it does not end like a sentence and is nearly as long as
    the longest line here (the rule the boilerplate module uses), unless the next line starts a
    list item, a heading or a table row.
    """
    lines = line_spans(text)
    lengths = [len(text[s:e].strip()) for s, e in lines]
    width = max(lengths, default=0)
    if width < WRAP_MIN_WIDTH or len(lines) < 2:
        return lines
    joined: list[Span] = []
    for i, (s, e) in enumerate(lines):
        if joined and _wraps(text, lines[i - 1], lengths[i - 1], width) and lengths[i] \
                and not _NEW_BLOCK.match(text[s:e]):
            joined[-1] = (joined[-1][0], e)
        else:
            joined.append((s, e))
    return joined


def _wraps(text: str, line: Span, length: int, width: int) -> bool:
    content = text[line[0]:line[1]].strip()
    return length >= WRAP_RATIO * width and not _SENTENCE_END.search(content)


def _line_sentences(line: str) -> list[Span]:
    if not line.strip():
        return []
    spans = _blingfire_sentences(line)
    if spans is None:
        spans, pos = [], 0
        for match in _FALLBACK_SENTENCE_END.finditer(line):
            spans.append((pos, match.start()))
            pos = match.end()
        spans.append((pos, len(line)))
    return _markers_joined(line, [t for t in (_trim(line, s, e) for s, e in spans) if t[1] > t[0]])


# A list item's marker alone ("1." of "1. Check the calendar", which the splitter takes for a
# sentence of its own) is no sentence: it is joined to the text it numbers.
_MARKER_ONLY = re.compile(r"(?:\(?(?:\d{1,3}|[A-Za-z]|[ivxIVX]{1,4})[.)]|[-*+•–])")


def _markers_joined(line: str, spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for span in spans:
        if out and _MARKER_ONLY.fullmatch(line[out[-1][0]:out[-1][1]]):
            out[-1] = (out[-1][0], span[1])
        else:
            out.append(span)
    return out


def _blingfire_sentences(line: str) -> list[Span] | None:
    """blingfire's spans, or None when they do not tile the line sensibly."""
    import blingfire

    try:
        _, offsets = blingfire.text_to_sentences_and_offsets(line)
    except Exception:  # blingfire raises plain errors on odd input; fall back to the regex
        return None
    spans, previous_end = [], 0
    for s, e in offsets:
        if not (previous_end <= s <= e <= len(line)):
            return None
        spans.append((s, e))
        previous_end = e
    covered = "".join(line[s:e] for s, e in spans)
    if "".join(covered.split()) != "".join(line.split()):
        return None  # blingfire dropped or moved characters
    if not spans:
        return None
    # Give characters between spans to the sentence before them, so nothing is lost.
    starts = [0] + [s for s, _ in spans[1:]]
    ends = [s for s, _ in spans[1:]] + [len(line)]
    return list(zip(starts, ends))


def _trim(text: str, start: int, end: int) -> Span:
    while start < end and (text[start].isspace() or text[start] == "\ufeff"):
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_long_sentence(text: str, span: Span, counter: TokenCounter, max_tokens: int) -> list[Span]:
    """Cut one over-long sentence into pieces of at most ``max_tokens`` word pieces."""
    start, end = span
    offsets = counter.offsets(text[start:end])
    pieces: list[Span] = []
    first = 0
    while len(offsets) - first > max_tokens:
        cut = first + max_tokens
        # Prefer to cut where a word starts (a gap before the token), not inside a word.
        for candidate in range(cut, first + max_tokens // 2, -1):
            if offsets[candidate][0] > offsets[candidate - 1][1]:
                cut = candidate
                break
        pieces.append((first, cut))
        first = cut
    pieces.append((first, len(offsets)))
    spans = []
    for i, (a, _) in enumerate(pieces):
        piece_start = start if i == 0 else start + offsets[a][0]
        piece_end = start + offsets[pieces[i + 1][0]][0] if i + 1 < len(pieces) else end
        s, e = _trim(text, piece_start, piece_end)
        if e > s:
            spans.append((s, e))
    # A piece cut inside a word can take more word pieces on its own ("##yk" alone is "y", "##k"):
    # cut such a piece again; pieces only get shorter, so this ends.
    result: list[Span] = []
    for piece, tokens in zip(spans, counter.count([text[s:e] for s, e in spans])):
        if tokens > max_tokens and piece != span:
            result.extend(split_long_sentence(text, piece, counter, max_tokens))
        else:
            result.append(piece)
    return result


def chunk_segments(
    text: str, segments: Sequence[Span], counter: TokenCounter, max_tokens: int
) -> list[ChunkSpan]:
    """Pack the sentences of each segment, in order, into chunks of at most ``max_tokens``."""
    sentence_groups = [split_sentences(text, s, e) for s, e in segments]
    flat = [span for group in sentence_groups for span in group]
    counts = iter(counter.count([text[s:e] for s, e in flat]))
    chunks: list[ChunkSpan] = []
    for group in sentence_groups:
        units: list[tuple[Span, int]] = []
        for span in group:
            tokens = next(counts)
            if tokens > max_tokens:
                pieces = split_long_sentence(text, span, counter, max_tokens)
                units.extend(zip(pieces, counter.count([text[s:e] for s, e in pieces])))
            else:
                units.append((span, tokens))
        chunks.extend(_pack(units, max_tokens))
    return _within_budget(text, chunks, counter, max_tokens)


def _within_budget(text: str, chunks: list[ChunkSpan], counter: TokenCounter,
                   max_tokens: int) -> list[ChunkSpan]:
    """Chunks whose text, counted whole, is over budget, packed again by whole counts.

    Packing adds up the sentences' counts, but two pieces of one over-long sentence cut inside a
    word can take more word pieces together than apart ("0" + "B1" is not "0B1"), so every chunk
    of several sentences is counted as the model will read it (one batch) and the rare one over
    budget is split again."""
    several = [i for i, c in enumerate(chunks) if len(c.sentences) > 1]
    whole = counter.count([text[chunks[i].start:chunks[i].end] for i in several])
    over = {i for i, tokens in zip(several, whole) if tokens > max_tokens}
    if not over:
        return chunks
    out: list[ChunkSpan] = []
    for i, chunk in enumerate(chunks):
        if i not in over:
            out.append(chunk)
            continue
        current: list[Span] = []
        for span in chunk.sentences:
            if current:
                [tokens] = counter.count([text[current[0][0]:span[1]]])
                if tokens > max_tokens:
                    [used] = counter.count([text[current[0][0]:current[-1][1]]])
                    out.append(_chunk(current, used))
                    current = []
            current.append(span)
        [used] = counter.count([text[current[0][0]:current[-1][1]]])
        out.append(_chunk(current, used))
    return out


def _pack(units: list[tuple[Span, int]], max_tokens: int) -> list[ChunkSpan]:
    chunks, current, used = [], [], 0
    for span, tokens in units:
        if current and used + tokens > max_tokens:
            chunks.append(_chunk(current, used))
            current, used = [], 0
        current.append(span)
        used += tokens
    if current:
        chunks.append(_chunk(current, used))
    return chunks


def _chunk(sentences: list[Span], tokens: int) -> ChunkSpan:
    return ChunkSpan(sentences[0][0], sentences[-1][1], tuple(sentences), tokens)
