"""How close the ONNX encoders' vectors are to sentence-transformers' (torch fp32), side by side.

On the chunks qa's own build makes of the SQuAD corpus (and of the RealTime QA news corpus), each
encoder embeds every chunk and every question of the fixed samples:

  - torch fp32: sentence-transformers' ``encode`` (what built qa's indexes until now);
  - ONNX fp32 (the shipped qa/index/model/encoder.onnx, checked against a fresh export) and ONNX
    int8 (training/export_encoder.py --int8, fresh in a temporary folder), both run by
    qa.index.onnx_encoder;

and prints min/mean cosine of each chunk's vector to the torch one, and dense-only paragraph
retrieval (R@1, R@5, MRR@10, as benchmarks/quality.py counts them) with each encoder's own
question and chunk vectors; "fp32 q / torch docs" and "int8 q / torch docs" search torch-built
chunk vectors with the ONNX encoder's question vectors (an index built by the old encoder, asked
by the new). Then the p50 latency of one short question, ONNX against sentence-transformers. ``--json FILE`` writes
the figures (training/export_encoder.py --figures records them in the manifest).

    python benchmarks/encoder_quality.py [--sets squad,news] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "training"))

# ../shared/bench-data beside the checkout, or $QA_BENCH_DATA (a worktree sits elsewhere).
DATA = Path(os.environ.get("QA_BENCH_DATA", ROOT.parent / "shared" / "bench-data"))
SETS = {
    "squad": (DATA / "squad" / "corpus", DATA / "squad" / "sample_heldout_seed13.jsonl"),
    "news": (DATA / "realtimeqa" / "corpus", DATA / "realtimeqa" / "sample_1000_seed13.jsonl"),
}


def build_chunks(corpus: Path, scratch: Path) -> tuple[list[str], list[tuple[str, int, int]]]:
    """The texts qa's build embeds for ``corpus`` and each one's (source, start, end)."""
    from qa.index import records, store
    from qa.index.indexer import expected_params, sync
    from index_speed import RecordingEmbedder

    from qa.index.embedder import MODEL_DIMENSION, MODEL_NAME

    recorder = RecordingEmbedder(MODEL_NAME, MODEL_DIMENSION)
    sync(corpus, scratch, recorder)
    snapshot = store.load_snapshot(scratch, expected_params(recorder, corpus))
    texts = [records.search_text(snapshot.documents[c.source].text[c.start:c.end], c.heading)
             for c in snapshot.chunks]
    return texts, [(c.source, c.start, c.end) for c in snapshot.chunks]


def unit(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def torch_encoder():
    from sentence_transformers import SentenceTransformer

    from qa.config import model_path

    model = SentenceTransformer(model_path(), device="cpu")
    return lambda texts: np.asarray(model.encode(texts, batch_size=32, normalize_embeddings=True,
                                                 convert_to_numpy=True), dtype=np.float32)


def onnx_encoder(model_file: Path, threads: int):
    from qa.config import model_path
    from qa.index.onnx_encoder import OnnxMiniLM

    network = OnnxMiniLM(model_path(), model_file)
    return lambda texts: unit(np.stack([m.mean(axis=0) for m, _, _ in
                                        network.forward_many(texts, threads)]))


def ranked(doc_vectors, question_vectors, spans, k=10):
    scores = question_vectors @ doc_vectors.T
    top = np.argsort(-scores, axis=1)[:, :k]
    return [[spans[i] for i in row] for row in top]


def question_latency(repeats: int = 200) -> dict:
    """p50 ms of one short question's vector: qa's ``encode_query`` (the ONNX encoder, one thread,
    also giving the word vectors) against sentence-transformers' ``encode``, interleaved so both
    see the same machine load. (Measured before it was deleted, the numpy network that encoded
    questions, qa/index/minilm.py, took 15.5 ms p50 against the ONNX encoder's 8.2 ms.)"""
    from qa.index.embedder import MiniLMEmbedder

    question = "Who chaired the NATO-Russia Council meeting?"
    onnx, torch = MiniLMEmbedder("onnx"), MiniLMEmbedder("torch")
    torch.load_model()
    runs = {"onnx encode_query": lambda: onnx.encode_query(question),
            "sentence-transformers encode": lambda: torch._model.encode([question])}
    times = {name: [] for name in runs}
    for run in runs.values():
        run()
    for _ in range(repeats):
        for name, run in runs.items():
            began = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - began)
    p50 = {name: 1000 * float(np.median(t)) for name, t in times.items()}
    print("\none short question, p50: " + ", ".join(f"{n} {ms:.1f} ms" for n, ms in p50.items()))
    return p50


def main() -> int:
    from quality import load_questions, rank_metrics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="squad,news")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from export_encoder import export

    from qa.index.onnx_encoder import MODEL_FILE

    work = Path(tempfile.mkdtemp(prefix="qa-encoder-quality-"))
    made = export(work / "model", int8=True)
    if made["weights"]["sha256"] != \
            json.loads(MODEL_FILE.with_name("encoder.json").read_text())["weights"]["sha256"]:
        print("note: the fresh export differs from the shipped encoder.onnx", file=sys.stderr)
    encoders = {"torch fp32": torch_encoder(),
                "onnx fp32 (shipped)": onnx_encoder(MODEL_FILE, args.threads),
                "onnx int8": onnx_encoder(work / "model" / "encoder-int8.onnx", args.threads)}
    figures = {}
    for name in args.sets.split(","):
        corpus, sample = SETS[name]
        texts, spans = build_chunks(corpus, work / f"index-{name}")
        questions = load_questions(sample, None)
        asked = [q["question"] for q in questions]
        docs, queries, seconds = {}, {}, {}
        for encoder, encode in encoders.items():
            began = time.perf_counter()
            docs[encoder] = encode(texts)
            seconds[encoder] = time.perf_counter() - began
            queries[encoder] = encode(asked)
        table = {}
        for encoder in encoders:
            cos = (docs[encoder] * docs["torch fp32"]).sum(axis=1)
            qcos = (queries[encoder] * queries["torch fp32"]).sum(axis=1)
            row = rank_metrics(ranked(docs[encoder], queries[encoder], spans), questions)
            row.update({"chunk cos min": float(cos.min()), "chunk cos mean": float(cos.mean()),
                        "question cos min": float(qcos.min()), "question cos mean": float(qcos.mean()),
                        "chunks/s": len(texts) / seconds[encoder]})
            table[encoder] = row
        for encoder in ("onnx fp32 (shipped)", "onnx int8"):
            cross = rank_metrics(ranked(docs["torch fp32"], queries[encoder], spans), questions)
            table[f"{encoder.split()[1]} q / torch docs"] = cross
        figures[name] = {"chunks": len(texts), "questions": len(questions), "encoders": table}
        print(f"\n{name}: {len(texts)} chunks, {len(questions)} questions")
        columns = ["R@1", "R@5", "MRR@10", "chunk cos min", "chunk cos mean", "question cos min",
                   "question cos mean", "chunks/s"]
        print(f"{'':22}" + "".join(f"{c:>18}" for c in columns))
        for encoder, row in table.items():
            print(f"{encoder:22}" + "".join(f"{row[c]:>18.4f}" if c in row else f"{'':>18}"
                                            for c in columns))
    figures["question latency"] = question_latency()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
