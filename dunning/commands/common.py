"""Helpers shared by all CLI command modules."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from engine.errors import DunningError

console = Console()
err_console = Console(stderr=True)


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


def evaluation_table(ev: dict) -> Any:
    """Rich table of a model card's held-out evaluation (one row per model, at invoice date)."""
    from rich.table import Table

    t = Table(title=f"held-out future period from {ev['split_date']} "
                    f"({ev['test_invoices']} invoices, at invoice date)")
    for col in ("model", "log loss", "accuracy", "macro F1", "Brier", "ECE"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for name, m in ev["models"].items():
        r = m["at_invoice_date"]
        t.add_row(name, f"{r['log_loss']:.4f}", f"{r['accuracy']:.3f}", f"{r['macro_f1']:.3f}",
                  f"{r['brier']:.4f}", f"{r['ece']:.4f}")
    return t
