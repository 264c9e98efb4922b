"""CLI commands of the rules area: ``dunning rules check | test | list | explain``.

For legal teams: validate and test rule files without writing Python. Heavy imports
(legal_rules, numpy, durable_rules) happen inside the commands.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import typer

from dunning.commands.common import console, err_console, user_errors
from engine.config import DEFAULT_DB
from engine.errors import InputError

rules_app = typer.Typer(
    name="rules",
    help="Legal rules (YAML): check, test, list and explain decisions. Not legal advice.",
    no_args_is_help=True,
)

RULES_HELP = ("Extra rule file or directory, added to the packaged rules; a file named like a "
              "packaged one (de.yaml) replaces it (repeatable).")
NO_PACKAGED_HELP = "Use only the --rules paths, not the packaged rules."
WITH_PACKAGED_HELP = ("Load the packaged rules too (e.g. to check one new file against them); "
                      "a file named like a packaged one replaces it.")


def _load(paths: list[Path] | None, packaged: bool = False) -> Any:
    """Rules from ``paths``; with ``packaged`` (or no paths) the packaged rules too, where a
    file named like a packaged one (``de.yaml``) replaces it (``loader.layered_files``)."""
    from legal_rules.loader import layered_files, load_rules

    return load_rules(layered_files([str(p) for p in paths or []], packaged=packaged))


@rules_app.command("check")
@user_errors
def check(
    paths: list[Path] = typer.Argument(None, help="Rule file(s) or directory(ies); default: "
                                       "the packaged rules."),
    with_packaged: bool = typer.Option(False, "--with-packaged", help=WITH_PACKAGED_HELP),
) -> None:
    """Validate rule files; print `file:line: field: message` for every problem."""
    from legal_rules.loader import RuleFileError

    try:
        ruleset = _load(paths, packaged=with_packaged)
    except RuleFileError as exc:
        for problem in exc.problems:
            err_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        err_console.print(f"[bold red]{len(exc.problems)} problem(s)[/]; nothing loaded")
        raise typer.Exit(code=1) from None
    from legal_rules.lint import rule_warnings
    from legal_rules.loader import replaced_files

    for name in replaced_files(ruleset.files):
        console.print(f"{name} replaces the packaged {name}", highlight=False)
    warnings = rule_warnings(ruleset, date.today())
    for w in warnings:
        err_console.print(f"warning: {w}", markup=False, highlight=False, soft_wrap=True)
    n_tests = sum(len(r.tests) for r in ruleset.rules)
    n_policy = sum(r.kind == "company_policy" for r in ruleset.rules)
    console.print(f"[green]ok[/]: {len(ruleset.files)} file(s), {len(ruleset.rules)} rules "
                  f"({len(ruleset.rules) - n_policy} law, {n_policy} company policy), "
                  f"{len(ruleset.rates)} rates, {n_tests} inline tests, {len(warnings)} "
                  f"warning(s); hash {ruleset.hash[:12]}")


@rules_app.command("test")
@user_errors
def test(
    paths: list[Path] = typer.Argument(None, help="Rule file(s) or directory(ies); default: "
                                       "the packaged rules."),
    with_packaged: bool = typer.Option(False, "--with-packaged", help=WITH_PACKAGED_HELP),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List every case."),
) -> None:
    """Run every inline test case (through durable_rules and numpy); non-zero exit on failure."""
    from legal_rules.testing import run_rule_tests

    ruleset = _load(paths, packaged=with_packaged)
    results = run_rule_tests(ruleset)
    by_rule: dict[str, list[Any]] = {}
    for res in results:
        by_rule.setdefault(res.rule.id, []).append(res)
    failed = 0
    for rule_id, cases in by_rule.items():
        bad = [c for c in cases if not c.passed]
        failed += len(bad)
        mark = "[green]PASS[/]" if not bad else "[bold red]FAIL[/]"
        console.print(f"{mark} {rule_id} ({len(cases) - len(bad)}/{len(cases)})",
                      highlight=False)
        for c in cases if verbose else bad:
            sign = "  ok " if c.passed else "  [red]x[/]  "
            console.print(f"{sign}{c.label}", highlight=False, markup=True)
            for m in c.messages:
                console.print(f"       {m}", markup=False, highlight=False, soft_wrap=True)
    total = len(results)
    colour = "green" if not failed else "bold red"
    console.print(f"[{colour}]{total - failed} passed, {failed} failed[/] "
                  f"({len(by_rule)} rules, hash {ruleset.hash[:12]})")
    if failed:
        raise typer.Exit(code=1)


@rules_app.command("list")
@user_errors
def list_rules(
    jurisdiction: str = typer.Option(None, "--jurisdiction", "-j",
                                     help="Only rules that apply in this country (e.g. DE: "
                                     "DE, EU and * rules)."),
    rules: list[Path] = typer.Option(None, "--rules", help=RULES_HELP),
    no_packaged: bool = typer.Option(False, "--no-packaged", help=NO_PACKAGED_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the rules as JSON."),
) -> None:
    """Table of rules with effect and citation."""
    from rich.table import Table

    ruleset = _load(rules, packaged=not no_packaged)
    rows = []
    for r in ruleset.rules:
        if jurisdiction and r.countries is not None and jurisdiction.upper() not in r.countries:
            continue
        effect = r.effect
        if r.cap is not None:
            effect = f"cap {r.cap.name} = {r.cap.value} {r.cap.unit}".strip()
        rows.append({"id": r.id, "jurisdiction": r.jurisdiction, "scope": r.scope,
                     "applies_to": [a.channel for a in r.applies_to], "effect": effect,
                     "citation": r.citation, "title": r.title, "source": str(r.source),
                     "kind": r.kind, "approved_by": None if r.approved_by is None else {
                         "name": r.approved_by.name, "role": r.approved_by.role,
                         "date": r.approved_by.date.isoformat(),
                         "note": r.approved_by.note}})
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"legal rules ({ruleset.hash[:12]})", show_lines=False)
    for col in ("id", "jur.", "scope", "actions", "effect", "kind", "citation"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(row["id"], row["jurisdiction"], row["scope"], ", ".join(row["applies_to"]),
                      row["effect"], row["kind"].replace("_", " "), row["citation"])
    console.print(table)
    console.print(f"{len(rows)} rule(s)")


# keys of a facts file that describe the case rather than being facts
CASE_KEYS = ("as_of", "action", "invoice_id", "due_date", "invoice_date", "action_time",
             "first_reminder_date", "consumer_notice_on_invoice", "due_date_agreed_by_calendar")


def _case_error(lang: str, msg_id: str, **params: Any) -> InputError:
    """A mistake in a hand-written case, in the language the user asked for (``--lang``)."""
    from legal_rules.messages import Message

    return InputError(Message(msg_id, **params).render(lang))


def _read_facts_file(path: Path, lang: str = "en") -> tuple[dict[str, Any], dict[str, Any]]:
    """``(facts, case)`` from a JSON file: the facts, and the case keys (:data:`CASE_KEYS`)."""
    from legal_rules.facts import FACTS
    from legal_rules.known import suggestion
    from legal_rules.messages import render

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _case_error(lang, "case.cannot_read", path=str(path),
                          reason=exc.strerror) from None
    except json.JSONDecodeError as exc:
        raise _case_error(lang, "case.invalid_json", path=str(path), line=exc.lineno,
                          reason=exc.msg) from None
    if not isinstance(data, dict):
        raise _case_error(lang, "case.not_object", path=str(path), found=type(data).__name__)
    facts = dict(data["facts"]) if isinstance(data.get("facts"), dict) else dict(data)
    case = {k: facts.pop(k) for k in CASE_KEYS if k in facts}
    case.update({k: data[k] for k in CASE_KEYS if k in data and k not in case})
    unknown = sorted(k for k in facts if k not in FACTS)
    if unknown:
        hints = "; ".join(f"{k!r}{render(suggestion(k, [*FACTS, *CASE_KEYS]), lang)[1:]}"
                          for k in unknown)
        raise _case_error(lang, "case.unknown_facts", path=str(path), names=", ".join(unknown),
                          hints=hints, case_keys=", ".join(CASE_KEYS))
    return facts, case


def _case_date(path: Path, case: dict[str, Any], key: str, lang: str = "en") -> date | None:
    from legal_rules.decision import as_date

    if case.get(key) is None:
        return None
    try:
        return as_date(case[key])
    except InputError:
        raise _case_error(lang, "case.bad_date", path=str(path), key=key,
                          value=case[key]) from None


def _prepare_facts(path: Path, facts: dict[str, Any], case: dict[str, Any], day: date,
                   neutral: bool, lang: str = "en"
                   ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Facts for ``rules explain --facts``: date facts derived, neutral values filled.

    Returns ``(facts, derived, neutral_filled)``. A given fact that contradicts the date is
    refused (exit 2) with every contradiction listed.
    """
    from legal_rules.facts import history_contradictions
    from legal_rules.from_tables import date_facts
    from legal_rules.messages import OR, Message
    from legal_rules.testing import neutral_facts

    due = _case_date(path, case, "due_date", lang)
    invoice_date = _case_date(path, case, "invoice_date", lang)
    if invoice_date is not None and due is not None and due < invoice_date:
        raise _case_error(lang, "case.due_before_invoice", path=str(path), due=str(due),
                          invoice_date=str(invoice_date))
    when = None
    if case.get("action_time") is not None:
        from datetime import datetime

        try:
            when = datetime.fromisoformat(str(case["action_time"]))
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            raise _case_error(lang, "case.action_time", path=str(path),
                              value=case["action_time"])
    notice, agreed = (case.get(k) for k in ("consumer_notice_on_invoice",
                                            "due_date_agreed_by_calendar"))
    for key, flag in (("consumer_notice_on_invoice", notice),
                      ("due_date_agreed_by_calendar", agreed)):
        if flag is not None and not isinstance(flag, bool):
            raise _case_error(lang, "case.expected_bool", path=str(path), key=key, value=flag)
    computed, contradictions = date_facts(
        facts, day, due, when, invoice_date,
        _case_date(path, case, "first_reminder_date", lang), notice, agreed)
    if contradictions:
        raise _case_error(lang, "case.contradicts_date", path=str(path), day=str(day),
                          problems=contradictions)
    derived = {k: v for k, v in computed.items() if k not in facts}
    out = {**facts, **derived}
    filled: list[str] = []
    if neutral:
        missing = [k for k in ("jurisdiction", "customer_type") if out.get(k) is None]
        if missing:
            raise _case_error(lang, "case.neutral_needs", path=str(path),
                              missing=OR[lang].join(missing))
        for name, value in neutral_facts(out["jurisdiction"], out["customer_type"]).items():
            if name not in out:
                out[name] = value
                filled.append(name)
    history = history_contradictions(out)
    if history:
        raise _case_error(lang, "case.history", path=str(path), problems=history,
                          neutral=Message("case.with_neutral") if filled else "")
    return out, derived, filled


def _facts_from_store(db: Path, invoice_id: str, as_of: date) -> dict[str, Any]:
    from engine.store import WITH_EVENTS, Store
    from legal_rules.from_tables import facts_for_invoices

    if not db.exists():
        raise InputError(f"--db {db}: no such store; run `dunning ingest` first or pass --db")
    # only this invoice, its customer and its history: its facts depend on nothing else
    tables = Store(db).tables(as_of=as_of, names=WITH_EVENTS, invoice_ids=[invoice_id])
    facts = facts_for_invoices(tables, as_of)
    ids = list(facts["invoice_id"])
    if invoice_id not in ids:
        raise InputError(f"--invoice {invoice_id!r}: no such invoice in {db} on {as_of} "
                         "(unknown id, or issued after that date)")
    i = ids.index(invoice_id)
    return {k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in facts.items()}


@rules_app.command("explain")
@user_errors
def explain(
    facts_file: Path = typer.Option(None, "--facts", help="JSON object of facts; may also "
                                    "carry as_of, action, due_date and invoice_date."),
    invoice: str = typer.Option(None, "--invoice", help="Invoice id: facts from the store, "
                                "decided with the store's rules in force (packaged + approved "
                                "team files) unless --rules/--no-packaged."),
    action: str = typer.Option(None, "--action", "-a", help="email, letter, phone, "
                               "final_notice or agency (default: the file's action, else all)."),
    as_of: str = typer.Option(None, "--date", help="Decision date YYYY-MM-DD (default: the "
                              "file's as_of, else today)."),
    neutral: bool = typer.Option(False, "--neutral", help="Fill facts the file does not give "
                                 "with the documented neutral values (docs/legal-rules.md) "
                                 "instead of blocking; jurisdiction and customer_type must "
                                 "be given."),
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store (with --invoice)."),
    rules: list[Path] = typer.Option(None, "--rules", help=RULES_HELP),
    no_packaged: bool = typer.Option(False, "--no-packaged", help=NO_PACKAGED_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the decision(s) as JSON."),
    lang: str = typer.Option("en", "--lang", help="Language of the explanation: en or de "
                             "(rule titles and rationales stay in their file's language)."),
    technical: bool = typer.Option(False, "--technical", help="The rule engineer's view "
                                   "(rule ids, effects, conditions as written) instead of "
                                   "prose."),
    show_all: bool = typer.Option(False, "--all", help="Also list rules of other "
                                  "jurisdictions/scopes (with --technical)."),
) -> None:
    """The decision in plain words: each rule that applied (title, citation, rationale,
    version), the limits on what may be claimed, the facts used (personal data marked).

    With --facts, weekend, bank holiday, days overdue and limitation are computed from the
    date (and due_date) when the file does not give them, the local hour at the debtor from
    action_time (with its UTC offset) and the jurisdiction/region; a given value that
    contradicts them is refused.
    """
    from engine.contract import Action
    from legal_rules.decision import as_action, as_date
    from legal_rules.durable_eval import DurableEvaluator
    from legal_rules.prose import LANGS, explain_text

    if lang not in LANGS:
        raise InputError(f"--lang {lang!r}: expected one of {', '.join(LANGS)}")
    if (facts_file is None) == (invoice is None):
        raise _case_error(lang, "case.one_source")
    if neutral and facts_file is None:
        raise _case_error(lang, "case.neutral_without_file")
    day = as_date(as_of) if as_of else date.today()
    derived: dict[str, Any] = {}
    filled: list[str] = []
    if facts_file is not None:
        facts, case = _read_facts_file(facts_file, lang)
        if as_of is None and case.get("as_of") is not None:
            day = _case_date(facts_file, case, "as_of", lang) or day
        file_action = case.get("action")
        if file_action is not None:
            file_action = as_action(file_action)
            if action is not None and as_action(action) is not file_action:
                raise _case_error(lang, "case.action_differs", given=action,
                                  action=file_action.channel, path=str(facts_file))
            action = action or file_action.channel
        facts, derived, filled = _prepare_facts(facts_file, facts, case, day, neutral, lang)
    else:
        facts = _facts_from_store(db, invoice, day)
    if invoice is not None and not rules and not no_packaged:
        from dunning.ops.rule_approval import rules_in_force

        ruleset = rules_in_force(db)  # the rules the store's decisions are made with
    else:
        ruleset = _load(rules, packaged=not no_packaged)
    decisions = DurableEvaluator(ruleset).decide_all(facts, day, explain=True)
    actions = [as_action(action)] if action else [a for a in Action if a is not Action.WAIT]
    if as_json:
        out = [{**decisions[a].to_dict(), "facts_derived_from_date": derived,
                "facts_neutral": filled} for a in actions]
        typer.echo(json.dumps(out if len(out) > 1 else out[0], indent=2, default=str))
        return
    if not technical:
        texts = [explain_text(decisions[a], ruleset, facts, lang, derived, filled)
                 for a in actions]
        typer.echo("\n\n".join(texts))
        return
    console.print(f"decision date {day}; rules {ruleset.hash[:12]}; engine durable_rules")
    if derived:
        console.print("facts from the date: " + ", ".join(
            f"{k}={json.dumps(v)}" for k, v in derived.items()), highlight=False)
    if filled:
        console.print(f"neutral values (--neutral): {', '.join(filled)}", highlight=False)
    for a in actions:
        _print_decision(decisions[a], show_all)


def _print_decision(d: Any, show_all: bool = False) -> None:
    colour = {"allowed": "green", "needs_review": "yellow"}.get(d.status, "bold red")
    console.print(f"\n[bold]{d.action.channel}[/]: [{colour}]{d.status.upper()}[/]",
                  highlight=False)
    for h in d.fired:
        console.print(f"  fired   {h.rule_id} [{h.effect}] {h.title}", markup=False,
                      highlight=False, soft_wrap=True)
        console.print(f"          {h.citation}; {h.reason}", markup=False, highlight=False,
                      soft_wrap=True)
    for p in d.input_problems:
        console.print(f"  BLOCKED unknown input: {p}; fail closed", markup=False,
                      highlight=False, soft_wrap=True)
    if d.input_problems and d.unresolved:  # the cause is the input: one line for the rules
        console.print(f"  ({len(d.unresolved)} rules cannot be evaluated on that input)",
                      style="dim")
    for h in () if d.input_problems else d.unresolved:
        console.print(f"  BLOCKED {h.rule_id}: cannot evaluate ({h.reason}); fail closed",
                      markup=False, highlight=False, soft_wrap=True)
    for c in d.caps:
        if c.blocked:
            console.print(f"  BLOCKED {c.name} [{c.rule_id}]: {c.note}", markup=False,
                          highlight=False, soft_wrap=True)
            continue
        value = "unknown" if c.value is None else f"{c.value:g}"
        note = f" ({c.note})" if c.note else ""
        console.print(f"  cap     {c.name} = {value} {c.unit}{note}  [{c.rule_id}]",
                      markup=False, highlight=False, soft_wrap=True)
    other = 0
    for rule_id, why in d.not_fired:
        if not show_all and ("jurisdiction" in why or why.startswith("scope")):
            other += 1
            continue
        console.print(f"  not     {rule_id}: {why}", markup=False, highlight=False,
                      style="dim", soft_wrap=True)
    if other:
        console.print(f"  ({other} rules of other jurisdictions or scopes not applicable; "
                      "--all lists them)", style="dim")


# --------------------------------------------------------------------------- four eyes
@rules_app.command("propose")
@user_errors
def propose_cmd(
    file: Path = typer.Argument(..., help="The changed or new rule file (a file named like a "
                                "packaged one replaces it once approved)."),
    by: str = typer.Option(..., "--by", help="Who proposes it (recorded in the audit log)."),
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store the rules are for."),
) -> None:
    """Validate a rule file and put it up for approval; nothing changes until a second
    person with the legal role approves it (`dunning rules approve`)."""
    from dunning.commands.common import open_store
    from dunning.ops.rule_approval import propose
    from legal_rules.loader import RuleFileError

    try:
        prop, seq = propose(open_store(db), file, by)
    except RuleFileError as exc:
        for problem in exc.problems:
            err_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        err_console.print(f"[bold red]{len(exc.problems)} problem(s)[/]; not proposed")
        raise typer.Exit(code=1) from None
    console.print(f"proposed {prop.name} (sha256 {prop.sha256[:12]}) by {prop.proposed_by}; "
                  f"rule set would be {prop.ruleset_hash[:12]} (audit record {seq}). A second "
                  f"person with the legal role runs: dunning rules approve {prop.sha256[:12]} "
                  "--by NAME --reason TEXT", highlight=False)


@rules_app.command("pending")
@user_errors
def pending_cmd(db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store.")) -> None:
    """Rule files proposed and not yet approved."""
    from dunning.ops.rule_approval import pending

    props = pending(db)
    for p in props:
        console.print(f"{p.sha256[:12]}  {p.name}  proposed by {p.proposed_by} at "
                      f"{p.proposed_at}", highlight=False)
    console.print(f"{len(props)} pending proposal(s)")


@rules_app.command("approve")
@user_errors
def approve_cmd(
    sha: str = typer.Argument(..., help="The proposal's sha256 (its first 12 characters do)."),
    by: str = typer.Option(..., "--by", help="The approver's name: the name of the legal-role "
                           "API token in $DUNNING_TOKEN; not the proposer."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the audit log)."),
    tokens: Path = typer.Option(None, "--tokens", help="The API token file to check "
                                "$DUNNING_TOKEN against (default: $DUNNING_API_TOKENS)."),
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store the rules are for."),
) -> None:
    """Approve a proposed rule file: from now on `recommend`, letters and the API use it."""
    import os

    from dunning.api import load_tokens
    from dunning.commands.common import open_store
    from dunning.ops.gate import authenticate
    from dunning.ops.rule_approval import LEGAL_ROLE, approve

    who = authenticate(load_tokens(tokens), os.environ.get("DUNNING_TOKEN"), by.strip(),
                       LEGAL_ROLE, "rules approve", "rule changes")
    prop, ruleset_hash, seq = approve(open_store(db), sha, who, reason)
    console.print(f"approved {prop.name} (sha256 {prop.sha256[:12]}, proposed by "
                  f"{prop.proposed_by}) by {who.name}; rules in force {ruleset_hash[:12]} "
                  f"(audit record {seq})", highlight=False)


rates_app = typer.Typer(
    name="rates",
    help="Reference rates for interest caps (rates.yaml): import published figures.",
    no_args_is_help=True,
)


@rates_app.command("import")
@user_errors
def rates_import(
    file: Path = typer.Argument(..., help="CSV download of ONE series: ECB Data Portal or "
                                "Data API (SDMX-CSV), or Bundesbank time-series CSV."),
    name: str = typer.Option(..., "--name", help="Rate name used by caps, e.g. base_rate."),
    jurisdiction: str = typer.Option(..., "--jurisdiction", "-j", help="DE, EU, GB, ..."),
    citation: str = typer.Option(None, "--citation", help="Where the figures come from "
                                 "(default: the series' citation in the rates file + the "
                                 "file name)."),
    into: Path = typer.Option(None, "--into", help="Rates file to append to (default: the "
                              "packaged rates.yaml; a team's copy replaces it by name)."),
    mode: str = typer.Option("half-year", "--mode", help="half-year: the rate in force on "
                             "1 Jan / 1 Jul applies to the half-year (BGB § 247, Directive "
                             "2011/7/EU); change: one period per change."),
    since: str = typer.Option(None, "--since", help="Only periods ending on or after this "
                              "date (YYYY-MM-DD)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the periods, write nothing."),
) -> None:
    """Append the periods a published rate series proves to a rates file (checked, atomic)."""
    from legal_rules.decision import as_date
    from legal_rules.loader import packaged_rules_dir, parse_file
    from legal_rules.model import RateSeries
    from legal_rules.rate_import import import_rates, rate_yaml

    target = into or packaged_rules_dir() / "rates.yaml"
    if not target.is_file():
        raise InputError(f"--into {target}: no such rates file")
    declared = [r for r in parse_file(target)[1] if isinstance(r, RateSeries)
                and (r.name, r.jurisdiction) == (name, jurisdiction)]
    if citation is None:
        if not declared:
            raise InputError(f"{target}: {name}({jurisdiction}) is not declared under "
                             "rate_series; declare it (citation, publisher) or pass --citation")
        citation = f"{declared[0].citation}; imported from {file.name}"
    added, skipped = import_rates(file, target, name, jurisdiction, citation, mode,
                                  as_date(since) if since else None, write=not dry_run)
    if dry_run:
        typer.echo(rate_yaml(added, name, jurisdiction, citation), nl=False)
    verb = "would add" if dry_run else "added"
    console.print(f"{verb} {len(added)} period(s) of {name}({jurisdiction}) to {target}; "
                  f"{skipped} already there", highlight=False)
    if added and not dry_run:
        console.print("run `dunning rules check` and review the diff before use",
                      highlight=False)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dunning app."""
    app.add_typer(rules_app, name="rules")
    app.add_typer(rates_app, name="rates")
