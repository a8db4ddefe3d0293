"""The bundled all-MiniLM-L6-v2 run by onnxruntime: documents and questions, no torch.

The package ships the network's six transformer layers as ONNX (qa/index/model/encoder.onnx,
made from the bundled weights by training/export_encoder.py, fp32; encoder.json records its
checksum and the figures that chose fp32 over int8). The embedding layer (a table lookup and a
LayerNorm) is computed in numpy from the bundled model.safetensors (qa/index/embedding_layer.py),
as for the answer scorer, so the word-embedding table is not shipped twice. Pooling is sentence-transformers': the mean of the
token embeddings of the text (special tokens included), normalised; the caller does it.

Texts are tokenised by ``tokenizers`` (the bundled tokenizer.json), sorted by length and run in
batches of similar length, so almost no padding is computed.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from qa.index.embedding_layer import EmbeddingLayer

MODEL_DIR = Path(__file__).resolve().parent / "model"
MODEL_FILE = MODEL_DIR / "encoder.onnx"
MANIFEST = MODEL_DIR / "encoder.json"
# Word pieces per batch (texts x longest text): large enough for the matrix products to run at
# full speed, small enough that a batch of 256-piece chunks stays a few MB of activations.
BATCH_TOKENS = 8192
BATCH_TEXTS = 64


def manifest() -> dict:
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def encoder_identity(model_file: Path = MODEL_FILE) -> str:
    """What an index records as the encoder of its vectors. The shipped file computes in fp32 and
    gives sentence-transformers' vectors to a cosine above .99999: "fp32", the family of every index built
    before (read from its manifest, no hashing at start-up). Any other file (an int8 export, in
    the benchmarks) is its own family, named by its checksum."""
    if Path(model_file) == MODEL_FILE:
        return manifest()["vectors"]
    return "onnx " + hashlib.sha256(Path(model_file).read_bytes()).hexdigest()[:16]


class OnnxMiniLM:
    """Token embeddings of texts: ``forward_many`` for documents, ``forward`` for one question."""

    def __init__(self, path: str, model_file: Path = MODEL_FILE) -> None:
        from tokenizers import Tokenizer

        with open(os.path.join(path, "sentence_bert_config.json"), encoding="utf-8") as handle:
            max_length = int(json.load(handle)["max_seq_length"])
        self.tokenizer = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_length)
        self.embed = EmbeddingLayer(path)
        self.model_file = Path(model_file)
        self._sessions: dict[int, object] = {}
        self._lock = threading.Lock()

    def session(self, threads: int):
        """An onnxruntime session on ``threads`` threads (one per thread count, made once)."""
        with self._lock:
            if threads not in self._sessions:
                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                options.log_severity_level = 3
                self._sessions[threads] = onnxruntime.InferenceSession(
                    str(self.model_file), options, providers=["CPUExecutionProvider"])
            return self._sessions[threads]

    def token_count(self, text: str) -> int:
        return len(self.tokenizer.encode(text).ids)

    def forward(self, text: str, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Token embeddings (tokens, hidden) of ``text`` with [CLS] and [SEP], and its input ids,
        truncated to the model's max_seq_length as sentence-transformers does."""
        matrix, ids, _ = self.forward_many([text], threads)[0]
        return matrix, ids

    def forward_with_offsets(self, text: str, threads: int = 1):
        return self.forward_many([text], threads)[0]

    def forward_many(self, texts: list[str], threads: int = 1):
        """Per text, in order: (token embeddings, input ids, each token's (start, end) characters
        in the text, (0, 0) for [CLS] and [SEP]), padding removed. With ``threads`` above one,
        that many batches run at once, each on one thread of its own (a single batch runs on
        ``threads`` intra-op threads): 300 SQuAD paragraphs took 9.7-11.2 s on two intra-op
        threads and 6.5-8.0 s as two one-thread runs, the same vectors (a 2-core machine with
        another process busy; onnxruntime frees the GIL while it runs)."""
        encodings = self.tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(-lengths, kind="stable")
        # Batches of at most BATCH_TOKENS, and of a share of the work small enough that each
        # thread gets some (a build hands over 32 chunks at a time: two or three batches).
        tokens = min(BATCH_TOKENS, -(-int(lengths.sum()) // max(1, threads)))
        batches = []
        at = 0
        while at < len(order):
            longest = int(lengths[order[at]])
            count = max(1, min(BATCH_TEXTS, tokens // max(longest, 1)))
            batches.append(order[at : at + count])
            at += count
        # One batch: its own matrix products on every thread; more: one thread each.
        session = self.session(threads if len(batches) == 1 else 1)

        def run(rows):
            longest = int(lengths[rows[0]])
            ids = np.zeros((len(rows), longest), dtype=np.int64)
            mask = np.zeros_like(ids)
            for i, row in enumerate(rows):
                n = lengths[row]
                ids[i, :n] = encodings[row].ids
                mask[i, :n] = 1
            [tokens] = session.run(None, {"hidden": self.embed(ids), "attention_mask": mask})
            return rows, ids, tokens

        out: list = [None] * len(texts)
        for rows, ids, tokens in self._each(run, batches, threads):
            for i, row in enumerate(rows):
                n = int(lengths[row])
                offsets = np.asarray(encodings[row].offsets, dtype=np.int64).reshape(n, 2)
                out[row] = (np.ascontiguousarray(tokens[i, :n], dtype=np.float32),
                            ids[i, :n].astype(np.int32), offsets)
        return out

    def _each(self, run, batches: list, threads: int):
        """``run`` of each batch, in order, ``threads`` at a time (a generator: results are taken
        as they come, not held all at once)."""
        if threads <= 1 or len(batches) < 2:
            yield from map(run, batches)
            return
        with ThreadPoolExecutor(min(threads, len(batches)), thread_name_prefix="qa-encoder") as pool:
            running = deque()
            for batch in batches:  # a few batches ahead at most
                running.append(pool.submit(run, batch))
                if len(running) > threads:
                    yield running.popleft().result()
            while running:
                yield running.popleft().result()
