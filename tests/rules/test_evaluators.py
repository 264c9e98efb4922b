"""Decisions of the packaged rules: vetoes, reviews, caps, fail-closed, both evaluators."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import numpy as np
import pandas as pd
import pytest

from engine.contract import N_ACTIONS, Action
from legal_rules.decision import Decision
from legal_rules.durable_eval import decide, decide_all
from legal_rules.facts import NEVER_DAYS
from legal_rules.testing import rows_to_arrays

DAY = date(2026, 3, 2)
REMINDERS = (Action.EMAIL, Action.LETTER, Action.PHONE, Action.FINAL_NOTICE, Action.AGENCY)


def both(durable, vector, row, day=DAY):
    """durable decisions per action, and the vector BatchDecision of the same single row."""
    decisions = durable.decide_all(row, day)
    batch = vector.evaluate(rows_to_arrays([row]), day)
    for a in Action:
        assert bool(batch.allowed[0, a]) == decisions[a].allowed, a
        assert bool(batch.needs_review[0, a]) == decisions[a].needs_review, a
    return decisions, batch


def test_neutral_invoice_allows_reminders(durable, vector, facts):
    d, _ = both(durable, vector, facts())
    assert all(d[a].allowed for a in (Action.EMAIL, Action.LETTER, Action.PHONE))
    assert d[Action.WAIT].allowed and d[Action.WAIT].status == "allowed"
    assert d[Action.LETTER].ruleset_hash == durable.ruleset.hash


def test_disputed_vetoes_every_reminder(durable, vector, facts):
    d, batch = both(durable, vector, facts(disputed=True, reminders_sent=2,
                                           written_reminders_sent=2,
                                           final_notice_sent=True, days_since_final_notice=30))
    for a in REMINDERS:
        assert not d[a].allowed and "practice.no_reminder_disputed" in d[a].vetoed_by
        assert "practice.no_reminder_disputed" in [
            durable.ruleset.rules[i].id for i in batch.vetoing_rules(0, a)]
    assert d[Action.WAIT].allowed


@pytest.mark.parametrize(("region", "calls", "phone_allowed"),
                         [("", 6, True), ("", 7, False), ("MA", 1, True), ("MA", 2, False),
                          ("NY", 2, True)])
def test_us_call_frequency(durable, vector, facts, region, calls, phone_allowed):
    row = facts(jurisdiction="US", customer_type="b2c", currency="USD", region=region,
                calls_last_7_days=calls)
    d, _ = both(durable, vector, row)
    assert d[Action.PHONE].allowed is phone_allowed
    assert d[Action.EMAIL].allowed  # only the phone channel is limited


def test_us_time_barred(durable, vector, facts):
    row = facts(jurisdiction="US", customer_type="b2c", currency="USD", reminders_sent=2,
                written_reminders_sent=2, limitation_passed=True)
    d, _ = both(durable, vector, row)
    assert d[Action.FINAL_NOTICE].vetoed_by == ("us.time_barred_no_threat",)


def test_gdpr_review_on_agency_everywhere(durable, vector, facts):
    for jur in ("DE", "US", "GB", "NO"):
        row = facts(jurisdiction=jur, final_notice_sent=True, days_since_final_notice=30)
        d, _ = both(durable, vector, row)
        assert d[Action.AGENCY].needs_review, jur
        assert "gdpr.art22_agency_review" in [h.rule_id for h in d[Action.AGENCY].fired]
        # no rule covers Norway: the rules refuse to decide there (fail closed)
        assert (d[Action.AGENCY].status == "blocked") is (jur == "NO"), jur


def test_healthcare_agency_needs_consent(durable, vector, facts):
    base = dict(industry="healthcare", final_notice_sent=True, days_since_final_notice=30)
    d, _ = both(durable, vector, facts(agency_consent=False, **base))
    assert "healthcare.de_agency_consent" in d[Action.AGENCY].vetoed_by
    d, _ = both(durable, vector, facts(agency_consent=True, **base))
    assert d[Action.AGENCY].allowed and d[Action.AGENCY].needs_review


def test_nl_consumer_fourteen_day_letter(durable, vector, facts):
    base = dict(jurisdiction="NL", customer_type="b2c", final_notice_sent=True)
    d, _ = both(durable, vector, facts(days_since_final_notice=14, **base))
    assert "nl.fourteen_day_letter" in d[Action.AGENCY].vetoed_by
    d, _ = both(durable, vector, facts(days_since_final_notice=15, **base))
    assert d[Action.AGENCY].allowed
    d, _ = both(durable, vector, facts(jurisdiction="NL", customer_type="b2c", reminders_sent=2,
                                       written_reminders_sent=2, amount=3000.0))
    assert d[Action.FINAL_NOTICE].cap("min_days_to_pay_in_letter") == 14
    assert d[Action.FINAL_NOTICE].cap("collection_cost_scale") == pytest.approx(425.0)


def test_se_reminder_fee_only_if_agreed(durable, facts):
    row = facts(jurisdiction="SE", currency="SEK")
    assert durable.decide(row, "letter", DAY).cap("max_reminder_fee") == 0
    agreed = durable.decide(dict(row, reminder_fee_agreed=True), "letter", DAY)
    assert agreed.cap("max_reminder_fee") == 60
    assert agreed.cap("min_days_to_pay_in_letter") == 8


def test_de_caps_on_a_date(durable, facts):
    first = facts(reminders_sent=0, written_reminders_sent=0,
                  days_since_last_written_reminder=NEVER_DAYS)
    letter = durable.decide(first, Action.LETTER, DAY)
    assert letter.cap("max_reminder_fee") == 0  # first reminder is free
    assert letter.cap("max_interest_rate") == pytest.approx(1.27 + 9)
    assert letter.cap("fixed_compensation") == 40
    b2c = durable.decide(facts(customer_type="b2c", reminders_sent=2, written_reminders_sent=2),
                         "letter", DAY)
    assert b2c.cap("max_interest_rate") == pytest.approx(1.27 + 5)
    assert b2c.cap("fixed_compensation") == 0
    assert b2c.cap("max_reminder_fee") == 2.5
    # before the 2026 base rate is in the data the interest cap is unknown, not invented
    old = durable.decide(facts(), "letter", date(2025, 3, 3))
    interest = [c for c in old.caps if c.name == "max_interest_rate"]
    assert interest and interest[0].value is None and "no base_rate(DE)" in interest[0].note


@pytest.mark.parametrize("bad", [None, "16", 16.5, True, float("nan")])
def test_fail_closed_on_missing_or_wrong_type(durable, vector, facts, bad):
    row = facts(days_overdue=bad)
    d, batch = both(durable, vector, row)
    for a in REMINDERS:
        assert not d[a].allowed
        assert any("days_overdue" in h.reason for h in d[a].unresolved)
    assert d[Action.EMAIL].status == "blocked"
    assert d[Action.WAIT].allowed
    assert batch.unresolved[0].any()


def test_integral_float_is_a_valid_int(durable, facts):
    assert durable.decide(facts(days_overdue=20.0), "email", DAY).allowed


def test_missing_fact_only_blocks_when_it_matters(durable, vector, facts):
    # agency_consent is only tested together with industry == healthcare
    d, _ = both(durable, vector, facts(agency_consent=None, industry="software",
                                       final_notice_sent=True, days_since_final_notice=30))
    assert d[Action.AGENCY].allowed
    d, _ = both(durable, vector, facts(agency_consent=None, industry="healthcare",
                                       final_notice_sent=True, days_since_final_notice=30))
    assert d[Action.AGENCY].status == "blocked"
    # an unknown jurisdiction blocks (which country's law applies is not known)
    d, _ = both(durable, vector, facts(jurisdiction="de"))
    assert not d[Action.EMAIL].allowed


def test_validity_dates(durable, facts):
    row = facts(final_notice_sent=True, days_since_final_notice=30)
    assert not durable.decide(row, "agency", date(2018, 5, 24)).needs_review
    assert durable.decide(row, "agency", date(2018, 5, 25)).needs_review


def test_module_level_decide(facts):
    d = decide(facts(), "email", DAY)
    assert isinstance(d, Decision) and d.allowed
    assert set(decide_all(facts(), DAY)) == set(Action)
    assert d.to_dict()["status"] == "allowed" and d.to_dict()["action"] == "email"


def test_durable_is_correct_under_threads(durable, facts):
    rows = [facts(days_since_last_contact=k % 10, calls_last_7_days=k % 9, jurisdiction=j,
                  customer_type="b2c", region="MA" if k % 2 else "")
            for k in range(200) for j in ("US", "DE")]
    expected = [tuple(durable.decide_all(r, DAY)[a].allowed for a in Action) for r in rows]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda r: tuple(durable.decide_all(r, DAY)[a].allowed
                                            for a in Action), rows))
    assert got == expected
    assert len(set(expected)) > 1  # the rows really differ


def test_vector_shapes_and_broadcasting(vector, facts):
    n = 5
    cols = {k: np.full(n, v, dtype=object) if isinstance(v, str) else np.full(n, v)
            for k, v in facts().items()}
    cols["days_since_last_contact"] = np.array([0, 6, 7, 8, 100])
    cols["days_since_last_written_reminder"] = cols["days_since_last_contact"]
    cols["is_weekend"] = False  # 0-d: applies to every row
    allowed = vector.mask(cols, DAY)
    assert allowed.shape == (n, N_ACTIONS) and allowed.dtype == bool
    assert allowed[:, Action.WAIT].all()
    assert allowed[:, Action.EMAIL].tolist() == [False, False, True, True, True]
    batch = vector.evaluate(cols, DAY)
    assert (batch.allowed == allowed).all()
    min_gap = vector.ruleset.index("practice.min_gap")
    assert batch.vetoed_by[:2, Action.EMAIL].tolist() == [min_gap, min_gap]
    assert (batch.vetoed_by[2:, Action.EMAIL] == -1).all()
    weekend = vector.mask(dict(cols, is_weekend=True), DAY)
    assert not weekend[:, 1:].any()


def test_vector_categorical_and_date_array_match_plain(vector, ruleset):
    from legal_rules.testing import random_fact_rows

    rows, days = random_fact_rows(ruleset, 2_000, seed=3, p_missing=0.0, p_wrong=0.0)
    plain = rows_to_arrays(rows, typed=True)
    cat = dict(plain)
    for name in ("jurisdiction", "customer_type", "currency", "region", "industry"):
        cat[name] = pd.Categorical(plain[name].astype(str))
    day_arr = np.array(days, dtype="datetime64[D]")
    a = vector.evaluate(plain, day_arr)
    b = vector.evaluate(cat, day_arr)
    assert (a.allowed == b.allowed).all() and (a.fired == b.fired).all()
    one_day = vector.mask(plain, DAY)
    assert (one_day == vector.mask(plain, np.full(len(rows), np.datetime64(DAY)))).all()


def test_vector_rejects_ragged_input(vector):
    with pytest.raises(ValueError, match="different lengths"):
        vector.mask({"days_overdue": np.zeros(3), "amount": np.zeros(4)}, DAY)


@pytest.mark.parametrize("amount", [1e-05, 5e-324, -1e-07, 1e15, 999.99])
def test_float_formats_reach_durable_rules(durable, vector, facts, amount):
    # durable_rules' JSON parser rejects '1e-05' (no '.'): such floats are rewritten
    both(durable, vector, facts(amount=amount, jurisdiction="GB", currency="GBP"))


def test_invalid_unicode_is_a_wrong_value(durable, facts):
    # with 3 calls in 7 days the Massachusetts rule depends on the (invalid) region
    d = durable.decide(facts(jurisdiction="US", customer_type="b2c", region="\ud800",
                             calls_last_7_days=3),
                       "phone", DAY)
    assert d.status == "blocked" and "region" in d.unresolved[0].reason
