"""Where transitions come from: one interface, two implementations.

``GroundTruthSource`` (``simulations.env.ground_truth``) steps the synthetic world: the
truth, used for evaluation. ``LearnedSource`` (``simulations.env.learned``) steps the
company's own learned models (hazard model for payment, complaint and dispute rates
estimated from its history): what a user with only their own data has, used to train
and tune policies.
"""

from __future__ import annotations

import copy
import datetime as dt
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from simulations.env.types import CostModel, EnvState, InvoiceBatch, Outcome


class TransitionSource(ABC):
    """Samples invoices and draws each day's outcome for a batch of invoices.

    Attributes: ``costs`` (:class:`CostModel`), ``horizon`` (days after due after which an
    unpaid invoice is written off), ``name``.
    """

    name: str = "source"
    costs: CostModel
    horizon: int

    @abstractmethod
    def sample_invoices(self, n: int, rng: np.random.Generator) -> InvoiceBatch:
        """``n`` new invoices at their due date (their ``params`` included)."""

    def with_costs(self, costs: CostModel) -> TransitionSource:
        """The same transitions with other ``costs`` (a shallow copy: caches are shared,
        the draws and outcomes are the same, only the reward differs), for a source whose
        reward is computed from ``costs`` (the ground truth refuses: its reward is the
        world's)."""
        other = copy.copy(self)
        other.costs = costs
        return other

    def fresh_invoices(self, n: int, rng: np.random.Generator) -> InvoiceBatch:
        """``n`` new invoices for an evaluation run (default: :meth:`sample_invoices`)."""
        return self.sample_invoices(n, rng)

    @abstractmethod
    def initial_hidden(self, batch: InvoiceBatch) -> Any:
        """The source's own per-invoice state at the due date (struct of arrays or None)."""

    def initially_disputed(self, batch: InvoiceBatch, hidden: Any) -> np.ndarray:
        """Whether each invoice starts under dispute (default: none)."""
        return np.zeros(len(batch.amount), dtype=bool)

    @abstractmethod
    def step(
        self,
        batch: InvoiceBatch,
        hidden: Any,
        state: EnvState,
        actions: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[Any, Outcome]:
        """Draw today's outcome for every row.

        ``state`` is the bookkeeping on day ``state.day`` BEFORE today's action is recorded;
        ``actions`` (n,) are the lawful actions taken today. Must draw the same number of
        random numbers for every row and call, so that equal seeds give equal draws per
        invoice-day whatever the policy (common random numbers). Rows already finished may
        be stepped too; their results are ignored.
        """

    def date_range(self) -> tuple[dt.date, dt.date]:
        """Due dates this source may produce (for the precomputed calendar)."""
        return dt.date(2020, 1, 1), dt.date(2031, 12, 31)
