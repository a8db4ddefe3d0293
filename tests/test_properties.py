"""Property tests of the sentence splitter and the chunker on arbitrary Unicode text.

For any text: every sentence and chunk span is ``text[start:end]`` of a valid, ordered,
non-overlapping span; chunks stay within the token budget (counted by the model's tokenizer);
and no non-whitespace character of the content segments is lost.
"""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qa.ingest.boilerplate import _SENTENCE_END, content_segments, corpus_segments
from qa.ingest.chunking import chunk_segments, default_token_counter, split_long_sentence, split_sentences
from qa.config import MAX_CHUNK_TOKENS

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Words from several scripts, punctuation of several languages and every kind of line break, so
# that sentences, long lines and boilerplate-looking lines all occur; raw Unicode on top.
WORD = st.one_of(
    st.text(st.characters(min_codepoint=0x61, max_codepoint=0x7A), min_size=1, max_size=12),
    st.text(st.characters(categories=("L", "M", "N")), min_size=1, max_size=8),
    st.sampled_from(["Dr.", "U.S.", "e.g.", "3.14", "«Oui»", "“quoted”", "🙂", "東京", "naïve",
                     "[bold]", "[/]", "x" * 120, "https://example.com/a?b=c.d"]),
)
SEPARATOR = st.sampled_from([" ", " ", " ", ", ", ". ", "! ", "? ", "… ", "。", "\n", "\n\n",
                             "\r\n", "\t", "\u00a0", "\u2028", " - ", ": ", "\x0c"])
STRUCTURED = st.lists(st.tuples(WORD, SEPARATOR), max_size=400).map(
    lambda pairs: "".join(word + sep for word, sep in pairs))
TEXT = st.one_of(st.text(max_size=600), STRUCTURED,
                 st.tuples(STRUCTURED, st.text(max_size=200), STRUCTURED).map("".join))


def _non_space_positions(text: str, spans) -> set[int]:
    return {i for s, e in spans for i in range(s, e) if not text[i].isspace()}


def _check_spans(text: str, spans, start: int = 0, end: int | None = None) -> None:
    end = len(text) if end is None else end
    previous = start
    for s, e in spans:
        assert previous <= s < e <= end, (spans, start, end)
        assert not text[s].isspace() and not text[e - 1].isspace(), (s, e)
        previous = e


@SETTINGS
@given(TEXT)
def test_sentences_are_exact_ordered_and_lose_nothing(text):
    spans = split_sentences(text, 0, len(text))
    _check_spans(text, spans)
    # Every non-whitespace character is inside exactly one sentence.
    assert _non_space_positions(text, spans) == _non_space_positions(text, [(0, len(text))])
    for s, e in spans:
        # A line break inside a sentence only ever follows a wrapped line, never a full stop.
        for line in text[s:e].split("\n")[:-1]:
            assert not _SENTENCE_END.search(line.strip()), text[s:e]


@SETTINGS
@given(TEXT, st.data())
def test_sentences_of_a_slice_stay_inside_it(text, data):
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    spans = split_sentences(text, start, end)
    _check_spans(text, spans, start, end)
    assert _non_space_positions(text, spans) == _non_space_positions(text, [(start, end)])


@SETTINGS
@given(TEXT, st.sampled_from([6, 20, MAX_CHUNK_TOKENS]))
# Found by hypothesis in CI: two pieces of one long "sentence", cut inside a word, fit apart (5 + 1)
# but not together ("0B1" takes more word pieces than "0" and "B1").
@example(text="0:002:011A000:0B1", max_tokens=6)
def test_chunks_are_exact_within_the_limit_and_cover_the_content(text, max_tokens):
    counter = default_token_counter()
    segments = content_segments(text)
    chunks = chunk_segments(text, segments, counter, max_tokens)
    _check_spans(text, [(c.start, c.end) for c in chunks])
    for chunk in chunks:
        assert chunk.sentences and chunk.start == chunk.sentences[0][0]
        assert chunk.end == chunk.sentences[-1][1]
        _check_spans(text, chunk.sentences, chunk.start, chunk.end)
        # The chunk as embedded (its whole text, gaps included) fits the model's budget.
        [tokens] = counter.count([text[chunk.start:chunk.end]])
        assert tokens <= max_tokens, (tokens, text[chunk.start:chunk.end])
        assert any(s <= chunk.start and chunk.end <= e for s, e in segments)
    sentences = [span for chunk in chunks for span in chunk.sentences]
    assert _non_space_positions(text, sentences) == _non_space_positions(text, segments)


@SETTINGS
@given(st.lists(TEXT, min_size=1, max_size=4))
def test_segments_of_a_corpus_are_trimmed_spans_of_each_text(texts):
    documents = {f"doc{i}.txt": text for i, text in enumerate(texts)}
    for source, segments in corpus_segments(documents).items():
        text = documents[source]
        _check_spans(text, segments)


# At least 4: one character can take 3 word pieces on its own (a Hangul syllable is split into
# its jamo), and no cut can go below one character.
@SETTINGS
@given(STRUCTURED, st.integers(4, 40))
def test_a_long_sentence_is_cut_into_pieces_within_the_limit(text, max_tokens):
    counter = default_token_counter()
    text = text.replace("\n", " ").replace("\r", " ").replace("\u2028", " ")
    stripped = text.strip()
    if not stripped:
        return
    start = text.index(stripped[0])
    span = (start, start + len(stripped))
    pieces = split_long_sentence(text, span, counter, max_tokens)
    _check_spans(text, pieces, *span)
    assert _non_space_positions(text, pieces) == _non_space_positions(text, [span])
    for (s, e), tokens in zip(pieces, counter.count([text[s:e] for s, e in pieces])):
        assert tokens <= max_tokens, (tokens, text[s:e])
