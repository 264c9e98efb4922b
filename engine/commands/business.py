"""CLI commands of the business area (see engine/cli.py)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the ``dunning`` app."""
