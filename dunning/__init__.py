"""dunning: the application layer - CLI, pipeline, REST API, report, operations, business.

Everything here may import every layer below it (``engine`` <- ``legal_rules`` <-
``simulations`` <- ``policies``); nothing below imports ``dunning`` (docs/architecture.md).
"""

from engine import __version__

__all__ = ["__version__"]
