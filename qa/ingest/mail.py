"""E-mail as structured text, read by Python's own ``email`` and ``mailbox`` packages.

A message is a heading (its subject and sender: the title), a paragraph of its From, To, Cc and
Date lines, then its body: the plain-text part in paragraphs, or the HTML part laid out as a
page; attachments are left out. An .mbox file is one document with a locator per message
("message 3"), so a citation names the message it quotes.
"""

from __future__ import annotations

import email.policy
import os
import re
import tempfile
from email.parser import BytesParser

from qa.errors import SkipFile
from qa.ingest.html import Converted, TextBuilder, html_to_text

# mboxrd escapes a body line starting with "From " as ">From ": read back as written.
_ESCAPED_FROM = re.compile(r"(?m)^>(>*From )")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def read_mail(data: bytes, kind: str) -> Converted:
    laid = TextBuilder()
    if kind == "email":
        message = _parse(data)
        if not any(message.get(h) for h in ("From", "Subject", "Date")):
            raise SkipFile("not an e-mail (no From, Subject or Date header)")
        title, author, date = _add_message(laid, message)
        return laid.converted(title, author, date)
    newest = ""
    for number, raw in enumerate(_mbox_messages(data), 1):
        message = _parse(raw)
        title, _, date = _describe(message)
        laid.locate("message", number, title, date)
        _add_message(laid, message)
        newest = max(newest, date)
    if not laid.locators:
        raise SkipFile("not a mailbox (no line starts a message with 'From ')")
    return laid.converted("", "", newest)


def _parse(data: bytes):
    return BytesParser(policy=email.policy.default).parsebytes(data)


def _mbox_messages(data: bytes) -> list[bytes]:
    """The raw messages of an mbox file, split by the standard library's reader (which wants a
    file: a private temporary copy, removed at once)."""
    import mailbox

    with tempfile.TemporaryDirectory(prefix="qa-mbox-") as folder:
        path = os.path.join(folder, "box.mbox")
        with open(path, "wb") as handle:
            handle.write(data)
        box = mailbox.mbox(path, create=False)
        try:
            return [box.get_bytes(key) for key in box.iterkeys()]
        finally:
            box.close()


def _describe(message) -> tuple[str, str, str]:
    """(title: "subject — sender", sender's name, ISO date) of a message."""
    subject = _header(message, "Subject") or "(no subject)"
    sender = _sender(message)
    title = f"{subject} — {sender}" if sender else subject
    return title, sender, _date(message)


def _add_message(laid: TextBuilder, message) -> tuple[str, str, str]:
    title, sender, date = _describe(message)
    laid.add("heading", 1, title)
    lines = [f"{name}: {value}" for name in ("From", "To", "Cc", "Date")
             if (value := _header(message, name))]
    laid.add("paragraph", 0, "\n".join(lines))
    body = _body(message)
    if isinstance(body, Converted):
        laid.extend(body)
    else:
        for paragraph in _PARAGRAPH_BREAK.split(body):
            laid.add("paragraph", 0, paragraph.strip("\n").rstrip())
    return title, sender, date


def _header(message, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:  # a malformed header the parser gives up on
        return ""
    return " ".join(str(value).split()) if value is not None else ""


def _sender(message) -> str:
    try:
        addresses = message["From"].addresses
    except Exception:  # no From, or one the parser cannot read as addresses
        return _header(message, "From")
    if not addresses:
        return _header(message, "From")
    return addresses[0].display_name or addresses[0].addr_spec


def _date(message) -> str:
    try:
        when = message["Date"].datetime
    except Exception:  # no Date, or not a date
        return ""
    return when.isoformat() if when else ""


def _body(message) -> str | Converted:
    """The message's text: its plain-text part, else its HTML part converted (or "")."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, AssertionError):  # an unknown or lying charset
        content = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    if not isinstance(content, str):
        return ""
    content = content.replace("\r\n", "\n").replace("\r", "\n")
    if part.get_content_subtype() == "html":
        return html_to_text(content) or ""
    return _ESCAPED_FROM.sub(r"\1", content)
