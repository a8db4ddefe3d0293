"""A conversation, with its citations, as Markdown. Pure (no Textual)."""

from __future__ import annotations

from collections.abc import Sequence

from qa.results import Turn
from qa.tui.render import snippet, source_label


def conversation_markdown(turns: Sequence[Turn], corpus: str, when: str) -> str:
    """Each question, its answer with ``[n]`` markers and the cited text with file and span."""
    lines = ["# qa conversation", "", f"Documents: `{corpus}`  ", f"Exported: {when}", ""]
    for number, turn in enumerate(turns, 1):
        answer = turn.answer
        lines += [f"## {number}. {_one_line(turn.question)}", ""]
        lines += [answer.text if answer.found else f"*{answer.text}*", ""]
        for c in answer.citations:
            lines.append(f"[{c.n}] `{source_label(c.source, c.line, c.page)}`, "
                         f"characters {c.start}–{c.end}:")
            lines.append("")
            lines += ["> " + line if line.strip() else ">" for line in c.text.splitlines()]
            lines.append("")
        if not answer.found and answer.passages:
            lines.append("Closest passages:")
            lines.append("")
            for p in answer.passages[:3]:
                line, lead = p.lead()
                lines.append(f"- `{source_label(p.source, line, p.page)}`: {snippet(lead)}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())
