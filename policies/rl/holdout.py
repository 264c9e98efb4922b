"""Ground truth on a company's held-out invoices: where the RL policy is judged.

The models and the RL policy learn from the history known at a cut date; the invoices due on
or after it were never seen in training. :class:`HeldOutGroundTruth` replays exactly those
invoices in the ground-truth world (their true parameters from ``Company.params``), and
fills the observation's payment probabilities with the company's payment model applied to
each invoice's features as of its due date (only facts known then), as a deployed policy
would see them. The oracle (``policies.baselines.oracle.GroundTruthOracle``) can solve them
because this is a ``GroundTruthSource``.

Used for the shifted scenario too: a company generated from ``shifted.yaml`` scored by the
models trained on the default company (the world changed, the models did not).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.calendar import from_day
from engine.errors import DunningError
from simulations.env.ground_truth import GroundTruthSource, InvoicePool
from simulations.env.types import InvoiceBatch


def month_cut(as_of: dt.date, holdout_months: int) -> dt.date:
    """First day of the month ``holdout_months`` months before the month after ``as_of``."""
    month_index = as_of.year * 12 + (as_of.month - 1) + 1 - holdout_months
    return dt.date(month_index // 12, month_index % 12 + 1, 1)


class HeldOutGroundTruth(GroundTruthSource):
    """The ground-truth world restricted to given invoices of a generated company.

    Args:
        company: ``simulations.world.Company`` (tables + true ``params``, row-aligned).
        rows: rows of ``company.invoices`` to evaluate on (e.g. due on or after the cut).
        payment_probs: ``(len(rows), 3)`` payment-model probabilities of those rows.
        scenario: the company's ``Scenario``.
        hazard_static: ``(len(rows), k)`` the hazard model's static inputs of those rows as of
            their due dates (for the planner), or None.

    ``fresh_invoices(n, rng)`` and ``sample_invoices(n, rng)`` draw from these rows only
    (without replacement while there are enough of them).
    """

    name = "ground_truth_holdout"

    def __init__(self, company: Any, rows: np.ndarray, payment_probs: np.ndarray,
                 scenario: Any, hazard_static: np.ndarray | None = None) -> None:
        super().__init__(scenario, pool_size=len(rows))
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            raise DunningError("no held-out invoices to evaluate on: generate more months "
                               "or shorten the hold-out period")
        self._holdout = InvoicePool(company.params.take(rows))
        self._pool = self._holdout
        self._probs = np.asarray(payment_probs, dtype=np.float32).reshape(len(rows), 3)
        self._static = (None if hazard_static is None
                        else np.asarray(hazard_static, dtype=np.float64).reshape(len(rows), -1))
        self.invoice_ids = company.invoices["invoice_id"].to_numpy()[rows]
        due = self._holdout.params.due_day
        self._dates = (from_day(int(due.min())), from_day(int(due.max())))

    def __len__(self) -> int:
        return len(self._probs)

    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        size = len(self._probs)
        rows = rng.choice(size, size=n, replace=n > size)
        return np.sort(rows) if n <= size else rows

    def sample_invoices(self, n: int, rng: np.random.Generator) -> InvoiceBatch:
        return self.batch_of(self._holdout, self._draw(n, rng))

    def fresh_invoices(self, n: int, rng: np.random.Generator) -> InvoiceBatch:
        return self.batch_of(self._holdout, self._draw(n, rng))

    def batch_of(self, pool: InvoicePool, rows: np.ndarray) -> InvoiceBatch:
        batch = super().batch_of(pool, rows)
        batch.payment_probs = self._probs[rows]
        if self._static is not None:
            batch.hazard_static = self._static[rows]
        return batch

    def date_range(self) -> tuple[dt.date, dt.date]:
        return self._dates[0] - dt.timedelta(days=7), self._dates[1]


def holdout_source(company: Any, scenario: Any, cut: dt.date, model_dir: str | Path,
                   tables: dict[str, pd.DataFrame] | None = None,
                   before_cut: bool = False) -> HeldOutGroundTruth:
    """Ground truth on ``company``'s invoices due on or after ``cut``, scored by the payment
    model in ``model_dir`` with features from ``tables`` (default: the company's own).

    ``before_cut=True`` takes the invoices due before ``cut`` instead: the training period,
    for the ceiling diagnostic of ``benchmarks/bench_rl.py`` (how far the same optimiser
    gets when trained in the truth itself); a deployable policy never trains on it.
    """
    from engine.models import HazardModel, PaymentModel
    from engine.models.hazard import HAZARD_FILE
    from engine.models.payment import payment_probs_at_due

    inv = company.invoices
    due = pd.to_datetime(inv["due_date"]).dt.date.to_numpy()
    rows = np.flatnonzero(due < cut) if before_cut else np.flatnonzero(due >= cut)
    if tables is None:
        tables = {"customers": company.customers, "invoices": company.invoices,
                  "payments": company.payments, "actions": company.actions}
    ids = inv["invoice_id"].to_numpy()[rows]
    probs = payment_probs_at_due(PaymentModel.load(model_dir), tables, ids)
    static = None
    if (Path(model_dir) / HAZARD_FILE).exists():  # the planner's inputs, as of due
        static = HazardModel.load(model_dir).static_for_invoices(tables, ids)
    return HeldOutGroundTruth(company, rows, probs, scenario, hazard_static=static)
