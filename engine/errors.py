"""User-facing errors: raised for a user's mistake, printed without a stack trace."""

from __future__ import annotations


class DunningError(Exception):
    """A problem the user can fix (bad input file, missing model, wrong option).

    The message must say where (file, row or line, field), what was found and what was
    expected. ``dunning.commands.common.run_user_errors`` turns it into a clean exit code 2.
    """


class InputError(DunningError):
    """Malformed input data or configuration."""
