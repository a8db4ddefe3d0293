"""ctrl+s writes the export where it is asked to, making a missing folder first."""

from __future__ import annotations

import pytest

from qa.tui.app import create_app
from qa.tui.screens.dialogs import ExportDialog
from test_tui import (SIZE, anyio_backend, ask, fake_engine, record_notifications,  # noqa: F401
                      settle, until)

pytestmark = pytest.mark.anyio


async def export(pilot, typed: str) -> None:
    await pilot.press("ctrl+s")
    await until(pilot, lambda: isinstance(pilot.app.screen, ExportDialog))
    pilot.app.screen.query_one("#export-path").value = typed
    await pilot.press("enter")
    await until(pilot, lambda: not isinstance(pilot.app.screen, ExportDialog))


async def test_export_makes_a_missing_folder(fake_engine, tmp_path):
    exports = tmp_path / "not yet" / "exports"  # the export folder itself is missing too
    app = create_app(fake_engine, export_dir=exports, watch=False)
    seen = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "What did Grushko demand?")
        nested = tmp_path / "reports" / "2026" / "chat.md"
        await export(pilot, str(nested))
        await until(pilot, nested.exists)
        assert "## 1. What did Grushko demand?" in nested.read_text(encoding="utf-8")
        # A path ending in "/" is a folder, made, with the file inside under the usual name.
        await export(pilot, str(tmp_path / "talks") + "/")
        await until(pilot, lambda: list((tmp_path / "talks").glob("qa-conversation-*.md")))
        # A name alone goes in the (missing) export folder.
        await export(pilot, "minutes.md")
        await until(pilot, (exports / "minutes.md").exists)
        assert not any("Could not write" in note for note in seen)
