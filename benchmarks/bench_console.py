"""The browser workspace under a bounded load: worklist pages (first page, every filter and
sort) and customer pages over 100,000 open invoices. Target (issue 22): p95 < 300 ms.

    .venv/bin/python benchmarks/bench_console.py [--invoices 100000] [--rounds 6] [--clients 2]

Builds the open book of ``bench_recommend`` through the real ingest and runs the daily
recommendation (not timed). That book has no payment history, so there is no payment model:
the stored P(on time / late / very late) are then drawn from a seeded Dirichlet(2, 2, 2) per
row (one SQL update), only so that the risk filter and sort work on a realistic spread of
values; the pages' speed does not depend on the values. Starts the real server
(``dunning serve``, one uvicorn process) on 127.0.0.1, logs ``--clients`` client processes in
through the login form, and each requests ``--rounds`` times every page of :data:`PAGES` plus
``--customers`` random customer pages, sequentially over keep-alive HTTP. Latency is measured
at the client (so it includes the client's share of the 2 shared cores: an upper bound of the
server's time); the server's CPU time per request (all its threads, from /proc) is the figure
least disturbed by other jobs on the machine. Writes ``benchmarks/results/console.json``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from benchmarks.bench_recommend import AS_OF, write_open_book  # noqa: E402
from benchmarks.common import free_port, run_clients, write_result  # noqa: E402

PAGES = {
    "first_page": "/ui/",
    "risk_at_risk": "/ui/?risk=at_risk",
    "action_letter": "/ui/?action=letter",
    "status_needs_review": "/ui/?status=needs_review",
    "jurisdiction_DE": "/ui/?jurisdiction=DE",
    "segment_startup": "/ui/?segment=startup",
    "amount_range": "/ui/?min_amount=1000&max_amount=5000",
    "text_search": "/ui/?q=customer+123",
    "sort_amount_desc": "/ui/?sort=amount&dir=desc",
    "sort_customer": "/ui/?sort=customer",
    "sort_overdue_desc_page_40": "/ui/?sort=overdue&dir=desc&page=40",
    "combined": "/ui/?risk=at_risk&jurisdiction=DE&sort=amount&dir=desc&page=2",
}
TARGET_MS = 300


def _login(conn, token: str) -> str:  # noqa: ANN001
    """Log in through the form; return the session cookie header."""
    from urllib.parse import urlencode

    conn.request("GET", "/ui/login")
    resp = conn.getresponse()
    html = resp.read().decode()
    nonce = resp.getheader("set-cookie").split(";", 1)[0]
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    conn.request("POST", "/ui/login", body=urlencode({"csrf": csrf, "token": token,
                                                       "next": "/ui/"}),
                 headers={"Cookie": nonce,
                          "Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 303, resp.status
    cookies = [c.split(";", 1)[0] for c in resp.headers.get_all("set-cookie")]
    return next(c for c in cookies if c.startswith("dunning_session="))


def _client(url: str, token: str, paths: list[tuple[str, str]], out: mp.Queue) -> None:
    import http.client
    from urllib.parse import urlsplit

    host = urlsplit(url)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
    cookie = _login(conn, token)
    lat: list[tuple[str, float]] = []
    errors = 0
    for name, path in paths:
        t = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": cookie})
        resp = conn.getresponse()
        resp.read()
        lat.append((name, time.perf_counter() - t))
        errors += resp.status != 200
    conn.close()
    out.put((lat, errors))


def _fake_probabilities(db: Path, seed: int) -> None:
    """Seeded Dirichlet(2, 2, 2) probabilities for every stored row (see the docstring)."""
    import pandas as pd

    from engine.store import Store

    with Store(db).connect() as con:  # through the store's cross-process lock
        ids = [r[0] for r in con.execute(
            "SELECT invoice_id FROM ops_recommendations").fetchall()]
        p = np.random.default_rng(seed).dirichlet([2.0, 2.0, 2.0], len(ids))
        frame = pd.DataFrame({"invoice_id": ids, "a": p[:, 0], "b": p[:, 1], "c": p[:, 2]})
        con.register("_p", frame)
        con.execute("UPDATE ops_recommendations r SET p_on_time = _p.a, p_late = _p.b, "
                    "p_very_late = _p.c FROM _p WHERE _p.invoice_id = r.invoice_id")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--customers", type=int, default=60)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from dunning.api import wait_until_healthy
    from dunning.ops.recommend import Recommender
    from engine.ingest import ingest
    from engine.store import Store

    load_at_start = os.getloadavg()[0]  # other jobs on the machine (recorded with the result)
    os.environ["DUNNING_AUDIT_KEY"] = secrets.token_hex(32)  # this run's audit key
    os.environ.pop("DUNNING_AUDIT_KEY_FILE", None)
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        folder = Path(tmp)
        files = write_open_book(folder, args.invoices, args.seed)
        db = folder / "store" / "dunning.duckdb"
        ingest(files, db=db)
        frame = Recommender(Store(db)).run(AS_OF).frame
        _fake_probabilities(db, args.seed)
        customers = sorted(set(frame["customer_id"]))

        token = secrets.token_urlsafe(24)
        port = free_port()
        env = {**os.environ, "DUNNING_API_TOKENS": f"{token}:read:bench"}
        # `dunning serve` of the code this script runs (not the installed console script's)
        cli = [sys.executable, "-c", "from dunning.cli import main; main()"]
        server = subprocess.Popen([*cli, "serve", "--db", str(db), "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        rng = np.random.default_rng(args.seed)
        try:
            try:
                wait_until_healthy(url, 60, is_running=lambda: server.poll() is None,
                                   poll_s=0.1)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}: {server.stderr.read()[-500:]}") from None
            warm = list(PAGES.items())
            _client(url, token, warm, q := mp.Queue())  # warm-up (DuckDB caches, templates)
            q.get()
            plans = []
            for _ in range(args.clients):
                plan = [(n, p) for _ in range(args.rounds) for n, p in PAGES.items()]
                plan += [("customer", f"/ui/customers/{c}")
                         for c in rng.choice(customers, args.customers).tolist()]
                plans.append([plan[i] for i in rng.permutation(len(plan))])
            results, elapsed, server_cpu = run_clients(_client, url, token, plans, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    by_page: dict[str, list[float]] = {}
    for lat, _ in results:
        for name, s in lat:
            by_page.setdefault(name, []).append(s * 1000)
    errors = sum(r[1] for r in results)

    def pct(values: list[float], q: int) -> float:
        return round(float(np.percentile(values, q)), 1)

    worklist = [v for k, vals in by_page.items() if k != "customer" for v in vals]
    repo = Path(__file__).resolve().parents[1]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                            text=True).stdout.strip() or None
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "dunning", "benchmarks"],
                                cwd=repo, capture_output=True, text=True).stdout.strip())
    figures = {
        "commit": commit,
        "code_changed_since_commit": dirty,
        "open_invoices": len(frame),
        "customers": len(customers),
        "client_processes": args.clients,
        "requests": sum(len(v) for v in by_page.values()),
        "errors": int(errors),
        "seconds": round(elapsed, 2),
        "worklist_ms": {"p50": pct(worklist, 50), "p95": pct(worklist, 95),
                        "max": round(max(worklist), 1)},
        "customer_page_ms": {"p50": pct(by_page["customer"], 50),
                             "p95": pct(by_page["customer"], 95),
                             "max": round(max(by_page["customer"]), 1)},
        "p95_target_ms": TARGET_MS,
        "server_cpu_ms_per_request": round(
            1000 * server_cpu / sum(len(v) for v in by_page.values()), 1),
        "per_page_p95_ms": {k: pct(v, 95) for k, v in by_page.items()},
        "meets_target": bool(pct(worklist, 95) < TARGET_MS
                             and pct(by_page["customer"], 95) < TARGET_MS and errors == 0),
        "load_average_1min_at_start": round(load_at_start, 2),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "note": "client-side latency of logged-in GETs (session cookie), one uvicorn process; "
                "the clients share the 2 cores with the server and the machine with other "
                "jobs. Probabilities are synthetic (seeded Dirichlet), the open book has no "
                "payment history to train a model on.",
        "seed": args.seed,
    }
    path = write_result("console", figures)
    print(f"worklist p95 {figures['worklist_ms']['p95']} ms, customer p95 "
          f"{figures['customer_page_ms']['p95']} ms, errors {errors} -> {path}")


if __name__ == "__main__":
    main()
