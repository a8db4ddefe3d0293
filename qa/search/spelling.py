"""Typing slips in questions: a word the documents never use, one slip away from a word they do,
is read as that word ("What did Grushko demnad?", "waht did stoltenbreg say").

A slip here is two neighbouring letters swapped, a letter added or a letter left out. A changed
letter is not corrected: it too often turns one real word into another ("Mullet" into "bullet",
"Gott" into "goat"), which on held-out questions about things the documents do not cover made
qa answer instead of declining. Words the model's vocabulary knows whole (about 20,000 English
words), and their inflections, are never corrected either: "Finland" is not a slip of "inland",
"liars" not one of "Lars"; and a capitalised word is a name, mended only into a name.

The candidates are the documents' own words that the word's own slips spell (Norvig's idea:
its deletions, swaps and one-letter insertions, looked up), or whose stem they spell; among
several, the most frequent wins, spelled as the documents spell it most often ("Stoltenberg").
A table of every document word's deletions (SymSpell's idea) found the same words, but took
0.6 s and 41 MB to build at the first unknown word for 22,000 word forms (SQuAD), growing with
the vocabulary; the lookups take a few hundred set probes per unknown word.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from qa.index.lexical import STOP_WORDS, WORD_FORM, count_forms, stem

_WORD = WORD_FORM
MIN_LENGTH = 4  # shorter words have too many neighbours one slip away


def one_slip(a: str, b: str) -> bool:
    """Whether words of four or more letters differ by one slip: two neighbours swapped, a letter
    added or left out, or a letter changed."""
    if a == b or min(len(a), len(b)) < MIN_LENGTH or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or transposed(a, b)
    return _one_more(a, b)


def typing_slip(a: str, b: str) -> bool:
    """``one_slip`` without a changed letter: the slips corrected in questions."""
    if a == b or min(len(a), len(b)) < MIN_LENGTH:
        return False
    return transposed(a, b) if len(a) == len(b) else abs(len(a) - len(b)) == 1 and _one_more(a, b)


def transposed(a: str, b: str) -> bool:
    """Whether ``a`` is ``b`` with two neighbouring letters swapped."""
    if len(a) != len(b):
        return False
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] \
        and a[diff[1]] == b[diff[0]]


def _one_more(a: str, b: str) -> bool:
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k in range(len(short)) if short[k] != long[k]), len(short))
    return short[i:] == long[i + 1:]


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


class Speller:
    """Mends question words against the words of one index generation's documents."""

    def __init__(self, texts: Iterable[str], lexicon: Iterable[str] = (),
                 forms: dict[str, int] | None = None):
        """From the documents' ``texts``, or from ``forms``, the count of each word form in them
        (stored by the build: qa.index.reuse.word_forms_for)."""
        if forms is None:
            forms = count_forms(texts)
        self.count: Counter[str] = Counter()
        spelled: dict[str, tuple[int, str]] = {}
        for form, n in forms.items():
            lower = form.lower()
            self.count[lower] += n
            if n > spelled.get(lower, (0, ""))[0]:
                spelled[lower] = (n, form)
        self.spelling = {lower: form for lower, (_, form) in spelled.items()}
        # Words known to be spelled right, by their stems, so "liars" or "teachers" count too.
        self.lexicon = frozenset(stem(w) for w in lexicon)
        self._by_stem: dict[str, list[str]] | None = None
        self._letters = ""

    def _candidates(self, word: str) -> list[str]:
        """Documents' words one slip from ``word``, or from its stem ("demnad" meets "demands")."""
        if self._by_stem is None:
            by_stem: dict[str, list[str]] = {}
            for known in self.count:
                if len(known) >= MIN_LENGTH - 1 and known not in STOP_WORDS:
                    by_stem.setdefault(stem(known), []).append(known)
            self._by_stem = by_stem
            self._letters = "".join(sorted({ch for known in self.count for ch in known}))
        found: set[str] = set()
        for form in {word, stem(word)}:
            for slip in self._slips(form):
                if slip in self.count and len(slip) >= MIN_LENGTH - 1 and slip not in STOP_WORDS:
                    found.add(slip)
                found.update(self._by_stem.get(slip, ()))
        # Through stems, a word may meet a much longer one ("vail", "available"): not a slip.
        return [k for k in found if abs(len(k) - len(word)) <= 2]

    def _slips(self, form: str) -> set[str]:
        """Every word one typing slip from ``form`` (typing_slip): a letter left out, two
        neighbours swapped, or one of the documents' letters added."""
        if len(form) < MIN_LENGTH:  # typing_slip wants both words this long
            return set()
        cuts = [(form[:i], form[i:]) for i in range(len(form) + 1)]
        slips = {a + ch + b for a, b in cuts for ch in self._letters}
        slips |= {a + b[1] + b[0] + b[2:] for a, b in cuts if len(b) > 1 and b[0] != b[1]}
        if len(form) > MIN_LENGTH:
            slips |= _deletions(form)
        return slips

    def correction(self, word: str) -> str | None:
        """The word ``word`` was meant to be, as the documents spell it, or None."""
        lower = word.lower()
        if len(lower) < MIN_LENGTH or lower in self.count or stem(lower) in self.lexicon:
            return None
        stop = next((s for s in sorted(STOP_WORDS) if transposed(lower, s)), None)
        if stop is not None:
            return stop  # "waht", "whcih": a small word mistyped
        candidates = self._candidates(lower)
        if not candidates:
            return None
        if word[:1].isupper():
            # A capitalised word is a name: it is mended only into a name ("Savery" is no slip of
            # "slavery").
            candidates = [k for k in candidates if self.spelling[k][:1].isupper()]
            if not candidates:
                return None
        best = max(candidates, key=lambda k: (self.count[k], k))
        return self.spelling[best]

    def mend(self, question: str) -> str:
        """``question`` with its slips mended."""
        out, last = [], 0
        for match in _WORD.finditer(question):
            replacement = self.correction(match.group())
            if replacement is None:
                continue
            out += [question[last:match.start()], replacement]
            last = match.end()
        return "".join(out) + question[last:]


def whole_words(vocabulary: list[str]) -> frozenset[str]:
    """The word pieces of a WordPiece vocabulary that are whole words of letters."""
    return frozenset(w for w in vocabulary if w.isalpha() and not w.startswith("##") and len(w) > 1)
