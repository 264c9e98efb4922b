"""Four eyes on rule changes: a proposed file is used only after a second person with the
legal role approved it; who, when and why are in the audit chain; every decision records the
hash of the approved rule set; a file changed after approval stops decisions (fail closed)."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dunning.cli import app
from dunning.ops.audit import AuditLog
from dunning.ops.recommend import Recommender, compiled_rules
from dunning.ops.rule_approval import rules_area
from engine.store import Store
from legal_rules.loader import layered_files, load_rules, packaged_rules_dir

from .conftest import AS_OF

runner = CliRunner()
OLD = "when: {fact: contacts_last_7_days, op: ge, value: 2}"


def _team_de(folder: Path) -> Path:
    """de.yaml with a stricter contact threshold (1 contact in 7 days instead of 2)."""
    text = (packaged_rules_dir() / "de.yaml").read_text("utf-8")
    assert OLD in text
    text = text.replace(OLD, "when: {fact: contacts_last_7_days, op: ge, value: 1}")
    text = text.replace("{facts: {contacts_last_7_days: 2}, expect: fires, decision: vetoed}",
                        "{facts: {contacts_last_7_days: 1}, expect: fires, decision: vetoed}")
    text = text.replace("{facts: {contacts_last_7_days: 1}, expect: does_not_fire}",
                        "{facts: {contacts_last_7_days: 0}, expect: does_not_fire}")
    path = folder / "de.yaml"
    path.write_text(text, "utf-8")
    return path


@pytest.fixture()
def tokens(tmp_path: Path) -> dict[str, str]:
    """Tokens of alice (legal), bob (legal), rita (reviewer) in a token file."""
    toks = {n: secrets.token_urlsafe(32) for n in ("alice", "bob", "rita")}
    roles = {"alice": "legal", "bob": "legal", "rita": "reviewer"}
    (tmp_path / "tokens").write_text("".join(f"{t} {roles[n]} {n}\n" for n, t in toks.items()))
    return toks


def _rules(db: Path, tmp_path: Path, *args: str, token: str | None = None):  # noqa: ANN202
    env = {"DUNNING_TOKEN": token} if token else {}
    extra = ["--tokens", str(tmp_path / "tokens")] if args[0] == "approve" else []
    return runner.invoke(app, ["rules", *args, *extra, "--db", str(db)], env=env,
                         terminal_width=250)


def test_a_rule_change_needs_a_second_legal_person(db: Path, tmp_path: Path,
                                                   tokens: dict[str, str]) -> None:
    packaged = load_rules().hash
    team = _team_de(tmp_path)
    res = _rules(db, tmp_path, "propose", str(team), "--by", "alice")
    assert res.exit_code == 0, res.output
    sha = json.loads(next((rules_area(db) / "pending").glob("*/proposal.json")).read_text())
    short = sha["sha256"][:12]
    # proposed is not in force
    assert compiled_rules(None, db)[0].hash == packaged
    # the proposer cannot approve, nor can a reviewer, nor a token that is not the --by name
    res = _rules(db, tmp_path, "approve", short, "--by", "alice", "--reason", "x",
                 token=tokens["alice"])
    assert res.exit_code == 2 and "second person" in res.output
    res = _rules(db, tmp_path, "approve", short, "--by", "rita", "--reason", "x",
                 token=tokens["rita"])
    assert res.exit_code == 2 and "'legal' role" in res.output
    res = _rules(db, tmp_path, "approve", short, "--by", "bob", "--reason", "x",
                 token=tokens["alice"])
    assert res.exit_code == 2 and "belongs to 'alice'" in res.output
    assert compiled_rules(None, db)[0].hash == packaged
    res = _rules(db, tmp_path, "approve", short, "--by", "bob",
                 "--reason", "works council agreement 2026-11", token=tokens["bob"])
    assert res.exit_code == 0, res.output
    approved = load_rules(layered_files([rules_area(db) / "approved" / "de.yaml"]))
    assert approved.hash != packaged
    manifest = json.loads((rules_area(db) / "approved.json").read_text())
    assert manifest["ruleset_hash"] == approved.hash
    # explain --invoice decides with the store's rules too
    inv = Store(db).tables(as_of=AS_OF)["invoices"]["invoice_id"].iloc[0]
    res = runner.invoke(app, ["rules", "explain", "--invoice", inv, "-a", "email", "--date",
                              AS_OF.isoformat(), "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["ruleset_hash"] == approved.hash
    # the decisions use and record the approved rule set
    rec = Recommender(Store(db))
    assert rec.ruleset.hash == approved.hash
    result = rec.run(AS_OF)
    assert result.rules_hash == approved.hash
    assert set(result.frame["rules_hash"]) == {approved.hash}
    # who, when, why in the audit chain (the reason in its erasable personal part)
    with Store(db).connect() as con:
        rows = con.execute("SELECT l.payload, p.data FROM ops_audit_log l LEFT JOIN "
                           "ops_audit_personal p USING (seq) WHERE kind = 'rules' "
                           "ORDER BY seq").fetchall()
        assert AuditLog(con).verify().ok
    events = [json.loads(p) for p, _ in rows]
    assert [e["event"] for e in events] == ["proposed", "approved"]
    assert events[1]["approved_by"] == "bob" and events[1]["proposed_by"] == "alice"
    assert events[1]["ruleset_hash"] == approved.hash and events[1]["approved_at"]
    assert "works council" in rows[1][1]
    res = runner.invoke(app, ["audit", "show", "--rules", "--db", str(db)])
    assert res.exit_code == 0, res.output
    shown = " ".join(res.output.split())  # the console wraps long lines
    assert "rule file de.yaml" in shown and "approved by bob (legal)" in shown
    assert "works council agreement 2026-11" in shown and "proposed by alice" in shown


def test_a_file_changed_after_approval_stops_decisions(db: Path, tmp_path: Path,
                                                       tokens: dict[str, str]) -> None:
    team = _team_de(tmp_path)
    assert _rules(db, tmp_path, "propose", str(team), "--by", "alice").exit_code == 0
    sha = next((rules_area(db) / "pending").glob("*/proposal.json")).parent.name
    assert _rules(db, tmp_path, "approve", sha[:12], "--by", "bob", "--reason", "ok",
                  token=tokens["bob"]).exit_code == 0
    in_force = rules_area(db) / "approved" / "de.yaml"
    in_force.write_text(in_force.read_text("utf-8").replace("value: 1}", "value: 5}", 1),
                        "utf-8")
    # editing the manifest to match does not help: the approvals are in the audit chain
    manifest_file = rules_area(db) / "approved.json"
    manifest = json.loads(manifest_file.read_text())
    honest = json.dumps(manifest)
    manifest["files"]["de.yaml"] = hashlib.sha256(in_force.read_bytes()).hexdigest()
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(Exception, match="not the approved version in the audit log"):
        compiled_rules(None, db)
    manifest_file.write_text(honest)
    res = runner.invoke(app, ["rules", "pending", "--db", str(db)])
    assert res.exit_code == 0 and "0 pending" in res.output
    with pytest.raises(Exception, match="changed after its approval"):
        Recommender(Store(db))
    # an unapproved file dropped into the approved folder is not used either
    in_force.unlink()
    (rules_area(db) / "approved" / "at.yaml").write_text("rules: []\n")
    with pytest.raises(Exception, match="at.yaml: not approved"):
        compiled_rules(None, db)


def test_an_invalid_file_is_not_proposed(db: Path, tmp_path: Path) -> None:
    bad = tmp_path / "de.yaml"
    bad.write_text((packaged_rules_dir() / "de.yaml").read_text("utf-8").replace(
        OLD, "when: {fact: contacts_last_7_dayz, op: ge, value: 2}"), "utf-8")
    res = _rules(db, tmp_path, "propose", str(bad), "--by", "alice")
    assert res.exit_code == 1 and "contacts_last_7_dayz" in res.output
    assert not (rules_area(db) / "pending").exists()
