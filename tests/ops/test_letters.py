"""Letters: every figure and required content comes from the rule caps of the decision."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from dunning.ops.creditor import EXAMPLE_PROFILE
from dunning.ops.letters import (
    Creditor,
    InvoiceRef,
    compute_amounts,
    format_money,
    html_to_pdf,
    legal_basis_texts,
    render_letter,
)
from engine.contract import Action
from legal_rules.durable_eval import DurableEvaluator
from legal_rules.loader import load_rules
from legal_rules.model import bik_collection_costs

DAY = dt.date(2026, 3, 2)  # a Monday, after the 2026 base rates take effect
CREDITOR = replace(Creditor.from_yaml(EXAMPLE_PROFILE), reminder_fee=5.0, days_to_pay=7)
CURRENCY = {"DE": "EUR", "SE": "SEK", "FR": "EUR", "NL": "EUR", "GB": "GBP", "AT": "EUR"}
LANG = {"DE": "de", "SE": "sv", "FR": "fr", "NL": "nl", "GB": "en", "AT": "de"}


class _Evaluator:
    """The packaged rules in durable_rules; caps resolved with the test rate table
    (conftest.LETTER_TEST_RATES), so the figures do not depend on rates.yaml's periods."""

    def __init__(self, ruleset, resolve) -> None:
        self.durable = DurableEvaluator(load_rules())
        self.ruleset, self.resolve = ruleset, resolve

    def decide(self, row: dict, action: Action, day: dt.date):
        return self.resolve(self.durable.decide(row, action, day), self.ruleset, row)


@pytest.fixture(scope="module")
def evaluator(letter_ruleset, resolve_caps):
    return _Evaluator(letter_ruleset, resolve_caps)


def facts(jur: str, ctype: str, reminders: int, amount: float, **over) -> dict:
    base = {
        "days_overdue": 30, "days_since_last_contact": 14 if reminders else 10_000,
        "contacts_last_7_days": 0, "calls_last_7_days": 0, "reminders_sent": reminders,
        "written_reminders_sent": reminders,
        "days_since_last_written_reminder": 14 if reminders else 10_000,
        "final_notice_sent": False, "days_since_final_notice": 10_000, "disputed": False,
        "amount": amount, "currency": CURRENCY[jur], "customer_type": ctype,
        "jurisdiction": jur, "region": "", "industry": "manufacturing", "is_weekend": False,
        "is_bank_holiday": False, "limitation_passed": False, "opted_out_email": False,
        "opted_out_phone": False, "opted_out_letter": False, "agency_consent": True,
        "reminder_fee_agreed": False, "milestone_reached": True, "days_in_default": 30,
    }
    return base | over


def invoice(jur: str, ctype: str, amount: float) -> InvoiceRef:
    return InvoiceRef(invoice_id="INV-2026-0042", customer_id="C-17",
                      customer_name="Kund Exempel AB", jurisdiction=jur, customer_type=ctype,
                      language=LANG[jur], invoice_date=dt.date(2026, 1, 1),
                      due_date=dt.date(2026, 1, 31), amount=amount, open_amount=amount,
                      currency=CURRENCY[jur])


CASES = [
    # jurisdiction, customer type, reminders before, action, extra facts
    ("DE", "b2b", 0, Action.LETTER, {}),
    ("DE", "b2c", 1, Action.LETTER, {}),
    ("DE", "b2b", 2, Action.FINAL_NOTICE, {}),
    ("SE", "b2b", 0, Action.LETTER, {"reminder_fee_agreed": True}),
    ("SE", "b2c", 0, Action.LETTER, {"reminder_fee_agreed": False}),
    ("FR", "b2b", 1, Action.LETTER, {}),
    ("FR", "b2c", 2, Action.FINAL_NOTICE, {}),
    ("NL", "b2c", 2, Action.FINAL_NOTICE, {}),
    ("NL", "b2b", 1, Action.LETTER, {}),
    ("GB", "b2b", 1, Action.LETTER, {}),
    ("GB", "b2c", 2, Action.FINAL_NOTICE, {}),
    ("AT", "b2b", 1, Action.LETTER, {}),
    ("AT", "b2c", 2, Action.FINAL_NOTICE, {}),
]


@pytest.mark.parametrize("jur, ctype, sent, action, extra", CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[3].channel}" for c in CASES])
def test_letter_contents_follow_the_rule_caps(evaluator, jur, ctype, sent, action, extra):
    amount = 3_456.78
    decision = evaluator.decide(facts(jur, ctype, sent, amount, **extra), action, DAY)
    assert decision.allowed, decision.status
    letter = render_letter(invoice(jur, ctype, amount), action, decision, CREDITOR, DAY,
                           reminders_sent=sent, ruleset=evaluator.ruleset)
    lang, cur = LANG[jur], CURRENCY[jur]
    a = letter.amounts

    # Fixed compensation exactly as the cap says (0 where the law gives none).
    comp = decision.cap("fixed_compensation")
    assert a["compensation"] == (0.0 if comp is None else comp)
    # Fee only where a cap allows it, never above the cap, and only what the fixed
    # compensation does not already cover (BGB § 288 (5) sentence 3; directive art. 6(3)).
    fee_cap = decision.cap("max_reminder_fee")
    fee = 0.0 if fee_cap is None else min(CREDITOR.reminder_fee, fee_cap)
    assert a["fees"] == round(fee - min(fee, a["compensation"]), 2)
    # Interest at the capped rate of the letter's half-year (all of the overdue period lies in
    # 2026's first half), from the day after the due date.
    rate = decision.cap("max_interest_rate")
    if rate is not None:
        assert letter.interest_rate_pct == pytest.approx(rate)
        days = (DAY - dt.date(2026, 1, 31)).days
        assert [(p.start, p.end, p.days) for p in letter.interest_periods] == \
            [(dt.date(2026, 2, 1), DAY, days)]
        assert a["interest"] == pytest.approx(round(amount * rate / 100 * days / 365, 2))
    elif decision.cap("interest_rate_pp_over_base") is None:
        assert a["interest"] == 0.0 and letter.interest_rate_pct is None
    # Announced collection costs: the cap's scale value, limited by a collection-fee cap.
    scale = decision.cap("collection_cost_scale")
    expected_costs = scale or 0.0
    if decision.cap("max_collection_fee") is not None:
        expected_costs = min(expected_costs, decision.cap("max_collection_fee"))
    assert letter.announced_costs == round(expected_costs, 2)  # in cents
    # Days to pay: at least the legal minimum.
    min_days = decision.cap("min_days_to_pay_in_letter") or 0
    assert (letter.pay_by - DAY).days == max(CREDITOR.days_to_pay, int(min_days))
    assert a["total"] == pytest.approx(a["principal"] + a["interest"] + a["fees"]
                                       + a["compensation"])

    # Required contents: creditor identity, invoice reference, principal / interest / costs
    # split with the amounts, the pay-by date, the legal basis of every cap used.
    for text in (letter.text, letter.html):
        assert CREDITOR.name in text and "INV-2026-0042" in text
        for key in ("principal", "interest", "fees", "total"):
            assert format_money(a[key], cur, lang) in text
        if a["compensation"]:
            assert format_money(a["compensation"], cur, lang) in text
        if letter.announced_costs:
            assert format_money(letter.announced_costs, cur, lang) in text
        assert letter.pay_by.strftime("%Y") in text
    # The legal basis of every amount claimed, in the letter's language (never the rule
    # file's English citation with its notes); nothing claimed -> not cited.
    texts = legal_basis_texts()["rules"]
    claimed = {"max_interest_rate": a["interest"], "fixed_compensation": a["compensation"],
               "max_reminder_fee": a["fees"], "collection_cost_scale": letter.announced_costs,
               "min_days_to_pay_in_letter": 1}
    for c in decision.caps:
        if c.name in claimed and c.value and claimed[c.name]:
            assert texts[c.rule_id][lang] in letter.text, c.rule_id
            assert texts[c.rule_id][lang] in letter.html, c.rule_id
    assert letter.legal_basis or not any(claimed[k] for k in claimed if k !=
                                         "min_days_to_pay_in_letter")
    # The company details and where to pay (the creditor profile).
    for text in (letter.text, letter.html):
        for value in (CREDITOR.register_court, CREDITOR.register_number, CREDITOR.seat,
                      *CREDITOR.managing_directors, CREDITOR.iban, CREDITOR.bic,
                      CREDITOR.account_holder):
            assert value in text
        assert letter.payment_reference == "INV-2026-0042"
    assert letter.language == lang


def test_german_first_reminder_is_free_and_later_one_is_capped(evaluator):
    first = evaluator.decide(facts("DE", "b2b", 0, 500.0), Action.LETTER, DAY)
    later = evaluator.decide(facts("DE", "b2c", 1, 500.0), Action.LETTER, DAY)
    inv = invoice("DE", "b2b", 500.0)
    rs = evaluator.ruleset
    assert compute_amounts(inv, first, CREDITOR, DAY, rs)["amounts"]["fees"] == 0.0
    assert first.cap("max_reminder_fee") == 0.0
    fee = compute_amounts(invoice("DE", "b2c", 500.0), later, CREDITOR, DAY,
                          rs)["amounts"]["fees"]
    assert 0 < fee <= later.cap("max_reminder_fee") < CREDITOR.reminder_fee


def test_swedish_fee_only_if_agreed(evaluator):
    inv = invoice("SE", "b2c", 900.0)
    rich = replace(CREDITOR, reminder_fee=500.0)
    agreed = evaluator.decide(facts("SE", "b2c", 0, 900.0, reminder_fee_agreed=True),
                              Action.LETTER, DAY)
    not_agreed = evaluator.decide(facts("SE", "b2c", 0, 900.0), Action.LETTER, DAY)
    rs = evaluator.ruleset
    assert compute_amounts(inv, agreed, rich, DAY, rs)["amounts"]["fees"] == \
        agreed.cap("max_reminder_fee") > 0
    assert compute_amounts(inv, not_agreed, rich, DAY, rs)["amounts"]["fees"] == 0.0


def test_dutch_consumer_fourteen_day_letter_announces_bik_costs(evaluator):
    amount = 7_250.0
    d = evaluator.decide(facts("NL", "b2c", 2, amount), Action.FINAL_NOTICE, DAY)
    letter = render_letter(invoice("NL", "b2c", amount), Action.FINAL_NOTICE, d, CREDITOR, DAY,
                           reminders_sent=2)
    assert d.cap("min_days_to_pay_in_letter") is not None
    assert (letter.pay_by - DAY).days >= d.cap("min_days_to_pay_in_letter")
    assert letter.announced_costs == round(bik_collection_costs(amount), 2)
    assert letter.amounts["fees"] == 0.0  # the 14-day letter itself is free
    assert "Veertiendagenbrief" in letter.text


def test_vetoed_action_gets_no_letter(evaluator):
    d = evaluator.decide(facts("DE", "b2b", 1, 100.0, disputed=True), Action.LETTER, DAY)
    assert not d.allowed
    with pytest.raises(Exception, match="no letter"):
        render_letter(invoice("DE", "b2b", 100.0), Action.LETTER, d, CREDITOR, DAY)


def test_pdf_output(evaluator, tmp_path):
    d = evaluator.decide(facts("FR", "b2b", 1, 1200.0), Action.LETTER, DAY)
    letter = render_letter(invoice("FR", "b2b", 1200.0), Action.LETTER, d, CREDITOR, DAY,
                           reminders_sent=1, ruleset=evaluator.ruleset)
    pdf = html_to_pdf(letter.html, tmp_path / "l.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 1000
    assert not list(tmp_path.glob("*.tmp"))  # atomic


def test_letter_numbers_written_reminders_not_calls(db, tmp_path, plant_actions,
                                                    letter_ruleset):
    """One letter and three call attempts before: the next letter is the 2nd reminder."""
    import datetime as dt

    from dunning.ops.creditor import EXAMPLE_PROFILE
    from dunning.ops.letters import letters_for
    from dunning.ops.recommend import invoice_state
    from engine.store import Store

    day = dt.date(2024, 12, 3)  # a Tuesday
    state = invoice_state(Store(db).tables(as_of=day), day)
    pick = state[(state["days_overdue"] > 30) & ~state["disputed_now"]
                 & state["reminders_sent"].eq(0) & state["jurisdiction"].ne("DE")
                 & state["jurisdiction"].isin(["GB", "FR", "AT", "NL", "SE"])]
    inv = str(pick["invoice_id"].iloc[0])
    plant_actions(db, [(inv, "letter", day - dt.timedelta(days=20))]
                  + [(inv, "phone", day - dt.timedelta(days=k)) for k in (1, 2, 3)], tmp_path)
    (letter,) = letters_for(Store(db), day, Creditor.from_yaml(EXAMPLE_PROFILE),
                            actions={inv: Action.LETTER}, ruleset=letter_ruleset)
    subject = {"de": "{n}. Mahnung", "en": "Payment reminder ({n})",
               "fr": "Relance de paiement ({n})", "nl": "Betalingsherinnering ({n})",
               "sv": "Betalningspåminnelse ({n})"}[letter.language]
    assert subject.format(n=2) in letter.text, letter.text[:300]
    assert subject.format(n=5) not in letter.text
