"""Scaling: build, one-file update, disk, start-up, query latency and memory from a few thousand
chunks to a million, plus the approximate index's recall and the answers' equality.

The first point is the real SQuAD bench corpus (48 articles) embedded by the real model. Larger
points are synthetic, made from it by benchmarks/synthetic.py: ``copies`` copies of its files,
their chunks and arrays repeated, and chunk vectors the real ones plus noise (nothing embedded,
so their build time is writing only). Each point is measured in a fresh process: start-up is
loading the generation (load_snapshot) plus the first answer; warm latency is `Engine.ask` over
held-out SQuAD questions; RSS is the process's resident memory after them (VmRSS) and its peak
(VmHWM), model included; the update adds one real 6 KB file and runs `Engine.sync`, whose
embedding time is reported apart. Recall@10 is the approximate index's top 10 against an exact
search over the same (fp16) vectors, for the same questions.

    python benchmarks/scaling.py [--copies 1 10 100 400] [--work /tmp/qa-scaling]

Memory: making the million-chunk point takes about 11 GB, and its one-file update (which holds
the new generation's arrays whole) was not run here: at 250k chunks it peaked at 7 GB. Use
--no-update for such points on a machine without 30 GB to spare.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
BENCH = ROOT.parent / "shared" / "bench-data" / "squad"
if not BENCH.exists():
    BENCH = Path("/work/shared/bench-data/squad")
QUESTIONS = BENCH / "sample_heldout_seed13.jsonl"
NEW_FILE = ROOT / "seeds"  # the update adds the first seed article

from update_speed import TimedEmbedder  # noqa: E402


def questions(count: int) -> list[str]:
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines[:count]]


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(corpus: Path, index: Path, count: int, update: bool) -> dict:
    """One point, in this (fresh) process."""
    import numpy as np

    from qa.engine import Engine
    from qa.index import ann
    from qa.index.embedder import MiniLMEmbedder

    embedder = TimedEmbedder(MiniLMEmbedder())
    began = time.perf_counter()
    embedder.load()
    embedder.encode_query("warm up")
    model = time.perf_counter() - began
    asked = questions(count)
    began = time.perf_counter()
    engine = Engine(corpus, index, embedder)
    snapshot = engine.snapshot
    loaded = time.perf_counter() - began
    first = engine.ask(asked[0])
    ready = time.perf_counter() - began
    seconds, answers = [], [first.text]
    for question in asked[1:]:
        t = time.perf_counter()
        answers.append(engine.ask(question).text)
        seconds.append(time.perf_counter() - t)
    result = {"chunks": len(snapshot.chunks), "model_s": model, "load_s": loaded,
              "ready_s": ready, "p50_ms": 1000 * statistics.median(seconds),
              "p95_ms": 1000 * statistics.quantiles(seconds, n=20)[-1],
              "rss_mb": status_mb("VmRSS"), "peak_mb": status_mb("VmHWM"), "answers": answers,
              "approximate": ann.is_approximate(snapshot.vectors)}
    if result["approximate"]:
        vectors = np.vstack([embedder.encode_query(q)[0] for q in asked]).astype(np.float32)
        ids, stored = ann.all_vectors(snapshot.vectors)
        truth = ids[np.argsort(-(vectors @ stored.T), axis=1)[:, :10]]
        _, found = snapshot.vectors.search(vectors, 10)
        result["recall10"] = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found)]))
    if update:
        source = sorted(NEW_FILE.glob("*.txt"))[0]
        shutil.copyfile(source, corpus / "added.txt")
        embedder.seconds = 0.0
        t = time.perf_counter()
        report = engine.sync()
        result["update_s"] = time.perf_counter() - t
        result["update_embed_s"] = embedder.seconds
        result["update_chunks"] = report.chunks_embedded
        result["update_peak_mb"] = status_mb("VmHWM")
    return result


def run_point(corpus: Path, index: Path, count: int, update: bool) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--measure", str(corpus), str(index), "--questions", str(count)]
        + (["--update"] if update else []),
        capture_output=True, text=True, cwd=ROOT)
    if output.returncode:
        raise SystemExit(f"measuring {index} failed:\n{output.stderr[-3000:]}")
    return json.loads(output.stdout.splitlines()[-1])


def equality_point(base: Path, corpus: Path, work: Path, count: int) -> dict:
    from synthetic import synthesize

    point_corpus, point_index = work / "corpus-equal", work / "index-equal"
    synthesize(base, corpus, point_corpus, point_index, 1, noise=0.0)
    try:
        return run_point(point_corpus, point_index, count, update=False)
    finally:
        shutil.rmtree(point_corpus, ignore_errors=True)
        shutil.rmtree(point_index, ignore_errors=True)


def disk_mb(path: Path) -> float:
    from qa.index import generations

    return generations.disk_size(generations.current_path(path)) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, nargs="*", default=[1, 10, 100, 400])
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-scaling"))
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--no-update", action="store_true")
    parser.add_argument("--no-equality", action="store_true")
    parser.add_argument("--base", type=Path, help="a real index of the SQuAD corpus to start from")
    parser.add_argument("--measure", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--update", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure, args.questions, args.update)))
        return 0

    from synthetic import NOISE, synthesize

    from qa.engine import Engine
    from qa.index import ann, tables

    corpus = BENCH / "corpus"
    base = args.base or args.work / "base-index"
    if not (base / "CURRENT").exists():
        began = time.perf_counter()
        Engine(corpus, base).sync()
        print(f"real index of {corpus}: {time.perf_counter() - began:.0f} s (embedding included)")
    if not args.no_equality:
        # The real index in both storages: as small indexes are kept (exact float32, JSON) and as
        # large ones are (IVF fp16, columnar chunks, text by memory map), same questions.
        small = equality_point(base, corpus, args.work, args.questions)
        limits = ann.FLAT_LIMIT, tables.COLUMNAR_FROM
        ann.FLAT_LIMIT = tables.COLUMNAR_FROM = 1000
        try:
            large = equality_point(base, corpus, args.work, args.questions)
        finally:
            ann.FLAT_LIMIT, tables.COLUMNAR_FROM = limits
        same = sum(a == b for a, b in zip(small["answers"], large["answers"]))
        print(f"real SQuAD index, {small['chunks']} chunks, {len(small['answers'])} held-out "
              f"questions: large-index storage (IVF fp16 recall@10 {large.get('recall10', 1):.3f}, "
              f"columnar) gives the same answer text for {same}/{len(small['answers'])}", flush=True)
    rows = []
    for copies in args.copies:
        point_corpus, point_index = args.work / f"corpus-{copies}", args.work / f"index-{copies}"
        began = time.perf_counter()
        # One copy: the real index, rewritten by this qa's writer without noise.
        chunks = synthesize(base, corpus, point_corpus, point_index, copies,
                            noise=0.0 if copies == 1 else NOISE)
        built = time.perf_counter() - began
        point = run_point(point_corpus, point_index, args.questions, not args.no_update)
        point.update(copies=copies, build_s=built, disk_mb=disk_mb(point_index))
        assert point["chunks"] == chunks
        rows.append(point)
        print(json.dumps({k: v for k, v in point.items() if k != "answers"}), flush=True)
        shutil.rmtree(point_corpus, ignore_errors=True)
        shutil.rmtree(point_index, ignore_errors=True)
    print()
    print("| chunks | kind | build s (no embedding) | one-file update s (embedding) | disk MB "
          "| start-up s (load + 1st answer) | warm p50 / p95 ms | RSS MB (peak) | recall@10 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for p in rows:
        kind = "real" if p["copies"] == 1 else f"synthetic ({p['copies']} copies)"
        update = f"{p['update_s']:.1f} ({p['update_embed_s']:.1f})" if "update_s" in p else "-"
        recall = f"{p['recall10']:.3f}" if "recall10" in p else "exact"
        print(f"| {p['chunks']:,} | {kind} | {p['build_s']:.1f} | {update} | {p['disk_mb']:.0f} "
              f"| {p['ready_s']:.2f} ({p['load_s']:.2f} + {p['ready_s'] - p['load_s']:.2f}) "
              f"| {p['p50_ms']:.0f} / {p['p95_ms']:.0f} | {p['rss_mb']:.0f} ({p['peak_mb']:.0f}) "
              f"| {recall} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
