"""REST API for the AR team's systems (ERP, mail, dashboards): ``dunning serve``.

FastAPI app (OpenAPI at ``/docs``, schema at ``/openapi.json``) over the same store, audit
log and review queue as the CLI. Every endpoint except ``/health`` needs a bearer token::

    Authorization: Bearer <token>

Tokens come from a file (``--tokens FILE``: one ``token role [name]`` per line, ``#``
comments) or the environment variable ``DUNNING_API_TOKENS`` (``token:role[:name],...``),
never from code. Roles: ``read`` (look up recommendations, predictions, rules, audit) and
``reviewer`` (also decide review items and start a daily run). A reviewer's decisions are
recorded under the token's name.

Errors are JSON ``{"error": ..., "problems": [...]}``: 401 missing/unknown token, 403 role,
404 unknown id, 409 state conflict, 413 body larger than ``max_body_bytes``, 422 invalid
input (each problem names the field, what was found and what was expected).

The recommendation of one invoice (``GET /recommendations/{invoice_id}``) is served from an
in-memory cache of the day's stored rows (pre-serialised JSON), refreshed every
``cache_seconds`` and after a run, so the hot path does not touch the database.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from engine.errors import DunningError, InputError

ROLES = ("read", "reviewer")
# durable_rules keeps one engine state per ruleset: decide one case at a time per process.
_RULES_LOCK = threading.Lock()
TOKEN_ENV = "DUNNING_API_TOKENS"
ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``role`` is ``read`` or ``reviewer``."""

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
        if len(parts[0]) < 16:
            raise InputError(f"{where}: token has {len(parts[0])} characters; expected at "
                             "least 16 (use e.g. `python -c 'import secrets; "
                             "print(secrets.token_urlsafe(24))'`)")
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


# ---------------------------------------------------------------------------- request bodies
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReviewDecisionBody(_Body):
    reason: str = Field(min_length=3, max_length=2000,
                        description="Why (stored as personal free text in the audit log).")


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


# ---------------------------------------------------------------------------- middleware
class BodyLimit:
    """Pure ASGI middleware: 413 for a body over ``limit`` bytes (declared or streamed)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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
        from engine.store import Store

        if not config.db.exists():
            raise InputError(f"--db {config.db}: no store file; create it with `dunning ingest`")
        self.config = config
        self.store = Store(config.db)
        self.anchor = self.store.path.parent / "audit.anchor"
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._caches: dict[dt.date | None, _DayCache] = {}
        self._model: Any = None

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
        finally:
            self._refreshing.release()

    def _count(self, as_of: dt.date | None) -> tuple[int, Any]:
        from dunning.ops.recommend import ensure_schema

        with self.store.connect() as con:
            ensure_schema(con)
            day = as_of or con.execute("SELECT max(as_of) FROM ops_recommendations"
                                       ).fetchone()[0]
            n = con.execute("SELECT count(*) FROM ops_recommendations WHERE as_of = ?",
                            [day]).fetchone()[0]
        return int(n), day

    def _reload(self, as_of: dt.date | None) -> _DayCache:
        from dunning.ops.recommend import recommendation_dict, stored_recommendations

        with self._lock:
            with self.store.connect() as con:
                frame = stored_recommendations(con, as_of)
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
        """The packaged rules, recompiled when a rule file changes."""
        from dunning.ops.recommend import compiled_rules

        return compiled_rules()[0]

    @property
    def evaluator(self) -> Any:
        from dunning.ops.recommend import compiled_rules

        return compiled_rules()[2]

    @property
    def model(self) -> Any:
        if self._model is None and self.config.model_dir is not None:
            from dunning.ops.recommend import load_payment_model

            self._model = load_payment_model(self.config.model_dir)
        return self._model


# ---------------------------------------------------------------------------- auth
def principal(request: Request) -> Principal:
    """The caller of a request, from its bearer token (401 if missing or unknown)."""
    tokens: dict[str, Principal] = request.app.state.ops.config.tokens
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "missing bearer token: expected header "
                            "`Authorization: Bearer <token>`",
                            headers={"WWW-Authenticate": "Bearer"})
    found = None
    for known, who in tokens.items():  # compare against all: no early exit on a match
        if hmac.compare_digest(known.encode(), token.encode()):
            found = who
    if found is None:
        raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})
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

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail, "problems": []}, status_code=exc.status_code,
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

    @app.get("/health", tags=["meta"])
    async def health() -> dict[str, str]:
        """Liveness (no token needed)."""
        return {"status": "ok"}

    # -- recommendations ---------------------------------------------------------------
    @app.get("/recommendations/{invoice_id}", tags=["recommendations"])
    async def recommendation(invoice_id: InvoiceId, _who: Reader,
                             as_of: dt.date | None = None) -> Response:
        """The stored recommendation of one invoice (latest run unless ``as_of``)."""
        hit, body = state.cached_recommendation(invoice_id, as_of)
        if not hit:  # first request of a day: load it in a worker thread, not the event loop
            body = await run_in_threadpool(state.recommendation, invoice_id, as_of)
        if body is None:
            raise HTTPException(404, f"no recommendation for invoice {invoice_id!r}"
                                f"{' on ' + as_of.isoformat() if as_of else ' in the latest run'}")
        return Response(body, media_type="application/json")

    @app.get("/recommendations", tags=["recommendations"])
    def recommendations(_who: Reader, as_of: dt.date | None = None,
                        action: Annotated[str | None, Query(pattern=r"^[a-z_]{3,20}$")] = None,
                        status: Annotated[str | None, Query(pattern=r"^[a-z_]{3,20}$")] = None,
                        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict:
        """Stored recommendations of a day (latest run unless ``as_of``), filtered."""
        from dunning.ops.recommend import recommendation_dict, stored_recommendations

        with state.store.connect() as con:
            frame = stored_recommendations(con, as_of)
        if action:
            frame = frame[frame["action"] == action]
        if status:
            frame = frame[frame["status"] == status]
        rows = [recommendation_dict(r) for r in frame.head(limit).to_dict("records")]
        return {"count": int(len(frame)), "recommendations": rows}

    @app.post("/recommendations/run", tags=["recommendations"])
    def run(body: RunBody, who: Reviewer) -> dict:
        """Run the daily recommendation for ``as_of`` (idempotent; reviewer role)."""
        from dunning.ops.recommend import Recommender, load_policy

        with _RULES_LOCK:
            result = Recommender(state.store, policy=load_policy(config.policy_dir),
                                 model=state.model).run(body.as_of)
        state.invalidate()
        return {"as_of": body.as_of.isoformat(), "n_open": result.n_open,
                "n_new": result.n_new, "actions": result.counts(),
                "review_ids": result.review_ids, "model_hash": result.model_hash,
                "policy_hash": result.policy_hash, "rules_hash": result.rules_hash,
                "started_by": who.name}

    # -- predictions -------------------------------------------------------------------
    @app.post("/predictions", tags=["predictions"])
    def predictions(body: PredictBody, _who: Reader) -> dict:
        """P(on time / late / very late) and top factors of the given open invoices."""
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
    @app.get("/rules", tags=["rules"])
    def rules(_who: Reader, jurisdiction: Annotated[str | None, Query(
            pattern=r"^[A-Z*]{1,3}$")] = None) -> dict:
        """The rules in force (id, title, jurisdiction, effect, actions, citation)."""
        rs = state.ruleset
        items = [_rule_dict(r) for r in rs.rules
                 if jurisdiction is None or r.jurisdiction == jurisdiction]
        return {"rules_hash": rs.hash, "count": len(items), "rules": items}

    @app.get("/rules/{rule_id}", tags=["rules"])
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

    @app.post("/rules/explain", tags=["rules"])
    def explain(body: ExplainBody, _who: Reader) -> dict:
        """The durable_rules decision for given facts and action: fired rules, caps, why not."""
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

    @app.get("/review", tags=["review"])
    def review_list(_who: Reader, status: Literal["pending", "approved", "rejected",
                                                  "all"] = "pending",
                    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict:
        """Review items (pending by default)."""
        with state.store.connect() as con:
            items = _queue(con).list(None if status == "all" else status, limit)
        return {"count": len(items), "items": items}

    @app.get("/review/{review_id}", tags=["review"])
    def review_show(review_id: ReviewId,
                    _who: Reader) -> dict:
        """One item with its explanation and decision history."""
        with state.store.connect() as con:
            try:
                return _queue(con).get(review_id)
            except InputError as exc:
                raise HTTPException(404, str(exc)) from None

    def _decide(review_id: str, approve: bool, body: ReviewDecisionBody,
                who: Principal) -> dict:
        with state.store.connect() as con:
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

    @app.post("/review/{review_id}/approve", tags=["review"])
    def review_approve(review_id: ReviewId,
                       body: ReviewDecisionBody, who: Reviewer) -> dict:
        """Approve (reviewer role); recorded in the audit log under the token's name."""
        return _decide(review_id, True, body, who)

    @app.post("/review/{review_id}/reject", tags=["review"])
    def review_reject(review_id: ReviewId,
                      body: ReviewDecisionBody, who: Reviewer) -> dict:
        """Reject (reviewer role); recorded in the audit log under the token's name."""
        return _decide(review_id, False, body, who)

    # -- audit -------------------------------------------------------------------------
    @app.get("/audit", tags=["audit"])
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

    @app.get("/audit/verify", tags=["audit"])
    def audit_verify(_who: Reader) -> dict:
        """Recompute the hash chain."""
        from dunning.ops.audit import AuditLog

        with state.store.connect() as con:
            report = AuditLog(con, anchor=state.anchor).verify()
        return {"ok": report.ok, "n_records": report.n_records, "head_hash": report.head_hash,
                "problems": report.problems[:100]}

    # -- letters -----------------------------------------------------------------------
    @app.get("/letters/{invoice_id}", tags=["letters"])
    def letter(invoice_id: InvoiceId, as_of: dt.date, _who: Reader,
               action: Literal["email", "letter", "final_notice", "agency"] = "letter",
               format: Literal["txt", "html", "pdf"] = "html") -> Response:
        """Render the letter of ``action`` for an open invoice on ``as_of``."""
        import tempfile

        from dunning.ops.letters import Creditor, html_to_pdf, letters_for
        from engine.contract import Action

        creditor = Creditor.from_yaml(config.creditor or state.store.path.parent
                                      / "creditor.yaml")
        try:
            with _RULES_LOCK:
                made = letters_for(state.store, as_of, creditor, ruleset=state.ruleset,
                                   actions={invoice_id: Action.from_channel(action)})
        except InputError as exc:
            raise HTTPException(409, str(exc)) from None
        if format == "txt":
            return Response(made[0].text, media_type="text/plain; charset=utf-8")
        if format == "html":
            return Response(made[0].html, media_type="text/html; charset=utf-8")
        with tempfile.TemporaryDirectory() as tmp:
            pdf = html_to_pdf(made[0].html, Path(tmp) / "letter.pdf")
            return Response(pdf.read_bytes(), media_type="application/pdf")

    from dunning.workspace import mount_workspace  # the browser pages under /ui

    mount_workspace(app, state, _RULES_LOCK)
    return BodyLimit(app, config.max_body_bytes)


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
