"""``GroundTruthSource``: transitions from the synthetic world (``simulations.world``).

The truth no model sees, used to evaluate policies. Invoices come from a pool drawn with
``world.sample_invoices`` (one calendar for the whole pool, so finished rows can be
refilled from it); each day is drawn with ``world.advance`` from exactly three uniforms per
invoice, which makes runs with the same seed use the same draws per invoice-day whatever
the policy does (common random numbers).

The observation's payment probabilities come from ``payment_probs(params) -> (n, 3)``:
a deployed policy sees only the payment model's outputs, never the world's parameters.
Without it, every invoice gets the uninformative (1/3, 1/3, 1/3).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import DunningError
from simulations.env.layout import jurisdiction_codes
from simulations.env.source import TransitionSource
from simulations.env.types import NO_MILESTONE, CostModel, EnvState, InvoiceBatch, Outcome

PaymentProbs = Callable[[Any], np.ndarray]  # InvoiceParams -> (n, 3)


class InvoicePool:
    """The world's ``InvoiceParams`` of a pool of invoices, from which batches take rows.

    Deliberately not a dataclass: the row helpers of ``simulations.env.arrays`` index
    dataclass fields, and a pool is shared by every batch drawn from it, not a row field."""

    def __init__(self, params: Any) -> None:
        self.params = params


@dataclasses.dataclass
class PoolRows:
    """``InvoiceBatch.params`` of the ground truth: rows of ``pool``."""

    rows: np.ndarray  # int64 (n,)
    pool: InvoicePool


class GroundTruthSource(TransitionSource):
    """The synthetic world's true dynamics and reward.

    Args:
        scenario: scenario name (``default``), YAML path, or a loaded ``Scenario``.
        pool_size: invoices drawn once for :meth:`sample_invoices` (auto-reset refills).
        seed: seed of that pool.
        payment_probs: ``(InvoiceParams) -> (n, 3)`` payment-model probabilities for the
            observation (default: uniform).
    """

    name = "ground_truth"

    def __init__(self, scenario: Any = "default", pool_size: int = 50_000, seed: int = 0,
                 payment_probs: PaymentProbs | None = None) -> None:
        from simulations import world

        self.world = world
        if isinstance(scenario, str | Path):
            scenario = world.load_scenario(scenario)
        self.scenario = scenario
        self.costs = CostModel.from_scenario(scenario)
        self.horizon = int(scenario.horizon_days)
        self.pool_size = int(pool_size)
        self.seed = seed
        self.payment_probs = payment_probs
        self._pool: InvoicePool | None = None
        self._params_cache: tuple[int, Any] | None = None
        jur = [j.code for j in scenario.jurisdictions]
        self._jur_code = jurisdiction_codes(np.array(jur, dtype=str))
        self._jur_iso = np.array(jur)
        self._currency = np.array([j.currency for j in scenario.jurisdictions])

    def with_costs(self, costs: CostModel) -> TransitionSource:
        """Refused: the truth's reward is the world's own (its scenario's costs), so other
        costs would be silently ignored."""
        raise DunningError("the ground truth's reward is its scenario's costs and cannot be "
                           "re-weighted; train or search with other costs in the learned "
                           "environment (LearnedSource), or edit the scenario's costs")

    # -- invoices ------------------------------------------------------------------------
    def _draw_pool(self, n: int, rng: np.random.Generator) -> InvoicePool:
        return InvoicePool(self.world.sample_invoices(self.scenario, n, rng))

    def sample_invoices(self, n: int, rng: np.random.Generator) -> InvoiceBatch:
        if self._pool is None:
            self._pool = self._draw_pool(self.pool_size, np.random.default_rng(self.seed))
        rows = rng.integers(0, len(self._pool.params), size=n)
        return self.batch_of(self._pool, rows)

    def fresh_invoices(self, n: int, rng: np.random.Generator) -> InvoiceBatch:
        """``n`` newly drawn invoices (their own pool), for an evaluation run."""
        pool = self._draw_pool(n, rng)
        return self.batch_of(pool, np.arange(n))

    def batch_from_params(self, params: Any) -> InvoiceBatch:
        """All invoices of a world ``InvoiceParams`` (e.g. ``Company.params.take(rows)``) as
        one batch, in order (to evaluate exactly those invoices)."""
        return self.batch_of(InvoicePool(params), np.arange(len(params)))

    def batch_of(self, pool: InvoicePool, rows: np.ndarray) -> InvoiceBatch:
        """The invoices ``rows`` (n,) of ``pool`` as a batch at their due dates.

        The one place a ground-truth batch is built; a subclass that knows more about its
        invoices (e.g. their payment-model probabilities) overrides it and fills the rows.
        """
        p = pool.params.take(rows)
        n = len(rows)
        if self.payment_probs is None:
            probs = np.full((n, 3), 1.0 / 3.0, dtype=np.float32)
        else:
            probs = np.asarray(self.payment_probs(p), dtype=np.float32).reshape(n, 3)
        ms = np.where(p.milestone_offset <= self.world.params.NO_MILESTONE, NO_MILESTONE,
                      p.milestone_offset).astype(np.int32)
        return InvoiceBatch(
            amount=p.amount.astype(np.float64),
            segment=p.segment.astype(np.int16),
            jurisdiction=self._jur_code[p.jurisdiction],
            jurisdiction_iso=self._jur_iso[p.jurisdiction],
            is_b2c=p.customer_type == 1,
            due_day=p.due_day.astype(np.int64),
            invoice_day=p.invoice_day.astype(np.int64),
            milestone_day=ms,
            payment_probs=probs,
            industry=np.asarray(p.industries)[p.industry],
            currency=self._currency[p.jurisdiction],
            region=np.full(n, "", dtype="<U2"),
            opted_out=np.stack([p.opted_out_email, p.opted_out_phone, p.opted_out_letter], 1),
            agency_consent=p.agency_consent.astype(bool),
            reminder_fee_agreed=p.reminder_fee_agreed.astype(bool),
            params=PoolRows(rows=np.asarray(rows, dtype=np.int64), pool=pool),
        )

    def params_of(self, batch: InvoiceBatch) -> Any:
        """The world's ``InvoiceParams`` of the batch's rows (cached until rows change)."""
        pr: PoolRows = batch.params
        key = id(pr.rows)
        if self._params_cache is None or self._params_cache[0] != key:
            self._params_cache = (key, pr.pool.params.take(pr.rows))
        return self._params_cache[1]

    # -- dynamics ------------------------------------------------------------------------
    def initial_hidden(self, batch: InvoiceBatch) -> Any:
        self._params_cache = None  # rows are being replaced
        return self.world.initial_state(batch.params.pool.params.take(batch.params.rows))

    def step(self, batch: InvoiceBatch, hidden: Any, state: EnvState, actions: np.ndarray,
             rng: np.random.Generator) -> tuple[Any, Outcome]:
        params = self.params_of(batch)
        new, out = self.world.advance(params, hidden, actions, rng.random((3, len(actions))))
        return new, Outcome(paid=out.paid, complaint=out.complaint, disputed=new.disputed,
                            reward=out.reward * out.discount)

    def date_range(self) -> tuple[dt.date, dt.date]:
        start = self.scenario.start_date
        return start - dt.timedelta(days=7), start + dt.timedelta(days=365 + 200)
