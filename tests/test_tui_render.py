"""What the app shows, as pure functions: markers, highlights, document split, Markdown export."""

from __future__ import annotations

from rich.text import Text

from qa.results import Answer, Citation, Passage, Turn
from qa.tui.export import conversation_markdown
from qa.tui.render import answer_text, passage_with_highlight, sources_text, split_document

DOC = ("Intro line.\n\nFirst sentence here. The [bold]cited[/bold] sentence is this one. "
       "A last sentence.\n\nOutro.\n")


def citation(n: int = 1, sentence: str = "The [bold]cited[/bold] sentence is this one.") -> Citation:
    p_start = DOC.index("First")
    p_end = DOC.index("\n\nOutro")
    passage = Passage("a [red]b[/red].txt", p_start, p_end, DOC[p_start:p_end], 0.5, 3)
    start = DOC.index(sentence)
    return Citation(n, passage.source, start, start + len(sentence), sentence, 3, passage)


def styled(text: Text, fragment: str) -> set:
    at = text.plain.index(fragment)
    return {str(s.style) for s in text.spans if s.start <= at and at + len(fragment) <= s.end}


def test_only_real_citation_markers_are_styled():
    c = citation()
    answer = Answer("q", True, f"{c.text} [1] and [7] is not a citation", (c,), (c.passage,))
    text = answer_text(answer, marker="bold red")
    assert text.plain == answer.text  # literal, markup included
    assert "bold red" in styled(text, "[1]")
    assert "bold red" not in styled(text, "[7]")
    assert "[bold]cited[/bold]" in text.plain


def test_sources_name_the_file_and_line_literally():
    answer = Answer("q", True, "x [1]", (citation(),))
    assert "[1] a [red]b[/red].txt, line 3" in sources_text(answer).plain


def test_the_cited_sentence_is_highlighted_inside_its_passage():
    c = citation()
    text = passage_with_highlight(c, highlight="reverse")
    assert text.plain == c.passage.text
    assert "reverse" in styled(text, c.text)
    assert "reverse" not in styled(text, "First sentence")


def test_a_long_passage_is_cut_around_the_cited_sentence():
    c = citation()
    text = passage_with_highlight(c, highlight="reverse", context=8)
    assert text.plain.startswith("…") and text.plain.endswith("…")
    assert c.text in text.plain and "reverse" in styled(text, c.text)
    assert len(text.plain) < len(c.passage.text)


def test_split_document_keeps_every_character_and_locates_the_span():
    c = citation()
    before, middle, after, (start, end) = split_document(DOC, c.start, c.end)
    assert middle[start:end] == c.text
    assert "\n".join([before, middle, after]) == DOC


def test_markdown_export_has_questions_answers_and_cited_text():
    c = citation()
    found = Answer("What is cited?", True, f"{c.text} [1]", (c,), (c.passage,))
    missing = Answer("Football?", False, "The documents do not seem to cover this.", (), (c.passage,))
    markdown = conversation_markdown([Turn("What is cited?", found), Turn("Football?", missing)],
                                     "corpus", "2022-01-12 10:00")
    assert "## 1. What is cited?" in markdown and "## 2. Football?" in markdown
    assert f"[1] `a [red]b[/red].txt, line 3`, characters {c.start}–{c.end}:" in markdown
    assert f"> {c.text}" in markdown
    assert "*The documents do not seem to cover this.*" in markdown
    assert "Closest passages:" in markdown


def test_markdown_export_says_when_a_cited_document_changed_since_the_answer():
    import dataclasses

    from qa.errors import QAError

    c = citation()
    found = Answer("What is cited?", True, f"{c.text} [1]", (c,), (c.passage,))
    turns = [Turn("What is cited?", found)]
    unchanged = conversation_markdown(turns, "corpus", "now", lambda x: x)
    assert "changed since" not in unchanged and "no longer" not in unchanged
    moved = conversation_markdown(turns, "corpus", "now", lambda x: dataclasses.replace(
        x, start=x.start + 40, end=x.end + 40, line=x.line + 2))
    assert f"this text is now at line {c.line + 2}, characters {c.start + 40}–{c.end + 40}" in moved
    gone = conversation_markdown(turns, "corpus", "now", lambda x: None)
    assert "no longer holds this text" in gone

    def deleted(x):
        raise QAError("no document in the index")

    assert "no longer indexed" in conversation_markdown(turns, "corpus", "now", deleted)


def test_previews_stop_after_a_whole_word():
    from qa.tui.render import snippet

    text = "Since 2014, the conflict has killed more than 13,000 people, according to the government."
    for limit in range(20, len(text)):
        shown = snippet(text, limit)
        assert len(shown) <= limit and shown.endswith("…")
        kept = shown[:-1]
        assert text.startswith(kept) and text[len(kept)] in " ,", shown  # a whole word, then the cut
    assert snippet(text, len(text)) == text
    assert snippet("x" * 50, 20) == "x" * 19 + "…"  # one word longer than the limit


def test_citations_of_one_passage_are_lit_together_and_never_cut():
    from qa.tui.render import passage_with_highlights

    first = citation(1, "First sentence here.")
    second = citation(2)
    for context in (0, 5, 400):
        text = passage_with_highlights((first, second), highlight="reverse", context=context)
        assert "First sentence here. The [bold]cited[/bold] sentence is this one." in text.plain
        assert "reverse" in styled(text, first.text) and "reverse" in styled(text, second.text)
        if "A last" in text.plain:
            assert "reverse" not in styled(text, "A last")
    # Short of room, the text between them gives way to "…", never the cited text.
    apart = citation(2, "A last sentence.")
    text = passage_with_highlights((first, apart), highlight="reverse", context=0, between=False)
    assert text.plain == "First sentence here. … A last sentence."
    assert "reverse" in styled(text, first.text) and "reverse" in styled(text, apart.text)


def test_markdown_emphasis_is_shown_and_markup_stays_literal():
    from qa.tui.render import markdown_inline

    text = markdown_inline("The **Minsk II** deal, *signed* in [bold]2015[/bold]; snake_case, 2*3*4.")
    assert text.plain == "The Minsk II deal, signed in [bold]2015[/bold]; snake_case, 2*3*4."
    assert "bold" in styled(text, "Minsk II") and "italic" in styled(text, "signed")
    assert not styled(text, "[bold]2015[/bold]") and not styled(text, "snake_case")


def test_answers_render_markdown_only_from_markdown_documents():
    def cited(n, source, sentence):
        passage = Passage(source, 0, len(sentence), sentence, 0.5, 1)
        return Citation(n, source, 0, len(sentence), sentence, 1, passage)

    md = cited(1, "notes.md", "The **Minsk II** deal was signed in 2015.")
    txt = cited(2, "plain.txt", "Keep **these** stars.")
    answer = Answer("q", True, f"{md.text} [1] {txt.text} [2]", (md, txt))
    text = answer_text(answer, marker="underline")
    assert text.plain == "The Minsk II deal was signed in 2015. [1] Keep **these** stars. [2]"
    assert "bold" in styled(text, "Minsk II") and "underline" in styled(text, "[2]")


def test_markdown_export_says_which_documents_a_scoped_answer_came_from():
    c = citation()
    found = Answer("What is cited?", True, f"{c.text} [1]", (c,), (c.passage,))
    missing = Answer("Football?", False, "The documents do not seem to cover this.", (), ())
    markdown = conversation_markdown([Turn("What is cited?", found),
                                      Turn("Football?", missing, "notes/*.md; since 2024-01-01")],
                                     "corpus", "now")
    first, second = markdown.split("## 2. Football?")
    assert "Answered from" not in first
    assert "*Answered from notes/*.md; since 2024-01-01 only.*" in second
