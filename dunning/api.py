"""REST API for the AR team's systems (ERP, mail, dashboards): ``dunning serve``.

FastAPI app (OpenAPI at ``/docs``, schema at ``/openapi.json``) over the same store, audit
log and review queue as the CLI. Every endpoint except ``/health`` needs a bearer token::

    Authorization: Bearer <token>

Tokens come from a file (``--tokens FILE``: one ``token role [name]`` per line, ``#``
comments) or the environment variable ``DUNNING_API_TOKENS`` (``token:role[:name],...``),
never from code. Roles: ``read`` (look up recommendations, predictions, rules, audit),
``reviewer`` (also decide review items and start a daily run) and ``legal`` (reads like
``read``; its token approves rule changes, ``dunning rules approve``). A reviewer's decisions
are recorded under the token's name.

Tokens must carry at least :data:`MIN_TOKEN_BITS` bits by a conservative estimate
(:func:`token_bits`; e.g. ``python -c 'import secrets; print(secrets.token_urlsafe(32))'``):
weaker ones are refused at start-up. Failed authentication is slowed down per client
(exponential backoff, bounded; the event loop is never blocked) and logged without the token.

Every error, including unknown routes and methods, is JSON ``{"error": ..., "problems":
[...]}``: 401 missing/unknown token, 403 role, 404 unknown id or route, 405 method, 409 state
conflict, 413 body larger than ``max_body_bytes``, 422 invalid input (each problem names the
field, what was found and what was expected; dates outside ``as_of_min`` .. today +
``as_of_days_ahead``), 429 too many failed authentications, 500 (no details). The OpenAPI
document declares the bearer scheme and these responses.

The recommendation of one invoice (``GET /recommendations/{invoice_id}``) is served from an
in-memory cache of the day's stored rows (pre-serialised JSON), refreshed every
``cache_seconds`` and after a run, so the hot path does not touch the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import ipaddress
import json
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from dunning.ops.dates import AS_OF_MAX_DAYS_AHEAD, AS_OF_MIN, as_of_problem, today_utc
from engine.errors import DunningError, InputError
from engine.store import Store, StoreBusy, lock_wait, store_lock

ROLES = ("read", "reviewer", "legal")  # legal: reads, and approves rule changes (CLI)


class RulesLock:
    """The lock of this process around a legal decision and the write it leads to:
    durable_rules keeps one engine state per ruleset (one case at a time per process) and
    one writer appends the audit chain at a time.

    ``with lock:`` around a decision that reads nothing from the store (explain, rule
    tests); ``with lock.over(store):`` around one that reads or writes it. ``over`` takes
    the store's cross-process lease first, waiting as long as the request may
    (``engine.store.lock_wait``), and this lock second: a request waiting for a store that
    another process holds (the nightly run) holds nothing here, so explain pages and the
    other requests that do not need the store go on. The order cannot deadlock as long as
    every holder of this lock that touches the store entered through ``over``: its opens
    are then nested leases, granted at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()

    @contextlib.contextmanager
    def over(self, store: Store) -> Iterator[None]:
        """Hold a lease of ``store`` (may raise ``StoreBusy``), then this lock."""
        with store_lock(store.path).lease(), self._lock:
            yield


_RULES_LOCK = RulesLock()
TOKEN_ENV = "DUNNING_API_TOKENS"
ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"
# A letter is a document, never an application: no script, no external resource (inline
# style only), not framed, not sniffed as another type.
LETTER_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; "
              "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
LETTER_HEADERS = {"Content-Security-Policy": LETTER_CSP, "X-Content-Type-Options": "nosniff",
                  "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
MIN_TOKEN_BITS = 128
log = logging.getLogger("dunning.api")


def token_bits(token: str) -> float:
    """A conservative estimate of a token's entropy in bits.

    ``effective length x log2(alphabet)``: the alphabet is the union of the character classes
    used (lower 26, upper 26, digits 10, other 33); a character that continues a run (the
    same step as the two before it: ``aaa``, ``abc``, ``987``) adds nothing, and the
    effective length is at most 4x the number of distinct characters (``acacac...``). So
    ``aaaa...`` is ~10 bits, ``secrets.token_hex(16)`` ~150, ``token_urlsafe(32)`` ~250.
    """
    if not token:
        return 0.0
    pool = (26 * any(c.islower() for c in token) + 26 * any(c.isupper() for c in token)
            + 10 * any(c.isdigit() for c in token)
            + 33 * any(not c.isalnum() for c in token))
    effective = 0
    for i, c in enumerate(token):
        if i >= 2:
            step, before = ord(c) - ord(token[i - 1]), ord(token[i - 1]) - ord(token[i - 2])
            if step == before and abs(step) <= 1:
                continue
        effective += 1
    effective = min(effective, 4 * len(set(token)))
    return effective * math.log2(max(pool, 2))


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``role`` is ``read``, ``reviewer`` or ``legal`` (reads like ``read``;
    approves rule changes with ``dunning rules approve``)."""

    name: str
    role: str


def load_tokens(path: str | os.PathLike[str] | None = None,
                env: str | None = None) -> dict[str, Principal]:
    """Tokens from ``path`` or, without it, from ``$DUNNING_API_TOKENS``.

    File: one ``token role [name]`` per line; env: ``token:role[:name]`` separated by commas.
    Raises :class:`InputError` naming the line when a token is short or a role unknown.
    """
    entries: list[tuple[str, list[str]]] = []
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"--tokens {p}: file not found; expected lines `token role [name]`")
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
            line = line.split("#", 1)[0].strip()
            if line:
                entries.append((f"{p}, line {n}", line.split()))
    else:
        raw = env if env is not None else os.environ.get(TOKEN_ENV, "")
        for n, item in enumerate(x.strip() for x in raw.split(",")):
            if item:
                entries.append((f"${TOKEN_ENV}, entry {n + 1}", item.split(":")))
    tokens: dict[str, Principal] = {}
    for where, parts in entries:
        if len(parts) < 2 or parts[1] not in ROLES:
            raise InputError(f"{where}: expected `token role [name]` with role in "
                             f"{', '.join(ROLES)}; found {len(parts)} field(s), role "
                             f"{parts[1] if len(parts) > 1 else None!r}")
        bits = token_bits(parts[0])
        if len(parts[0]) < 16 or bits < MIN_TOKEN_BITS:
            raise InputError(f"{where}: token has {len(parts[0])} characters and about "
                             f"{bits:.0f} bits of entropy; expected at least 16 characters "
                             f"and {MIN_TOKEN_BITS} bits (make one with `python -c 'import "
                             "secrets; print(secrets.token_urlsafe(32))'`)")
        tokens[parts[0]] = Principal(parts[2] if len(parts) > 2 else f"{parts[1]}-token",
                                     parts[1])
    if not tokens:
        raise InputError(f"no API tokens: give --tokens FILE or set {TOKEN_ENV}; the API does "
                         "not run without authentication")
    return tokens


@dataclass
class ApiConfig:
    """Settings of one API process."""

    db: Path
    tokens: dict[str, Principal]
    model_dir: Path | None = None
    policy_dir: str | None = None
    creditor: Path | None = None
    max_body_bytes: int = 64 * 1024
    max_batch: int = 500
    cache_seconds: float = 5.0
    as_of_min: dt.date = AS_OF_MIN
    as_of_days_ahead: int = AS_OF_MAX_DAYS_AHEAD
    auth_backoff_s: float = 0.05  # wait after the first failed authentication of a client
    auth_backoff_max_s: float = 30.0  # the wait doubles per failure up to this
    auth_queue_max_s: float = 60.0  # a client queued longer than this gets 429 at once
    # While another process (a nightly `dunning ingest`/`recommend`) holds the store: a read
    # waits this long, then gets 503 + Retry-After naming the job; a decision (review,
    # event) waits longer (under a client's 30 s timeout), then it is journalled (202) and
    # applied once the store is free (dunning.ops.journal).
    store_wait_s: float = 5.0
    decision_wait_s: float = 25.0


# ---------------------------------------------------------------------------- request bodies
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReviewDecisionBody(_Body):
    reason: str = Field(min_length=3, max_length=2000,
                        description="Why (stored as personal free text in the audit log); "
                        "at least 3 characters that are not whitespace.")

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if len(value.strip()) < 3:
            raise ValueError("expected a reason of at least 3 characters besides whitespace")
        return value


class ErrorBody(BaseModel):
    """Every error response."""

    error: str = Field(description="What went wrong, in one sentence.")
    problems: list[str] = Field(description="One entry per problem: the field, what was "
                                "found and what was expected.")


_ERROR_TEXT = {401: "Missing or unknown bearer token", 403: "The token's role may not do this",
               503: "A job (ingest, recommend) holds the store longer than the request waits; "
                    "nothing was changed; retry after the Retry-After header's seconds",
               404: "Unknown id or route", 409: "Conflicts with the current state",
               413: "Request body too large", 422: "Invalid input",
               429: "Too many failed authentications from this client; retry later"}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error codes (all with :class:`ErrorBody`)."""
    return {c: {"model": ErrorBody, "description": _ERROR_TEXT[c]} for c in codes}


class QueuedBody(BaseModel):
    """A decision saved in the journal while a job held the store (``dunning.ops.journal``)."""

    queued: bool = Field(description="Always true: the decision is saved, not yet recorded.")
    journal_id: str = Field(description="The journal entry's id.")
    queued_at: str = Field(description="When it was journalled (ISO timestamp, UTC).")
    message: str = Field(description="Which job holds the store and what happens next.")


QUEUED = {202: {"model": QueuedBody, "description": "Journalled while a job holds the store; "
                "recorded in the audit trail exactly once as soon as the store is free"}}


AUTH_ERRORS = (401, 422, 429)


class OverrideBody(_Body):
    reason: str = Field(min_length=3, max_length=2000,
                        description="Why the veto is overridden (personal free text in the "
                        "audit log).")


class ActionBody(_Body):
    invoice_id: str = Field(pattern=ID_PATTERN)
    channel: Literal["email", "letter", "phone", "final_notice", "agency"]
    action_date: dt.date = Field(description="Day the action was taken, YYYY-MM-DD.")
    complaint: bool = False
    override_veto: OverrideBody | None = Field(
        default=None, description="Record despite a legal veto (the caller's reviewer token "
        "and this reason go to the audit trail). A required human review is never overridden.")


class RunBody(_Body):
    as_of: dt.date = Field(description="Decision date YYYY-MM-DD.")


class PredictBody(_Body):
    invoice_ids: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(min_length=1)
    as_of: dt.date


class ExplainBody(_Body):
    facts: dict[str, bool | int | float | str | None] = Field(
        description="Named facts (legal_rules/facts.py); a missing fact fails closed.")
    action: Literal["wait", "email", "letter", "phone", "final_notice", "agency"]
    as_of: dt.date


class EventBody(_Body):
    """One event after a recommendation (``engine.events``; docs/operations.md)."""

    kind: Literal["payment", "credit_note", "write_off", "dispute_opened", "dispute_resolved",
                  "promise_to_pay", "contact_attempt", "conversation", "opt_out",
                  "customer_change"]
    effective_date: dt.date = Field(description="Day it happened / takes effect.")
    invoice_id: Annotated[str, Field(pattern=ID_PATTERN)] | None = None
    customer_id: Annotated[str, Field(pattern=ID_PATTERN)] | None = None
    amount: float | None = Field(None, gt=0, le=1e12, description="Invoice currency.")
    promised_date: dt.date | None = None
    channel: Literal["email", "letter", "phone"] | None = None
    changes: dict[Annotated[str, Field(pattern=r"^[a-z_]{1,40}$")],
                  Annotated[str, Field(max_length=500)]] = Field(
        default_factory=dict, max_length=20, description="customer_change: field -> value.")
    event_id: Annotated[str, Field(pattern=ID_PATTERN)] | None = None
    note: str | None = Field(None, max_length=2000, description="Personal free text.")


# ---------------------------------------------------------------------------- middleware
class BodyLimit:
    """Pure ASGI middleware: 413 for a body over ``limit`` bytes (declared or streamed).
    Also bounds how long the request waits for the store (``store_wait_s``,
    ``engine.store.lock_wait``) while another process holds it."""

    def __init__(self, app: Any, limit: int, store_wait_s: float = 5.0) -> None:
        self.app, self.limit, self.store_wait_s = app, limit, store_wait_s

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with lock_wait(self.store_wait_s):  # seen by the handler's worker thread too
            await self._limited(scope, receive, send)

    async def _limited(self, scope: dict, receive: Any, send: Any) -> None:
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _send_json(send, 413, {"error": "request body too large", "problems": [
                f"content-length {declared.decode(errors='replace')}: expected at most "
                f"{self.limit} bytes"]})
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        # No declared length (chunked): read at most limit + 1 bytes first, then replay.
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            more = message.get("more_body", False)
            if seen > self.limit:
                await _send_json(send, 413, {"error": "request body too large", "problems": [
                    f"body: expected at most {self.limit} bytes"]})
                return
        body = b"".join(chunks)
        await self.app(scope, _replay([{"type": "http.request", "body": body,
                                        "more_body": False}], receive), send)


def _replay(messages: list[dict], then: Any = None) -> Any:
    """An ASGI ``receive`` that returns ``messages`` first, then defers to ``then``."""
    queue = list(messages)

    async def receive() -> dict:
        if queue:
            return queue.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


async def _send_json(send: Any, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


# ---------------------------------------------------------------------------- state
@dataclass
class _DayCache:
    as_of: dt.date | None  # as requested (None: the latest day)
    loaded_at: float
    rows: dict[str, bytes] = field(default_factory=dict)
    count: int = 0
    day: Any = None  # the day actually loaded


class ApiState:
    """Store access and caches shared by the request handlers."""

    def __init__(self, config: ApiConfig) -> None:
        from dunning.ops.audit import default_anchor, load_audit_key

        if not config.db.exists():
            raise InputError(f"--db {config.db}: no store file; create it with `dunning ingest`")
        load_audit_key()  # fail at start-up, not at the first review decision
        self.config = config
        self.store = Store(config.db)
        self.anchor = default_anchor(self.store.path)
        self.throttle = AuthThrottle(config.auth_backoff_s, config.auth_backoff_max_s,
                                     config.auth_queue_max_s)
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._caches: dict[dt.date | None, _DayCache] = {}
        self._model: Any = None
        from dunning.ops.journal import Journal, JournalRunner

        # decisions made while a job holds the store longer than they wait (dunning.ops.journal)
        self.journal = Journal(self.store.path)
        self.journal_runner = JournalRunner(self.journal, {"review": self._apply_review,
                                                           "event": self._apply_event})

    # decisions journalled while a job held the store
    def queue_decision(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        """Journal a decision durably (``dunning.ops.journal``) and start applying it as
        soon as the store is free; returns the entry (``id``, ``queued_at``)."""
        entry = self.journal.append(kind, data)
        self.journal_runner.kick()
        return entry

    def _apply_review(self, entry: dict[str, Any]) -> str:
        """Decide a journalled review item; the same decision found already made by the
        same reviewer counts as applied (a second application after a crash adds nothing)."""
        from dunning.ops.audit import AuditLog
        from dunning.ops.review import ReviewQueue

        rid, who, status = entry["review_id"], entry["by"], \
            "approved" if entry["approve"] else "rejected"
        with self.store.connect() as con:
            queue = ReviewQueue(con, AuditLog(con, anchor=self.anchor))
            item = queue.get(rid)
            if item["status"] != "pending":
                if (item["status"], item["reviewer"]) == (status, who):
                    return f"{rid} was already {status} by {who}"
                raise InputError(f"review item {rid} is already {item['status']} by "
                                 f"{item['reviewer']} at {item['decided_at']}; the queued "
                                 f"decision of {who} was not recorded")
            queue.decide(rid, entry["approve"], who, entry["reason"])
        self.invalidate()
        return f"{rid} {status} by {who}"

    def _apply_event(self, entry: dict[str, Any]) -> str:
        """Record a journalled event (its id makes a second application a no-op)."""
        from dunning.ops.events import record
        from engine.events import Event

        data = dict(entry["event"])
        for key in ("effective_date", "promised_date"):
            if data.get(key):
                data[key] = dt.date.fromisoformat(data[key])
        with _RULES_LOCK.over(self.store):
            done = record(self.store, Event(**data), anchor=self.anchor)
        self.invalidate()
        return done.recorded.summary()

    # recommendations, cached per day
    def cached_recommendation(self, invoice_id: str,
                              as_of: dt.date | None) -> tuple[bool, bytes | None]:
        """``(hit, body)`` from the day cache, without touching the database.

        A cache older than ``cache_seconds`` is still served while one background thread
        checks the day's row count and rebuilds it if rows were added.
        """
        cache = self._caches.get(as_of)
        if cache is None:
            return False, None
        if time.monotonic() - cache.loaded_at > self.config.cache_seconds \
                and self._refreshing.acquire(blocking=False):
            threading.Thread(target=self._refresh, args=(as_of, cache), daemon=True).start()
        return True, cache.rows.get(invoice_id)

    def recommendation(self, invoice_id: str, as_of: dt.date | None) -> bytes | None:
        """The stored row of one invoice as JSON bytes (loads the day on a cache miss)."""
        hit, body = self.cached_recommendation(invoice_id, as_of)
        if hit:
            return body
        return self._reload(as_of).rows.get(invoice_id)

    def _refresh(self, as_of: dt.date | None, cache: _DayCache) -> None:
        try:
            if self._count(as_of) != (cache.count, cache.day):
                self._reload(as_of)
            else:
                cache.loaded_at = time.monotonic()
        except StoreBusy:  # a job holds the store: keep serving the cache, check again later
            pass
        finally:
            self._refreshing.release()

    def _count(self, as_of: dt.date | None) -> tuple[int, Any]:
        from dunning.ops.recommend import ensure_schema

        with self.store.connect() as con:
            ensure_schema(con)
            day = as_of or con.execute("SELECT max(as_of) FROM ops_recommendations WHERE "
                                       "as_of <= ?", [today_utc()]).fetchone()[0]
            n = con.execute("SELECT count(*) FROM ops_recommendations WHERE as_of = ?",
                            [day]).fetchone()[0]
        return int(n), day

    def _reload(self, as_of: dt.date | None) -> _DayCache:
        from dunning.ops.recommend import recommendation_dict, stored_recommendations

        with self._lock:
            with self.store.connect() as con:
                frame = stored_recommendations(con, as_of, not_after=today_utc())
            rows = {r["invoice_id"]: json.dumps(recommendation_dict(r), default=str).encode()
                    for r in frame.to_dict("records")}
            day = frame["as_of"].iloc[0] if len(frame) else as_of
            cache = _DayCache(as_of, time.monotonic(), rows, len(frame), day)
            self._caches[as_of] = cache
            return cache

    def invalidate(self) -> None:
        self._caches.clear()

    @property
    def ruleset(self) -> Any:
        """The rules in force (packaged + approved team files), recompiled on a change."""
        from dunning.ops.recommend import compiled_rules

        return compiled_rules(None, self.store.path)[0]

    @property
    def evaluator(self) -> Any:
        from dunning.ops.recommend import compiled_rules

        return compiled_rules(None, self.store.path)[2]

    @property
    def model(self) -> Any:
        if self._model is None and self.config.model_dir is not None:
            from dunning.ops.recommend import load_payment_model

            self._model = load_payment_model(self.config.model_dir)
        return self._model


# ---------------------------------------------------------------------------- auth
class AuthThrottle:
    """Per-client backoff after failed authentication (no global sleep, bounded memory).

    After ``n`` failures in a row a client's next attempt is held until ``base * 2**(n-1)``
    seconds (at most ``cap``) after the previous one; attempts of a penalised client are
    queued one behind the other, so parallel connections gain nothing, and one that would
    wait longer than ``queue_max`` is refused at once (429). A success clears the client.
    ``clock``: a monotonic time source in seconds (injectable for tests).
    """

    def __init__(self, base_s: float, cap_s: float, queue_max_s: float,
                 max_clients: int = 10_000, clock: Any = time.monotonic) -> None:
        self.base, self.cap, self.queue_max = base_s, cap_s, queue_max_s
        self.max_clients, self.clock = max_clients, clock
        self._clients: OrderedDict[str, list[float]] = OrderedDict()  # [failures, next_at]

    def delay(self, failures: int) -> float:
        return min(self.cap, self.base * 2 ** max(failures - 1, 0)) if failures else 0.0

    def reserve(self, client: str) -> float | None:
        """Seconds this attempt must wait (0.0 for a client without failures), or None if it
        would wait longer than ``queue_max`` (refuse it)."""
        entry = self._clients.get(client)
        if entry is None:
            return 0.0
        now = self.clock()
        start = max(now, entry[1])
        if start - now > self.queue_max:
            return None
        entry[1] = start + self.delay(int(entry[0]))  # the next one queues behind this one
        return start - now

    def failed(self, client: str) -> tuple[int, float]:
        """Record a failure; return ``(failures in a row, delay before the next attempt)``."""
        entry = self._clients.pop(client, [0, 0.0])
        entry[0] += 1
        wait = self.delay(int(entry[0]))
        entry[1] = max(entry[1], self.clock() + wait)
        self._clients[client] = entry
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
        return int(entry[0]), wait

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)

    def retry_after(self, client: str) -> float:
        entry = self._clients.get(client)
        return max(0.0, entry[1] - self.clock()) if entry else 0.0


_bearer = HTTPBearer(auto_error=False, description="A token from the server's token file "
                     "or $DUNNING_API_TOKENS; roles `read` and `reviewer`.")


async def principal(request: Request, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    """The caller of a request, from its bearer token (401 if missing or unknown)."""
    state: ApiState = request.app.state.ops
    if credentials is None or not credentials.credentials:
        raise HTTPException(401, "missing bearer token: expected header "
                            "`Authorization: Bearer <token>`",
                            headers={"WWW-Authenticate": "Bearer"})
    client = request.client.host if request.client else "unknown"
    throttle = state.throttle
    wait = throttle.reserve(client)
    if wait is None:
        after = math.ceil(throttle.retry_after(client))
        raise HTTPException(429, f"too many failed authentications from {client}; retry in "
                            f"{after} s", headers={"Retry-After": str(after)})
    if wait > 0:
        await asyncio.sleep(wait)  # this request only; the event loop serves others
    token = credentials.credentials.encode()
    found = None
    for known, who in state.config.tokens.items():  # compare all: no early exit on a match
        if hmac.compare_digest(known.encode(), token):
            found = who
    if found is None:
        n, delay = throttle.failed(client)
        log.warning("failed authentication from %s (%d in a row; next attempt from there "
                    "held %.2f s)", client, n, delay)
        raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})
    throttle.succeeded(client)
    return found


def reviewer(who: Principal = Depends(principal)) -> Principal:
    """The caller, if they have the reviewer role (403 otherwise)."""
    if who.role != "reviewer":
        raise HTTPException(403, f"role {who.role!r} may not do this; expected 'reviewer'")
    return who


Reader = Annotated[Principal, Depends(principal)]
Reviewer = Annotated[Principal, Depends(reviewer)]
InvoiceId = Annotated[str, PathParam(pattern=ID_PATTERN)]
ReviewId = Annotated[str, PathParam(pattern=r"^R-[0-9a-f]{10}$")]
RuleId = Annotated[str, PathParam(pattern=r"^[a-z0-9_.\-]{1,80}$")]


# ---------------------------------------------------------------------------- the app
def create_app(config: ApiConfig) -> Any:
    """The FastAPI application (wrapped in the body-size middleware)."""
    state = ApiState(config)
    app = FastAPI(title="dunning API", version="1",
                  description="Recommendations, predictions, rule explanations, human review "
                  "queue and audit log of the dunning decision engine. Bearer-token auth; "
                  "roles `read` and `reviewer`.")
    app.state.ops = state

    @app.exception_handler(StarletteHTTPException)  # FastAPI's, and Starlette's 404 / 405
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such route; the routes are listed at /docs"
        elif exc.status_code == 405:
            detail = f"method not allowed here; allowed: {exc.headers.get('Allow', '?')}" \
                if exc.headers else "method not allowed"
        body = detail if isinstance(detail, dict) else {"error": str(detail), "problems": []}
        return JSONResponse(body, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()))
            found = e.get("input")
            found_text = json.dumps(found, default=str)[:80] if found is not None else "nothing"
            problems.append(f"{where}: {e.get('msg')} (found {found_text})")
        return JSONResponse({"error": "invalid request", "problems": problems}, status_code=422)

    @app.exception_handler(DunningError)
    async def _user_error(_request: Request, exc: DunningError) -> JSONResponse:
        return JSONResponse({"error": str(exc), "problems": []}, status_code=422)

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": "internal server error; the server log has the details",
                             "problems": []}, status_code=500)

    def bounded(where: str, day: dt.date | None) -> None:
        """422 for a decision date outside the configured range."""
        problem = None if day is None else as_of_problem(day, where, config.as_of_min,
                                                         config.as_of_days_ahead)
        if problem:
            raise HTTPException(422, {"error": "date out of range", "problems": [problem]})

    @app.get("/health", tags=["meta"])
    async def health() -> dict[str, str]:
        """Liveness (no token needed)."""
        return {"status": "ok"}

    # -- recommendations ---------------------------------------------------------------
    @app.get("/recommendations/{invoice_id}", tags=["recommendations"],
             responses=_errors(401, 404, 422, 429))
    async def recommendation(invoice_id: InvoiceId, _who: Reader,
                             as_of: dt.date | None = None) -> Response:
        """The stored recommendation of one invoice (latest run up to today unless ``as_of``)."""
        bounded("query.as_of", as_of)
        hit, body = state.cached_recommendation(invoice_id, as_of)
        if not hit:  # first request of a day: load it in a worker thread, not the event loop
            body = await run_in_threadpool(state.recommendation, invoice_id, as_of)
        if body is None:
            raise HTTPException(404, f"no recommendation for invoice {invoice_id!r}"
                                f"{' on ' + as_of.isoformat() if as_of else ' in the latest run'}")
        return Response(body, media_type="application/json")

    @app.get("/recommendations", tags=["recommendations"], responses=_errors(*AUTH_ERRORS))
    def recommendations(_who: Reader, as_of: dt.date | None = None,
                        action: Annotated[str | None, Query(pattern=r"^[a-z_]{3,20}$")] = None,
                        status: Annotated[str | None, Query(pattern=r"^[a-z_]{3,20}$")] = None,
                        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict:
        """Stored recommendations of a day (latest run up to today unless ``as_of``), filtered."""
        from dunning.ops.recommend import recommendation_dict, stored_recommendations

        bounded("query.as_of", as_of)
        with state.store.connect() as con:
            frame = stored_recommendations(con, as_of, not_after=today_utc())
        if action:
            frame = frame[frame["action"] == action]
        if status:
            frame = frame[frame["status"] == status]
        rows = [recommendation_dict(r) for r in frame.head(limit).to_dict("records")]
        return {"count": int(len(frame)), "recommendations": rows}

    @app.post("/recommendations/run", tags=["recommendations"],
              responses=_errors(401, 403, 413, 422, 429))
    def run(body: RunBody, who: Reviewer) -> dict:
        """Run the daily recommendation for ``as_of`` (idempotent; reviewer role)."""
        bounded("body.as_of", body.as_of)
        from dunning.ops.recommend import Recommender, load_policy

        with _RULES_LOCK.over(state.store):
            result = Recommender(state.store, policy=load_policy(config.policy_dir),
                                 model=state.model).run(body.as_of)
        state.invalidate()
        return {"as_of": body.as_of.isoformat(), "n_open": result.n_open,
                "n_new": result.n_new, "actions": result.counts(),
                "review_ids": result.review_ids, "model_hash": result.model_hash,
                "policy_hash": result.policy_hash, "rules_hash": result.rules_hash,
                "started_by": who.name}

    # -- predictions -------------------------------------------------------------------
    @app.post("/predictions", tags=["predictions"],
              responses=_errors(401, 404, 409, 413, 422, 429))
    def predictions(body: PredictBody, _who: Reader) -> dict:
        """P(on time / late / very late) and top factors of the given open invoices."""
        bounded("body.as_of", body.as_of)
        if len(body.invoice_ids) > config.max_batch:
            raise HTTPException(422, f"invoice_ids: {len(body.invoice_ids)} ids; expected at "
                                f"most {config.max_batch}")
        if state.model is None:
            raise HTTPException(409, "no payment model configured: start the server with "
                                "--model DIR")
        from dunning.ops.recommend import explanation_row
        from engine.features import build_invoice_features

        tables = state.store.tables(as_of=body.as_of)
        try:
            X = build_invoice_features(tables, body.as_of, invoice_ids=body.invoice_ids)
        except DunningError as exc:
            raise HTTPException(404, str(exc)) from None
        model = state.model.model
        p = model.predict_proba(X)
        top = model.explain(X, top_k=3)
        out = []
        for j, inv in enumerate(body.invoice_ids):
            probs = {c: round(float(v), 6) for c, v in zip(state.model.classes, p[j],
                                                             strict=False)}
            out.append({"invoice_id": inv, "probabilities": probs,
                        "late_risk": probs.get("on_time", 1.0) < 0.5,
                        "top_factors": explanation_row(top, j)})
        return {"as_of": body.as_of.isoformat(), "model_hash": state.model.hash,
                "predictions": out}

    # -- rules -------------------------------------------------------------------------
    @app.get("/rules", tags=["rules"], responses=_errors(*AUTH_ERRORS))
    def rules(_who: Reader, jurisdiction: Annotated[str | None, Query(
            pattern=r"^[A-Z*]{1,3}$")] = None) -> dict:
        """The rules in force (id, title, jurisdiction, effect, actions, citation)."""
        rs = state.ruleset
        items = [_rule_dict(r) for r in rs.rules
                 if jurisdiction is None or r.jurisdiction == jurisdiction]
        return {"rules_hash": rs.hash, "count": len(items), "rules": items}

    @app.get("/rules/{rule_id}", tags=["rules"], responses=_errors(401, 404, 422, 429))
    def rule(rule_id: RuleId,
             _who: Reader) -> dict:
        """One rule with its condition, rationale and validity."""
        try:
            r = state.ruleset.rule(rule_id)
        except KeyError:
            raise HTTPException(404, f"no rule {rule_id!r}") from None
        return {**_rule_dict(r), "when": str(r.when), "rationale": r.rationale,
                "valid_from": r.valid_from.isoformat(),
                "valid_to": r.valid_to.isoformat() if r.valid_to else None}

    @app.post("/rules/explain", tags=["rules"], responses=_errors(401, 413, 422, 429))
    def explain(body: ExplainBody, _who: Reader) -> dict:
        """The durable_rules decision for given facts and action: fired rules, caps, why not."""
        bounded("body.as_of", body.as_of)
        with _RULES_LOCK:
            decision = state.evaluator.decide(body.facts, body.action, body.as_of,
                                              explain=True)
        out = decision.to_dict()
        out["not_fired"] = [{"rule_id": i, "reason": why} for i, why in decision.not_fired]
        return json.loads(json.dumps(out, default=str))

    # -- review queue ------------------------------------------------------------------
    def _queue(con: Any) -> Any:
        from dunning.ops.audit import AuditLog
        from dunning.ops.review import ReviewQueue

        return ReviewQueue(con, AuditLog(con, anchor=state.anchor))

    @app.get("/review", tags=["review"], responses=_errors(*AUTH_ERRORS))
    def review_list(_who: Reader, status: Literal["pending", "approved", "rejected",
                                                  "all"] = "pending",
                    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict:
        """Review items (pending by default)."""
        with state.store.connect() as con:
            items = _queue(con).list(None if status == "all" else status, limit)
        return {"count": len(items), "items": items}

    @app.get("/review/{review_id}", tags=["review"], responses=_errors(401, 404, 422, 429))
    def review_show(review_id: ReviewId,
                    _who: Reader) -> dict:
        """One item with its explanation and decision history."""
        with state.store.connect() as con:
            try:
                return _queue(con).get(review_id)
            except InputError as exc:
                raise HTTPException(404, str(exc)) from None

    def _decide(review_id: str, approve: bool, body: ReviewDecisionBody,
                who: Principal) -> Any:
        try:
            return _decide_now(review_id, approve, body, who)
        except StoreBusy as exc:  # a job holds the store: journal it, applied when free
            entry = state.queue_decision("review", {
                "review_id": review_id, "approve": approve, "by": who.name,
                "reason": body.reason})
            return JSONResponse(queued_body(entry, exc, f"{review_id}: "
                                            f"{'approve' if approve else 'reject'}"), 202)

    def _decide_now(review_id: str, approve: bool, body: ReviewDecisionBody,
                    who: Principal) -> dict:
        with lock_wait(config.decision_wait_s), state.store.connect() as con:
            queue = _queue(con)
            try:
                queue.get(review_id)
            except InputError as exc:
                raise HTTPException(404, str(exc)) from None
            try:
                item = queue.decide(review_id, approve, who.name, body.reason)
            except InputError as exc:
                raise HTTPException(409, str(exc)) from None
        state.invalidate()
        return item

    @app.post("/review/{review_id}/approve", tags=["review"],
              responses={**_errors(401, 403, 404, 409, 413, 422, 429, 503), **QUEUED})
    def review_approve(review_id: ReviewId,
                       body: ReviewDecisionBody, who: Reviewer) -> dict:
        """Approve (reviewer role); recorded in the audit log under the token's name."""
        return _decide(review_id, True, body, who)

    @app.post("/review/{review_id}/reject", tags=["review"],
              responses={**_errors(401, 403, 404, 409, 413, 422, 429, 503), **QUEUED})
    def review_reject(review_id: ReviewId,
                      body: ReviewDecisionBody, who: Reviewer) -> dict:
        """Reject (reviewer role); recorded in the audit log under the token's name."""
        return _decide(review_id, False, body, who)

    # -- executed actions --------------------------------------------------------------
    @app.post("/actions", tags=["actions"], responses=_errors(*AUTH_ERRORS, 403, 409))
    def record(body: ActionBody, who: Reviewer) -> dict:
        """Record an action as taken (reviewer role), after the same legal check as a
        recommendation on that day: 409 with the rule ids and citations when vetoed (unless
        ``override_veto`` with a reason), 409 when it needs a human review that is not
        approved. Idempotent: the same action on the same day is recorded once."""
        bounded("body.action_date", body.action_date)
        from dunning.ops.actions import record_action
        from dunning.ops.gate import ActionVetoed, ReviewRequired, VetoOverride

        override = None if body.override_veto is None else VetoOverride(
            who.name, who.role, body.override_veto.reason)
        try:
            with lock_wait(config.decision_wait_s), _RULES_LOCK.over(state.store):
                done = record_action(state.store, body.invoice_id, body.channel,
                                     body.action_date, decided_by=f"api:{who.name}",
                                     complaint=body.complaint, anchor=state.anchor,
                                     override=override, ruleset=state.ruleset)
        except (ActionVetoed, ReviewRequired) as exc:
            raise HTTPException(409, str(exc)) from None
        state.invalidate()
        return {"invoice_id": done.invoice_id, "channel": done.channel,
                "action_date": done.action_date.isoformat(), "recorded": done.loaded,
                "audit_seq": done.audit_seq, "decided_by": done.decided_by}

    # -- events ------------------------------------------------------------------------
    @app.post("/events", tags=["events"], responses={**_errors(*AUTH_ERRORS, 403, 503),
                                                      **QUEUED})
    def record_event(body: EventBody, who: Reviewer) -> dict:
        """Record what happened after a recommendation (reviewer role); audited under the
        token's name. 422 with the reason for an unknown invoice/customer, a bad date or
        amount; ``recorded`` false when the same event was recorded before."""
        bounded("body.effective_date", body.effective_date)
        bounded("body.promised_date", body.promised_date)
        from dunning.ops.events import record
        from engine.events import Event

        event = Event(kind=body.kind, effective_date=body.effective_date,
                      invoice_id=body.invoice_id, customer_id=body.customer_id,
                      amount=body.amount, promised_date=body.promised_date,
                      channel=body.channel, changes=dict(body.changes),
                      event_id=body.event_id, recorded_by=f"api:{who.name}", note=body.note)
        try:
            with lock_wait(config.decision_wait_s), _RULES_LOCK.over(state.store):
                done = record(state.store, event, anchor=state.anchor)
        except StoreBusy as exc:  # a job holds the store: journal it, applied when free
            entry = state.queue_decision("event", {"by": who.name,
                                                   "event": event_dict(event)})
            return JSONResponse(queued_body(entry, exc, f"{body.kind} event"), 202)
        state.invalidate()
        return done.as_dict()

    # -- audit -------------------------------------------------------------------------
    @app.get("/audit", tags=["audit"], responses=_errors(*AUTH_ERRORS))
    def audit(_who: Reader,
              invoice_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
              customer_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
              limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict:
        """Audit records of an invoice or customer (GDPR art. 15 explanation)."""
        if not invoice_id and not customer_id:
            raise HTTPException(422, "give invoice_id or customer_id")
        from dunning.ops.audit import AuditLog

        with state.store.connect() as con:
            recs = AuditLog(con, anchor=state.anchor).records(
                invoice_id=invoice_id, customer_id=customer_id, limit=limit)
        return {"count": len(recs), "records": recs}

    @app.get("/audit/verify", tags=["audit"], responses=_errors(401, 429))
    def audit_verify(_who: Reader) -> dict:
        """Recompute the keyed chain; check the review queue and recommendations against it."""
        from dunning.ops.integrity import verify_store

        with state.store.connect() as con:
            report = verify_store(con, anchor=state.anchor)
        return {"ok": report.ok, "n_records": report.n_records, "head_hash": report.head_hash,
                "problems": report.problems[:100]}

    # -- letters -----------------------------------------------------------------------
    @app.get("/letters/{invoice_id}", tags=["letters"],
             responses=_errors(401, 409, 422, 429))
    def letter(invoice_id: InvoiceId, as_of: dt.date, _who: Reader,
               action: Literal["email", "letter", "final_notice", "agency"] = "letter",
               format: Literal["txt", "html", "pdf"] = "html") -> Response:
        """Render the letter of ``action`` for an open invoice on ``as_of``.

        409 when the action is vetoed on that day, or needs a human review that is not
        approved (pending, rejected, none: the message names the review item and its
        status). Served with a Content-Security-Policy that allows no script and no
        external resource, and ``X-Content-Type-Options: nosniff``.
        """
        bounded("query.as_of", as_of)
        import tempfile

        from dunning.ops.letters import Creditor, html_to_pdf, letters_for
        from engine.contract import Action

        creditor = Creditor.from_yaml(config.creditor or state.store.path.parent
                                      / "creditor.yaml")
        try:
            with _RULES_LOCK.over(state.store):
                made = letters_for(state.store, as_of, creditor, ruleset=state.ruleset,
                                   actions={invoice_id: Action.from_channel(action)})
        except InputError as exc:
            raise HTTPException(409, str(exc)) from None
        if format == "txt":
            return Response(made[0].text, media_type="text/plain; charset=utf-8",
                            headers=LETTER_HEADERS)
        if format == "html":
            return Response(made[0].html, media_type="text/html; charset=utf-8",
                            headers=LETTER_HEADERS)
        with tempfile.TemporaryDirectory() as tmp:
            pdf = html_to_pdf(made[0].html, Path(tmp) / "letter.pdf")
            return Response(pdf.read_bytes(), media_type="application/pdf",
                            headers=LETTER_HEADERS)

    from dunning.workspace import mount_workspace  # the browser pages under /ui

    ws = mount_workspace(app, state, _RULES_LOCK)
    state.journal_runner.kick()  # decisions journalled before a crash or restart

    @app.exception_handler(StoreBusy)
    async def _busy(request: Request, exc: StoreBusy) -> Response:
        """Another process (a nightly job) held the store for longer than this request
        waits: 503 + Retry-After naming it, as HTML on the workspace's pages."""
        log.info("store busy on %s %s: %s", request.method, request.url.path, exc.holder)
        if request.url.path.startswith(ws.prefix):
            return ws.busy(request, exc)
        return JSONResponse({"error": busy_message(exc), "problems": []}, status_code=503,
                            headers={"Retry-After": str(exc.retry_after_s)})

    return BodyLimit(app, config.max_body_bytes, config.store_wait_s)


def queued_body(entry: dict[str, Any], exc: StoreBusy, what: str) -> dict[str, Any]:
    """The 202 answer to a decision journalled while a job held the store."""
    return {"queued": True, "journal_id": entry["id"], "queued_at": entry["queued_at"],
            "message": f"{what} is queued: the store is busy ({exc.holder}); the decision "
            "is saved and will be recorded in the audit trail as soon as that job is done"}


def event_dict(event: Any) -> dict[str, Any]:
    """An ``engine.events.Event`` as JSON-ready values (dates as ISO text) for the journal."""
    import dataclasses

    return {k: (v.isoformat() if isinstance(v, dt.date) else v)
            for k, v in dataclasses.asdict(event).items()}


def busy_message(exc: StoreBusy) -> str:
    """What a client is told while a job holds the store (nothing was changed)."""
    return (f"the store is busy: {exc.holder} is using it (for example the nightly run); "
            f"nothing was changed; try again in {exc.retry_after_s} s")


def bind_warning(host: str, tls: bool) -> str | None:
    """A warning when the server listens beyond this machine without TLS, else None.

    Bearer tokens, review reasons and debtor data would cross the network in clear text.
    """
    if tls:
        return None
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return None
    except ValueError:
        pass  # a host name: it may resolve to anything
    return (f"binding to {host} without TLS: bearer tokens, review reasons and debtor data "
            "would cross the network in clear text. Put a TLS-terminating reverse proxy in "
            "front (and pass --tls-proxy), or give --ssl-certfile and --ssl-keyfile")


def _rule_dict(r: Any) -> dict[str, Any]:
    return {"id": r.id, "title": r.title, "jurisdiction": r.jurisdiction, "scope": r.scope,
            "effect": r.effect, "applies_to": [a.channel for a in r.applies_to],
            "citation": r.citation,
            "cap": None if r.cap is None else {"name": r.cap.name, "value": r.cap.value,
                                               "unit": r.cap.unit}}


def wait_until_healthy(url: str, timeout_s: float = 30.0,
                       is_running: Any = None, poll_s: float = 0.05) -> None:
    """Block until ``GET url/health`` answers 200 (a server just started by a test or a
    benchmark). Raises ``RuntimeError`` after ``timeout_s`` seconds, or at once when
    ``is_running()`` (e.g. a subprocess's ``poll() is None``) says the server has exited."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if is_running is not None and not is_running():
            raise RuntimeError(f"the API server at {url} exited before answering /health")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API server at {url} did not answer /health within "
                               f"{timeout_s:g} s")
        time.sleep(poll_s)
