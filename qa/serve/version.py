"""qa's version, for the servers to report (qa/__init__.py sits above the stages)."""

from __future__ import annotations


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("qa")
    except PackageNotFoundError:  # run from a source tree
        return "0+unknown"
