"""Index build speed against plain model.encode, measured side by side in one run.

On a copy of a corpus (default ../shared/bench-data/squad/corpus, 48 files, 1.6 M characters):

  (a) plain ``model.encode`` over the exact chunk texts the indexer embeds (captured by running
      the indexer in-process with a recording embedder), model loaded and warmed up first
      (outside the timing); measured before and after (b) and averaged, since a shared machine
      is noisy;
  (b) a full ``qa index`` as a fresh subprocess: start-up, model load, reading, chunking,
      embedding, BM25 and the atomic write; goal b/a <= 1.5;
  (c) a no-change ``qa index`` as a fresh subprocess; goal c/b < 0.5 (it should be mostly hashing).

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

DEFAULT_CORPUS = ROOT.parent / "shared" / "bench-data" / "squad" / "corpus"


def run_index(corpus: Path, index: Path) -> tuple[float, float, dict]:
    """Wall and CPU seconds of ``python -m qa index --json`` in a fresh process, and its report."""
    env = dict(os.environ, QA_CORPUS=str(corpus), QA_INDEX=str(index))
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


def plain_encode(model, texts: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of sentence-transformers' own encode over ``texts``."""
    began, cpu = time.perf_counter(), time.process_time()
    model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    return time.perf_counter() - began, time.process_time() - cpu


def load_model():
    from qa.index.embedder import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    embedder.load()
    model = embedder._model
    model.encode(["warm-up: the first call allocates buffers."] * 8, normalize_embeddings=True)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"corpus folder not found: {args.corpus}")

    work = Path(tempfile.mkdtemp(prefix="qa-index-speed-"))
    try:
        corpus, index = work / "corpus", work / "index"
        shutil.copytree(args.corpus, corpus)
        chars = sum(len(p.read_text(encoding="utf-8", errors="replace"))
                    for p in corpus.rglob("*") if p.is_file())
        files = sum(1 for p in corpus.rglob("*") if p.is_file())

        texts = chunk_texts(corpus, work / "scratch-index")
        model = load_model()
        encode_1 = plain_encode(model, texts)
        full, full_cpu, report = run_index(corpus, index)
        again, again_cpu, report_again = run_index(corpus, index)
        if report_again["chunks_embedded"] != 0:
            sys.exit(f"no-change re-index embedded {report_again['chunks_embedded']} chunks")
        encode_2 = plain_encode(model, texts)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    if report["chunks_embedded"] != len(texts):
        sys.exit(f"qa index embedded {report['chunks_embedded']} chunks, the recording {len(texts)}")
    encode = (encode_1[0] + encode_2[0]) / 2
    encode_cpu = (encode_1[1] + encode_2[1]) / 2

    print(f"corpus: {args.corpus} ({files} files, {chars:,} characters)")
    print(f"chunks: {report['chunks']}, embedded by qa index: {report['chunks_embedded']}")
    print(f"plain encode runs: {encode_1[0]:.2f} s and {encode_2[0]:.2f} s wall (before and after qa index)")
    print()
    rows = [
        ("", "wall", "cpu", "ratio (wall)", "ratio (cpu)", "goal"),
        ("(a) plain model.encode, mean of 2", f"{encode:.2f} s", f"{encode_cpu:.2f} s", "", "", ""),
        ("(b) qa index, full build", f"{full:.2f} s", f"{full_cpu:.2f} s",
         f"b/a {full / encode:.2f}", f"b/a {full_cpu / encode_cpu:.2f}", "<= 1.5"),
        ("(c) qa index, nothing changed", f"{again:.2f} s", f"{again_cpu:.2f} s",
         f"c/b {again / full:.3f}", f"c/b {again_cpu / full_cpu:.3f}", "< 0.5"),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    for row in rows:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))))
    print(f"\n(b) includes interpreter start-up and model load; sync itself reported "
          f"{report['seconds']:.2f} s.")


if __name__ == "__main__":
    main()
