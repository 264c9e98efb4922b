"""Letters a lawyer would sign: legal basis in the letter's language and for its audience,
the creditor's company details, interest per half-year at each half-year's rate (shown in an
annex, refused without a rate), BGB § 288 (5) sentence 3, claims carried into the pre-agency
letter."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from pathlib import Path

import pytest

from dunning.ops.creditor import (
    EXAMPLE_PROFILE,
    Creditor,
    CreditorFileError,
    CreditorProfileError,
)
from dunning.ops.letters import (
    LANGUAGES,
    InterestRateUnknown,
    InvoiceRef,
    default_start,
    half_years,
    interest_periods,
    interest_problem,
    legal_basis_texts,
    render_letter,
)
from engine.contract import Action
from legal_rules.decision import Decision
from legal_rules.durable_eval import DurableEvaluator
from legal_rules.loader import load_rules
from legal_rules.model import CapValue

DAY = dt.date(2026, 3, 2)
CREDITOR = Creditor.from_yaml(EXAMPLE_PROFILE)
CURRENCY = {"DE": "EUR", "SE": "SEK", "FR": "EUR", "NL": "EUR", "GB": "GBP", "AT": "EUR",
            "IT": "EUR", "ES": "EUR"}
KINDS = ((Action.LETTER, 0), (Action.LETTER, 1), (Action.FINAL_NOTICE, 2), (Action.AGENCY, 3))
# English words of the rule files' internal notes and rationales; none may reach a letter in
# another language (the notes, e.g. "courts accept about EUR 1-2.50", are checked verbatim;
# statute names such as "Consumer Credit Act 1974" are proper names, not notes).
ENGLISH_NOTE_WORDS = ("courts", "accept", "rejected", "applies only", "if the", "debtor",
                      "company policy", "case law", "verify", "flat fee")

# The internal notes the issue found in German letters (whatever the rule files say now).
ISSUE_NOTES = ("courts accept about EUR 1-2.50", "flat fees above that rejected",
               "applies only if the debtor is not a consumer")


def facts(jur: str, ctype: str, reminders: int, amount: float = 3_456.78) -> dict:
    return {
        "days_overdue": 30, "days_since_last_contact": 14 if reminders else 10_000,
        "contacts_last_7_days": 0, "calls_last_7_days": 0, "reminders_sent": reminders,
        "written_reminders_sent": reminders,
        "days_since_last_written_reminder": 14 if reminders else 10_000,
        "final_notice_sent": reminders >= 3, "days_since_final_notice":
            20 if reminders >= 3 else 10_000, "disputed": False,
        "amount": amount, "currency": CURRENCY[jur], "customer_type": ctype,
        "jurisdiction": jur, "region": "", "industry": "manufacturing", "is_weekend": False,
        "is_bank_holiday": False, "limitation_passed": False, "opted_out_email": False,
        "opted_out_phone": False, "opted_out_letter": False, "agency_consent": True,
        "reminder_fee_agreed": True, "milestone_reached": True, "days_in_default": 30,
    }


def invoice(jur: str, ctype: str, lang: str, due: dt.date = dt.date(2026, 1, 31),
            amount: float = 3_456.78) -> InvoiceRef:
    return InvoiceRef(invoice_id="INV-2026-0042", customer_id="C-17", customer_name="Kunde",
                      jurisdiction=jur, customer_type=ctype, language=lang,
                      invoice_date=due - dt.timedelta(days=30), due_date=due, amount=amount,
                      open_amount=amount, currency=CURRENCY[jur])


@pytest.fixture(scope="module")
def durable():
    return DurableEvaluator(load_rules())


def letters_of(durable, ruleset, resolve, jur: str, ctype: str, lang: str):
    """Every letter kind for one jurisdiction, customer type and language (allowed ones)."""
    out = []
    for action, sent in KINDS:
        row = facts(jur, ctype, sent)
        decision = resolve(durable.decide(row, action, DAY), ruleset, row)
        if not decision.allowed:
            continue
        claims = (resolve(durable.decide(row, Action.FINAL_NOTICE, DAY), ruleset, row)
                  if action == Action.AGENCY else None)
        approval = {"status": "approved"} if decision.needs_review else None
        out.append((decision, render_letter(invoice(jur, ctype, lang), action, decision,
                                            CREDITOR, DAY, sent, ruleset, approval,
                                            claims=claims)))
    return out


def test_every_template_in_every_language_has_no_internal_note_and_fits_its_audience(
        durable, letter_ruleset, resolve_caps):
    """Each language x jurisdiction x B2B/B2C x letter kind: the legal-basis line is in the
    letter's language, carries no rule file's citation, note or rationale, and a consumer
    letter cites no provision of a rule scoped to businesses."""
    rs = letter_ruleset
    texts = legal_basis_texts()["rules"]
    notes = {m.strip() for r in rs for m in re.findall(r"\(([^()]*[a-z]{4,}[^()]*)\)",
                                                       r.citation)
             if re.search(r"\b(courts|applies|only|case law|accept)\b", m)}
    assert notes  # the rule files do carry such notes; the letters must not
    notes |= set(ISSUE_NOTES)
    b2b_only = {texts[r.id][lang] for r in rs if r.scope == "b2b" and r.id in texts
                for lang in LANGUAGES}
    b2c_ok = {texts[r.id][lang] for r in rs if r.scope != "b2b" and r.id in texts
              for lang in LANGUAGES}
    seen_langs, seen_b2c_basis, n = set(), 0, 0
    for jur in ("DE", "AT", "FR", "NL", "SE", "GB", "IT", "ES"):
        for ctype in ("b2b", "b2c"):
            for lang in LANGUAGES:
                for _, letter in letters_of(durable, rs, resolve_caps, jur, ctype, lang):
                    n += 1
                    seen_langs.add(letter.language)
                    body = letter.text + letter.html
                    for r in rs:  # internal texts of the rule files never reach a letter
                        assert r.rationale not in body, r.id
                    for note in notes:
                        assert note not in body, (jur, ctype, lang, note)
                    basis = " ".join(letter.legal_basis)
                    if lang != "en":
                        for word in ENGLISH_NOTE_WORDS:
                            assert word not in basis.lower(), (jur, ctype, lang, word, basis)
                    allowed = {t[lang] for t in texts.values()} | {
                        t[lang] for t in legal_basis_texts()["fee_credited"].values()}
                    for line in letter.legal_basis:  # only this language's texts
                        assert set(line.split("; ")) <= allowed, (lang, line)
                    if ctype == "b2c":
                        seen_b2c_basis += bool(letter.legal_basis)
                        for text in b2b_only - b2c_ok:
                            assert text not in body, (jur, lang, letter.kind, text)
    assert seen_langs == set(LANGUAGES) and n > 200 and seen_b2c_basis > 0


def test_german_consumer_letter_does_not_cite_the_business_flat_fee(durable, letter_ruleset,
                                                                    resolve_caps):
    for _, letter in letters_of(durable, letter_ruleset, resolve_caps, "DE", "b2c",
                                       "de"):
        assert "288 Abs. 5" not in letter.text and "288 Abs. 2" not in letter.text
        assert "nicht Verbraucher" not in letter.text and "consumer" not in letter.text
        if letter.amounts["interest"]:
            assert "§ 288 Abs. 1, § 247 BGB" in letter.text


def test_every_cap_rule_a_letter_can_use_has_a_text_in_every_language():
    """A letter cites the rule behind each amount it claims; a rule without a text in the
    letter's language would stop the letter (fail closed): every packaged cap rule with a
    non-zero cap of a kind a letter claims or states has all languages."""
    table = legal_basis_texts()
    claimed = {"max_interest_rate", "fixed_compensation", "max_reminder_fee",
               "collection_cost_scale", "min_days_to_pay_in_letter", "max_collection_fee"}
    for r in load_rules():
        if r.cap is None or r.cap.name not in claimed or r.cap.value in (0, 0.0):
            continue
        assert r.id in table["rules"], r.id
        assert set(table["rules"][r.id]) >= set(LANGUAGES), r.id
    for texts in (*table["fee_credited"].values(), *table["rates"].values()):
        assert set(texts) >= set(LANGUAGES)


# ------------------------------------------------------------------ interest per period
def _rate_decision(expression: str, value: float, rule_id: str, action=Action.FINAL_NOTICE,
                   extra: tuple = ()) -> Decision:
    caps = (CapValue("max_interest_rate", value, "percent", expression, rule_id, "c"), *extra)
    return Decision(action=action, as_of=DAY, allowed=True, vetoed=False,
                    needs_review=False, caps=caps)


def test_half_years_split_at_1_january_and_1_july():
    assert half_years(dt.date(2025, 5, 16), dt.date(2026, 3, 2)) == [
        (dt.date(2025, 5, 16), dt.date(2025, 6, 30)),
        (dt.date(2025, 7, 1), dt.date(2025, 12, 31)),
        (dt.date(2026, 1, 1), dt.date(2026, 3, 2))]
    assert half_years(dt.date(2026, 3, 3), dt.date(2026, 3, 2)) == []


def test_german_interest_is_owed_per_half_year_at_that_half_years_rate(letter_ruleset):
    """Due 15 May 2025, letter 2 March 2026: three periods at base rate + 9 of each
    half-year (test rates 2.27 / 1.27 / 1.27), each shown in the annex."""
    principal, due = 10_000.0, dt.date(2025, 5, 15)
    periods = interest_periods(principal, due, DAY, "base_rate(DE) + 9", letter_ruleset)
    assert [(p.start, p.end, p.days, p.rate_pct) for p in periods] == [
        (dt.date(2025, 5, 16), dt.date(2025, 6, 30), 46, pytest.approx(11.27)),
        (dt.date(2025, 7, 1), dt.date(2025, 12, 31), 184, pytest.approx(10.27)),
        (dt.date(2026, 1, 1), DAY, 61, pytest.approx(10.27))]
    for p in periods:
        assert p.amount == round(principal * p.rate_pct / 100 * p.days / 365, 2)
        assert p.rate_day == dt.date(p.start.year, 1 if p.start.month <= 6 else 7, 1)
    one_rate = round(principal * 10.27 / 100 * sum(p.days for p in periods) / 365, 2)
    assert sum(p.amount for p in periods) != one_rate  # the old single-rate figure is wrong
    d = _rate_decision("base_rate(DE) + 9", 10.27, "de.interest_b2b")
    letter = render_letter(invoice("DE", "b2b", "de", due, principal), Action.FINAL_NOTICE, d,
                           CREDITOR, DAY, 2, letter_ruleset)
    assert letter.amounts["interest"] == pytest.approx(sum(p.amount for p in periods))
    assert "Anlage: Zinsberechnung" in letter.text and "Anlage: Zinsberechnung" in letter.html
    for row in ("16.05.2025 - 30.06.2025: 46 Tage, 11,27 %", "01.07.2025 - 31.12.2025: 184 Tage",
                "Basiszinssatz (§ 247 BGB) am 01.07.2025 1,27 % + 9 Prozentpunkte"):
        assert row in letter.text
    assert letter.to_dict()["interest_periods"][0]["rate_pct"] == pytest.approx(11.27)


def test_uk_statutory_interest_keeps_the_rate_of_the_half_year_the_debt_fell_due(
        letter_ruleset):
    periods = interest_periods(5_000.0, dt.date(2025, 11, 30), DAY, "boe_rate(GB) + 8",
                               letter_ruleset)
    assert len(periods) == 2
    assert [p.rate_pct for p in periods] == [pytest.approx(12.0), pytest.approx(12.0)]
    assert {p.rate_day for p in periods} == {dt.date(2025, 7, 1)}
    d = _rate_decision("boe_rate(GB) + 8", 11.75, "uk.interest_b2b")
    letter = render_letter(invoice("GB", "b2b", "en", dt.date(2025, 11, 30), 5_000.0),
                           Action.FINAL_NOTICE, d, CREDITOR, DAY, 2, letter_ruleset)
    assert letter.amounts["interest"] == pytest.approx(sum(p.amount for p in periods))
    assert "half-year in which the debt fell due applies to the whole period" in letter.text
    assert "Bank of England reference rate on 01/07/2025 4.00 % + 8 percentage points" in \
        letter.text
    # the German base rate of the same span changes with the half-year instead
    de = interest_periods(5_000.0, dt.date(2024, 11, 30), DAY, "base_rate(DE) + 9",
                          letter_ruleset)
    assert len({p.rate_pct for p in de}) > 1


def test_a_period_without_a_rate_refuses_the_letter(letter_ruleset):
    """Due in 2023, before any (test) rate: no letter, the error names the periods."""
    with pytest.raises(InterestRateUnknown, match=r"base_rate\(DE\).*2023-.*not rendered"):
        interest_periods(1_000.0, dt.date(2023, 3, 1), DAY, "base_rate(DE) + 9",
                         letter_ruleset, "INV-1")
    d = _rate_decision("base_rate(DE) + 9", 10.27, "de.interest_b2b")
    with pytest.raises(InterestRateUnknown, match="INV-2026-0042"):
        render_letter(invoice("DE", "b2b", "de", dt.date(2023, 3, 1)), Action.FINAL_NOTICE,
                      d, CREDITOR, DAY, 2, letter_ruleset)
    # an interest cap that is itself unknown on the letter date: refused too, never "0"
    unknown = _rate_decision("base_rate(DE) + 9", None, "de.interest_b2b")
    with pytest.raises(InterestRateUnknown, match="unknown"):
        render_letter(invoice("DE", "b2b", "de"), Action.FINAL_NOTICE, unknown, CREDITOR, DAY,
                      2, letter_ruleset)
    # a fixed rate (AT consumers: 4 %) needs no table
    assert [p.rate_pct for p in interest_periods(1_000.0, dt.date(2023, 3, 1), DAY, "4",
                                                 None)] == [4.0] * 7


WITHHELD = {"de": "Verzugszinsen sind in diesem Schreiben nicht enthalten",
            "en": "Default interest is not included in this letter",
            "fr": "Les intérêts de retard ne sont pas inclus",
            "nl": "De wettelijke rente is niet in deze brief opgenomen",
            "sv": "Dröjsmålsränta ingår inte i detta brev"}


@pytest.mark.parametrize("lang", sorted(WITHHELD))
def test_an_approved_letter_without_a_rate_claims_no_interest_and_reserves_it(
        letter_ruleset, lang):
    """Due in 2023, before any (test) rate. Approved for ``rates.missing_period``: no interest
    figure, no annex, a total without interest, the reservation in the letter's language.
    Pending, or approved for another rule only: refused, never a figure."""
    d = _rate_decision("base_rate(DE) + 9", 10.27, "de.interest_b2b")
    inv = invoice("DE", "b2b", lang, dt.date(2023, 3, 1))
    why = interest_problem(inv.open_amount, inv.due_date, DAY, d, letter_ruleset,
                           inv.invoice_id)
    assert why is not None and "INV-2026-0042" in why and "base_rate(DE)" in why
    approved = {"status": "approved", "review_id": "R-1", "rule_ids": ["rates.missing_period"]}
    letter = render_letter(inv, Action.FINAL_NOTICE, d, CREDITOR, DAY, 2, letter_ruleset,
                           approval=approved)
    assert letter.interest_withheld and letter.amounts["interest"] == 0.0
    assert not letter.interest_periods and letter.interest_rate_pct is None
    assert WITHHELD[lang] in letter.text and WITHHELD[lang] in letter.html.replace("&#39;", "'")
    a = letter.amounts
    assert a["total"] == pytest.approx(a["principal"] + a["fees"] + a["compensation"])
    for other in ({**approved, "status": "pending"},
                  {**approved, "rule_ids": ["gdpr.art22_agency_review"]}, None):
        with pytest.raises(InterestRateUnknown, match="rates.missing_period"):
            render_letter(inv, Action.FINAL_NOTICE, d, CREDITOR, DAY, 2, letter_ruleset,
                          approval=other)
    # with a known rate the same approval changes nothing: the interest is claimed
    ok = invoice("DE", "b2b", lang)
    assert interest_problem(ok.open_amount, ok.due_date, DAY, d, letter_ruleset) is None
    full = render_letter(ok, Action.FINAL_NOTICE, d, CREDITOR, DAY, 2, letter_ruleset,
                         approval=approved)
    assert full.amounts["interest"] > 0 and not full.interest_withheld


def test_german_consumer_interest_runs_from_the_start_of_default(letter_ruleset):
    """BGB § 286: a consumer without the § 286 (3) notice is in default only after a
    reminder; interest runs from the first day of default (``days_in_default``), not from
    the day after the due date, and the annex says so."""
    assert default_start(DAY, 10) == dt.date(2026, 2, 21)  # 21 Feb .. 2 Mar = 10 days
    assert default_start(DAY, 1) == DAY and default_start(DAY, 0) is None
    assert default_start(DAY, None) is None
    d = _rate_decision("base_rate(DE) + 5", 6.27, "de.interest_b2c")
    inv = replace(invoice("DE", "b2c", "de"), interest_from=default_start(DAY, 10))
    letter = render_letter(inv, Action.LETTER, d, CREDITOR, DAY, 1, letter_ruleset)
    assert [(p.start, p.end, p.days) for p in letter.interest_periods] == [
        (dt.date(2026, 2, 21), DAY, 10)]
    assert letter.amounts["interest"] == pytest.approx(round(3_456.78 * 6.27 / 100 * 10 / 365,
                                                             2))
    assert "ab dem Eintritt des Verzugs am 21.02.2026 (§ 286 BGB)" in letter.text
    plain = render_letter(invoice("DE", "b2c", "de"), Action.LETTER, d, CREDITOR, DAY, 1,
                          letter_ruleset)
    assert plain.interest_periods[0].start == dt.date(2026, 2, 1)  # the day after due
    assert "ab dem Tag nach Fälligkeit" in plain.text
    en = render_letter(replace(inv, language="en"), Action.LETTER, d, CREDITOR, DAY, 1,
                       letter_ruleset)
    assert "from the start of default on 21/02/2026" in en.text


# ------------------------------------------------------------------ § 288 (5) sentence 3
def test_german_b2b_final_notice_credits_the_reminder_fee_against_the_flat_fee(
        durable, letter_ruleset, resolve_caps):
    row = facts("DE", "b2b", 2)
    d = resolve_caps(durable.decide(row, Action.FINAL_NOTICE, DAY), letter_ruleset, row)
    assert d.cap("max_reminder_fee") == 2.5 and d.cap("fixed_compensation") == 40
    ok = {"status": "approved"}  # whether or not a review rule fires for this notice
    letter = render_letter(invoice("DE", "b2b", "de"), Action.FINAL_NOTICE, d, CREDITOR, DAY,
                           2, letter_ruleset, ok)
    assert letter.amounts["fees"] == 0.0 and letter.amounts["compensation"] == 40.0
    assert letter.amounts["total"] == pytest.approx(letter.amounts["principal"]
                                                    + letter.amounts["interest"] + 40.0)
    assert "2,50 EUR wird auf die Verzugspauschale angerechnet" in letter.text
    assert "§ 288 Abs. 5 Satz 3 BGB" in letter.text
    # a consumer owes no flat fee: the (capped) reminder fee is charged, nothing credited
    row = facts("DE", "b2c", 2)
    d = resolve_caps(durable.decide(row, Action.FINAL_NOTICE, DAY), letter_ruleset, row)
    consumer = render_letter(invoice("DE", "b2c", "de"), Action.FINAL_NOTICE, d, CREDITOR,
                             DAY, 2, letter_ruleset, ok)
    assert consumer.amounts["fees"] == 2.5 and consumer.amounts["compensation"] == 0.0
    assert "angerechnet" not in consumer.text and "Satz 3" not in consumer.text


# ------------------------------------------------------------------ claims carried forward
def test_pre_agency_letter_carries_the_final_notices_interest_and_compensation(
        durable, letter_ruleset, resolve_caps):
    row = facts("DE", "b2b", 3)
    agency = resolve_caps(durable.decide(row, Action.AGENCY, DAY), letter_ruleset, row)
    final = resolve_caps(durable.decide(row, Action.FINAL_NOTICE, DAY), letter_ruleset, row)
    inv = invoice("DE", "b2b", "de")
    approval = {"status": "approved"} if agency.needs_review else None
    # the final notice as it was sent (before it was sent: 2 reminders, no final notice yet)
    sent = facts("DE", "b2b", 2)
    notice = render_letter(inv, Action.FINAL_NOTICE, resolve_caps(durable.decide(
        sent, Action.FINAL_NOTICE, DAY), letter_ruleset, sent), CREDITOR, DAY, 2,
        letter_ruleset, {"status": "approved"})
    before = render_letter(inv, Action.AGENCY, agency, CREDITOR, DAY, 3, letter_ruleset,
                           approval)  # without the carried claims: principal only
    assert before.amounts["interest"] == 0.0 and before.amounts["compensation"] == 0.0
    letter = render_letter(inv, Action.AGENCY, agency, CREDITOR, DAY, 3, letter_ruleset,
                           approval, claims=final)
    assert letter.kind == "pre_agency"
    for key in ("interest", "compensation"):
        assert letter.amounts[key] == notice.amounts[key] > 0
    assert letter.amounts["fees"] == 0.0  # no fee for the pre-agency notice itself
    assert letter.legal_basis and "Rechtsgrundlage: Verzugszinsen: § 288 Abs. 2" in letter.text
    assert "Anlage: Zinsberechnung" in letter.text
    assert "mit unserer letzten Mahnung geltend gemachten" in letter.text


# ------------------------------------------------------------------ creditor profile
def test_example_profile_is_complete_and_printed_on_every_letter():
    assert CREDITOR.missing_for_letters() == []
    d = _rate_decision("4", 4.0, "at.interest_b2c")
    letter = render_letter(invoice("AT", "b2c", "de"), Action.LETTER, d, CREDITOR, DAY, 1)
    for text in (letter.text, letter.html):
        for value in ("Amtsgericht Hamburg", "HRB 123456", "Sitz: Hamburg", "Anna Berg",
                      "Jonas Wolf", "Kontoinhaber", "BYLADEM1001",
                      "DE02 1203 0000 0000 2020 51", "Verwendungszweck: INV-2026-0042"):
            assert value in text, value


def test_a_gmbh_letter_is_refused_without_its_managing_directors_and_register():
    d = _rate_decision("4", 4.0, "at.interest_b2c")
    thin = replace(CREDITOR, managing_directors=(), register_number="", bic="")
    with pytest.raises(CreditorProfileError, match="managing_directors") as info:
        render_letter(invoice("AT", "b2c", "de"), Action.LETTER, d, thin, DAY, 1)
    for word in ("company.register_number", "bank.bic", "GmbHG § 35a"):
        assert word in str(info.value)
    # another member state: the directive's register data, any legal form
    fr = replace(CREDITOR, jurisdiction="FR", legal_form="SAS", managing_directors=())
    assert fr.missing_for_letters() == []
    # a jurisdiction or German legal form without recorded requirements: refused
    for unknown, match in ((replace(CREDITOR, jurisdiction="US"), "jurisdiction US"),
                           (replace(CREDITOR, legal_form="AG"), "legal form 'AG' in DE"),
                           (replace(CREDITOR, jurisdiction=""), "jurisdiction")):
        with pytest.raises(CreditorProfileError, match=match):
            render_letter(invoice("AT", "b2c", "de"), Action.LETTER, d, unknown, DAY, 1)


def test_creditor_file_errors_name_file_line_and_field_all_at_once(tmp_path: Path):
    bad = tmp_path / "creditor.yaml"
    bad.write_text(
        "name: Nordlicht GmbH\n"              # 1
        "jurisdiction: de\n"                  # 2
        "iban: DE02120300000000202051\n"      # 3 (belongs in bank:)
        "company:\n"                          # 4
        "  legal_form: GmbH\n"                # 5
        "  managing_director: Anna Berg\n"    # 6 typo
        "bank:\n"                             # 7
        "  iban: DE03 1203 0000 0000 2020 51\n"  # 8 wrong check digits
        "  bic: NOTABIC\n"                    # 9
        "payment_reference: '{invoice}'\n"    # 10
        "days_to_pay: ten\n", encoding="utf-8")  # 11
    with pytest.raises(CreditorFileError) as info:
        Creditor.from_yaml(bad)
    msg = str(info.value)
    assert msg.startswith("7 problems in the creditor file (nothing loaded):")
    for line, field, words in ((2, "jurisdiction", "two-letter"),
                               (3, "iban", "`bank:` section"),
                               (6, "company.managing_director", "did you mean "
                                                                "'managing_directors'"),
                               (8, "bank.iban", "check digits"), (9, "bank.bic", "BIC"),
                               (10, "payment_reference", "{invoice_id}"),
                               (11, "days_to_pay", "whole number")):
        assert f"{bad}:{line}: {field}: " in msg and words in msg, (line, field)
    with pytest.raises(CreditorProfileError, match="placeholders"):
        replace(CREDITOR, payment_reference="{invoice_id.__class__}").reference_for("I", "C")
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(CreditorFileError, match=r"creditor.yaml:\d+: "):
        Creditor.from_yaml(bad)


def test_the_demo_store_gets_the_example_profile_and_keeps_an_edited_one(tmp_path: Path):
    from dunning.pipeline import demo_creditor_profile

    path = demo_creditor_profile(tmp_path)
    assert Creditor.from_yaml(path).missing_for_letters() == []
    path.write_text(path.read_text(encoding="utf-8").replace("Anna Berg", "Eva Roth"),
                    encoding="utf-8")
    demo_creditor_profile(tmp_path)
    assert Creditor.from_yaml(path).managing_directors == ("Eva Roth", "Jonas Wolf")


def test_creditor_check_command(tmp_path: Path):
    from typer.testing import CliRunner

    from dunning.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["creditor", "check", str(EXAMPLE_PROFILE)])
    assert ok.exit_code == 0 and "OK for letters" in ok.output and "GmbHG § 35a" in ok.output
    thin = tmp_path / "creditor.yaml"
    thin.write_text("name: X\njurisdiction: DE\ncompany: {legal_form: GmbH}\n",
                    encoding="utf-8")
    bad = runner.invoke(app, ["creditor", "check", str(thin)])
    assert bad.exit_code == 2 and "company.managing_directors" in bad.output
    assert "Traceback" not in bad.output
