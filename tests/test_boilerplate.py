"""Page furniture is found by general rules and skipped without touching the text."""

from __future__ import annotations

from pathlib import Path

from qa.ingest.boilerplate import (
    content_segments,
    corpus_segments,
    is_boilerplate,
    is_short,
    line_spans,
    repeated_lines,
)

SEEDS = Path(__file__).resolve().parent.parent / "seeds"

# A made-up scraped page: menu, icon sprite names, a caption repeated, a tag list, a byline.
PAGE_A = """\
Home
Weather
Sport
Markets
searchicon menuicon closeicon shareicon printicon mailicon bookmarkicon arrowicon chevronicon
***
The Harbour Board of Lindqvist approved a new breakwater on Monday after two years of debate.
Engineers said the structure would protect the fishing fleet from winter storms.

Photo: the old pier at dawn (Archive)
The project will cost about forty million crowns, according to the board's report.
Photo: the old pier at dawn (Archive)
Tags: harbour, storms, engineering
Share this article
"""

PAGE_B = """\
Home
Weather
Sport
Markets
The ferry timetable changes next week, the operator announced in a short statement.
Photo: the old pier at dawn (Archive)
Passengers should check the new departure times before travelling.
"""


def segment_texts(text: str, repeated=frozenset()) -> list[str]:
    return [text[s:e] for s, e in content_segments(text, repeated)]


def test_sentences_are_content():
    assert not is_boilerplate("The board approved the plan on Monday.")
    assert not is_boilerplate("Did anyone ask why?")
    assert not is_boilerplate("She said it was “final.”")


def test_lines_without_a_word_are_furniture():
    for line in ["   ", "", "***", "— · —"]:
        assert is_boilerplate(line), line


def test_a_short_line_is_a_heading_before_content_and_furniture_in_a_menu_or_at_the_end():
    for line in ["Home", "Share this article", "Tags: harbour, storms, engineering", "Read more"]:
        assert is_short(line) and not is_boilerplate(line), line
    text = ("Home\nWeather\nSport\n\nHarbour works\n\nThe board approved the breakwater.\n"
            "Tags: harbour, storms\nShare this article\n")
    # The heading and the paragraph it introduces are one segment: it never stands alone.
    assert segment_texts(text) == ["Harbour works\n\nThe board approved the breakwater."]


def test_a_long_line_without_final_punctuation_is_content():
    line = ("The breakwater will be built from granite blocks quarried on the northern island and "
            "shipped south on barges over the summer months")
    assert not is_boilerplate(line)


def test_markdown_list_items_of_three_words_or_more_are_content():
    assert not is_short("- replace the harbour lights")
    assert not is_short("2. survey the seabed first")
    assert is_short("- Sport")


def test_icon_and_sprite_lists_are_furniture():
    icons = "searchicon menuicon closeicon shareicon printicon mailicon bookmarkicon arrowicon chevronicon"
    assert is_boilerplate(icons)
    prefixed = " ".join(f"sprite{n}" for n in ["alpha", "beta", "gamma", "delta", "omega", "kappa",
                                                 "theta", "sigma", "lambda", "zeta", "iota", "rho"])
    assert is_boilerplate(prefixed)
    prose = ("Engineers, fishermen, councillors and harbour pilots gathered together yesterday to "
             "discuss the breakwater design and its expected effects on local currents")
    assert not is_boilerplate(prose)


def test_repeated_short_lines_are_found_across_and_within_documents():
    repeated = repeated_lines([PAGE_A, PAGE_B])
    assert "photo: the old pier at dawn (archive)" in repeated
    assert "home" in repeated
    assert not any("breakwater" in line for line in repeated)


def test_a_repeated_caption_is_skipped_even_when_it_ends_like_a_sentence():
    caption = "The harbour at dusk, seen from the lighthouse."
    a = f"{caption}\nThe council met on Tuesday to vote on the budget.\n"
    b = f"{caption}\nThe vote was postponed until the spring session.\n"
    segments = corpus_segments({"a": a, "b": b})
    assert [a[s:e] for s, e in segments["a"]] == ["The council met on Tuesday to vote on the budget."]
    assert [b[s:e] for s, e in segments["b"]] == ["The vote was postponed until the spring session."]


def test_long_repeated_paragraphs_are_kept():
    paragraph = " ".join(["The committee reviewed every clause of the harbour agreement carefully"] * 4) + "."
    segments = corpus_segments({"a": paragraph, "b": paragraph})
    assert segments["a"] == [(0, len(paragraph))]


def test_scraped_page_keeps_only_the_article():
    segments = corpus_segments({"a.txt": PAGE_A, "b.txt": PAGE_B})
    assert [PAGE_A[s:e] for s, e in segments["a.txt"]] == [
        "The Harbour Board of Lindqvist approved a new breakwater on Monday after two years of debate.\n"
        "Engineers said the structure would protect the fishing fleet from winter storms.",
        "The project will cost about forty million crowns, according to the board's report.",
    ]
    assert [PAGE_B[s:e] for s, e in segments["b.txt"]] == [
        "The ferry timetable changes next week, the operator announced in a short statement.",
        "Passengers should check the new departure times before travelling.",
    ]


def test_segments_are_exact_trimmed_spans_in_order():
    text = "\n\n  Intro\n   The first real sentence is here.   \nAnother one follows.\n\nTail"
    segments = content_segments(text)
    assert [text[s:e] for s, e in segments] == [
        "Intro\n   The first real sentence is here.   \nAnother one follows."]
    for s, e in segments:
        assert text[s:e] == text[s:e].strip()


def test_line_spans_cover_the_text():
    text = "a\nbb\n\nccc"
    spans = line_spans(text)
    assert [text[s:e] for s, e in spans] == ["a", "bb", "", "ccc"]
    assert line_spans("") == [(0, 0)]


def test_the_seeds_lose_their_furniture_but_keep_their_articles_and_headings():
    texts = {p.name: p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))}
    segments = corpus_segments(texts)
    skipped = []
    for source, text in texts.items():
        kept = "\n".join(text[s:e] for s, e in segments[source])
        assert 0 < len(kept) <= len(text), source
        skipped += [text[s:e] for s, e in line_spans(text)
                    if text[s:e].strip() and not any(s >= a and e <= b for a, b in segments[source])]
    joined = "\n".join(texts[s][a:b] for s in texts for a, b in segments[s])
    assert "Grushko" in joined
    # Headings stay; a menu entry repeated across the site, icon names and credits go.
    for heading in ["Fundamental differences", "Diplomatic presence", "What did NATO say?"]:
        assert heading in joined
    assert "All news" in skipped and "fb/sms (AP, AFP, dpa)" in skipped
    assert any(line.startswith("icon bookmark") for line in skipped)


def test_a_document_saved_twice_stays_searchable():
    # Every line of it is 'repeated', yet a file must not vanish from the index for having a copy.
    article = PAGE_B.split("\n", 4)[-1]  # just the article lines, no menu
    segments = corpus_segments({"ferry.txt": article, "ferry (1).txt": article})
    assert segments["ferry.txt"] and segments["ferry (1).txt"]
