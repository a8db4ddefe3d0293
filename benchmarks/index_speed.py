"""Index build speed: the encoders, and a full `qa index` with the old encoder and the new, in one run.

On a copy of a corpus (default ../shared/bench-data/squad/corpus, 48 files, 1.6 M characters;
$QA_BENCH_DATA names another bench-data folder):

  (a) plain encoding of the exact chunk texts the indexer embeds (captured by running the indexer
      in-process with a recording embedder), each encoder loaded and warmed up first (outside the
      timing), measured before and after the builds and averaged, since a shared machine is noisy:
      torch fp32 (sentence-transformers' ``encode``: the old encoder), ONNX fp32 (the shipped
      qa/index/model/encoder.onnx) and ONNX int8 (a fresh export by training/export_encoder.py
      --int8, when the onnx package is installed), both run by qa.index.onnx_encoder, pooled and
      normalised;
  (b) a full ``qa index`` as a fresh subprocess with the old encoder (QA_ENCODER=torch) and with
      the new (the default, the shipped ONNX fp32): start-up, model load, reading, chunking, embedding, BM25
      and the atomic write; the ratio of each to the fastest plain encoder, and old/new;
  (c) a no-change ``qa index`` as a fresh subprocess (new encoder); goal c/b < 0.5.

Wall time is the goal; CPU time (all threads, user + system) is printed beside it because it
is less disturbed by other work on the machine.

    python benchmarks/index_speed.py [--corpus DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA = Path(os.environ.get("QA_BENCH_DATA", ROOT.parent / "shared" / "bench-data"))
DEFAULT_CORPUS = DATA / "squad" / "corpus"


def run_index(corpus: Path, index: Path, encoder: str = "onnx") -> tuple[float, float, dict]:
    """Wall and CPU seconds of ``python -m qa index --json`` in a fresh process, and its report."""
    env = dict(os.environ, QA_CORPUS=str(corpus), QA_INDEX=str(index), QA_ENCODER=encoder)
    cpu_before = _children_cpu()
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "qa", "index", "--json"], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"qa index failed ({done.returncode}): {done.stderr.strip()}")
    return seconds, _children_cpu() - cpu_before, json.loads(done.stdout)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class RecordingEmbedder:
    """Stands in for the model to capture exactly the texts the indexer asks it to embed."""

    def __init__(self, name: str, dimension: int):
        self.name, self.dimension, self.texts = name, dimension, []

    def encode(self, texts, batch_size: int = 32):
        import numpy as np

        self.texts.extend(texts)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        vectors[:, 0] = 1.0
        return vectors

    def encode_chunks(self, texts, spans):
        """The real embedder's path: sentence and word vectors come from the chunk's one pass."""
        import numpy as np

        from qa.index.embedder import Encoded, no_words

        vectors = self.encode(texts)
        return Encoded(vectors, [np.tile(vectors[:1], (len(s), 1)) for s in spans],
                       no_words(len(texts), self.dimension))


def chunk_texts(corpus: Path, scratch: Path) -> list[str]:
    """The texts a full build of ``corpus`` embeds, in the order the indexer embeds them."""
    from qa.index.embedder import MODEL_DIMENSION, MODEL_NAME
    from qa.index.indexer import sync

    recorder = RecordingEmbedder(MODEL_NAME, MODEL_DIMENSION)
    sync(corpus, scratch, recorder)
    return recorder.texts


def timed(encode, texts: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of ``encode(texts)``."""
    began, cpu = time.perf_counter(), time.process_time()
    encode(texts)
    return time.perf_counter() - began, time.process_time() - cpu


def torch_encoder():
    """sentence-transformers' own encode (the old encoder), warmed up."""
    from qa.index.embedder import MiniLMEmbedder

    embedder = MiniLMEmbedder("torch")
    embedder.load_model()
    model = embedder._model

    def encode(texts):
        return model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)

    encode(["warm-up: the first call allocates buffers."] * 8)
    return encode


def onnx_encoder(model_file: Path):
    """qa.index.onnx_encoder on the build's threads, mean pooled and normalised, warmed up."""
    import numpy as np

    from qa.config import model_path
    from qa.index.embedder import document_threads
    from qa.index.onnx_encoder import OnnxMiniLM

    network = OnnxMiniLM(model_path(), model_file)

    def encode(texts):
        pooled = np.stack([m.mean(axis=0) for m, _, _ in network.forward_many(texts, document_threads())])
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    encode(["warm-up: the first call allocates buffers."] * 8)
    return encode


def fresh_export(folder: Path) -> Path | None:
    """A fresh export of the bundled model (training/export_encoder.py --int8) into ``folder``, or
    None without the onnx package."""
    import importlib.util

    if importlib.util.find_spec("onnx") is None:
        return None
    sys.path.insert(0, str(ROOT / "training"))
    from export_encoder import export

    export(folder, int8=True)
    return folder


def main() -> None:
    from qa.index.onnx_encoder import MODEL_FILE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"corpus folder not found: {args.corpus}")

    work = Path(tempfile.mkdtemp(prefix="qa-index-speed-"))
    plain: dict[str, list[tuple[float, float]]] = {}
    try:
        corpus = work / "corpus"
        shutil.copytree(args.corpus, corpus)
        chars = sum(len(p.read_text(encoding="utf-8", errors="replace"))
                    for p in corpus.rglob("*") if p.is_file())
        files = sum(1 for p in corpus.rglob("*") if p.is_file())

        texts = chunk_texts(corpus, work / "scratch-index")
        export = fresh_export(work / "export")
        encoders = {"torch fp32 (sentence-transformers)": torch_encoder()}
        encoders["ONNX fp32 (shipped)"] = onnx_encoder(MODEL_FILE)
        if export is not None:
            encoders["ONNX int8"] = onnx_encoder(export / "encoder-int8.onnx")
        for name, encode in encoders.items():
            plain.setdefault(name, []).append(timed(encode, texts))
        old, old_cpu, report_old = run_index(corpus, work / "index-old", "torch")
        new, new_cpu, report = run_index(corpus, work / "index-new", "onnx")
        again, again_cpu, report_again = run_index(corpus, work / "index-new", "onnx")
        if report_again["chunks_embedded"] != 0:
            sys.exit(f"no-change re-index embedded {report_again['chunks_embedded']} chunks")
        for name, encode in reversed(encoders.items()):
            plain[name].append(timed(encode, texts))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    for built in (report_old, report):
        if built["chunks_embedded"] != len(texts):
            sys.exit(f"qa index embedded {built['chunks_embedded']} chunks, the recording {len(texts)}")
    mean = {name: (sum(w for w, _ in runs) / len(runs), sum(c for _, c in runs) / len(runs))
            for name, runs in plain.items()}
    fastest = min(mean, key=lambda name: mean[name][0])
    torch_wall = mean["torch fp32 (sentence-transformers)"][0]

    print(f"corpus: {args.corpus} ({files} files, {chars:,} characters)")
    print(f"chunks: {report['chunks']}, embedded by each qa index: {report['chunks_embedded']}")
    for name, runs in plain.items():
        print(f"{name}: {runs[0][0]:.2f} s and {runs[1][0]:.2f} s wall (before and after the builds)")
    print()
    rows = [("", "wall", "cpu", "chunks/s", "ratio (wall)", "goal")]
    for name, (wall, cpu) in mean.items():
        rows.append((f"(a) {name}, mean of 2", f"{wall:.2f} s", f"{cpu:.2f} s",
                     f"{len(texts) / wall:.1f}", f"{torch_wall / wall:.2f}x torch", ""))
    fast = mean[fastest][0]
    rows += [
        ("(b) qa index, full build, old encoder (torch)", f"{old:.2f} s", f"{old_cpu:.2f} s",
         f"{len(texts) / old:.1f}", f"b/fastest {old / fast:.2f}", ""),
        ("(b) qa index, full build, new encoder (ONNX fp32)", f"{new:.2f} s", f"{new_cpu:.2f} s",
         f"{len(texts) / new:.1f}", f"b/fastest {new / fast:.2f}", "<= 1.5"),
        ("    old build / new build", "", "", "", f"{old / new:.2f}x", ">= 2.5x"),
        ("(c) qa index, nothing changed", f"{again:.2f} s", f"{again_cpu:.2f} s", "",
         f"c/b {again / new:.3f}", "< 0.5"),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    for row in rows:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))))
    print(f"\nfastest plain encoder: {fastest}. (b) includes interpreter start-up and model load; "
          f"sync itself reported {report_old['seconds']:.2f} s (old) and {report['seconds']:.2f} s (new).")


if __name__ == "__main__":
    main()
