"""Helpers shared by all CLI command modules."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from engine.errors import DunningError

console = Console()
err_console = Console(stderr=True)

DEFAULT_DATA_DIR = Path("dunning-data")
DEFAULT_DB = DEFAULT_DATA_DIR / "dunning.duckdb"

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Print a :class:`DunningError` as one red message and exit 2, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DunningError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]
