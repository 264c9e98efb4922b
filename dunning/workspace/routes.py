"""The workspace's pages (server-rendered, Jinja2 autoescaped), under ``/ui``.

=====================  ======  ==============================================================
path                   method  what
=====================  ======  ==============================================================
/ui/login              GET     login form (API token); POST checks it and sets the cookie
/ui/logout             POST    ends the session
/ui/language           POST    the session's UI language (en, de: ``dunning.workspace.i18n``)
/ui/                   GET     worklist: today's recommendations, filters, sort, paging
/ui/worklist.csv       GET     the same filters as CSV (every matching row)
/ui/customers/{id}     GET     expected amounts, invoices, payment history, factors, timeline
/ui/review             GET     review queue, sortable; POST /ui/review/{id} decides (reviewer)
/ui/review/{id}        GET     one item with its decisions from the audit trail
/ui/rules              GET     rule files, rules, citations, validity, inline tests
/ui/rules/explain      GET     the explain form; POST shows the decision for facts/action/date
/ui/rules/check        GET     paste a rule file; POST validates it with the rules in force and
                               runs its inline tests (file:line: field: message); saves nothing
/ui/rules/propose      POST    proposes a file that passes the check (legal role): pending
/ui/rules/pending      GET     pending rule files with their diff and the rule changes of the
                               audit trail; POST /ui/rules/pending/{sha} approves one (legal
                               role, not the proposer, with a reason)
/ui/rules/edit/...     GET     the rule-file editor and the what-if of a changed rule set:
/ui/rules/whatif/...           :mod:`dunning.workspace.rule_editor`
/ui/model              GET     model card, drift, policies and timing: the report of the run
                               (``results.json`` beside the store), framed and sandboxed
/ui/letters/{id}       GET     a letter's preview (HTML frame, PDF link, figures); POST .../sent
                               records it as sent (reviewer)
/ui/static/{file}      GET     htmx and the style sheet (shipped in the package)
=====================  ======  ==============================================================

The JSON API keeps ``/review`` and ``/rules`` (its clients use them), hence the prefix; ``/``
redirects to the worklist. Every page needs a session (else a redirect to the login page);
every POST needs the session's CSRF token and, to decide a review item, the reviewer role
(403 otherwise, whatever the page showed). Responses carry a strict Content-Security-Policy.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dunning.ops.rule_approval import LEGAL_ROLE
from dunning.workspace import queries
from dunning.workspace.i18n import LANG_COOKIE, LANGUAGES, language, translator
from dunning.workspace.rule_files import (
    check_rule_file,
    checked_proposal,
    rule_file_name,
    rule_tests,
)
from dunning.workspace.session import LOGIN_COOKIE, SESSION_COOKIE, Session, Sessions
from engine.errors import InputError
from legal_rules import prose  # noqa: F401 - registers the German fact names for messages
from legal_rules.messages import render as render_message

PREFIX = "/ui"
HERE = Path(__file__).resolve().parent
STATIC = {"htmx.min.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
# A letter as it will be sent, or the run's report: their own inline style, nothing else,
# shown only framed by our pages.
LETTER_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
              "frame-ancestors 'self'; sandbox")
LETTER_CHANNELS = ("email", "letter", "final_notice", "agency")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
                    "Cache-Control": "no-store"}
MAX_FORM_FIELD = 4000
MAX_RULE_FILE = 200_000  # a pasted rule file (``yaml``): never cut short and then proposed
CHANNELS = ("email", "letter", "phone", "final_notice", "agency")
# what a clerk records from the customer page (engine.events.KINDS less the bookkeeping ones)
EVENT_KINDS = ("payment", "promise_to_pay", "dispute_opened", "dispute_resolved",
               "conversation", "contact_attempt", "opt_out")
OPT_OUT_CHANNELS = ("email", "letter", "phone")
# form field -> its label in messages
EVENT_FIELDS = {"kind": "kind", "invoice_id": "invoice", "effective_date": "date",
                "amount": "amount", "promised_date": "promised date", "channel": "channel",
                "note": "note"}
# engine.events' CLI option names -> the form's labels
EVENT_OPTIONS = {"date": "date", "invoice": "invoice", "customer": "customer",
                 "amount": "amount", "promised-date": "promised date", "channel": "channel",
                 "set": "changes"}


def templates() -> Any:
    """The Jinja2 environment: autoescape on for every template, undefined names fail."""
    import jinja2

    from dunning.workspace.words import factor_words

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = lambda v: "" if v is None else f"{float(v):,.2f}"
    env.filters["pct"] = lambda v: "–" if v is None or v != v else f"{float(v) * 100:.0f} %"
    env.filters["words"] = factor_words
    env.filters["label"] = lambda v: str(v or "").replace("_", " ")
    env.filters["msg"] = render_message  # an engine message in the page's language
    env.filters["basename"] = lambda v: Path(str(v)).name
    env.globals["prefix"] = PREFIX
    return env


class KeepOpen:
    """One idle DuckDB connection held while pages are being served.

    DuckDB keeps a database file loaded in a process only while a connection to it is open;
    opening it again costs tens of milliseconds (catalog load, checkpoint on close), more
    than a page's queries. So the first request opens this connection, holding a lease of
    the store's cross-process lock (``engine.store.StoreLock``), and gives both back
    ``idle_s`` seconds after the last request, or at once when another process (the CLI,
    a nightly run) waits for the store: it never keeps a job waiting.
    """

    def __init__(self, path: Path, idle_s: float = 5.0, poll_s: float = 0.05) -> None:
        import atexit

        from engine.store import store_lock

        self.path, self.idle_s, self.poll_s = path, idle_s, poll_s
        self.lock = store_lock(path)
        self._con: Any = None
        self._last = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # closed before the interpreter abandons daemon threads: a thread cut off inside
        # DuckDB's C++ code at exit aborts the process
        atexit.register(self.close)

    def touch(self) -> None:
        import time

        import duckdb

        from engine.store import StoreBusy

        with self._lock:
            self._last = time.monotonic()
            if self._con is not None or self._stop.is_set() or self.lock.others_waiting():
                return
            try:
                self.lock.acquire(wait_s=0, nested=False)  # never waits: only an optimisation
            except StoreBusy:
                return
            try:
                self._con = duckdb.connect(str(self.path))
            except duckdb.Error:  # a process outside dunning holds the file: serve without
                self.lock.release(nested=False)
                return
            threading.Thread(target=self._close_when_idle, daemon=True).start()

    def _close_when_idle(self) -> None:
        import time

        while not self._stop.wait(self.poll_s):
            with self._lock:
                if self._con is None:
                    return
                if time.monotonic() - self._last >= self.idle_s or self.lock.others_waiting():
                    self._close_locked()
                    return

    def _close_locked(self) -> None:
        self._con.close()
        self._con = None
        self.lock.release(nested=False)

    def close(self) -> None:
        """Close the connection now and keep it closed."""
        self._stop.set()
        with self._lock:
            if self._con is not None:
                self._close_locked()


class Workspace:
    """Request handling shared by the pages: sessions, rendering, the store.

    ``state``: the API's ``ApiState`` (``store``, ``anchor``, ``ruleset``, ``evaluator``,
    ``invalidate()``, ``config.tokens``); ``rules_lock``: the API's lock around durable_rules
    and the writes (``with ws.rules_lock.over(store)`` where the store is read or
    written); ``threshold``: P(on time) under which an invoice is flagged.
    """

    def __init__(self, state: Any, rules_lock: Any, secret: bytes,
                 threshold: float) -> None:
        self.state = state
        self.rules_lock = rules_lock
        self.sessions = Sessions(state.config.tokens, secret)
        self.threshold = threshold
        self.env = templates()
        self.keep_open = KeepOpen(state.store.path)
        self._facets: dict[Any, tuple[float, dict[str, list[str]]]] = {}

    def facets(self, con: Any, day: dt.date) -> dict[str, list[str]]:
        """The filter's segment and jurisdiction choices of ``day``, cached for 30 s."""
        import time

        hit = self._facets.get(day)
        if hit is None or time.monotonic() - hit[0] > 30:
            hit = (time.monotonic(), queries.facets(con, day))
            self._facets = {day: hit}
        return hit[1]

    # -- responses --------------------------------------------------------------------------
    def render(self, request: Request, name: str, session: Session | None,
               http_status: int = 200, **ctx: Any) -> HTMLResponse:
        lang = language(request.cookies.get(LANG_COOKIE))
        html = self.env.get_template(name).render(
            session=session, threshold=self.threshold, path=request.url.path, lang=lang,
            _=translator(lang), languages=LANGUAGES, **ctx)
        return HTMLResponse(html, status_code=http_status, headers=SECURITY_HEADERS)

    def error(self, request: Request, session: Session | None, status: int,
              message: str) -> HTMLResponse:
        return self.render(request, "error.html.j2", session, http_status=status,
                           status_code=status, message=message)

    prefix = PREFIX

    def deciding(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` of a clerk's decision (review, event, letter sent): it waits longer
        for the store than a page read (``config.decision_wait_s``) while a nightly job
        holds it, so the decision is made rather than refused."""
        from engine.store import lock_wait

        with lock_wait(getattr(self.state.config, "decision_wait_s", 25.0)):
            return fn(*args)

    def busy(self, request: Request, exc: Any) -> HTMLResponse:
        """503 page while another process (``exc``: ``engine.store.StoreBusy``, e.g. the
        nightly run) holds the store longer than a request waits; names the job, asks the
        browser to come back (``Retry-After``) and says that nothing was changed."""
        session = self.sessions.session(request.cookies.get(SESSION_COOKIE))
        message = (f"The store is busy: {exc.holder} is using it (for example the nightly "
                   f"run). Nothing was changed. Try again in {exc.retry_after_s} seconds; "
                   "your work is safe.")
        resp = self.render(request, "error.html.j2", session, http_status=503,
                           status_code=503, message=message)
        resp.headers["Retry-After"] = str(exc.retry_after_s)
        return resp

    @staticmethod
    def redirect(url: str) -> RedirectResponse:
        resp = RedirectResponse(url, status_code=303)
        resp.headers.update(SECURITY_HEADERS)
        return resp

    def login_redirect(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        url = f"{PREFIX}/login?" + urllib.parse.urlencode({"next": target})
        if request.headers.get("hx-request"):  # htmx: a full-page redirect, not a fragment
            return Response(status_code=401, headers={**SECURITY_HEADERS, "HX-Redirect": url})
        return self.redirect(url)

    def session(self, request: Request) -> Session | None:
        """The request's session (None: not logged in); keeps the store loaded meanwhile."""
        session = self.sessions.session(request.cookies.get(SESSION_COOKIE))
        if session is not None:
            self.keep_open.touch()
        return session

    async def form(self, request: Request) -> dict[str, str]:
        """The url-encoded body of a POST (last value of each field, length-limited)."""
        body = (await request.body()).decode("utf-8", errors="replace")
        parsed = urllib.parse.parse_qs(body, keep_blank_values=True, max_num_fields=100)
        return {k: v[-1][:MAX_RULE_FILE if k == "yaml" else MAX_FORM_FIELD]
                for k, v in parsed.items()}

    async def posted(self, request: Request, needs_reviewer: str = "", role: str = "reviewer"
                     ) -> tuple[Session, dict[str, str]] | Response:
        """``(session, form)`` of a state-changing POST, or the response refusing it: the
        login page without a session; 403 when the form did not come from this server's pages
        (:meth:`same_origin`) or lacks the session's CSRF token; 403 when ``needs_reviewer``
        (what the POST does, for the message) is given and the session's role is not
        ``role`` (the reviewer, or ``legal`` for rule changes)."""
        session = self.session(request)
        if session is None:
            return self.login_redirect(request)
        form = await self.form(request)
        if not self.same_origin(request) or not self.sessions.csrf_ok(session, form.get("csrf")):
            return self.error(request, session, 403, "The form expired or did not come from "
                              "this server; reload the page and try again.")
        if needs_reviewer and session.who.role != role:
            return self.error(request, session, 403, f"{session.who.name} has the role "
                              f"{session.who.role!r}; {needs_reviewer} needs {role!r}.")
        return session, form

    def same_origin(self, request: Request) -> bool:
        """The browser says the POST comes from this server's own pages (defence beside the
        CSRF token): ``Sec-Fetch-Site``, when sent, is same-origin; ``Origin``, when sent,
        names this host (``null`` only with a same-origin fetch site)."""
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = request.headers.get("origin")
        if origin is None:
            return True
        if origin == "null":
            return site == "same-origin"
        return urllib.parse.urlsplit(origin).netloc == request.headers.get("host", "")


def _safe_next(value: str | None) -> str:
    """Only a local workspace path is followed after login (no open redirect)."""
    if value and value.startswith(PREFIX + "/") and "//" not in value and "\\" not in value:
        return value
    return PREFIX + "/"


def make_router(ws: Workspace) -> APIRouter:
    """The workspace's routes over ``ws`` (see the module docstring)."""
    from dunning.workspace.rule_editor import make_editor_router

    router = APIRouter(include_in_schema=False)
    page = _page_guard(ws)
    router.include_router(make_editor_router(ws, PREFIX))  # before the catch-all at the end

    @router.get("/")
    def root() -> Response:
        return ws.redirect(PREFIX + "/")

    @router.get(PREFIX + "/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response((HERE / "static" / name).read_bytes(), media_type=STATIC[name],
                        headers={"Cache-Control": "max-age=3600",
                                 "X-Content-Type-Options": "nosniff"})

    # -- login ------------------------------------------------------------------------------
    @router.get(PREFIX + "/login")
    def login_form(request: Request, next: str = "") -> Response:
        cookie, token = ws.sessions.login_nonce()
        resp = ws.render(request, "login.html.j2", None, csrf=token, next=_safe_next(next),
                         message="")
        _set_cookie(resp, request, LOGIN_COOKIE, cookie, 600)
        return resp

    @router.post(PREFIX + "/login")
    async def login(request: Request) -> Response:
        form = await ws.form(request)
        if not ws.same_origin(request) or not ws.sessions.login_csrf_ok(
                request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
            return ws.error(request, None, 403, "The login form expired or did not come from "
                            "this server; open the login page again.")
        made = ws.sessions.login(form.get("token", ""))
        if made is None:
            cookie, token = ws.sessions.login_nonce()
            resp = ws.render(request, "login.html.j2", None, http_status=401, csrf=token,
                             next=_safe_next(form.get("next")),
                             message="Unknown token. Use a token from the server's token "
                             "file (`dunning serve --tokens`).")
            _set_cookie(resp, request, LOGIN_COOKIE, cookie, 600)
            return resp
        resp = ws.redirect(_safe_next(form.get("next")))
        _set_cookie(resp, request, SESSION_COOKIE, made[1], None)
        resp.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return resp

    @router.post(PREFIX + "/logout")
    async def logout(request: Request) -> Response:
        session = ws.session(request)
        form = await ws.form(request)
        if session is not None and not ws.sessions.csrf_ok(session, form.get("csrf")):
            return ws.error(request, session, 403, "The form expired; reload the page.")
        resp = ws.redirect(PREFIX + "/login")
        resp.delete_cookie(SESSION_COOKIE, path="/")
        resp.delete_cookie(LANG_COOKIE, path="/")
        return resp

    @router.post(PREFIX + "/language")
    async def switch_language(request: Request) -> Response:
        """The session's UI language (``lang``: en or de), then back to the page (``next``)."""
        posted = await ws.posted(request)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        if form.get("lang") not in LANGUAGES:
            return ws.error(request, session, 422, f"language {form.get('lang', '')[:20]!r}: "
                            f"expected one of {', '.join(LANGUAGES)}")
        resp = ws.redirect(_safe_next(form.get("next")))
        resp.set_cookie(LANG_COOKIE, form["lang"], httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
        return resp

    # -- worklist ---------------------------------------------------------------------------
    @router.get(PREFIX + "/")
    @page
    def worklist(request: Request, session: Session) -> Response:
        f = queries.WorklistFilter.from_params(request.query_params)
        with ws.state.store.connect() as con:
            day = queries.latest_day(con)
            total, rows, choices = 0, [], {"segment": [], "jurisdiction": []}
            if day is not None:
                total, rows = queries.worklist(con, day, f, ws.threshold)
                choices = ws.facets(con, day)
        pages = max(1, -(-total // queries.PAGE_SIZE))
        name = "worklist_rows.html.j2" if request.headers.get("hx-request") else \
            "worklist.html.j2"
        return ws.render(request, name, session, f=f, day=day, total=total, rows=rows,
                         pages=pages, choices=choices, actions=queries.ACTIONS,
                         statuses=queries.LEGAL_STATUS, link=_linker(f),
                         csv=f"{PREFIX}/worklist.csv?" + urllib.parse.urlencode(f.params(page="")))

    @router.get(PREFIX + "/worklist.csv")
    @page
    def worklist_csv(request: Request, session: Session) -> Response:
        f = queries.WorklistFilter.from_params(request.query_params)
        with ws.state.store.connect() as con:
            day = queries.latest_day(con)
            rows = queries.worklist(con, day, f, ws.threshold, limit=None)[1] if day else []
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["as_of", "customer_id", "customer_name", "segment", "jurisdiction",
                    "invoice_id", "amount", "currency", "due_date", "days_overdue",
                    "p_on_time", "p_late", "p_very_late", "late_risk", "action",
                    "legal_status", "rule_ids", "vetoed_by", "plausibility_flags"])
        for r in rows:
            w.writerow([day, r["customer_id"], _cell(r["name"]), r["segment"], r["jurisdiction"],
                        r["invoice_id"], f"{r['amount']:.2f}", r["currency"], r["due_date"],
                        r["days_overdue"], _num(r["p_on_time"]), _num(r["p_late"]),
                        _num(r["p_very_late"]), r["at_risk"], r["action"], r["legal"],
                        " ".join(r["rule_ids"] + r["blocked_by"]), " ".join(r["vetoed_by"]),
                        _cell("; ".join(r["flags"]))])
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="worklist-{day}.csv"'})

    # -- customer ---------------------------------------------------------------------------
    @router.get(PREFIX + "/customers/{customer_id}")
    @page
    def customer(request: Request, session: Session, customer_id: str) -> Response:
        return _customer_page(ws, request, session, customer_id[:100])

    @router.post(PREFIX + "/customers/{customer_id}/events")
    async def record_event(request: Request, customer_id: str) -> Response:
        posted = await ws.posted(request, needs_reviewer="recording an event")
        if isinstance(posted, Response):
            return posted
        session, form = posted
        values = {k: form.get(k, "").strip() for k in EVENT_FIELDS}
        from fastapi.concurrency import run_in_threadpool

        ok, message = await run_in_threadpool(ws.deciding, _record_event, ws,
                                              customer_id[:100], values, session.who.name)
        if ok is None:  # journalled while a nightly job holds the store
            return ws.render(request, "queued.html.j2", session, http_status=202,
                             rid="", message=message)
        if not ok:
            return _customer_page(ws, request, session, customer_id[:100], http_status=422,
                                  event=values, event_error=message)
        ws.state.invalidate()
        return _customer_page(ws, request, session, customer_id[:100], event_done=message)

    # -- review -----------------------------------------------------------------------------
    @router.get(PREFIX + "/review")
    @page
    def review(request: Request, session: Session) -> Response:
        q = request.query_params
        status = q.get("status", "pending")
        status = status if status in ("pending", "approved", "rejected", "all") else "pending"
        sort = q.get("sort", "age")
        sort = sort if sort in queries.REVIEW_SORTS else "age"
        desc = q.get("dir") == "desc"
        with ws.state.store.connect() as con:
            items = queries.review_items(con, status, sort, desc)
        journal = ws.state.journal  # decisions queued while a job held the store
        return ws.render(request, "review.html.j2", session, items=items, status=status,
                         sort=sort, desc=desc, message="",
                         queued=[e for e in journal.pending() if e["kind"] == "review"],
                         refused=[d for d in journal.recent if d["outcome"] == "refused"
                                  and d["kind"] == "review"][-20:])

    @router.get(PREFIX + "/review/{rid}")
    @page
    def review_item(request: Request, session: Session, rid: str) -> Response:
        with ws.state.store.connect() as con:
            try:
                item = _queue(ws, con).get(rid[:40])
            except InputError as exc:
                return ws.error(request, session, 404, str(exc))
        return ws.render(request, "review_item.html.j2", session, item=item)

    @router.post(PREFIX + "/review/{rid}")
    async def decide(request: Request, rid: str) -> Response:
        posted = await ws.posted(request, needs_reviewer="deciding a review item")
        if isinstance(posted, Response):
            return posted
        session, form = posted
        decision, reason = form.get("decision", ""), form.get("reason", "").strip()
        if decision not in ("approve", "reject") or len(reason) < 3:
            return ws.error(request, session, 422, "A decision needs approve or reject and a "
                            "reason of at least 3 characters (it is recorded in the audit "
                            "trail, GDPR art. 22(3)).")
        from fastapi.concurrency import run_in_threadpool

        from engine.store import StoreBusy

        try:
            result = await run_in_threadpool(ws.deciding, _decide, ws, rid[:40],
                                             decision == "approve", session.who.name, reason)
        except StoreBusy as exc:  # a nightly job holds the store: journal it (applied later)
            ws.state.queue_decision("review", {"review_id": rid[:40],
                                               "approve": decision == "approve",
                                               "by": session.who.name, "reason": reason})
            message = (f"Queued: {decision} of {rid[:40]} by {session.who.name}. The store is "
                       f"busy ({exc.holder}); your decision is saved and will be recorded "
                       "in the audit trail as soon as that job is done.")
            name = "review_queued.html.j2" if request.headers.get("hx-request") else \
                "queued.html.j2"
            return ws.render(request, name, session, http_status=202, rid=rid[:40],
                             message=message)
        if isinstance(result, tuple):
            return ws.error(request, session, *result)
        ws.state.invalidate()
        if request.headers.get("hx-request"):
            return ws.render(request, "review_decided.html.j2", session, item=result)
        return ws.redirect(f"{PREFIX}/review/{urllib.parse.quote(rid)}")

    # -- rules ------------------------------------------------------------------------------
    @router.get(PREFIX + "/rules")
    @page
    def rules(request: Request, session: Session) -> Response:
        ruleset = ws.state.ruleset
        results = rule_tests(ws, ruleset)
        files: dict[str, list[Any]] = {}
        for r in ruleset.rules:
            files.setdefault(Path(r.source.file).name, []).append(r)
        return ws.render(request, "rules.html.j2", session, ruleset=ruleset, files=files,
                         results=results)

    @router.get(PREFIX + "/rules/explain")
    @page
    def explain_form(request: Request, session: Session, invoice: str = "",
                     action: str = "") -> Response:
        """The form, prefilled with the facts of ``invoice`` on the worklist's day (as
        ``dunning rules explain --invoice``) or with the rule tests' neutral invoice."""
        from legal_rules.testing import DEFAULT_TEST_DATE, NEUTRAL_FACTS

        action = action if action in CHANNELS else "email"
        if not invoice:
            values = {k: _show(v) for k, v in NEUTRAL_FACTS.items()}
            return _explain_page(ws, request, session, values, action,
                                 DEFAULT_TEST_DATE.isoformat(), None, [])
        facts = _invoice_facts(ws, invoice[:100])
        if isinstance(facts, str):
            return ws.error(request, session, 404, facts)
        day, values = facts
        return _explain_page(ws, request, session, values, action, day.isoformat(), None, [],
                             invoice=invoice[:100])

    @router.post(PREFIX + "/rules/explain")
    async def explain(request: Request) -> Response:
        posted = await ws.posted(request)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        from legal_rules.facts import FACTS

        values = {k: form.get(f"fact_{k}", "").strip() for k in FACTS}
        action, day = form.get("action", ""), form.get("as_of", "").strip()
        facts, problems = _parse_facts(values)
        if action not in CHANNELS:
            problems.append(f"action: {action!r} is not one of {', '.join(CHANNELS)}")
        try:
            as_of = dt.date.fromisoformat(day)
        except ValueError:
            problems.append(f"date: {day!r} is not a date YYYY-MM-DD")
        decision = None
        if not problems:
            with ws.rules_lock:
                decision = ws.state.evaluator.decide(facts, action, as_of, explain=True)
        return _explain_page(ws, request, session, values, action, day, decision, problems,
                             show_all=form.get("all") == "1", invoice=form.get("invoice", "")[:100])

    @router.get(PREFIX + "/rules/check")
    @page
    def check_form(request: Request, session: Session) -> Response:
        return ws.render(request, "rules_check.html.j2", session, file_name="upload.yaml", text="",
                         problems=None, rules=[], results={}, proposal=None)

    @router.post(PREFIX + "/rules/check")
    async def check(request: Request) -> Response:
        posted = await ws.posted(request)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        name = rule_file_name(form.get("name", ""))
        text = form.get("yaml", "")
        from fastapi.concurrency import run_in_threadpool

        problems, rules, results = await run_in_threadpool(check_rule_file, ws, name, text)
        return ws.render(request, "rules_check.html.j2", session,
                         http_status=422 if problems else 200, file_name=name, text=text,
                         problems=problems, rules=rules, results=results, proposal=None)

    @router.post(PREFIX + "/rules/propose")
    async def propose_rule_file(request: Request) -> Response:
        """Propose a checked file (legal role): checked again, then
        :func:`dunning.ops.rule_approval.propose` stores it as pending and audits it."""
        posted = await ws.posted(request, needs_reviewer="proposing a rule file",
                                 role=LEGAL_ROLE)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        name, text = rule_file_name(form.get("name", "")), form.get("yaml", "")
        from fastapi.concurrency import run_in_threadpool

        problems, rules, results, proposal = await run_in_threadpool(
            checked_proposal, ws, name, text, session.who.name)
        return ws.render(request, "rules_check.html.j2", session,
                         http_status=422 if problems else 200, file_name=name,
                         text=text, problems=problems, rules=rules,
                         results=results, proposal=proposal)

    @router.get(PREFIX + "/rules/pending")
    @page
    def pending_rules(request: Request, session: Session) -> Response:
        return _pending_page(ws, request, session)

    @router.post(PREFIX + "/rules/pending/{sha}")
    async def approve_rule_file(request: Request, sha: str) -> Response:
        """Approve a pending file (legal role, not its proposer, a reason): through
        :func:`dunning.ops.rule_approval.approve`; the decisions use it from now on."""
        posted = await ws.posted(request, needs_reviewer="approving a rule change",
                                 role=LEGAL_ROLE)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        reason = form.get("reason", "").strip()
        if not re.fullmatch(r"[0-9a-f]{6,64}", sha):
            return ws.error(request, session, 404, f"{sha[:70]!r}: not a proposal's sha256")
        if len(reason) < 3:
            return ws.error(request, session, 422, "Approving a rule change needs a reason of "
                            "at least 3 characters (it is recorded in the audit trail).")
        from fastapi.concurrency import run_in_threadpool

        done = await run_in_threadpool(_approve, ws, sha, session.who, reason)
        if isinstance(done, str):
            return ws.error(request, session, 409, done)
        ws.state.invalidate()
        prop, ruleset_hash, seq = done
        return _pending_page(ws, request, session, approved=(
            prop.name, prop.sha256, prop.proposed_by, ruleset_hash, seq))

    # -- letters ----------------------------------------------------------------------------
    @router.get(PREFIX + "/letters/{invoice_id}")
    @page
    def letter_page(request: Request, session: Session, invoice_id: str,
                    action: str = "") -> Response:
        made = _letter(ws, invoice_id[:100], action)
        if isinstance(made, tuple):
            return ws.error(request, session, *made)
        letter, channel, day = made.letter, made.channel, made.day
        base = f"{PREFIX}/letters/{urllib.parse.quote(invoice_id)}"
        query = urllib.parse.urlencode({"action": channel})
        return ws.render(request, "letter.html.j2", session, letter=letter, channel=channel,
                         day=day, frame=f"{base}/letter.html?{query}",
                         pdf=f"{base}/letter.pdf?{query}", sent_url=f"{base}/sent",
                         channels=LETTER_CHANNELS)

    @router.get(PREFIX + "/letters/{invoice_id}/letter.{fmt}")
    @page
    def letter_file(request: Request, session: Session, invoice_id: str, fmt: str,
                    action: str = "") -> Response:
        if fmt not in ("html", "pdf"):
            return ws.error(request, session, 404, f"format {fmt!r}: expected html or pdf")
        made = _letter(ws, invoice_id[:100], action)
        if isinstance(made, tuple):
            return ws.error(request, session, *made)
        letter = made.letter
        if fmt == "html":
            return HTMLResponse(letter.html, headers={**SECURITY_HEADERS,
                                                      "Content-Security-Policy": LETTER_CSP,
                                                      "X-Frame-Options": "SAMEORIGIN"})
        import tempfile

        from dunning.ops.letters import html_to_pdf

        try:
            with tempfile.TemporaryDirectory(prefix="dunning-ws-") as tmp:
                pdf = html_to_pdf(letter.html, Path(tmp) / "letter.pdf").read_bytes()
        except InputError as exc:
            return ws.error(request, session, 409, str(exc))
        return Response(pdf, media_type="application/pdf", headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'inline; filename="{letter.invoice_id}-{made.channel}.pdf"'})

    @router.post(PREFIX + "/letters/{invoice_id}/sent")
    async def letter_sent(request: Request, invoice_id: str) -> Response:
        posted = await ws.posted(request, needs_reviewer="recording a sent letter")
        if isinstance(posted, Response):
            return posted
        session, form = posted
        channel = form.get("action", "")
        if channel not in LETTER_CHANNELS:
            return ws.error(request, session, 422, f"action {channel!r}: expected one of "
                            f"{', '.join(LETTER_CHANNELS)}")
        from fastapi.concurrency import run_in_threadpool

        result = await run_in_threadpool(ws.deciding, _mark_sent, ws, invoice_id[:100], channel,
                                         session.who.name)
        if isinstance(result, tuple):
            return ws.error(request, session, *result)
        ws.state.invalidate()
        # no redirect to the preview: once sent, that letter is no longer due (min gap)
        return ws.render(request, "letter_sent.html.j2", session, message=result,
                         invoice_id=invoice_id)

    # -- model and policy -----------------------------------------------------------------
    @router.get(PREFIX + "/model")
    @page
    def model(request: Request, session: Session) -> Response:
        path = _results_path(ws)
        return ws.render(request, "model.html.j2", session, found=path.exists(),
                         results=path.name, frame=f"{PREFIX}/model/report.html")

    @router.get(PREFIX + "/model/report.html")
    @page
    def model_report(request: Request, session: Session) -> Response:
        from dunning.report.render import load_results, render_report

        path = _results_path(ws)
        try:
            html = render_report(load_results(path))
        except InputError as exc:  # no run yet (404) or a results file the report refuses
            return ws.error(request, session, 422 if path.exists() else 404, str(exc).replace(
                str(path.parent), "<data folder>"))
        return HTMLResponse(html, headers={**SECURITY_HEADERS, "Content-Security-Policy":
                                           LETTER_CSP, "X-Frame-Options": "SAMEORIGIN"})

    # last: any other path under /ui is an HTML page "not found", not the API's JSON
    @router.api_route(PREFIX + "/{rest:path}", methods=["GET", "POST"])
    def not_found(request: Request, rest: str) -> Response:
        return ws.error(request, ws.session(request), 404,
                        f"No page {request.url.path[:200]!r} in the workspace.")

    return router


# ---------------------------------------------------------------------------- helpers
def _customer_page(ws: Workspace, request: Request, session: Session, customer_id: str,
                   http_status: int = 200, event: dict[str, str] | None = None,
                   event_error: str = "", event_done: str = "") -> Response:
    """The customer page; ``event``/``event_error``/``event_done``: the event form's values
    and the outcome of recording one (shown in the form)."""
    from dunning.workspace.charts import history_chart

    with ws.state.store.connect() as con:
        day = queries.latest_day(con)
        try:
            data = queries.customer(con, customer_id, day, ws.threshold)
        except InputError as exc:
            return ws.error(request, session, 404, str(exc))
    factors = next((r["top_factors"] for r in sorted(
        data["open"], key=lambda r: -(r["amount"] or 0)) if r["top_factors"]), [])
    chart = history_chart(queries.payment_points(data["past"]))
    form = {k: "" for k in EVENT_FIELDS}
    form.update(kind="payment", effective_date=(day or dt.date.today()).isoformat())
    if event:
        form.update(event)
    invoices = [r["invoice_id"] for r in data["open"]] + [r["invoice_id"] for r in data["past"]]
    return ws.render(request, "customer.html.j2", session, http_status=http_status, day=day,
                     c=data, chart=chart, factors=factors, event=form, event_kinds=EVENT_KINDS,
                     event_invoices=invoices, event_error=event_error, event_done=event_done,
                     opt_out_channels=OPT_OUT_CHANNELS)


def _record_event(ws: Workspace, customer_id: str, values: dict[str, str],
                  who: str) -> tuple[bool | None, str]:
    """Record the event form's ``values`` for ``customer_id`` through
    :func:`dunning.ops.events.record` (validated, audited under ``ui:who``); returns
    ``(True, summary)``, ``(False, the error as the form names its fields)`` or, when a
    nightly job holds the store past the decision's wait, ``(None, "queued ...")`` after
    journalling it (``dunning.ops.journal``)."""
    from dunning.ops.events import record
    from engine.events import Event

    problems = []
    kind = values["kind"]
    if kind not in EVENT_KINDS:
        problems.append(f"kind: {kind[:40]!r} is not one of {', '.join(EVENT_KINDS)}")
    dates: dict[str, dt.date | None] = {}
    for name in ("effective_date", "promised_date"):
        text = values[name]
        try:
            dates[name] = dt.date.fromisoformat(text) if text else None
        except ValueError:
            problems.append(f"{EVENT_FIELDS[name]}: {text[:40]!r} is not a date YYYY-MM-DD")
    if not values["effective_date"]:
        problems.append("date: give the day it happened (YYYY-MM-DD)")
    amount = None
    if values["amount"]:
        try:
            amount = float(values["amount"].replace(",", ""))
        except ValueError:
            problems.append(f"amount: {values['amount'][:40]!r} is not a number")
    if problems:
        return False, "; ".join(problems)
    event = Event(kind=kind, effective_date=dates["effective_date"],  # type: ignore[arg-type]
                  invoice_id=values["invoice_id"] or None, customer_id=customer_id,
                  amount=amount, promised_date=dates["promised_date"],
                  channel=values["channel"] or None, recorded_by=f"ui:{who}",
                  note=values["note"] or None)
    if kind != "opt_out" and not event.invoice_id:
        return False, f"invoice: {kind.replace('_', ' ')} is about one invoice; choose it"
    if kind != "opt_out":
        event.channel = None if kind not in ("contact_attempt", "conversation") else "phone"
    from engine.store import StoreBusy

    try:
        with ws.rules_lock.over(ws.state.store):  # the API's one writer lock of this process
            done = record(ws.state.store, event, anchor=ws.state.anchor)
    except InputError as exc:
        return False, _form_words(str(exc))
    except StoreBusy as exc:  # a nightly job holds the store: journal it (applied later)
        import dataclasses

        data = {k: (v.isoformat() if isinstance(v, dt.date) else v)
                for k, v in dataclasses.asdict(event).items()}
        ws.state.queue_decision("event", {"by": who, "event": data})
        return None, (f"Queued: {kind.replace('_', ' ')} for customer {customer_id}. The "
                      f"store is busy ({exc.holder}); it is saved and will be recorded in "
                      "the audit trail as soon as that job is done.")
    return True, done.recorded.summary() + (f" (audit record #{done.audit_seq})"
                                            if done.audit_seq else "")


def _form_words(message: str) -> str:
    """An error of :mod:`engine.events` (worded for the CLI's options) with the form's labels."""
    return re.sub(r"--([a-z-]+)", lambda m: EVENT_OPTIONS.get(m.group(1), m.group(1)), message)


def _approve(ws: Workspace, sha: str, who: Any, reason: str) -> tuple[Any, str, int] | str:
    """:func:`dunning.ops.rule_approval.approve` (its refusals, e.g. the proposer's own
    file, as the message), then the rules in force compiled again for the server."""
    from dunning.ops.rule_approval import approve
    from legal_rules.loader import RuleFileError

    try:
        with ws.rules_lock.over(ws.state.store):
            done = approve(ws.state.store, sha, who, reason)
    except RuleFileError as exc:
        return "; ".join(str(p) for p in exc.problems) or str(exc)
    except InputError as exc:
        return str(exc).replace(str(ws.state.store.path.parent), "<data folder>")
    if ws.state.ruleset.hash != done[1]:  # compiled_rules keys on the files: a new set
        return (f"{done[0].name} was approved (audit record #{done[2]}, rules "
                f"{done[1][:12]}), but this server still decides with rules "
                f"{ws.state.ruleset.hash[:12]}; restart `dunning serve`")
    return done


def _pending_page(ws: Workspace, request: Request, session: Session,
                  approved: tuple | None = None) -> Response:
    """The pending proposals, each with a unified diff against the file of that name in
    force (packaged or approved), or the whole file when it adds a new one."""
    from dunning.ops.rule_approval import file_sha256, in_force_file, pending

    ruleset = ws.state.ruleset
    rows = []
    for p in pending(ws.state.store.path):
        new = p.path.read_text(encoding="utf-8").splitlines(keepends=True)
        old_path = in_force_file(ws.state.store.path, p.name)
        old = old_path.read_text(encoding="utf-8").splitlines(keepends=True) if old_path else []
        diff = unified_diff(old, new, f"{p.name} (in force)", f"{p.name} (proposed)")
        rows.append({"p": p, "replaces": old_path is not None, "diff": "".join(diff),
                     "diff_lines": [(_diff_class(d), d.rstrip("\n")) for d in diff],
                     "old_sha256": file_sha256(old_path) if old_path else ""})
    return ws.render(request, "rules_pending.html.j2", session, rows=rows, ruleset=ruleset,
                     approved=approved, trail=_rule_trail(ws))


def unified_diff(old: list[str], new: list[str], old_name: str, new_name: str,
                 context: int = 2) -> list[str]:
    """The unified diff of two files' lines (with their line ends), like
    :func:`difflib.unified_diff` but without its "autojunk" heuristic: in a file of over
    200 lines that heuristic ignores frequent lines (blank lines, ``tests:``) when aligning,
    and an appended rule then shows as a changed last line."""
    import difflib

    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    out = [f"--- {old_name}\n", f"+++ {new_name}\n"]
    for group in matcher.get_grouped_opcodes(context):
        (_, i1, _, j1, _), (_, _, i2, _, j2) = group[0], group[-1]
        out.append(f"@@ -{i1 + 1},{i2 - i1} +{j1 + 1},{j2 - j1} @@\n")
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                out += [" " + line for line in old[a1:a2]]
                continue
            out += ["-" + line for line in old[a1:a2]]
            out += ["+" + line for line in new[b1:b2]]
    return [line if line.endswith("\n") else line + "\n" for line in out]


def _diff_class(line: str) -> str:
    """The CSS class of a unified diff's line: added, removed, hunk header or context."""
    if line.startswith(("+++", "---")):
        return "d-file"
    return {"+": "d-add", "-": "d-del", "@": "d-hunk"}.get(line[:1], "d-same")


def _rule_trail(ws: Workspace, last: int = 20) -> list[dict[str, Any]]:
    """The last ``last`` rule changes of the audit trail (proposed / approved), newest first."""
    import duckdb

    from dunning.ops.audit import AuditLog

    try:
        with ws.state.store.connect() as con:
            records = AuditLog(con, anchor=ws.state.anchor).records(kind="rules")
    except duckdb.CatalogException:  # no audit log yet
        return []
    return records[::-1][:last]


def _results_path(ws: Workspace) -> Path:
    """``results.json`` of ``dunning demo`` beside the store (its model card, drift, the
    policies' evaluation and per-segment timing)."""
    return ws.state.store.path.parent / "results.json"


@dataclass(frozen=True)
class _LetterView:
    letter: Any  # dunning.ops.letters.Letter
    channel: str
    day: dt.date


def _letter(ws: Workspace, invoice_id: str, action: str) -> _LetterView | tuple[int, str]:
    """The letter of an open invoice on the worklist's day, or ``(status, message)``. The
    channel is ``action`` or the day's recommended one."""
    from dunning.ops.letters import Creditor, letters_for
    from engine.contract import Action

    with ws.state.store.connect() as con:
        day = queries.latest_day(con)
        row = None if day is None else con.execute(
            "SELECT action FROM ops_recommendations WHERE as_of = ? AND invoice_id = ?",
            [day, invoice_id]).fetchone()
    if row is None:
        return 404, f"no open invoice {invoice_id!r} on the worklist's day"
    channel = action or (row[0] if row[0] in LETTER_CHANNELS else "letter")
    if channel not in LETTER_CHANNELS:
        return 422, f"action {channel!r}: expected one of {', '.join(LETTER_CHANNELS)}"
    config = ws.state.config
    try:
        creditor = Creditor.from_yaml(getattr(config, "creditor", None)
                                      or ws.state.store.path.parent / "creditor.yaml")
        with ws.rules_lock.over(ws.state.store):
            made = letters_for(ws.state.store, day, creditor, ruleset=ws.state.ruleset,
                               actions={invoice_id: Action.from_channel(channel)})
    except InputError as exc:
        return 409, str(exc)
    return _LetterView(made[0], channel, day)


def _mark_sent(ws: Workspace, invoice_id: str, channel: str, who: str) -> str | tuple:
    """Record the letter as sent on the worklist's day (``record_action``: validated, audited,
    idempotent); returns a message or ``(status, message)``."""
    from dunning.ops.actions import record_action

    with ws.state.store.connect() as con:
        day = queries.latest_day(con)
    if day is None:
        return 409, "no worklist day yet"
    try:
        with ws.rules_lock.over(ws.state.store):
            done = record_action(ws.state.store, invoice_id, channel, day, decided_by=who,
                                 anchor=ws.state.anchor, ruleset=ws.state.ruleset)
    except InputError as exc:
        return 409, str(exc)
    if not done.loaded:
        return f"{channel} of {day} was already recorded"
    return f"{channel} recorded as sent on {day} by {who} (audit record #{done.audit_seq})"
def _page_guard(ws: Workspace) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Decorator for GET pages: pass the session, or redirect to the login page."""
    import functools
    import inspect

    def wrap(fn: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(fn)
        def inner(request: Request, **kwargs: Any) -> Response:
            session = ws.session(request)
            if session is None:
                return ws.login_redirect(request)
            return fn(request, session, **kwargs)

        sig = inspect.signature(fn)
        params = [p for name, p in sig.parameters.items() if name != "session"]
        inner.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        return inner

    return wrap


def _set_cookie(resp: Response, request: Request, name: str, value: str,
                max_age: int | None) -> None:
    resp.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict",
                    secure=request.url.scheme == "https",
                    path="/" if name == SESSION_COOKIE else PREFIX)


def _linker(f: queries.WorklistFilter) -> Callable[..., str]:
    def link(**override: Any) -> str:
        return f"{PREFIX}/?" + urllib.parse.urlencode(f.params(**override))

    return link


def _cell(value: Any) -> str:
    """A CSV text cell that a spreadsheet will not run as a formula (hostile names)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _num(value: Any) -> str:
    return "" if value is None or value != value else f"{float(value):.4f}"


def _queue(ws: Workspace, con: Any) -> Any:
    from dunning.ops.audit import AuditLog
    from dunning.ops.review import ReviewQueue

    return ReviewQueue(con, AuditLog(con, anchor=ws.state.anchor))


def _decide(ws: Workspace, rid: str, approve: bool, reviewer: str,
            reason: str) -> dict[str, Any] | tuple[int, str]:
    """Decide through :meth:`ReviewQueue.decide`; ``(status, message)`` on a user error."""
    with ws.state.store.connect() as con:
        queue = _queue(ws, con)
        try:
            queue.get(rid)
        except InputError as exc:
            return 404, str(exc)
        try:
            item = queue.decide(rid, approve, reviewer, reason)
        except InputError as exc:
            return 409, str(exc)
        item["decisions"] = queue.get(rid)["decisions"]
    return item


def _invoice_facts(ws: Workspace, invoice_id: str) -> tuple[dt.date, dict[str, str]] | str:
    """``(day, facts as form strings)`` of an invoice on the worklist's day, from the store
    (``legal_rules.from_tables.facts_for_invoices``, the one builder of legal facts), or why
    not."""
    from legal_rules.facts import FACTS
    from legal_rules.from_tables import facts_for_invoices

    with ws.state.store.connect() as con:
        day = queries.latest_day(con)
    if day is None:
        return "no worklist day yet: run the daily recommendation first"
    facts = facts_for_invoices(ws.state.store.tables(as_of=day), day)
    ids = [str(i) for i in facts["invoice_id"]]
    if invoice_id not in ids:
        return f"no invoice {invoice_id!r} known on {day}"
    i = ids.index(invoice_id)
    values = {}
    for name in FACTS:
        v = facts[name][i] if name in facts else None
        v = v.item() if hasattr(v, "item") else v
        values[name] = "" if v is None or (isinstance(v, float) and v != v) else _show(v)
    return day, values


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _parse_facts(values: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Form strings to typed facts (``legal_rules.facts.FACTS``); empty = missing (the
    decision then fails closed and says so), except ``region`` where empty means none.
    Returns ``(facts, problems)``."""
    from legal_rules.facts import FACTS

    facts: dict[str, Any] = {}
    problems: list[str] = []
    for name, text in values.items():
        if text == "" and name != "region":
            continue  # unknown; ('' is a region's "none", not unknown)
        kind = FACTS[name].type
        try:
            if kind == "int":
                facts[name] = int(text)
            elif kind == "float":
                facts[name] = float(text)
            elif kind == "bool":
                if text not in ("true", "false"):
                    raise ValueError
                facts[name] = text == "true"
            else:
                facts[name] = text
        except ValueError:
            expected = {"int": "a whole number", "float": "a number",
                        "bool": "true or false"}.get(kind, "text")
            problems.append(f"{name}: {text[:40]!r} is not {expected}")
    return facts, problems


def _explain_page(ws: Workspace, request: Request, session: Session, values: dict[str, str],
                  action: str, day: str, decision: Any, problems: list[str],
                  show_all: bool = False, invoice: str = "") -> Response:
    from legal_rules.facts import FACTS

    not_fired, hidden = [], 0
    if decision is not None:  # the way `dunning rules explain` lists them
        for rule_id, why in decision.not_fired:
            if not show_all and ("jurisdiction" in why or why.startswith("scope")):
                hidden += 1
            else:
                not_fired.append((rule_id, why))
    return ws.render(request, "explain.html.j2", session, http_status=422 if problems else 200,
                     facts=FACTS, values=values, action=action, day=day, channels=CHANNELS,
                     decision=decision, problems=problems, not_fired=not_fired, hidden=hidden,
                     show_all=show_all, invoice=invoice)
