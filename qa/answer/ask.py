"""From a question to an Answer: retrieve, fuse, collapse copies, pick sentences, cite, or abstain."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from qa.answer.sentences import (
    PASSAGES_CONSIDERED,
    UNSEEN_CONFIDENCE,
    Candidate,
    Scored,
    answer_confidence,
    answer_type,
    has_answer_type,
    is_question,
    passage_coverage,
    passage_prior,
    score_sentences,
    select_sentences,
    unseen_names,
    unseen_terms,
)
from qa.answer.completion import complete_sentences, defined_by, group_citations
from qa.answer.scorer import scorer_input
from qa.answer.followup import FOLLOWUP_OWN_PASSAGES, Query, already_said, resolve
from qa.answer.referents import capitalised_in, gender_in
from qa.index.late_interaction import TOKEN_WEIGHT
from qa.index.lexical import terms
from qa.results import Answer, Citation, Passage, Turn, line_of, locator_at, page_of
from qa.ingest.chunking import default_token_counter
from qa.search.scope import ScopedRows
from qa.search.spelling import Speller, whole_words
from qa.search.retrieval import (
    CANDIDATES,
    RERANK_HEAD,
    bm25_scores,
    collapse_near_duplicates,
    dense_ranking,
    dense_weight,
    lexical_candidates,
    normalized_score_fusion,
    rerank_by_phrases,
    rerank_by_words,
    shingles,
    within,
)

MAX_QUERY_CHARS = 2000
MAX_QUERY_TERMS = 64
# Below this confidence the answer says the documents do not cover the question. Chosen on
# tuning questions of no reported sample (SQuAD's 4 validation articles, 400 news questions
# outside the sample, each set's questions also asked of the other corpus): from .1 to .15 a
# step declines about as many answers holding the gold as questions the corpus does not
# cover, on news more of the first (news corpus: answered .843, off-topic declined .915; SQuAD
# .993 / .907). At .2, as fitted on SQuAD and Sphinx's manual alone, it declined 23% of the news
# questions. Kept when the confidence was refitted with a documentation collection's questions
# (qa.answer.sentences): news tuning answered .817, off-topic declined .937; SQuAD .987 / .913.
ABSTAIN_BELOW = 0.1
NOT_FOUND = "The documents do not seem to cover this."


@dataclass
class Retrieval:
    passages: list[Passage]
    rows: list[int]
    dense: dict[int, float]
    bm25: dict[int, float]
    vector: np.ndarray | None = None
    timings: dict = field(default_factory=dict)


def retrieve(engine, text: str, weights: dict[str, float] | None, k: int = 5,
             scoped: ScopedRows | None = None) -> Retrieval:
    """Fused dense + BM25 ranking of chunks for one query, near-duplicates collapsed; with
    ``scoped``, of those chunks alone (filtered before ranking)."""
    snap = engine.snapshot
    text = text[:MAX_QUERY_CHARS]
    timings = {}
    t0 = time.perf_counter()
    encode_query = getattr(engine.embedder, "encode_query", None)
    if encode_query is not None:
        vector, words, word_ids = encode_query(text)
    else:
        vector, words, word_ids = engine.embedder.encode([text])[0], None, None
    t1 = time.perf_counter()
    dense = dense_ranking(snap.vectors, vector, snap.row_of_id, CANDIDATES,
                          scoped.ids if scoped else None)
    text_terms = terms(text)
    if weights is None:
        weights = dict.fromkeys(text_terms, 1.0)
    weights = dict(list(weights.items())[:MAX_QUERY_TERMS])
    scores = within(bm25_scores(snap.bm25, list(weights), list(weights.values())),
                    scoped.rows if scoped else None)
    lexical = lexical_candidates(scores, dense, CANDIDATES)
    fused = normalized_score_fusion(dense, lexical, dense_weight(len(weights)))
    fused = rerank_by_phrases(fused, text_terms, snap.chunk_terms)
    # Copies collapsed first, so the word re-rank sees RERANK_HEAD distinct passages.
    head = [row for row, _ in fused[: max(4 * k, 2 * RERANK_HEAD)]]
    score_of = dict(fused)
    kept = collapse_near_duplicates(head, grams_of=lambda i: _shingles(snap, head[i]),
                                    limit=max(k, RERANK_HEAD))
    if words is not None and len(word_ids):
        reranked = rerank_by_words([(row, score_of[row]) for row in kept],
                                   snap.words.query_scores(words, word_ids, kept), TOKEN_WEIGHT)
        score_of.update(reranked)
        kept = [row for row, _ in reranked]
    kept = kept[:k]
    timings["embed"] = t1 - t0
    timings["search"] = time.perf_counter() - t1
    passages = [engine.passage(row, score_of[row]) for row in kept]
    return Retrieval(passages, kept, dict(dense), dict(lexical), vector, timings)


# Chunks whose shingles are kept at once (a few KB each): a long-running server on a large index
# would otherwise keep those of every chunk it ever considered.
SHINGLES_KEPT = 20_000


def _shingles(snap, row: int) -> frozenset:
    """Word 4-grams of chunk ``row`` (for collapsing copies), kept with the generation."""
    kept = snap.derived.setdefault("shingles", {})
    grams = kept.get(row)
    if grams is None:
        if len(kept) >= SHINGLES_KEPT:
            kept.clear()
        grams = kept[row] = shingles(snap.chunk_text(snap.chunks[row]))
    return grams


def _rows_around(snap, spans: Sequence[tuple[str, int, int]]) -> list[int]:
    """The chunks holding ``spans`` and the chunk before and after each, in document order."""
    in_order = snap.rows_of({source for source, _, _ in spans})
    rows: list[int] = []
    for source, start, _ in spans:
        same = sorted(in_order[source])
        at = next((i for i, (s, _) in enumerate(same) if s <= start and
                   (i + 1 == len(same) or same[i + 1][0] > start)), None)
        if at is None:
            continue
        for i in range(max(0, at - 1), min(len(same), at + 2)):
            if same[i][1] not in rows:
                rows.append(same[i][1])
    return rows


# A passage that opens with a heading brings the rest of its section, this many chunks at most.
SECTION_CHUNKS = 4


def _section_rest(snap, rows: Sequence[int]) -> list[int]:
    """The chunks after each chunk of ``rows`` that opens with a heading, up to the next heading
    (SECTION_CHUNKS at most): a question that matches a section's heading ("Only threat to
    Ukraine is Ukraine itself") may be answered in a later paragraph of that section."""
    out: list[int] = []
    for row in rows:
        if not snap.chunks[row].kinds.startswith("h"):
            continue
        source = snap.chunks[row].source
        for later in range(row + 1, min(row + 1 + SECTION_CHUNKS, len(snap.chunks))):
            chunk = snap.chunks[later]
            if chunk.source != source or chunk.kinds.startswith("h"):
                break
            if later not in rows and later not in out:
                out.append(later)
    return out


def _focused(passages: Sequence[Passage], scored) -> tuple[Passage, ...]:
    """The passages, each pointing at its best-scored sentence (for previews)."""
    best: dict[tuple[str, int], tuple[float, tuple[int, int]]] = {}
    for item in scored:
        c = item.candidate
        for p in passages:
            if p.source == c.source and p.start <= c.start < p.end:
                key = (p.source, p.start)
                if key not in best or item.score > best[key][0]:
                    best[key] = (item.score, (c.start, c.end))
    return tuple(dataclasses.replace(p, focus=best[(p.source, p.start)][1])
                 if (p.source, p.start) in best else p for p in passages)


def _repeats(sentence: Candidate, said: Sequence[tuple[str, int, int]], kind: str | None) -> bool:
    """A sentence the previous answer quoted, which cannot answer this follow-up: it lacks the
    kind of answer asked for, or the follow-up has no words of its own ("Where?")."""
    if kind is not None and has_answer_type(sentence.text, kind):
        return False
    return any(source == sentence.source and start <= sentence.start < end
               for source, start, end in said)


# The answer-sentence scorer (qa.answer.scorer) reads the RESCORED best sentences of the first
# ranking and, of the RESCORED_SIMILAR closest to the question by cosine, those not among them; its
# probability, times SCORER_WEIGHT, is added to their scores. The cosine finds answers the words
# miss (a how-to's answer seldom repeats the question's words; "What is the only threat to Ukraine
# according to Grushko?" of the seeds, in the rest of a section, ranks 8th by score and 2nd by
# cosine). 4 + 2 against the 8 best by score, on tuning questions: SQuAD R@1 .892 -> .894, gold in
# answer .918 either way; news unchanged (.498 / .453); Debian Reference how-to gold .586 -> .621,
# git-doc hit@1 .417 -> .450, gold .517 -> .533. When the closest are among the best already, the
# next closest are not read (4.5 pairs on average, not 6): tuning SQuAD R@1 .894 -> .892, gold
# .918 either way; news R@1 .498 either way, gold .453 -> .452; Debian Reference and git-doc
# figures unchanged; SQuAD held-out p50 4.06x -> 3.51x one dense query (in process, same run).
RESCORED = 4
RESCORED_SIMILAR = 2
SCORER_WEIGHT = 1.0


def rescore(engine, question: str, scored: list[Scored], headings: Sequence[str],
            sentences: Sequence[Sequence[Candidate]] = ()):
    """``scored`` with the scorer's judgement added to its head, and the best probability the
    scorer gave (None without a scorer). ``headings[p]``: the heading path of passage ``p``;
    ``sentences[p]``: its sentences, for the terms a description defines."""
    scorer = getattr(engine, "scorer", None)
    if scorer is None or not scored or RESCORED <= 0:
        return scored, None
    head = sorted(scored, key=lambda s: -s.score)[:RESCORED]
    head += [s for s in sorted(scored, key=lambda s: -s.similarity)[:RESCORED_SIMILAR] if s not in head]
    texts = [scorer_input(_labelled(engine, item.candidate, sentences), headings[item.candidate.passage])
             for item in head]
    probabilities = 1.0 / (1.0 + np.exp(-scorer.scores(question, texts)))
    boost = {id(item): float(p) for item, p in zip(head, probabilities)}
    rescored = [dataclasses.replace(item, score=item.score + SCORER_WEIGHT * boost[id(item)],
                                    answer=boost[id(item)])
                if id(item) in boost else item for item in scored]
    return rescored, float(probabilities.max())


def _labelled(engine, sentence: Candidate, sentences: Sequence[Sequence[Candidate]]) -> str:
    """A sentence as the scorer reads it: a table row after its header (see _with_header), a
    description after the terms it defines ("--numbered: Sort output according to ...")."""
    if sentence.kind == "r":
        return _with_header(engine, sentence)
    if sentence.passage < len(sentences):
        terms = [c for c in defined_by(sentences[sentence.passage], sentence.position) if c.kind == "d"]
        if terms:
            return _joined([*terms, sentence])
    return sentence.text


def _with_header(engine, sentence: Candidate) -> str:
    """A table row is read after its table's first row, which names what its cells are
    ("Item | Cost" before "Lantern glass | 310,000 kroner"); other sentences as they are."""
    if sentence.kind != "r":
        return sentence.text
    text = engine.snapshot.documents[sentence.source].text
    first = sentence.start
    while first > 0 and text[first - 1] == "\n":
        above = text.rfind("\n", 0, first - 1) + 1
        if " | " not in text[above:first - 1]:
            break
        first = above
    if first == sentence.start:
        return sentence.text
    header = text[first:text.index("\n", first)]
    return f"{header} | {sentence.text}"


def mended(snap, question: str) -> str:
    """``question`` with its typing slips mended against the documents' words
    (qa.search.spelling)."""
    speller = snap.derived.get("speller")
    if speller is None:
        vocabulary, _ = default_token_counter().vocabulary()
        forms = snap.word_forms()  # stored by the build; counted from the texts for older ones
        texts = () if forms is not None else (snap.chunk_text(chunk) for chunk in snap.chunks)
        speller = snap.derived["speller"] = Speller(texts, whole_words(vocabulary), forms)
    return speller.mend(question)


def _quoted(sentence: Candidate) -> str:
    """A sentence as the answer quotes it: on one line, but code keeps its lines."""
    if sentence.kind == "c":
        return "\n" + "\n".join(line.rstrip() for line in sentence.text.splitlines()) + "\n"
    return " ".join(sentence.text.split())


def _joined(group: Sequence[Candidate]) -> str:
    """The sentences of one citation as the answer shows them: the terms of a definition list
    joined by commas and followed by a colon ("-n, --numbered: Sort output ...")."""
    out = ""
    for i, sentence in enumerate(group):
        if i:
            out += ", " if group[i - 1].kind == "d" and sentence.kind == "d" else \
                ": " if group[i - 1].kind == "d" else " "
        out += _quoted(sentence)
    return out


def answer_question(engine, question: str, history: Sequence[Turn],
                    scoped: ScopedRows | None = None) -> Answer:
    question = " ".join(question.split())
    if not question:
        return Answer(question, False, "Please type a question.")
    query: Query = resolve(mended(engine.snapshot, question[:MAX_QUERY_CHARS]), history,
                          capitalised_in(engine.snapshot), gender_in(engine.snapshot))
    if not query.terms and not any(ch.isalnum() for ch in question):
        return Answer(question, False, "Please ask a question in words.", query=query.text)
    if query.unresolved:
        return Answer(question, False, f"The last question was not answered, so “{query.unresolved}” "
                      "points at no one: please ask again with a name.", query=query.text)
    found = retrieve(engine, query.text, query.terms, k=8, scoped=scoped)
    t0 = time.perf_counter()
    snap = engine.snapshot
    pool = list(zip(found.passages, found.rows))[:PASSAGES_CONSIDERED]
    pool += [(engine.passage(r, 0.0), r) for r in _section_rest(snap, [r for _, r in pool])]
    if query.is_followup and query.own_terms():
        own = retrieve(engine, query.own_text, query.own_terms(), k=PASSAGES_CONSIDERED,
                       scoped=scoped)
        seen = {row for _, row in pool}
        pool += [(p, r) for p, r in zip(own.passages, own.rows) if r not in seen][:FOLLOWUP_OWN_PASSAGES]
    bare = query.is_followup and not query.own_terms()
    kind = answer_type(question, bare_follow_up=bare)
    # "When?" or "Where?" after an answer asks for something that answer did not say, about what
    # it was saying: the passages around its citations come first.
    said = already_said(history) if bare else []
    if said:
        around = [r for r in _rows_around(snap, said) if scoped is None or r in scoped.members]
        top = max((p.score for p, _ in pool), default=0.0)
        pool = [(engine.passage(r, top), r) for r in around] + \
            [(p, r) for p, r in pool if r not in around]
        pool = pool[:max(PASSAGES_CONSIDERED, len(around))]
    candidates, similarity, sentences = [], [], []
    for rank, (passage, row) in enumerate(pool):
        cosines = snap.chunk_sentence_vectors(row).astype(np.float32) @ found.vector
        text = snap.documents[passage.source].text
        chunk = snap.chunks[row]
        sentences.append([Candidate(rank, passage.source, s, e, text[s:e], position,
                                    chunk.kind(position))
                          for position, (s, e) in enumerate(passage.sentences)])
        for sentence in sentences[-1]:
            # A heading is a label, not an answer.
            if chunk.kind(sentence.position) in ("h", "d") or is_question(sentence.text) or \
                    _repeats(sentence, said, kind):
                continue
            candidates.append(sentence)
            similarity.append(float(cosines[sentence.position]))
    # A bare "When?" asks for nothing but a time: only sentences holding one can answer it.
    keep = [i for i, c in enumerate(candidates) if has_answer_type(c.text, kind)] if said else []
    if keep:
        candidates, similarity = [candidates[i] for i in keep], [similarity[i] for i in keep]
    scored = score_sentences(candidates, query.sentence_terms(), snap.doc_freq, len(snap.chunks),
                             [passage_prior(rank) for rank in range(len(pool))],
                             kind, similarity)
    scored, best_answer = rescore(engine, query.text, scored, [snap.chunks[r].heading for _, r in pool],
                                  sentences)
    chosen = complete_sentences(select_sentences(scored, expected_type=kind), sentences, kind=kind)
    coverage = max((passage_coverage(query.terms, snap.chunk_terms(row), snap.doc_freq,
                                     len(snap.chunks)) for _, row in pool), default=0.0)
    best_dense = max((found.dense.get(row, 0.0) for row in found.rows[:PASSAGES_CONSIDERED]),
                     default=0.0)
    evidence = {"dense": best_dense, "coverage": coverage,
                "mass": max((item.mass for item in scored), default=0.0),
                "sentence": max(similarity, default=0.0)}
    if best_answer is not None:
        evidence["answer"] = best_answer
    # The unseen-words rule reads the question as asked, or as rewritten ("What did he say?" ->
    # "What did Samuel Okafor say?"), not the context a follow-up carries.
    asked = question if query.is_followup else query.text
    evidence["unseen name"] = float(bool(unseen_names(asked, snap.doc_freq)))
    confidence = answer_confidence(evidence)
    if unseen_terms(asked, snap.doc_freq):
        needed = UNSEEN_CONFIDENCE
    else:
        needed = ABSTAIN_BELOW
    found.timings["answer"] = time.perf_counter() - t0
    if not chosen or confidence < needed:
        return Answer(question, False, NOT_FOUND, (), _focused(found.passages, scored),
                      confidence, query.text, found.timings, evidence)
    citations, parts = [], []
    for n, group in enumerate(group_citations(chosen), 1):
        first, last = group[0].candidate, group[-1].candidate
        passage = pool[first.passage][0]
        doc = snap.documents[first.source]
        citations.append(Citation(n, first.source, first.start, last.end,
                                  doc.text[first.start:last.end], line_of(doc.text, first.start),
                                  passage, page_of(doc.page_starts, first.start),
                                  locator_at(doc.locators, first.start)))
        parts.append(f"{_joined([g.candidate for g in group])} [{n}]")
    return Answer(question, True, " ".join(parts), tuple(citations), tuple(found.passages),
                  confidence, query.text, found.timings, evidence)
