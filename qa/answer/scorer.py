"""The answer-sentence scorer: how well a sentence answers a question, read together.

A small cross-encoder trained in this repository (training/train_reranker.py) from the bundled
all-MiniLM-L6-v2: its first layers, fine-tuned on SQuAD questions of the 24 train articles, read
"[CLS] question [SEP] heading: sentence [SEP]" and give a logit. The package ships those layers
and the head as int8 ONNX (qa/answer/model/scorer.onnx, with scorer.json: data recipe, checksum,
figures); the embedding layer was kept frozen in training, so its weights are read from the
bundled model. onnxruntime runs it on one thread; nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.config import model_path
from qa.index.embedding_layer import EmbeddingLayer

MODEL_DIR = Path(__file__).resolve().parent / "model"
MAX_LENGTH = 96
# Each pair is run alone, unpadded. The int8 graph quantises its activations per run, over the
# whole batch, so in a padded batch a sentence's logit moved with its neighbours (by up to .8);
# alone it has one score, and a third fewer word pieces are computed. SQuAD tuning questions: R@1
# .887 -> .890, gold in answer .914 -> .915; 600 news tuning questions: R@1 .485 -> .483, gold
# .438 -> .442, answered .777 -> .783 (training/tune_answers.py PER_PAIR=0 PER_PAIR=1).
PER_PAIR = True
# The pairs are shared among this many threads, one onnxruntime session run each at a time (it
# frees the GIL while it runs). Eight pairs on a 2-core machine: 15 -> 8 ms, the same scores; one
# session on two intra-op threads gained less (13 -> 9-10 ms) and spun the second core meanwhile.
THREADS = min(2, os.cpu_count() or 1)


def scorer_input(sentence: str, heading: str = "") -> str:
    """The second segment the scorer reads: the heading path, then the sentence."""
    sentence = " ".join(sentence.split())
    return f"{heading}: {sentence}" if heading else sentence


class SentenceScorer:
    """Loaded on first use, from any thread."""

    def __init__(self, model_dir: Path = MODEL_DIR):
        self.model_dir = Path(model_dir)
        self._lock = threading.Lock()
        self._session = None
        self._pool = None

    @property
    def manifest(self) -> dict:
        return json.loads((self.model_dir / "scorer.json").read_text(encoding="utf-8"))

    def available(self) -> bool:
        return (self.model_dir / "scorer.onnx").exists()

    def load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime
            from tokenizers import Tokenizer

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            session = onnxruntime.InferenceSession(str(self.model_dir / "scorer.onnx"), options,
                                                   providers=["CPUExecutionProvider"])
            base = model_path()
            tokenizer = Tokenizer.from_file(os.path.join(base, "tokenizer.json"))
            tokenizer.no_padding()
            # longest_first: a question longer than the whole window (a pasted paragraph) is cut too.
            tokenizer.enable_truncation(max_length=MAX_LENGTH, strategy="longest_first")
            self._embed = EmbeddingLayer(base)
            self._tokenizer = tokenizer
            if THREADS > 1:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="qa-scorer")
            self._session = session

    def scores(self, question: str, texts: Sequence[str]) -> np.ndarray:
        """One logit per text (higher: a better answer to ``question``)."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        self.load()
        encodings = self._tokenizer.encode_batch([(question, text) for text in texts])
        if not PER_PAIR:
            return self._run(encodings)
        if self._pool is None or len(encodings) < 2:
            return np.concatenate([self._run([encoding]) for encoding in encodings])
        return np.concatenate(list(self._pool.map(lambda encoding: self._run([encoding]), encodings)))

    def _run(self, encodings) -> np.ndarray:
        length = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), length), dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            types[row, :n] = encoding.type_ids
            mask[row, :n] = 1
        [logits] = self._session.run(None, {"hidden": self._embed(ids, types), "attention_mask": mask})
        return np.asarray(logits, dtype=np.float32).reshape(len(encodings))
