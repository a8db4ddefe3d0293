"""Typing slips in questions: a word the documents never use, one slip away from one they do,
is read as that word ("What did Grushko demnad?", "waht did stoltenbreg say").

A slip is a letter changed, added or left out, or two neighbours swapped (``one_slip``). The
candidates come from the index's own terms through a table of their one-letter deletions
(SymSpell's idea), built once per index generation on the first unseen word; among several, the
term in the most chunks wins. The word put in the question is the corpus's own most frequent
spelling of that term, so the dense side reads a real word ("Stoltenberg", capital and all).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

from qa.index.lexical import STOP_WORDS, terms

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
MIN_LENGTH = 4  # shorter words have too many neighbours one slip away
SURFACE_CHUNKS = 20  # chunks read to find how the documents spell a term


def one_slip(a: str, b: str) -> bool:
    """Whether words of four or more letters differ by one typing slip: a letter changed, added or
    left out, or two neighbours swapped."""
    if a == b or min(len(a), len(b)) < MIN_LENGTH or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k in range(len(short)) if short[k] != long[k]), len(short))
    return short[i:] == long[i + 1:]


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def _transposed(a: str, b: str) -> bool:
    """Whether ``a`` is ``b`` with two neighbouring letters swapped."""
    diff = [i for i in range(len(a)) if len(a) == len(b) and a[i] != b[i]]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] \
        and a[diff[1]] == b[diff[0]]


class Speller:
    """Corrects question words against the terms of one index generation. ``lexicon`` holds
    words known to be spelled right (the model's whole-word pieces, about 20,000 English words):
    "Finland" or "world" are never taken for slips of "inland" or "would"."""

    def __init__(self, doc_freq: Mapping[str, int], lexicon: frozenset[str] = frozenset()):
        self.doc_freq = doc_freq
        self.lexicon = lexicon
        self._table: dict[str, list[str]] | None = None

    def _candidates(self, term: str) -> list[str]:
        if self._table is None:
            table: dict[str, list[str]] = {}
            for known in self.doc_freq:
                if len(known) >= MIN_LENGTH - 1:
                    for key in _deletions(known) | {known}:
                        table.setdefault(key, []).append(known)
            self._table = table
        found = {k for key in _deletions(term) | {term} for k in self._table.get(key, ())}
        return [k for k in found if one_slip(term, k)]

    def correction(self, word: str) -> str | None:
        """The term ``word`` was meant to be, "" for a stop word, or None when it is not a slip."""
        lower = word.lower()
        if len(lower) < MIN_LENGTH or lower in STOP_WORDS or lower in self.lexicon:
            return None
        found = terms(word)
        if not found or found[0] in self.doc_freq:
            return None
        if any(_transposed(lower, stop) for stop in STOP_WORDS):
            return ""  # "waht", "whcih": a small word mistyped
        candidates = self._candidates(found[0]) or self._candidates(lower)
        if not candidates:
            return None
        return max(candidates, key=lambda k: (self.doc_freq[k], k))


def corrected(question: str, speller: Speller, spelling_of) -> str:
    """``question`` with its slips mended. ``spelling_of(term, typed)`` gives the documents'
    spelling of a term (None if unknown)."""
    out, last = [], 0
    for match in _WORD.finditer(question):
        term = speller.correction(match.group())
        if term is None:
            continue
        if term == "":
            replacement = next(s for s in sorted(STOP_WORDS) if _transposed(match.group().lower(), s))
        else:
            replacement = spelling_of(term, match.group())
            if replacement is None:
                continue
        out.append(question[last:match.start()])
        out.append(replacement)
        last = match.end()
    out.append(question[last:])
    return "".join(out)


def spelling_in(texts, term: str, typed: str) -> str | None:
    """The spelling of ``term`` among the words of ``texts`` that is one slip from ``typed``,
    else its most frequent one."""
    forms = Counter(w for text in texts for w in _WORD.findall(text) if terms(w)[:1] == [term])
    if not forms:
        return None
    return max(forms, key=lambda w: (one_slip(w.lower(), typed.lower()), forms[w]))


def whole_words(vocabulary: list[str]) -> frozenset[str]:
    """The word pieces of a WordPiece vocabulary that are whole words of letters."""
    return frozenset(w for w in vocabulary if w.isalpha() and not w.startswith("##") and len(w) > 1)
