"""The ``dunning`` command line: a thin layer that wires the packages together.

Each area keeps its commands in ``dunning/commands/<area>.py`` with a ``register(app)``
function; heavy imports happen inside the command bodies so ``dunning --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="dunning",
    help="Decision engine for accounts-receivable collections.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Order is the order in `dunning --help`.
COMMAND_MODULES: tuple[str, ...] = (
    "dunning.commands.world",
    "dunning.commands.data",
    "dunning.commands.model",
    "dunning.commands.rules",
    "dunning.commands.sim",
    "dunning.commands.dataset",
    "dunning.commands.experiment",
    "dunning.commands.policy",
    "dunning.commands.ops",
    "dunning.commands.events",
    "dunning.commands.business",
)



@app.callback()
def _root(ctx: typer.Context) -> None:
    """Decision engine for accounts-receivable collections."""
    from dunning.commands.common import StoreWaitStatus
    from engine.store import configure_lock

    # Another process holding the store (`dunning serve`, a nightly job): wait for it with a
    # status line naming it, instead of failing on DuckDB's lock (engine.store.StoreLock).
    configure_lock(label=f"dunning {ctx.invoked_subcommand or ''}".strip(),
                   on_wait=StoreWaitStatus())


@app.command()
def version() -> None:
    """Print the installed dunning version."""
    from engine import __version__

    typer.echo(__version__)


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()
