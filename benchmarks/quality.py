"""Answer quality and warm latency on ../shared/bench-data, measured side by side in one run.

For each benchmark set (SQuAD sample over its 48 articles; RealTime QA news sample over its weekly
files) this prints, for qa and for BM25-only and dense-only paragraph retrieval:
R@1, R@5, MRR@10 (a hit is a citation/passage overlapping the gold paragraph in the right file),
the share of answers containing a gold answer string, the mean answer length, and for qa the
abstention rate on its own questions and on the other set's questions (which this corpus does not
cover). Then the warm p50 of `qa ask --json -` end to end against one dense query.

    python benchmarks/quality.py [--limit N] [--sets squad,news] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.engine import Engine  # noqa: E402
from qa.index.embedder import MiniLMEmbedder  # noqa: E402
from qa.index.lexical import terms  # noqa: E402
from qa.search.retrieval import bm25_scores, dense_ranking, top_rows  # noqa: E402

DATA = Path(os.environ.get("QA_BENCH_DATA", ROOT.parent / "shared" / "bench-data"))
SETS = {
    "squad": (DATA / "squad" / "corpus", DATA / "squad" / "sample_heldout_seed13.jsonl"),
    "news": (DATA / "realtimeqa" / "corpus", DATA / "realtimeqa" / "sample_1000_seed13.jsonl"),
}


def load_questions(path: Path, limit: int | None) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def overlaps(item: tuple[str, int, int], q: dict) -> bool:
    source, start, end = item
    return source == q["gold_file"] and start < q["gold_end"] and end > q["gold_start"]


def rank_metrics(ranked: list[list[tuple[str, int, int]]], questions: list[dict]) -> dict:
    r1 = r5 = mrr = 0.0
    for items, q in zip(ranked, questions):
        ranks = [i for i, item in enumerate(items[:10], 1) if overlaps(item, q)]
        first = ranks[0] if ranks else None
        r1 += first == 1
        r5 += bool(first and first <= 5)
        mrr += 1.0 / first if first else 0.0
    n = len(questions)
    return {"R@1": r1 / n, "R@5": r5 / n, "MRR@10": mrr / n}


def contains_gold(text: str, q: dict) -> bool:
    low = text.lower()
    return any(a.lower() in low for a in q["answers"])


def evaluate(engine: Engine, questions: list[dict]) -> dict:
    snap = engine.snapshot
    results = {"qa": [], "bm25": [], "dense": []}
    answers, lengths, found = [], [], 0
    for q in questions:
        answer = engine.ask(q["question"])
        # The answer's citations first, then the passages not already cited (each counted once).
        items = [(c.source, c.start, c.end) for c in answer.citations]
        items += [(p.source, p.start, p.end) for p in answer.passages
                  if not any(s == p.source and p.start <= a < p.end for s, a, _ in items)]
        results["qa"].append(items)
        answers.append(answer.text if answer.found else "")
        lengths.append(len(answer.text) if answer.found else 0)
        found += answer.found
        # Baselines: one ranker alone over the same chunks (paragraph retrieval).
        vector = engine.embedder.encode([q["question"]])[0]
        dense = dense_ranking(snap.vectors, vector, snap.row_of_id, 10)
        lexical = top_rows(bm25_scores(snap.bm25, terms(q["question"])), 10)
        for name, rows in (("dense", dense), ("bm25", lexical)):
            chunks = [snap.chunks[r] for r, _ in rows]
            results[name].append([(c.source, c.start, c.end) for c in chunks])
    table = {}
    for name, ranked in results.items():
        row = rank_metrics(ranked, questions)
        if name == "qa":
            row["AnsGold"] = sum(contains_gold(a, q) for a, q in zip(answers, questions)) / len(questions)
            row["mean chars"] = sum(lengths) / max(1, found)
            row["answered"] = found / len(questions)
        else:
            # Reference: the whole top paragraph as the "answer".
            top = [snap.documents[r[0][0]].text[r[0][1]:r[0][2]] if r else "" for r in ranked]
            row["AnsGold"] = sum(contains_gold(t, q) for t, q in zip(top, questions)) / len(questions)
            row["mean chars"] = sum(map(len, top)) / len(top)
        table[name] = row
    return table


def abstention_on(engine: Engine, questions: list[dict]) -> float:
    return sum(not engine.ask(q["question"]).found for q in questions) / len(questions)


DENSE_QUERIES = """
import json, statistics, sys, time
from pathlib import Path
from qa.engine import Engine
from qa.search.retrieval import dense_ranking
engine = Engine(Path(sys.argv[1]), Path(sys.argv[2]))
engine.load()
snap = engine.snapshot
questions = json.loads(Path(sys.argv[3]).read_text())
engine.embedder.encode_query("warm up question")
times = []
for question in questions:
    t0 = time.perf_counter()
    dense_ranking(snap.vectors, engine.embedder.encode_query(question)[0], snap.row_of_id, 10)
    times.append(time.perf_counter() - t0)
print(statistics.median(times))
"""


def latency(corpus: Path, index: Path, questions: list[str]) -> dict:
    """Warm p50 of `qa ask --json -` (write a line, read its answer) vs one dense query (embed +
    FAISS search), each in a fresh process of its own so neither inherits the other's state. Both
    embed with the question encoder qa uses (qa/index/onnx_encoder.py), so the ratio is qa's own overhead."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(questions, handle)
    try:
        done = subprocess.run([sys.executable, "-c", DENSE_QUERIES, str(corpus), str(index), handle.name],
                              capture_output=True, text=True, env=env, check=True)
    finally:
        os.unlink(handle.name)
    dense = float(done.stdout.strip().splitlines()[-1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa", "ask", "--json", "-", "--corpus", str(corpus), "--index", str(index)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1,
        env=env,
    )
    # Warm up: the first answer pays for loading; then time each question alone. An empty line
    # between questions keeps them independent (no follow-up context).
    proc.stdin.write("warm up question\n\n")
    proc.stdin.flush()
    proc.stdout.readline()
    times = []
    for question in questions:
        t0 = time.perf_counter()
        proc.stdin.write(question.replace("\n", " ") + "\n\n")
        proc.stdin.flush()
        proc.stdout.readline()
        times.append(time.perf_counter() - t0)
    proc.stdin.close()
    proc.wait(timeout=60)
    p50 = statistics.median(times)
    return {"qa ask p50 ms": p50 * 1000, "dense query p50 ms": dense * 1000, "ratio": p50 / dense}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="squad,news")
    parser.add_argument("--limit", type=int, default=None, help="first N questions of each sample")
    parser.add_argument("--work", default="/tmp/qa-bench", help="where the indexes are kept")
    parser.add_argument("--latency-questions", type=int, default=200)
    parser.add_argument("--no-latency", action="store_true")
    args = parser.parse_args()

    embedder = MiniLMEmbedder()
    embedder.load()
    names = args.sets.split(",")
    engines, questions = {}, {}
    for name in SETS:
        corpus, sample = SETS[name]
        engine = Engine(corpus, Path(args.work) / name, embedder)
        report = engine.sync()
        print(f"[{name}] index: {report.summary()}", file=sys.stderr)
        engines[name], questions[name] = engine, load_questions(sample, args.limit)

    for name in names:
        engine = engines[name]
        t0 = time.perf_counter()
        table = evaluate(engine, questions[name])
        other = "news" if name == "squad" else "squad"
        table["qa"]["abstain (other set's questions)"] = abstention_on(engine, questions[other][:300])
        print(f"\n## {name}: {len(questions[name])} questions ({time.perf_counter() - t0:.0f} s)")
        columns = ["R@1", "R@5", "MRR@10", "AnsGold", "mean chars"]
        print("| system | " + " | ".join(columns) + " |")
        print("|---" * (len(columns) + 1) + "|")
        for system in ("qa", "bm25", "dense"):
            row = table[system]
            cells = [f"{row[c]:.3f}" if c != "mean chars" else f"{row[c]:.0f}" for c in columns]
            print(f"| {system} | " + " | ".join(cells) + " |")
        print(f"answered (own questions): {table['qa']['answered']:.3f}; "
              f"abstained on the other set's questions: {table['qa']['abstain (other set' + chr(39) + 's questions)']:.3f}")
        if not args.no_latency:
            sample = [q["question"] for q in questions[name][: args.latency_questions]]
            lat = latency(SETS[name][0], Path(args.work) / name, sample)
            print(f"warm latency: qa ask --json - p50 {lat['qa ask p50 ms']:.1f} ms, one dense query "
                  f"p50 {lat['dense query p50 ms']:.1f} ms, ratio {lat['ratio']:.2f}x (goal <= 4x, issue 14)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
