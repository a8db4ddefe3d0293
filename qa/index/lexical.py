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


# The version of the rules below. BM25 and the document frequencies stored in an index were
# computed with them: an index made under other rules gets them recomputed (see store).
TERM_RULES = 5  # 2: irregular past forms; 3, 4: agent and action nouns; 5: those nouns dropped


def _to_verb(forms_of: dict[str, str]) -> dict[str, str]:
    """{verb: "form form"} turned round: {form: verb}."""
    return {form: verb for verb, forms in forms_of.items() for form in forms.split()}


# Irregular past forms of common verbs, mapped to the verb before stemming, so that "What did
# Sherman say?" meets "Sherman said" and "who won" meets "wins". Forms that are mostly other
# words (bit, born, ground, wound, lay) are left out.
_IRREGULAR = _to_verb({
    "say": "said", "tell": "told", "meet": "met", "win": "won", "hold": "held", "lead": "led",
    "make": "made", "take": "took taken", "give": "gave given", "go": "went gone",
    "come": "came", "see": "saw seen", "know": "knew known", "think": "thought",
    "bring": "brought", "buy": "bought", "build": "built", "send": "sent", "spend": "spent",
    "lose": "lost", "leave": "left", "find": "found", "begin": "began begun",
    "become": "became", "write": "wrote written", "speak": "spoke spoken",
    "break": "broke broken", "choose": "chose chosen", "drive": "drove driven",
    "eat": "ate eaten", "fall": "fell fallen", "feel": "felt", "fight": "fought",
    "fly": "flew flown", "forget": "forgot forgotten", "grow": "grew grown", "keep": "kept",
    "pay": "paid", "run": "ran", "rise": "rose risen", "sell": "sold", "shoot": "shot",
    "sit": "sat", "stand": "stood", "strike": "struck", "swear": "swore sworn",
    "teach": "taught", "throw": "threw thrown", "understand": "understood",
    "wear": "wore worn", "sing": "sang sung", "steal": "stole stolen", "hide": "hid hidden",
    "draw": "drew drawn", "freeze": "froze frozen", "shake": "shook shaken",
    "sleep": "slept", "mean": "meant", "deal": "dealt", "seek": "sought", "catch": "caught",
    "flee": "fled", "feed": "fed", "hang": "hung", "lend": "lent", "withdraw": "withdrew withdrawn",
    "arise": "arose arisen", "get": "got gotten", "sink": "sank sunk", "swim": "swam swum",
    "drink": "drank drunk", "ride": "rode ridden", "forbid": "forbade forbidden",
    "overcome": "overcame", "undertake": "undertook undertaken", "sweep": "swept",
    "weep": "wept", "tear": "tore torn", "bend": "bent", "bind": "bound", "shine": "shone",
    "spin": "spun", "stick": "stuck", "sting": "stung", "swing": "swung", "dig": "dug",
    "light": "lit", "slide": "slid", "beat": "beaten", "bite": "bitten", "blow": "blew blown",
    "hear": "heard", "tread": "trod trodden", "wake": "woke woken",
})


_BASE_FORM = _IRREGULAR


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
            term = "" if base in STOP_WORDS else stem(_BASE_FORM.get(base, base))
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


# A word as the speller (qa.search.spelling) knows it: letters, with inner apostrophes.
WORD_FORM = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")


def count_forms(texts) -> "Counter[str]":
    """How often each word form (as written) occurs in ``texts``."""
    from collections import Counter

    return Counter(w for text in texts for w in WORD_FORM.findall(text))
