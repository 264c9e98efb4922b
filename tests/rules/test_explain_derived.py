"""`dunning rules explain --facts`: date facts derived, contradictions refused, --neutral, and
the action carried by the facts file."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from dunning.cli import app
from legal_rules.loader import load_rules
from legal_rules.model import TestCase
from legal_rules.testing import NEUTRAL_FACTS, case_facts, neutral_facts

runner = CliRunner()


def explain(tmp_path: Path, facts: dict[str, Any], *args: str) -> Any:
    f = tmp_path / "case.json"
    f.write_text(json.dumps(facts), "utf-8")
    return runner.invoke(app, ["rules", "explain", "--facts", str(f), *args],
                         terminal_width=250)


def as_json(res: Any) -> dict[str, Any]:
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_weekend_is_computed_and_a_contradiction_refused(tmp_path):
    case = {"jurisdiction": "DE", "customer_type": "b2b", "action": "letter"}
    out = as_json(explain(tmp_path, case, "--date", "2026-03-08", "--neutral", "--json"))
    assert out["facts_derived_from_date"]["is_weekend"] is True  # a Sunday
    assert out["status"] == "vetoed" and "practice.no_weekend" in [h["rule_id"]
                                                                    for h in out["fired"]]
    res = explain(tmp_path, dict(case, is_weekend=False), "--date", "2026-03-08", "--neutral")
    assert res.exit_code == 2
    assert "is_weekend is false, but 2026-03-08 is a Sunday, which gives true" in res.output
    out = as_json(explain(tmp_path, case, "--date", "2026-03-09", "--neutral", "--json"))
    assert out["status"] == "allowed" and out["facts_derived_from_date"]["is_weekend"] is False


def test_bank_holiday_depends_on_the_region(tmp_path):
    # 6 January (Epiphany) is a holiday in Bavaria, not in North Rhine-Westphalia
    case = {"jurisdiction": "DE", "customer_type": "b2b", "action": "email"}
    by = as_json(explain(tmp_path, dict(case, region="BY"), "--date", "2026-01-06",
                         "--neutral", "--json"))
    nw = as_json(explain(tmp_path, dict(case, region="NW"), "--date", "2026-01-06",
                         "--neutral", "--json"))
    assert by["facts_derived_from_date"]["is_bank_holiday"] is True and by["status"] == "vetoed"
    assert nw["facts_derived_from_date"]["is_bank_holiday"] is False
    assert nw["status"] == "allowed"
    res = explain(tmp_path, dict(case, region="BY", is_bank_holiday=False), "--date",
                  "2026-01-06", "--neutral")
    assert res.exit_code == 2 and "is_bank_holiday is false" in res.output


def test_days_overdue_and_limitation_from_the_due_date(tmp_path):
    case = {"jurisdiction": "DE", "customer_type": "b2b", "action": "final_notice",
            "due_date": "2022-06-30", "reminders_sent": 2}
    out = as_json(explain(tmp_path, case, "--date", "2026-03-02", "--neutral", "--json"))
    derived = out["facts_derived_from_date"]
    assert derived["days_overdue"] == (date(2026, 3, 2) - date(2022, 6, 30)).days
    # DE: 3 years from the end of 2022 -> time-barred since 1 January 2026
    assert derived["limitation_passed"] is True and "de.time_barred" in [
        h["rule_id"] for h in out["fired"]]
    out = as_json(explain(tmp_path, case, "--date", "2025-12-31", "--neutral", "--json"))
    assert out["facts_derived_from_date"]["limitation_passed"] is False
    # days_overdue given instead of the due date: the limitation follows from it too
    given = {k: v for k, v in case.items() if k != "due_date"} | {"days_overdue": 1340}
    out = as_json(explain(tmp_path, given, "--date", "2026-03-02", "--neutral", "--json"))
    assert out["facts_derived_from_date"]["limitation_passed"] is True
    res = explain(tmp_path, dict(case, days_overdue=5), "--date", "2026-03-02", "--neutral")
    assert res.exit_code == 2 and "days_overdue is 5, but due 2022-06-30" in res.output
    res = explain(tmp_path, dict(case, due_date="30.06.2022"), "--date", "2026-03-02")
    assert res.exit_code == 2 and "dates are written 2026-12-31" in res.output


def test_the_facts_file_carries_the_action(tmp_path):
    case = {"jurisdiction": "DE", "customer_type": "b2b", "action": "phone"}
    out = as_json(explain(tmp_path, case, "--date", "2026-03-02", "--neutral", "--json"))
    assert out["action"] == "phone"  # one decision, not all five
    res = explain(tmp_path, case, "--date", "2026-03-02", "--neutral", "--action", "email")
    assert res.exit_code == 2 and "differs from the action 'phone'" in res.output
    res = explain(tmp_path, dict(case, action="sms"), "--date", "2026-03-02", "--neutral")
    assert res.exit_code == 2 and "unknown channel 'sms'" in res.output


def test_without_neutral_missing_facts_block_and_neutral_needs_the_debtor(tmp_path):
    case = {"jurisdiction": "DE", "customer_type": "b2b", "action": "letter"}
    out = as_json(explain(tmp_path, case, "--date", "2026-03-02", "--json"))
    assert out["status"] == "blocked" and out["facts_neutral"] == []
    res = explain(tmp_path, {"action": "letter"}, "--date", "2026-03-02", "--neutral")
    assert res.exit_code == 2 and "not jurisdiction or customer_type" in res.output
    out = as_json(explain(tmp_path, case, "--date", "2026-03-02", "--neutral", "--json"))
    assert "disputed" in out["facts_neutral"] and "is_weekend" not in out["facts_neutral"]


def test_neutral_values_are_those_of_the_inline_tests():
    ruleset = load_rules()
    rule = ruleset.rule("de.interest_b2b")
    assert neutral_facts("DE", "b2b") == case_facts(rule, TestCase(facts={}, expect="fires"))
    gb = ruleset.rule("uk.time_barred")
    assert neutral_facts("GB", "b2b") == case_facts(gb, TestCase(facts={}, expect="fires"))
    assert set(neutral_facts("DE", "b2c")) == set(NEUTRAL_FACTS)


def test_mistakes_in_a_case_file_are_explained_in_the_language_asked_for(tmp_path):
    """`--lang de` gives a German reader German errors for the case file too (exit 2, no
    trace): a misspelt fact, a contradicting weekday, a date written another way, a reminder
    history that cannot be; the English texts are the same messages."""
    case = {"jurisdiction": "DE", "customer_type": "b2b", "action": "letter"}
    res = explain(tmp_path, dict(case, amout=5), "--date", "2026-03-09", "--lang", "de")
    assert res.exit_code == 2 and "unbekannte Angabe(n) amout" in res.output
    assert "gemeint ist wohl 'amount'" in res.output and "Traceback" not in res.output
    res = explain(tmp_path, dict(case, is_weekend=False), "--date", "2026-03-08", "--neutral",
                  "--lang", "de")
    assert res.exit_code == 2
    assert ("is_weekend ist false, aber der 2026-03-08 ist ein Sonntag, daraus folgt true"
            in res.output)
    res = explain(tmp_path, dict(case, due_date="08.03.2026"), "--date", "2026-03-09",
                  "--lang", "de")
    assert res.exit_code == 2 and "ein Datum wird 2026-12-31 geschrieben" in res.output
    res = explain(tmp_path, dict(case, reminders_sent=1, written_reminders_sent=2),
                  "--date", "2026-03-09", "--neutral", "--lang", "de")
    assert res.exit_code == 2 and "die Mahnhistorie ist nicht stimmig" in res.output
    assert "mehr als reminders_sent 1" in res.output
    res = explain(tmp_path, dict(case, reminders_sent=1, written_reminders_sent=2),
                  "--date", "2026-03-09", "--neutral")
    assert res.exit_code == 2 and "the reminder history does not add up" in res.output
