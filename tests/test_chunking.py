"""Sentences and chunks are exact spans of the document and fit the model's window."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.ingest.boilerplate import content_segments, corpus_segments
from qa.ingest.chunking import chunk_segments, default_token_counter, split_long_sentence, split_sentences
from qa.config import MAX_CHUNK_TOKENS

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


@pytest.fixture(scope="module")
def counter():
    return default_token_counter()


def tokens(counter, text: str) -> int:
    return counter.count([text])[0]


def check_chunks(text, segments, chunks, counter, max_tokens=MAX_CHUNK_TOKENS):
    """Every invariant the indexer and the answers rely on."""
    for chunk in chunks:
        assert 0 <= chunk.start < chunk.end <= len(text)
        assert text[chunk.start : chunk.end] == text[chunk.start : chunk.end].strip()
        assert tokens(counter, text[chunk.start : chunk.end]) <= max_tokens
        assert any(s <= chunk.start and chunk.end <= e for s, e in segments), "chunk crosses segments"
        assert chunk.sentences[0][0] == chunk.start and chunk.sentences[-1][1] == chunk.end
        previous_end = chunk.start
        for s, e in chunk.sentences:
            assert previous_end <= s < e <= chunk.end
            assert text[s:e].strip() == text[s:e]
            previous_end = e
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)
    for a, b in zip(chunks, chunks[1:]):
        assert a.end <= b.start, "chunks overlap"


def test_sentences_are_exact_spans():
    text = "Intro line without end\nThe first sentence ends here. Then a second one!\n\n  Indented third?  \n"
    spans = split_sentences(text, 0, len(text))
    pieces = [text[s:e] for s, e in spans]
    assert pieces == ["Intro line without end", "The first sentence ends here.", "Then a second one!",
                      "Indented third?"]


def test_sentences_of_a_sub_range_use_document_offsets():
    text = "Skip me. " * 3 + "Keep this one. And this one."
    start = text.index("Keep")
    spans = split_sentences(text, start, len(text))
    assert [text[s:e] for s, e in spans] == ["Keep this one.", "And this one."]


def test_a_list_marker_belongs_to_its_item():
    text = "Follow these steps:\n1. Check the calendar. Ask first.\n2) Fill in the form.\n- A bullet.\n(a) Last."
    assert [text[s:e] for s, e in split_sentences(text, 0, len(text))] == [
        "Follow these steps:", "1. Check the calendar.", "Ask first.", "2) Fill in the form.",
        "- A bullet.", "(a) Last."]


def test_a_line_break_always_ends_a_sentence():
    text = "This line has no full stop\nbut this one does."
    assert [text[s:e] for s, e in split_sentences(text, 0, len(text))] == [
        "This line has no full stop", "but this one does."]


def test_chunks_pack_sentences_and_respect_the_budget(counter):
    sentence = "The survey team counted seventeen herons along the northern bank of the river. "
    text = (sentence * 60).strip()
    chunks = chunk_segments(text, [(0, len(text))], counter, MAX_CHUNK_TOKENS)
    assert len(chunks) > 1
    check_chunks(text, [(0, len(text))], chunks, counter)
    # Packing is greedy: every chunk but the last is too full to take the next sentence.
    per_sentence = tokens(counter, sentence.strip())
    for chunk in chunks[:-1]:
        assert chunk.tokens + per_sentence > MAX_CHUNK_TOKENS
    covered = sum(len(c.sentences) for c in chunks)
    assert covered == 60


def test_an_over_long_sentence_is_split_at_word_boundaries(counter):
    words = [f"word{i}ish" for i in range(900)]
    text = "Start " + " ".join(words) + " end."
    spans = split_long_sentence(text, (0, len(text)), counter, MAX_CHUNK_TOKENS)
    assert len(spans) > 1
    assert " ".join(text[s:e] for s, e in spans) == text  # nothing lost, cut only at spaces
    for s, e in spans:
        assert tokens(counter, text[s:e]) <= MAX_CHUNK_TOKENS
    chunks = chunk_segments(text, [(0, len(text))], counter, MAX_CHUNK_TOKENS)
    check_chunks(text, [(0, len(text))], chunks, counter)


def test_a_long_word_without_spaces_is_still_cut(counter):
    text = "x" * 5000 + "."
    chunks = chunk_segments(text, [(0, len(text))], counter, MAX_CHUNK_TOKENS)
    check_chunks(text, [(0, len(text))], chunks, counter)
    assert "".join(text[c.start : c.end] for c in chunks) == text


def test_chunks_stay_inside_their_segment(counter):
    text = "First paragraph sentence one. Sentence two.\n\nSecond paragraph, alone."
    segments = [(0, text.index("\n")), (text.index("Second"), len(text))]
    chunks = chunk_segments(text, segments, counter, MAX_CHUNK_TOKENS)
    assert [text[c.start : c.end] for c in chunks] == [
        "First paragraph sentence one. Sentence two.", "Second paragraph, alone."]


def test_unicode_offsets_are_python_string_offsets(counter):
    text = "Café owners in Zürich — “quietly” — raised prices 🚀 again. Nobody objected. 東京も同じ。\n"
    segments = content_segments(text)
    chunks = chunk_segments(text, segments, counter, MAX_CHUNK_TOKENS)
    check_chunks(text, segments, chunks, counter)
    joined = [text[s:e] for c in chunks for s, e in c.sentences]
    assert joined[0].startswith("Café owners in Zürich")
    assert "🚀" in joined[0]


@pytest.mark.parametrize("path", sorted(SEEDS.glob("*.txt")), ids=lambda p: p.name)
def test_seed_chunks_map_back_to_the_file(path, counter):
    texts = {p.name: p.read_text(encoding="utf-8") for p in SEEDS.glob("*.txt")}
    text = texts[path.name]
    segments = corpus_segments(texts)[path.name]
    chunks = chunk_segments(text, segments, counter, MAX_CHUNK_TOKENS)
    assert chunks
    check_chunks(text, segments, chunks, counter)


_pieces = st.sampled_from(
    ["The cat sat.", " ", "\n", "\n\n", "Dr. Smith arrived", "?", "!", "“Quoted.”", "x" * 40,
     "longword" * 12, "é", "🙂", "\t", "3.14 is pi", "—", "a", "Ends with ellipsis…"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_pieces, max_size=400).map("".join))
def test_property_every_span_maps_back(text):
    counter = default_token_counter()
    segments = content_segments(text)
    for s, e in segments:
        assert 0 <= s < e <= len(text)
    small = 24  # a small budget exercises splitting and packing on short inputs
    chunks = chunk_segments(text, segments, counter, small)
    check_chunks(text, segments, chunks, counter, max_tokens=small)
    # Every non-space character of every segment belongs to exactly one sentence.
    in_sentences = sorted(i for c in chunks for s, e in c.sentences for i in range(s, e)
                          if not text[i].isspace())
    in_segments = sorted(i for s, e in segments for i in range(s, e) if not text[i].isspace())
    assert in_sentences == in_segments
