"""The workspace over real HTTP (uvicorn on 127.0.0.1, httpx): sessions, CSRF, roles, CSP,
escaping, the worklist's SQL filters against the stored rows, review decisions in the audit
trail, the rules browser and the explain form against the rules engine itself."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import re
from collections.abc import Iterator

import httpx
import pytest

from dunning.workspace.routes import CSP, _cell
from dunning.workspace.session import SESSION_COOKIE, Sessions, session_secret
from engine.errors import InputError

from .conftest import (
    HOSTILE_ID,
    LEGAL,
    LEGAL2,
    READ,
    REVIEW,
    decided_reviews,
    make_workspace_app,
)


@pytest.fixture
def site(workspace_db, serve, tmp_path):
    with serve(make_workspace_app(workspace_db, tmp_path)) as url:
        yield url, workspace_db


@contextlib.contextmanager
def login(url: str, token: str) -> Iterator[httpx.Client]:
    """A client logged in through the login form (nonce cookie + CSRF field)."""
    with httpx.Client(base_url=url, timeout=30) as client:
        form = client.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        r = client.post("/ui/login", data={"csrf": csrf, "token": token, "next": "/ui/"})
        assert r.status_code == 303 and r.headers["location"] == "/ui/", r.text
        yield client


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_login_session_cookie_csrf_and_logout(site):
    url, _ = site
    with httpx.Client(base_url=url, timeout=30) as anon:
        r = anon.get("/ui/")
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")
        assert anon.get("/").headers["location"] == "/ui/"
        page = anon.get("/ui/login")
        assert page.headers["content-security-policy"] == CSP
        # no CSRF field / a forged one: refused before the token is even looked at
        assert anon.post("/ui/login", data={"token": REVIEW}).status_code == 403
        assert anon.post("/ui/login", data={"token": REVIEW, "csrf": "x" * 30}).status_code == 403
        bad = anon.post("/ui/login", data={"token": "n" * 30, "csrf": csrf_of(page.text)})
        assert bad.status_code == 401 and "Unknown token" in bad.text
        assert SESSION_COOKIE not in anon.cookies
        # a cookie signed with another secret is no session
    forged = Sessions({REVIEW: object()}, b"k" * 32).login(REVIEW)[1]
    with httpx.Client(base_url=url, cookies={SESSION_COOKIE: forged}) as other:
        assert other.get("/ui/").status_code == 303
    with login(url, REVIEW) as client:
        _logged_in_flow(client)


def _logged_in_flow(client: httpx.Client) -> None:
    cookie = next(h for h in client.cookies.jar if h.name == SESSION_COOKIE)
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert (cookie.get_nonstandard_attr("SameSite") or "").lower() == "strict"
    assert REVIEW not in cookie.value  # the token never travels in the cookie
    page = client.get("/ui/")
    assert page.status_code == 200 and "alice (reviewer)" in page.text
    for header in ("content-security-policy", "x-frame-options", "x-content-type-options"):
        assert header in page.headers
    assert client.post("/ui/logout", data={"csrf": "wrong"}).status_code == 403
    r = client.post("/ui/logout", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303 and SESSION_COOKIE not in client.cookies
    assert client.get("/ui/").status_code == 303


def test_session_secret_from_env_or_file_never_short(tmp_path):
    assert session_secret({"DUNNING_SESSION_SECRET": "s" * 40}) == b"s" * 40
    f = tmp_path / "secret"
    f.write_text("f" * 32 + "\n")
    assert session_secret({"DUNNING_SESSION_SECRET_FILE": str(f)}) == b"f" * 32
    assert session_secret({}) != session_secret({})  # random per start
    with pytest.raises(InputError, match="at least 32"):
        session_secret({"DUNNING_SESSION_SECRET": "short"})


def test_hostile_names_are_escaped_everywhere(site):
    url, _ = site
    with login(url, READ) as client:
        listing = client.get("/ui/", params={"q": "script"})
        assert HOSTILE_ID in listing.text
        assert "<script>alert" not in listing.text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;Co&lt;/b&gt;" \
            in listing.text
        page = client.get(f"/ui/customers/{HOSTILE_ID}")
        assert page.status_code == 200 and "<script>alert" not in page.text
        assert "<b>Co</b>" not in page.text
        assert client.get("/ui/customers/%3Cscript%3E").status_code == 404
    assert _cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert _cell("+1") == "'+1" and _cell("Acme") == "Acme"


def _stored(db):
    from dunning.ops.recommend import stored_recommendations
    from engine.store import Store

    store = Store(db)
    with store.connect() as con:
        recs = stored_recommendations(con)
    inv = store.tables()["invoices"][["invoice_id", "amount"]]
    return recs.merge(inv, on="invoice_id")


def _invoices(db):
    from engine.store import Store

    return Store(db).tables()["invoices"][["invoice_id", "due_date"]]


def test_worklist_filters_sort_and_paging_match_the_stored_rows(site, as_of):
    import pandas as pd

    url, db = site
    recs = _stored(db)
    with login(url, READ) as client:
        total = int(re.search(r'id="total">(\d+)<', client.get("/ui/").text).group(1))
        assert total == len(recs)
        want = recs[(recs["action"] == "email") & (recs["p_on_time"] < 0.5)
                    & (recs["amount"] >= 500)]
        r = client.get("/ui/", params={"action": "email", "risk": "at_risk",
                                        "min_amount": "500", "sort": "amount", "dir": "desc"})
        assert int(re.search(r'id="total">(\d+)<', r.text).group(1)) == len(want) > 0
        shown = re.findall(r"<td>(I\d{8})</td>", r.text)
        assert shown == want.sort_values(["amount", "invoice_id"], ascending=[False, True]
                                         )["invoice_id"].head(50).tolist()
        # a sort on a computed column (days overdue = day - due date), text search
        inv = _invoices(db)
        dated = recs.merge(inv, on="invoice_id")
        dated["overdue"] = (pd.Timestamp(as_of) - dated["due_date"]).dt.days
        r = client.get("/ui/", params={"sort": "overdue", "dir": "desc"})
        assert re.findall(r"<td>(I\d{8})</td>", r.text) == dated.sort_values(
            ["overdue", "invoice_id"], ascending=[False, True])["invoice_id"].head(50).tolist()
        r = client.get("/ui/", params={"q": "I0000013"})
        assert sorted(re.findall(r"<td>(I\d{8})</td>", r.text)) == sorted(
            i for i in recs["invoice_id"] if "I0000013" in i)
        # paging: page 2 continues page 1 in the same order, without overlap
        p1 = re.findall(r"<td>(I\d{8})</td>", client.get("/ui/", params={"sort": "invoice"}).text)
        p2 = re.findall(r"<td>(I\d{8})</td>", client.get(
            "/ui/", params={"sort": "invoice", "page": 2}).text)
        assert p1 + p2 == sorted(recs["invoice_id"])[:len(p1) + len(p2)] and len(p1) == 50
        # the CSV export has the same filter and every matching row
        export = client.get("/ui/worklist.csv", params={"action": "email", "risk": "at_risk",
                                                        "min_amount": "500"})
        rows = list(csv.DictReader(io.StringIO(export.text)))
        assert sorted(r["invoice_id"] for r in rows) == sorted(want["invoice_id"])
        assert {r["late_risk"] for r in rows} == {"True"}
        bad = client.get("/ui/", params={"risk": "nope", "sort": "drop table"})
        assert bad.status_code == 200 and "risk: &#39;nope&#39; is not one of" in bad.text


def test_review_decisions_need_the_role_csrf_and_a_reason(site):
    from dunning.ops.audit import AuditLog
    from engine.store import Store

    url, db = site
    with login(url, READ) as reader:
        page = reader.get("/ui/review")
        rid = re.search(r'id="review-(R-[0-9a-f]{10})"', page.text).group(1)
        assert "Approve" not in page.text and 'id="read-only"' in page.text
        denied = reader.post(f"/ui/review/{rid}", data={
            "csrf": csrf_of(page.text), "decision": "approve", "reason": "looks fine"})
        assert denied.status_code == 403 and "reviewer" in denied.text
    with login(url, REVIEW) as rev:
        page = rev.get("/ui/review")
        assert "Approve" in page.text
        token = csrf_of(page.text)
        no_csrf = rev.post(f"/ui/review/{rid}", data={"decision": "approve", "reason": "ok ok"})
        assert no_csrf.status_code == 403
        no_reason = rev.post(f"/ui/review/{rid}", data={"csrf": token, "decision": "approve",
                                                        "reason": "  "})
        assert no_reason.status_code == 422
        with Store(db).connect() as con:
            assert not decided_reviews(AuditLog(con))  # nothing decided so far
        ok = rev.post(f"/ui/review/{rid}", data={"csrf": token, "decision": "approve",
                                                 "reason": "customer agreed <b>by phone</b>"},
                      headers={"HX-Request": "true"})
        assert ok.status_code == 200 and "approved" in ok.text and "alice" in ok.text
        assert "<b>by phone</b>" not in rev.get(f"/ui/review/{rid}").text
        again = rev.post(f"/ui/review/{rid}", data={"csrf": token, "decision": "reject",
                                                    "reason": "changed my mind"})
        assert again.status_code == 409
    with Store(db).connect() as con:
        recs = decided_reviews(AuditLog(con))
    assert len(recs) == 1
    assert recs[0]["payload"]["review_id"] == rid and recs[0]["payload"]["reviewer"] == "alice"
    assert recs[0]["personal"]["reason"] == "customer agreed <b>by phone</b>"


def test_rules_page_and_explain_agree_with_the_rules_engine(site, as_of):
    from dunning.ops.recommend import compiled_rules
    from legal_rules.testing import NEUTRAL_FACTS, run_rule_tests

    url, _ = site
    ruleset, _, durable = compiled_rules()
    failed = sum(not r.passed for r in run_rule_tests(ruleset))
    with login(url, READ) as client:
        page = client.get("/ui/rules")
        assert all(f'id="{r.id}"' in page.text for r in ruleset.rules)
        assert f"{failed} failed" in page.text
        form = client.get("/ui/rules/explain")
        facts = {f"fact_{k}": ("true" if v is True else "false" if v is False else str(v))
                 for k, v in NEUTRAL_FACTS.items()}
        facts.update(fact_reminders_sent="0", fact_days_overdue="3")
        body = {"csrf": csrf_of(form.text), "action": "letter", "as_of": "2026-03-02", **facts}
        r = client.post("/ui/rules/explain", data=body)
        typed = {**NEUTRAL_FACTS, "reminders_sent": 0, "days_overdue": 3}
        want = durable.decide(typed, "letter", "2026-03-02", explain=True)
        status = re.search(r'id="decision-status"[^>]*>([^<]+)<', r.text).group(1)
        assert status == want.status.upper().replace("_", " ")
        for h in want.fired:
            assert f'href="/ui/rules#{h.rule_id}"' in r.text
        # an unknown fact fails closed and the page says which rule could not be evaluated
        missing = client.post("/ui/rules/explain", data={**body, "fact_days_overdue": ""})
        assert "BLOCKED" in missing.text or "VETOED" in missing.text
        bad = client.post("/ui/rules/explain", data={**body, "fact_days_overdue": "ten"})
        assert bad.status_code == 422 and "days_overdue: &#39;ten&#39; is not a whole number" \
            in bad.text
        assert client.post("/ui/rules/explain", data={**body, "csrf": "x"}).status_code == 403


def test_customer_page_expected_amounts_and_only_what_was_known_on_the_day(site, as_of):
    url, db = site
    recs = _stored(db)
    mine = recs[recs["customer_id"] == HOSTILE_ID]
    assert len(mine) > 0
    on_time = float((mine["amount"] * mine["p_on_time"]).sum())
    very_late = float((mine["amount"] * mine["p_very_late"]).sum())
    with login(url, READ) as client:
        page = client.get(f"/ui/customers/{HOSTILE_ID}").text
    assert f"{on_time:,.2f}" in page and f"{very_late:,.2f}" in page
    share = on_time / float(mine["amount"].sum())
    assert ("expected on time" in page) == (share < 0.5)
    days = re.findall(r"<time>(\d{4}-\d{2}-\d{2})</time>", page)
    assert days and max(days) <= as_of.isoformat()  # the store runs past the day: not shown
    reminders = re.findall(r'<li class="t-reminder"><time>([0-9-]+)</time>', page)
    assert reminders == [(as_of - dt.timedelta(days=5)).isoformat()]
    assert all(inv in page for inv in mine["invoice_id"])
    assert "Payment history:</strong>" in page and "nan" not in page.lower().split()


def test_two_reviewers_and_a_nightly_run_at_once_lose_nothing(site, as_of):
    """Two reviewers decide 12 items each through the pages while the next day's run goes
    through the API, all against one store: no error, every decision once in the audit."""
    import datetime as _dt
    import threading

    from dunning.ops.audit import AuditLog
    from dunning.ops.review import ReviewItem, ReviewQueue
    from engine.store import Store

    url, db = site
    store = Store(db)
    with store.connect() as con:
        open_ids = [r[0] for r in con.execute(
            "SELECT invoice_id FROM ops_recommendations ORDER BY invoice_id LIMIT 24").fetchall()]
        custs = dict(con.execute("SELECT invoice_id, customer_id FROM invoices").fetchall())
        queue = ReviewQueue(con, AuditLog(con, anchor=db.parent / "audit.anchor"))
        rids = queue.submit([ReviewItem(as_of, i, custs[i], "agency", ["test.concurrency"])
                             for i in open_ids])
    assert len(rids) == 24
    statuses: list[int] = []

    def reviewer(mine: list[str]) -> None:
        with login(url, REVIEW) as client:
            token = csrf_of(client.get("/ui/review").text)
            for rid in mine:
                r = client.post(f"/ui/review/{rid}", data={
                    "csrf": token, "decision": "approve", "reason": f"ok {rid}"},
                    headers={"HX-Request": "true"})
                statuses.append(r.status_code)

    def nightly() -> None:
        with httpx.Client(base_url=url, timeout=120) as api:
            r = api.post("/recommendations/run", json={
                "as_of": (as_of + _dt.timedelta(days=7)).isoformat()},
                headers={"Authorization": f"Bearer {REVIEW}"})
            statuses.append(r.status_code)

    threads = [threading.Thread(target=reviewer, args=(rids[0::2],)),
               threading.Thread(target=reviewer, args=(rids[1::2],)),
               threading.Thread(target=nightly)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert statuses == [200] * 25, statuses
    with store.connect() as con:
        log = AuditLog(con, anchor=db.parent / "audit.anchor")
        decided = [r["payload"]["review_id"] for r in decided_reviews(log)]
        assert sorted(decided) == sorted(rids)  # each once, none lost
        assert log.verify().ok
        n_next = con.execute("SELECT count(*) FROM ops_recommendations WHERE as_of = ?",
                             [as_of + _dt.timedelta(days=7)]).fetchone()[0]
    assert n_next > 0


def test_letter_preview_and_marking_it_sent(site):
    from dunning.ops.audit import AuditLog
    from engine.store import Store

    url, db = site
    recs = _stored(db)
    inv = recs[(recs["action"] == "email") & (recs["status"] == "recommended")
               ]["invoice_id"].iloc[0]
    with login(url, READ) as reader:
        page = reader.get(f"/ui/letters/{inv}")
        assert page.status_code == 200 and inv in page.text and 'id="mark-sent"' not in page.text
        framed = reader.get(f"/ui/letters/{inv}/letter.html", params={"action": "email"})
        assert "Nordlicht Maschinenbau GmbH" in framed.text and inv in framed.text
        assert "sandbox" in framed.headers["content-security-policy"]
        denied = reader.post(f"/ui/letters/{inv}/sent", data={"csrf": csrf_of(page.text),
                                                               "action": "email"})
        assert denied.status_code == 403
        assert reader.get("/ui/letters/NOPE").status_code == 404
    with login(url, REVIEW) as rev:
        page = rev.get(f"/ui/letters/{inv}")
        data = {"csrf": csrf_of(page.text), "action": "email"}
        first = rev.post(f"/ui/letters/{inv}/sent", data=data, follow_redirects=True)
        assert "recorded as sent" in first.text and "alice" in first.text
        again = rev.post(f"/ui/letters/{inv}/sent", data=data, follow_redirects=True)
        assert "already recorded" in again.text
    with Store(db).connect() as con:
        acts = con.execute("SELECT channel, decided_by FROM actions WHERE invoice_id = ?",
                           [inv]).fetchall()
        audit = AuditLog(con).records(invoice_id=inv, kind="action")
    assert acts.count(("email", "alice")) == 1 and len(audit) == 1


def test_model_page_frames_the_runs_report(site):
    import json

    from dunning.report.render import render_report

    from ..report.conftest import _kpis

    url, db = site
    with login(url, READ) as client:
        assert 'id="no-results"' in client.get("/ui/model").text
        assert client.get("/ui/model/report.html").status_code == 404
        bad = {"policies": {"fixed": {"npv": 1.0, "reminders_per_invoice": 2.0},
                            "rl": {"npv": 2.0}}}
        (db.parent / "results.json").write_text(json.dumps(bad))
        refused = client.get("/ui/model/report.html")
        assert refused.status_code == 422 and "is missing, expected a number" in refused.text
        results = {"scenario": "default", "policies": {
            "fixed": _kpis(812.5, 41.0, 0.23, 2.1, 63.0),
            "rl": _kpis(903.25, 35.5, 0.45, 1.7, 39.0)}}
        (db.parent / "results.json").write_text(json.dumps(results))
        page = client.get("/ui/model")
        assert 'id="report"' in page.text and 'src="/ui/model/report.html"' in page.text
        report = client.get("/ui/model/report.html")
        assert report.status_code == 200 and "sandbox" in report.headers[
            "content-security-policy"]
        assert report.text == render_report(results)  # the report's own rendering, reused


GOOD_RULE = """description: Workspace test rules.
rules:
  - id: ws.no_calls_on_saturday
    title: "No phone calls on weekends"
    jurisdiction: DE
    scope: b2c
    applies_to: [phone]
    when: {fact: is_weekend, op: eq, value: true}
    effect: veto
    citation: "house rule"
    valid_from: 2020-01-01
    rationale: Test rule.
    kind: company_policy
    tests:
      - {facts: {is_weekend: true}, action: phone, expect: fires}
      - {facts: {is_weekend: false}, action: phone, expect: does_not_fire}
      - {facts: {is_weekend: false}, action: phone, expect: fires}
"""


def test_checking_a_rule_file_shows_its_lines_and_tests_and_saves_nothing(site):
    from legal_rules.loader import PACKAGED, RuleFileError, load_rules

    url, _ = site
    broken = GOOD_RULE.replace("    effect: veto\n", "    effect: veto\n    colour: red\n")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "mine.yaml"
        p.write_text(broken)
        with pytest.raises(RuleFileError) as err:
            load_rules([PACKAGED, p])
        path_problems = [f"mine.yaml:{e.line}: {e.field or '(file)'}" for e in
                         err.value.problems]
    with login(url, READ) as client:
        form = client.get("/ui/rules/check")
        token = csrf_of(form.text)
        bad = client.post("/ui/rules/check", data={"csrf": token, "name": "mine.yaml",
                                                    "yaml": broken})
        assert bad.status_code == 422 and 'id="check-problems"' in bad.text
        for where in path_problems:  # the loader's own file:line: field
            assert where in bad.text
        assert "mine.yaml:10:" in bad.text and tmp not in bad.text
        good = client.post("/ui/rules/check", data={"csrf": token, "name": "mine.yaml",
                                                     "yaml": GOOD_RULE})
        assert good.status_code == 200 and 'id="check-ok"' in good.text
        assert "inline tests 2 of 3 pass" in good.text  # the third case is wrong on purpose
        assert "ws.no_calls_on_saturday" not in client.get("/ui/rules").text  # not saved


def _explain_fires(client: httpx.Client, rule_id: str) -> bool:
    """Whether ``rule_id`` fires for a B2C debtor called on a weekend (the explain form)."""
    from legal_rules.testing import NEUTRAL_FACTS

    form = client.get("/ui/rules/explain")
    facts = {f"fact_{k}": ("true" if v is True else "false" if v is False else str(v))
             for k, v in NEUTRAL_FACTS.items()}
    facts.update(fact_customer_type="b2c", fact_is_weekend="true")
    r = client.post("/ui/rules/explain", data={"csrf": csrf_of(form.text), "action": "phone",
                                               "as_of": "2026-03-07", **facts})
    assert r.status_code == 200, r.text
    return f'href="/ui/rules#{rule_id}"' in r.text


def test_proposing_and_approving_a_rule_file_four_eyes(site):
    """Propose from the check page (legal), the pending page lists it with its diff, the
    proposer cannot approve it, a reviewer gets 403, a second legal user approves: both
    records in the audit trail and the server decides with the new rules at once."""
    from dunning.ops.audit import AuditLog
    from engine.store import Store

    url, db = site
    rule = GOOD_RULE.replace("      - {facts: {is_weekend: false}, action: phone, expect: "
                             "fires}\n", "")
    rid = "ws.no_calls_on_saturday"
    with login(url, READ) as reader:  # no propose button for a reader, 403 if posted anyway
        token = csrf_of(reader.get("/ui/rules/check").text)
        checked = reader.post("/ui/rules/check", data={"csrf": token, "name": "mine.yaml",
                                                       "yaml": rule})
        assert 'id="check-ok"' in checked.text and 'id="propose"' not in checked.text
        assert reader.post("/ui/rules/propose", data={"csrf": token, "name": "mine.yaml",
                                                      "yaml": rule}).status_code == 403
    with login(url, LEGAL) as lena:
        before = lena.get("/ui/rules/pending").text
        old_hash = re.search(r'id="ruleset-hash">([0-9a-f]+)<', before).group(1)
        assert 'id="no-pending"' in before and not _explain_fires(lena, rid)
        token = csrf_of(before)
        failing = lena.post("/ui/rules/propose", data={"csrf": token, "name": "mine.yaml",
                                                       "yaml": GOOD_RULE})
        assert failing.status_code == 422 and "inline test of " + rid in failing.text
        checked = lena.post("/ui/rules/check", data={"csrf": token, "name": "mine.yaml",
                                                     "yaml": rule})
        assert 'id="propose"' in checked.text
        hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"',
                                 checked.text.split('id="propose-form"')[1]))
        import html as html_lib

        assert html_lib.unescape(hidden["yaml"]) == rule  # the button posts the checked file
        made = lena.post("/ui/rules/propose", data={k: html_lib.unescape(v)
                                                    for k, v in hidden.items()})
        assert made.status_code == 200, made.text
        sha = re.search(r'id="proposal-hash">([0-9a-f]{64})<', made.text).group(1)
        pending = lena.get("/ui/rules/pending").text
        assert f'id="proposal-{sha[:12]}"' in pending and "lena" in pending
        assert "+  - id: " + rid in pending  # the diff shows the added rule
        own = lena.post(f"/ui/rules/pending/{sha}", data={"csrf": token, "reason": "fine"})
        assert own.status_code == 409 and "a second person must approve" in own.text
    with login(url, REVIEW) as alice:
        page = alice.get("/ui/rules/pending").text
        assert f'id="proposal-{sha[:12]}"' in page and 'class="approve-rule"' not in page
        assert alice.post(f"/ui/rules/pending/{sha}", data={
            "csrf": csrf_of(page), "reason": "looks right"}).status_code == 403
    with login(url, LEGAL2) as otto:
        page = otto.get("/ui/rules/pending").text
        token = csrf_of(page)
        assert otto.post(f"/ui/rules/pending/{sha}", data={"csrf": token, "reason": " "}
                         ).status_code == 422
        ok = otto.post(f"/ui/rules/pending/{sha}", data={"csrf": token,
                                                         "reason": "house rule agreed"})
        assert ok.status_code == 200, ok.text
        new_hash = re.search(r'id="new-ruleset-hash">([0-9a-f]+)<', ok.text).group(1)
        assert not new_hash.startswith(old_hash) and 'id="no-pending"' in ok.text
        rules_page = otto.get("/ui/rules").text
        assert f'id="{rid}"' in rules_page and f"hash {new_hash[:12]}" in rules_page
        assert _explain_fires(otto, rid)
    with Store(db).connect() as con:
        recs = [r for r in AuditLog(con).records(kind="rules") if r["payload"]["sha256"] == sha]
    assert [r["payload"]["event"] for r in recs] == ["proposed", "approved"]
    assert recs[0]["payload"]["proposed_by"] == "lena"
    assert recs[1]["payload"]["approved_by"] == "otto"
    assert recs[1]["payload"]["ruleset_hash"] == new_hash
    assert recs[1]["personal"]["reason"] == "house rule agreed"


def test_explain_prefilled_with_an_invoices_facts_from_the_store(site, as_of):
    from engine.store import Store
    from legal_rules.from_tables import facts_for_invoices

    url, db = site
    recs = _stored(db)
    inv = recs[recs["status"] == "needs_review"]["invoice_id"].iloc[0]
    facts = facts_for_invoices(Store(db).tables(as_of=as_of), as_of)
    i = list(facts["invoice_id"]).index(inv)
    with login(url, READ) as client:
        listing = client.get("/ui/", params={"q": inv}).text
        link = re.search(r'class="explain-link" href="([^"]+)"', listing).group(1)
        page = client.get(link.replace("&amp;", "&"))
        assert page.status_code == 200 and 'id="explain-invoice"' in page.text
        days = re.search(r'id="fact_days_overdue" name="fact_days_overdue" value="(\d+)"',
                         page.text).group(1)
        assert int(days) == int(facts["days_overdue"][i])
        jur = re.search(r'id="fact_jurisdiction" name="fact_jurisdiction" value="([A-Z]+)"',
                        page.text).group(1)
        assert jur == facts["jurisdiction"][i]
        assert client.get("/ui/rules/explain", params={"invoice": "NOPE"}).status_code == 404


def test_recording_an_event_from_the_customer_page(site, as_of):
    """Reviewer only, CSRF, the form's errors named by its labels; recorded through
    dunning.ops.events.record: on the timeline at once, one audit record under ``ui:alice``."""
    from dunning.ops.audit import AuditLog
    from engine.store import Store

    url, db = site
    recs = _stored(db)
    mine = recs[recs["customer_id"] == HOSTILE_ID]
    invoice = str(mine["invoice_id"].iloc[0])
    other = str(recs[recs["customer_id"] != HOSTILE_ID]["invoice_id"].iloc[0])
    path = f"/ui/customers/{HOSTILE_ID}/events"
    promise = {"kind": "promise_to_pay", "invoice_id": invoice,
               "effective_date": as_of.isoformat(),
               "promised_date": (as_of + dt.timedelta(days=9)).isoformat(),
               "amount": "120.50", "channel": "", "note": "called back, <b>friendly</b>"}
    with login(url, READ) as reader:
        page = reader.get(f"/ui/customers/{HOSTILE_ID}").text
        assert 'id="event-form"' not in page  # no form for a read-only user ...
        denied = reader.post(path, data={**promise, "csrf": csrf_of(page)})
        assert denied.status_code == 403 and "needs &#39;reviewer&#39;" in denied.text
    with login(url, REVIEW) as client:
        page = client.get(f"/ui/customers/{HOSTILE_ID}").text
        assert 'id="event-form"' in page and f'value="{as_of.isoformat()}"' in page
        csrf = csrf_of(page)
        assert client.post(path, data={**promise, "csrf": "forged"}).status_code == 403
        bad = client.post(path, data={**promise, "kind": "payment", "amount": "lots",
                                      "csrf": csrf})
        assert bad.status_code == 422 and "amount: &#39;lots&#39; is not a number" in bad.text
        assert 'value="lots"' in bad.text  # the form keeps what was typed
        wrong = client.post(path, data={**promise, "invoice_id": other, "csrf": csrf})
        said = re.search(r'id="event-error">([^<]*)<', wrong.text).group(1)
        assert wrong.status_code == 422 and "belongs to customer" in said and "--" not in said
        late = client.post(path, data={**promise, "promised_date": "2020-01-01", "csrf": csrf})
        assert late.status_code == 422 and "promised date 2020-01-01: before the day" in late.text
        ok = client.post(path, data={**promise, "csrf": csrf})
        assert ok.status_code == 200 and 'id="event-done"' in ok.text, ok.text[-2000:]
        day = (as_of + dt.timedelta(days=9)).isoformat()
        assert f"promise to pay by {day}: 120.50" in ok.text  # on the timeline at once
        again = client.post(path, data={**promise, "csrf": csrf})
        assert "already recorded" in again.text
        paid = client.post(path, data={"kind": "payment", "invoice_id": invoice, "amount": "10",
                                       "effective_date": as_of.isoformat(), "csrf": csrf})
        assert paid.status_code == 200 and "paid 10.00" in paid.text
        assert paid.text.count("paid 10.00") == 1  # once, though it is also a payments row
        assert "<b>friendly</b>" not in paid.text
        dispute = {"invoice_id": invoice, "effective_date": as_of.isoformat(), "csrf": csrf}
        opened = client.post(path, data={**dispute, "kind": "dispute_opened"})
        assert opened.status_code == 200 and "dispute opened" in opened.text
        same = client.post(path, data={**dispute, "kind": "dispute_opened", "note": "again"})
        assert same.status_code == 200 and "already recorded dispute_opened" in same.text
        later = (as_of + dt.timedelta(days=1)).isoformat()  # a second one while it is open
        twice = client.post(path, data={**dispute, "kind": "dispute_opened",
                                        "effective_date": later})
        assert twice.status_code == 422 and "is already disputed on" in twice.text
        opt_out = client.post(path, data={"kind": "opt_out", "channel": "phone", "csrf": csrf,
                                          "effective_date": as_of.isoformat()})
        assert opt_out.status_code == 200 and "opt out of phone" in opt_out.text
    events = Store(db).events()
    assert sorted(events["kind"]) == ["dispute_opened", "opt_out", "payment", "promise_to_pay"]
    assert set(events["recorded_by"]) == {"ui:alice"}
    with Store(db).connect() as con:
        audited = AuditLog(con, anchor=db.parent / "audit.anchor").records(kind="event")
    assert sorted(r["payload"]["event"] for r in audited) == ["dispute_opened", "opt_out",
                                                             "payment", "promise_to_pay"]


def test_unknown_workspace_paths_get_an_html_page(site):
    url, _ = site
    with login(url, READ) as client:
        r = client.get("/ui/no/such/page")
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
        assert "dora (read)" in r.text and r.headers["content-security-policy"] == CSP
    with httpx.Client(base_url=url, timeout=30) as anon:
        assert anon.get("/ui/nothing").status_code == 404
        assert anon.get("/no-such-api").headers["content-type"] == "application/json"


def test_the_workspace_in_german_per_session(site):
    """English by default; the switch (CSRF-checked) turns one session's pages German, fixed
    strings from the catalogue, data untouched; another session stays English."""
    from dunning.workspace.i18n import GERMAN, LANG_COOKIE
    from legal_rules.testing import NEUTRAL_FACTS

    url, _ = site
    with login(url, REVIEW) as client, login(url, READ) as other:
        page = client.get("/ui/")
        assert '<html lang="en">' in page.text and ">Worklist</a>" in page.text
        csrf = csrf_of(page.text)
        assert client.post("/ui/language", data={"lang": "de", "next": "/ui/",
                                                 "csrf": "forged"}).status_code == 403
        assert client.post("/ui/language", data={"lang": "xx", "next": "/ui/",
                                                 "csrf": csrf}).status_code == 422
        r = client.post("/ui/language", data={"lang": "de", "next": "/ui/review",
                                              "csrf": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/ui/review"
        german = client.get("/ui/").text
        assert '<html lang="de">' in german
        for english in ("Worklist", "Export these as CSV", "Days overdue", "Legal status"):
            assert GERMAN[english] in german and f">{english}<" not in german
        assert "offene Rechnungen" in german and "Tage überfällig" in german
        customer = client.get(f"/ui/customers/{HOSTILE_ID}").text
        assert "Erwartete Zahlung des offenen Saldos" in customer and "Ereignis erfassen" in \
            customer and "&lt;script&gt;alert" in customer  # names stay as they are, escaped
        assert "Freigeben" in client.get("/ui/review").text
        for path, german_text in (("/ui/rules/explain", "Entscheidung erklären"),
                                  ("/ui/rules/check", "Regeldatei prüfen"),
                                  ("/ui/model", "Modell und Strategie"),
                                  ("/ui/nowhere", "Nicht gefunden")):
            assert german_text in client.get(path).text, path
        assert ">Worklist</a>" in other.get("/ui/").text  # the other session: English
        # engine messages too (legal_rules.messages): a missing fact blocks, said in German
        facts = {f"fact_{k}": ("true" if v is True else "false" if v is False else str(v))
                 for k, v in NEUTRAL_FACTS.items()}
        for session in (client, other):
            form = session.get("/ui/rules/explain").text
            body = {"csrf": csrf_of(form), "action": "letter", "as_of": "2026-03-02",
                    **facts, "fact_days_overdue": ""}
            page = session.post("/ui/rules/explain", data=body).text
            german_reason = "Angabe &#39;days_overdue&#39; fehlt" in page
            assert german_reason == (session is client), page[-2000:]
            assert ("fact &#39;days_overdue&#39; missing" in page) == (session is other)
        client.post("/ui/logout", data={"csrf": csrf})
        assert LANG_COOKIE not in client.cookies


def test_every_translated_template_string_has_its_german_entry():
    """The catalogue is complete: each literal a template passes to ``_`` has an entry."""
    from dunning.workspace.i18n import GERMAN
    from dunning.workspace.routes import HERE

    keys = set()
    for path in (HERE / "templates").glob("*.j2"):
        text = path.read_text(encoding="utf-8")
        keys |= set(re.findall(r'_\("((?:[^"\\]|\\.)+)"\)', text))
        keys |= set(re.findall(r"_\('([^']+)'", text))
        keys |= set(re.findall(r"_\('[^']+' if [^)]* else '([^']+)'\)", text))
        keys |= set(re.findall(r"th\('[a-z]+', '([^']+)'\)", text))
    assert len(keys) > 100, sorted(keys)[:5]
    missing = sorted(k.replace("\\'", "'") for k in keys
                     if k.replace("\\'", "'") not in GERMAN)
    assert not missing, missing
