"""Bounded load test of the REST API: one invoice's recommendation per request.

    .venv/bin/python benchmarks/bench_api.py [--invoices 20000] [--requests 20000] [--clients 4]

Builds a store (real ingest) and runs the daily recommendation (not timed; the audit chain is
keyed with a random key made for this run and passed in ``DUNNING_AUDIT_KEY``), starts the real
server (`dunning serve` of this checkout, uvicorn, one process) on 127.0.0.1 and a free port,
then
``--clients`` client processes each send ``--requests / --clients`` sequential
``GET /recommendations/{invoice_id}`` requests with a bearer token over keep-alive HTTP
(``http.client``; random invoice ids, seeded). Measures requests per second and latency percentiles.
Targets: > 500 req/s and p99 < 50 ms on 2 cores. Writes ``benchmarks/results/api.json``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
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


def _client(url: str, token: str, ids: list[str], out: mp.Queue) -> None:
    """Sequential keep-alive requests with the standard library's light HTTP client, so the
    load generator takes as little of the shared CPU as possible."""
    import http.client
    from urllib.parse import urlsplit

    host = urlsplit(url)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
    headers = {"Authorization": f"Bearer {token}"}
    lat, errors = [], 0
    for inv in ids:
        t = time.perf_counter()
        conn.request("GET", f"/recommendations/{inv}", headers=headers)
        resp = conn.getresponse()
        resp.read()
        lat.append(time.perf_counter() - t)
        errors += resp.status != 200
    conn.close()
    out.put((lat, errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()


    from dunning.api import wait_until_healthy
    from dunning.ops.recommend import Recommender
    from engine.ingest import ingest
    from engine.store import Store

    os.environ["DUNNING_AUDIT_KEY"] = secrets.token_hex(32)  # this run's audit key
    os.environ.pop("DUNNING_AUDIT_KEY_FILE", None)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        folder = Path(tmp)
        files = write_open_book(folder, args.invoices, args.seed)
        db = folder / "store" / "dunning.duckdb"
        ingest(files, db=db)
        ids = Recommender(Store(db)).run(AS_OF).frame["invoice_id"].tolist()

        token = secrets.token_urlsafe(32)
        port = free_port()
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "DUNNING_API_TOKENS": f"{token}:read:bench",
               "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
        # The CLI of this checkout (not whichever `dunning` script is installed).
        server = subprocess.Popen([sys.executable, "-c", "from dunning.cli import app; app()",
                                   "serve", "--db", str(db), "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_until_healthy(url, 60, is_running=lambda: server.poll() is None,
                                   poll_s=0.1)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}: {server.stderr.read()[-500:]}") from None
            rng = np.random.default_rng(args.seed)
            warm = rng.choice(ids, 200).tolist()
            _client(url, token, warm, q := mp.Queue())  # warm-up: fills the day cache
            q.get()
            per = args.requests // args.clients
            parts = [rng.choice(ids, per).tolist() for _ in range(args.clients)]
            load_start = round(os.getloadavg()[0], 2)
            results, elapsed, server_cpu = run_clients(_client, url, token, parts, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    lat = np.concatenate([np.asarray(r[0]) for r in results]) * 1000
    errors = sum(r[1] for r in results)
    rps = len(lat) / elapsed
    p99 = float(np.percentile(lat, 99))
    figures = {
        "invoices_in_store": len(ids),
        "requests": int(len(lat)),
        "client_processes": args.clients,
        "errors": int(errors),
        "seconds": round(elapsed, 3),
        "requests_per_second": round(rps, 1),
        "requests_per_second_target": 500,
        "latency_ms": {q: round(float(np.percentile(lat, int(q[1:]))), 2)
                       for q in ("p50", "p90", "p95", "p99")},
        "latency_p99_ms_target": 50,
        "meets_targets": bool(rps > 500 and p99 < 50 and errors == 0),
        "server_cpu_ms_per_request": round(1000 * server_cpu / len(lat), 3),
        "server_capacity_req_per_s_one_free_core": round(len(lat) / server_cpu, 1)
        if server_cpu else None,
        "load_average_1min_at_start": load_start,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "endpoint": "GET /recommendations/{invoice_id} (bearer token, keep-alive)",
        "note": "server: one uvicorn process (httptools); http.client clients run on the "
                "same 2 cores, so they compete with the server; the machine was shared with "
                "other jobs (see the load averages). Auth: bearer token compared in constant "
                "time, per-client backoff only after failures (none here).",
        "seed": args.seed,
    }
    path = write_result("api", figures)
    print(f"{len(lat)} requests in {elapsed:.2f} s: {rps:.0f} req/s, p99 {p99:.1f} ms, "
          f"errors {errors} -> {path}")


if __name__ == "__main__":
    main()
