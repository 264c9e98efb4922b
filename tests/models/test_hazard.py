"""HazardModel: invoice-day rows, weighting, the fast vectorised call, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from engine.calendar import DAY_BITS, NEVER, to_day
from engine.contract import Action
from engine.errors import DunningError
from engine.features import DYNAMIC_FEATURES, build_hazard_frame, risk_days
from engine.models.hazard import HazardModel


@pytest.fixture(scope="module")
def frame(hazard_frame):
    return hazard_frame


@pytest.fixture(scope="module")
def hazard(frame):
    return HazardModel(n_estimators=40).fit(frame)


def test_frame_has_one_event_per_invoice_paid_after_due(prepared, frame):
    paid = np.bincount(frame.rows, weights=frame.event, minlength=len(prepared.invoice_id))
    assert paid.max() == 1
    # events happen exactly on the settle day, rows start at the due date
    ev = frame.event == 1
    np.testing.assert_array_equal(frame.day[ev], prepared.settle_day[frame.rows[ev]])
    assert (frame.dynamic["days_overdue"] >= 0).all()
    assert (frame.dynamic["days_overdue"] <= 120).all()
    # nothing on or after the as-of date is used
    assert frame.day.max() < (np.datetime64("2025-06-01") - np.datetime64("1900-01-01")
                              ).astype(int)


def test_frame_can_leave_out_the_days_of_an_open_dispute(prepared, frame):
    """With ``exclude_disputed`` a disputed invoice is not at risk from ``dispute_opened``
    to the day before ``dispute_resolved`` (the learned environment draws disputes
    itself); its other days stay, so an invoice whose dispute was resolved is at risk
    again from that day. Without it (the default) every day is a row."""
    full = frame
    frame = build_hazard_frame(prepared, "2025-06-01", horizon_days=120,
                               exclude_disputed=True)
    opened, resolved = prepared.dispute_opened, prepared.dispute_resolved
    in_full = (full.day >= opened[full.rows]) & (full.day < resolved[full.rows])
    assert in_full.sum() == len(full.event) - len(frame.event) > 0
    in_dispute = (frame.day >= opened[frame.rows]) & (frame.day < resolved[frame.rows])
    assert not in_dispute.any()
    disputed = np.unique(frame.rows[opened[frame.rows] < NEVER])
    assert len(disputed) >= 5  # the fixture's company has disputes: the check can fail
    # resolved disputes: the invoice is back at risk on the day of the resolution
    last = {i: frame.day[frame.rows == i].max() for i in disputed}
    back = [i for i in disputed if prepared.due_day[i] <= opened[i] < resolved[i] <= last[i]]
    assert back, "no resolved dispute inside the frame"
    for i in back:
        assert resolved[i] in set(frame.day[frame.rows == i].tolist())
    # every undisputed day of a disputed invoice is there (the fixture keeps every row)
    inv, stop = risk_days(prepared, to_day("2025-06-01"), 120)
    assert len(frame.event) == sum(stop[inv] - prepared.due_day[inv] + 1) - _open_days(
        prepared, inv, stop)
    for i in disputed[:20]:
        every = np.arange(prepared.due_day[i], stop[i] + 1)
        undisputed = every[(every < opened[i]) | (every >= resolved[i])]
        np.testing.assert_array_equal(np.sort(frame.day[frame.rows == i]), undisputed)


def _open_days(p, inv, stop) -> int:
    """Days of an open dispute between each invoice's due date and ``stop``."""
    lo = np.maximum(p.dispute_opened[inv], p.due_day[inv])
    hi = np.minimum(p.dispute_resolved[inv], stop[inv] + 1)
    return int(np.maximum(hi - lo, 0).sum())


def test_subsampling_keeps_the_weighted_rate(prepared, frame):
    small = build_hazard_frame(prepared, "2025-06-01", horizon_days=120,
                               max_rows=len(frame.event) // 4, seed=1)
    assert len(small.event) < len(frame.event) / 2
    assert small.event.sum() == frame.event.sum()  # every payment kept
    full_rate = frame.event.mean()
    weighted = np.average(small.event, weights=small.weight)
    assert weighted == pytest.approx(full_rate, rel=0.05)


def test_predict_hazard_is_a_probability_and_is_calibrated(frame, hazard):
    S = hazard.static_matrix(frame.static)[frame.static_index]
    h = hazard.predict_hazard(S, frame.dynamic)
    assert h.shape == (len(frame.event),) and ((h > 0) & (h < 1)).all()
    assert np.average(h, weights=frame.weight) == pytest.approx(
        np.average(frame.event, weights=frame.weight), rel=0.05)


def test_predict_hazard_needs_every_dynamic_input(frame, hazard):
    S = hazard.static_matrix(frame.static)[:3]
    dyn = {k: np.zeros(3) for k in DYNAMIC_FEATURES if k != "weekday"}
    with pytest.raises(DunningError, match="weekday"):
        hazard.predict_hazard(S, dyn)


def test_survival_is_monotone(frame, hazard):
    s = hazard.survival(hazard.static_matrix(frame.static)[:50], days=60)
    assert s.shape == (50, 61)
    assert (np.diff(s, axis=1) <= 0).all() and (s[:, 0] == 1).all()


def test_save_load_same_predictions(frame, hazard, tmp_path):
    h = hazard.save(tmp_path)
    loaded = HazardModel.load(tmp_path)
    S = hazard.static_matrix(frame.static)[frame.static_index[:500]]
    dyn = {k: v[:500] for k, v in frame.dynamic.items()}
    np.testing.assert_allclose(loaded.predict_hazard(S, dyn), hazard.predict_hazard(S, dyn))
    assert loaded.hash_ == h and loaded.static_features_ == hazard.static_features_


def test_static_for_invoices_matches_the_training_rows(prepared, frame, hazard):
    ids = prepared.invoice_id[np.unique(frame.rows)[:20]]
    S = hazard.static_for_invoices(prepared, ids)
    first = np.searchsorted(frame.rows, np.unique(frame.rows)[:20])
    expected = hazard.static_matrix(frame.static)[frame.static_index[first]]
    np.testing.assert_array_equal(S, expected)
    with pytest.raises(DunningError, match="unknown invoice"):
        hazard.static_for_invoices(prepared, ["nope"])


def test_a_reminder_counts_from_the_day_it_is_sent(prepared, frame):
    """Rows on the day of a reminder see it (0 days ago, its send day): the world's
    reminder acts on that day's payment, so it must not be credited to 'no reminder'."""
    a_inv = (prepared.act_keys >> DAY_BITS).astype(np.int64)
    sent = {(int(i), int(d)) for i, d in zip(a_inv, prepared.act_day, strict=True)}
    same_day = np.array([(int(r), int(d)) in sent for r, d in
                         zip(frame.rows, frame.day, strict=True)])
    assert same_day.any()
    since = frame.dynamic["days_since_last_reminder"]
    np.testing.assert_array_equal(since[same_day], 0.0)
    overdue = frame.dynamic["days_overdue"]
    np.testing.assert_array_equal(frame.dynamic["last_reminder_overdue"][same_day],
                                  overdue[same_day])
    none = since >= 10_000
    np.testing.assert_array_equal(frame.dynamic["last_reminder_overdue"][none], -1.0)
    reminded = ~none
    np.testing.assert_array_equal(frame.dynamic["last_reminder_overdue"][reminded],
                                  overdue[reminded] - since[reminded])
    assert (frame.dynamic["n_email"] + frame.dynamic["n_letter"] + frame.dynamic["n_phone"]
            + frame.dynamic["n_final_notice"])[same_day].min() >= 1


def test_no_row_on_or_after_an_agency_handover(prepared, frame):
    agency_code = int(Action.AGENCY)
    a_inv = (prepared.act_keys >> DAY_BITS).astype(np.int64)
    handed = {int(i): int(d) for i, d, c in zip(a_inv, prepared.act_day, prepared.act_channel,
                                                strict=True) if c == agency_code}
    assert handed, "the fixture company should hand some invoices to the agency"
    for r, d in zip(frame.rows, frame.day, strict=True):
        if int(r) in handed:
            assert d < handed[int(r)]
