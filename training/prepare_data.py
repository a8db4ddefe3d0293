"""Training pairs for the answer-sentence scorer, from SQuAD v1.1 dev questions of the 24 *train*
articles only (../shared/bench-data/squad/split_articles.json; CC BY-SA 4.0).

For every such question, the candidates are the sentences qa itself would weigh: those of the
top passages its retrieval returns over the whole 48-article corpus (hard negatives), plus every
sentence of the gold paragraph, plus two sentences drawn at random from other train articles. A
sentence is positive when it overlaps a gold answer span. Questions whose answer no sentence holds
whole are skipped. The news set and anything derived from the seeds are never read.

    python training/prepare_data.py [--work /tmp/qa-train] [--out training/data/pairs.jsonl]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.answer.ask import retrieve  # noqa: E402
from qa.engine import Engine  # noqa: E402

SQUAD = ROOT.parent / "shared" / "bench-data" / "squad"
TOP_PASSAGES = 6
RANDOM_NEGATIVES = 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/qa-train")
    parser.add_argument("--out", default=str(ROOT / "training" / "data" / "pairs.jsonl"))
    args = parser.parse_args()
    split = json.loads((SQUAD / "split_articles.json").read_text())
    train = set(split["train"])
    questions = [json.loads(line) for line in (SQUAD / "all_questions.jsonl").read_text().splitlines()
                 if line.strip()]
    questions = [q for q in questions if q["gold_file"] in train]
    engine = Engine(SQUAD / "corpus", Path(args.work) / "squad")
    engine.sync()
    snap = engine.snapshot
    sentences_of: dict[str, list[tuple[int, int]]] = {}
    for chunk in snap.chunks:
        sentences_of.setdefault(chunk.source, []).extend(chunk.sentences)
    rng = random.Random(2026)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = 0
    with out.open("w", encoding="utf-8") as handle:
        for n, q in enumerate(questions):
            found = retrieve(engine, q["question"], None, k=8)
            spans: dict[tuple[str, int, int], int] = {}
            for rank, passage in enumerate(found.passages[:TOP_PASSAGES]):
                for s, e in passage.sentences:
                    spans.setdefault((passage.source, s, e), rank)
            for s, e in sentences_of[q["gold_file"]]:
                if q["gold_start"] <= s < q["gold_end"]:
                    spans.setdefault((q["gold_file"], s, e), TOP_PASSAGES)
            others = [a for a in train if a != q["gold_file"]]
            for _ in range(RANDOM_NEGATIVES):
                source = rng.choice(others)
                s, e = rng.choice(sentences_of[source])
                spans.setdefault((source, s, e), TOP_PASSAGES + 1)
            candidates = []
            for (source, s, e), rank in spans.items():
                positive = source == q["gold_file"] and any(
                    a <= s < b or a < e <= b or (s <= a and b <= e) for a, b in q["answer_spans"])
                whole = source == q["gold_file"] and any(s <= a and b <= e for a, b in q["answer_spans"])
                candidates.append({"text": snap.documents[source].text[s:e], "source": source,
                                   "start": s, "end": e, "rank": rank,
                                   "label": int(positive), "whole": int(whole)})
            if not any(c["whole"] for c in candidates):
                continue
            kept += 1
            record = {"id": q["id"], "question": q["question"], "article": q["gold_file"],
                      "title": q["title"].replace("_", " "), "candidates": candidates}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            if n % 500 == 0:
                print(f"{n}/{len(questions)}", file=sys.stderr)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"{kept} questions of {len(questions)} written to {out}; sha256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
