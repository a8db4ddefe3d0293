"""A conversation, with its citations, as Markdown. Pure (no Textual)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from qa.results import Turn
from qa.tui.render import snippet, source_label


def default_export_dir() -> Path:
    """Where an export goes unless the user says otherwise: ~/Documents when there is one, else
    qa's folder in the user's data dir; never the current folder, which in the README's flow is
    the repository."""
    from qa.config import user_data_dir

    documents = Path.home() / "Documents"
    return documents if documents.is_dir() else user_data_dir() / "exports"


def export_target(typed: str, folder: Path, stamp: str) -> Path:
    """The file an export goes to when the user typed ``typed``: a name alone goes in ``folder``;
    a folder (one that exists, or any path ending in "/") gets the file inside it, under the usual
    name (``stamp`` is the time in it)."""
    target = folder / Path(typed).expanduser()
    if target.is_dir() or typed.endswith(("/", os.sep)):
        target = target / f"qa-conversation-{stamp}.md"
    return target


def write_export(target: Path, markdown: str) -> None:
    """Write ``markdown`` to a new file ``target``, making its folder first when it is missing;
    an existing file is never written over (FileExistsError)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("x", encoding="utf-8") as handle:
        handle.write(markdown)


def conversation_markdown(turns: Sequence[Turn], corpus: str, when: str, now=None,
                          new_conversation_at: Sequence[int] = ()) -> str:
    """Each question, its answer with ``[n]`` markers and the cited text with file and span.
    A line marks where a new conversation began (before the turns numbered
    ``new_conversation_at``, counted from 1).

    ``now(citation)`` gives the citation as it stands in the index today (Engine.current_citation):
    a citation whose document was edited and re-indexed since the answer gets a note saying where
    its text is now, or that it is gone, so no exported span points at other text unsaid."""
    lines = ["# qa conversation", "", f"Documents: `{corpus}`  ", f"Exported: {when}", ""]
    for number, turn in enumerate(turns, 1):
        answer = turn.answer
        if number in new_conversation_at:
            lines += ["---", "", "*New conversation: the questions below do not follow up those above.*", ""]
        lines += [f"## {number}. {_one_line(turn.question)}", ""]
        if turn.scope:
            lines += [f"*Answered from {_one_line(turn.scope)} only.*", ""]
        lines += [answer.text if answer.found else f"*{answer.text}*", ""]
        for c in answer.citations:
            lines.append(f"[{c.n}] `{source_label(c.source, c.line, c.page)}`, "
                         f"characters {c.start}–{c.end}:")
            lines.append("")
            lines += ["> " + line if line.strip() else ">" for line in c.text.splitlines()]
            lines.append("")
            note = _changed_since(c, now) if now is not None else None
            if note:
                lines += [note, ""]
        if not answer.found and answer.passages:
            lines.append("Closest passages:")
            lines.append("")
            for p in answer.passages[:3]:
                line, lead = p.lead()
                lines.append(f"- `{source_label(p.source, line, p.page)}`: {snippet(lead)}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _changed_since(citation, now) -> str | None:
    from qa.errors import QAError

    try:
        current = now(citation)
    except QAError:  # the document is no longer in the index
        return "*The document is no longer indexed.*"
    if current is None:
        return "*The document changed since this answer and no longer holds this text.*"
    if (current.start, current.end) != (citation.start, citation.end):
        return (f"*The document changed since this answer; this text is now at line "
                f"{current.line}, characters {current.start}–{current.end}.*")
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())
