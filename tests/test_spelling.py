"""Typing slips in questions are mended against the documents' own words, and only slips."""

from __future__ import annotations

from qa.search.spelling import Speller, one_slip, transposed, typing_slip

TEXTS = [
    "Grushko said Russia demands legal guarantees. Stoltenberg chaired the meeting.",
    "The slavery museum opened. A singer performed. Users can log in. The lane was closed.",
    "NATO allies met in Brussels; Grushko spoke of Ukraine and of demands.",
]
LEXICON = ["liar", "world", "finland", "sign", "teacher"]


def speller() -> Speller:
    return Speller(TEXTS, LEXICON)


def test_swapped_added_or_missing_letters_are_mended():
    s = speller()
    assert s.mend("What did Grushko demnad?") == "What did Grushko demands?"
    assert s.mend("waht did stoltenbreg say") == "what did Stoltenberg say"
    assert s.mend("What did Grushkoo say?") == "What did Grushko say?"


def test_real_words_names_and_changed_letters_are_left_alone():
    s = speller()
    # A changed letter is not corrected: it turns real words into other real words.
    assert s.mend("Who notably improved the Savery pump?") == "Who notably improved the Savery pump?"
    assert s.mend("Who won the World Cup?") == "Who won the World Cup?"  # not "would"
    assert s.mend("liars and teachers") == "liars and teachers"  # inflections of known words
    # A capitalised word is a name: only a name can mend it.
    assert s.correction("Slavery") is None or s.correction("Slavery")[:1].isupper()
    assert s.mend("Did NATO meet?") == "Did NATO meet?"  # short words are never mended


def test_slip_kinds():
    assert transposed("demnad", "demand") and not transposed("demand", "demand")
    assert typing_slip("grushkoo", "grushko") and typing_slip("rusia", "russia")
    assert not typing_slip("mullet", "bullet")  # a changed letter
    assert one_slip("mullet", "bullet") and one_slip("demnad", "demand")
    assert not one_slip("abc", "abd") and not one_slip("nato", "natoxx")


def test_candidates_are_exactly_the_words_one_slip_from_the_word_or_its_stem():
    """The lookups of a word's own slips find what a scan of every document word finds."""
    import random

    from qa.index.lexical import STOP_WORDS, stem
    from qa.search.spelling import MIN_LENGTH

    texts = TEXTS + ["Ministers discussed the availability of forces, the ministries' démarches, "
                     "and whether demanding answers was wise; the committees reconvened."]
    s = Speller(texts, LEXICON)
    known = [k for k in s.count if len(k) >= MIN_LENGTH - 1 and k not in STOP_WORDS]
    rng = random.Random(3)
    words = ["demnad", "stoltenbreg", "grushkoo", "minsiters", "committes", "démarchs", "xyzq"]
    for word in rng.sample(known, 12):
        i = rng.randrange(len(word))
        words += [word[:i] + word[i + 1:], word[:i] + "e" + word[i:], word[::-1]]
    for word in words:
        forms = {word, stem(word)}
        expected = {k for k in known if abs(len(k) - len(word)) <= 2 and any(
            typing_slip(form, k) or typing_slip(form, stem(k)) for form in forms)}
        assert set(s._candidates(word)) == expected, word
