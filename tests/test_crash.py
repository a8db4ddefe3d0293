"""kill -9 in the middle of a real `qa index`: the old index keeps answering, the next run finishes.

The build is slowed by size alone: a generated corpus of 210 short chunks (two embedding batches),
so embedding takes seconds, and the kill comes as soon as the first batch reaches the cache.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS

from qa.index import caches, generations, store
from qa.cli import main
from qa.index.embedder import MODEL_DIMENSION, MODEL_NAME
from qa.engine import Engine
from qa.index.indexer import expected_params

QUESTION = "What did Grushko demand?"


def generate_bulk(folder: Path, files: int = 10, paragraphs: int = 21, seed: int = 7) -> None:
    """Deterministic prose-like files of short paragraphs (one chunk each), words from the seeds."""
    words = sorted({w for p in SEEDS.glob("*.txt")
                    for w in re.findall(r"[A-Za-z]{3,}", p.read_text(encoding="utf-8"))})
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    for n in range(files):
        body = []
        for _ in range(paragraphs):
            sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(10, 22))).capitalize() + "."
                         for _ in range(rng.randint(1, 2))]
            body.append(" ".join(sentences))
        (folder / f"report_{n:03d}.txt").write_text("\n\n".join(body) + "\n", encoding="utf-8")


def hits(engine: Engine) -> list[tuple[str, int, int]]:
    return [(p.source, p.start, p.end) for p in engine.search(QUESTION, k=5)]


@pytest.mark.model
def test_kill_9_mid_build_keeps_the_old_index_and_the_next_build_reuses_the_cache(
        seeds_copy, tmp_path, real_embedder, capsys):
    index = tmp_path / "index"
    Engine(seeds_copy, index, real_embedder).sync()
    before = hits(Engine(seeds_copy, index, real_embedder))
    assert before and "Grushko" in Engine(seeds_copy, index, real_embedder).search(QUESTION, k=1)[0].text

    generate_bulk(seeds_copy / "bulk")
    cache = caches.EmbeddingCache(index, MODEL_NAME, MODEL_DIMENSION)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    command = [sys.executable, "-m", "qa", "index", "--json", "--corpus", str(seeds_copy),
               "--index", str(index)]
    build = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        # Kill as soon as the first embedded batch is in the cache: mid-embedding, for certain.
        deadline = time.monotonic() + 240
        while not (cache.keys_path.exists() and cache.keys_path.stat().st_size > 0):
            assert build.poll() is None, f"build ended before it could be killed: {build.communicate()}"
            assert time.monotonic() < deadline, "no embeddings cached after 240 s"
            time.sleep(0.02)
        build.send_signal(signal.SIGKILL)
        build.wait(30)
    finally:
        if build.poll() is None:
            build.kill()
            build.wait()
    assert build.returncode == -signal.SIGKILL

    # The previous generation is still live, verifies, and answers exactly as before.
    assert generations.current_path(index).name == "gen-000001"
    reopened = Engine(seeds_copy, index, real_embedder)
    assert reopened.snapshot.manifest["generation"] == 1
    assert len(reopened.snapshot.documents) == 5
    assert hits(reopened) == before
    cached = set(cache.load())
    assert cached

    # The next `qa index` completes, embeds only what the killed build had not, and cleans up.
    # (Run through the CLI's main in this process: the same code path, one torch start-up less.)
    assert main(command[3:]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["added"], report["unchanged"], report["removed"]) == (10, 5, 0)
    snap = store.load_snapshot(index, expected_params(real_embedder))
    new_hashes = {c.hash for c in snap.chunks if c.source.startswith("bulk/")}
    assert len(new_hashes) > len(cached)  # the kill really came mid-build
    assert report["chunks_embedded"] == len(new_hashes - cached) < len(new_hashes)
    assert sorted(p.name for p in index.iterdir()) == [".lock", "CURRENT", "gen-000002"]

    after = Engine(seeds_copy, index, real_embedder)
    assert hits(after)[0] == before[0]
    assert set(after.snapshot.documents) >= {f"bulk/report_{n:03d}.txt" for n in range(10)}
