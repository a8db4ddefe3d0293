"""Set the answer stage's weights on questions no model was trained on and no figure is reported
on: the SQuAD questions of the 4 train articles that train_reranker.py keeps out for validation,
and (``--set news``) RealTime QA questions outside the reported news sample (the scorer never saw
news).

For each setting given (NAME=VALUE,...; names of module constants of qa.answer.ask,
qa.answer.sentences or qa.answer.scorer), prints R@1 (the first citation overlaps the gold
paragraph), the share of answers holding a gold answer, the answered share, the mean answer length, and the share of the
other set's tuning questions (which the corpus does not cover) that are declined.

    python training/tune_answers.py "SCORER_WEIGHT=0" "SCORER_WEIGHT=1" "SCORER_WEIGHT=2,RESCORED=8"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.answer import ask, completion, followup, scorer, sentences  # noqa: E402
from qa.search import retrieval  # noqa: E402
from qa.engine import Engine  # noqa: E402

SQUAD = ROOT.parent / "shared" / "bench-data" / "squad"
NEWS = ROOT.parent / "shared" / "bench-data" / "realtimeqa"
VALIDATION_ARTICLES = 4  # as in train_reranker.py: the last 4 train articles by name


def validation_questions(limit: int | None) -> list[dict]:
    split = json.loads((SQUAD / "split_articles.json").read_text())
    held = set(sorted(split["train"])[-VALIDATION_ARTICLES:])
    rows = [json.loads(line) for line in (SQUAD / "all_questions.jsonl").read_text().splitlines()
            if line.strip()]
    rows = [q for q in rows if q["gold_file"] in held]
    return rows[:limit] if limit else rows


def news_questions(limit: int | None) -> list[dict]:
    """News questions with a gold paragraph that are not in the reported sample."""
    def read(path: Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    reported = {q["id"] for q in read(NEWS / "sample_1000_seed13.jsonl")}
    rows = [q for q in read(NEWS / "all_questions.jsonl")
            if q["id"] not in reported and q.get("gold_file")]
    return rows[:limit] if limit else rows


def run(engine: Engine, questions: list[dict], off_topic: list[dict]) -> dict:
    r1 = gold = answered = chars = 0
    for q in questions:
        answer = engine.ask(q["question"])
        first = answer.citations[0] if answer.citations else None
        r1 += bool(first and first.source == q["gold_file"] and first.start < q["gold_end"]
                   and first.end > q["gold_start"])
        if answer.found:
            answered += 1
            chars += len(answer.text)
            gold += any(a.lower() in answer.text.lower() for a in q["answers"])
    n = len(questions)
    declined = sum(not engine.ask(q["question"]).found for q in off_topic)
    return {"R@1": r1 / n, "AnsGold": gold / n, "answered": answered / n,
            "chars": chars / max(1, answered), "off-topic declined": declined / max(1, len(off_topic))}


def apply(setting: str) -> dict:
    old = {}
    for pair in filter(None, setting.split(",")):
        name, value = pair.split("=")
        module = next(m for m in (ask, sentences, scorer, followup, completion, retrieval) if hasattr(m, name))
        old[(module, name)] = getattr(module, name)
        setattr(module, name, type(getattr(module, name))(float(value)))
    return old


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("settings", nargs="*", default=[""])
    parser.add_argument("--work", default="/tmp/qa-train")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--off-topic", type=int, default=300, help="off-topic questions asked")
    parser.add_argument("--set", choices=("squad", "news"), default="squad")
    parser.add_argument("--scorer", help="a folder with another scorer.onnx (train_reranker.py --out)")
    args = parser.parse_args()
    data = SQUAD if args.set == "squad" else NEWS
    engine = Engine(data / "corpus", Path(args.work) / args.set)
    engine.sync()
    engine.load()
    if args.scorer:
        engine.scorer = scorer.SentenceScorer(Path(args.scorer))
    questions = (validation_questions if args.set == "squad" else news_questions)(args.limit)
    # The other set's tuning questions, which this corpus does not cover.
    others = (news_questions if args.set == "squad" else validation_questions)(None)
    off_topic = others[:: max(1, len(others) // max(1, args.off_topic))][: args.off_topic]
    print(f"{len(questions)} {args.set} tuning questions, {len(off_topic)} off-topic")
    for setting in args.settings:
        old = apply(setting)
        figures = run(engine, questions, off_topic)
        print(f"{setting or 'defaults':40s} " + " ".join(f"{k} {v:.3f}" for k, v in figures.items()))
        for (module, name), value in old.items():
            setattr(module, name, value)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
