"""The rule-file editor and the rule what-if over real HTTP (uvicorn on 127.0.0.1, httpx):
roles and CSRF on every new form, problems as file:line: field with links to the numbered
lines, the text kept and escaped, proposing all or nothing, and the what-if job against
``run_whatif`` itself."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pytest

from .conftest import LEGAL, LEGAL2, READ, REVIEW, make_workspace_app
from .test_pages import csrf_of, login

# a rule added at the end of de.yaml: the reminder letter waits until day 40 (the what-if
# sees it: the schedule sends it on day 30)
LETTER_RULE = """
  - id: de.team_letter_after_40_days
    title: For claims of EUR 1,000 or more the reminder letter after an email waits until day 40
    jurisdiction: DE
    scope: both
    applies_to: [letter]
    when:
      all:
        - {fact: reminders_sent, op: ge, value: 1}
        - {fact: days_overdue, op: lt, value: 40}
        - {fact: amount, op: ge, value: 1000}
    effect: veto
    kind: company_policy
    citation: "Company policy: letters only after 40 days"
    valid_from: 2020-01-01
    rationale: Test rule.
    tests:
      - {facts: {days_overdue: 30, amount: 2000}, action: letter, expect: fires, decision: vetoed}
      - {facts: {days_overdue: 40, amount: 2000}, action: letter, expect: does_not_fire}
"""


@pytest.fixture
def app_site(workspace_db, serve, tmp_path):
    app = make_workspace_app(workspace_db, tmp_path)
    app.app.state.workspace.whatif.invoices = 60  # (BodyLimit wraps the FastAPI app)
    with serve(app) as url:
        yield url, workspace_db, app


def _packaged(name: str) -> str:
    from legal_rules.loader import packaged_rules_dir

    return (packaged_rules_dir() / name).read_text(encoding="utf-8")


def _rule_records(db: Path) -> list[dict]:
    from dunning.ops.audit import AuditLog
    from engine.store import Store

    with Store(db).connect() as con:
        return [r["payload"] for r in AuditLog(con).records(kind="rules")]


def _textarea(page: str) -> str:
    return html.unescape(re.search(r'<textarea id="rule-yaml"[^>]*>(.*?)</textarea>', page,
                                   re.S).group(1))


def test_only_the_legal_role_edits_and_every_form_needs_its_csrf(app_site):
    url, db, _ = app_site
    for token in (READ, REVIEW):
        with login(url, token) as client:
            rules = client.get("/ui/rules").text
            assert 'class="button edit-file"' not in rules and 'id="new-rule-file"' not in rules
            assert client.get("/ui/rules/edit/de.yaml").status_code == 403
            assert client.get("/ui/rules/new").status_code == 403
            for do in ("check", "propose"):
                r = client.post("/ui/rules/editor", data={"csrf": csrf_of(rules), "do": do,
                                                          "name": "de.yaml",
                                                          "yaml": LETTER_RULE})
                assert r.status_code == 403 and "needs &#39;legal&#39;" in r.text
    with login(url, LEGAL) as lena:
        rules = lena.get("/ui/rules").text
        assert 'href="/ui/rules/edit/de.yaml"' in rules and 'id="new-rule-file"' in rules
        page = lena.get("/ui/rules/edit/de.yaml")
        assert page.status_code == 200 and _textarea(page.text) == _packaged("de.yaml")
        for bad in ("nope.yaml", "..%2Fde.yaml", "de.txt"):
            assert lena.get(f"/ui/rules/edit/{bad}").status_code == 404
        form = {"do": "propose", "name": "de.yaml", "yaml": _packaged("de.yaml") + LETTER_RULE}
        for csrf in ({}, {"csrf": "forged"}):
            assert lena.post("/ui/rules/editor", data={**form, **csrf}).status_code == 403
            assert lena.post("/ui/rules/whatif", data={**form, **csrf}).status_code == 403
        foreign = lena.post("/ui/rules/editor", headers={"Origin": "http://evil.example"},
                            data={**form, "csrf": csrf_of(page.text)})
        assert foreign.status_code == 403
    assert _rule_records(db) == []  # nothing was proposed
    assert not (db.parent / "rules" / "pending").exists()


def test_editor_shows_each_problem_at_its_line_keeps_the_text_and_saves_all_or_nothing(
        app_site):
    from dunning.ops.rule_approval import file_sha256, pending, rules_in_force
    from legal_rules.loader import RuleFileError, packaged_rules_dir

    url, db, _ = app_site
    good = _packaged("de.yaml") + LETTER_RULE
    hostile = "# <script>alert('x')</script> & notes\n"
    broken = hostile + good.replace("    scope: both\n    applies_to: [letter]\n",
                                    "    scope: all\n    applies_to: [letter]\n")
    broken = broken.replace("    kind: company_policy\n    citation: \"Company policy: letters",
                            "    kind: company_policy\n    colour: red\n    citation: "
                            "\"Company policy: letters")
    tmp = db.parent / "check"
    tmp.mkdir()
    (tmp / "de.yaml").write_text(broken)
    with pytest.raises(RuleFileError) as err:  # what the loader itself says of the file
        rules_in_force(db, extra=tmp / "de.yaml")
    expected = [(p.line, p.field) for p in err.value.problems]
    assert len(expected) >= 2
    with login(url, LEGAL) as lena:
        token = csrf_of(lena.get("/ui/rules/edit/de.yaml").text)
        for do in ("check", "propose"):
            r = lena.post("/ui/rules/editor", data={"csrf": token, "do": do,
                                                    "name": "de.yaml", "yaml": broken})
            assert r.status_code == 422 and 'id="check-problems"' in r.text
            for line, field in expected:  # each problem links to its numbered line
                assert f'<a href="#L{line}"><code>de.yaml:{line}</code></a> <strong>{field}' \
                    in r.text
                assert f'<li id="L{line}" class="bad">' in r.text
            assert _textarea(r.text) == broken  # the user's text kept as typed ...
            assert "<script>alert" not in r.text and "&lt;script&gt;alert" in r.text  # escaped
        r = lena.post("/ui/rules/whatif", data={"csrf": token, "name": "de.yaml",
                                                "yaml": broken}, follow_redirects=False)
        assert r.status_code == 422 and f"de.yaml:{expected[0][0]}: " in r.text  # no job
        assert _rule_records(db) == [] and pending(db) == []  # nothing saved, nothing audited
        ok = lena.post("/ui/rules/editor", data={"csrf": token, "do": "check",
                                                 "name": "de.yaml", "yaml": good})
        assert ok.status_code == 200 and 'id="check-ok"' in ok.text
        assert pending(db) == []  # checking saves nothing
        made = lena.post("/ui/rules/editor", data={"csrf": token, "do": "propose",
                                                   "name": "de.yaml", "yaml": good})
        assert made.status_code == 200, made.text
        sha = re.search(r'id="proposal-hash">([0-9a-f]{64})<', made.text).group(1)
        again = lena.post("/ui/rules/editor", data={"csrf": token, "do": "propose",
                                                    "name": "de.yaml", "yaml": good})
        assert again.status_code == 422 and "already pending" in again.text
        page = lena.get("/ui/rules/pending").text
    old_sha = file_sha256(packaged_rules_dir() / "de.yaml")
    assert [p.sha256 for p in pending(db)] == [sha]
    assert (db.parent / "rules" / "pending" / sha / "de.yaml").read_text() == good
    records = _rule_records(db)
    assert len(records) == 1 and records[0]["event"] == "proposed"
    assert records[0]["name"] == "de.yaml" and records[0]["proposed_by"] == "lena"
    assert records[0]["sha256"] == sha and records[0]["replaces_sha256"] == old_sha
    # the approver's diff: only the added lines, escaped, both hashes; the audit trail
    added = re.findall(r'<span class="d-add">(.*?)</span>', page)
    assert "+  - id: de.team_letter_after_40_days" in added
    assert [html.unescape(a[1:]) for a in added] == LETTER_RULE.splitlines()  # escaped
    assert not re.findall(r'<span class="d-del">', page)
    assert f"(in force now: <code>{old_sha[:12]}</code>)" in page
    trail = page.split('id="rule-trail"')[1]
    assert "lena" in trail and sha[:12] in trail and old_sha[:12] in trail


def test_a_proposal_whose_audit_record_fails_leaves_nothing_pending(workspace_db, tmp_path,
                                                                    monkeypatch):
    from dunning.ops import rule_approval
    from engine.store import Store

    file = tmp_path / "de.yaml"
    file.write_text(_packaged("de.yaml") + LETTER_RULE)

    def no_audit(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError("disk full")

    monkeypatch.setattr(rule_approval, "_audit", no_audit)
    with pytest.raises(OSError, match="disk full"):
        rule_approval.propose(Store(workspace_db), file, "lena")
    area = rule_approval.rules_area(workspace_db)
    assert rule_approval.pending(workspace_db) == []
    assert sorted(p.name for p in area.rglob("*") if p.is_file()) == []  # no staged leftovers
    monkeypatch.undo()
    prop, _ = rule_approval.propose(Store(workspace_db), file, "lena")
    assert rule_approval.pending(workspace_db) == [prop]


def test_a_new_rule_file_from_the_template_checks_and_proposes(app_site):
    from dunning.workspace.rule_editor import NEW_FILE

    url, db, _ = app_site
    with login(url, LEGAL2) as otto:
        page = otto.get("/ui/rules/new")
        assert page.status_code == 200 and _textarea(page.text) == NEW_FILE
        assert 'id="rule-name"' in page.text and "a new file" in page.text
        token = csrf_of(page.text)
        r = otto.post("/ui/rules/editor", data={"csrf": token, "do": "propose", "is_new": "1",
                                                "name": "Team Rules.yaml", "yaml": NEW_FILE})
        assert r.status_code == 200 and 'id="proposed"' in r.text
    (rec,) = _rule_records(db)
    assert rec["name"] == "team_rules.yaml" and rec["replaces_sha256"] == ""


def _wait_for_job(client, location: str, timeout: float = 90) -> str:  # noqa: ANN001
    """Poll the job's page as htmx does until it shows a result or a failure."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        body = client.get(location, headers={"HX-Request": "true"}).text
        if 'id="whatif-progress"' not in body:
            return body
        time.sleep(0.2)
    raise AssertionError(f"what-if still running after {timeout} s")


def test_whatif_of_a_pending_change_runs_in_the_background_and_is_cached(app_site, tmp_path):
    from dunning.business.whatif import BUSINESS_KPIS, run_whatif
    from dunning.workspace.whatif_jobs import KPI_UNITS, show

    url, db, app = app_site
    good = _packaged("de.yaml") + LETTER_RULE
    with login(url, LEGAL) as lena:
        token = csrf_of(lena.get("/ui/rules/edit/de.yaml").text)
        made = lena.post("/ui/rules/editor", data={"csrf": token, "do": "propose",
                                                   "name": "de.yaml", "yaml": good})
        sha = re.search(r'id="proposal-hash">([0-9a-f]{64})<', made.text).group(1)
    with login(url, READ) as dora:  # any role may look (it changes nothing)
        page = dora.get("/ui/rules/pending").text
        assert f'id="whatif-{sha[:12]}"' in page
        token = csrf_of(page)
        assert dora.post("/ui/rules/whatif", data={"csrf": token, "sha": "0" * 64}
                         ).status_code == 404
        started = time.monotonic()
        r = dora.post("/ui/rules/whatif", data={"csrf": token, "sha": sha},
                      follow_redirects=False)
        answered = time.monotonic() - started
        assert r.status_code == 303, r.text
        location = r.headers["location"]
        assert re.fullmatch(r"/ui/rules/whatif/[0-9a-f]{64}", location)
        assert dora.get("/ui/").status_code == 200  # the server answers meanwhile
        body = _wait_for_job(dora, location)
        assert 'id="whatif-table"' in body, body
        full = dora.get(location).text
        assert "<h1>What-if" in full and 'id="whatif-caveats"' in full
        again = dora.post("/ui/rules/whatif", data={"csrf": token, "sha": sha},
                          follow_redirects=False)
        assert again.headers["location"] == location  # the same rule set: the cached job
        assert 'id="whatif-table"' in dora.get(location).text
    with login(url, LEGAL2) as otto:  # the editor's What-if of the same text: the same job
        token = csrf_of(otto.get("/ui/rules/edit/de.yaml").text)
        typed = otto.post("/ui/rules/whatif", data={"csrf": token, "name": "de.yaml",
                                                    "yaml": good}, follow_redirects=False)
        assert typed.status_code == 303 and typed.headers["location"] == location
    job = app.app.state.workspace.whatif.get(location.rsplit("/", 1)[1])
    assert answered < job.seconds  # the POST did not wait for the simulation
    file = tmp_path / "de.yaml"
    file.write_text(good)
    want = run_whatif(f"rules={file}", n_invoices=60, seeds=2)
    for k in want.difference:
        row = re.search(rf'<tr id="kpi-{k}">(.*?)</tr>', body, re.S).group(1)
        assert html.escape(BUSINESS_KPIS[k].label["en"], quote=True) in row
        d, unit = want.difference[k], KPI_UNITS.get(k, "number")
        assert (f"{show(d['mean'], unit, True)} [{show(d['ci_low'], unit, True)}, "
                f"{show(d['ci_high'], unit, True)}]") in row
        assert show(want.current[k]["mean"], unit) in row
    (change,) = want.rule_changes
    effects = re.search(r'id="rule-effects">(.*?)</ul>', body, re.S).group(1)
    assert change["rule_id"] == "de.team_letter_after_40_days"
    assert change["text"] in html.unescape(effects)
    assert change["refused_changed"] > 0  # the rule held letters back


def test_kpi_rows_say_better_or_worse_only_when_the_interval_excludes_zero():
    from dunning.workspace.whatif_jobs import kpi_rows

    def result(diffs: dict[str, tuple[float, float, float]]) -> dict:
        return {"current": {k: {"mean": 1.0} for k in diffs},
                "changed": {k: {"mean": 1.0 + m} for k, (m, _, _) in diffs.items()},
                "difference": {k: {"mean": m, "ci_low": lo, "ci_high": hi}
                               for k, (m, lo, hi) in diffs.items()},
                "better": {"cash_collected": 1, "days_sales_outstanding": -1,
                           "complaints": -1, "paid_after_first_reminder": 1}}

    rows = kpi_rows(result({"cash_collected": (50.0, 10.0, 90.0),
                            "days_sales_outstanding": (2.0, 1.0, 3.0),
                            "complaints": (-1.0, -3.0, 1.0),
                            "actions_blocked": (5.0, 4.0, 6.0),  # no direction given
                            "paid_after_first_reminder": (-1.0, -2.0, -0.5)}), lang="de")
    got = {r["kpi"]: (r["verdict"], r["diff"]) for r in rows}
    assert got == {"cash_collected": ("better", "+50 [+10, +90]"),  # more money: better
                   "days_sales_outstanding": ("worse", "+2.0 [+1.0, +3.0]"),  # longer: worse
                   "complaints": ("no clear change", "-1 [-3, +1]"),
                   "actions_blocked": ("no clear change", "+5 [+4, +6]"),  # neither way
                   "paid_after_first_reminder": ("worse", "-1.0 pp [-2.0 pp, -0.5 pp]")}
    assert rows[0]["label"].startswith("Geldeingang")  # the what-if's own German label


def test_the_approvers_diff_of_a_long_file_shows_an_inserted_rule_as_added_lines_only():
    """A rule inserted in the middle of a file of over 200 lines: the diff has exactly its
    lines as added, nothing removed, and hunk headers with the right line numbers."""
    from dunning.workspace.routes import unified_diff

    old = ["rules:\n"] + [line for i in range(60) for line in
                          (f"  - id: x.r{i}\n", "    tests:\n", "      - {facts: {}}\n", "\n")]
    inserted = LETTER_RULE.lstrip("\n").splitlines(keepends=True) + ["\n"]
    new = old[:121] + inserted + old[121:]
    diff = unified_diff(old, new, "a", "b")
    assert [d[1:] for d in diff if d.startswith("+") and not d.startswith("+++")] == inserted
    assert not [d for d in diff if d.startswith("-") and not d.startswith("---")]
    assert diff[2] == f"@@ -120,4 +120,{4 + len(inserted)} @@\n"
