"""Vectorised numpy evaluator: the same rules as durable_rules, for a whole batch at once.

This is the simulation's hot path (an action mask every step). Facts come as a dict of 1-D
arrays of length ``n`` (0-d values broadcast); string facts are encoded once per call to
categorical codes (pass a ``pandas.Categorical`` to skip even that). Every rule's ``when`` is
compiled to array comparisons; identical comparisons are computed once per call. Semantics
(fail closed on missing/invalid facts; a row with input the rules do not know has every action
but WAIT blocked) are those of :mod:`legal_rules.decision`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from engine.calendar import EPOCH, day_number
from engine.contract import N_ACTIONS, Action
from legal_rules.decision import (
    INPUT_CODES,
    INPUT_MISSING_FACT,
    as_date,
)
from legal_rules.facts import FACT_DEFAULTS, FACTS, fact_problem, native_value
from legal_rules.known import META_KEYS, Vocabulary
from legal_rules.model import All, Always, AnyOf, Compare, Condition, Not, Rule, RuleSet

_Mask = np.ndarray | bool  # a (n,) bool array, or a scalar that holds for every row
_NUMPY_OPS = {
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
    "gt": np.greater, "ge": np.greater_equal,
}
_PY_OPS = {
    "eq": lambda x, v: x == v, "ne": lambda x, v: x != v, "lt": lambda x, v: x < v,
    "le": lambda x, v: x <= v, "gt": lambda x, v: x > v, "ge": lambda x, v: x >= v,
    "in": lambda x, v: x in v, "not_in": lambda x, v: x not in v,
}


def _and(a: _Mask, b: _Mask) -> _Mask:
    if a is False or b is False:
        return False
    if a is True:
        return b
    if b is True:
        return a
    return a & b


def _or(a: _Mask, b: _Mask) -> _Mask:
    if a is True or b is True:
        return True
    if a is False:
        return b
    if b is False:
        return a
    return a | b


def _not(a: _Mask) -> _Mask:
    return (not a) if isinstance(a, bool) else ~a


@dataclass
class _Column:
    """One encoded fact. ``valid`` is ``True`` when every row is valid.

    Numeric/bool facts: ``values`` is int64/float64/bool (invalid rows hold 0). String facts:
    ``values`` are codes into ``uniques`` (-1 = invalid row). ``wrong``: rows where the fact
    is present but of the wrong type or unknown (they block the whole row); missing rows are
    invalid but not wrong. ``unknown``: the rows of ``wrong`` that hold a string the rules do
    not know (``input.unknown_value``; the others are ``input.wrong_type``).
    """

    values: np.ndarray
    valid: _Mask
    uniques: list[Any] | None = None
    wrong: _Mask = False
    unknown: _Mask = False

    def missing(self) -> _Mask:
        """Rows where the fact is absent (not given, None, NaN): invalid but not wrong."""
        return _and(_not(self.valid), _not(self.wrong))


def _day_numbers(as_of: Any, n: int) -> int | _Days:
    """``engine.calendar`` day numbers: an int for one date (or one shared by all rows),
    else _Days."""
    if isinstance(as_of, np.ndarray) and as_of.ndim == 1:
        if as_of.shape[0] != n:
            raise ValueError(f"as_of has {as_of.shape[0]} dates for {n} rows")
        if np.issubdtype(as_of.dtype, np.datetime64):
            days = (as_of.astype("datetime64[D]") - EPOCH).astype(np.int64)
        else:
            days = np.array([day_number(as_date(d)) for d in as_of], dtype=np.int64)
        if days.size and (days == days[0]).all():
            return int(days[0])  # one date for the whole batch (the common case)
        return _Days(days, int(days.min()), int(days.max()))
    return day_number(as_date(as_of))


@dataclass(frozen=True)
class _Days:
    """One date per row (``engine.calendar`` day numbers) with the batch's first and last
    day."""

    values: np.ndarray
    lo: int
    hi: int


class _Encoded:
    """All facts of one call, encoded; caches comparisons and validity conjunctions."""

    def __init__(self, facts: Mapping[str, Any], vocab: Vocabulary):
        self.n = _batch_size(facts)
        self.columns: dict[str, _Column] = {}
        for name in FACTS:  # an absent fact with a neutral default gets it (facts.py)
            raw = facts[name] if name in facts else FACT_DEFAULTS.get(name)
            self.columns[name] = _encode(name, raw, self.n, vocab)
        _check_regions(self.columns, vocab)
        # rows with input the rules do not know: every action but WAIT is blocked
        self.unknown_key = any(k not in FACTS and k not in META_KEYS for k in facts)
        invalid: _Mask = self.unknown_key
        for col in self.columns.values():
            invalid = _or(invalid, col.wrong)
        self.invalid = invalid
        self._atoms: dict[tuple[str, str, Any], _Mask] = {}
        self._needed: dict[tuple[str, ...], _Mask] = {}
        self._luts: dict[tuple[str, frozenset[str]], _Mask] = {}

    def needed_valid(self, names: tuple[str, ...]) -> _Mask:
        if names not in self._needed:
            acc: _Mask = True
            for name in names:
                acc = _and(acc, self.columns[name].valid)
            self._needed[names] = acc
        return self._needed[names]

    def member(self, name: str, allowed: frozenset[str]) -> _Mask:
        """Rows whose (valid) string fact ``name`` is in ``allowed``."""
        key = (name, allowed)
        if key not in self._luts:
            col = self.columns[name]
            self._luts[key] = _gather(col, [u in allowed for u in col.uniques or []])
        return self._luts[key]

    def atom(self, cond: Compare) -> _Mask:
        key = (cond.fact, cond.op, cond.value)
        if key not in self._atoms:
            self._atoms[key] = self._compare(cond)
        return self._atoms[key]

    def _compare(self, cond: Compare) -> _Mask:
        col = self.columns[cond.fact]
        if col.uniques is not None:  # string fact: evaluate once per distinct value
            op = _PY_OPS[cond.op]
            return _gather(col, [op(u, cond.value) for u in col.uniques])
        if cond.op == "in":
            return np.isin(col.values, np.asarray(cond.value))
        if cond.op == "not_in":
            return ~np.isin(col.values, np.asarray(cond.value))
        return _NUMPY_OPS[cond.op](col.values, cond.value)

    def condition(self, cond: Condition) -> _Mask:
        if isinstance(cond, Compare):
            return self.atom(cond)
        if isinstance(cond, All):
            acc: _Mask = True
            for item in cond.items:
                acc = _and(acc, self.condition(item))
                if acc is False:
                    break
            return acc
        if isinstance(cond, AnyOf):
            acc = False
            for item in cond.items:
                acc = _or(acc, self.condition(item))
                if acc is True:
                    break
            return acc
        if isinstance(cond, Not):
            return _not(self.condition(cond.item))
        assert isinstance(cond, Always)
        return True

    def kleene(self, cond: Condition) -> tuple[_Mask, _Mask]:
        """``(definitely true, definitely false)`` rows of ``cond`` with invalid facts unknown."""
        if isinstance(cond, Compare):
            valid, hit = self.columns[cond.fact].valid, self.atom(cond)
            return _and(valid, hit), _and(valid, _not(hit))
        if isinstance(cond, (All, AnyOf)):
            parts = [self.kleene(item) for item in cond.items]
            conj, disj = (_and, _or) if isinstance(cond, All) else (_or, _and)
            true, false = parts[0]
            for t, f in parts[1:]:
                true, false = conj(true, t), disj(false, f)
            return true, false
        if isinstance(cond, Not):
            true, false = self.kleene(cond.item)
            return false, true
        return True, False


def _gather(col: _Column, per_unique: list[bool]) -> _Mask:
    """Expand a per-distinct-value truth table to rows (invalid rows -> False)."""
    if not any(per_unique):
        return False
    lut = np.array([*per_unique, False], dtype=bool)  # index -1 (invalid) hits the False
    return lut[col.values]


def _batch_size(facts: Mapping[str, Any]) -> int:
    sizes = {np.shape(v)[0] for v in facts.values()
             if np.ndim(v) == 1 or hasattr(v, "codes")}
    if len(sizes) > 1:
        raise ValueError(f"fact arrays have different lengths: {sorted(sizes)}")
    if any(np.ndim(v) > 1 for v in facts.values()):
        raise ValueError("facts must be 1-D arrays or scalars")
    return sizes.pop() if sizes else 1


def _encode(name: str, raw: Any, n: int, vocab: Vocabulary) -> _Column:
    kind = FACTS[name].type
    if raw is None:
        zeros = np.zeros(n, dtype=np.int64)
        return _Column(np.full(n, -1) if kind == "str" else zeros, False,
                       [] if kind == "str" else None)
    if kind == "str":
        return _encode_str(name, raw, n, vocab)
    arr = np.asarray(raw)
    if arr.ndim == 0:
        arr = np.broadcast_to(arr, (n,))
    dk = arr.dtype.kind
    target = {"int": np.int64, "float": np.float64, "bool": np.bool_}[kind]
    if dk == "b":
        if kind == "bool":
            return _Column(arr, True)
        return _Column(np.zeros(n, dtype=target), False, wrong=_nonempty(n))
    if dk in "iu" and kind != "bool":
        values = arr.astype(target)
        ok = np.abs(values) <= 1e15
        return _Column(values, True, wrong=False) if ok.all() else _Column(values, ok, wrong=~ok)
    if dk == "f" and kind != "bool":
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(arr) & (np.abs(arr) <= 1e15)
            if kind == "int":
                ok &= arr == np.floor(arr)
        values = np.where(ok, arr, 0).astype(target)
        if ok.all():
            return _Column(values, True)
        wrong = ~ok & ~np.isnan(arr)  # NaN is missing, not wrong
        return _Column(values, ok, wrong=wrong if wrong.any() else False)
    if dk == "O":  # mixed Python objects: check each value exactly like a single decision
        why = [fact_problem(name, v) for v in arr]
        ok = np.fromiter((w is None for w in why), dtype=bool, count=n)
        pairs = zip(arr, ok, strict=True)
        values = np.fromiter((native_value(name, v) if good else 0 for v, good in pairs),
                             dtype=target, count=n)
        if ok.all():
            return _Column(values, True)
        wrong = np.fromiter((w is not None and w != "missing" for w in why), dtype=bool, count=n)
        return _Column(values, ok, wrong=wrong if wrong.any() else False)
    # strings, dates, ... for a number/bool: every row present and of the wrong type
    return _Column(np.zeros(n, dtype=target), False, wrong=_nonempty(n))


def _nonempty(n: int) -> _Mask:
    """Every row (as a scalar mask), for a column that is wrong as a whole."""
    return n > 0


def _encode_str(name: str, raw: Any, n: int, vocab: Vocabulary) -> _Column:
    import pandas as pd

    if isinstance(raw, pd.Categorical):
        codes, uniques = np.asarray(raw.codes, dtype=np.int64), list(raw.categories)
    else:
        arr = np.asarray(raw, dtype=object) if np.ndim(raw) == 1 else np.full(n, raw, dtype=object)
        codes, uniq = pd.factorize(arr, use_na_sentinel=True)
        uniques = list(uniq)
    why = [fact_problem(name, u) for u in uniques]
    unique_ok = np.array([w is None and vocab.value_ok(name, u) for w, u in zip(
        why, uniques, strict=True)] + [False], dtype=bool)
    wrong: _Mask = False
    unknown: _Mask = False
    if not unique_ok[:-1].all():  # invalid distinct values behave like missing rows
        is_wrong = np.array([w != "missing" for w in why] + [False], dtype=bool) & ~unique_ok
        wrong = is_wrong[codes] if is_wrong.any() else False
        # a string is an unknown value, anything else a wrong type (decision.problem_code)
        is_unknown = is_wrong & np.array([isinstance(u, str) for u in uniques] + [False],
                                         dtype=bool)
        unknown = is_unknown[codes] if is_unknown.any() else False
        codes = np.where(unique_ok[codes], codes, -1)
    valid: _Mask = True if (codes >= 0).all() else codes >= 0
    kept = [u if ok else None for u, ok in zip(uniques, unique_ok[:-1], strict=True)]
    return _Column(codes, valid, kept, wrong, unknown)


def _check_regions(columns: dict[str, _Column], vocab: Vocabulary) -> None:
    """Mark regions that are not a subdivision of the row's jurisdiction as wrong (in place).

    One check per distinct (jurisdiction, region) pair; nothing to do when every region is
    "" (no subdivision), the usual case.
    """
    reg, jur = columns["region"], columns["jurisdiction"]
    regions = reg.uniques or []
    if all(r in ("", None) for r in regions):
        return
    jurs = [*(jur.uniques or []), None]  # code -1 (missing or unknown) indexes the None
    lut = np.array([[r is None or vocab.region_ok(j, r) for r in [*regions, None]]
                    for j in jurs], dtype=bool)
    ok = lut[jur.values, reg.values]
    if ok.all():
        return
    bad = ~ok
    reg.wrong = _or(reg.wrong, bad)
    reg.unknown = _or(reg.unknown, bad)
    reg.values = np.where(bad, -1, reg.values)
    reg.valid = _and(reg.valid, ok)


@dataclass(frozen=True)
class BatchDecision:
    """Decisions for ``n`` rows and every action.

    Attributes
    ----------
    allowed : (n, 6) bool
        Column ``Action.X`` says whether action X is allowed; column 0 (WAIT) is always True.
    needs_review : (n, 6) bool
        A ``require_human_review`` rule fired.
    vetoed_by : (n, 6) int
        Index into ``ruleset.rules`` of the first veto rule that fired, -1 if none.
    fired : (n, R) bool
        Rule r fired for row i (R = ``len(ruleset.rules)``).
    unresolved : (n, R) bool
        Rule r applied but a fact it needs was missing/invalid (blocks its actions).
    invalid : (n,) bool
        Row i holds input the rules do not know (a non-fact key, a wrong type, an unknown
        value): every action but WAIT is blocked; ``durable_eval`` gives the messages.
    input_codes : (n, 3) bool
        Which kinds of input problem row i has, columns in the order of
        ``legal_rules.decision.INPUT_CODES[:3]`` (unknown fact, wrong type, unknown value).
    missing_blocked : (n, 6) bool
        Action a of row i is blocked by a rule that needs a fact row i does not supply
        (``input.missing_fact``).
    """

    allowed: np.ndarray
    needs_review: np.ndarray
    vetoed_by: np.ndarray
    fired: np.ndarray
    unresolved: np.ndarray
    ruleset: RuleSet
    action_matrix: np.ndarray  # (R, 6) bool: rule r applies to action a
    invalid: np.ndarray | None = None  # (n,) bool: input the rules do not know (all blocked)
    input_codes: np.ndarray | None = None  # (n, 3) bool
    missing_blocked: np.ndarray | None = None  # (n, 6) bool

    def blocked_by(self, row: int, action: Action | int) -> tuple[str, ...]:
        """Rule ids (then pseudo-rule ids) that keep ``action`` of ``row`` from being allowed,
        in the order of :attr:`legal_rules.decision.Decision.blocked_by`."""
        a = int(action)
        if self.allowed[row, a]:
            return ()
        rules = self.ruleset.rules
        out = [rules[k].id for k in self.vetoing_rules(row, a)]
        out += [rules[k].id for k in self.unresolved_rules(row, a)]
        if self.input_codes is not None:
            out += [c for c, hit in zip(INPUT_CODES[:3], self.input_codes[row], strict=True)
                    if hit]
        if self.missing_blocked is not None and self.missing_blocked[row, a]:
            out.append(INPUT_MISSING_FACT)
        return tuple(out)

    def _rules_for(self, matrix: np.ndarray, row: int, action: Action | int,
                   effect: str | None = None) -> list[int]:
        hit = matrix[row] & self.action_matrix[:, int(action)]
        if effect is not None:
            hit &= np.array([r.effect == effect for r in self.ruleset.rules], dtype=bool)
        return np.flatnonzero(hit).tolist()

    def vetoing_rules(self, row: int, action: Action | int) -> list[int]:
        """Indices of every veto rule that fired for (row, action)."""
        return self._rules_for(self.fired, row, action, "veto")

    def fired_rules(self, row: int, action: Action | int) -> list[int]:
        """Indices of every rule (any effect) that fired for (row, action)."""
        return self._rules_for(self.fired, row, action)

    def unresolved_rules(self, row: int, action: Action | int) -> list[int]:
        """Indices of rules that blocked (row, action) because a needed fact was missing."""
        return self._rules_for(self.unresolved, row, action)


def _bit_code(bits: list[np.ndarray]) -> np.ndarray:
    """(n,) int64, equal exactly where every one of the (n,) bool ``bits`` is equal."""
    chunks = [sum(b.astype(np.int64) << j for j, b in enumerate(bits[i:i + 62]))
              for i in range(0, len(bits), 62)]
    if len(chunks) == 1:
        return np.asarray(chunks[0], dtype=np.int64)
    return np.unique(np.column_stack(chunks), axis=0, return_inverse=True)[1].reshape(-1)


def _block_rows(allowed: np.ndarray, invalid: _Mask) -> None:
    """Block every action of the ``invalid`` rows (in place; WAIT is reset by the caller)."""
    if invalid is True:
        allowed[:] = False
    elif invalid is not False:
        allowed[invalid] = False


@dataclass(frozen=True)
class _Compiled:
    rule: Rule
    index: int
    cols: tuple[int, ...]  # action columns
    needed: tuple[str, ...]
    start: int  # valid_from, days since epoch
    end: int  # valid_to (inclusive), days since epoch


class VectorEvaluator:
    """Evaluate a :class:`RuleSet` on batches of facts with numpy.

    Parameters
    ----------
    ruleset : RuleSet
        e.g. ``load_rules()``.

    Examples
    --------
    >>> ev = VectorEvaluator(load_rules())
    >>> allowed = ev.mask(facts, date(2026, 3, 2))   # (n, 6) bool
    """

    def __init__(self, ruleset: RuleSet):
        self.ruleset = ruleset
        self.vocabulary = ruleset.vocabulary
        far = day_number(date.max)
        self._compiled = [
            _Compiled(rule=r, index=i, cols=tuple(int(a) for a in r.applies_to),
                      needed=r.needed_facts, start=day_number(r.valid_from),
                      end=day_number(r.valid_to) if r.valid_to else far)
            for i, r in enumerate(ruleset.rules)
        ]
        self.action_matrix = np.zeros((len(ruleset.rules), N_ACTIONS), dtype=bool)
        for c in self._compiled:
            self.action_matrix[c.index, list(c.cols)] = True
        self._is_veto = np.array([r.effect == "veto" for r in ruleset.rules], dtype=bool)
        self._is_review = np.array([r.effect == "require_human_review" for r in ruleset.rules],
                                   dtype=bool)
        self._compares: dict[str, list[Compare]] = {}  # every comparison the rules make
        for r in ruleset.rules:
            for cond in r.when.comparisons():
                if cond not in self._compares.setdefault(cond.fact, []):
                    self._compares[cond.fact].append(cond)

    # -- per rule ---------------------------------------------------------------------------

    @staticmethod
    def _in_force(c: _Compiled, day: int | _Days) -> _Mask:
        if isinstance(day, int):
            return c.start <= day <= c.end
        if c.start <= day.lo and day.hi <= c.end:  # usually decides for the whole batch
            return True
        if day.hi < c.start or day.lo > c.end:
            return False
        return (day.values >= c.start) & (day.values <= c.end)

    @staticmethod
    def _scope_facts(c: _Compiled) -> list[tuple[str, frozenset[str]]]:
        out = []
        if c.rule.countries is not None:
            out.append(("jurisdiction", c.rule.countries))
        if c.rule.scope != "both":
            out.append(("customer_type", frozenset({c.rule.scope})))
        return out

    def _fired_unresolved(self, enc: _Encoded, c: _Compiled,
                          day: int | _Days) -> tuple[_Mask, _Mask]:
        """Rows where the rule fires (Kleene true) and where it is unresolved (unknown)."""
        in_force = self._in_force(c, day)
        if in_force is False:
            return False, False
        app_true = in_force
        for name, allowed in self._scope_facts(c):
            app_true = _and(app_true, enc.member(name, allowed))  # False on invalid rows
        if enc.needed_valid(c.needed) is True:  # fast path: nothing unknown
            if app_true is False:
                return False, False
            return _and(app_true, enc.condition(c.rule.when)), False
        app_false = _not(in_force)
        for name, allowed in self._scope_facts(c):
            app_false = _or(app_false, _and(enc.columns[name].valid,
                                            _not(enc.member(name, allowed))))
        if app_false is True:
            return False, False
        when_true, when_false = enc.kleene(c.rule.when)
        fired = _and(app_true, when_true)
        return fired, _and(_not(fired), _not(_or(app_false, when_false)))

    # -- public -----------------------------------------------------------------------------

    def fact_classes(self, facts: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``{fact: (n,) int64 class}`` for every number and bool fact of the rules: rows
        whose facts are equal apart from these, with equal classes, get the same
        :meth:`mask` and :meth:`evaluate` on the same day. A fact's class is its validity
        (missing, wrong) and the truth of every comparison the rules make on it, the only
        things the evaluation reads of a number or bool (e.g. ``days_since_last_contact``
        20 and 30 share a class when every rule compares it with 14 or less). Lets a caller
        with many similar rows (the planner's DP states) evaluate one row per class."""
        enc = _Encoded(facts, self.vocabulary)
        out: dict[str, np.ndarray] = {}
        for name, spec in FACTS.items():
            if spec.type not in ("int", "float", "bool"):
                continue
            col = enc.columns[name]
            bits = [col.valid, col.wrong, col.unknown,
                    *(enc.atom(c) for c in self._compares.get(name, ()))]
            out[name] = _bit_code([np.broadcast_to(np.asarray(b, dtype=bool), (enc.n,))
                                   for b in bits])
        return out

    def mask(self, facts: Mapping[str, Any], as_of: date | str | np.ndarray) -> np.ndarray:
        """``(n, 6)`` bool: which actions are allowed (vetoes and fail-closed applied).

        ``facts``: fact name -> (n,) array or scalar; ``as_of``: one date or (n,) dates.
        """
        enc = _Encoded(facts, self.vocabulary)
        day = _day_numbers(as_of, enc.n)
        groups: dict[tuple[int, ...], _Mask] = {}
        for c in self._compiled:
            fired, unresolved = self._fired_unresolved(enc, c, day)
            # a veto blocks when it fires; any rule blocks when it cannot be evaluated
            blocked = _or(fired, unresolved) if c.rule.effect == "veto" else unresolved
            if blocked is not False:
                groups[c.cols] = _or(groups.get(c.cols, False), blocked)
        allowed = np.ones((enc.n, N_ACTIONS), dtype=bool)
        for cols, blocked in groups.items():
            if blocked is True:
                allowed[:, list(cols)] = False
            else:
                allowed[:, list(cols)] &= ~blocked[:, None]
        _block_rows(allowed, enc.invalid)
        allowed[:, int(Action.WAIT)] = True
        return allowed

    def evaluate(self, facts: Mapping[str, Any],
                 as_of: date | str | np.ndarray) -> BatchDecision:
        """Full detail for a batch: allowed, review flags, which rules fired/vetoed/blocked."""
        enc = _Encoded(facts, self.vocabulary)
        day = _day_numbers(as_of, enc.n)
        n, n_rules = enc.n, len(self._compiled)
        fired = np.zeros((n, n_rules), dtype=bool)
        unresolved = np.zeros((n, n_rules), dtype=bool)
        for c in self._compiled:
            f, u = self._fired_unresolved(enc, c, day)
            if f is not False:
                fired[:, c.index] = f
            if u is not False:
                unresolved[:, c.index] = u
        veto_fired = fired & self._is_veto
        blocked = (veto_fired | unresolved) @ self.action_matrix
        allowed = ~blocked
        _block_rows(allowed, enc.invalid)
        allowed[:, int(Action.WAIT)] = True
        needs_review = (fired & self._is_review) @ self.action_matrix
        vetoed_by = np.full((n, N_ACTIONS), -1, dtype=np.int64)
        for a in range(1, N_ACTIONS):
            rules_a = np.flatnonzero(self.action_matrix[:, a] & self._is_veto)
            if rules_a.size:
                sub = veto_fired[:, rules_a]
                first = rules_a[np.argmax(sub, axis=1)]
                vetoed_by[:, a] = np.where(sub.any(axis=1), first, -1)
        invalid = np.broadcast_to(np.asarray(enc.invalid, dtype=bool), (n,)).copy()
        return BatchDecision(allowed=allowed, needs_review=needs_review, vetoed_by=vetoed_by,
                             fired=fired, unresolved=unresolved, ruleset=self.ruleset,
                             action_matrix=self.action_matrix, invalid=invalid,
                             input_codes=self._input_codes(enc),
                             missing_blocked=self._missing_blocked(enc, unresolved))

    @staticmethod
    def _input_codes(enc: _Encoded) -> np.ndarray:
        """(n, 3) bool: unknown fact key, wrong type, unknown value per row."""
        wrong_type: _Mask = False
        unknown: _Mask = False
        for col in enc.columns.values():
            if col.wrong is not False:
                wrong_type = _or(wrong_type, _and(col.wrong, _not(col.unknown)))
                unknown = _or(unknown, col.unknown)
        return np.column_stack([np.broadcast_to(np.asarray(m, dtype=bool), (enc.n,))
                                for m in (enc.unknown_key, wrong_type, unknown)])

    def _missing_blocked(self, enc: _Encoded, unresolved: np.ndarray) -> np.ndarray:
        """(n, 6) bool: an unresolved rule of the action needs a fact the row lacks."""
        hit = np.zeros_like(unresolved)
        cols = np.flatnonzero(unresolved.any(axis=0))
        for k in cols.tolist():
            miss: _Mask = False
            for name in self._compiled[k].needed:
                miss = _or(miss, enc.columns[name].missing())
            if miss is not False:
                hit[:, k] = unresolved[:, k] & miss
        blocked = (hit @ self.action_matrix) if cols.size else np.zeros(
            (enc.n, N_ACTIONS), dtype=bool)
        blocked[:, int(Action.WAIT)] = False
        return blocked
