"""Turn one file into text. Offsets everywhere else index the text returned here.

Plain text and Markdown are decoded (BOM, UTF-8, then cp1252 / latin-1) and their newlines
translated the way Python's ``open()`` does, so ``open(path).read()[start:end]`` is the cited text
for UTF-8 files. Every other format is converted, keeping its structure (qa.ingest.html's
TextBuilder); ``qa show`` prints the converted text. Office files and books are read in
qa.ingest.office, mail in qa.ingest.mail, notebooks, reStructuredText and tables in
qa.ingest.notes, scanned PDF pages by qa.ingest.ocr.
"""

from __future__ import annotations

import codecs
import html
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from qa.errors import SkipFile
from qa.ingest.html import Block, Converted, html_to_text
from qa.ingest.markdown import heading_name, markdown_blocks
from qa.results import Locator

TEXT_SUFFIXES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown"}
HTML_SUFFIXES = {".html": "html", ".htm": "html", ".xhtml": "html"}
PDF_SUFFIXES = {".pdf": "pdf"}
OFFICE_SUFFIXES = {".docx": "docx", ".odt": "odt", ".pptx": "pptx", ".epub": "epub", ".rtf": "rtf"}
MAIL_SUFFIXES = {".eml": "email", ".mbox": "mbox"}
NOTES_SUFFIXES = {".ipynb": "notebook", ".rst": "rst", ".csv": "csv", ".tsv": "tsv"}
FORMATS = {**TEXT_SUFFIXES, **HTML_SUFFIXES, **PDF_SUFFIXES, **OFFICE_SUFFIXES, **MAIL_SUFFIXES,
           **NOTES_SUFFIXES}

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
    # Where each slide, chapter or message starts (qa.results.Locator), in order.
    locators: tuple[Locator, ...] = field(default=())
    author: str = ""
    date: str = ""  # ISO 8601, as the file states it (its last change, or when it was sent)


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
    elif kind in CONVERTED:
        result = _converted(kind, data)
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


# What a skip message calls each converted format ("damaged Word document: ...").
CONVERTED = {"docx": "Word document", "odt": "OpenDocument text", "pptx": "PowerPoint file",
             "epub": "EPUB book", "rtf": "RTF document", "email": "e-mail", "mbox": "mailbox",
             "notebook": "notebook", "rst": "reStructuredText file", "csv": "CSV file",
             "tsv": "TSV file"}


def _converted(kind: str, data: bytes) -> Extracted:
    """A converted format, read by its library (imported here: most folders hold few kinds)."""
    import zipfile
    import zlib

    encoding = kind
    try:
        if kind in OFFICE_SUFFIXES.values():
            from qa.ingest.office import read_office

            converted = read_office(data, kind)
        elif kind in MAIL_SUFFIXES.values():
            from qa.ingest.mail import read_mail

            converted = read_mail(data, kind)
        else:
            from qa.ingest.notes import read_notes

            text, encoding = decode_text(data)
            converted = read_notes(text, kind)
    except SkipFile:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise SkipFile(f"damaged {CONVERTED[kind]} ({_reason(exc)})") from None
    except RecursionError:
        raise SkipFile(f"unreadable {CONVERTED[kind]} (nested too deeply)") from None
    except Exception as exc:  # the libraries raise many kinds of error on damaged or hostile files
        raise SkipFile(f"unreadable {CONVERTED[kind]} ({_reason(exc)})") from None
    return _extracted(converted, kind, encoding)


def _extracted(converted: Converted, kind: str, encoding: str) -> Extracted:
    return Extracted(converted.text, kind, encoding, blocks=converted.blocks, title=converted.title,
                     locators=converted.locators, author=converted.author, date=converted.date)


def _reason(exc: Exception) -> str:
    """An exception in a few words: its message when short, else its type."""
    message = " ".join(str(exc).split())
    if 0 < len(message) <= 60 and not message.startswith(("<", "[")):
        return message[0].lower() + message[1:]
    return type(exc).__name__


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
    from pypdf.errors import DependencyError

    logging.getLogger("pypdf").setLevel(logging.CRITICAL)  # its notes on odd files are not ours to print
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):  # restrictions only: no password
            raise SkipFile("encrypted PDF (password-protected)")
        pages = [unwrap_lines(normalise_newlines(page.extract_text() or "")) for page in reader.pages]
        if not any(_HAS_WORD.search(page) for page in pages):
            pages = _scanned_pages(reader, pages)
        title, author, date = _pdf_metadata(reader)
    except SkipFile:
        raise
    except DependencyError:  # AES without the cryptography package (a dependency of qa)
        raise SkipFile("encrypted PDF (AES needs the cryptography package)") from None
    except Exception as exc:  # pypdf raises many kinds of error on damaged or hostile files
        raise SkipFile(f"unreadable PDF ({type(exc).__name__})") from None
    starts, parts, offset = [], [], 0
    for page in pages:
        starts.append(offset)
        parts.append(page)
        offset += len(page) + 2
    return Extracted("\n\n".join(parts), "pdf", "pdf", tuple(starts), title=title, author=author,
                     date=date)


def _scanned_pages(reader, pages: list[str]) -> list[str]:
    """The pages of a PDF without a text layer, read by OCR when tesseract is installed; raises
    SkipFile saying so when it is not."""
    from qa.ingest import ocr

    if not any(len(page.images) for page in reader.pages):
        return pages  # no text and no picture of text: "no text found"
    if ocr.tesseract() is None:
        raise SkipFile(f"no text layer (a scanned PDF?); {ocr.INSTALL_HINT}")
    return [unwrap_lines(normalise_newlines(ocr.read_page(page))) for page in reader.pages]


def _pdf_metadata(reader) -> tuple[str, str, str]:
    """(title, author, ISO date) from the PDF's document information, where it has them."""
    try:
        info = reader.metadata
        if info is None:
            return "", "", ""
        when = info.modification_date or info.creation_date
        return (" ".join((info.title or "").split()), " ".join((info.author or "").split()),
                when.isoformat() if when else "")
    except Exception:  # a malformed date or info dictionary: the text is still good
        return "", "", ""


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
