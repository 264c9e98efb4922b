"""Plain-JSON form of results (numpy scalars, NaN, paths and dates), the one converter for
every ``results.json`` / ``evaluation.json`` written by dunning."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np


def jsonable(x: Any) -> Any:
    """``x`` with dict keys as strings, tuples as lists, numpy numbers as Python numbers,
    NaN as ``None`` (JSON has no NaN) and paths / dates as strings; other values as is."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, float | np.floating):
        return None if math.isnan(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, Path | dt.date):
        return str(x)
    return x
