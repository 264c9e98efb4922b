"""Row operations on dataclasses whose fields are numpy arrays of the same length.

The batched environment keeps invoices, hidden world state and bookkeeping as such
"structs of arrays"; these helpers take and overwrite rows of all fields at once so the
auto-reset of finished invoices needs no per-field code. Fields that are not arrays with a
leading row axis (scalars, ``None``, nested objects without rows) are shared, not indexed.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def _row_fields(obj: Any, n: int) -> list[str]:
    out = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == n:
            out.append(f.name)
        elif _is_struct(value) and _safe_rows(value) == n:
            out.append(f.name)
    return out


def _is_struct(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _safe_rows(value: Any) -> int | None:
    try:
        return n_rows(value)
    except ValueError:
        return None


def n_rows(obj: Any) -> int:
    """Length of the first array field (the number of rows)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, np.ndarray) and value.ndim >= 1:
            return int(value.shape[0])
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if _is_struct(value):
            rows = _safe_rows(value)
            if rows is not None:
                return rows
    raise ValueError(f"{type(obj).__name__} has no array field")


def take_rows(obj: T, idx: np.ndarray) -> T:
    """A copy of ``obj`` holding only rows ``idx`` (int indices or bool mask) of every field."""
    n = n_rows(obj)
    changes = {}
    for name in _row_fields(obj, n):
        value = getattr(obj, name)
        changes[name] = take_rows(value, idx) if dataclasses.is_dataclass(value) else value[idx]
    return dataclasses.replace(obj, **changes)  # type: ignore[type-var]


def put_rows(dst: Any, rows: np.ndarray, src: Any) -> None:
    """Overwrite rows ``rows`` of every field of ``dst`` in place with the rows of ``src``."""
    n = n_rows(dst)
    for name in _row_fields(dst, n):
        value = getattr(dst, name)
        if dataclasses.is_dataclass(value):
            put_rows(value, rows, getattr(src, name))
        else:
            value[rows] = getattr(src, name)


def where_rows(keep_old: np.ndarray, old: T, new: T) -> T:
    """Field-wise ``np.where(keep_old, old, new)`` (freezes finished rows)."""
    n = n_rows(old)
    changes = {}
    for name in _row_fields(old, n):
        o, w = getattr(old, name), getattr(new, name)
        if dataclasses.is_dataclass(o):
            changes[name] = where_rows(keep_old, o, w)
        else:
            cond = keep_old.reshape((-1,) + (1,) * (o.ndim - 1))
            changes[name] = np.where(cond, o, w)
    return dataclasses.replace(new, **changes)  # type: ignore[type-var]


def concat_rows(parts: list[T]) -> T:
    """Rows of several structs of arrays one after the other."""
    first = parts[0]
    n = n_rows(first)
    changes = {}
    for name in _row_fields(first, n):
        values = [getattr(p, name) for p in parts]
        if dataclasses.is_dataclass(values[0]):
            changes[name] = concat_rows(values)
        else:
            changes[name] = np.concatenate(values)
    return dataclasses.replace(first, **changes)  # type: ignore[type-var]
