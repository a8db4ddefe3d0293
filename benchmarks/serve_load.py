"""Load on `qa serve`: many concurrent clients asking for a while, with a full index rebuild
(POST /index {"rebuild": true}) in the middle, against one `qa ask --json -` process.

Measured in this run, on one index built beforehand into a temporary folder:
1. the baseline: one `qa ask --json -` process answers the questions one after another (each its
   own conversation); its answers are the reference, its latency is per question, write to read;
2. `qa serve` answers CLIENTS clients, each asking the questions in turn (POST /ask, each its own
   conversation) for SECONDS seconds; a third of the way in, a rebuild starts and its progress is
   followed at /index/events until it is done.
It prints throughput and p50/p95 latency of both, and checks that no request failed, that every
answer is identical to the CLI's (text, citations, passages; timings aside), and that answers
kept coming while the rebuild ran (from the previous generation until it switched).
Exit status 1 if any check fails.

    python benchmarks/serve_load.py [--clients 32] [--seconds 60] [--corpus seeds]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "What did Grushko demand?",
    "How long did the meeting last?",
    "Who chaired the NATO-Russia Council meeting?",
    "Who led the Russian delegation in Brussels?",
    "How many troops is Russia accused of massing on the Ukrainian border?",
    "How many people has the conflict in eastern Ukraine killed?",
    "When did Russia suspend its mission at NATO?",
    "Why did NATO expel Russian diplomats?",
    "What did Fomin say about Russia-NATO relations?",
    "Where did Russia and the US hold talks on January 10?",
    "Which agreements should Kiev be pressed to implement?",
    "Which Russian minister did Stoltenberg plan to meet in Munich?",
    "What choice does Russia have to make according to Wendy Sherman?",
    "How will Russia respond to NATO's policy of deterrence?",
    "Who won the 2018 FIFA World Cup?",
    "What is the capital of Australia?",
]


def comparable(answer: dict) -> str:
    """An answer without what may differ between two runs (timings, the conversation id)."""
    return json.dumps({k: v for k, v in answer.items() if k not in ("timings_ms", "conversation")},
                      sort_keys=True)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def build_index(corpus: Path, index: Path) -> None:
    subprocess.run([sys.executable, "-m", "qa", "--corpus", str(corpus), "--index", str(index),
                    "index"], check=True, capture_output=True, text=True)


def cli_reference(corpus: Path, index: Path, questions: list[str], rounds: int
                  ) -> tuple[dict[str, str], list[float], float]:
    """The CLI's answer to each question, each question's latency over ``rounds`` passes, and
    the seconds all of them took (the process started and warmed up first)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "qa", "--corpus", str(corpus), "--index", str(index), "ask",
         "--json", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, bufsize=1)

    def ask(question: str) -> tuple[dict, float]:
        started = time.perf_counter()
        process.stdin.write(question + "\n\n")  # the empty line: each its own conversation
        process.stdin.flush()
        line = process.stdout.readline()
        return json.loads(line), time.perf_counter() - started

    ask(questions[0])  # warm: the model and the index are loaded
    answers, latencies = {}, []
    began = time.perf_counter()
    for _ in range(rounds):
        for question in questions:
            answer, seconds = ask(question)
            answers.setdefault(question, comparable(answer))
            latencies.append(seconds)
    total = time.perf_counter() - began
    process.stdin.close()
    process.wait(30)
    return answers, latencies, total


@dataclass
class Server:
    process: subprocess.Popen
    host: str
    port: int
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(15)


def start_server(corpus: Path, index: Path, log: Path, timeout: float = 120) -> Server:
    """`qa serve` on a free port, once it says where it listens."""
    handle = open(log, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "qa", "--corpus", str(corpus), "--index", str(index), "serve",
         "--port", "0", "--quiet"], stdout=handle, stderr=handle, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"on http://([\d.]+):(\d+) ", log.read_text())
        if found:
            host, port = found.group(1), int(found.group(2))
            try:
                status, _ = post(host, port, "/search", {"query": "warm"}, timeout=30)
            except OSError:
                status = None
            if status == 200:
                return Server(process, host, port, log)
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"qa serve did not start; its log:\n{log.read_text()}")


def post(host: str, port: int, path: str, body: dict, timeout: float = 60,
         connection: http.client.HTTPConnection | None = None) -> tuple[int, dict]:
    own = connection is None
    connection = connection or http.client.HTTPConnection(host, port, timeout=timeout)
    connection.request("POST", path, body=json.dumps(body),
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    data = json.loads(response.read() or b"{}")
    if own:
        connection.close()
    return response.status, data


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    finished_at: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list = field(default_factory=list)


def run_clients(server: Server, questions: list[str], reference: dict[str, str], clients: int,
                stop: threading.Event, per_client: int | None = None) -> Load:
    """``clients`` threads asking in turn until ``stop`` is set (or each asked ``per_client``)."""
    load = Load()

    def client(number: int) -> None:
        connection = http.client.HTTPConnection(server.host, server.port, timeout=120)
        asked = 0
        while not stop.is_set() and (per_client is None or asked < per_client):
            question = questions[(number + asked) % len(questions)]
            asked += 1
            started = time.perf_counter()
            try:
                status, answer = post(server.host, server.port, "/ask", {"question": question},
                                      connection=connection)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                connection.close()
                connection = http.client.HTTPConnection(server.host, server.port, timeout=120)
                with load.lock:
                    load.errors.append(f"{question!r}: {type(exc).__name__}: {exc}")
                continue
            seconds = time.perf_counter() - started
            with load.lock:
                if status != 200:
                    load.errors.append(f"{question!r}: HTTP {status}: {answer}")
                    continue
                load.latencies.append(seconds)
                load.finished_at.append(time.monotonic())
                if comparable(answer) != reference[question]:
                    load.mismatches.append(question)
        connection.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    load.threads = threads
    return load


def rebuild(server: Server) -> dict:
    """Start a full rebuild, follow its events to the end; its start and end (monotonic) and
    the events."""
    began = time.monotonic()
    status, body = post(server.host, server.port, "/index", {"rebuild": True})
    if status != 202:
        return {"error": f"POST /index: HTTP {status}: {body}", "began": began, "ended": began}
    connection = http.client.HTTPConnection(server.host, server.port, timeout=600)
    connection.request("GET", "/index/events")
    response = connection.getresponse()
    events = []
    for raw in response:
        line = raw.decode().strip()
        if line.startswith("data: "):
            events.append(json.loads(line[len("data: "):]))
            if events[-1]["event"] in ("done", "error"):
                break
    connection.close()
    return {"events": events, "began": began, "ended": time.monotonic()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--corpus", type=Path, default=ROOT / "seeds")
    parser.add_argument("--rounds", type=int, default=5, help="passes of the CLI baseline")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="qa-load-"))
    try:
        index = work / "index"
        print(f"building the index of {args.corpus} …", flush=True)
        build_index(args.corpus, index)
        reference, cli_latencies, cli_seconds = cli_reference(args.corpus, index, QUESTIONS,
                                                              args.rounds)
        server = start_server(args.corpus, index, work / "serve.log")
        try:
            stop = threading.Event()
            began = time.monotonic()
            load = run_clients(server, QUESTIONS, reference, args.clients, stop)
            time.sleep(args.seconds / 3)
            update = rebuild(server)
            time.sleep(max(0.0, began + args.seconds - time.monotonic()))
            stop.set()
            for thread in load.threads:
                thread.join(180)
            ended = time.monotonic()
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    events = update.get("events", [])
    done = events[-1] if events else {}
    during = sum(update["began"] <= t <= update["ended"] for t in load.finished_at)
    served = len(load.latencies)
    cli_rate = len(cli_latencies) / cli_seconds
    rate = served / (ended - began)
    ms = lambda s: f"{s * 1000:.0f} ms"  # noqa: E731
    print(f"\n`qa ask --json -` (one process, one question at a time): {len(cli_latencies)} answers, "
          f"{cli_rate:.1f}/s; p50 {ms(statistics.median(cli_latencies))}, "
          f"p95 {ms(percentile(cli_latencies, 0.95))}")
    print(f"`qa serve`, {args.clients} clients for {ended - began:.0f} s: {served} answers, "
          f"{rate:.1f}/s ({rate / cli_rate:.2f}x the CLI); p50 {ms(statistics.median(load.latencies))}, "
          f"p95 {ms(percentile(load.latencies, 0.95))} (each waits its turn for the "
          f"{os.cpu_count()} cores)")
    quiet = [t for t in load.finished_at if not update["began"] <= t <= update["ended"]]
    quiet_seconds = (ended - began) - (update["ended"] - update["began"])
    if quiet_seconds > 0:
        print(f"  outside the rebuild: {len(quiet) / quiet_seconds:.1f}/s "
              f"({len(quiet) / quiet_seconds / cli_rate:.2f}x the CLI)")
    print(f"rebuild (POST /index, rebuild: true): {update['ended'] - update['began']:.1f} s, "
          f"{len(events)} events, ended with {done.get('event')!r}"
          f" (generation {done.get('generation')}); {during} answers were served meanwhile")
    print(f"errors: {len(load.errors)}; answers differing from the CLI's: {len(load.mismatches)}")
    for line in (load.errors + [f"differs: {q!r}" for q in load.mismatches])[:10]:
        print(f"  {line}")
    ok = (not load.errors and not load.mismatches and done.get("event") == "done" and during > 0
          and served > 0)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
