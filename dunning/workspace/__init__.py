"""The collections workspace in the browser, served by ``dunning serve`` beside the JSON API.

Server-rendered pages (FastAPI + Jinja2, autoescaped; htmx shipped in ``static/``, no CDN)
over the API's store, tokens and roles: worklist, customer view, review queue, rules browser
with an explain form. Pages live under ``/ui`` (see :mod:`dunning.workspace.routes`);
sessions and CSRF in :mod:`dunning.workspace.session`.

    app = FastAPI(); app.state.ops = ApiState(config)
    mount_workspace(app, app.state.ops, rules_lock)      # what dunning.api.create_app does

This package never imports ``dunning.api`` (the API imports it): what it needs from the
API comes in as the ``state`` object and the lock.
"""

from __future__ import annotations

import os
from typing import Any

from engine.errors import InputError

THRESHOLD_ENV = "DUNNING_RISK_THRESHOLD"
DEFAULT_THRESHOLD = 0.5


def risk_threshold(env: dict[str, str] | None = None) -> float:
    """P(on time) under which the worklist shows a red circle: ``$DUNNING_RISK_THRESHOLD``
    (a number in (0, 1)) or 0.5."""
    env = os.environ if env is None else env
    raw = env.get(THRESHOLD_ENV, "")
    if not raw:
        return DEFAULT_THRESHOLD
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise InputError(f"${THRESHOLD_ENV}: {raw!r}; expected a probability between 0 and 1, "
                         "e.g. 0.5")
    return value


def mount_workspace(app: Any, state: Any, rules_lock: Any,
                    secret: bytes | None = None, threshold: float | None = None) -> Any:
    """Add the workspace's routes to the FastAPI ``app``; returns the ``Workspace``.

    ``state``: the API's ``ApiState``; ``rules_lock``: its ``RulesLock`` (durable_rules);
    ``secret``: session signing key (default :func:`session.session_secret`: environment,
    file or random per start); ``threshold``: default :func:`risk_threshold`.
    """
    from dunning.workspace.routes import Workspace, make_router
    from dunning.workspace.session import session_secret

    ws = Workspace(state, rules_lock, secret if secret is not None else session_secret(),
                   threshold if threshold is not None else risk_threshold())
    app.include_router(make_router(ws))
    app.state.workspace = ws  # (tests size its what-if: ``ws.whatif.invoices``)
    return ws
