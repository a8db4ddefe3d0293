"""Turn one file into text. Offsets everywhere else index the text returned here.

Plain text and Markdown are decoded (BOM, UTF-8, then cp1252 / latin-1) and their newlines
translated the way Python's ``open()`` does, so ``open(path).read()[start:end]`` is the cited text
for UTF-8 files. HTML and PDF are converted; ``qa show`` prints their extracted text.
"""

from __future__ import annotations

import codecs
import html
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from qa.ingest.html import Block, html_to_text
from qa.ingest.markdown import heading_name, markdown_blocks

TEXT_SUFFIXES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown"}
HTML_SUFFIXES = {".html": "html", ".htm": "html", ".xhtml": "html"}
PDF_SUFFIXES = {".pdf": "pdf"}
FORMATS = {**TEXT_SUFFIXES, **HTML_SUFFIXES, **PDF_SUFFIXES}

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_HAS_WORD = re.compile(r"\w")
_TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b\x0d-\x1f\x7f-\x9f]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class SkipFile(Exception):
    """This file cannot be indexed; the message says why, in a few words."""


@dataclass(frozen=True)
class Extracted:
    text: str
    format: str
    encoding: str = "utf-8"
    # Offset in ``text`` where each PDF page starts (page n starts at page_starts[n-1]).
    page_starts: tuple[int, ...] = field(default=())
    # The structure of a converted or Markdown document: headings, paragraphs, items, code.
    blocks: tuple[Block, ...] = field(default=())
    title: str = ""


def format_of(path: Path) -> str | None:
    return FORMATS.get(path.suffix.lower())


def read_document(path: Path) -> Extracted:
    """Extract the text of ``path``; raise SkipFile with a short reason when it is unusable."""
    kind = format_of(path)
    if kind is None:
        raise SkipFile("unsupported file type")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SkipFile(f"cannot read ({exc.strerror or exc})") from None
    return read_document_bytes(data, kind)


def read_document_bytes(data: bytes, kind: str) -> Extracted:
    """Extract the text of a file's bytes, ``kind`` being its format_of; raise SkipFile with a
    short reason when it is unusable. The corpus reader opens each file once, safely, and hands
    the bytes here (see qa.ingest.documents.read_corpus_file)."""
    if not data.strip():
        raise SkipFile("empty file")
    if kind == "pdf":
        result = _read_pdf(data)
    elif kind == "html":
        result = _read_html(data)
    else:
        text, encoding = decode_text(data)
        blocks = markdown_blocks(text) if kind == "markdown" else ()
        title = next((heading_name(text[b.start:b.end]) for b in blocks
                      if b.kind == "heading" and b.level == 1), "")
        result = Extracted(text, kind, encoding, blocks=blocks, title=title)
    if not _HAS_WORD.search(result.text):
        raise SkipFile("no text found")
    if _TERMINAL_CONTROL.search(result.text):
        result = replace(result, text=visible_controls(result.text))
    return result


def visible_controls(text: str) -> str:
    """Replace control characters one for one, so no file can style or move a terminal.

    An escape byte in a document would otherwise recolour the terminal when `qa` prints it. Each
    C0 control becomes its Unicode picture (ESC -> "␛") and each C1 control U+FFFD: one character
    for one, so offsets into the text still match the file. Tab, newline and form feed stay.
    """
    return _TERMINAL_CONTROL.sub(
        lambda m: chr(0x2400 + ord(m.group())) if m.group() < " " else
        ("\u2421" if m.group() == "\x7f" else "\ufffd"), text)


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode bytes of a text file, detecting the encoding; raise SkipFile for binary data."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            # A UTF-8 BOM is kept, as U+FEFF, so offsets still index `open(path).read()` (which
            # keeps it too); chunks and sentences never start with it.
            codec = "utf-8" if encoding == "utf-8-sig" else encoding
            try:
                return normalise_newlines(data.decode(codec)), encoding
            except UnicodeDecodeError:
                raise SkipFile(f"invalid {encoding} text") from None
    if b"\x00" in data:
        utf16 = _bomless_utf16(data)
        if utf16 is None:
            raise SkipFile("binary file (contains NUL bytes)")
        return _unless_control_characters(*utf16)
    mostly_utf8 = _mostly_utf8(data)
    if mostly_utf8 is not None:
        return normalise_newlines(mostly_utf8), "utf-8"
    for encoding in ("utf-8", "cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return _unless_control_characters(text, encoding)
    raise SkipFile("undecodable text")  # unreachable: latin-1 decodes any bytes


def _unless_control_characters(text: str, encoding: str) -> tuple[str, str]:
    """(text with newlines normalised, encoding); SkipFile when the decoded "text" is mostly
    control characters, as binary data decoded by a forgiving codec is."""
    if len(_CONTROL.findall(text)) > max(8, len(text) // 200):
        raise SkipFile("binary file (control characters)")
    return normalise_newlines(text), encoding


def _bomless_utf16(data: bytes) -> tuple[str, str] | None:
    """(text, "utf-16-le" or "utf-16-be") for UTF-16 text saved without a byte order mark, else
    None.

    Text in a Latin script is mostly ASCII, so one byte of nearly every UTF-16 code unit is zero:
    the odd bytes for little-endian, the even ones for big-endian, and few of the others.
    """
    if len(data) < 4 or len(data) % 2:
        return None
    even, odd = data[0::2], data[1::2]
    units = len(even)
    zero_even, zero_odd = even.count(0), odd.count(0)
    if zero_odd >= 0.6 * units and zero_even <= 0.05 * units:
        encoding = "utf-16-le"
    elif zero_even >= 0.6 * units and zero_odd <= 0.05 * units:
        encoding = "utf-16-be"
    else:
        return None
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError:  # unpaired surrogates: not text after all
        return None


def _mostly_utf8(data: bytes) -> str | None:
    """UTF-8 text with a few stray bytes (a pasted latin-1 character), or None.

    Decoding such a file as cp1252 would garble every one of its real UTF-8 characters; instead
    the stray bytes become U+FFFD. Text in a legacy encoding has few or no valid multi-byte
    sequences, so it is left to the cp1252 / latin-1 decoders.
    """
    try:
        data.decode("utf-8")
        return None  # valid UTF-8: the normal path
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", "replace")
    stray = text.count("\ufffd")
    multibyte = sum(1 for ch in text if ch > "\x7f" and ch != "\ufffd")
    if multibyte >= 4 * stray and stray <= max(3, len(text) // 1000):
        return text
    return None


def normalise_newlines(text: str) -> str:
    """Translate CRLF and CR to LF, as Python's text mode does."""
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _read_html(data: bytes) -> Extracted:
    raw, encoding = _decode_markup(data)
    converted = html_to_text(raw)
    if converted is not None and _HAS_WORD.search(converted.text):
        return Extracted(converted.text, "html", encoding, blocks=converted.blocks,
                         title=converted.title)
    # Markup lxml cannot read: the plain tag stripper, one paragraph per line.
    return Extracted(normalise_newlines(_strip_tags(raw)), "html", encoding)


def _decode_markup(data: bytes) -> tuple[str, str]:
    head = data[:2048].decode("ascii", "ignore")
    declared = re.search(r"""charset=["']?([A-Za-z0-9_\-]+)""", head)
    if declared:
        try:
            return data.decode(declared.group(1)), declared.group(1).lower()
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_text(data)


def _strip_tags(raw: str) -> str:
    raw = re.sub(r"(?is)<(script|style|nav|footer|header|noscript|aside|form|button|template|svg)\b.*?</\1>", " ", raw)
    raw = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</h\d>|</li>", "\n", raw)
    text = html.unescape(re.sub(r"<[^>]+>", " ", raw))
    lines = (re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines())
    return "\n\n".join(line for line in lines if line)


def _read_pdf(data: bytes) -> Extracted:
    import io
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.CRITICAL)  # its notes on odd files are not ours to print
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [unwrap_lines(normalise_newlines(page.extract_text() or "")) for page in reader.pages]
    except Exception as exc:  # pypdf raises many kinds of error on damaged or hostile files
        raise SkipFile(f"unreadable PDF ({type(exc).__name__})") from None
    starts, parts, offset = [], [], 0
    for page in pages:
        starts.append(offset)
        parts.append(page)
        offset += len(page) + 2
    return Extracted("\n\n".join(parts), "pdf", "pdf", tuple(starts))


_LINE_END = re.compile(r"""[.!?:;…。！？]['"’”»)\]]*$""")


def unwrap_lines(page: str, wrapped_ratio: float = 0.7) -> str:
    """Join the printed lines a PDF page wrapped its paragraphs into, one paragraph per line.

    PDF text comes one printed line at a time. Left as is, a sentence broken across lines would be
    cut in two, and its short pieces taken for headings by the boilerplate rules. A line is joined
    to the next when it is nearly as long as the page's full lines (it was wrapped, not ended) and
    does not end a sentence; headings, short last lines and blank lines end a paragraph.
    """
    lines = [" ".join(line.split()) for line in page.split("\n")]
    lengths = sorted(len(line) for line in lines if line)
    if not lengths:
        return ""
    full = lengths[(len(lengths) - 1) * 9 // 10]  # about the column width, robust to one long line
    paragraphs: list[str] = []
    current = ""
    for line in lines:
        if not line:
            if current:
                paragraphs.append(current)
            current = ""
            continue
        if not current:
            current = line
        elif current.endswith("-") and current[-2:-1].isalpha() and line[:1].islower():
            current += line  # a word hyphenated across lines: keep the hyphen, drop the break
        else:
            current += " " + line
        hyphenated = line.endswith("-") and line[-2:-1].isalpha()
        if (len(line) < wrapped_ratio * full and not hyphenated) or _LINE_END.search(line):
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    return "\n".join(paragraphs)
