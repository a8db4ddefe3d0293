"""The answer-sentence scorer ships in the package, loads offline, matches its manifest, and reads
an answer as a better one than a sentence on another subject."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from qa.answer.scorer import MODEL_DIR, SentenceScorer, scorer_input


def test_the_weights_are_the_ones_the_manifest_describes():
    scorer = SentenceScorer()
    assert scorer.available()
    manifest = scorer.manifest
    weights = MODEL_DIR / manifest["weights"]["file"]
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == manifest["weights"]["sha256"]
    assert manifest["data"]["sha256"] and "train articles" in manifest["data"]["recipe"]
    assert weights.stat().st_size < 10 * 1024 * 1024


def test_it_loads_offline_and_ranks_the_answer_first():
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('no network')\n"
        "socket.socket.connect = refuse\n"
        "from qa.answer.scorer import SentenceScorer\n"
        "s = SentenceScorer()\n"
        "q = 'How long did the meeting last?'\n"
        "a, b = s.scores(q, ['The meeting lasted four hours in Brussels.',\n"
        "                    'The ferry timetable changes next week.'])\n"
        "print(float(a) > float(b))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    assert out.stdout.strip() == "True"
    assert "torch" not in out.stderr


def test_scorer_input_puts_the_heading_first():
    assert scorer_input("  It is   late. ", "Guide > Setup") == "Guide > Setup: It is late."
    assert scorer_input("It is late.") == "It is late."


def test_no_torch_is_imported_to_score():
    code = ("import sys\nfrom qa.answer.scorer import SentenceScorer\n"
            "SentenceScorer().scores('q?', ['a sentence.'])\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_sentence_scores_the_same_whatever_it_is_read_with():
    scorer = SentenceScorer()
    question = "How long did the meeting last?"
    answer = "The meeting lasted four hours in Brussels."
    alone = scorer.scores(question, [answer])[0]
    beside = scorer.scores(question, ["Short.", answer, "A much longer sentence about the ferry "
                                      "timetable, which changes next week for the winter season."])
    assert beside[1] == alone
