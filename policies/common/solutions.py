"""Solved invoices kept between evaluation batches, their action tables compressed.

The oracle and the planner solve each invoice exactly (``policies.common.dp``); an
evaluation draws its invoices per seed from one held-out pool, so most invoices come back
in a later seed (5 seeds x 600 of the default company's 4,153: about 2,250 distinct in
3,000 draws). A solution depends only on the invoice's inputs, so it is solved once and
kept here by those inputs. An action table is (H, S) int8, mostly WAIT: zlib at level 1
keeps the oracle's 0.65 MB in about 12 KB (about 2 ms to compress and to restore, against
about 40 ms to solve), so thousands of invoices fit in memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Collection, Hashable, Sequence
from typing import Any

import numpy as np

_PLAIN = (int, float, str, bytes, tuple, np.datetime64, type(None))


class SolutionCache:
    """``key -> (value, action table)`` of solved invoices, at most ``max_items`` of them.

    Args:
        max_items: solutions kept; beyond it the oldest are dropped first (not those a
            caller still needs, see :meth:`evict`); 0 keeps only those.

    A table comes back bit for bit as it was put (shape and dtype kept with it). A
    solution holds only in the context it was solved in (the rules, the world, the
    horizon): :meth:`use_context` drops everything kept when that changes.
    """

    def __init__(self, max_items: int = 20_000) -> None:
        if max_items < 0:
            raise ValueError(f"max_items must be 0 or more, got {max_items}")
        self.max_items = int(max_items)
        self._items: dict[Hashable, tuple[float, bytes, tuple[int, ...], str]] = {}
        self._context: tuple[Any, ...] = ()

    def use_context(self, context: tuple[Any, ...]) -> None:
        """Solve and look up under ``context`` from now on: objects (scenario, calendar,
        legal mask) compared by identity, plain values (a ruleset hash, a date, a horizon)
        by equality; when it differs from the last one, nothing kept is used again."""
        same = len(context) == len(self._context) and all(
            x is y or (isinstance(x, _PLAIN) and type(x) is type(y) and bool(x == y))
            for x, y in zip(context, self._context, strict=True))
        if not same:
            self._items.clear()
            self._context = context

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def put(self, key: Hashable, value: float, table: np.ndarray) -> None:
        """Keep ``value`` (the solution's value, a float) and ``table`` under ``key``."""
        table = np.ascontiguousarray(table)
        self._items[key] = (float(value), zlib.compress(table.tobytes(), 1), table.shape,
                            table.dtype.str)

    def value(self, key: Hashable) -> float:
        """The value kept under ``key`` (KeyError when it is not kept)."""
        return self._items[key][0]

    def table(self, key: Hashable) -> np.ndarray:
        """A fresh copy of the table kept under ``key`` (KeyError when it is not kept)."""
        _, packed, shape, dtype = self._items[key]
        return np.frombuffer(zlib.decompress(packed), dtype=dtype).reshape(shape).copy()

    def solutions(self, keys: Sequence[Hashable], table_shape: tuple[int, ...],
                  solve: Callable[[np.ndarray], tuple[np.ndarray, Sequence[np.ndarray]]]
                  ) -> tuple[np.ndarray, np.ndarray]:
        """``(values (n,), int8 tables (n, *table_shape))`` of the invoices ``keys`` (n,):
        the kept ones restored, the others solved by ``solve(rows)`` (``rows``: the first
        row of each distinct key not kept, (m,)) -> ``(values (m,), m tables)`` and
        kept. Afterwards the oldest beyond ``max_items`` are dropped, never these."""
        first: dict[Hashable, int] = {}
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        todo = np.asarray([i for key, i in first.items() if key not in self._items],
                          dtype=np.int64)
        fresh: dict[Hashable, np.ndarray] = {}
        if len(todo):
            values, tables = solve(todo)
            for value, table, i in zip(values, tables, todo, strict=True):
                self.put(keys[i], value, table)
                fresh[keys[i]] = table
        out = np.empty((len(keys), *table_shape), dtype=np.int8)
        for i, key in enumerate(keys):
            out[i] = fresh[key] if key in fresh else self.table(key)
        values = np.array([self.value(key) for key in keys], dtype=np.float64)
        self.evict(keep=keys)
        return values, out

    def evict(self, keep: Collection[Hashable] = ()) -> None:
        """Drop the oldest solutions beyond ``max_items``, never those in ``keep``."""
        excess = len(self._items) - self.max_items
        if excess <= 0:
            return
        keep = set(keep)
        for key in list(self._items):
            if excess <= 0:
                break
            if key not in keep:
                del self._items[key]
                excess -= 1


def mask_context(mask: Any) -> tuple[Any, ...]:
    """What a legal mask decides by, for :meth:`SolutionCache.use_context`: its class and
    ruleset hash when it has one (two ``LegalMask`` s over the same rules judge alike, so
    the evaluation's and the off-policy estimates' masks share solutions), else the object
    itself."""
    ruleset_hash = getattr(mask, "ruleset_hash", None)
    if isinstance(ruleset_hash, str) and ruleset_hash:
        return (type(mask), ruleset_hash)
    return (mask,)
