"""The engine imports no Textual, and `qa --help` and the app's first frame load no torch."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "sentence_transformers", "transformers", "faiss")


def imported_after(code: str) -> set[str]:
    """The top-level modules loaded in a fresh interpreter after running ``code``."""
    probe = code + "\nimport sys\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_the_engine_and_the_cli_import_no_textual():
    modules = imported_after("import qa.engine, qa.cli, qa.answer.ask")
    assert "textual" not in modules


def test_help_imports_no_torch():
    modules = imported_after(
        "from qa.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    assert not modules & set(HEAVY), modules & set(HEAVY)


def test_the_app_module_imports_no_model():
    # The first frame is drawn before the model is loaded, so building the app must not load it.
    modules = imported_after(
        "from qa.engine import Engine\nfrom qa.tui.app import create_app\n"
        "create_app(Engine.open('seeds', 'embeddings'))")
    assert "textual" in modules
    assert not modules & set(HEAVY), modules & set(HEAVY)
