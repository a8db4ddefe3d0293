"""Out-of-domain evaluation of qa on real documentation collections installed from Debian packages.

    python benchmarks/ood.py --collection debian-reference [--work /tmp/qa-ood]
    python benchmarks/ood.py --corpus DIR --questions FILE [--work /tmp/qa-ood]

Prepares the corpus (the collection's HTML pages copied, or decompressed, from /usr/share/doc into
the work folder; images and CSS are left out), builds or updates a qa index for it, asks every
question of the question file (the turns of a conversation in order through one
``qa.engine.Conversation``, a single question on a fresh one) and prints a Markdown table beside a
txtai-style hybrid paragraph baseline over the same pages with the same bundled model.

`debian-reference` is the DEV set (failures may be listed with --failures); `debian-handbook` is
HELD-OUT: only aggregate figures are printed for it, never its questions or answers.

Only public pieces of qa are used (Engine, Conversation and the fields of an Answer); the page text
the baseline and the question checker read is extracted here with lxml, independently of qa's
readers.
"""

from __future__ import annotations

import argparse
import gzip
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
