"""Rates: only sourced figures, a missing period blocks interest with a clear message, the EU
8 pp is a floor under the national margins, and `check` warns about margins under it."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from engine.contract import Action
from legal_rules.lint import margins_under_floor, rule_warnings
from legal_rules.loader import layered_files, load_rules

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "legal-reference.md"
RATES_DOC = REFERENCE.with_name("reference-rates.md")


def test_every_rate_figure_comes_from_a_source_listed_in_the_repository(ruleset):
    """Each period names its source (a page address, or the reference) in its note, and the
    reference's table of published rates lists it with the same period and figure."""
    import yaml

    from legal_rules.loader import packaged_rules_dir

    text = REFERENCE.read_text("utf-8")
    table = RATES_DOC.read_text("utf-8").split("# Published reference rates", 1)[1]
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:5])
            for line in table.splitlines() if line.startswith("| ") and "_rate" in line}
    notes = yaml.safe_load((packaged_rules_dir() / "rates.yaml").read_text("utf-8"))["rates"]
    assert ruleset.rates and len(notes) == len(ruleset.rates)
    for rate, raw in zip(ruleset.rates, notes, strict=True):
        assert (rate.name, rate.jurisdiction, rate.value) == (raw["name"], raw["jurisdiction"],
                                                             raw["value"])
        assert re.search(r"sources?: .*(https://|docs/legal-reference\.md)", raw["note"]), raw
        assert (rate.name, rate.jurisdiction, str(rate.valid_from), str(rate.valid_to),
                f"{rate.value:.2f} %") in rows, rate
    germany = text.split("(DE)", 1)[1].split("\n## ", 1)[0]
    assert "1.27 %" in germany  # the one figure taken from the reference itself
    declared = {(s.name, s.jurisdiction) for s in ruleset.series}
    assert {(r.name, r.jurisdiction) for r in ruleset.rates} <= declared
    assert all(s.publisher for s in ruleset.series)


def test_a_date_without_a_rate_blocks_interest_with_a_clear_message(durable, facts):
    inside = durable.decide(facts(), Action.LETTER, date(2026, 3, 2))
    assert inside.cap("max_interest_rate") == 10.27 and not inside.blocked_claims
    after = durable.decide(facts(), Action.LETTER, date(2026, 12, 7))
    assert after.allowed  # the letter itself is lawful; only the interest figure is unknown
    assert after.cap("max_interest_rate") is None
    (claim,) = after.blocked_claims
    assert "no base_rate(DE) on 2026-12-07" in claim and "2026-01-01..2026-06-30" in claim
    assert "interest is blocked until the period is added to rates.yaml" in claim
    assert "Deutsche Bundesbank" in claim
    assert after.to_dict()["blocked_claims"] == [claim]
    before = durable.decide(facts(), Action.LETTER, date(2025, 1, 2))
    assert before.cap("max_interest_rate") is None and before.blocked_claims


def test_a_series_without_any_period_blocks_too(facts, tmp_path):
    """A team's rates.yaml (replacing the packaged one) that declares the AT series but
    records no period: AT B2B interest is blocked and says so; with the packaged periods it
    is known in 2024 and blocked again after the last one."""
    import yaml

    from legal_rules.durable_eval import DurableEvaluator
    from legal_rules.loader import packaged_rules_dir

    doc = yaml.safe_load((packaged_rules_dir() / "rates.yaml").read_text("utf-8"))
    doc["rates"] = [r for r in doc["rates"] if r["jurisdiction"] != "AT"]
    team = tmp_path / "rates.yaml"
    team.write_text(yaml.safe_dump(doc, allow_unicode=True), "utf-8")
    none = DurableEvaluator(load_rules(layered_files([team])))
    d = none.decide(facts(jurisdiction="AT"), Action.LETTER, date(2024, 3, 2))
    assert d.cap("max_interest_rate") is None
    assert "no period of base_rate(AT) is recorded" in d.blocked_claims[0]
    packaged = DurableEvaluator(load_rules())
    known = packaged.decide(facts(jurisdiction="AT"), Action.LETTER, date(2024, 3, 2))
    assert known.cap("max_interest_rate") == pytest.approx(3.88 + 9.2)
    later = packaged.decide(facts(jurisdiction="AT"), Action.LETTER, date(2026, 3, 2))
    assert later.cap("max_interest_rate") is None and later.blocked_claims


def test_eu_eight_points_is_a_floor_under_the_national_margin(durable, facts):
    margins = {"DE": 9, "AT": 9.2, "FR": 10, "PL": 10, "IT": 8, "ES": 8}
    for jur, margin in margins.items():
        currency = "PLN" if jur == "PL" else "EUR"
        d = durable.decide(facts(jurisdiction=jur, currency=currency), Action.LETTER,
                           date(2026, 3, 2))
        assert d.cap("interest_rate_pp_over_base") == margin, jur
        assert d.cap("min_interest_rate_pp_over_base") == 8, jur
    nl = durable.decide(facts(jurisdiction="NL"), Action.LETTER, date(2026, 3, 2))
    assert nl.cap("interest_rate_pp_over_base") is None  # no national margin recorded
    assert nl.cap("min_interest_rate_pp_over_base") == 8


def test_check_warns_about_a_margin_under_the_floor(tmp_path, ruleset):
    assert margins_under_floor(ruleset) == []
    de = (Path(ruleset.files[0]).parent / "de.yaml").read_text("utf-8")
    old = "cap: {name: interest_rate_pp_over_base, value: 9, unit: pp}"
    assert old in de
    team = tmp_path / "de.yaml"
    team.write_text(de.replace(old, "cap: {name: interest_rate_pp_over_base, value: 7, unit: "
                               "pp}").replace("cap_value: 9}", "cap_value: 7}"), "utf-8")
    changed = load_rules(layered_files([str(team)]))
    (w,) = margins_under_floor(changed)
    assert "de.interest_margin_b2b gives 7 pp" in w and "floor of 8 pp" in w
    assert w in rule_warnings(changed, date(2026, 3, 2))
