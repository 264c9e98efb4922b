"""`dunning rules explain` as prose in English and German: the decision, each rule that
applied with title, citation, rationale and version, the caps with their basis, the facts
used with personal data marked, and no operator jargon."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dunning.cli import app
from legal_rules.facts import FACTS
from legal_rules.loader import load_rules, packaged_rules_dir
from legal_rules.model import All, Always, AnyOf, Compare, Not
from legal_rules.prose import condition_text
from legal_rules.testing import NEUTRAL_FACTS

runner = CliRunner()
CASE = dict(NEUTRAL_FACTS, jurisdiction="DE", customer_type="b2b", contacts_last_7_days=2,
            reminders_sent=1, currency="EUR")


def explain(tmp_path: Path, *args: str):  # noqa: ANN202
    f = tmp_path / "case.json"
    f.write_text(json.dumps(CASE), "utf-8")
    return runner.invoke(app, ["rules", "explain", "--facts", str(f), "--date", "2026-03-02",
                               *args], terminal_width=250)


def _block(text: str, rule_id: str) -> str:
    """The lines of the rule ``rule_id`` in the 'rules that applied' part."""
    start = text.index(f"({rule_id}):")
    end = text.find("\n- ", start)
    return text[start:end]


def test_english_prose_has_rule_rationale_version_caps_and_personal_facts(tmp_path):
    res = explain(tmp_path, "-a", "email")
    assert res.exit_code == 0, res.output
    text = res.output
    rule = load_rules().rule("de.proportionality")
    assert text.startswith("Decision of 2026-03-02 on the action “email”: NOT ALLOWED")
    block = _block(text, "de.proportionality")
    assert "forbids this action" in block
    assert "Applies because: contacts last 7 days is at least 2." in block
    assert f"Legal basis: {rule.citation}." in block
    assert " ".join(rule.rationale.split()) in block
    assert "Kind: company policy." in block
    sha = hashlib.sha256((packaged_rules_dir() / "de.yaml").read_bytes()).hexdigest()[:12]
    assert f"in force from {rule.valid_from}; file de.yaml, sha256 {sha}" in block
    assert re.search(r"^- jurisdiction: DE \[personal data\]$", text, re.M)
    assert re.search(r"^- days overdue: 20$", text, re.M)  # used, not personal
    # no operator names, no raw conditions
    for jargon in (" ge ", " eq ", " lt ", "when:", "condition false", "True", "False"):
        assert jargon not in text, jargon
    res = explain(tmp_path, "-a", "final_notice")
    caps = res.output[res.output.index("Limits on what may be claimed:"):]
    assert re.search(r"^- reminder fee: at most 2\.5 EUR \(basis: BGB §§ 280, 286; rule "
                     r"de\.later_reminder_fee\)$", caps, re.M)
    assert "interest margin over the base rate: at least 8 pp" in caps  # the EU floor
    assert "interest margin over the base rate: at most 9 pp" in caps   # the DE margin


def test_german_prose_translates_the_fixed_phrases_only(tmp_path):
    res = explain(tmp_path, "-a", "email", "--lang", "de")
    assert res.exit_code == 0, res.output
    text = res.output
    assert text.startswith("Entscheidung vom 2026-03-02 über die Maßnahme „E-Mail“: "
                           "NICHT ZULÄSSIG")
    block = _block(text, "de.proportionality")
    assert "Greift, weil: Erinnerungen in den letzten 7 Tagen ist mindestens 2." in block
    assert "Art: Unternehmensrichtlinie." in block
    # the rule's own text stays in its file's language
    assert load_rules().rule("de.proportionality").title in text
    assert re.search(r"^- Land des Schuldners: DE \[personenbezogen\]$", text, re.M)
    assert "Bei Verbrauchern ist jede Tatsache" in text
    res = explain(tmp_path, "-a", "email", "--lang", "fr")
    assert res.exit_code == 2 and "expected one of en, de" in res.output


def test_json_output_is_unchanged(tmp_path):
    out = json.loads(explain(tmp_path, "-a", "email", "--json").output)
    assert out["status"] == "vetoed"
    assert "de.proportionality" in {h["rule_id"] for h in out["fired"]}


@pytest.mark.parametrize(("cond", "en", "de"), [
    (Always(), "always", "immer"),
    (Compare("days_overdue", "ge", 30), "days overdue is at least 30",
     "Tage seit Fälligkeit ist mindestens 30"),
    (Compare("amount", "lt", 10.5), "amount is less than 10.5",
     "offener Betrag ist kleiner als 10.5"),
    (Compare("disputed", "eq", True), "disputed: yes", "Rechnung bestritten: ja"),
    (Compare("disputed", "ne", True), "disputed: no", "Rechnung bestritten: nein"),
    (Compare("jurisdiction", "in", ("DE", "AT")), "jurisdiction is one of DE, AT",
     "Land des Schuldners ist eines von DE, AT"),
    (Not(AnyOf((Compare("reminders_sent", "le", 1), Compare("region", "ne", "BY")))),
     "not (reminders sent is at most 1 or region is not BY)",
     "nicht (bisherige Erinnerungen ist höchstens 1 oder Region des Schuldners ist nicht BY)"),
    (All((Compare("calls_last_7_days", "gt", 6),)), "calls last 7 days is more than 6",
     "Anrufe in den letzten 7 Tagen ist größer als 6"),
])
def test_conditions_in_words(cond, en, de):
    assert condition_text(cond, "en") == en
    assert condition_text(cond, "de") == de


def test_personal_facts_are_the_minimal_justified_set():
    """Facts that describe the debtor as a person (who, where, what they chose or said);
    a new fact must decide this explicitly (this test then fails)."""
    assert {n for n, f in FACTS.items() if f.personal} == {
        "customer_type", "jurisdiction", "region", "disputed", "opted_out_email",
        "opted_out_phone", "opted_out_letter", "agency_consent", "days_since_conversation",
        "promise_to_pay_pending", "local_hour"}
