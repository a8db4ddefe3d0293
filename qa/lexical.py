"""Words for BM25 and for lexical overlap: lower-cased, stop words dropped, Snowball-stemmed."""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)

STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves s t don also""".split()
)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    return _stemmer().stemWord(word)


def _possessive_dropped(word: str) -> str:
    return word[:-2] if word.endswith(("'s", "’s")) else word


def words(text: str) -> list[str]:
    """Lower-cased words, possessives dropped ("Russia’s" -> "russia")."""
    return [_possessive_dropped(w) for w in _WORD.findall(text.lower())]


# word -> its term, or "" for a stop word. Terms are computed for every passage and sentence a
# question touches, so the per-word work is done once per distinct word.
_TERM_OF: dict[str, str] = {}


def terms(text: str) -> list[str]:
    """Stemmed content words of ``text``, in order, repeats kept."""
    out = []
    for word in _WORD.findall(text.lower()):
        term = _TERM_OF.get(word)
        if term is None:
            base = _possessive_dropped(word)
            term = "" if base in STOP_WORDS else stem(base)
            if len(_TERM_OF) < 500_000:
                _TERM_OF[word] = term
        if term:
            out.append(term)
    return out


# In "how long did it last" the adjective asks for the answer's type; it is not a topic word.
_WH_ADJECTIVE = re.compile(
    r"\bhow\s+(long|many|much|often|far|old|big|large|tall|high|soon|early|late|fast)\b", re.I)


def question_terms(question: str) -> list[str]:
    """Terms of a question, without the adjective of a "how long / how many ..." phrase."""
    return terms(_WH_ADJECTIVE.sub(" ", question))
