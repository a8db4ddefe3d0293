"""Office documents and books as structured text: Word (.docx, by mammoth), OpenDocument text
(.odt, by odfpy), PowerPoint (.pptx, by python-pptx), EPUB (.epub, by EbookLib) and RTF (.rtf, by
striprtf).

Word, OpenDocument and EPUB become HTML, which qa.ingest.html lays out like any page: headings,
paragraphs, list items, table rows. Slides and chapters are marked as locators. Each library is
imported when a file of its kind is read.
"""

from __future__ import annotations

import io
import re
import zipfile

from qa.errors import SkipFile
from qa.ingest.boilerplate import is_short
from qa.ingest.html import Converted, TextBuilder, html_to_text

# Office files are zip archives; one that would unpack to more than this is not read (a few
# kilobytes of zip can expand to gigabytes).
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
# An encrypted Office file is an OLE compound file holding an "EncryptionInfo" stream.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED = "encrypted (password-protected); save it without a password to index it"


def read_office(data: bytes, kind: str) -> Converted:
    return {"docx": _read_docx, "odt": _read_odt, "pptx": _read_pptx, "epub": _read_epub,
            "rtf": _read_rtf}[kind](data)


def _archive(data: bytes, kind: str) -> zipfile.ZipFile:
    """The file as a zip archive; SkipFile for an encrypted, older-format or damaged file."""
    if data.startswith(_OLE_MAGIC):
        if "EncryptionInfo".encode("utf-16-le") in data:
            raise SkipFile(_ENCRYPTED)
        raise SkipFile(f"not a .{kind} file (an older Office format? save it as .{kind})")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise SkipFile(f"damaged .{kind} file (not a readable zip archive)") from None
    if sum(info.file_size for info in archive.infolist()) > MAX_UNPACKED_BYTES:
        raise SkipFile(f"unpacks to more than {MAX_UNPACKED_BYTES >> 20} MB")
    main = _MAIN_PART[kind]
    if main not in archive.namelist():
        raise SkipFile(f"not a .{kind} file (a zip archive without {main})")
    return archive


# The part every file of the kind holds.
_MAIN_PART = {"docx": "word/document.xml", "pptx": "ppt/presentation.xml", "odt": "content.xml",
              "epub": "META-INF/container.xml"}


def _xml_field(archive: zipfile.ZipFile, member: str, *paths: str) -> str:
    """The text of the first of ``paths`` (ElementTree paths with namespaces) found in the XML
    file ``member`` of the archive: a title, an author or a date of its metadata."""
    from lxml import etree

    try:
        root = etree.fromstring(archive.read(member), etree.XMLParser(resolve_entities=False,
                                                                      no_network=True))
    except (KeyError, etree.XMLSyntaxError):
        return ""
    for path in paths:
        found = root.find(path, _NAMESPACES)
        if found is not None and (found.text or "").strip():
            return " ".join(found.text.split())
    return ""


_NAMESPACES = {
    "cp": "http://schemas.openxmlformats.org/package/2006/metadata/core-properties",
    "dc": "http://purl.org/dc/elements/1.1/",
    "dcterms": "http://purl.org/dc/terms/",
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "meta": "urn:oasis:names:tc:opendocument:xmlns:meta:1.0",
}


def _ooxml_metadata(archive: zipfile.ZipFile) -> tuple[str, str, str]:
    """(title, author, date) from the core properties Word and PowerPoint files carry."""
    core = "docProps/core.xml"
    return (_xml_field(archive, core, "dc:title"), _xml_field(archive, core, "dc:creator"),
            _xml_field(archive, core, "dcterms:modified", "dcterms:created"))


# -- Word ------------------------------------------------------------------------------------------

# Word's title and subtitle styles are headings too (mammoth maps the numbered headings itself).
_DOCX_STYLES = """p[style-name='Title'] => h1:fresh
p[style-name='Subtitle'] => h2:fresh"""


def _read_docx(data: bytes) -> Converted:
    import mammoth

    archive = _archive(data, "docx")
    title, author, date = _ooxml_metadata(archive)
    # Images are left out (no base64 copies of every picture in the HTML).
    no_images = mammoth.images.img_element(lambda image: {"alt": image.alt_text or ""})
    result = mammoth.convert_to_html(io.BytesIO(data), style_map=_DOCX_STYLES,
                                     convert_image=no_images)
    return _from_html(result.value, title, author, date)


def _from_html(markup: str, title: str, author: str, date: str) -> Converted:
    converted = html_to_text(f"<html><body>{markup}</body></html>")
    laid = TextBuilder()
    if converted is not None:
        laid.extend(converted)
    return laid.converted(title or None, author, date)


# -- OpenDocument ----------------------------------------------------------------------------------


def _read_odt(data: bytes) -> Converted:
    from odf.odf2xhtml import ODF2XHTML

    archive = _archive(data, "odt")
    try:
        manifest = archive.read("META-INF/manifest.xml")
    except KeyError:
        manifest = b""
    if b"encryption-data" in manifest:
        raise SkipFile(_ENCRYPTED)
    meta = "meta.xml"
    title = _xml_field(archive, meta, "office:meta/dc:title")
    author = _xml_field(archive, meta, "office:meta/dc:creator", "office:meta/meta:initial-creator")
    date = _xml_field(archive, meta, "office:meta/dc:date", "office:meta/meta:creation-date")
    converter = ODF2XHTML(generate_css=False, embedable=True)
    converter.load(io.BytesIO(data))
    return _from_html(converter.xhtml(), title, author, date)


# -- PowerPoint ------------------------------------------------------------------------------------


def _read_pptx(data: bytes) -> Converted:
    from pptx import Presentation

    archive = _archive(data, "pptx")
    title, author, date = _ooxml_metadata(archive)
    laid = TextBuilder()
    for number, slide in enumerate(Presentation(io.BytesIO(data)).slides, 1):
        heading_shape = slide.shapes.title
        heading = " ".join(heading_shape.text_frame.text.split()) if heading_shape is not None \
            and heading_shape.has_text_frame else ""
        laid.locate("slide", number, heading)
        laid.add("heading", 1, f"Slide {number}: {heading}" if heading else f"Slide {number}")
        for shape in _in_reading_order(slide.shapes):
            if heading_shape is None or shape.shape_id != heading_shape.shape_id:
                _add_shape(laid, shape)
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.paragraphs
            if any(p.text.strip() for p in notes):
                laid.add("heading", 2, "Notes")
                for paragraph in notes:
                    laid.add("paragraph", 0, _line(paragraph.text))
    return laid.converted(title or (laid.locators[0].label if laid.locators else ""), author, date)


def _in_reading_order(shapes) -> list:
    """Top to bottom, then left to right (the order shapes were added is often another)."""
    return sorted(shapes, key=lambda s: ((s.top or 0) // 100_000, s.left or 0))


def _add_shape(laid: TextBuilder, shape) -> None:
    from pptx.enum.shapes import PP_PLACEHOLDER
    from pptx.shapes.group import GroupShape

    if isinstance(shape, GroupShape):
        for inner in _in_reading_order(shape.shapes):
            _add_shape(laid, inner)
        return
    if getattr(shape, "has_table", False) and shape.has_table:
        for row in shape.table.rows:
            laid.add("row", 0, " | ".join(_line(cell.text) for cell in row.cells))
        return
    if not shape.has_text_frame:
        return
    # The body of a content layout is a bulleted list; a text box holds paragraphs.
    bulleted = shape.is_placeholder and \
        shape.placeholder_format.type in (PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT)
    for paragraph in shape.text_frame.paragraphs:
        text = _line(paragraph.text)
        if bulleted or paragraph.level:
            laid.add("item", paragraph.level + 1, "  " * paragraph.level + "- " + text if text else "")
        else:
            laid.add("paragraph", 0, text)


def _line(text: str) -> str:
    """A paragraph of a slide on one line (a soft line break is a space)."""
    return " ".join(text.replace("\v", " ").split())


# -- EPUB ------------------------------------------------------------------------------------------


def _read_epub(data: bytes) -> Converted:
    import warnings

    import ebooklib
    from ebooklib import epub

    _archive(data, "epub")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EbookLib's notes on its own future options
        book = epub.read_epub(io.BytesIO(data), options={"ignore_ncx": True})
    chapters = _toc_titles(book.toc)
    laid = TextBuilder()
    number = 0
    for idref, _ in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT \
                or isinstance(item, epub.EpubNav):
            continue
        converted = html_to_text(item.get_content().decode("utf-8", "replace"))
        if converted is None or not converted.text.strip():
            continue
        # A chapter is a file the table of contents lists (or every file, without one): a cover
        # or a title page is no chapter, and the parts a long chapter is split into continue it.
        name = item.get_name()
        if name in chapters or not chapters:
            number += 1
            laid.locate("chapter", number, chapters.get(name) or converted.title)
        laid.extend(converted)
    return laid.converted(_dc(book, "title") or None, _dc(book, "creator"), _dc(book, "date"))


def _toc_titles(toc) -> dict[str, str]:
    """{file name: its title in the table of contents}, the first entry of each file."""
    titles: dict[str, str] = {}

    def walk(entries) -> None:
        for entry in entries:
            if isinstance(entry, tuple):  # (section, its entries)
                walk([entry[0]])
                walk(entry[1])
                continue
            href = (getattr(entry, "href", "") or "").split("#")[0]
            if href and href not in titles:
                titles[href] = " ".join((getattr(entry, "title", "") or "").split())

    walk(toc)
    return titles


def _dc(book, name: str) -> str:
    values = book.get_metadata("DC", name)
    return " ".join(str(values[0][0]).split()) if values and values[0][0] else ""


# -- RTF -------------------------------------------------------------------------------------------

_BULLET = re.compile(r"^[•·\-\u2013*]\t+")


def _read_rtf(data: bytes) -> Converted:
    """striprtf gives one line per paragraph: a bullet starts a list item, cells end with "|"; RTF
    keeps its outline in styles striprtf does not read, so a short line of its own before a
    paragraph is taken for a heading, as in plain text."""
    from striprtf.striprtf import rtf_to_text

    if not data.lstrip().startswith(b"{\\rtf"):
        raise SkipFile("damaged RTF document (no {\\rtf header)")
    text = rtf_to_text(data.decode("latin-1"), errors="replace")
    lines = [line.strip() for line in text.replace("\r", "\n").split("\n")]
    lines = [line for line in lines if line]
    laid = TextBuilder()
    for i, line in enumerate(lines):
        if _BULLET.match(line):
            laid.add("item", 1, "- " + _BULLET.sub("", line))
        elif line.endswith("|") and line.count("|") >= 2:
            laid.add("row", 0, " | ".join(cell.strip() for cell in line[:-1].split("|")))
        elif is_short(line) and i + 1 < len(lines) and (not is_short(lines[i + 1])
                                                         or lines[i + 1].endswith("|")
                                                         or _BULLET.match(lines[i + 1])):
            laid.add("heading", 1 if not laid.blocks else 2, line)
        else:
            laid.add("paragraph", 0, line)
    return laid.converted()
