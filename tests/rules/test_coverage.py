"""The coverage table in docs/legal-rules.md agrees with the rule files and with the sections
of docs/legal-reference.md: every rule id it names exists, every packaged rule appears, and
every section of the reference has at least one row."""

from __future__ import annotations

import re
from pathlib import Path

from legal_rules.loader import load_rules

DOCS = Path(__file__).resolve().parents[2] / "docs"
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*\.[a-z0-9_.-]+$")


def coverage_rows() -> list[tuple[str, str, list[str]]]:
    """``(section, topic, rule ids)`` of each row between the coverage markers."""
    text = (DOCS / "legal-rules.md").read_text("utf-8")
    table = text.split("<!-- coverage:start -->", 1)[1].split("<!-- coverage:end -->", 1)[0]
    rows = []
    for line in table.strip().splitlines()[2:]:  # after the header and the --- line
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 4, line
        ids = [] if cells[2] == "—" else [i.strip() for i in cells[2].split(",")]
        assert all(RULE_ID.match(i) for i in ids), line
        rows.append((cells[0], cells[1], ids))
    return rows


def test_every_named_rule_exists_and_every_packaged_rule_is_named():
    rows = coverage_rows()
    named = {i for _, _, ids in rows for i in ids}
    packaged = {r.id for r in load_rules().rules}
    assert not named - packaged, f"unknown rule ids in the table: {sorted(named - packaged)}"
    assert not packaged - named, f"rules missing from the table: {sorted(packaged - named)}"


def test_every_reference_section_has_rows():
    reference = (DOCS / "legal-reference.md").read_text("utf-8")
    sections = re.findall(r"^## (.+)$", reference, flags=re.M)
    short = {"European Union": "EU", "Germany (DE)": "DE", "Austria (AT)": "AT",
             "Sweden (SE)": "SE", "France (FR)": "FR", "United Kingdom (UK)": "UK",
             "Netherlands (NL)": "NL", "Poland, Italy, Spain": "PL, IT, ES",
             "United States (consumer debt collection)": "US"}
    covered = {s for s, _, _ in coverage_rows()}
    for title in sections:
        key = short.get(title, "Practice" if title.startswith("Practice") else title)
        assert key in covered, f"section {title!r} of legal-reference.md has no coverage row"
    # and each topic row of a reference table appears in the coverage table
    topics = {(s, t) for s, t, _ in coverage_rows()}
    current = None
    for line in reference.splitlines():
        if line.startswith("## "):
            current = short.get(line[3:], "Practice")
        elif line.startswith("| ") and not line.startswith(("| topic", "| country")):
            topic = line.strip("|").split("|")[0].strip()
            assert (current, topic) in topics, f"{current}: {topic!r} not in the table"
