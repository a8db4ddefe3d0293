"""What one added, edited or removed file costs in a big index, split into embedding and the rest,
and the time from start-up to a loaded index; optionally for two checkouts side by side.

The folder is made of real text: sentences of the SQuAD and RealTimeQA corpora in
../shared/bench-data (or the seed articles when those are absent) regrouped into paragraphs of five,
eight paragraphs a document, half of them Markdown and half plain text with a menu and a footer
repeated across documents (page furniture, which boilerplate detection must find across the
corpus). 6,900 documents make about 50,000 chunks.

    python benchmarks/update_cost.py [--documents 5500] [--fake] [--against /tmp/updates-base]

--fake embeds with the tests' hashed-words embedder (no model: the non-embedding work only).
--against runs the same measurements with the qa package of another checkout (say main's, made
with `git archive main | tar -x -C /tmp/updates-base`) on the same folder, in the same run, and
prints both side by side. Each checkout builds its own index; nothing is written in the checkouts.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATA = ROOT.parent / "shared" / "bench-data"
MENU = "Home\nNews\nSport\nWeather\nArchive\n"
FOOTER = "Copyright 2024 The Harbour Gazette. All rights reserved."


def sentences() -> list[str]:
    folders = [BENCH_DATA / "squad" / "corpus", BENCH_DATA / "realtimeqa" / "corpus"]
    paths = [p for f in folders if f.is_dir() for p in sorted(f.glob("*.txt"))] \
        or sorted((ROOT / "seeds").glob("*.txt"))
    found = []
    for path in paths:
        for paragraph in path.read_text(encoding="utf-8").split("\n\n"):
            found += [s for s in re.split(r"(?<=[.!?])\s+", " ".join(paragraph.split()))
                      if 20 <= len(s) <= 400]
    return found


def generate(folder: Path, documents: int, seed: int = 7) -> None:
    pool = sentences()
    rng = random.Random(seed)
    for n in range(documents):
        paragraphs = []
        for _ in range(8):
            first = rng.randrange(len(pool) - 5)
            paragraphs.append(" ".join(pool[first:first + 5]))
        title = " ".join(pool[rng.randrange(len(pool))].split()[:6]).rstrip(".,;:")
        if n % 2:
            body = f"# {title}\n\n" + "\n\n".join(paragraphs) + "\n"
            name = f"notes{n // 500:02d}/doc_{n:05d}.md"
        else:
            body = MENU + f"\n{title}\n\n" + "\n\n".join(paragraphs) + f"\n\n{FOOTER}\n"
            name = f"pages{n // 500:02d}/doc_{n:05d}.txt"
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")


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


def make_embedder(fake: bool):
    if fake:
        sys.path.insert(0, str(ROOT / "tests"))
        from conftest import FakeEmbedder

        return FakeEmbedder()
    from qa.index.embedder import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    embedder.load()
    return embedder


NEW_FILE = ("The harbour ferry now also stops at the fish market pier on Sundays. "
            "Tickets for the new route are sold at the kiosk beside the lighthouse. ") * 12


def run_updates(corpus: Path, index: Path, fake: bool) -> dict:
    """In this process (with this checkout's qa on sys.path): full build, then one file added,
    edited, removed; returns seconds."""
    from qa.engine import Engine

    embedder = TimedEmbedder(make_embedder(fake))
    engine = Engine(corpus, index, embedder)
    out = {}

    def timed(name, expected):
        embedder.seconds = 0.0
        began = time.perf_counter()
        report = engine.sync()
        total = time.perf_counter() - began
        assert report.sources == expected, (name, report.sources)
        out[name] = {"seconds": total, "embedding": embedder.seconds,
                     "embedded": report.chunks_embedded, "chunks": report.chunks}

    timed("full build", {"added": report_all(corpus)})
    added = corpus / "notes00" / "zz_new.md"
    added.write_text("# Ferry news\n\n" + NEW_FILE + "\n", encoding="utf-8")
    timed("add one file", {"added": ["notes00/zz_new.md"]})
    edited = sorted(corpus.glob("pages*/*.txt"))[len(list(corpus.glob("pages*/*.txt"))) // 2]
    name = edited.relative_to(corpus).as_posix()
    text = edited.read_text(encoding="utf-8")
    edited.write_text(text.replace(FOOTER, "The pier reopens in May.\n\n" + FOOTER), encoding="utf-8")
    timed("edit one file", {"updated": [name]})
    added.unlink()
    timed("remove one file", {"removed": ["notes00/zz_new.md"]})
    return out


def report_all(corpus: Path) -> list[str]:
    return sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.is_file())


STARTUP = """
import sys, time
began = time.perf_counter()
sys.path[:0] = [{root!r}, {tests!r}]
from qa.engine import Engine
from conftest import FakeEmbedder
engine = Engine({corpus!r}, {index!r}, FakeEmbedder())
snapshot = engine.snapshot
snapshot.words.doc_freq  # computed or loaded: the first question needs it
print(time.perf_counter() - began)
"""


def startup_seconds(root: Path, corpus: Path, index: Path, runs: int) -> float:
    """Best of ``runs`` fresh processes: import qa, load the index (as a first question would)."""
    code = STARTUP.format(root=str(root), tests=str(ROOT / "tests"), corpus=str(corpus),
                          index=str(index))
    times = [float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                  text=True).stdout.split()[-1]) for _ in range(runs)]
    return min(times)


def child(args) -> None:
    sys.path.insert(0, str(args.root))
    print(json.dumps(run_updates(args.corpus, args.index, args.fake)))


def measure(root: Path, corpus: Path, index: Path, fake: bool) -> dict:
    command = [sys.executable, __file__, "--child", "--root", str(root), "--corpus", str(corpus),
               "--index", str(index)] + (["--fake"] if fake else [])
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=6900)
    parser.add_argument("--fake", action="store_true", help="no model: the tests' fake embedder")
    parser.add_argument("--against", type=Path, help="another checkout, timed the same way")
    parser.add_argument("--startup-runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the generated folder")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    work = Path(tempfile.mkdtemp(prefix="qa-update-cost-"))
    roots = {"this checkout": ROOT}
    if args.against:
        roots = {"other (" + args.against.name + ")": args.against.resolve(), **roots}
    try:
        results, startup = {}, {}
        for n, (name, root) in enumerate(roots.items()):
            corpus = work / f"corpus{n}"
            generate(corpus, args.documents)
            results[name] = measure(root, corpus, work / f"index{n}", args.fake)
        for n, (name, root) in enumerate(roots.items()):  # after both builds: same machine load
            startup[name] = startup_seconds(root, work / f"corpus{n}", work / f"index{n}",
                                            args.startup_runs)
        first = next(iter(results.values()))
        print(f"{args.documents} documents, {first['full build']['chunks']} chunks "
              f"({'fake' if args.fake else 'real'} embedder)")
        names = list(roots)
        print(f"{'':17}" + "".join(f"{n:>36}" for n in names))
        for step in first:
            cells = []
            for name in names:
                r = results[name][step]
                rest = r["seconds"] - r["embedding"]
                cells.append(f"{r['seconds']:7.2f} s = emb {r['embedding']:6.2f} + rest {rest:6.2f}")
            print(f"{step:17}" + "".join(f"{c:>36}" for c in cells))
        print(f"{'start-up, loaded':17}" + "".join(f"{startup[n]:>34.2f} s" for n in names))
        if len(names) == 2:
            old, new = (results[n] for n in names)
            for step in first:
                rest_old = old[step]["seconds"] - old[step]["embedding"]
                rest_new = new[step]["seconds"] - new[step]["embedding"]
                print(f"ratio this / other, {step}: total {new[step]['seconds'] / old[step]['seconds']:.3f},"
                      f" without embedding {rest_new / max(rest_old, 1e-9):.3f}")
            print(f"ratio this / other, start-up: {startup[names[1]] / startup[names[0]]:.3f}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
