"""Engine messages: ids with parameters in a Decision, rendered in English or German at the
edge (``rules explain --lang``, the workspace, what-if)."""

from __future__ import annotations

import json
import pickle
from datetime import date

import pytest
from typer.testing import CliRunner

from dunning.cli import app
from engine.contract import Action
from legal_rules.messages import CATALOGUE, Message, check_catalogue, render
from legal_rules.prose import explain_text


def test_catalogue_has_both_languages_with_the_same_parameters(monkeypatch):
    assert check_catalogue() == []
    placeholders_only = {k for k, t in CATALOGUE.items() if t["en"] == t["de"]}
    assert placeholders_only == {"rule.facts_unknown", "claim.blocked"}  # no words in them
    monkeypatch.setitem(CATALOGUE, "test.broken", {"en": "{a} and {b}", "de": "{a}"})
    monkeypatch.setitem(CATALOGUE, "test.half", {"en": "only English"})
    problems = check_catalogue()
    assert problems[0].startswith("test.broken: parameters differ between languages")
    assert problems[1] == "test.half: no text in de"


def test_a_message_is_its_english_text_and_keeps_id_and_params():
    m = Message("input.unknown_fact", name="amout",
                hint=Message("hint.did_you_mean", value="amount"))
    assert m == "unknown fact 'amout'; did you mean 'amount'?"
    assert m.render("de") == "unbekannte Angabe 'amout'; gemeint ist wohl 'amount'?"
    assert m.to_dict() == {"id": "input.unknown_fact", "params": {
        "name": "amout", "hint": {"id": "hint.did_you_mean", "params": {"value": "amount"},
                                  "text": "; did you mean 'amount'?"}},
        "text": "unknown fact 'amout'; did you mean 'amount'?"}
    again = pickle.loads(pickle.dumps(m))
    assert again.id == m.id and again.render("de") == m.render("de")
    assert render("plain text from a rule file", "de") == "plain text from a rule file"
    with pytest.raises(ValueError, match="language 'fr'"):
        m.render("fr")


def test_unknown_jurisdiction_is_blocked_with_a_hint_in_both_languages(durable, facts):
    d = durable.decide(facts(jurisdiction="UK"), Action.LETTER, date(2026, 3, 2))
    assert d.status == "blocked"
    (problem,) = d.input_problems
    assert isinstance(problem, Message) and problem.id == "input.unknown_value"
    assert problem == "unknown jurisdiction 'UK'; did you mean 'GB'?"
    assert problem.render("de") == ("unbekannter Wert 'UK' für „Land des Schuldners“; "
                                    "gemeint ist wohl 'GB'?")
    # the decision stays language-neutral: JSON carries the id and parameters too
    (neutral,) = d.to_dict()["messages"]["input_problems"]
    assert neutral["id"] == "input.unknown_value" and neutral["params"]["value"] == "UK"
    json.dumps(d.to_dict(), default=str)
    xx = durable.decide(facts(jurisdiction="XX"), Action.LETTER, date(2026, 3, 2))
    assert xx.input_problems[0].id == "input.unknown_jurisdiction"
    assert xx.input_problems[0].render("de").startswith(
        "unbekanntes Land 'XX': keine Regel gilt dafür")


def test_wrong_type_and_missing_rate_read_in_german(durable, facts, ruleset):
    bad = durable.decide(facts(days_overdue="zwanzig"), Action.LETTER, date(2026, 3, 2))
    (problem,) = bad.input_problems
    assert problem == "fact 'days_overdue': expected a number, found str 'zwanzig'"
    assert problem.render("de") == ("Angabe 'days_overdue': erwartet eine Zahl, gefunden "
                                     "str 'zwanzig'")
    gap = durable.decide(facts(), Action.LETTER, date(2026, 12, 7), explain=True)
    (claim,) = gap.blocked_claims
    assert claim.startswith("max_interest_rate [de.interest_b2b]: no base_rate(DE) on "
                            "2026-12-07")
    assert "kein Wert für base_rate(DE) am 2026-12-07" in claim.render("de")
    text = explain_text(gap, ruleset, facts(), "de")
    assert "Zinsen werden nicht gefordert, bis der Zeitraum in rates.yaml ergänzt ist" in text
    assert "interest is blocked until" not in text
    assert "interest is blocked until" in explain_text(gap, ruleset, facts(), "en")
    # why a rule did not apply, kept as a message too
    reasons = dict(gap.not_fired)
    assert any(isinstance(r, Message) and r.id == "rule.condition_false"
               for r in reasons.values())


def test_rules_explain_cli_shows_engine_messages_in_the_chosen_language(tmp_path):
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"jurisdiction": "UK", "customer_type": "b2b",
                                "days_overdue": 20}))
    args = ["rules", "explain", "--facts", str(case), "--action", "letter",
            "--date", "2026-03-02", "--lang"]
    de = CliRunner().invoke(app, [*args, "de"])
    assert de.exit_code == 0, de.output
    assert "- unbekannter Wert 'UK' für „Land des Schuldners“; gemeint ist wohl 'GB'?" \
        in de.output
    assert "did you mean" not in de.output
    en = CliRunner().invoke(app, [*args, "en"])
    assert "- unknown jurisdiction 'UK'; did you mean 'GB'?" in en.output
