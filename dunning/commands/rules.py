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

RULES_HELP = "Extra rule file or directory, added to the packaged rules (repeatable)."
NO_PACKAGED_HELP = "Use only the --rules paths, not the packaged rules."
WITH_PACKAGED_HELP = "Load the packaged rules too (e.g. to check one new file against them)."


def _load(paths: list[Path] | None, packaged: bool = False) -> Any:
    """Rules from ``paths``; with ``packaged`` the packaged rules come first."""
    from legal_rules.loader import PACKAGED, load_rules, packaged_rules_dir

    chosen = [str(p) for p in paths or []]
    if packaged or not chosen:
        chosen.insert(0, PACKAGED)
    # the packaged directory named twice (e.g. --rules packaged) is loaded once
    seen, unique = set(), []
    for p in chosen:
        key = str(packaged_rules_dir().resolve()) if p == PACKAGED else str(Path(p).resolve())
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return load_rules(unique)


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
    n_tests = sum(len(r.tests) for r in ruleset.rules)
    console.print(f"[green]ok[/]: {len(ruleset.files)} file(s), {len(ruleset.rules)} rules, "
                  f"{len(ruleset.rates)} rates, {n_tests} inline tests; hash "
                  f"{ruleset.hash[:12]}")


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
                     "citation": r.citation, "title": r.title, "source": str(r.source)})
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"legal rules ({ruleset.hash[:12]})", show_lines=False)
    for col in ("id", "jur.", "scope", "actions", "effect", "citation"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(row["id"], row["jurisdiction"], row["scope"], ", ".join(row["applies_to"]),
                      row["effect"], row["citation"])
    console.print(table)
    console.print(f"{len(rows)} rule(s)")


def _read_facts_file(path: Path) -> dict[str, Any]:
    from legal_rules.facts import FACTS

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read facts file: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}; expected an object "
                         "of facts, e.g. {\"days_overdue\": 20, ...}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}:1: expected a JSON object of facts, found "
                         f"{type(data).__name__}")
    facts = data.get("facts", data) if isinstance(data.get("facts"), dict) else data
    unknown = sorted(k for k in facts if k not in FACTS and k not in ("as_of", "invoice_id"))
    if unknown:
        raise InputError(f"{path}: unknown fact(s) {', '.join(unknown)}; expected names from "
                         f"legal_rules/facts.py: {', '.join(FACTS)}")
    return facts


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
    facts_file: Path = typer.Option(None, "--facts", help="JSON object of facts."),
    invoice: str = typer.Option(None, "--invoice", help="Invoice id: facts from the store."),
    action: str = typer.Option(None, "--action", "-a", help="email, letter, phone, "
                               "final_notice or agency (default: all)."),
    as_of: str = typer.Option(None, "--date", help="Decision date YYYY-MM-DD (default today)."),
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store (with --invoice)."),
    rules: list[Path] = typer.Option(None, "--rules", help=RULES_HELP),
    no_packaged: bool = typer.Option(False, "--no-packaged", help=NO_PACKAGED_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the decision(s) as JSON."),
    show_all: bool = typer.Option(False, "--all", help="Also list rules of other "
                                  "jurisdictions/scopes."),
) -> None:
    """The decision, which rules fired and why, which did not and why not."""
    from engine.contract import Action
    from legal_rules.decision import as_action, as_date
    from legal_rules.durable_eval import DurableEvaluator

    if (facts_file is None) == (invoice is None):
        raise InputError("explain: give exactly one of --facts FILE.json or --invoice ID")
    day = as_date(as_of) if as_of else date.today()
    if facts_file is not None:
        facts = _read_facts_file(facts_file)
        if as_of is None and "as_of" in facts:
            day = as_date(facts["as_of"])
    else:
        facts = _facts_from_store(db, invoice, day)
    ruleset = _load(rules, packaged=not no_packaged)
    decisions = DurableEvaluator(ruleset).decide_all(facts, day, explain=True)
    actions = [as_action(action)] if action else [a for a in Action if a is not Action.WAIT]
    if as_json:
        out = [decisions[a].to_dict() for a in actions]
        typer.echo(json.dumps(out if len(out) > 1 else out[0], indent=2, default=str))
        return
    console.print(f"decision date {day}; rules {ruleset.hash[:12]}; engine durable_rules")
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
    for h in d.unresolved:
        console.print(f"  BLOCKED {h.rule_id}: cannot evaluate ({h.reason}); fail closed",
                      markup=False, highlight=False, soft_wrap=True)
    for c in d.caps:
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


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dunning app."""
    app.add_typer(rules_app, name="rules")
