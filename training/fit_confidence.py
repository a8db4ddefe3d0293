"""Fit the answer confidence (qa.answer.sentences.CONFIDENCE_*) on questions of no reported set.

Questions: SQuAD v1.1 dev questions of the 4 train articles that train_reranker.py keeps out of
training. Asked of three collections:
- the SQuAD corpus (48 articles): they are covered (positives);
- the same corpus without those 4 articles: on topic for an encyclopedia, but not covered (hard
  negatives);
- a documentation collection (Sphinx's manual, from Debian's sphinx-doc package): not covered
  (negatives of another kind of collection).
Features are the evidence every answer carries (Answer.evidence). A logistic regression with a
little L2 is fitted in numpy; 2-fold cross-validated AUC and the weights are printed, to be
copied into qa/answer/sentences.py.

    python training/fit_confidence.py [--work /tmp/qa-train] [--docs /usr/share/doc/sphinx-doc/html]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.engine import Engine  # noqa: E402

from tune_answers import SQUAD, validation_questions  # noqa: E402

FEATURES = ("dense", "coverage", "mass", "sentence", "full", "answer")


def features(answer) -> list[float]:
    e = dict(answer.evidence)
    e["full"] = float(e.get("coverage", 0.0) >= 0.999)
    return [float(e.get(name, 0.0)) for name in FEATURES]


def collection(path: Path, work: Path, name: str) -> Engine:
    engine = Engine(path, work / name)
    engine.sync()
    engine.load()
    return engine


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 3000) -> tuple[np.ndarray, float]:
    mean, scale = x.mean(0), x.std(0) + 1e-9
    z = (x - mean) / scale
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(steps):  # plain gradient descent: a handful of features
        p = 1 / (1 + np.exp(-(z @ w + b)))
        w -= 0.5 * (z.T @ (p - y) / len(y) + l2 * w)
        b -= 0.5 * float(np.mean(p - y))
    return w / scale, b - float((w / scale) @ mean)


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    positives = y == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-train"))
    parser.add_argument("--docs", type=Path, default=Path("/usr/share/doc/sphinx-doc/html"))
    parser.add_argument("--docs-questions", type=int, default=300)
    args = parser.parse_args()
    questions = validation_questions(None)
    held = {q["gold_file"] for q in questions}
    minus = args.work / "corpus-squad-minus"
    if not minus.exists():
        minus.mkdir(parents=True)
        for f in (SQUAD / "corpus").iterdir():
            if f.name not in held:
                shutil.copy(f, minus / f.name)
    docs = args.work / "corpus-docs"
    if not docs.exists():
        shutil.copytree(args.docs, docs, ignore=lambda d, names: [
            n for n in names if not n.endswith(".html") and not (Path(d) / n).is_dir()])
    rows, labels = [], []
    for path, name, label, limit in ((SQUAD / "corpus", "squad", 1, None),
                                     (minus, "squad-minus", 0, None),
                                     (docs, "docs", 0, args.docs_questions)):
        engine = collection(path, args.work, name)
        for q in questions[:limit]:
            rows.append(features(engine.ask(q["question"])))
            labels.append(label)
        print(f"{name}: {len(questions[:limit])} questions", file=sys.stderr)
    x, y = np.asarray(rows), np.asarray(labels, dtype=float)
    folds = np.arange(len(y)) % 2
    scores = np.zeros(len(y))
    for k in (0, 1):
        w, b = fit(x[folds != k], y[folds != k])
        scores[folds == k] = x[folds == k] @ w + b
    w, b = fit(x, y)
    np.savez(args.work / "confidence-features.npz", x=x, y=y)
    probability = 1 / (1 + np.exp(-(x @ w + b)))
    for bar in (0.1, 0.2, 0.25, 0.3, 0.4, 0.5):
        print(f"below {bar}: declines {np.mean(probability[y == 1] < bar):.3f} of the covered, "
              f"{np.mean(probability[y == 0] < bar):.3f} of the others", file=sys.stderr)
    print(json.dumps({"features": FEATURES, "weights": [round(float(v), 3) for v in w],
                      "bias": round(b, 3), "cross-validated AUC": round(auc(scores, y), 4),
                      "questions": {"positive": int(y.sum()), "negative": int((1 - y).sum())}},
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
