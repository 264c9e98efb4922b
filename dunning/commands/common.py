"""Helpers shared by all CLI command modules."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from engine.errors import DunningError, InputError

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


class StoreWaitStatus:
    """``engine.store.LockSettings.on_wait`` of the CLI: while another process holds the
    store, a status line on stderr naming it (one plain line when stderr is not a terminal,
    e.g. in a cron log), and how long this command waited once it has the store."""

    def __init__(self) -> None:
        self._status: Any = None
        self._shown = False

    def __call__(self, holder: str, waited_s: float) -> None:
        from engine.store import LOCK, LOCK_WAIT_ENV

        if waited_s < 0:  # the wait is over (got the store, or gave up)
            if self._status is not None:
                self._status.stop()
                self._status = None
            self._shown = False
            return
        text = (f"waiting for the store: held by {holder} ({waited_s:.0f} s of at most "
                f"{LOCK.wait_seconds():.0f} s, ${LOCK_WAIT_ENV})")
        if self._status is not None:
            self._status.update(text)
        elif not self._shown:
            self._shown = True
            if err_console.is_terminal:
                self._status = err_console.status(text)
                self._status.start()
            else:
                err_console.print(text, highlight=False, markup=False, soft_wrap=True)


def decision_date(value: str | None, option: str) -> dt.date:
    """A date option (default today UTC), inside the accepted range (dunning.ops.dates)."""
    from dunning.ops.dates import check_as_of

    if value is None:
        return dt.datetime.now(dt.UTC).date()
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option} {value!r}: expected a date YYYY-MM-DD") from None
    return check_as_of(day, option)


def open_store(db: Path):  # noqa: ANN201 - engine.store.Store, imported lazily
    """The store at ``db``; a missing file is a user error naming the option."""
    from engine.store import Store

    if not Path(db).exists():
        raise InputError(f"--db {db}: no store file; create it with `dunning ingest`")
    return Store(db)


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
