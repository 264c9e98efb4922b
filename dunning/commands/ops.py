"""CLI commands of the ops area: recommend, review, record-action, audit, forget, serve.

Heavy imports (pandas, legal_rules, policies, uvicorn) happen inside the command bodies so
that ``dunning --help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from dunning.commands.common import console, decision_date, err_console, open_store, user_errors
from engine.config import DEFAULT_DB
from engine.errors import InputError

review_app = typer.Typer(help="Human review queue for actions with significant effect "
                         "(GDPR art. 22).", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
creditor_app = typer.Typer(help="The creditor profile letters are sent with.",
                           no_args_is_help=True)

DB_OPT = typer.Option(DEFAULT_DB, "--db", help="The DuckDB store file.")
OUT_SUFFIXES = (".csv", ".json", ".parquet")


def _creditor(creditor: Path | None, db: Path):  # noqa: ANN202
    """The creditor profile, loaded and checked for letters before any work is done."""
    from dunning.ops.letters import Creditor

    path = creditor or Path(db).parent / "creditor.yaml"
    profile = Creditor.from_yaml(path)
    profile.check_for_letters()
    return profile


@user_errors
def recommend(
    db: Path = DB_OPT,
    as_of: str = typer.Option(None, "--as-of", help="Decision date YYYY-MM-DD (default: today "
                              "UTC). Facts dated before it are used."),
    policy: str = typer.Option(None, "--policy", help="RL policy directory, planner "
                               "directory (dunning-data/planner: plans the open invoices "
                               "each run), or `fixed` (default: the fixed 14/30/45 "
                               "schedule)."),
    model: Path = typer.Option(None, "--model", help="Payment model directory (probabilities "
                               "and top factors); without it no probabilities are given."),
    out: Path = typer.Option(None, "--out", help="Write the recommendations to FILE (.csv, "
                             ".json or .parquet)."),
    letters: Path = typer.Option(None, "--letters", help="Render the letters of today's "
                                 "email/letter/final-notice actions into DIR."),
    letter_format: str = typer.Option("txt,html", "--letter-format",
                                      help="Comma-separated: txt, html, pdf."),
    creditor: Path = typer.Option(None, "--creditor", help="Creditor YAML for letters "
                                  "(default: creditor.yaml next to the store)."),
    show: int = typer.Option(15, "--show", help="Rows of actions to print."),
) -> None:
    """Today's action per open invoice, with reasons, vetoes, caps; escalations to review."""
    from rich.progress import Progress

    from dunning.ops.recommend import Recommender, load_payment_model, load_policy

    day = decision_date(as_of, "--as-of")
    if out is not None and out.suffix.lower() not in OUT_SUFFIXES:
        raise InputError(f"--out {out}: unknown suffix {out.suffix!r}; expected .csv, .json "
                         "or .parquet")
    formats = [f.strip() for f in letter_format.split(",") if f.strip()]
    bad = sorted(set(formats) - {"txt", "html", "pdf"})
    if bad:
        raise InputError(f"--letter-format: {', '.join(bad)}; expected txt, html and/or pdf")
    store = open_store(db)
    credit = _creditor(creditor, db) if letters is not None else None  # fail before the run
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("loading policy, model and rules", total=7)
        rec = Recommender(store, policy=load_policy(policy), model=load_payment_model(model))
        bar.update(task, advance=1, description="recommending")
        result = rec.run(day, progress=lambda name, _t: bar.update(
            task, advance=1, description=f"recommending: {name} done"))
    frame = result.frame
    if out is not None:
        _write_frame(frame, out)
    if result.stale:
        err_console.print("[yellow]note:[/] stored recommendations for this date were made "
                          "with another model, policy or rule set; they are kept (the first "
                          "run of a day is the record).")
    _print_run(result, show)
    if letters is not None:
        from dunning.ops.erasure import register_letter_files
        from dunning.ops.letters import letters_for, write_letters

        refused: list[str] = []
        made = letters_for(store, day, credit, ruleset=rec.ruleset, refused=refused)
        paths = write_letters(made, letters, formats)
        register_letter_files(store, paths)  # so that `dunning forget` reaches them
        console.print(f"{len(made)} letters, {len(paths)} files written to {letters}")
        for reason in refused:  # fail closed: named, not written, never a wrong figure
            console.print(f"[red]letter not rendered: {reason}[/red]", highlight=False)
        if refused:
            console.print(f"[red]{len(refused)} letters not rendered (no rate for a period "
                          "of their interest); see docs/operations.md, Letters[/red]")
        waiting = [r for r in frame.itertuples() if r.status == "needs_review"
                   and isinstance(r.reason, dict) and r.reason.get("blocked_claims")]
        for r in waiting:  # no figure printed: a reviewer decides (docs/operations.md)
            console.print(f"[yellow]letter in review {r.review_id}: "
                          f"{r.reason['blocked_claims'][0]}[/yellow]", highlight=False)
        if waiting:
            console.print(f"[yellow]{len(waiting)} letters wait in the review queue (rule "
                          "rates.missing_period): `dunning review list`[/yellow]")


def _write_frame(frame, out: Path) -> None:  # noqa: ANN001
    import json

    from dunning.ops.recommend import JSON_COLUMNS, recommendation_dict

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    suffix = out.suffix.lower()
    if suffix == ".json":
        rows = [recommendation_dict(r) for _, r in frame.iterrows()]
        tmp.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    elif suffix in (".csv", ".parquet"):
        flat = frame.copy()
        for c in JSON_COLUMNS:
            flat[c] = [json.dumps(v, ensure_ascii=False, sort_keys=True) for v in flat[c]]
        if suffix == ".csv":
            flat.to_csv(tmp, index=False)
        else:
            flat.to_parquet(tmp, index=False)
    else:
        raise InputError(f"--out {out}: unknown suffix {out.suffix!r}; expected .csv, .json "
                         "or .parquet")
    tmp.replace(out)


def _print_run(result, show: int) -> None:  # noqa: ANN001
    from rich.table import Table

    counts = result.counts()
    console.print(
        f"[bold]{result.as_of}[/]: {result.n_open} open invoices, {result.n_new} new "
        f"recommendations ({'nothing new recorded' if result.n_new == 0 else 'recorded'}) "
        f"in {result.seconds:.1f} s; " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    console.print(f"model {result.model_hash[:12]}  policy {result.policy_hash[:12]}  "
                  f"rules {result.rules_hash[:12]}", style="dim")
    acted = result.frame[result.frame["action"].ne("wait") | result.frame["status"].eq("blocked")]
    if show and len(acted):
        table = Table(title="actions today")
        for col in ("invoice", "action", "status", "P(on time)", "why / vetoed alternatives"):
            table.add_column(col, overflow="fold")
        for _, r in acted.head(show).iterrows():
            p = "" if r["p_on_time"] != r["p_on_time"] or r["p_on_time"] is None \
                else f"{r['p_on_time']:.2f}"
            why = "; ".join(f"{v['rule_id']} ({', '.join(v['actions'])})" for v in r["vetoes"])
            if r["reason"].get("implausible"):
                why = "implausible: " + "; ".join(r["reason"]["implausible"]) + "; " + why
            if r["review_id"]:
                why = f"review {r['review_id']}; " + why
            table.add_row(r["invoice_id"], r["action"], r["status"], p, why[:120])
        console.print(table)
    if result.review_ids:
        console.print(f"{len(result.review_ids)} new item(s) in the review queue: "
                      "`dunning review list`")


# ------------------------------------------------------------------------------ review
@review_app.command("list")
@user_errors
def review_list(
    db: Path = DB_OPT,
    status: str = typer.Option("pending", "--status",
                               help="pending, approved, rejected or all."),
) -> None:
    """Items waiting for (or past) a human decision."""
    from rich.table import Table

    items = _queue(db, lambda q: q.list(None if status == "all" else status))
    table = Table(title=f"review queue ({status})")
    table.add_column("id", no_wrap=True, min_width=12)  # must stay copyable
    for col in ("date", "invoice", "customer", "action", "rules", "status", "reviewer"):
        table.add_column(col, overflow="fold")
    for it in items:
        table.add_row(it["review_id"], it["as_of"], it["invoice_id"], str(it["customer_id"]),
                      it["action"], ", ".join(it["rule_ids"]), it["status"],
                      it["reviewer"] or "")
    console.print(table if items else f"no {status} review items")


@review_app.command("show")
@user_errors
def review_show(review_id: str, db: Path = DB_OPT) -> None:
    """One item with its explanation (probabilities, vetoes, caps) and decisions."""
    import json

    item = _queue(db, lambda q: q.get(review_id))
    console.print_json(json.dumps(item, default=str))


@review_app.command("approve")
@user_errors
def review_approve(
    review_id: str,
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the audit log)."),
    reviewer: str = typer.Option(None, "--reviewer", help="Who decides (default: $USER)."),
    db: Path = DB_OPT,
    letters: Path = typer.Option(None, "--letters", help="Render the pre-agency / final "
                                 "notice letter of the approved action into DIR."),
    creditor: Path = typer.Option(None, "--creditor", help="Creditor YAML for the letter."),
) -> None:
    """Approve an escalation; it is executed outside dunning, then `record-action`."""
    item = _decide(db, review_id, True, reason, reviewer)
    if letters is not None:
        from dunning.ops.letters import letters_for, write_letters
        from engine.contract import Action

        made = letters_for(open_store(db), dt.date.fromisoformat(item["as_of"]),
                           _creditor(creditor, db),
                           actions={item["invoice_id"]: Action.from_channel(item["action"])})
        from dunning.ops.erasure import register_letter_files

        written = write_letters(made, letters, ("txt", "html"))
        register_letter_files(open_store(db), written)  # so that `dunning forget` reaches them
        for p in written:
            console.print(f"letter: {p}")


@review_app.command("reject")
@user_errors
def review_reject(
    review_id: str,
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the audit log)."),
    reviewer: str = typer.Option(None, "--reviewer", help="Who decides (default: $USER)."),
    db: Path = DB_OPT,
) -> None:
    """Reject an escalation; the invoice stays in normal dunning."""
    _decide(db, review_id, False, reason, reviewer)


def _decide(db: Path, review_id: str, approve: bool, reason: str, reviewer: str | None) -> dict:
    import getpass

    who = reviewer or getpass.getuser()
    item = _queue(db, lambda q: q.decide(review_id, approve, who, reason))
    console.print(f"{review_id}: {item['status']} by {who} ({item['action']} for invoice "
                  f"{item['invoice_id']}); recorded in the audit log")
    return item


def _queue(db: Path, fn):  # noqa: ANN001, ANN202
    from dunning.ops.audit import AuditLog
    from dunning.ops.review import ReviewQueue

    store = open_store(db)
    with store.connect() as con:
        return fn(ReviewQueue(con, AuditLog(con, anchor=store.path.parent / "audit.anchor")))


# ------------------------------------------------------------------------------ actions
@user_errors
def record_action_cmd(
    invoice: str = typer.Option(..., "--invoice", help="Invoice id."),
    channel: str = typer.Option(..., "--channel",
                                help="email, letter, phone, final_notice or agency."),
    date: str = typer.Option(None, "--date", help="Date it was sent (default: today UTC)."),
    by: str = typer.Option(None, "--by", help="Who sent it (default: user:$USER)."),
    complaint: bool = typer.Option(False, "--complaint", help="The customer complained."),
    override_veto: bool = typer.Option(
        False, "--override-veto", help="Record despite a legal veto (reviewer role only: "
        "$DUNNING_TOKEN must be a reviewer's API token; needs --reason and --reviewer)."),
    reason: str = typer.Option(None, "--reason", help="Why the veto is overridden "
                               "(recorded in the audit log)."),
    reviewer: str = typer.Option(None, "--reviewer", help="The overriding reviewer's name "
                                 "(must be the name of $DUNNING_TOKEN)."),
    tokens: Path = typer.Option(None, "--tokens", help="The API token file to check "
                                "$DUNNING_TOKEN against (default: $DUNNING_API_TOKENS)."),
    db: Path = DB_OPT,
) -> None:
    """Mark an action as actually taken, after the same legal check as a recommendation.

    A vetoed action (rule id and citation printed) or one on an invoice that is not open is
    refused (exit 2); an action that needs human review needs an approved review item.
    """
    import getpass

    from dunning.ops.actions import record_action

    override = None
    if override_veto:
        override = _override(reason, reviewer, tokens)
    elif reason is not None or reviewer is not None:
        raise InputError("--reason/--reviewer are for --override-veto; give it too, or "
                         "leave them out")
    result = record_action(open_store(db), invoice, channel, decision_date(date, "--date"),
                           decided_by=by or f"user:{getpass.getuser()}", complaint=complaint,
                           override=override)
    if result.loaded:
        console.print(f"recorded: {channel} for {invoice} on {result.action_date} "
                      f"(audit record {result.audit_seq})")
    else:
        console.print(f"already recorded: {channel} for {invoice} on {result.action_date}")


def _override(reason: str | None, reviewer: str | None, tokens: Path | None):  # noqa: ANN202
    """A :class:`dunning.ops.gate.VetoOverride` for an authenticated reviewer."""
    import os

    from dunning.api import load_tokens
    from dunning.ops.gate import VetoOverride, authenticate_reviewer

    if not reason or not reason.strip():
        raise InputError("--override-veto needs --reason TEXT (why; recorded in the audit log)")
    if not reviewer or not reviewer.strip():
        raise InputError("--override-veto needs --reviewer NAME (the reviewer's token name)")
    who = authenticate_reviewer(load_tokens(tokens), os.environ.get("DUNNING_TOKEN"),
                                reviewer.strip())
    return VetoOverride(who.name, who.role, reason)


# ------------------------------------------------------------------------------ audit
@audit_app.command("verify")
@user_errors
def audit_verify(
    db: Path = DB_OPT,
    anchor: Path = typer.Option(None, "--anchor", help="An anchor exported earlier with "
                                "`dunning audit anchor`: also check that the chain still "
                                "extends it (not truncated or rewritten)."),
) -> None:
    """Recompute the keyed chain and check the review queue and recommendation tables against
    it; exit 1 if anything was edited, deleted, inserted or reordered."""
    from dunning.ops.audit import default_anchor
    from dunning.ops.integrity import read_anchor_file, verify_store

    exported = read_anchor_file(anchor) if anchor is not None else None
    store = open_store(db)
    with store.connect() as con:
        report = verify_store(con, anchor=default_anchor(store.path), exported=exported,
                              exported_where=f"--anchor {anchor}")
    if report.ok:
        legacy = (f" ({report.legacy_records} migrated unkeyed records pinned)"
                  if report.legacy_records else "")
        console.print(f"[green]ok[/]: {report.n_records} records{legacy}, chain head "
                      f"{report.head_hash[:16]}; review queue and recommendations match"
                      f"{'; extends ' + str(anchor) if anchor else ''}")
        return
    for p in report.problems[:50]:
        err_console.print(f"[red]tampered:[/] {p}", highlight=False, markup=False)
    err_console.print(f"{len(report.problems)} problem(s) in {report.n_records} records")
    raise typer.Exit(code=1)


@audit_app.command("anchor")
@user_errors
def audit_anchor(
    db: Path = DB_OPT,
    out: Path = typer.Option(None, "--out", help="Write the anchor to FILE (keep it away "
                             "from the store: another machine, a ticket, an e-mail)."),
) -> None:
    """Export the chain head (seq, hash, count, time; keyed mac) for safekeeping elsewhere."""
    import json

    anchor = _audit(db, lambda log: log.export_anchor())
    text = json.dumps(anchor, indent=1) + "\n"
    if out is None:
        console.print(text, highlight=False, markup=False, end="")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    console.print(f"anchor of {anchor['count']} records (head {anchor['record_hash'][:16]}) "
                  f"written to {out}; check later with `dunning audit verify --anchor {out}`")


@audit_app.command("init-key")
@user_errors
def audit_init_key(
    out: Path = typer.Option(Path("dunning-data/audit.key"), "--out",
                             help="Key file to create (mode 0600; never overwritten)."),
) -> None:
    """Create a random audit key file; point DUNNING_AUDIT_KEY_FILE at it."""
    from dunning.ops.audit import KEY_FILE_ENV, write_key_file

    path = write_key_file(out)
    console.print(f"audit key written to {path} (mode 600). Use it with\n"
                  f"  export {KEY_FILE_ENV}={path.resolve()}\n"
                  "Keep a copy where the store's writers cannot change it (the key is what "
                  "makes the chain unforgeable); losing it makes the chain unverifiable.",
                  highlight=False, markup=False, soft_wrap=True)


@audit_app.command("migrate")
@user_errors
def audit_migrate(db: Path = DB_OPT) -> None:
    """Pin an audit chain written before the audit key under the key (once, explicitly)."""
    from dunning.ops.integrity import migrate_store

    out = _store_call(db, migrate_store)
    if not out["legacy_records"]:
        console.print("nothing to migrate: the audit chain is already keyed (or empty)")
        return
    console.print(f"migrated: {out['legacy_records']} unkeyed records verified and pinned "
                  f"by keyed record {out['seq']}; {out['review_rows']} review-queue rows "
                  "recorded with their digest")


@audit_app.command("show")
@user_errors
def audit_show(
    invoice: str = typer.Option(None, "--invoice", help="Explain the decisions about an "
                                "invoice (GDPR art. 15)."),
    customer: str = typer.Option(None, "--customer", help="All records about a customer."),
    rules: bool = typer.Option(False, "--rules", help="Rule changes: who proposed and who "
                               "approved which rule file, when and why."),
    as_json: bool = typer.Option(False, "--json", help="Print the raw records as JSON."),
    db: Path = DB_OPT,
) -> None:
    """Explain past decisions: facts, probabilities, action, vetoes, hashes, reviews."""
    import json

    if not invoice and not customer and not rules:
        raise InputError("audit show: give --invoice ID, --customer ID or --rules")
    records = _audit(db, lambda log: log.records(invoice_id=invoice, customer_id=customer,
                                                 kind="rules" if rules else None))
    if as_json:
        console.print_json(json.dumps(records, default=str))
        return
    if not records:
        console.print("no audit records")
    for r in records:
        console.print(explain_record(r), highlight=False, markup=False)


def explain_record(r: dict) -> str:
    """One audit record as a short human-readable paragraph."""
    p = r["payload"]
    head = f"#{r['seq']} {r['as_of'] or ''} {r['kind']} invoice {r['invoice_id'] or '-'}"
    if r["kind"] == "decision":
        probs = "" if p.get("p_on_time") is None else (
            f" P(on time/late/very late) = {p['p_on_time']:.2f}/{p['p_late']:.2f}/"
            f"{p['p_very_late']:.2f};")
        vetoes = "; ".join(f"{v['rule_id']} vetoed {', '.join(v['actions'])} "
                           f"[{v['citation']}]" for v in p.get("vetoes", []))
        caps = "; ".join(f"{c['name']}={c['value']} ({c['rule_id']})" for c in p.get("caps", []))
        factors = ", ".join(f"{f['feature']}={f['value']}"
                            for f in p.get("reason", {}).get("top_factors", []))
        return (f"{head}: {p['action']} ({p['status']}; policy chose {p['policy_action']});"
                f"{probs}{' top factors: ' + factors + ';' if factors else ''}"
                f" vetoes: {vetoes or 'none'}; caps: {caps or 'none'};"
                f" model {p['model_hash'][:12]} policy {p['policy_hash'][:12]}"
                f" rules {p['rules_hash'][:12]}")
    if r["kind"] == "override" or (r["kind"] == "review" and "decision" in p):
        why = (r["personal"] or {}).get("reason", "[erased]" if r["personal_erased"] else "")
        if r["kind"] == "override":
            rules = "; ".join(f"{h['rule_id']} [{h['citation']}]" for h in p["fired_rules"]
                              if h["effect"] != "require_human_review")
            return (f"{head}: veto overridden for {p['channel']} on {p['action_date']} by "
                    f"{p['reviewer']} ({p['role']}): {why}; rules: {rules or 'none'}")
        return f"{head}: {p['decision']} {p['action']} by {p['reviewer']}: {why}"
    if r["kind"] == "rules":
        if p.get("event") == "approved":
            why = (r["personal"] or {}).get("reason", "[erased]" if r["personal_erased"]
                                            else "")
            return (f"{head}: rule file {p['name']} ({p['sha256'][:12]}, proposed by "
                    f"{p['proposed_by']}) approved by {p['approved_by']} ({p['role']}) at "
                    f"{p['approved_at']}: {why}; rules in force {p['ruleset_hash'][:12]}")
        return (f"{head}: rule file {p.get('name')} ({str(p.get('sha256'))[:12]}) "
                f"{p.get('event')} by {p.get('proposed_by')} at {p.get('proposed_at')}")
    if r["kind"] == "review":
        return (f"{head}: {p.get('action')} {p.get('event', '')} for human review "
                f"({', '.join(p.get('rule_ids') or [])}) {p.get('review_id', '')}")
    return f"{head}: {p}"


def _audit(db: Path, fn):  # noqa: ANN001, ANN202
    from dunning.ops.audit import AuditLog, default_anchor

    store = open_store(db)
    with store.connect() as con:
        return fn(AuditLog(con, anchor=default_anchor(store.path)))


def _store_call(db: Path, fn):  # noqa: ANN001, ANN202
    """``fn(con, anchor)`` on the store."""
    from dunning.ops.audit import default_anchor

    store = open_store(db)
    with store.connect() as con:
        return fn(con, default_anchor(store.path))


# ------------------------------------------------------------------------------ forget
@user_errors
def forget(
    customer: str = typer.Option(..., "--customer", help="Customer id to erase."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    letters: list[Path] = typer.Option(None, "--letters", help="Also a folder of letters "
                                       "rendered before dunning registered them (repeat)."),
    db: Path = DB_OPT,
) -> None:
    """Erase a customer's personal data (GDPR art. 17); keep what the law requires.

    Reaches the store, the audit trail's personal parts, rendered letters (redacted; PDFs
    deleted) and quarantine files, and lists exactly what it could not reach."""
    from dunning.ops.audit import forget_customer
    from dunning.ops.erasure import erase_files, personal_values, summary

    if not yes:
        typer.confirm(f"Erase the personal data of customer {customer}?", abort=True)
    store = open_store(db)
    personal = personal_values(store, customer)
    report = forget_customer(store, customer)
    files = erase_files(store, customer, personal, letters or [])
    for line in summary(files):
        console.print(line, highlight=False, markup=False)
    console.print(f"customer {customer}: name erased ({report['customer_rows']} row), "
                  f"{report['audit_personal_records']} personal audit fields erased; invoices, "
                  "payments and the audit chain are kept (retention duty); "
                  f"`dunning audit verify`: {'ok' if report['audit_ok'] else 'FAILED'}")


# ------------------------------------------------------------------------------ serve
@user_errors
def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    tokens: Path = typer.Option(None, "--tokens", help="Token file (one `token role [name]` "
                                "per line; roles: read, reviewer, legal). Default: env "
                                "DUNNING_API_TOKENS (`token:role[:name],...`)."),
    db: Path = DB_OPT,
    model: Path = typer.Option(None, "--model", help="Payment model for /predictions."),
    policy: str = typer.Option(None, "--policy", help="Policy for on-demand runs."),
    ssl_certfile: Path = typer.Option(None, "--ssl-certfile", help="Serve HTTPS with this "
                                      "certificate (PEM)."),
    ssl_keyfile: Path = typer.Option(None, "--ssl-keyfile", help="Private key of "
                                     "--ssl-certfile (PEM)."),
    tls_proxy: bool = typer.Option(False, "--tls-proxy", help="A TLS-terminating reverse "
                                   "proxy is in front: no clear-text warning, and its "
                                   "X-Forwarded-For names the client (for the per-client "
                                   "authentication backoff)."),
    store_wait: float = typer.Option(5.0, "--store-wait", min=0.0, help="Seconds a page or "
                                     "API read waits while a CLI job holds the store, then "
                                     "503 + Retry-After naming the job."),
    decision_wait: float = typer.Option(25.0, "--decision-wait", min=0.0, help="Seconds a "
                                        "review decision or event waits for the store, then "
                                        "it is journalled (202, applied once the job is "
                                        "done)."),
) -> None:
    """REST API (OpenAPI at /docs): recommendations, predictions, rules, review, audit.

    Needs the audit key (DUNNING_AUDIT_KEY_FILE or DUNNING_AUDIT_KEY): review decisions are
    appended to the keyed audit chain.
    """
    import uvicorn

    from dunning.api import ApiConfig, bind_warning, create_app, load_tokens
    from engine.store import configure_lock

    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise InputError("--ssl-certfile and --ssl-keyfile: give both or neither")
    config = ApiConfig(db=Path(db), tokens=load_tokens(tokens), model_dir=model,
                       policy_dir=policy, store_wait_s=store_wait,
                       decision_wait_s=decision_wait)
    # The server shares the store with CLI jobs: it gives the store up as soon as one waits
    # and its requests wait a bounded time for it (503 + Retry-After after that).
    configure_lock(label="dunning serve", yielding=True, wait_s=config.store_wait_s)
    app = create_app(config)  # checks the store and the audit key before listening
    warning = bind_warning(host, tls=ssl_certfile is not None or tls_proxy)
    if warning:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    scheme = "https" if ssl_certfile else "http"
    err_console.print(f"dunning API on {scheme}://{host}:{port} (OpenAPI docs at /docs, "
                      f"{len(config.tokens)} token(s)); workspace at {scheme}://{host}:{port}/ui/ "
                      "(log in with a token); Ctrl-C stops it")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
                ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
                proxy_headers=tls_proxy)


@creditor_app.command("check")
@user_errors
def creditor_check(
    path: Path = typer.Argument(..., help="The creditor profile (YAML)."),
) -> None:
    """Check a creditor profile: formats (file:line: field: message, every problem at once)
    and the fields letters of its jurisdiction must carry. Exit code 2 on any problem."""
    from dunning.ops.creditor import Creditor

    profile = Creditor.from_yaml(path)
    fields, citation = profile.requirements()
    profile.check_for_letters()
    console.print(f"{path}: OK for letters ({profile.jurisdiction} {profile.legal_form}: "
                  f"{', '.join(fields)}; {citation})", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dunning app."""
    app.command("recommend")(recommend)
    app.add_typer(review_app, name="review")
    app.command("record-action")(record_action_cmd)
    app.add_typer(audit_app, name="audit")
    app.add_typer(creditor_app, name="creditor")
    app.command("forget")(forget)
    app.command("serve")(serve)
