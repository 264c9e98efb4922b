"""The KPI what-if of a changed rule file, run for the browser in a background thread.

:func:`dunning.business.whatif.run_whatif` (what ``dunning what-if --rule-file`` runs) takes
seconds even on small defaults, so a page never waits for it: :meth:`WhatIfJobs.submit`
queues it on one worker thread (the server's event loop and its other pages go on; two
what-ifs never compete for the two cores) and returns a job whose id is the sha256 of the
rule set simulated (the file's name and bytes, layered on the packaged rules) and the sizes:
the same rule set asked again is the same job, its result cached.

    jobs = WhatIfJobs(invoices=300, seeds=2)
    job = jobs.submit("de.yaml", text)       # at once; job.state "queued"
    jobs.get(job.id).state                   # "running" -> "done" (job.result) | "failed"
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from engine.errors import InputError

log = logging.getLogger(__name__)

# KPI id of dunning.business.whatif.BUSINESS_KPIS -> how its figures are shown
KPI_UNITS: dict[str, str] = {"cash_collected": "money", "days_sales_outstanding": "days",
                             "days_to_pay": "days", "paid_after_first_reminder": "percent"}
MAX_JOBS = 64  # finished jobs kept (oldest dropped first)
MAX_WAITING = 4  # queued or running; more are refused (each takes seconds of a core)


@dataclass
class WhatIfJob:
    """One what-if: ``state`` queued / running / done / failed; ``result`` the
    ``WhatIfResult.to_dict()`` when done; ``problems`` (file:line: field: message) or an
    error message when failed; ``step``/``steps`` the harness's progress."""

    id: str
    name: str
    file_sha256: str
    invoices: int
    seeds: int
    state: str = "queued"
    message: str = ""
    step: int = 0
    steps: int = 0
    problems: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None
    outcome: Any = None  # the WhatIfResult itself: its messages render in any language
    seconds: float = 0.0
    submitted: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


def job_id(name: str, raw: bytes, invoices: int, seeds: int) -> str:
    """The id of the what-if of rule file ``name`` with bytes ``raw`` (sha256, hex)."""
    h = hashlib.sha256(f"{name}\0{invoices}\0{seeds}\0".encode())
    h.update(hashlib.sha256(raw).digest())
    return h.hexdigest()


class WhatIfJobs:
    """What-ifs of rule files run one at a time on a worker thread, results kept by id."""

    def __init__(self, invoices: int = 300, seeds: int = 2) -> None:
        self.invoices, self.seeds = invoices, seeds
        self._jobs: dict[str, WhatIfJob] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dunning-whatif")

    def submit(self, name: str, text: str) -> WhatIfJob:
        """The job of ``name`` with ``text`` (a cached or running one, else a new one).

        Raises :class:`InputError` when :data:`MAX_WAITING` what-ifs are already waiting."""
        raw = text.encode("utf-8")
        key = job_id(name, raw, self.invoices, self.seeds)
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.state != "failed":
                return job
            waiting = sum(not j.finished for j in self._jobs.values())
            if waiting >= MAX_WAITING:
                raise InputError(f"{waiting} what-ifs are running or waiting; try again in a "
                                 "minute")
            job = WhatIfJob(key, name, hashlib.sha256(raw).hexdigest(), self.invoices,
                            self.seeds)
            self._jobs[key] = job
            self._forget_old()
        self._pool.submit(self._run, job, raw)
        return job

    def get(self, key: str) -> WhatIfJob | None:
        with self._lock:
            return self._jobs.get(key)

    def _forget_old(self) -> None:
        done = sorted((j for j in self._jobs.values() if j.finished), key=lambda j: j.submitted)
        for j in done[:max(0, len(self._jobs) - MAX_JOBS)]:
            del self._jobs[j.id]

    def _run(self, job: WhatIfJob, raw: bytes) -> None:
        import tempfile
        from pathlib import Path

        from dunning.business.whatif import Change, run_whatif
        from legal_rules.loader import RuleFileError

        def progress(message: str, done: int, total: int) -> None:
            # one call per seed of each side (current, changed): 2 x seeds steps in all
            job.message, job.step, job.steps = message, job.step + 1, 2 * total

        job.state, start = "running", time.monotonic()
        try:
            with tempfile.TemporaryDirectory(prefix="dunning-whatif-") as tmp:
                path = Path(tmp) / job.name
                path.write_bytes(raw)
                try:
                    result = run_whatif(Change.parse(f"rules={path}"), n_invoices=job.invoices,
                                        seeds=job.seeds, progress=progress)
                except RuleFileError as exc:
                    job.problems = [str(p).replace(str(path), job.name) for p in exc.problems]
                    job.state = "failed"
                    return
                except InputError as exc:
                    job.problems = [str(exc).replace(str(path), job.name)]
                    job.state = "failed"
                    return
            job.result, job.outcome = result.to_dict(), result
            job.state = "done"
        except Exception:  # a bug: logged with its trace for the operator, not shown
            log.exception("what-if of %s failed", job.name)
            job.problems = ["the what-if stopped with an internal error (see the server log)"]
            job.state = "failed"
        finally:
            job.seconds = time.monotonic() - start


def kpi_rows(result: dict[str, Any], lang: str = "en") -> list[dict[str, Any]]:
    """The KPI table of a what-if in business terms: per KPI its label in ``lang`` (the
    what-if's own :data:`~dunning.business.whatif.BUSINESS_KPIS`), current and changed
    mean, the paired difference with its 95 % interval, and a verdict (better / worse / no
    clear change: the interval contains 0)."""
    from dunning.business.whatif import BUSINESS_KPIS

    rows = []
    for k, diff in result["difference"].items():
        kpi = BUSINESS_KPIS.get(k)
        label = kpi.label.get(lang, kpi.label["en"]) if kpi else k.replace("_", " ")
        good = result.get("better", {}).get(k, 0)
        unit = KPI_UNITS.get(k, "number")
        sure = not diff["ci_low"] <= 0 <= diff["ci_high"]
        verdict = ("no clear change" if not sure or good == 0 or diff["mean"] == 0 else
                   "better" if (diff["mean"] > 0) == (good > 0) else "worse")
        rows.append({"kpi": k, "label": label, "unit": unit,
                     "current": show(result["current"][k]["mean"], unit),
                     "changed": show(result["changed"][k]["mean"], unit),
                     "diff": f"{show(diff['mean'], unit, True)} [{show(diff['ci_low'], unit, True)}"
                             f", {show(diff['ci_high'], unit, True)}]",
                     "verdict": verdict})
    return rows


def show(value: float, unit: str, signed: bool = False) -> str:
    """A KPI figure for a reader: money in whole units with thousands separators, days with
    one decimal, percentages with one (a difference of them in percentage points), counts to
    3 significant digits."""
    sign = "+" if signed else ""
    if value != value:
        return "–"
    if unit == "money":
        return f"{value:{sign},.0f}"
    if unit == "days":
        return f"{value:{sign}.1f}"
    if unit == "percent":
        return f"{value:{sign}.1f} {'pp' if signed else '%'}"
    return f"{value:{sign},.3g}" if abs(value) < 1000 else f"{value:{sign},.0f}"


def other_rules_moved(result: dict[str, Any]) -> list[tuple[str, int, int]]:
    """``(rule id, refused before, refused after)`` for rules the file does not change whose
    refusals moved (as the CLI lists them)."""
    changed = {c["rule_id"] for c in result["rule_changes"]}
    cur, chg = result["vetoes_current"], result["vetoes_changed"]
    return [(r, cur.get(r, 0), n) for r, n in sorted(chg.items())
            if n != cur.get(r, 0) and r not in changed]
