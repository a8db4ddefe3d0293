"""What the documents say about the words of a question: which are names, and whether the
documents call a person "he" or "she". Follow-ups use both (qa.answer.followup): "who is grushko"
names its subject, and "What did she say?" points at the person of the last answer whom the
documents call "she"."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from qa.index.lexical import terms
from qa.search.retrieval import bm25_scores

# A word the documents write capitalised this often or more is a name ("Grushko", "NATO"; not
# "The", capitalised at a sentence's start): "who is grushko" names its subject.
NAME_SHARE = 0.9


def capitalised_in(snap) -> Callable[[str], bool] | None:
    """Whether the documents write a word capitalised (see NAME_SHARE); None for a generation
    that did not store its word forms."""
    forms = snap.word_forms()
    if forms is None:
        return None

    def capitalised(word: str) -> bool:
        lower = word.lower()
        upper = forms.get(lower[:1].upper() + lower[1:], 0) + (forms.get(word.upper(), 0) if len(word) > 1 else 0)
        return upper > 0 and upper >= NAME_SHARE * (upper + forms.get(lower, 0))
    return capitalised


# A person's gender is read from the first "he"/"she"-kind pronoun within this many characters
# after each mention of their surname, in up to MENTIONS_READ chunks that use it ("US Deputy
# Secretary of State Wendy Sherman said … she added"), and kept when one reading has at least
# twice the other's votes.
PRONOUN_WINDOW = 300
MENTIONS_READ = 30
_PRONOUN = re.compile(r"\b(?:(he|him|his|himself)|(she|her|hers|herself))\b", re.I)


def pronoun_votes(text: str, surname: str) -> tuple[int, int]:
    """(he, she): the first person pronoun after each mention of ``surname`` in ``text``."""
    he = she = 0
    for mention in re.finditer(rf"\b{re.escape(surname)}\b", text):
        pronoun = _PRONOUN.search(text, mention.end(), mention.end() + PRONOUN_WINDOW)
        if pronoun:
            he += pronoun.group(1) is not None
            she += pronoun.group(2) is not None
    return he, she


def gender_in(snap) -> Callable[[str], str | None]:
    """``gender(name)``: "m" or "f" as the documents refer to that person, None when they do
    not say clearly. Remembered per index generation."""
    known = snap.derived.setdefault("gender", {})

    def gender(name: str) -> str | None:
        if name not in known:
            known[name] = _read_gender(snap, name.split()[-1])
        return known[name]
    return gender


def _read_gender(snap, surname: str) -> str | None:
    wanted = terms(surname)
    if len(wanted) != 1:
        return None
    scores = bm25_scores(snap.bm25, wanted)
    rows = np.flatnonzero(scores > 0)
    rows = rows[np.argsort(-scores[rows], kind="stable")][:MENTIONS_READ]
    he = she = 0
    for row in rows.tolist():
        votes = pronoun_votes(snap.chunk_text(snap.chunks[row]), surname)
        he, she = he + votes[0], she + votes[1]
    if he >= 2 * she and he:
        return "m"
    if she >= 2 * he and she:
        return "f"
    return None
