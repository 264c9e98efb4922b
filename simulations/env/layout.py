"""The observation vector: one documented float32 layout, read by name everywhere.

Policies, the RL helper and the daily recommendation read observations through
:data:`LAYOUT` (``LAYOUT.slice("segment")``, ``obs[:, LAYOUT["days_overdue"]]``), never by
hard-coded column numbers. Values are in natural units (days, counts, probabilities); the
amount is ``log10(1 + amount)``. Index layout (``dim`` = 38):

=====================  =====  ==========================================================
name                   width  meaning
=====================  =====  ==========================================================
days_overdue           1      days since the due date (0 on the due date)
reminders              4      reminders sent so far: email, letter, phone, final notice
days_since_contact     1      days since the last reminder, capped at 60 (60 = none)
log_amount             1      log10(1 + open amount) in invoice currency
segment                6      one-hot: corporate, family_business, startup, construction,
                              saas, unknown
jurisdiction           11     one-hot: DE AT SE FR GB NL PL IT ES US, other
is_b2c                 1      1 for a consumer, 0 for a business
weekday                1      0 = Monday .. 6 = Sunday
is_weekend             1      Saturday or Sunday
is_holiday             1      bank holiday of the debtor's jurisdiction
days_to_month_end      1      0 on the last day of the month
days_to_quarter_end    1      0 on the last day of the quarter
payment_probs          3      payment model: p_on_time, p_late, p_very_late (sum to 1)
disputed               1      an open dispute on this day
complained             1      the customer complained about a reminder of this invoice
days_to_milestone      1      days until the project milestone (<= 0 once reached or none)
milestone_pending      1      1 while a project milestone is still ahead
final_notice_sent      1      a final notice was sent
=====================  =====  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.contract import SEGMENTS

# Codes of the observation's jurisdiction one-hot; the last one is "other/unknown".
JURISDICTIONS: tuple[str, ...] = ("DE", "AT", "SE", "FR", "GB", "NL", "PL", "IT", "ES", "US")
OTHER_JURISDICTION = len(JURISDICTIONS)
SEGMENT_NAMES: tuple[str, ...] = (*SEGMENTS, "unknown")
UNKNOWN_SEGMENT = len(SEGMENTS)
CONTACT_CAP = 60  # days_since_contact value meaning "no reminder yet or long ago"


@dataclass(frozen=True)
class ObservationLayout:
    """Named column ranges of the observation vector (see the module docstring)."""

    fields: tuple[tuple[str, int], ...]

    @property
    def dim(self) -> int:
        return sum(w for _, w in self.fields)

    def slice(self, name: str) -> slice:
        start = 0
        for field, width in self.fields:
            if field == name:
                return slice(start, start + width)
            start += width
        raise KeyError(f"observation has no field {name!r}; fields: {self.names}")

    def __getitem__(self, name: str) -> int | slice:
        """Column index for a width-1 field, a slice otherwise."""
        s = self.slice(name)
        return s.start if s.stop - s.start == 1 else s

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f for f, _ in self.fields)

    def column_names(self) -> list[str]:
        """One name per column, e.g. ``segment=saas`` for one-hot columns."""
        labels = {
            "reminders": ("email", "letter", "phone", "final_notice"),
            "segment": SEGMENT_NAMES,
            "jurisdiction": (*JURISDICTIONS, "other"),
            "payment_probs": ("p_on_time", "p_late", "p_very_late"),
        }
        out: list[str] = []
        for field, width in self.fields:
            out.extend([f"{field}={v}" for v in labels[field]] if width > 1 else [field])
        return out

    def segment_codes(self, obs: np.ndarray) -> np.ndarray:
        """(n,) int segment index into :data:`SEGMENT_NAMES` from the one-hot."""
        return np.argmax(obs[:, self.slice("segment")], axis=1)

    def reminders_sent(self, obs: np.ndarray) -> np.ndarray:
        """(n,) reminders sent so far, all channels (final notice included)."""
        return obs[:, self.slice("reminders")].sum(axis=1)


LAYOUT = ObservationLayout(
    fields=(
        ("days_overdue", 1),
        ("reminders", 4),
        ("days_since_contact", 1),
        ("log_amount", 1),
        ("segment", len(SEGMENT_NAMES)),
        ("jurisdiction", len(JURISDICTIONS) + 1),
        ("is_b2c", 1),
        ("weekday", 1),
        ("is_weekend", 1),
        ("is_holiday", 1),
        ("days_to_month_end", 1),
        ("days_to_quarter_end", 1),
        ("payment_probs", 3),
        ("disputed", 1),
        ("complained", 1),
        ("days_to_milestone", 1),
        ("milestone_pending", 1),
        ("final_notice_sent", 1),
    )
)


def jurisdiction_codes(values: np.ndarray) -> np.ndarray:
    """Map ISO codes (str array, any case) to int codes into :data:`JURISDICTIONS`; unknown
    codes map to :data:`OTHER_JURISDICTION` (the observation's one-hot, not the calendar:
    holidays come from ``engine.calendar`` for every country)."""
    lookup = {j: i for i, j in enumerate(JURISDICTIONS)}
    uniq, inv = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    codes = np.array([lookup.get(str(u).upper(), OTHER_JURISDICTION) for u in uniq], np.int16)
    return codes[inv].reshape(np.shape(values))


def segment_codes(values: np.ndarray) -> np.ndarray:
    """Segment names (str array; missing/other -> unknown) to codes into SEGMENT_NAMES."""
    lookup = {s: i for i, s in enumerate(SEGMENTS)}
    arr = np.asarray(values, dtype=object)
    uniq, inv = np.unique(arr.astype(str), return_inverse=True)
    codes = np.array([lookup.get(str(u).strip().lower(), UNKNOWN_SEGMENT) for u in uniq],
                     dtype=np.int16)
    return codes[inv].reshape(arr.shape)
