"""The rule-file editor and the KPI what-if of a changed rule set, under ``/ui/rules``.

=========================  ======  ==========================================================
path                       method  what
=========================  ======  ==========================================================
/ui/rules/edit/{name}      GET     the file in force (approved team file, else packaged) in
                                   the editor (legal role)
/ui/rules/new              GET     the editor with a new file from a template (legal role)
/ui/rules/editor           POST    ``do=check``: validate with the rules in force and run the
                                   inline tests, saves nothing; ``do=propose``: the same, then
                                   pending (all or nothing, audited) only if it passes
/ui/rules/whatif           POST    start the what-if of a pending proposal (``sha``) or of the
                                   editor's text (``name``, ``yaml``); redirects to its job
/ui/rules/whatif/{job}     GET     the job: progress (htmx polls it) or the KPI table
=========================  ======  ==========================================================

Checking and proposing go through :func:`dunning.workspace.rule_files.checked_proposal` (the
check page's and ``dunning rules propose``'s code); the what-if through
:mod:`dunning.workspace.whatif_jobs` (``dunning what-if --rule-file`` in a worker thread).
Every POST needs the session's CSRF token; the editor's need the legal role (403 otherwise).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from dunning.ops.rule_approval import LEGAL_ROLE
from dunning.workspace.i18n import LANG_COOKIE, language

NEW_FILE = """description: >
  Our team's rules (company policy). One rule per list item; each needs at least two
  inline tests (one that fires, one that does not).
rules:
  - id: team.no_calls_on_weekends
    title: No phone calls on weekends
    jurisdiction: "*"
    scope: both
    applies_to: [phone]
    when: {fact: is_weekend, op: eq, value: true}
    effect: veto
    kind: company_policy
    citation: "Company policy: works council agreement"
    valid_from: 2026-01-01
    rationale: Debtors are not called on Saturdays or Sundays.
    tests:
      - {facts: {is_weekend: true}, action: phone, expect: fires, decision: vetoed}
      - {facts: {is_weekend: false}, action: phone, expect: does_not_fire}
"""
_PROBLEM = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<field>[^:]+): (?P<message>.*)$",
                      re.S)
_FILE_NAME = re.compile(r"[a-z0-9_][a-z0-9_.-]{0,55}\.ya?ml")


def make_editor_router(ws: Any, prefix: str) -> APIRouter:
    """The editor's and the what-if's routes over the ``Workspace`` ``ws``, under ``prefix``
    (``/ui``)."""
    from dunning.workspace.whatif_jobs import WhatIfJobs

    PREFIX = prefix  # noqa: N806 - as in routes.py's paths

    router = APIRouter(include_in_schema=False)
    ws.whatif = getattr(ws, "whatif", None) or WhatIfJobs()

    def legal_only(request: Request) -> Any:
        session = ws.session(request)
        if session is None:
            return ws.login_redirect(request)
        if session.who.role != LEGAL_ROLE:
            return ws.error(request, session, 403, f"{session.who.name} has the role "
                            f"{session.who.role!r}; editing rule files needs {LEGAL_ROLE!r}.")
        return session

    @router.get(PREFIX + "/rules/edit/{name}")
    def edit(request: Request, name: str) -> Response:
        session = legal_only(request)
        if isinstance(session, Response):
            return session
        path = _in_force(ws, name)
        if path is None:
            return ws.error(request, session, 404, f"{name[:60]!r}: no rule file of that name "
                            "is in force")
        return _editor_page(ws, request, session, name, path.read_text(encoding="utf-8"),
                            is_new=False)

    @router.get(PREFIX + "/rules/new")
    def new(request: Request) -> Response:
        session = legal_only(request)
        if isinstance(session, Response):
            return session
        return _editor_page(ws, request, session, "team.yaml", NEW_FILE, is_new=True)

    @router.post(PREFIX + "/rules/editor")
    async def editor(request: Request) -> Response:
        """``do=check`` or ``do=propose`` (legal role): the editor again with the verdict."""
        from dunning.workspace.rule_files import check_rule_file, checked_proposal, rule_file_name

        posted = await ws.posted(request, needs_reviewer="editing a rule file", role=LEGAL_ROLE)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        name, text = rule_file_name(form.get("name", "")), form.get("yaml", "")
        is_new = form.get("is_new") == "1"
        if form.get("do") == "propose":
            problems, rules, results, proposal = await run_in_threadpool(
                checked_proposal, ws, name, text, session.who.name)
        else:
            (problems, rules, results), proposal = await run_in_threadpool(
                check_rule_file, ws, name, text), None
        return _editor_page(ws, request, session, name, text, is_new=is_new, checked=True,
                            problems=problems, rules=rules, results=results,
                            proposal=proposal)

    @router.post(PREFIX + "/rules/whatif")
    async def start_whatif(request: Request) -> Response:
        """Queue the what-if of pending proposal ``sha`` or of ``name``/``yaml`` (any role: it
        changes nothing; the text is checked first); 303 to its job page, 503 when busy."""
        from dunning.workspace.rule_files import check_rule_file, rule_file_name
        from engine.errors import InputError

        posted = await ws.posted(request)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        if form.get("sha"):
            found = _pending_file(ws, form["sha"])
            if found is None:
                return ws.error(request, session, 404, f"{form['sha'][:70]!r}: no pending "
                                "rule change with that sha256")
            name, text = found
        else:
            name, text = rule_file_name(form.get("name", "")), form.get("yaml", "")
            problems = (await run_in_threadpool(check_rule_file, ws, name, text))[0]
            if problems:
                return ws.error(request, session, 422, "The what-if needs a rule file that "
                                "loads; Check shows where it does not: " + "; ".join(problems))
        try:
            job = ws.whatif.submit(name, text)
        except InputError as exc:
            return ws.error(request, session, 503, str(exc))
        return ws.redirect(f"{PREFIX}/rules/whatif/{job.id}")

    @router.get(PREFIX + "/rules/whatif/{key}")
    def whatif_page(request: Request, key: str) -> Response:
        """The job's page; with ``HX-Request`` only its progress or result (htmx polls it)."""
        session = ws.session(request)
        if session is None:
            return ws.login_redirect(request)
        job = ws.whatif.get(key) if re.fullmatch(r"[0-9a-f]{64}", key) else None
        if job is None:
            return ws.error(request, session, 404, "no such what-if (the server keeps them "
                            "until it restarts); start it again from the rule change")
        ctx = _whatif_context(ws, job, language(request.cookies.get(LANG_COOKIE)))
        if request.headers.get("hx-request"):
            return ws.render(request, "rules_whatif_body.html.j2", session, **ctx)
        return ws.render(request, "rules_whatif.html.j2", session, **ctx)

    return router


def _in_force(ws: Any, name: str) -> Path | None:
    """The rule file ``name`` in force for this store, or None (also for a bad name)."""
    from dunning.ops.rule_approval import in_force_file

    if not _FILE_NAME.fullmatch(name):
        return None
    return in_force_file(ws.state.store.path, name)


def _pending_file(ws: Any, sha: str) -> tuple[str, str] | None:
    """``(name, text)`` of the pending proposal whose sha256 is ``sha``."""
    from dunning.ops.rule_approval import pending

    for p in pending(ws.state.store.path):
        if p.sha256 == sha.lower():
            return p.name, p.path.read_text(encoding="utf-8")
    return None


def split_problem(problem: str, name: str) -> dict[str, Any]:
    """A problem ``file:line: field: message`` as its parts; ``line`` is set (for the link
    to the numbered line) only when it is in the edited file ``name``."""
    m = _PROBLEM.match(problem)
    if m is None:
        return {"where": "", "line": None, "field": "", "message": problem}
    line = int(m["line"]) if Path(m["file"]).name == name else None
    return {"where": f"{Path(m['file']).name}:{m['line']}", "line": line,
            "field": "" if m["field"] == "(file)" else m["field"], "message": m["message"]}


def _editor_page(ws: Any, request: Request, session: Any, name: str, text: str, *,
                 is_new: bool, checked: bool = False, problems: list[str] | None = None,
                 rules: list[Any] | None = None, results: dict[str, list[Any]] | None = None,
                 proposal: Any = None) -> Response:
    """The editor: the text in a textarea, the verdict beside it, the numbered lines with
    each problem's line marked (anchors ``#L<n>``)."""
    parts = [split_problem(p, name) for p in problems or []]
    bad: dict[int, list[str]] = {}
    for p in parts:
        if p["line"] is not None:
            bad.setdefault(p["line"], []).append(f"{p['field']}: {p['message']}".lstrip(": "))
    lines = [(i, line, bad.get(i, [])) for i, line in enumerate(text.splitlines(), 1)]
    replaces = _in_force(ws, name) is not None
    return ws.render(request, "rules_edit.html.j2", session,
                     http_status=422 if problems else 200, file_name=name, text=text,
                     is_new=is_new, replaces=replaces, checked=checked, problems=parts,
                     lines=lines, rules=rules or [], results=results or {},
                     proposal=proposal)


def _whatif_context(ws: Any, job: Any, lang: str) -> dict[str, Any]:
    from dunning.ops.rule_approval import approved_files
    from dunning.workspace.whatif_jobs import kpi_rows, other_rules_moved
    from legal_rules.messages import render

    ctx: dict[str, Any] = {"job": job, "rows": [], "others": [], "caveats": [], "effects": []}
    if job.result is None:
        return ctx
    try:
        team = [p.name for p in approved_files(ws.state.store.path)]
    except Exception:  # noqa: BLE001 - the rules page says why; here only a caveat
        team = ["(unreadable)"]

    # what the what-if itself says (which policy ran, on which dates, what "blocked" means),
    # in the session's language
    out = job.outcome
    caveats = [render(m, lang) for m in (out.policy, *out.notes)]
    caveats.append(f"A small run for the browser: {job.invoices} simulated invoices x "
                   f"{job.seeds} seeds of the {job.result['scenario']} scenario; the intervals "
                   "are wide. For a decision run `dunning what-if --rule-file "
                   f"{job.name}` (2,000 invoices x 5 seeds).")
    if team:
        caveats.append("Compared with the packaged rules only: the approved team files ("
                       + ", ".join(team) + ") are in neither side.")
    effects = [{**c, "text": render(c["message"], lang)} for c in out.rule_changes]
    ctx.update(rows=kpi_rows(job.result, lang), others=other_rules_moved(job.result),
               caveats=[c for c in caveats if c], effects=effects)
    return ctx
