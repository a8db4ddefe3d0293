"""Follow-up questions without an LLM: carry the previous question into a real follow-up only.

A question that is complete on its own is answered on its own, even in a conversation. A
follow-up is a question with a pronoun that points back ("What did she say?", "How do I undo
it?"), one that goes on from the last answer ("And Grushko?", "What about Wi-Fi?"), or an
elliptic one ("When?", "Which file?", "Did NATO agree?" after a question about NATO). The referent
is the last turn: when it was declined, there is none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa.index.lexical import STOP_WORDS, question_terms, terms
from qa.results import Turn

# Pronouns that point back, whatever follows them; "this", "that", "these" and "those" do when
# they stand for a noun ("How do I undo that?") rather than go with one ("that package"); "there"
# and "then" when they end the question ("What happened there?").
POINTING = frozenset("he him his she her hers they them their theirs it its".split())
DEMONSTRATIVES = frozenset("this that these those".split())
PLACE_TIME = frozenset("there then".split())
ANAPHORA = POINTING | DEMONSTRATIVES | PLACE_TIME
# Yes/no questions begin with these; a short one about nothing new borrows its topic.
AUXILIARIES = frozenset("did does do was were is are will would can could has have should".split())
# Pronouns for people: after "Who chaired the meeting?", "he" is whoever the answer names.
PERSONAL = frozenset("he him his she her hers they them their theirs".split())
GENDER = {**dict.fromkeys(("he", "him", "his"), "m"), **dict.fromkeys(("she", "her", "hers"), "f")}
_ASKS_WHO = re.compile(r"^\s*(?:and\s+)?(?:who|whom|whose)\b", re.I)
_ASKS_AGAIN = re.compile(r"^\s*(?:and|but|also|what about|how about)\b", re.I)
# Context terms count this much against the new question's own terms.
CONTEXT_WEIGHT = 0.5
SENTENCE_CONTEXT_WEIGHT = 0.25
# The context finds the subject, but can drown a short follow-up ("How long did it last?"), so
# the best passages for the follow-up's own words are considered too.
FOLLOWUP_OWN_PASSAGES = 2
SHORT_QUESTION_TERMS = 2
# Capitalised first words of a reply that are not someone's name ("When?", "Really?").
NOT_NAMES = frozenset("who whom whose which when where why how what really yes no ok okay thanks "
                      "please".split())
# First words that are not names in "And Grushko?"-style replies either.
CONNECTIVES = frozenset("and but also what how".split()) | AUXILIARIES
MAX_CONTEXT_CHARS = 300
_NAME = re.compile(r"\b(?!I\b)[A-Z][\w'’-]*")
_NAME_RUN = r"(?!I\b)[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*"
# "And Grushko?", "What about Alexander Fomin?": the same question about someone else.
_SWAP = re.compile(rf"(?:[Aa]nd|[Bb]ut|[Aa]lso)?\s*(?:(?:[Ww]hat|[Hh]ow)\s+about\s+)?({_NAME_RUN})\s*[?.!]*")


@dataclass(frozen=True)
class Query:
    """What is searched for one question."""

    text: str  # the text embedded for dense retrieval
    terms: dict[str, float]  # BM25 term -> weight
    is_followup: bool = False
    own_text: str = ""  # a follow-up's own words, searched on their own as well
    # A person pronoun ("she") that points at nothing: the last question was declined.
    unresolved: str = ""

    def own_terms(self) -> dict[str, float]:
        return {t: w for t, w in self.terms.items() if w >= 1.0}

    def sentence_terms(self) -> dict[str, float]:
        """Weights for picking answer sentences: the context found the passages, so here the
        new question's own words count most."""
        if not self.is_followup:
            return self.terms
        return {t: (w if w >= 1.0 else SENTENCE_CONTEXT_WEIGHT) for t, w in self.terms.items()}


# Follow-ups read the last turn; a few more are kept, never the whole conversation, so memory
# stays bounded over thousands of questions.
HISTORY_TURNS = 8


def recent(history: Sequence[Turn], limit: int = HISTORY_TURNS) -> list[Turn]:
    """The turns follow-ups may use: the last ``limit``."""
    return list(history[-limit:])


def referent(history: Sequence[Turn]) -> Turn | None:
    """The turn a follow-up goes on from: the last one, if the documents answered it. After a
    declined question ("Who won the 2018 World Cup?"), "she" or "it" points at nothing."""
    return history[-1] if history and history[-1].answer.found else None


def points_back(question: str) -> bool:
    """Whether the question has a pronoun that points back to the conversation."""
    words = re.findall(r"[a-z']+", question.lower())
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if word in POINTING:
            return True
        if word in DEMONSTRATIVES and (not following or following in STOP_WORDS):
            return True
        if word in PLACE_TIME and i == len(words) - 1:
            return True
    return False


def names_its_subject(question: str, capitalised: Callable[[str], bool] | None = None) -> bool:
    """Whether a question of one term names what it asks about ("Who is Grushko?", "what is
    Kerberos"): the term is a capitalised word past the question's first, or a word the documents
    write capitalised (``capitalised``: "who is grushko"). "Which file?" or "How many were
    killed?" name nothing: they ask about what the conversation is about."""
    words = re.findall(r"[\w'’-]+", question)
    if any(w[0].isupper() and w != "I" and w.lower() not in NOT_NAMES | CONNECTIVES for w in words[1:]):
        return True
    return capitalised is not None and any(terms(w) and capitalised(w) for w in words)


def is_followup(question: str, history: Sequence[Turn],
                capitalised: Callable[[str], bool] | None = None) -> bool:
    """A real follow-up of the last turn (see the module's note); never after a declined one.
    ``capitalised(word)``: whether the documents write that word capitalised (a name)."""
    previous = referent(history)
    if previous is None:
        return False
    if points_back(question) or _ASKS_AGAIN.match(question):
        return True
    own = set(terms(question))
    if len(own) <= 1:
        # "When?", "Which file?", "How many were killed?", but not "Who is Grushko?"
        return not own or not names_its_subject(question, capitalised)
    words = re.findall(r"[a-z']+", question.lower())
    said = set(terms(previous.question)) | set(terms(previous.answer.text))
    names = [name for name in _NAME.findall(question.strip()[1:]) if not set(terms(name)) <= said]
    # "Did NATO agree?" after a question about NATO: a short yes/no question naming nothing new.
    return bool(words) and words[0] in AUXILIARIES and len(own) <= SHORT_QUESTION_TERMS \
        and not names and bool(own & said)


def already_said(history: Sequence[Turn]) -> list[tuple[str, int, int]]:
    """(source, start, end) of what the previous turn quoted."""
    previous = referent(history)
    return [(c.source, c.start, c.end) for c in previous.answer.citations] if previous else []


def swapped_subject(question: str, previous: str) -> str | None:
    """"And Grushko?" after "What did Stoltenberg say about Ukraine?" asks "What did Grushko say
    about Ukraine?": the first name of the previous question gives way to the new one. None
    unless the question is such a bare name and the previous question names someone first."""
    match = _SWAP.fullmatch(question.strip())
    if not match or match.group(1).split()[0].lower() in CONNECTIVES | NOT_NAMES | ANAPHORA:
        return None
    first = re.search(_NAME_RUN, previous[1:])
    if first is None:
        return None
    start = first.start() + 1
    if any(w in ANAPHORA for w in re.findall(r"[a-z']+", previous[:start].lower())):
        return None  # "What did he say about NATO?": its subject is "he", not a name
    return previous[:start] + match.group(1) + previous[start + len(first.group(0)):]


def resolve(question: str, history: Sequence[Turn],
            capitalised: Callable[[str], bool] | None = None,
            gender_of: Callable[[str], str | None] | None = None) -> Query:
    """The query for ``question``, widened with the previous turn when it is a follow-up
    (``capitalised`` as for is_followup, ``gender_of`` as for named_by_answer)."""
    own = {t: 1.0 for t in question_terms(question)}
    previous = referent(history)
    if previous is None:
        person = next((w for w in re.findall(r"[a-z']+", question.lower()) if w in PERSONAL), "")
        return Query(question, own, unresolved=person if history else "")
    followup = is_followup(question, history, capitalised)
    # "And Henrietta Cole?" names someone new, so it is no follow-up by the rules of is_followup,
    # yet it asks the previous question again about her; a bare "Emily Sherwin", without "and",
    # "what about" or a question mark, is a search of its own.
    if followup or _ASKS_AGAIN.match(question) or question.rstrip().endswith("?"):
        prior = previous.answer.query or previous.question
        if prior.startswith(previous.question + " "):
            prior = previous.question  # a follow-up widened with its context: its own words
        swapped = swapped_subject(question, prior) or named_by_answer(question, previous, gender_of)
        if swapped is not None:
            return Query(swapped, {t: 1.0 for t in question_terms(swapped)})
    if not followup:
        return Query(question, own)
    context = previous.answer.query or previous.question
    context = context[-MAX_CONTEXT_CHARS:]
    weighted = dict(own)
    for term in terms(context):
        weighted.setdefault(term, CONTEXT_WEIGHT)
    return Query(f"{question} {context}", weighted, True, question)


def named_by_answer(question: str, previous: Turn,
                    gender_of: Callable[[str], str | None] | None = None) -> str | None:
    """"What did he say about Ukraine?" after "Who chaired the meeting?" was answered with "NATO
    Secretary General Jens Stoltenberg, who chaired …" asks "What did Jens Stoltenberg say about
    Ukraine?": the person pronoun becomes the one name (its last two words: titles come first) of
    the answer's first citation that the previous question did not hold. None unless the previous
    question asked "Who …?", named nobody itself, and its answer names exactly one such person.

    With ``gender_of(name)`` ("f", "m" or None: how the documents refer to that person), "she"
    is the one person of the answer's citations whom the documents call "she", whoever comes
    first ("Who represented the United States?" answered with "… Jens Stoltenberg, Deputy
    Secretary of State Wendy Sherman …"), unless the question named that person itself."""
    pronouns = [m for m in re.finditer(r"\b[A-Za-z]+\b", question) if m.group(0).lower() in PERSONAL]
    if not previous.answer.citations or not _ASKS_WHO.match(previous.question) or len(pronouns) != 1:
        return None
    word = pronouns[0]
    wanted = GENDER.get(word.group(0).lower())
    asked = set(terms(previous.question))
    cited = [_names(citation.text, asked) for citation in previous.answer.citations]
    name = None
    if wanted and gender_of is not None:
        everyone = list(dict.fromkeys(n for names in cited for n in names))
        agreeing = [n for n in everyone if gender_of(n) == wanted]
        # Not when someone else might be meant: one the documents say nothing of ("he" after
        # "… Alexander Grushko and Alexander Fomin", Fomin never "he" or "she"), or whom the
        # previous question named.
        unclear = [n for n in everyone if gender_of(n) is None]
        named_before = [n for n in _names(previous.question, set()) if gender_of(n) == wanted]
        if len(agreeing) == 1 and not unclear and not named_before:
            name = agreeing[0]
    if name is None:
        if _NAME.search(previous.question.strip()[1:]):
            return None  # "Who is Fomin?", "Who met Grushko?": "he" may well be the one it named
        if len(cited[0]) != 1 or (wanted and gender_of is not None and
                                  gender_of(cited[0][0]) not in (None, wanted)):
            return None
        name = cited[0][0]
    replacement = name + "'s" if word.group(0).lower() in ("his", "their", "hers", "theirs") else name
    return question[:word.start()] + replacement + question[word.end():]


def _names(text: str, asked: set[str]) -> list[str]:
    """The people a text names (runs of two or more capitalised words, their last two words),
    in order, but for those made only of ``asked`` terms."""
    runs = (" ".join(run.rstrip(".").split()[-2:]) for run in re.findall(_NAME_RUN, text)
            if len(run.split()) >= 2 and not set(terms(run)) <= asked)
    return list(dict.fromkeys(runs))
