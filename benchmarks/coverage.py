"""How much of each document ends up in a chunk: ingestion coverage for any corpus folder.

    python benchmarks/coverage.py CORPUS [CORPUS ...] [--show N]

For every corpus it prints:
- text in chunks: the share of the extracted text's non-space characters that lie inside a
  chunk's sentences, with what is left out listed by the line (page furniture by qa's rules);
- for HTML pages, measured against the page itself rather than qa's extraction: the share of the
  words of the page's visible text that are in chunks, once the furniture the markup names is
  set apart (navigation, banner, footer and search landmarks, hidden elements, menus and tables
  of contents made only of links, permalink marks, what lies outside a page's <main>), and the
  share of its headings (<h1>-<h6>) whose text is in a chunk.
No model is loaded: this is reading, boilerplate and chunking only.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.config import DEFAULT_MAX_FILE_BYTES, MAX_CHUNK_TOKENS  # noqa: E402
from qa.ingest.boilerplate import (  # noqa: E402
    _shares_affix,
    corpus_segments,
    is_short,
    line_spans,
    normalise_line,
    repeated_lines,
)
from qa.ingest.chunking import chunk_segments, default_token_counter  # noqa: E402
from qa.ingest.documents import SkipFile, load_document, scan_corpus  # noqa: E402
from qa.ingest.html import _Walker, _content_roots, _is_furniture, _tag  # noqa: E402

_WORDS = re.compile(r"\w+")


def chunked(corpus: Path) -> dict[str, tuple]:
    """{source: (document, chunks)} as `qa index` would make them."""
    documents = {}
    for file in scan_corpus(corpus, DEFAULT_MAX_FILE_BYTES, warn=lambda s, r: None):
        try:
            documents[file.source] = load_document(file, "")
        except SkipFile:
            continue
    segments = corpus_segments({s: d.text for s, d in documents.items()},
                               {s: d.blocks for s, d in documents.items() if d.blocks})
    counter = default_token_counter()
    return {s: (d, chunk_segments(d.text, segments[s], counter, MAX_CHUNK_TOKENS, d.blocks, d.title))
            for s, d in documents.items()}


def covered(text: str, chunks) -> list[bool]:
    inside = [False] * len(text)
    for chunk in chunks:
        for s, e in chunk.sentences:
            inside[s:e] = [True] * (e - s)
    return inside


def html_reference(path: Path) -> tuple[Counter, Counter, list[str]]:
    """(words of the page's visible text outside named furniture, words inside it, headings)."""
    import lxml.html

    from qa.ingest.html import _XML_DECLARATION
    from qa.ingest.readers import _decode_markup

    raw, _ = _decode_markup(path.read_bytes())
    root = lxml.html.document_fromstring(_XML_DECLARATION.sub("", raw, count=1))
    for bad in root.xpath("//script|//style|//noscript|//template|//head"):
        bad.drop_tree()
    content_roots = _content_roots(root)
    walker = _Walker()
    furniture: set = set()

    def mark(element, in_content: bool, in_roots: bool) -> None:
        tag = _tag(element)
        in_content = in_content or tag in ("main", "article") or element.get("role") == "main"
        inside = in_roots or element in content_roots
        if not inside and not any(r in element.iterdescendants() for r in content_roots):
            furniture.add(element)  # outside the page's main content
            return
        if inside and (_is_furniture(element, in_content) or (
                tag in ("ul", "ol", "menu", "dl", "table", "div", "section", "p")
                and walker.link_only(element, links=2)) or (
                tag == "a" and not re.search(r"\w", element.text_content()))):
            furniture.add(element)
            return
        for child in element:
            mark(child, in_content, inside)

    body = root.find("body")
    mark(body if body is not None else root, False, False)
    kept, named = Counter(), Counter()

    def count(element, in_furniture: bool) -> None:
        in_furniture = in_furniture or element in furniture
        target = named if in_furniture else kept
        target.update(w.lower() for w in _WORDS.findall(element.text or ""))
        for child in element:
            count(child, in_furniture)
            target.update(w.lower() for w in _WORDS.findall(child.tail or ""))

    count(body if body is not None else root, False)
    headings = [" ".join(h.text_content().split()).rstrip("¶#").strip()
                for h in root.xpath("//h1|//h2|//h3|//h4|//h5|//h6")
                if not any(a in furniture for a in h.iterancestors()) and h not in furniture]
    return kept, named, [h for h in headings if h]


def reason(line: str, repeated: set[str], after_last: bool) -> str:
    """Which furniture rule leaves ``line`` out, or "unexplained"."""
    if not _WORDS.search(line):
        return "no words"
    if normalise_line(line) in repeated:
        return "repeated across documents"
    if _shares_affix(_WORDS.findall(line)):
        return "icon names"
    if is_short(line):
        return "label after the last sentence" if after_last else "menu or label"
    return "unexplained"


def report(corpus: Path, show: int) -> dict:
    docs = chunked(corpus)
    repeated = repeated_lines(d.text for d, _ in docs.values())
    total = inside = 0
    left_out: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    page_words = page_kept = named_words = 0
    headings = headings_kept = 0
    for source, (doc, chunks) in docs.items():
        flags = covered(doc.text, chunks)
        for i, ch in enumerate(doc.text):
            if not ch.isspace():
                total += 1
                inside += flags[i]
        last = max((c.end for c in chunks), default=0)
        for s, e in line_spans(doc.text):
            line = doc.text[s:e]
            missing = [i for i in range(s, e) if not flags[i] and not doc.text[i].isspace()]
            if missing:
                why = reason(line, repeated, s >= last)
                reasons[why] += len(missing)
                left_out[f"{' '.join(line.split())[:90]}  ({why})"] += 1
        if doc.format == "html":
            kept, named, heads = html_reference(corpus / source)
            chunk_words = Counter(w.lower() for c in chunks
                                  for s, e in c.sentences for w in _WORDS.findall(doc.text[s:e]))
            page_words += sum(kept.values())
            page_kept += sum((kept & chunk_words).values())
            named_words += sum(named.values())
            chunk_text = " ".join(" ".join(doc.text[s:e].split()) for c in chunks for s, e in c.sentences)
            headings += len(heads)
            headings_kept += sum(h in chunk_text for h in heads)
    result = {"documents": len(docs), "chunks": sum(len(c) for _, c in docs.values()),
              "text in chunks": inside / max(1, total)}
    print(f"\n## {corpus}: {len(docs)} documents, {result['chunks']} chunks")
    result["unexplained"] = reasons["unexplained"] / max(1, total)
    result["in chunks or named furniture"] = 1 - result["unexplained"]
    print(f"extracted text in chunks: {result['text in chunks']:.4f} of {total:,} non-space characters; "
          f"in chunks or named furniture {result['in chunks or named furniture']:.4f}")
    if reasons:
        print("left out, by rule: " + ", ".join(f"{why} {n / total:.2%}" for why, n in reasons.most_common()))
    if page_words:
        result["page words in chunks"] = page_kept / page_words
        result["headings kept"] = headings_kept / max(1, headings)
        print(f"HTML pages: words of the visible text in chunks {result['page words in chunks']:.4f} "
              f"(of {page_words:,}; a further {named_words:,} words are named furniture: "
              f"{named_words / (named_words + page_words):.1%}); headings kept "
              f"{result['headings kept']:.4f} ({headings_kept} of {headings})")
    if show and left_out:
        print(f"left out (lines with text outside every chunk; the {show} most frequent):")
        for line, n in left_out.most_common(show):
            print(f"  {n:4d} x {line}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpora", nargs="+", type=Path)
    parser.add_argument("--show", type=int, default=15, help="list this many left-out lines")
    args = parser.parse_args()
    for corpus in args.corpora:
        report(corpus, args.show)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
