"""Fusion, de-duplication, sentence selection and follow-up resolution as pure functions."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from qa.answer.sentences import (
    Candidate,
    Scored,
    answer_confidence,
    answer_type,
    has_answer_type,
    is_question,
    one_slip,
    score_sentences,
    readable_order,
    select_sentences,
    unseen_names,
    unseen_terms,
)
from qa.answer.referents import capitalised_in, pronoun_votes
from qa.answer.completion import complete_sentences, defined_by, group_citations, quote_balance
from qa.answer.followup import already_said, is_followup, named_by_answer, resolve, swapped_subject
from qa.index.lexical import terms
from qa.results import Answer, Citation, Turn
from qa.search.retrieval import (
    bigram_overlap,
    collapse_near_duplicates,
    dense_weight,
    lexical_candidates,
    normalized_score_fusion,
    rerank_by_phrases,
)


def test_fusion_rewards_rows_strong_in_both_lists():
    dense = [(1, 0.80), (2, 0.70), (3, 0.40)]
    lexical = [(3, 12.0), (1, 10.0), (4, 2.0)]
    fused = normalized_score_fusion(dense, lexical, weight=0.5)
    order = [row for row, _ in fused]
    assert order[0] == 1  # near the top of both lists
    assert set(order) == {1, 2, 3, 4}


def test_fusion_scales_each_side_to_zero_one():
    fused = dict(normalized_score_fusion([(1, 0.9), (2, 0.3)], [(2, 5.0)], weight=0.5))
    assert abs(fused[1] - 0.5) < 1e-9  # top cosine, no BM25
    assert abs(fused[2] - 0.5) < 1e-9  # lowest cosine, top BM25


def test_fusion_weight_tilts_toward_one_side():
    dense, lexical = [(1, 0.9), (2, 0.5)], [(2, 9.0), (1, 1.0)]
    assert normalized_score_fusion(dense, lexical, weight=0.9)[0][0] == 1
    assert normalized_score_fusion(dense, lexical, weight=0.1)[0][0] == 2


def test_dense_candidates_keep_their_bm25_score_outside_the_top_rows():
    import numpy as np

    scores = np.array([0.0, 5.0, 4.0, 3.0, 2.0])
    lexical = lexical_candidates(scores, dense=[(4, 0.9), (0, 0.8), (1, 0.7)], n=2)
    assert lexical == [(1, 5.0), (2, 4.0), (4, 2.0)]  # row 0 shares no word: left out


def test_dense_weight_grows_with_question_length_within_bounds():
    weights = [dense_weight(n) for n in range(0, 40)]
    assert weights == sorted(weights)
    assert min(weights) >= 0.35 and max(weights) <= 0.8


def test_phrase_rerank_lifts_a_passage_with_the_question_pair():
    fused = [(1, 0.50), (2, 0.45)]
    texts = {1: ["minsk", "peac", "agreement"], 2: ["minsk", "agreement", "sign"]}
    reranked = rerank_by_phrases(fused, ["minsk", "agreement"], texts.__getitem__)
    assert reranked[0][0] == 2
    assert bigram_overlap(["a", "b", "c"], ["x", "b", "c"]) == 0.5


def test_near_duplicates_collapse_to_the_best_ranked_copy():
    base = "The NATO-Russia Council met in Brussels on Wednesday to discuss the situation around Ukraine."
    texts = [base, "Something else entirely about missiles in Europe and arms control talks.",
             "Brussels 12.01.2022 " + base, base.upper()]
    kept = collapse_near_duplicates([10, 11, 12, 13], texts)
    assert kept == [10, 11]


def test_distinct_passages_are_all_kept():
    texts = ["alpha beta gamma delta epsilon", "zeta eta theta iota kappa", "lambda mu nu xi omicron"]
    assert collapse_near_duplicates([1, 2, 3], texts) == [1, 2, 3]


def _candidate(passage, position, text, start=None):
    start = position * 100 if start is None else start
    return Candidate(passage, "a.txt", start, start + len(text), text, position)


def test_irregular_past_forms_meet_their_verb():
    assert terms("What did Wendy Sherman say?") == terms("Wendy Sherman said") == ["wendi", "sherman", "say"]
    assert terms("Who won the cup?") == terms("She wins the cup") == ["win", "cup"]
    assert terms("The talks were held in Brussels") == terms("talks hold in Brussels")
    # Words that are mostly something else are left alone.
    assert terms("born in a bit of ground") == ["born", "bit", "ground"]


def test_a_person_pronoun_after_a_who_question_becomes_the_name_answered():
    def turn(question, cited):
        citation = Citation(1, "a.txt", 0, len(cited), cited, 1, None)
        return Turn(question, Answer(question, True, cited + " [1]", (citation,)))

    chaired = turn("Who chaired the meeting?", "NATO Secretary General Jens Stoltenberg, who chaired the meeting, said so.")
    assert named_by_answer("What did he say about Ukraine?", chaired) == "What did Jens Stoltenberg say about Ukraine?"
    assert named_by_answer("What was his view?", chaired) == "What was Jens Stoltenberg's view?"
    assert resolve("What did he say about Ukraine?", [chaired]).text == "What did Jens Stoltenberg say about Ukraine?"
    # Not after a question that did not ask who; not when the answer names two people or none.
    assert named_by_answer("What did he say?", turn("What happened?", chaired.answer.citations[0].text)) is None
    two = turn("Who led the delegation?", "It is led by Minister Alexander Grushko and Minister Alexander Fomin.")
    assert named_by_answer("What did he demand?", two) is None
    assert named_by_answer("What did he demand?", turn("Who led it?", "The deputy minister led it.")) is None
    assert named_by_answer("What did it decide?", chaired) is None  # "it" is no person
    # "he" after "Who met Grushko?" may be Grushko.
    assert named_by_answer("What did he say?", turn("Who met Grushko?", "Jens Stoltenberg met him.")) is None


def test_she_is_the_person_of_the_answer_the_documents_call_she():
    """"What did she say about Russia?" after "Who represented the United States?" (answered with
    Stoltenberg first, Sherman second) asks about Sherman, as the documents call her "she"."""
    def turn(question, *cited):
        citations = tuple(Citation(n, "a.txt", 0, len(text), text, 1, None) for n, text in enumerate(cited, 1))
        return Turn(question, Answer(question, True, " ".join(cited), citations))

    us = turn("Who represented the United States at the meeting?",
              "Russia expects the United States to give a written response.",
              "NATO is represented by Secretary General Jens Stoltenberg and Deputy Secretary of "
              "State Wendy Sherman.")
    genders = {"Jens Stoltenberg": "m", "Wendy Sherman": "f", "Deputy Secretary": "m"}
    assert named_by_answer("What did she say about Russia?", us, genders.get) == \
        "What did Wendy Sherman say about Russia?"
    assert named_by_answer("What did she say about Russia?", us) is None  # no genders: as before
    assert named_by_answer("What did he say?", us, genders.get) is None  # two men
    # Someone the documents say nothing of might be meant as well.
    two = turn("Who led the delegation?", "It is led by Minister Alexander Grushko and Minister Alexander Fomin.")
    assert named_by_answer("What did he demand?", two, {"Alexander Grushko": "m"}.get) is None
    # Nor when the previous question named a woman herself.
    met = turn("Who met Wendy Sherman?", "Jens Stoltenberg and Helga Schmid met Wendy Sherman.")
    assert named_by_answer("What did she say?", met, {**genders, "Helga Schmid": "f"}.get) is None


def test_a_persons_gender_is_read_from_the_pronouns_after_their_name():
    text = ("Wendy Sherman said the allies are open to dialogue. \"We are ready,\" she added. "
            "Stoltenberg said he was pleased. Later Stoltenberg met Sherman; she left early.")
    assert pronoun_votes(text, "Sherman") == (0, 2)
    assert pronoun_votes(text, "Stoltenberg") == (1, 1)  # the nearest pronoun, right or wrong
    assert pronoun_votes(text, "Fomin") == (0, 0)


def test_short_questions_mostly_of_unseen_words_are_found():
    doc_freq = {"nato": 50, "join": 3, "meet": 9, "troop": 4, "missil": 2, "drill": 1, "talk": 7}
    assert unseen_terms("When did Finland join NATO?", doc_freq) == ["finland"]
    assert unseen_terms("When did NATO meet?", doc_freq) == []
    # One unseen word among many of a long question does not count.
    assert unseen_terms("When did Finland join NATO after talks about troops, missiles and drills?",
                        doc_freq) == []
    assert unseen_terms("???", doc_freq) == []
    # A typing slip away from a word of the documents is no unseen word.
    assert unseen_terms("When did Finlnd join NATO?", {**doc_freq, "finland": 2}) == []
    assert one_slip("grushkoo", "grushko") and one_slip("demnad", "demand") and one_slip("rusia", "russia")
    assert not one_slip("abc", "abd") and not one_slip("ukraine", "ukraine") and not one_slip("nato", "natoxx")
    # "How much" asks for an amount: a text that never says "much" can still answer it; a name
    # after "How" is still a name.
    saving = {"move": 6, "save": 1}
    assert unseen_terms("How much does the move save?", saving) == []
    assert unseen_terms("how much does the move save", saving) == []
    assert unseen_terms("How Kubernetes saves", saving) == ["kubernet"]


def test_names_the_documents_never_use_are_found_in_any_question():
    doc_freq = {"git": 90, "merg": 20, "request": 5, "open": 8, "stash": 6, "nato": 50}
    assert unseen_names("How do I open a merge request on GitLab?", doc_freq) == ["GitLab"]
    assert unseen_names("What is the Mercurial equivalent of git stash?", doc_freq) == ["Mercurial"]
    assert unseen_names("Does git stash work on macOS with LFS?", doc_freq) == ["macOS", "LFS"]
    # The capital that starts a question, the pronoun I, lower-case words and known names are none.
    assert unseen_names("Opening a merge request: how do I stash with Git?", doc_freq) == []
    assert unseen_names("where does nato meet", doc_freq) == []


def test_and_a_full_new_name_asks_the_previous_question_about_them():
    cited = "Her death in 1998 was mourned."
    first = Turn("When did Ada Lindqvist die?",
                 Answer("When did Ada Lindqvist die?", True, cited + " [1]",
                        (Citation(1, "a.txt", 0, len(cited), cited, 1, None),)))
    for reply in ("And Henrietta Cole?", "What about Henrietta Cole?"):
        assert resolve(reply, [first]).text == "When did Henrietta Cole die?"
    # A bare name without "and" or a question mark is a search of its own.
    assert resolve("Henrietta Cole", [first]).text == "Henrietta Cole"


def test_sentence_with_the_question_terms_wins():
    candidates = [
        _candidate(0, 0, "The weather in Brussels was cold and grey that week in January."),
        _candidate(0, 1, "Grushko demanded legal guarantees that NATO would not expand to the east."),
    ]
    scored = score_sentences(candidates, {"grushko": 1.0, "demand": 1.0}, {"grushko": 3, "demand": 1}, 50, [1.0])
    best = max(scored, key=lambda s: s.score)
    assert "guarantees" in best.candidate.text
    assert best.overlap == 1.0


def test_selection_respects_the_length_budget_and_reading_order():
    scored = [Scored(_candidate(0, i, "x" * 200), 1.0 - i * 0.01, 0.5) for i in range(5)]
    chosen = select_sentences(scored, max_chars=450)
    assert 1 <= len(chosen) <= 3
    assert sum(len(s.candidate.text) for s in chosen) <= 450
    assert [s.candidate.position for s in chosen] == sorted(s.candidate.position for s in chosen)


def test_the_best_sentence_leads_even_when_its_passage_has_an_earlier_runner_up():
    # "How many people have been killed?": the troops sentence comes first in the passage, the
    # killed sentence two sentences later; the reader must meet the answer first.
    troops = Scored(_candidate(0, 0, "Russia massed 100,000 troops.", start=0), 1.75, 0.27)
    killed = Scored(_candidate(0, 2, "The conflict has killed 13,000 people.", start=80), 2.28, 0.73)
    assert select_sentences([troops, killed]) == [killed, troops]
    # Sentences that follow each other stay in text order, the run led by its best sentence.
    before = Scored(_candidate(0, 1, "Soldiers were killed on Wednesday.", start=45), 1.8, 0.3)
    assert readable_order([troops, before, killed]) == [before, killed, troops]
    # Adjacent sentences of two passages (a chunk boundary between them) are not tied: the
    # neighbouring paragraph must not come ahead of the best one.
    end_of_one = Scored(_candidate(0, 5, "The last sentence of one chunk.", start=500), 1.0, 0.3)
    start_of_two = Scored(_candidate(1, 0, "The first sentence of the next.", start=532), 2.0, 0.8)
    farther = Scored(_candidate(1, 1, "And one more after it.", start=564), 1.5, 0.5)
    assert readable_order([end_of_one, start_of_two, farther]) == [start_of_two, farther, end_of_one]


def test_selection_drops_weak_runners_up():
    scored = [Scored(_candidate(0, 0, "best sentence here"), 1.0, 1.0),
              Scored(_candidate(1, 0, "weak sentence here"), 0.3, 0.1)]
    assert len(select_sentences(scored)) == 1


def test_adjacent_sentences_share_one_citation():
    a = Scored(_candidate(0, 0, "First."), 1.0, 1.0)
    b = Scored(_candidate(0, 1, "Second."), 0.9, 1.0)
    c = Scored(_candidate(1, 4, "Elsewhere."), 0.9, 1.0)
    assert [len(g) for g in group_citations([a, b, c])] == [2, 1]


def _turn(question: str) -> Turn:
    return Turn(question, Answer(question, True, "answer", query=question))


def test_pronoun_question_is_a_follow_up():
    history = [_turn("Who is Alexander Fomin?")]
    assert is_followup("What did he say about relations with NATO?", history)
    query = resolve("What did he say about relations with NATO?", history)
    assert "fomin" in query.terms and query.terms["fomin"] < query.terms["nato"]
    assert "Fomin" in query.text


def test_a_declined_question_gives_no_context():
    declined = Turn("Who won the 2018 World Cup?",
                    Answer("Who won the 2018 World Cup?", False, "not covered", query="x"))
    assert not is_followup("How long did the meeting last?", [declined])
    assert resolve("How long did the meeting last?", [declined]).terms == {"meet": 1.0, "last": 1.0}
    # A declined answer gives no referent: "he" after it points at no one, not at someone an
    # earlier turn named (issue 14: "she" after a declined question quoted the wrong person).
    query = resolve("What did he say about NATO?", [_turn("Who is Alexander Fomin?"), declined])
    assert not query.is_followup and query.unresolved == "he" and "fomin" not in query.terms
    assert not resolve("What did he say about NATO?", []).unresolved  # no conversation yet


def test_a_short_question_naming_its_own_subject_is_not_a_follow_up():
    history = [_turn("How many people have died in the Ukraine conflict?")]
    assert not is_followup("What did Wendy Sherman say?", history)
    assert is_followup("What did she say?", history)
    assert is_followup("What about Lavrov?", history)  # one word: it borrows the question
    # A question complete on its own stands alone, even when it shares words with the
    # conversation (issue 14: an earlier answer leaked into "What did Grushko demand?").
    assert not is_followup("How long did the meeting last?", [_turn("Who chaired the meeting?")])
    assert not is_followup("What did Grushko demand?", [_turn("How long did Grushko speak?")])
    assert not is_followup("How long did the meeting last?", history)
    # Pronouns that point back make a follow-up; the same words before a noun do not.
    assert is_followup("How do I undo that?", history) and is_followup("What happened there?", history)
    assert not is_followup("Which packages are there on the mirror that users install?", history)
    assert is_followup("Which file does it read?", history) and is_followup("Why?", history)
    lighthouse = [_turn("Who led the restoration of the Zephyr Point lighthouse?")]
    assert not is_followup("What is the oldest exhibit in the museum?", lighthouse)
    assert not is_followup("How do I bake bread?", [_turn("Who is Emily Sherwin?")])


def test_a_one_word_question_about_a_name_stands_alone():
    """"Who is Grushko?" after "How long did the meeting last?" is a question of its own (it got
    the four-hour sentence again); "Which file?" or "How many were killed?" still go on from the
    conversation. In lower case, the documents' own spelling says what is a name."""
    history = [_turn("How long did the meeting last?")]
    assert not is_followup("Who is Grushko?", history)
    assert is_followup("Which file?", history) and is_followup("Who won?", history)
    assert is_followup("How do I?", history)  # "I" names nobody
    forms = {"Grushko": 30, "killed": 4, "Killed": 1}
    capitalised = capitalised_in(SimpleNamespace(word_forms=lambda: forms))
    assert capitalised("grushko") and not capitalised("killed")
    assert not is_followup("who is grushko", history, capitalised)
    assert is_followup("who was killed", history, capitalised)
    assert is_followup("who is grushko", history)  # no word forms stored: read as before
    assert capitalised_in(SimpleNamespace(word_forms=lambda: None)) is None


def test_a_name_the_conversation_just_used_is_not_a_new_subject():
    history = [_turn("What did Russia demand from NATO?")]
    assert is_followup("Did NATO agree?", history)
    assert not is_followup("Did Lavrov agree?", history)


def test_and_a_bare_name_asks_the_previous_question_about_someone_else():
    previous = "What did Stoltenberg say about Ukraine joining NATO?"
    assert swapped_subject("And Grushko?", previous) == "What did Grushko say about Ukraine joining NATO?"
    assert swapped_subject("What about Alexander Fomin?", previous) == \
        "What did Alexander Fomin say about Ukraine joining NATO?"
    for not_a_name in ("And?", "When?", "Why?", "And the Russian side?", "What about it?",
                       "and grushko?", "And Grushko said?"):
        assert swapped_subject(not_a_name, previous) is None, not_a_name
    assert swapped_subject("And Grushko?", "How long did the meeting last?") is None
    query = resolve("And Grushko?", [_turn(previous)])
    assert query.text == "What did Grushko say about Ukraine joining NATO?"
    assert "stoltenberg" not in query.terms and query.terms["grushko"] == 1.0
    # Its answer's query is what the next "What about ...?" rewrites.
    chained = Turn("And Grushko?", Answer("And Grushko?", True, "answer", query=query.text))
    assert resolve("What about Fomin?", [chained]).text == "What did Fomin say about Ukraine joining NATO?"
    # A previous question whose subject is a pronoun has no name to swap: the usual follow-up.
    pronoun = "What did he say about relations with NATO?"
    assert swapped_subject("And Grushko?", pronoun) is None
    widened = Turn(pronoun, Answer(pronoun, True, "answer", query=pronoun + " Who is Alexander Fomin?"))
    query = resolve("And Grushko?", [widened])
    assert query.is_followup and "grushko" in query.terms


def test_self_contained_question_is_not_a_follow_up():
    history = [_turn("Who is Alexander Fomin?")]
    assert not is_followup("Where did the Russian Foreign Ministry publish draft agreements?", history)
    assert not is_followup("What did he say?", [])


def test_questions_are_not_answers():
    assert is_question("What did Russia say?")
    assert is_question('He asked: "Who benefits?"')
    assert not is_question("Russia said it would not attack Ukraine.")
    assert not is_question("The question of guarantees remains open")


def test_confidence_rises_with_evidence():
    def confidence(dense, coverage, mass, sentence, answer=None):
        evidence = {"dense": dense, "coverage": coverage, "mass": mass, "sentence": sentence}
        return answer_confidence(evidence | ({} if answer is None else {"answer": answer}))

    assert confidence(0.2, 0.1, 1.0, 0.2) < 0.05
    assert confidence(0.7, 0.9, 15.0, 0.7) > 0.9
    assert confidence(0.7, 0.9, 0.0, 0.7) < confidence(0.7, 0.9, 15.0, 0.7)
    # A passage the model barely matches, but one sentence close to the question and every
    # question word found: the words and the sentence carry it.
    assert confidence(0.2, 1.0, 15.0, 0.4) > confidence(0.2, 0.9, 15.0, 0.4)
    assert confidence(0.2, 1.0, 15.0, 0.4) > confidence(0.2, 1.0, 15.0, 0.2)
    # The answer-sentence scorer's judgement counts.
    assert confidence(0.4, 0.8, 5.0, 0.5, 0.9) > confidence(0.4, 0.8, 5.0, 0.5, 0.1)
    assert confidence(0.2, 0.1, 1.0, 0.2, 0.0) < 0.05


def test_typed_question_keeps_only_runners_up_of_that_type():
    best = Scored(_candidate(0, 0, "The meeting lasted four hours in Brussels."), 1.0, 1.0)
    untyped = Scored(_candidate(1, 0, "The mission was suspended last October."), 0.9, 0.9)
    typed = Scored(_candidate(2, 0, "Ukraine was discussed for an hour and a half."), 0.8, 0.8)
    chosen = select_sentences([best, untyped, typed], expected_type=answer_type("How long did it last?"))
    texts = [s.candidate.text for s in chosen]
    assert untyped.candidate.text not in texts and typed.candidate.text in texts
    assert answer_type("How many troops?") == "quantity" and answer_type("When was it?") == "time"
    assert answer_type("What did Grushko demand?") is None


def test_quote_balance_tells_opened_from_closed_quotes():
    assert quote_balance('"I look forward to meeting Minister Lavrov in Munich.') == (0, 1)
    assert quote_balance('That is part of our dialogue with Russia," Stoltenberg said.') == (1, 0)
    assert quote_balance('"Our differences will not be easy to bridge," he said.') == (0, 0)
    assert quote_balance("He said “yes” and left.") == (0, 0)
    assert quote_balance('It is a "test" of "will".') == (0, 0)
    assert quote_balance("“We are ready") == (0, 1)


def _passage(*texts, passage=0, start=0):
    """A passage's sentences laid out as in a document: one space between them."""
    out = []
    for i, text in enumerate(texts):
        out.append(_candidate(passage, i, text, start))
        start += len(text) + 1
    return out


def test_a_quote_cut_by_the_sentence_splitter_is_made_whole():
    one = _passage('Stoltenberg spoke.', '"I look forward to meeting Lavrov.', 'That is dialogue," he said.',
                   "Unrelated.")
    chosen = [Scored(one[1], 1.0, 0.8)]
    assert [s.candidate.position for s in complete_sentences(chosen, [one])] == [1, 2]
    # A sentence that closes a quote opened earlier gets the opening sentence.
    two = _passage('She added. "The pace is high.', 'Russia has a stark choice."', "Unrelated.")
    chosen = [Scored(two[1], 1.0, 0.8)]
    assert [s.candidate.position for s in complete_sentences(chosen, [two])] == [0, 1]
    # Whole sentences are left alone; a quote that never closes within reach stays as it was.
    three = _passage('"It runs on.', "and on.", "and on.", "and on.")
    for item in (Scored(one[0], 1.0, 0.8), Scored(three[0], 1.0, 0.8)):
        assert complete_sentences([item], [one if item.candidate is one[0] else three]) == [item]


def test_a_when_answer_without_a_time_takes_the_next_sentence_if_it_holds_one():
    one = _passage("Stoltenberg plans to meet Lavrov in Munich.",
                   "The meeting is expected on February 16-18.", "Unrelated.")
    chosen = [Scored(one[0], 1.0, 0.8)]
    assert [s.candidate.position for s in complete_sentences(chosen, [one], kind="time")] == [0, 1]
    assert [s.candidate.position for s in complete_sentences(chosen, [one])] == [0]  # no kind asked
    # Not when the next sentence holds no time, nor when the answer already holds one.
    two = _passage("Stoltenberg plans to meet Lavrov in Munich.", "Nothing else was said.")
    assert complete_sentences([Scored(two[0], 1.0, 0.8)], [two], kind="time") == [Scored(two[0], 1.0, 0.8)]
    three = _passage("They meet on Monday in Munich.", "The meeting is expected on February 16-18.")
    assert len(complete_sentences([Scored(three[0], 1.0, 0.8)], [three], kind="time")) == 1


def test_a_sentence_that_introduces_a_list_is_quoted_with_its_items():
    one = _passage("The ministry listed the key issues.", "First, NATO must not expand.",
                   "Second, no missiles in Europe.", "Third, fewer exercises.", "Russia expects talks.")
    chosen = [Scored(one[0], 1.0, 0.8)]
    assert [s.candidate.position for s in complete_sentences(chosen, [one])] == [0, 1, 2, 3]
    # Bullets after a colon; the list ends where the items do.
    two = _passage("He named three demands:", "- no expansion", "- no missiles", "- no exercises",
                   "That was all.")
    assert [s.candidate.position for s in complete_sentences([Scored(two[0], 1.0, 0.8)], [two])] \
        == [0, 1, 2, 3]
    # "Second, …" with no "First, …" before it is no list; an item chosen alone stays alone.
    three = _passage("The talks went on.", "Second, they met again.", "Third, they left.")
    assert len(complete_sentences([Scored(three[0], 1.0, 0.8)], [three])) == 1
    assert len(complete_sentences([Scored(one[2], 1.0, 0.8)], [one])) == 1
    # A long list may run past the usual length, once weaker runners-up have made room.
    long = _passage("These are the issues.", *(f"{w}, " + "x" * 150 + "." for w in ("First", "Second", "Third")))
    other = _passage("C" * 150 + ".", passage=1, start=10_000)
    done = complete_sentences([Scored(long[0], 2.0, 0.9), Scored(other[0], 1.0, 0.5)], [long, other])
    assert [s.candidate.passage for s in done] == [0, 0, 0, 0]
    assert 450 < sum(len(s.candidate.text) + 1 for s in done) <= 450 + 250


def test_completion_makes_room_by_dropping_weaker_runners_up_and_drops_lone_lead_ins():
    quote = _passage('"A' + "a" * 150 + ".", "B" * 150 + '," he said.')
    other = _passage("C" * 150 + ".", passage=1, start=10_000)
    chosen = [Scored(quote[0], 2.0, 0.9), Scored(other[0], 1.0, 0.5)]
    done = complete_sentences(chosen, [quote, other], max_chars=350)
    assert [(s.candidate.passage, s.candidate.position) for s in done] == [(0, 0), (0, 1)]
    # "... was less optimistic:" with its quote in another passage says nothing alone.
    lead = _passage("The ambassador was less optimistic:")
    chosen = [Scored(lead[0], 2.0, 0.9), Scored(other[0], 1.0, 0.5)]
    assert [s.candidate.passage for s in complete_sentences(chosen, [lead, other])] == [1]
    assert [s.candidate.passage for s in complete_sentences(chosen[:1], [lead, other])] == [0]


def test_a_bare_where_wants_a_place():
    assert answer_type("Where?", bare_follow_up=True) == "place"
    assert answer_type("In which city did they meet?", bare_follow_up=True) == "place"
    assert answer_type("Where did the council meet?") is None  # worse on held-out questions
    assert has_answer_type("The council met in Brussels on Wednesday.", "place")
    assert has_answer_type("talks at the Munich Security Conference", "place")
    assert not has_answer_type("In January they met again.", "place")
    assert not has_answer_type("in the end it failed", "place")


def test_already_said_is_what_the_last_turn_cited():
    from qa.results import Citation, Passage

    passage = Passage("a.txt", 0, 50, "x" * 50, 1.0, 1)
    cited = Answer("Who?", True, "It was her. [1]", (Citation(1, "a.txt", 10, 20, "x" * 10, 1, passage),),
                   query="Who?")
    declined = Answer("Football?", False, "The documents do not seem to cover this.")
    assert already_said([Turn("Football?", declined), Turn("Who?", cited)]) == [("a.txt", 10, 20)]
    # After a declined question, "Where?" has nothing to go on from.
    assert already_said([Turn("Who?", cited), Turn("Football?", declined)]) == []
    assert already_said([]) == []


def test_a_focused_passage_previews_from_its_best_sentence():
    from qa.results import Passage

    text = "First line about boats.\nThe ferry sails at noon. It is late."
    plain = Passage("a.txt", 100, 100 + len(text), text, 1.0, line=7)
    assert plain.lead() == (7, text) and "focus" not in plain.to_json()
    at = text.index("The ferry")
    focused = Passage("a.txt", 100, 100 + len(text), text, 1.0, line=7, focus=(100 + at, 100 + at + 24))
    assert focused.lead() == (8, "… " + text[at:])
    assert focused.to_json()["focus"] == (100 + at, 100 + at + 24)


def test_a_quote_cut_by_a_chunk_boundary_is_made_whole_from_the_next_passage():
    first = _passage("Grushko spoke.", '"If it is about vulnerabilities, we will look for yours.')
    elsewhere = _passage("Another article said the meeting was direct.", passage=1, start=5_000)
    second = _passage('It is not our choice," Grushko said.', "Then he left.", passage=2,
                      start=first[-1].end + 1)
    chosen = [Scored(first[1], 2.0, 0.9), Scored(elsewhere[0], 1.5, 0.5), Scored(second[0], 1.0, 0.5)]
    done = complete_sentences(chosen, [first, elsewhere, second])
    # The two halves of the quote stand together, in text order, before the other article.
    assert [s.candidate.text[:6] for s in done] == ['"If it', "It is ", "Anothe"]


def _kinds(sentences, kinds):
    """``sentences`` with one kind letter each (as qa.ingest.chunking gives them)."""
    return [dataclasses.replace(c, kind=k) for c, k in zip(sentences, kinds)]


def test_a_description_is_quoted_after_the_terms_it_defines():
    page = _kinds(_passage("OPTIONS", "-n", "--numbered", "Sort output by the number of commits.",
                           "It counts merges too.", "-s", "Give a summary only."), "hddttdt")
    # The best sentence is the description: the answer names the option it describes.
    done = complete_sentences([Scored(page[3], 2.0, 0.9)], [page])
    assert [s.candidate.text for s in done] == ["-n", "--numbered", "Sort output by the number of commits."]
    # Its second sentence is labelled too, with the first between (a citation is one span).
    assert [s.candidate.position for s in complete_sentences([Scored(page[4], 2.0, 0.9)], [page])] \
        == [1, 2, 3, 4]
    assert defined_by(page, 6) == [page[5]]
    # Not further back than that, nor across a heading, nor for a term itself.
    assert defined_by(_kinds(_passage("-n", "One.", "Two.", "Three."), "dttt"), 3) == []
    assert defined_by(_kinds(_passage("-n", "Usage", "One."), "dht"), 2) == []
    assert defined_by(page, 2) == [] and defined_by(page, 0) == []
    # A label takes no room from a runner-up: a 440-character answer keeps both sentences.
    long = _kinds(_passage("--a-rather-long-option-name=<value>", "D" * 200 + "."), "dt")
    other = _passage("C" * 200 + ".", passage=1, start=10_000)
    done = complete_sentences([Scored(long[1], 2.0, 0.9), Scored(other[0], 1.0, 0.5)], [long, other])
    assert [(s.candidate.passage, s.candidate.position) for s in done] == [(0, 0), (0, 1), (1, 0)]


def test_the_scorer_reads_the_best_sentences_and_the_closest_ones():
    from types import SimpleNamespace

    import numpy as np

    from qa.answer.ask import RESCORED, RESCORED_SIMILAR, rescore

    read = []

    class Scorer:
        def scores(self, question, texts):
            read.extend(texts)
            return np.zeros(len(texts))

    # Sentence i scores 10 - i by words; the last two are the closest by cosine.
    scored = [Scored(_candidate(0, i, f"sentence {i}"), 10.0 - i, 0.5, similarity=0.1) for i in range(10)]
    scored[8] = dataclasses.replace(scored[8], similarity=0.9)
    scored[9] = dataclasses.replace(scored[9], similarity=0.8)
    rescored, best = rescore(SimpleNamespace(scorer=Scorer()), "q", scored, [""])
    assert read == [f"sentence {i}" for i in range(RESCORED)] + ["sentence 8", "sentence 9"][:RESCORED_SIMILAR]
    assert best == 0.5 and sum(s.answer is not None for s in rescored) == len(read)

    # When the closest by cosine are among the best already, no other sentence is read (not
    # sentences 8 and 9, the next closest).
    read.clear()
    scored[1] = dataclasses.replace(scored[1], similarity=0.95)
    scored[2] = dataclasses.replace(scored[2], similarity=0.92)
    rescore(SimpleNamespace(scorer=Scorer()), "q", scored, [""])
    assert read == [f"sentence {i}" for i in range(RESCORED)]
