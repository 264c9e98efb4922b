"""Loader: schema, line numbers in every error, all-or-nothing loading, hash."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.errors import InputError
from legal_rules.loader import RuleFileError, load_rules, packaged_rules_dir, rule_schema

GOOD = """\
rules:
  - id: xx.no_calls
    title: No calls
    jurisdiction: XX
    scope: both
    applies_to: [phone]
    when: {fact: calls_last_7_days, op: ge, value: 1}
    effect: veto
    kind: law
    citation: "Test Act s. 1"
    valid_from: 2020-01-01
    rationale: test
    tests:
      - {facts: {calls_last_7_days: 1}, expect: fires}
      - {facts: {calls_last_7_days: 0}, expect: does_not_fire}
"""


def problems_of(tmp_path: Path, text: str) -> list:
    f = tmp_path / "x.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(RuleFileError) as exc:
        load_rules(f)
    assert isinstance(exc.value, InputError)
    return exc.value.problems


def test_packaged_rules_load(ruleset):
    ids = [r.id for r in ruleset.rules]
    assert len(ids) == len(set(ids)) >= 60
    names = {Path(f).name for f in ruleset.files}
    for required in ("eu.yaml", "gdpr.yaml", "de.yaml", "at.yaml", "se.yaml", "fr.yaml",
                     "uk.yaml", "nl.yaml", "pl.yaml", "it.yaml", "es.yaml", "us.yaml",
                     "construction.yaml", "healthcare.yaml", "public_sector.yaml",
                     "practice.yaml", "rates.yaml"):
        assert required in names
    assert len(ruleset.hash) == 64


def test_schema_is_shipped_json():
    schema = rule_schema()
    assert schema["$defs"]["rule"]["additionalProperties"] is False


def test_good_file_loads(tmp_path, write):
    rs = load_rules(write(tmp_path / "x.yaml", GOOD))
    assert [r.id for r in rs.rules] == ["xx.no_calls"]
    assert rs.rules[0].source.line == 2


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        ("    rationale: test\n", "    rationale: test\n    severity: high\n", 13,
         "rules[0].severity", "unknown field 'severity'"),
        ("value: 1}", "value: one}", 7, "rules[0].when.value", "fact 'calls_last_7_days' is int"),
        ("fact: calls_last_7_days", "fact: calls_per_day", 7, "rules[0].when.fact",
         "unknown fact 'calls_per_day'"),
        ("applies_to: [phone]", "applies_to: [fax]", 6, "rules[0].applies_to[0]", "'fax'"),
        ("valid_from: 2020-01-01", "valid_from: 2020-02-30", 11, "rules[0].valid_from",
         "'2020-02-30' is not a date of the calendar; dates are written 2026-12-31"),
        ("valid_from: 2020-01-01", "valid_from: 01.01.2020", 11, "rules[0].valid_from",
         "dates are written 2026-12-31 (year-month-day), found '01.01.2020'"),
        ("{facts: {calls_last_7_days: 0}", "{facts: {calls_7d: 0}", 15,
         "rules[0].tests[1].facts.calls_7d", "unknown fact 'calls_7d' in test case"),
        ("jurisdiction: XX", "jurisdiction: UK", 4, "rules[0].jurisdiction", "GB"),
        ("expect: does_not_fire", "expect: fires", 13, "rules[0].tests", "does_not_fire"),
        ("op: ge", "op: lt_or_eq", 7, "rules[0].when.op", "lt_or_eq"),
        ("effect: veto", "effect: cap", 8, "rules[0].effect", "needs a cap"),
        ("scope: both", "scope: 3", 5, "rules[0].scope", "3"),
        # plain language for choices, case and the new law / company policy field
        ("effect: veto", "effect: vetoe", 8, "rules[0].effect",
         "'vetoe' is not allowed; write one of veto, require_human_review, cap; did you mean "
         "'veto'?"),
        ("kind: law", "kind: Law", 9, "rules[0].kind", "did you mean 'law'?"),
        ("    kind: law\n", "", 2, "rules[0]", "add 'kind: law' or 'kind: company_policy'"),
        ("when: {fact: calls_last_7_days, op: ge, value: 1}",
         "when: {fact: customer_type, op: eq, value: B2C}", 7, "rules[0].when.value",
         "'B2C' is not a value fact 'customer_type' takes; did you mean 'b2c'?"),
        ("when: {fact: calls_last_7_days, op: ge, value: 1}",
         "when: {fact: industry, op: in, value: [healthcare, helthcare]}", 7,
         "rules[0].when.value[1]", "did you mean 'healthcare'?"),
        ("when: {fact: calls_last_7_days, op: ge, value: 1}",
         "when: {fact: jurisdiction, op: eq, value: UK}", 7, "rules[0].when.value",
         "did you mean 'GB'?"),
        ("    rationale: test\n", "    rationale: test\n    approved_by: {name: A. Jurist, "
         "date: 2026-13-01}\n", 13, "rules[0].approved_by.date", "not a date of the calendar"),
    ],
)
def test_error_names_file_line_field(tmp_path, old, new, line, field, words):
    assert old in GOOD
    problems = problems_of(tmp_path, GOOD.replace(old, new))
    text = "\n".join(map(str, problems))
    match = [p for p in problems if p.field == field]
    assert match, text
    assert match[0].line == line, text
    assert words in match[0].message, text
    assert str(match[0]).startswith(f"{tmp_path / 'x.yaml'}:{line}: {field}: ")


def test_invalid_yaml_names_line(tmp_path):
    problems = problems_of(tmp_path, GOOD.replace("    scope: both\n", "    scope: [both\n"))
    assert problems[0].line >= 5 and "is not closed" in problems[0].message


@pytest.mark.parametrize(("old", "new", "words"), [
    ("    scope: both\n", "  scope: both\n", "indentation does not line up"),
    ("    scope: both\n", "      scope: both\n", "indented further than the lines above"),
    ("    title: No calls\n", "    title: Note: no calls\n", "needs quotes"),
    ("    scope: both\n", "\tscope: both\n", "indent with spaces"),
    ('    citation: "Test Act s. 1"\n', '    citation: "Test Act s. 1\n', "never closed"),
])
def test_yaml_mistakes_in_plain_language(tmp_path, old, new, words):
    assert old in GOOD
    problems = problems_of(tmp_path, GOOD.replace(old, new))
    assert problems[0].line >= 3 and words in problems[0].message, problems


def test_a_control_character_names_its_line(tmp_path):
    """YAML refuses control characters before parsing (no mark, a position): still a
    problem with its line, never a traceback."""
    problems = problems_of(tmp_path, GOOD.replace("title: No calls", "title: No\x01calls"))
    assert problems[0].line == 3 and "U+0001" in problems[0].message, problems


def test_a_file_edited_in_place_is_read_again(tmp_path):
    """Parsed files are cached by name and bytes: the same name with new text is new."""
    f = tmp_path / "x.yaml"
    f.write_text(GOOD, encoding="utf-8")
    assert [r.title for r in load_rules(f).rules] == ["No calls"]
    f.write_text(GOOD.replace("title: No calls", "title: No phone calls"), encoding="utf-8")
    assert [r.title for r in load_rules(f).rules] == ["No phone calls"]
    f.write_text(GOOD.replace("    scope: both\n", "    scope: [both\n"), encoding="utf-8")
    with pytest.raises(RuleFileError):
        load_rules(f)


def test_a_large_file_is_parsed_but_not_kept(tmp_path):
    """The parse cache holds small files only (rule files are untrusted: a pasted 200 KB
    file must not stay in memory 128 times over)."""
    from legal_rules import loader

    f = tmp_path / "big.yaml"
    f.write_text(GOOD.replace("rationale: test", "rationale: " + "x" * 300_000),
                 encoding="utf-8")
    before = loader._parse_cached.cache_info()
    assert len(load_rules(f).rules[0].rationale) == 300_000
    assert loader._parse_cached.cache_info() == before  # not looked up, not stored
    (tmp_path / "small.yaml").write_text(GOOD, encoding="utf-8")
    load_rules(tmp_path / "small.yaml")
    assert loader._parse_cached.cache_info().misses == before.misses + 1


def test_duplicate_key_is_an_error(tmp_path):
    problems = problems_of(tmp_path, GOOD.replace("    scope: both\n",
                                                  "    scope: both\n    scope: b2b\n"))
    assert problems[0].line == 6 and "duplicate key" in problems[0].message


def test_unknown_rate_in_cap(tmp_path):
    text = GOOD.replace("effect: veto", "effect: cap\n    cap: {name: max_interest_rate, "
                        "value: 'base_rate(XX) + 9'}")
    problems = problems_of(tmp_path, text)
    assert any("unknown rate base_rate(XX)" in p.message for p in problems)


def test_duplicate_id_across_files_is_all_or_nothing(tmp_path, write):
    write(tmp_path / "a.yaml", GOOD)
    write(tmp_path / "b.yaml", GOOD)
    with pytest.raises(RuleFileError) as exc:
        load_rules(tmp_path)
    (p,) = exc.value.problems
    assert p.file.endswith("b.yaml") and p.line == 2 and p.field == "id"
    assert "duplicate rule id 'xx.no_calls'" in p.message and "a.yaml:2" in p.message


def test_one_broken_file_loads_nothing(tmp_path, write):
    shutil.copytree(packaged_rules_dir(), tmp_path / "rules")
    write(tmp_path / "rules" / "zz.yaml", GOOD.replace("scope: both", "scope: everyone"))
    with pytest.raises(RuleFileError) as exc:
        load_rules(tmp_path / "rules")
    assert [p.file for p in exc.value.problems] == [str(tmp_path / "rules" / "zz.yaml")]


def test_missing_path(tmp_path):
    with pytest.raises(RuleFileError, match="no such file"):
        load_rules(tmp_path / "nope")


def test_hash_follows_content(tmp_path, write):
    f = write(tmp_path / "x.yaml", GOOD)
    h1 = load_rules(f).hash
    assert load_rules(f).hash == h1
    write(f, GOOD.replace("title: No calls", "title: No phone calls"))
    assert load_rules(f).hash != h1


def test_top_level_must_be_a_mapping(tmp_path):
    problems = problems_of(tmp_path, "- id: a\n- id: b\n")
    assert problems[0].line == 1 and "expected a mapping {..}" in problems[0].message
