"""Several processes on one store: `dunning serve` (uvicorn, its own process), two reviewers
deciding through the pages and the nightly `dunning ingest` + `dunning recommend` as CLI
processes, all at once. The store's cross-process lock (engine.store.StoreLock) makes the
CLI wait for the server (which lets go as soon as a job waits) and the server's requests
wait for the job: nobody sees DuckDB's lock error, no decision is lost, each is audited
once."""

from __future__ import annotations

import datetime as dt
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
    assert not any("lock" in s.lower() and "conflicting" in s.lower() for s in shown)
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
