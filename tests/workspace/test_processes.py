"""Several processes on one store: `dunning serve` (uvicorn, its own process), two reviewers
deciding through the pages and the nightly `dunning ingest` + `dunning recommend` as CLI
processes, all at once. The store's cross-process lock (engine.store.StoreLock) makes the
CLI wait for the server (which lets go as soon as a job waits) and the server's requests
wait for the job: nobody sees DuckDB's lock error, no decision is lost, each is audited
once."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from dunning.api import wait_until_healthy

from ..ops.conftest import free_port, make_tables
from .conftest import READ, REVIEW, decided_reviews
from .test_pages import csrf_of, login

ROOT = Path(__file__).resolve().parents[2]


def _dunning(*args: str) -> list[str]:
    return [sys.executable, "-m", "dunning", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "DUNNING_STORE_WAIT": "120",
            "NO_COLOR": "1", "COLUMNS": "200"}


def _until(check, timeout_s: float = 60.0) -> None:  # noqa: ANN001
    """Poll ``check()`` until true (every 10 ms); fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_reviewers_and_the_nightly_cli_jobs_share_the_store(workspace_db, tmp_path, as_of):
    from dunning.ops.audit import AuditLog
    from dunning.ops.review import ReviewItem, ReviewQueue
    from engine.store import Store, store_lock

    db = workspace_db
    store = Store(db)
    with store.connect() as con:  # 24 items to decide, before anyone else opens the store
        open_ids = [r[0] for r in con.execute(
            "SELECT invoice_id FROM ops_recommendations ORDER BY invoice_id LIMIT 24").fetchall()]
        custs = dict(con.execute("SELECT invoice_id, customer_id FROM invoices").fetchall())
        rids = ReviewQueue(con, AuditLog(con, anchor=db.parent / "audit.anchor")).submit(
            [ReviewItem(as_of, i, custs[i], "agency", ["test.processes"]) for i in open_ids])
    assert len(rids) == 24
    files = []
    for name, frame in make_tables().items():  # tonight's export: the same rows again
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        files.append(str(tmp_path / f"{name}.csv"))
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{READ} read dora\n{REVIEW} reviewer alice\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(_dunning("serve", "--db", str(db), "--tokens", str(tokens),
                                       "--port", str(port)), env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lock = store_lock(db)
    next_day = as_of + dt.timedelta(days=7)
    jobs: list[subprocess.CompletedProcess] = []
    statuses: list[tuple[str, int, str]] = []
    try:
        wait_until_healthy(url, 60, is_running=lambda: server.poll() is None)
        clients = [login(url, REVIEW), login(url, REVIEW)]
        reviewers = [c.__enter__() for c in clients]
        tokens_of = [csrf_of(c.get("/ui/review").text) for c in reviewers]  # server has it

        def nightly() -> None:
            for args in (("ingest", *files, "--db", str(db)),
                         ("recommend", "--db", str(db), "--as-of", next_day.isoformat())):
                jobs.append(subprocess.run(_dunning(*args), env=_env(), capture_output=True,
                                           text=True, timeout=300))

        def decide(i: int, mine: list[str]) -> None:
            for rid in mine:
                r = reviewers[i].post(f"/ui/review/{rid}", data={
                    "csrf": tokens_of[i], "decision": "approve", "reason": f"ok {rid}"},
                    headers={"HX-Request": "true"})
                statuses.append(("decide", r.status_code, r.text))
                page = reviewers[i].get(f"/ui/review/{rid}")  # and see it, or the busy page
                statuses.append(("read", page.status_code, page.text))

        def phase(half: int) -> None:
            threads = [threading.Thread(target=decide, args=(i, rids[i::2][half::2]))
                       for i in (0, 1)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=300)

        lock.path.write_text("")  # so that the holder line below is the job's own
        night = threading.Thread(target=nightly)
        night.start()
        _until(lambda: lock.holder().startswith("dunning ingest"))
        phase(0)  # while the ingest runs (or has just finished)
        _until(lambda: lock.holder().startswith("dunning recommend") or not night.is_alive())
        phase(1)  # while the recommendation runs
        night.join(timeout=300)
        with httpx.Client(base_url=url, timeout=30) as api:  # the JSON API after the night
            r = api.get("/review", params={"status": "approved"},
                        headers={"Authorization": f"Bearer {READ}"})
        statuses.append(("api", r.status_code, r.text))
        for c in clients:
            c.__exit__(None, None, None)
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
    assert [j.returncode for j in jobs] == [0, 0], [(j.stdout, j.stderr) for j in jobs]
    assert server.returncode in (0, -15), out
    shown = [text for _kind, _code, text in statuses] + [j.stdout + j.stderr for j in jobs]
    assert not any("conflicting lock" in s.lower() or "could not set lock" in s.lower()
                   or "locked by another process" in s for s in [*shown, out])  # DuckDB's
    assert not any("Traceback" in s for s in [*shown, out])
    # every decision answered 200 (it waited for the job); a read may get the busy page
    assert [c for k, c, _t in statuses if k == "decide"] == [200] * 24, statuses
    assert all(c == 200 or (c == 503 and "is using it" in t)
               for k, c, t in statuses if k != "decide"), statuses
    with store.connect() as con:
        log = AuditLog(con, anchor=db.parent / "audit.anchor")
        decided = [r["payload"]["review_id"] for r in decided_reviews(log)]
        assert sorted(decided) == sorted(rids)  # each once, none lost
        assert log.verify().ok
        assert con.execute("SELECT count(*) FROM ops_recommendations WHERE as_of = ?",
                           [next_day]).fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM ops_review_queue WHERE review_id IN "
                           "(SELECT unnest(?)) AND status = 'approved'",
                           [rids]).fetchone()[0] == 24


HOLDER = """
import sys
from engine.store import Store, configure_lock
configure_lock(label="nightly-test-job")
with Store(sys.argv[1]).connect():
    print("ready", flush=True)
    sys.stdin.read()
"""


def test_decisions_made_while_a_job_holds_the_store_are_queued_and_applied_once(
        workspace_db, tmp_path, as_of, serve):
    """A job holds the store longer than a decision waits: pages and the API answer 503
    naming it, decisions are journalled (202 "queued") and recorded once when it ends; a
    second application of the same entries (a crash before the journal's done line) adds
    nothing."""
    from dunning.api import ApiConfig, create_app, load_tokens
    from dunning.ops.audit import AuditLog
    from dunning.ops.journal import Journal
    from dunning.ops.review import ReviewItem, ReviewQueue
    from engine.store import Store

    db = workspace_db
    store = Store(db)
    with store.connect() as con:
        open_ids = [r[0] for r in con.execute(
            "SELECT invoice_id FROM ops_recommendations ORDER BY invoice_id LIMIT 4").fetchall()]
        custs = dict(con.execute("SELECT invoice_id, customer_id FROM invoices").fetchall())
        rids = ReviewQueue(con, AuditLog(con, anchor=db.parent / "audit.anchor")).submit(
            [ReviewItem(as_of, i, custs[i], "agency", ["test.journal"]) for i in open_ids])
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{READ} read dora\n{REVIEW} reviewer alice\n")
    app = create_app(ApiConfig(db=db, tokens=load_tokens(tokens), store_wait_s=0.2,
                               decision_wait_s=0.2))
    state = app.app.state.ops
    bearer = {"Authorization": f"Bearer {REVIEW}"}
    event = {"kind": "conversation", "invoice_id": open_ids[0], "channel": "phone",
             "effective_date": as_of.isoformat(), "note": "promised to look into it"}
    with serve(app) as url, login(url, REVIEW) as clerk, \
            httpx.Client(base_url=url, timeout=30) as api:
        csrf = csrf_of(clerk.get("/ui/review").text)
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], env=_env(),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "ready"
            page = clerk.get("/ui/review")
            assert page.status_code == 503 and page.headers["retry-after"] == "5"
            assert f"nightly-test-job, pid {holder.pid}" in page.text
            assert "Nothing was changed" in page.text
            r = api.get("/review", headers=bearer)
            assert r.status_code == 503 and "nightly-test-job" in r.json()["error"]
            for rid in rids[:3]:
                r = clerk.post(f"/ui/review/{rid}", data={
                    "csrf": csrf, "decision": "approve", "reason": f"fine {rid}"},
                    headers={"HX-Request": "true"})
                assert r.status_code == 202 and "Queued" in r.text, r.text
                assert f'id="review-{rid}"' in r.text and "nightly-test-job" in r.text
            r = api.post(f"/review/{rids[3]}/reject", json={"reason": "not yet"},
                         headers=bearer)
            assert r.status_code == 202 and r.json()["queued"], r.text
            r = api.post("/events", json=event, headers=bearer)
            assert r.status_code == 202 and r.json()["queued"], r.text
            entries = Journal(db).pending()
            assert [e["kind"] for e in entries] == ["review"] * 4 + ["event"]
            assert Journal(db).path.stat().st_mode & 0o077 == 0
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
        _until(lambda: not Journal(db).pending(), timeout_s=60)  # applied once it is free
        page = clerk.get("/ui/review", params={"status": "all"})
        assert page.status_code == 200 and 'id="queued-decisions"' not in page.text
    assert Journal(db).path.read_text() == ""  # emptied: no reason outlives its record
    # a second application of the same entries (crash before the done line): nothing new
    state.journal.path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    again = state.journal.apply({"review": state._apply_review, "event": state._apply_event})
    assert [d["outcome"] for d in again] == ["applied"] * 5
    with store.connect() as con:
        log = AuditLog(con, anchor=db.parent / "audit.anchor")
        decided = {r["payload"]["review_id"]: r["payload"]["decision"]
                   for r in decided_reviews(log)}
        assert len([r for r in decided_reviews(log) if r["payload"]["review_id"] in rids]) == 4
        assert {rid: decided[rid] for rid in rids} == {
            **{rid: "approved" for rid in rids[:3]}, rids[3]: "rejected"}
        assert con.execute("SELECT count(*) FROM events WHERE kind = 'conversation' AND "
                           "invoice_id = ? AND recorded_by = 'api:alice'",
                           [open_ids[0]]).fetchone()[0] == 1
        assert len([r for r in log.records(kind="event")
                    if r["payload"]["recorded_by"] == "api:alice"]) == 1
        assert log.verify().ok


def test_a_request_waiting_for_a_held_store_keeps_no_other_request_waiting(
        workspace_db, tmp_path, as_of, serve):
    """While a job holds the store, an event waits for it (up to its decision wait) without
    holding the process's rules lock: an explain request, which needs no store, is answered
    meanwhile; the event is recorded once the job ends. Before ``RulesLock.over`` the event
    held the lock through its wait, and every explain of the process waited behind it."""
    from dunning.api import ApiConfig, create_app, load_tokens
    from engine.store import Store, store_lock

    db = workspace_db
    with Store(db).connect() as con:
        invoice = con.execute("SELECT invoice_id FROM ops_recommendations "
                              "ORDER BY invoice_id LIMIT 1").fetchone()[0]
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{READ} read dora\n{REVIEW} reviewer alice\n")
    app = create_app(ApiConfig(db=db, tokens=load_tokens(tokens), store_wait_s=0.2,
                               decision_wait_s=120.0))
    event = {"kind": "conversation", "invoice_id": invoice, "channel": "phone",
             "effective_date": as_of.isoformat(), "note": "waits for the job"}
    explain = {"facts": {"days_overdue": 20}, "action": "email", "as_of": as_of.isoformat()}
    answers: dict[str, httpx.Response] = {}

    def post(name: str, path: str, body: dict, token: str) -> None:
        with httpx.Client(base_url=url, timeout=180) as client:
            answers[name] = client.post(path, json=body,
                                        headers={"Authorization": f"Bearer {token}"})

    with serve(app) as url:
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], env=_env(),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "ready"
            waiting = threading.Thread(target=post, args=("event", "/events", event, REVIEW))
            waiting.start()
            _until(lambda: store_lock(db).others_waiting())  # the event waits for the job
            asking = threading.Thread(target=post,
                                      args=("explain", "/rules/explain", explain, READ))
            asking.start()
            asking.join(timeout=60)
            answered = not asking.is_alive()
            still_waiting = waiting.is_alive()
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
        waiting.join(timeout=120)
        asking.join(timeout=120)
    assert answered and still_waiting, "the explain request waited for the job's store"
    assert answers["explain"].status_code == 200, answers["explain"].text
    assert answers["explain"].json()["status"] != "allowed"  # facts missing: fails closed
    assert answers["event"].status_code == 200, answers["event"].text
    assert answers["event"].json()["recorded"] is True
