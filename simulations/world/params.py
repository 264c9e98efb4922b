"""Static per-invoice parameters of the ground truth (arrays of shape (n,))."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

import numpy as np

from engine.calendar import to_day
from engine.contract import CUSTOMER_TYPES, SEGMENTS
from simulations.world.calendar import WorldCalendar
from simulations.world.scenario import Scenario

NO_MILESTONE = -100_000  # milestone offset of an invoice without milestone (always reached)
# Calendar margin after the last due date: horizon plus the agency's recovery delay.
_CALENDAR_TAIL = 400


@dataclass
class InvoiceParams:
    """True static parameters of ``n`` invoices; every array field has shape (n,).

    ``segment`` indexes ``engine.contract.SEGMENTS``; ``jurisdiction`` indexes
    ``scenario.jurisdictions``; ``customer_type`` indexes ``CUSTOMER_TYPES`` (0 b2b, 1 b2c);
    ``industry`` indexes ``industries`` (the vocabulary, a tuple of names). Days are
    ``engine.calendar`` day numbers (``engine.calendar.from_days`` gives the dates).
    ``milestone_offset`` is the milestone day minus the due date (``NO_MILESTONE`` when
    there is none). ``reliability`` multiplies the payment hazard (mean about 1),
    ``response`` the reminder effect (the customer's own answer to reminders, mean 1; all 1
    when the scenario's ``reminder_response_sigma`` is 0), ``timing_shift`` the days by
    which the customer's best reminder days come later than its segment's (all 0 when the
    scenario's ``reminder_timing_shift_sd`` is 0). ``amount`` is in the invoice currency.
    """

    segment: np.ndarray  # int64
    jurisdiction: np.ndarray  # int64
    customer_type: np.ndarray  # int64
    industry: np.ndarray  # int64
    reliability: np.ndarray  # float64
    amount: np.ndarray  # float64
    invoice_day: np.ndarray  # int64 epoch day
    due_day: np.ndarray  # int64 epoch day
    milestone_offset: np.ndarray  # int64 days after due
    agency_consent: np.ndarray  # bool
    reminder_fee_agreed: np.ndarray  # bool
    opted_out_email: np.ndarray  # bool
    opted_out_letter: np.ndarray  # bool
    opted_out_phone: np.ndarray  # bool
    response: np.ndarray  # float64, multiplies the reminder effect
    timing_shift: np.ndarray  # int64 days, shifts the segment's reminder timing
    scenario: Scenario
    calendar: WorldCalendar
    industries: tuple[str, ...]

    _ARRAYS = (
        "segment", "jurisdiction", "customer_type", "industry", "reliability", "amount",
        "invoice_day", "due_day", "milestone_offset", "agency_consent", "reminder_fee_agreed",
        "opted_out_email", "opted_out_letter", "opted_out_phone", "response",
        "timing_shift",
    )

    def __post_init__(self) -> None:
        n = len(self.segment)
        for name in self._ARRAYS:
            if len(getattr(self, name)) != n:
                raise ValueError(f"InvoiceParams.{name} has length {len(getattr(self, name))}, "
                                 f"expected {n}")
        # Calendar index of the due date: today's calendar index is due_index + t.
        self.due_index = self.calendar.index(self.due_day)

    def __len__(self) -> int:
        return len(self.segment)

    def take(self, rows: np.ndarray) -> InvoiceParams:
        """The parameters of the invoices ``rows`` (an index array or boolean mask)."""
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in self._ARRAYS:
            kw[name] = kw[name][rows]
        return InvoiceParams(**kw)

    def row_keys(self) -> list[bytes]:
        """One key per invoice (n,): the bytes of all its per-invoice fields. Equal keys
        are equal invoices of the same scenario, calendar and industries (a solution
        cached by key is only valid with those)."""
        cols = np.column_stack([np.asarray(getattr(self, name), dtype=np.float64)
                                for name in self._ARRAYS])  # ints < 2**53: exact
        return [row.tobytes() for row in cols]


def calendar_for(scenario: Scenario, first_day: int, last_due_day: int) -> WorldCalendar:
    """A calendar covering invoice dates from ``first_day`` to ``last_due_day`` + horizon."""
    tail = scenario.horizon_days + scenario.costs.agency_delay_days + _CALENDAR_TAIL
    return WorldCalendar(scenario, first_day - 7, last_due_day - first_day + 7 + tail)


def _choice(rng: np.random.Generator, weights: dict, size: int) -> np.ndarray:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return np.asarray(keys, dtype=object)[rng.choice(len(keys), size=size, p=p / p.sum())]


def sample_invoices(scenario: Scenario, n: int, rng: np.random.Generator,
                    start: dt.date | None = None, days: int = 365) -> InvoiceParams:
    """Draw ``n`` independent invoices (one customer each) issued over ``days`` from ``start``.

    For tests, the environment and the oracle; :func:`generate_company` draws invoices per
    customer over months instead (and keeps the same parameter layout).
    """
    start = start or scenario.start_date
    seg_w = np.array([s.weight for s in scenario.segments])
    segment = rng.choice(len(SEGMENTS), size=n, p=seg_w / seg_w.sum())
    jur_w = np.array([j.weight for j in scenario.jurisdictions])
    jurisdiction = rng.choice(len(jur_w), size=n, p=jur_w / jur_w.sum())
    invoice_day = to_day(start) + rng.integers(0, days, size=n)
    cust = draw_customer_attributes(scenario, segment, jurisdiction, rng)
    inv = draw_invoice_attributes(scenario, segment, rng)
    reliability = draw_reliability(scenario, segment, rng)
    response = draw_response(scenario, segment, rng)
    timing_shift = draw_timing_shift(scenario, segment, rng)
    due_day = invoice_day + inv["terms"]
    calendar = calendar_for(scenario, int(invoice_day.min(initial=to_day(start))),
                            int(due_day.max(initial=to_day(start))))
    return InvoiceParams(
        segment=segment, jurisdiction=jurisdiction, customer_type=cust["customer_type"],
        industry=cust["industry"], reliability=reliability, amount=inv["amount"],
        invoice_day=invoice_day, due_day=due_day, milestone_offset=inv["milestone_offset"],
        agency_consent=cust["agency_consent"], reminder_fee_agreed=cust["reminder_fee_agreed"],
        opted_out_email=cust["opted_out_email"], opted_out_letter=cust["opted_out_letter"],
        opted_out_phone=cust["opted_out_phone"], response=response,
        timing_shift=timing_shift, scenario=scenario, calendar=calendar,
        industries=cust["industries"],
    )


def industry_vocabulary(scenario: Scenario) -> tuple[str, ...]:
    """All industries named by the scenario's segments, sorted."""
    return tuple(sorted({i for s in scenario.segments for i in s.industries}))


def draw_reliability(scenario: Scenario, segment: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """Lognormal latent reliability with mean 1 per segment's sigma, shape (n,)."""
    sigma = np.array([s.reliability_sigma for s in scenario.segments])[segment]
    return _lognormal_mean_one(sigma, rng)


def draw_response(scenario: Scenario, segment: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Lognormal reminder response with mean 1 per segment's ``reminder_response_sigma``,
    shape (n,). All 1, drawing nothing from ``rng``, when no segment has a spread (so a
    scenario without it draws everything else as before)."""
    sigma = np.array([s.reminder_response_sigma for s in scenario.segments])[segment]
    if not sigma.any():
        return np.ones(len(segment))
    return _lognormal_mean_one(sigma, rng)


def _lognormal_mean_one(sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """exp(sigma z - sigma^2 / 2), z standard normal: lognormal with mean 1, shape of
    ``sigma``."""
    return np.exp(sigma * rng.standard_normal(len(sigma)) - 0.5 * sigma**2)


def draw_timing_shift(scenario: Scenario, segment: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
    """Whole days by which each customer's reminder timing is shifted: normal with mean 0
    and the segment's ``reminder_timing_shift_sd``, rounded, shape (n,) int64. All 0,
    drawing nothing from ``rng``, when no segment has a spread (so a scenario without it
    draws everything else as before)."""
    sd = np.array([s.reminder_timing_shift_sd for s in scenario.segments])[segment]
    if not sd.any():
        return np.zeros(len(segment), dtype=np.int64)
    return np.rint(sd * rng.standard_normal(len(segment))).astype(np.int64)


def draw_customer_attributes(scenario: Scenario, segment: np.ndarray, jurisdiction: np.ndarray,
                             rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Customer type, industry, consents and opt-outs for customers of ``segment``."""
    n = len(segment)
    vocab = industry_vocabulary(scenario)
    b2c_share = np.array([s.b2c_share for s in scenario.segments])[segment]
    customer_type = (rng.random(n) < b2c_share).astype(np.int64)
    industry = np.zeros(n, dtype=np.int64)
    for s, seg in enumerate(scenario.segments):
        rows = np.flatnonzero(segment == s)
        names = _choice(rng, seg.industries, len(rows))
        industry[rows] = [vocab.index(x) for x in names]
    healthcare = industry == vocab.index("healthcare") if "healthcare" in vocab else np.zeros(
        n, bool)
    consent_share = np.where(healthcare, scenario.healthcare_agency_consent_share,
                             np.where(customer_type == CUSTOMER_TYPES.index("b2c"),
                                      scenario.b2c_agency_consent_share, 1.0))
    agency_consent = rng.random(n) < consent_share
    reminder_fee_agreed = rng.random(n) < scenario.reminder_fee_agreed_share
    opted = rng.random(n) < scenario.opted_out_share
    which = rng.integers(0, 3, size=n)
    return {
        "customer_type": customer_type, "industry": industry, "industries": vocab,
        "agency_consent": agency_consent, "reminder_fee_agreed": reminder_fee_agreed,
        "opted_out_email": opted & (which == 0), "opted_out_letter": opted & (which == 1),
        "opted_out_phone": opted & (which == 2),
    }


def draw_invoice_attributes(scenario: Scenario, segment: np.ndarray,
                            rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Payment terms (days), amount (2 decimals) and milestone offset per invoice."""
    n = len(segment)
    terms = np.zeros(n, dtype=np.int64)
    median = np.array([s.amount_median for s in scenario.segments])[segment]
    sigma = np.array([s.amount_sigma for s in scenario.segments])[segment]
    amount = np.round(np.maximum(median * np.exp(sigma * rng.standard_normal(n)), 1.0), 2)
    milestone = np.full(n, NO_MILESTONE, dtype=np.int64)
    for s, seg in enumerate(scenario.segments):
        rows = np.flatnonzero(segment == s)
        terms[rows] = _choice(rng, seg.payment_terms_days, len(rows)).astype(np.int64)
        if seg.milestone_days is not None:
            lo, hi = seg.milestone_days
            milestone[rows] = rng.integers(lo, hi + 1, size=len(rows))
    return {"terms": terms, "amount": amount, "milestone_offset": milestone}
