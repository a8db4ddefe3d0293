"""Check an OOD question file against the pages of its collection.

    python benchmarks/ood/check.py --collection debian-reference [--work /tmp/qa-ood]
    python benchmarks/ood/check.py --corpus DIR --questions FILE

Verifies the fields and kinds of every line, that the turns of each conversation are numbered
1, 2(, 3) in file order, the minimum counts (50 questions, 12 how-to, 5 conversations of 2-3
turns, 12 unanswerable), that every gold file exists, that every `answers` string and the
`evidence` occur (case-insensitive, whitespace-normalised) in the visible text of a gold page
(lxml: body text minus script and style), and, for an unanswerable question, that each term its
evidence quotes ('like this') occurs in no page at all. Prints only counts and problems, never
the questions, so it is safe to run on the held-out set. Exit status 1 on any problem.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

_spec = importlib.util.spec_from_file_location("ood", Path(__file__).resolve().parent.parent / "ood.py")
ood = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ood)

FIELDS = {"id", "conversation", "turn", "question", "kind", "gold_files", "answers", "evidence"}
ALL_KINDS = {"howto", "fact", "followup", "unanswerable"}


def check(questions: list[dict], texts: dict[str, str]) -> list[str]:
    """Problems found (an empty list when the file is sound). ``texts`` maps each page's
    relative path to its visible text."""
    problems = []
    normed = {page: ood.norm(text) for page, text in texts.items()}
    everything = "\n".join(normed.values())
    seen_ids = set()
    turns = defaultdict(list)
    for n, q in enumerate(questions, 1):
        where = f"line {n} ({q.get('id')})"
        if set(q) != FIELDS:
            problems.append(f"{where}: fields {sorted(set(q) ^ FIELDS)} missing or extra")
            continue
        if q["id"] in seen_ids:
            problems.append(f"{where}: duplicate id")
        seen_ids.add(q["id"])
        if q["kind"] not in ALL_KINDS:
            problems.append(f"{where}: kind {q['kind']!r}")
        if q["conversation"] is None:
            if q["turn"] != 1 or q["kind"] == "followup":
                problems.append(f"{where}: a single question must be turn 1 and not a follow-up")
        else:
            turns[q["conversation"]].append(q)
        if not q["question"].strip():
            problems.append(f"{where}: empty question")
        if q["kind"] == "unanswerable":
            if q["gold_files"] or q["answers"]:
                problems.append(f"{where}: an unanswerable question has gold files or answers")
            for term in re.findall(r"'([^']+)'|\"([^\"]+)\"", q["evidence"]):
                term = ood.norm(term[0] or term[1])
                if term in everything:
                    problems.append(f"{where}: {term!r} does occur in the collection")
            continue
        if not q["gold_files"] or not q["answers"]:
            problems.append(f"{where}: no gold files or no answers")
            continue
        missing = [g for g in q["gold_files"] if g not in normed]
        if missing:
            problems.append(f"{where}: gold files not in the corpus: {missing}")
            continue
        for answer in q["answers"]:
            if not any(ood.norm(answer) in normed[g] for g in q["gold_files"]):
                problems.append(f"{where}: answer {answer!r} is in no gold page")
        if not any(ood.norm(q["evidence"]) in normed[g] for g in q["gold_files"]):
            problems.append(f"{where}: evidence is in no gold page")
        if not any(ood.norm(a) in ood.norm(q["evidence"]) for a in q["answers"]):
            problems.append(f"{where}: no answer string occurs in the evidence")
    for conv, qs in turns.items():
        if [q["turn"] for q in qs] != list(range(1, len(qs) + 1)) or not 2 <= len(qs) <= 3:
            problems.append(f"conversation {conv}: turns {[q['turn'] for q in qs]}")
        if qs[0]["kind"] == "followup" or any(q["kind"] != "followup" for q in qs[1:]):
            problems.append(f"conversation {conv}: turn 1 must not be a follow-up, later turns must")
    kinds = Counter(q.get("kind") for q in questions)
    howto = sum(1 for q in questions if q.get("kind") == "howto")
    for label, have, need in (("questions", len(questions), 50), ("how-to", howto, 12),
                              ("conversations", len(turns), 5),
                              ("unanswerable", kinds["unanswerable"], 12)):
        if have < need:
            problems.append(f"only {have} {label} (at least {need})")
    return problems


def load_questions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", choices=sorted(ood.COLLECTIONS))
    parser.add_argument("--corpus", type=Path, help="a corpus folder (with --questions)")
    parser.add_argument("--questions", type=Path)
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-ood"))
    args = parser.parse_args(argv)
    if args.collection:
        corpus, questions = ood.prepare(args.collection, args.work)
        questions = args.questions or questions
    elif args.corpus and args.questions:
        corpus, questions = args.corpus, args.questions
    else:
        parser.error("give --collection, or --corpus and --questions")
    texts = ood.corpus_texts(corpus)
    qs = load_questions(questions)
    problems = check(qs, texts)
    kinds = Counter(q.get("kind") for q in qs)
    convs = len({q.get("conversation") for q in qs if q.get("conversation") is not None})
    print(f"{questions.name}: {len(qs)} questions ({', '.join(f'{k} {kinds[k]}' for k in sorted(kinds))}; "
          f"{convs} conversations) over {len(texts)} pages")
    for problem in problems:
        print("  problem:", problem)
    print("OK" if not problems else f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
