"""Notebooks, reStructuredText and tables as structured text.

- Jupyter notebooks (.ipynb, JSON read by Python's ``json``): markdown cells keep their blocks
  (qa.ingest.markdown), code cells are code; outputs are left out.
- reStructuredText (.rst) is rendered to HTML by docutils, then laid out like a page.
- CSV and TSV (Python's ``csv``): each row is a line that names its columns
  ("Port: Lindvik | Country: Norway"), so a row read alone still says what its values are.
"""

from __future__ import annotations

import csv
import io
import json

from qa.errors import SkipFile
from qa.ingest.html import Converted, TextBuilder, html_to_text
from qa.ingest.markdown import heading_name, markdown_blocks

# A table wider than this is cut: a row must stay readable as one line.
MAX_COLUMNS = 50


def read_notes(text: str, kind: str) -> Converted:
    return {"notebook": _read_notebook, "rst": _read_rst, "csv": _read_table,
            "tsv": _read_table}[kind](text, kind)


# -- notebooks -------------------------------------------------------------------------------------


def _read_notebook(text: str, kind: str) -> Converted:
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SkipFile(f"damaged notebook (not JSON: {exc.msg}, line {exc.lineno})") from None
    if not isinstance(notebook, dict):
        raise SkipFile("not a Jupyter notebook (no cells)")
    cells = notebook.get("cells")
    if cells is None:  # notebook format 3 kept its cells in worksheets
        cells = [c for sheet in notebook.get("worksheets") or [] if isinstance(sheet, dict)
                 for c in sheet.get("cells") or []]
    if not isinstance(cells, list):
        raise SkipFile("not a Jupyter notebook (no cells)")
    laid = TextBuilder()
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", cell.get("input", ""))
        source = "".join(source) if isinstance(source, list) else str(source or "")
        source = source.replace("\r\n", "\n").replace("\r", "\n")
        if cell.get("cell_type") == "code":
            laid.add("code", 0, "\n".join(line.rstrip() for line in source.strip("\n").split("\n")))
        elif cell.get("cell_type") in ("markdown", "raw", "heading"):
            if cell.get("cell_type") == "heading":  # format 3: a heading cell and its level
                source = "#" * int(cell.get("level") or 1) + " " + source
            for block in markdown_blocks(source):
                text = source[block.start:block.end]
                laid.add(block.kind, block.level,
                         heading_name(text) if block.kind == "heading" else text)
    metadata = notebook.get("metadata") if isinstance(notebook.get("metadata"), dict) else {}
    authors = metadata.get("authors") if isinstance(metadata.get("authors"), list) else []
    author = ", ".join(str(a.get("name", "")) for a in authors if isinstance(a, dict))
    title = metadata.get("title") if isinstance(metadata.get("title"), str) else None
    return laid.converted(title or None, author)


# -- reStructuredText ------------------------------------------------------------------------------

# Never read files or run anything a document asks for, and never stop on its errors.
_DOCUTILS_SETTINGS = {"report_level": 5, "halt_level": 5, "file_insertion_enabled": False,
                      "raw_enabled": False, "input_encoding": "unicode", "output_encoding": "unicode",
                      "doctitle_xform": False, "initial_header_level": 1, "embed_stylesheet": False, "warning_stream": False}


def _read_rst(text: str, kind: str) -> Converted:
    from docutils.core import publish_parts
    from docutils.writers.html5_polyglot import Writer

    parts = publish_parts(text, writer=Writer(), settings_overrides=_DOCUTILS_SETTINGS)
    converted = html_to_text(f"<html><body>{parts['body']}</body></html>")
    laid = TextBuilder()
    if converted is not None:
        laid.extend(converted)
    return laid.converted()


# -- tables ----------------------------------------------------------------------------------------


def _read_table(text: str, kind: str) -> Converted:
    dialect = csv.excel_tab if kind == "tsv" else _dialect(text)
    try:
        rows = [row[:MAX_COLUMNS] for row in csv.reader(io.StringIO(text, newline=""), dialect)]
    except csv.Error as exc:
        raise SkipFile(f"damaged {kind.upper()} file ({exc})") from None
    rows = [[" ".join(cell.split()) for cell in row] for row in rows if any(c.strip() for c in row)]
    if not rows:
        raise SkipFile("no text found")
    header, body = rows[0], rows[1:]
    laid = TextBuilder()
    laid.add("row", 0, " | ".join(header))
    for row in body:
        named = [f"{name}: {value}" if name else value
                 for name, value in zip(header + [""] * len(row), row) if value]
        laid.add("row", 0, " | ".join(named))
    return laid.converted("")


def _dialect(text: str):
    """A CSV file's delimiter (a comma, or a semicolon as spreadsheets write it in many
    countries), guessed from its first lines by csv.Sniffer."""
    try:
        return csv.Sniffer().sniff("\n".join(text.splitlines()[:20]), delimiters=",;\t|")
    except csv.Error:
        return csv.excel
