"""Start-up: the chat app's first painted screen, and a cold `qa ask`, against
`import sentence_transformers`.

All are measured in this run, in fresh processes, from process start: the app runs in a real
pseudo-terminal (120x40) and the clock stops when its question box appears in the output; `qa ask`
answers one question from an index built beforehand and exits; the import runs in `python -c`.
Goals: the first paint takes at most half the time of the import, because the app draws before it
loads anything heavy (in a worker thread); a whole cold `qa ask` also takes at most half of it,
because questions are encoded by the ONNX encoder (qa/index/onnx_encoder.py) without importing torch.

    python benchmarks/startup.py [--runs 5] [--corpus seeds]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = b"question about the documents"  # the input's placeholder, drawn in the first frame
ANSI = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[P^_][^\x1b]*\x1b\\|.)")


def first_paint_seconds(corpus: Path, index: Path, timeout: float = 60.0) -> float:
    """Seconds from spawning `python -m qa chat` until the question box is on the terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="40")
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "qa", "--corpus", str(corpus), "--index", str(index), "chat"],
        stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, start_new_session=True)
    os.close(slave)
    seen = b""
    try:
        while True:
            if time.perf_counter() - started > timeout:
                raise SystemExit("the app did not draw its first screen in time:\n"
                                 + ANSI.sub(b"", seen).decode(errors="replace")[-2000:])
            ready, _, _ = select.select([master], [], [], 0.01)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                raise SystemExit("the app exited before drawing:\n"
                                 + ANSI.sub(b"", seen).decode(errors="replace")[-2000:])
            seen += chunk
            if MARKER in ANSI.sub(b"", seen):
                return time.perf_counter() - started
    finally:
        _quit(process, master)


def _quit(process: subprocess.Popen, master: int) -> None:
    try:
        os.write(master, b"\x11")  # ctrl+q
    except OSError:
        pass
    deadline = time.perf_counter() + 10
    while process.poll() is None and time.perf_counter() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                os.read(master, 65536)  # keep the pty drained so the app can exit
            except OSError:
                break
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    os.close(master)


def cold_ask_seconds(corpus: Path, index: Path, question: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "qa", "--corpus", str(corpus), "--index", str(index),
                    "ask", question], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def import_seconds(module: str = "sentence_transformers") -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, cwd=ROOT)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--corpus", type=Path, default=ROOT / "seeds")
    parser.add_argument("--question", default="How long did the meeting last?")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="qa-startup-"))
    try:
        # One unmeasured round of each, so both start with warm file caches.
        first_paint_seconds(args.corpus, scratch / "warmup-index")
        import_seconds()
        ask_index = scratch / "ask-index"
        subprocess.run([sys.executable, "-m", "qa", "--corpus", str(args.corpus), "--index",
                        str(ask_index), "index"], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cold_ask_seconds(args.corpus, ask_index, args.question)
        paints, asks, imports = [], [], []
        for run in range(args.runs):
            paints.append(first_paint_seconds(args.corpus, scratch / f"index-{run}"))
            asks.append(cold_ask_seconds(args.corpus, ask_index, args.question))
            imports.append(import_seconds())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    paint, imported = statistics.median(paints), statistics.median(imports)
    ask = statistics.median(asks)
    print(f"runs: {args.runs} (medians; a fresh process each time)")
    print(f"launch to first painted screen   {paint:6.3f} s   "
          f"(min {min(paints):.3f}, max {max(paints):.3f})")
    print(f"import sentence_transformers     {imported:6.3f} s   "
          f"(min {min(imports):.3f}, max {max(imports):.3f})")
    print(f"cold `qa ask` (whole command)    {ask:6.3f} s   "
          f"(min {min(asks):.3f}, max {max(asks):.3f})")
    for name, seconds in (("first paint", paint), ("cold qa ask", ask)):
        ratio = seconds / imported
        print(f"{name + ' / import':32s} {ratio:6.2f}x   (goal <= 0.50x: "
              f"{'met' if ratio <= 0.5 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
