"""Split content segments into sentences and pack them into chunks the model reads whole.

Every span here is (start, end) into the document text, end exclusive, so ``text[start:end]``
is always the sentence or chunk. Sentences come from qa.ingest.sentences (blingfire, one line at
a time); a sentence longer than the token budget is cut at word boundaries of the model's own
tokenizer.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from qa.ingest.boilerplate import _LIST_ITEM, Span, is_short, line_spans, trim_span
from qa.ingest.html import Block
from qa.ingest.markdown import heading_name
from qa.ingest.sentences import split_sentences

# A code example longer than this is quoted in runs of this many lines.
MAX_CODE_LINES = 12
# However few word pieces it takes (a run of letters the tokenizer reads as one unknown piece), a
# sentence longer than this is cut: a chunk must be readable, and fit the model's window.
MAX_UNIT_CHARS = 2000
# Nor is a chunk longer than this (200 word pieces of prose are about 1,000 characters).
MAX_CHUNK_CHARS = 3000


@dataclass(frozen=True)
class ChunkSpan:
    start: int
    end: int
    sentences: tuple[Span, ...]
    tokens: int
    heading: str = ""  # the headings it sits under: "Installation > On Windows"
    # One letter per sentence: "h" a heading (a label, not an answer), "c" lines of code, "r" a
    # table row, "d" the term a definition list defines (an option, a function's signature, a
    # glossary word: what the text after it is about), "t" text.
    kinds: str = ""

    @property
    def headings(self) -> int:
        """How many of its first sentences are headings."""
        return len(self.kinds) - len(self.kinds.lstrip("h"))


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


def split_long_sentence(text: str, span: Span, counter: TokenCounter, max_tokens: int) -> list[Span]:
    """Cut one over-long sentence into pieces of at most ``max_tokens`` word pieces."""
    start, end = span
    sentence = text[start:end]
    offsets = counter.offsets(sentence)

    def word_starts(i: int) -> bool:  # a gap before token i
        return offsets[i][0] > offsets[i - 1][1]

    def after_full_stop(i: int) -> bool:  # and the token before it ends in . ! or ?
        return word_starts(i) and sentence[offsets[i - 1][1] - 1] in ".!?"

    pieces: list[Span] = []
    first = 0
    while len(offsets) - first > max_tokens:
        # Prefer to cut after the last full stop the sentence splitter passed over ("… aa ab. Bd …",
        # "ab." read as an abbreviation), however short the piece before it; else where a word
        # starts in the second half, not inside a word.
        whole = range(first + max_tokens, first, -1)
        second_half = range(first + max_tokens, first + max_tokens // 2, -1)
        cut = next((i for i in whole if after_full_stop(i)),
                   next((i for i in second_half if word_starts(i)), first + max_tokens))
        pieces.append((first, cut))
        first = cut
    pieces.append((first, len(offsets)))
    spans = []
    for i, (a, _) in enumerate(pieces):
        piece_start = start if i == 0 else start + offsets[a][0]
        piece_end = start + offsets[pieces[i + 1][0]][0] if i + 1 < len(pieces) else end
        s, e = trim_span(text, piece_start, piece_end)
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


@dataclass(frozen=True)
class Unit:
    """A piece a chunk is packed from: a sentence, a heading (``level`` > 0) or lines of code."""

    span: Span
    tokens: int
    level: int = 0
    kind: str = "t"  # as ChunkSpan.kinds


def chunk_segments(
    text: str, segments: Sequence[Span], counter: TokenCounter, max_tokens: int,
    blocks: Sequence[Block] = (), title: str = "",
) -> list[ChunkSpan]:
    """Pack the sentences of each segment, in order, into chunks of at most ``max_tokens``.

    A heading starts a new chunk. ``blocks`` gives the structure of a converted document
    (headings, code), and then every chunk knows the path of headings it sits under (``title``
    first, when the document has one its headings do not repeat). Without it, a short line of
    its own before content is taken for a heading, but a guessed heading (often a caption or a
    pull quote in articles) makes no path: on the seed articles it pulled every chunk of its
    section up alike.
    """
    units = _units(text, segments, counter, max_tokens, blocks)
    chunks: list[ChunkSpan] = []
    path: list[tuple[int, str]] = []
    for group in units:
        current: list[Unit] = []
        used = 0
        heading = ""
        for unit in group:
            starts_section = unit.level and any(not u.level for u in current)
            too_long = current and unit.span[1] - current[0].span[0] > MAX_CHUNK_CHARS
            if current and (used + unit.tokens > max_tokens or starts_section or too_long):
                # Terms of a definition list go with the description that follows them.
                terms = len(current) - len("".join(u.kind for u in current).rstrip("d"))
                kept = current[len(current) - terms:] if 0 < terms < len(current) and \
                    not starts_section else []
                current = current[:len(current) - len(kept)]
                chunks.append(_chunk(current, used - sum(u.tokens for u in kept), heading))
                current, used = kept, sum(u.tokens for u in kept)
            if unit.level:
                path = [(level, name) for level, name in path if level < unit.level]
                path.append((unit.level, heading_name(text[unit.span[0]:unit.span[1]])))
            if blocks and (not current or all(u.level for u in current)):
                heading = _heading_path(title, path)
            current.append(unit)
            used += unit.tokens
        if current:
            chunks.append(_chunk(current, used, heading))
    return _within_budget(text, chunks, counter, max_tokens)


# A heading path is embedded before its chunk's text, within the model's 256 word pieces: each
# heading is cut at MAX_HEADING_CHARS and, past MAX_PATH_CHARS, middle headings are left out.
MAX_HEADING_CHARS = 80
MAX_PATH_CHARS = 160


def _heading_path(title: str, path: list[tuple[int, str]]) -> str:
    names = [name[:MAX_HEADING_CHARS] for _, name in path]
    if title and (not names or names[0] != title[:MAX_HEADING_CHARS]):
        names.insert(0, title[:MAX_HEADING_CHARS])
    while len(names) > 2 and len(" > ".join(names)) > MAX_PATH_CHARS:
        del names[1]
    return " > ".join(names)


def _units(text: str, segments: Sequence[Span], counter: TokenCounter, max_tokens: int,
           blocks: Sequence[Block]) -> list[list[Unit]]:
    """Per segment, its units in order, each within ``max_tokens``."""
    pieces: list[list[tuple[Span, int, str]]] = []  # (span, heading level, kind) per segment
    for start, end in segments:
        inside = [b for b in blocks if start <= b.start and b.end <= end] if blocks else None
        if inside:
            group = []
            for block in inside:
                if block.kind == "heading":
                    group.append(((block.start, block.end), block.level, "h"))
                elif block.kind == "code":
                    group.extend((span, 0, "c") for span in _code_lines(text, block, counter, max_tokens))
                else:
                    kind = {"row": "r", "term": "d"}.get(block.kind, "t")
                    group.extend((span, 0, kind) for span in split_sentences(text, block.start, block.end))
        else:
            levels = [(span, _heading_level(text, span, start == segments[0][0]))
                      for span in split_sentences(text, start, end)]
            group = [(span, level, "h" if level else "t") for span, level in levels]
        pieces.append(group)
    flat = [span for group in pieces for span, _, _ in group]
    counts = iter(counter.count([text[s:e] for s, e in flat]))
    units: list[list[Unit]] = []
    for group in pieces:
        out: list[Unit] = []
        for span, level, kind in group:
            tokens = next(counts)
            if tokens > max_tokens or span[1] - span[0] > MAX_UNIT_CHARS:
                cut = [piece for part in _split_by_chars(text, span)
                       for piece in split_long_sentence(text, part, counter, max_tokens)]
                out.extend(Unit(p, t, 0, "c" if kind == "c" else "t")
                           for p, t in zip(cut, counter.count([text[s:e] for s, e in cut])))
            else:
                out.append(Unit(span, tokens, level, kind))
        units.append(out)
    return units


def _split_by_chars(text: str, span: Span) -> list[Span]:
    """``span`` in pieces of at most MAX_UNIT_CHARS characters, cut after white space where there
    is some in the second half of a piece."""
    pieces, (start, end) = [], span
    while end - start > MAX_UNIT_CHARS:
        cut = start + MAX_UNIT_CHARS
        space = max(text.rfind(" ", start + MAX_UNIT_CHARS // 2, cut), text.rfind("\n", start + MAX_UNIT_CHARS // 2, cut))
        cut = space + 1 if space > 0 else cut
        pieces.append(trim_span(text, start, cut))
        start = cut
    pieces.append(trim_span(text, start, end))
    return [(s, e) for s, e in pieces if e > s]


def _heading_level(text: str, span: Span, first_segment: bool) -> int:
    """For plain text: 1 for a title (a short line of its own at the start), 2 for a heading (a
    short line of its own elsewhere), 0 for a sentence."""
    start, end = span
    whole_line = (start == 0 or text[start - 1] == "\n") and (end == len(text) or text[end] == "\n")
    if not whole_line or not is_short(text[start:end]) or _LIST_ITEM.match(text[start:end]):
        return 0
    return 1 if first_segment and not text[:start].strip() else 2


def _code_lines(text: str, block: Block, counter: TokenCounter, max_tokens: int) -> list[Span]:
    """A code example as one unit; when long, cut into runs of whole lines (at most
    MAX_CODE_LINES lines and ``max_tokens`` word pieces each), so a quoted piece is whole lines."""
    lines = [trim_span(text, block.start + s, block.start + e)
             for s, e in line_spans(text[block.start:block.end])]
    lines = [(s, e) for s, e in lines if e > s]
    runs: list[Span] = []
    used = count = 0
    for (s, e), tokens in zip(lines, counter.count([text[s:e] for s, e in lines])):
        if runs and count and (count >= MAX_CODE_LINES or used + tokens + 1 > max_tokens):
            used = count = 0
        if count:
            runs[-1] = (runs[-1][0], e)
        else:
            runs.append((s, e))
        used += tokens + 1
        count += 1
    return runs


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
                    out.append(_rechunk(chunk, current, used))
                    current = []
            current.append(span)
        [used] = counter.count([text[current[0][0]:current[-1][1]]])
        out.append(_rechunk(chunk, current, used))
    return out


def _rechunk(chunk: ChunkSpan, sentences: list[Span], tokens: int) -> ChunkSpan:
    """A part of ``chunk`` (some of its sentences, in order) as a chunk of its own."""
    first = chunk.sentences.index(sentences[0])
    return ChunkSpan(sentences[0][0], sentences[-1][1], tuple(sentences), tokens, chunk.heading,
                     chunk.kinds[first:first + len(sentences)])


def _chunk(units: list[Unit], tokens: int, heading: str = "") -> ChunkSpan:
    return ChunkSpan(units[0].span[0], units[-1].span[1], tuple(u.span for u in units), tokens,
                     heading, "".join(u.kind for u in units))
