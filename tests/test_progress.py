"""`qa index` on a terminal: its progress bar moves per document while reading and per batch while
embedding (the real model, in a subprocess with a pseudo-terminal)."""

from __future__ import annotations

import re
import shutil

import pytest
from conftest import SEEDS
from test_default_index import on_a_terminal


@pytest.mark.model
def test_qa_index_on_a_terminal_shows_progress_per_document_and_per_batch(tmp_path):
    shutil.copytree(SEEDS, tmp_path / "seeds")
    code, shown = on_a_terminal(["index", "--index", str(tmp_path / "ix")], tmp_path, "")
    assert code == 0, shown
    steps = {}
    for phase, done, total in re.findall(r"(reading|embedding) [█░]+ (\d+)/(\d+)", shown):
        steps.setdefault(phase, []).append((int(done), int(total)))
    assert steps["reading"] == [(n, 5) for n in range(1, 6)]
    chunks = steps["embedding"][-1][1]
    assert steps["embedding"][-1] == (chunks, chunks)
    between = [done for done, _ in steps["embedding"] if 0 < done < chunks]
    assert len(between) >= 2 and between == sorted(between), steps["embedding"]
