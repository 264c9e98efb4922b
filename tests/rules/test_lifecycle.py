"""A legal team's loop: its file replaces the packaged one of the same name; `check` finds
overlapping rates (error), gaps and soon-ending rates and contradicting rules (warnings);
every rule says whether it is law or company policy."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dunning.cli import app
from legal_rules.lint import contradictions, rate_warnings
from legal_rules.loader import RuleFileError, layered_files, load_rules, packaged_rules_dir

runner = CliRunner()


def run(*args: str):  # noqa: ANN201
    return runner.invoke(app, ["rules", *args], terminal_width=250)


@pytest.fixture()
def team_de(tmp_path: Path) -> Path:
    """The team's copy of de.yaml with a stricter contact threshold (1 instead of 2)."""
    team = tmp_path / "team"
    team.mkdir()
    text = (packaged_rules_dir() / "de.yaml").read_text("utf-8")
    old = "when: {fact: contacts_last_7_days, op: ge, value: 2}"
    assert old in text
    text = text.replace(old, "when: {fact: contacts_last_7_days, op: ge, value: 1}")
    text = text.replace("{facts: {contacts_last_7_days: 2}, expect: fires, decision: vetoed}",
                        "{facts: {contacts_last_7_days: 1}, expect: fires, decision: vetoed}")
    text = text.replace("{facts: {contacts_last_7_days: 1}, expect: does_not_fire}",
                        "{facts: {contacts_last_7_days: 0}, expect: does_not_fire}")
    (team / "de.yaml").write_text(text, "utf-8")
    return team


def test_team_file_replaces_the_packaged_one(team_de):
    files = layered_files([str(team_de / "de.yaml")])
    assert [f for f in files if f.name == "de.yaml"] == [team_de / "de.yaml"]
    assert len(files) == len(load_rules().files)
    res = run("check", str(team_de), "--with-packaged")
    assert res.exit_code == 0, res.output
    assert "de.yaml replaces the packaged de.yaml" in res.output
    res = run("test", str(team_de), "--with-packaged")
    assert res.exit_code == 0 and "PASS de.proportionality (2/2)" in res.output, res.output
    facts = team_de / "case.json"
    facts.write_text(json.dumps({"jurisdiction": "DE", "customer_type": "b2b",
                                 "contacts_last_7_days": 1, "action": "email"}), "utf-8")
    res = run("explain", "--facts", str(facts), "--date", "2026-03-02", "--neutral", "--json",
              "--rules", str(team_de / "de.yaml"))
    out = json.loads(res.output)
    assert out["status"] == "vetoed" and [h["rule_id"] for h in out["fired"]] == [
        "de.proportionality"]
    res = run("explain", "--facts", str(facts), "--date", "2026-03-02", "--neutral", "--json")
    assert json.loads(res.output)["status"] == "allowed"  # the packaged threshold is 2


RATES = """\
rates:
  - {name: base_rate, jurisdiction: DE, value: 1.27, valid_from: 2026-01-01,
     valid_to: 2026-06-30, citation: "BGB § 247"}
  - {name: base_rate, jurisdiction: DE, value: 3.62, valid_from: 2026-03-01,
     valid_to: 2026-12-31, citation: "BGB § 247"}
"""


def test_overlapping_rate_periods_are_an_error(tmp_path):
    f = tmp_path / "rates.yaml"
    f.write_text(RATES, "utf-8")
    with pytest.raises(RuleFileError) as exc:
        load_rules(f)
    (p,) = exc.value.problems
    assert p.line == 4 and p.field == "valid_from"
    assert "base_rate(DE) 3.62 from 2026-03-01 overlaps the period 2026-01-01..2026-06-30 " \
           "(1.27)" in p.message
    res = run("check", str(f))
    assert res.exit_code == 1 and f"{f}:4: valid_from:" in res.output


def test_rate_gaps_and_rates_ending_soon_are_warnings(tmp_path):
    f = tmp_path / "rates.yaml"
    f.write_text(RATES.replace("2026-03-01", "2026-08-01"), "utf-8")
    rates = load_rules(f).rates
    warnings = rate_warnings(rates, date(2026, 3, 2))
    assert len(warnings) == 1 and "no base_rate(DE) from 2026-07-01 to 2026-07-31" in warnings[0]
    soon = rate_warnings(rates, date(2026, 11, 15))  # ends 2026-12-31: within 60 days
    assert any("base_rate(DE) ends on 2026-12-31" in w for w in soon)
    assert not any("ends on" in w for w in rate_warnings(rates, date(2026, 10, 31)))
    res = run("check", str(f))
    assert res.exit_code == 0 and "warning:" in res.output and "from 2026-07-01" in res.output


CONTRADICTING = """\
rules:
  - id: team.no_agency_public
    title: No agency for public bodies
    jurisdiction: DE
    scope: both
    applies_to: [agency]
    when: {fact: industry, op: eq, value: public_sector}
    effect: veto
    kind: company_policy
    citation: "Company policy"
    valid_from: 2020-01-01
    rationale: test
    tests:
      - {facts: {industry: public_sector}, expect: fires}
      - {facts: {industry: software}, expect: does_not_fire}
"""


def test_check_finds_contradicting_rules(tmp_path):
    f = tmp_path / "team.yaml"
    f.write_text(CONTRADICTING, "utf-8")
    ruleset = load_rules(layered_files([str(f)]))
    found = [w for w in contradictions(ruleset) if "team.no_agency_public" in w]
    # public_sector.agency_review asks for review on exactly these cases: it never happens
    assert len(found) == 1 and "public_sector.agency_review (review)" in found[0]
    assert "on agency in DE" in found[0]
    res = run("check", str(f), "--with-packaged")
    assert res.exit_code == 0 and "contradict on agency in DE" in res.output
    # a narrower veto (more conditions than the review has) is no contradiction
    narrower = CONTRADICTING.replace(
        "when: {fact: industry, op: eq, value: public_sector}",
        "when: {all: [{fact: industry, op: eq, value: public_sector}, "
        "{fact: amount, op: lt, value: 100.0}]}")
    f.write_text(narrower, "utf-8")
    ruleset = load_rules(layered_files([str(f)]))
    assert not [w for w in contradictions(ruleset) if "team.no_agency_public" in w]


def test_every_packaged_rule_says_law_or_company_policy(ruleset):
    kinds = {r.id: r.kind for r in ruleset.rules}
    assert set(kinds.values()) == {"law", "company_policy"}
    assert kinds["de.proportionality"] == "company_policy"
    assert all(k == "company_policy" for i, k in kinds.items() if i.startswith("practice."))
    assert kinds["de.interest_b2b"] == "law"
    res = run("list", "--json", "-j", "DE")
    rows = json.loads(res.output)
    assert {r["kind"] for r in rows} == {"law", "company_policy"}


def test_approved_by_is_recorded(tmp_path):
    text = CONTRADICTING.replace("    rationale: test\n", "    rationale: test\n"
                                 "    approved_by: {name: A. Jurist, role: legal, "
                                 "date: 2026-11-30, note: board decision}\n")
    f = tmp_path / "team.yaml"
    f.write_text(text, "utf-8")
    rule = load_rules(f).rule("team.no_agency_public")
    assert rule.approved_by is not None and rule.approved_by.name == "A. Jurist"
    assert rule.approved_by.date == date(2026, 11, 30) and rule.approved_by.role == "legal"
