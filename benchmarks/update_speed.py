"""One edited file in a 5,000-document folder: the incremental update against a full build.

Generates a folder of N short Markdown notes (default 5,000, words from the seed articles), builds
its index, edits one note, and times the update (what `qa index --watch` runs after each batch of
changes), in one process, the model loaded before any timing. Prints the update's time, the part
of it spent embedding, the rest, and the ratios to the full build.

    python benchmarks/update_speed.py [--documents N] [--fake] [--keep]

--fake embeds with the tests' hashed-words embedder (no model: only the non-embedding work).
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def make_embedder(fake: bool):
    """The tests' fake embedder, or the bundled model, loaded."""
    if fake:
        from conftest import FakeEmbedder

        return FakeEmbedder()
    from qa.index.embedder import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    embedder.load()
    return embedder


class TimedEmbedder:
    """Wraps an embedder, adding up the seconds spent in it."""

    def __init__(self, inner):
        self.inner = inner
        self.seconds = 0.0

    def __getattr__(self, name):
        attribute = getattr(self.inner, name)
        if name not in ("encode", "encode_chunks") or not callable(attribute):
            return attribute

        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - began

        return timed


def generate(folder: Path, documents: int, seed: int = 3) -> None:
    words = sorted({w for p in (ROOT / "seeds").glob("*.txt")
                    for w in re.findall(r"[A-Za-z]{3,}", p.read_text(encoding="utf-8"))})
    rng = random.Random(seed)
    for n in range(documents):
        path = folder / f"part{n // 500:02d}" / f"note_{n:05d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        paragraphs = [" ".join(rng.choice(words) for _ in range(rng.randint(15, 30))).capitalize() + "."
                      for _ in range(3)]
        path.write_text(f"# Note {n}\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--fake", action="store_true", help="no model: the tests' fake embedder")
    parser.add_argument("--keep", action="store_true", help="keep the generated folder")
    args = parser.parse_args()

    from qa.engine import Engine

    inner = make_embedder(args.fake)
    work = Path(tempfile.mkdtemp(prefix="qa-update-speed-"))
    try:
        corpus = work / "corpus"
        generate(corpus, args.documents)
        embedder = TimedEmbedder(inner)
        engine = Engine(corpus, work / "index", embedder)
        began = time.perf_counter()
        built = engine.sync()
        full = time.perf_counter() - began
        full_embedding = embedder.seconds

        n = min(1500, args.documents - 1)  # a note in the middle of a large folder, or the last
        edited = f"part{n // 500:02d}/note_{n:05d}.md"
        note = corpus / edited
        note.write_text(note.read_text(encoding="utf-8")
                        + "\nThe harbour ferry now also stops at the fish market pier.\n",
                        encoding="utf-8")
        embedder.seconds = 0.0
        began = time.perf_counter()
        update = engine.sync()
        seconds = time.perf_counter() - began
        assert update.sources == {"updated": [edited]}, update.sources
        rest = seconds - embedder.seconds
        print(f"{args.documents} documents, {built.chunks} chunks ({'fake' if args.fake else 'real'} model)")
        print(f"full build        {full:8.2f} s (embedding {full_embedding:.2f} s)")
        print(f"one edited file   {seconds:8.2f} s = embedding {embedder.seconds:.2f} s "
              f"({update.chunks_embedded} chunk(s)) + the rest {rest:.2f} s (goal: under 2 s)")
        print(f"ratio update / full build: {seconds / full:.4f}; "
              f"without embedding: {rest / max(full - full_embedding, 1e-9):.3f}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
