"""Dunning letters: reminder, final notice and pre-agency notice, per jurisdiction and language.

Every figure a letter claims comes from the legal decision of record for that letter
(:class:`legal_rules.decision.Decision` of the action on the letter date), never from code:

- interest: the ``max_interest_rate`` cap in force (a rate expression such as
  ``base_rate(DE) + 9`` resolved on the date) or an EU ``interest_rate_pp_over_base`` cap
  plus the ECB rate; simple interest on the open principal from the day after the due date,
  act/365; no interest cap fired (or no rate on that date) -> no interest;
- reminder fee: ``min(creditor's fee, max_reminder_fee cap)``; no cap fired -> no fee (fees
  only where a rule allows them: none for a German first reminder, SEK 60 only if agreed);
- fixed recovery compensation (EUR 40 B2B, GBP 40/70/100, SEK 450): the ``fixed_compensation``
  cap, claimed if the creditor opts in;
- announced collection costs (Dutch BIK scale, ``collection_cost_scale``): stated as what will
  be charged if the debt is not paid by the pay-by date (the Dutch 14-day letter is itself free);
- pay-by date: letter date + ``max(creditor's days, min_days_to_pay_in_letter cap)``.

Text and HTML come from Jinja2 templates in ``dunning/ops/templates/letters``: ``<lang>.j2`` holds
one language's wording (macros), ``letter.txt.j2`` / ``letter.html.j2`` the layout. PDF is
printed by headless Chromium (``/usr/bin/chromium``).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.contract import Action
from engine.errors import InputError

if TYPE_CHECKING:
    from legal_rules.decision import Decision

LANGUAGES: tuple[str, ...] = ("de", "en", "sv", "fr", "nl")
DEFAULT_LANGUAGE: dict[str, str] = {"DE": "de", "AT": "de", "SE": "sv", "FR": "fr", "NL": "nl"}
LETTER_KINDS: dict[Action, str] = {
    Action.EMAIL: "reminder",
    Action.LETTER: "reminder",
    Action.FINAL_NOTICE: "final_notice",
    Action.AGENCY: "pre_agency",
}
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "letters"


@dataclass(frozen=True)
class Creditor:
    """Who sends the letters and what they would charge if the law allows it.

    Loaded from YAML (``dunning-data/creditor.yaml`` or ``--creditor FILE``) with the same
    field names. ``reminder_fee`` is in the invoice currency; the rule caps may lower it to 0.
    """

    name: str
    address: tuple[str, ...] = ()
    email: str = ""
    phone: str = ""
    iban: str = ""
    registration: str = ""  # e.g. the collector's registration (RDG § 10) for consumer letters
    reminder_fee: float = 2.5
    claim_compensation: bool = True
    days_to_pay: int = 10

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> Creditor:
        import yaml

        path = Path(path)
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise InputError(f"{path}: creditor file not found; expected a YAML file with at "
                             "least `name:` (see docs/operations.md)") from None
        except yaml.YAMLError as exc:
            raise InputError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(doc, dict) or not str(doc.get("name", "")).strip():
            raise InputError(f"{path}: field `name`: missing; expected the creditor's name")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(doc) - known)
        if unknown:
            raise InputError(f"{path}: unknown field(s) {', '.join(unknown)}; expected some of "
                             f"{', '.join(sorted(known))}")
        if "address" in doc:
            doc["address"] = tuple(str(x) for x in doc["address"] or ())
        for key, typ in (("reminder_fee", float), ("days_to_pay", int)):
            if key in doc:
                try:
                    doc[key] = typ(doc[key])
                except (TypeError, ValueError):
                    raise InputError(f"{path}: field `{key}`: found {doc[key]!r}; expected a "
                                     f"{typ.__name__}") from None
        return cls(**doc)


@dataclass(frozen=True)
class InvoiceRef:
    """The invoice a letter is about (amounts in ``currency``)."""

    invoice_id: str
    customer_id: str
    customer_name: str
    jurisdiction: str
    customer_type: str
    language: str | None
    invoice_date: dt.date
    due_date: dt.date
    amount: float
    open_amount: float
    currency: str


@dataclass
class Letter:
    """A rendered letter. ``amounts`` split principal / interest / fees / compensation."""

    kind: str
    language: str
    jurisdiction: str
    invoice_id: str
    letter_date: dt.date
    pay_by: dt.date
    amounts: dict[str, float]
    interest_rate_pct: float | None
    announced_costs: float
    citations: list[str]
    text: str
    html: str
    creditor: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["letter_date"] = self.letter_date.isoformat()
        out["pay_by"] = self.pay_by.isoformat()
        return out


def letter_language(invoice: InvoiceRef) -> str:
    """The customer's language if a template exists, else the jurisdiction's, else English."""
    lang = (invoice.language or "").strip().lower()
    if lang in LANGUAGES:
        return lang
    return DEFAULT_LANGUAGE.get(invoice.jurisdiction, "en")


def compute_amounts(invoice: InvoiceRef, decision: Decision, creditor: Creditor,
                    letter_date: dt.date, ruleset: Any | None = None) -> dict[str, Any]:
    """Principal, interest, fee, compensation, announced costs and pay-by date from the caps.

    Interest: the tightest ``max_interest_rate`` cap (a full annual rate); without one, an
    ``interest_rate_pp_over_base`` cap of an EU-wide rule plus the ECB rate in force
    (``ecb_rate(EU)`` from ``ruleset``); otherwise no interest is claimed.
    """
    principal = round(invoice.open_amount, 2)
    cites: list[str] = []

    def cap(name: str) -> float | None:
        value = decision.cap(name)
        if value is not None:
            cites.extend(c.citation for c in decision.caps if c.name == name)
        return value

    rate = cap("max_interest_rate")
    if rate is None:
        rate = _rate_over_base(decision, ruleset, cites)
    interest_days = max((letter_date - invoice.due_date).days, 0)
    interest = round(principal * (rate or 0.0) / 100 * interest_days / 365, 2)
    fee_cap = cap("max_reminder_fee")
    fee = round(min(creditor.reminder_fee, fee_cap), 2) if fee_cap is not None else 0.0
    comp_cap = cap("fixed_compensation")
    compensation = round(comp_cap, 2) if comp_cap is not None and creditor.claim_compensation \
        else 0.0
    announced = cap("collection_cost_scale") or 0.0
    max_fee = cap("max_collection_fee")
    if max_fee is not None:
        announced = min(announced, max_fee)
    min_days = cap("min_days_to_pay_in_letter")
    days = max(creditor.days_to_pay, int(min_days or 0))
    total = round(principal + interest + fee + compensation, 2)
    return {
        "amounts": {"principal": principal, "interest": interest, "fees": fee,
                    "compensation": compensation, "total": total},
        "interest_rate_pct": rate, "interest_days": interest_days,
        "announced_costs": round(announced, 2), "days_to_pay": days,
        "pay_by": letter_date + dt.timedelta(days=days),
        "citations": list(dict.fromkeys(cites)),
    }


def _rate_over_base(decision: Decision, ruleset: Any | None, cites: list[str]) -> float | None:
    """Annual rate from an ``interest_rate_pp_over_base`` cap of an EU rule + ECB rate."""
    if ruleset is None:
        return None
    for c in decision.caps:
        if c.name != "interest_rate_pp_over_base" or c.value is None:
            continue
        if ruleset.rule(c.rule_id).jurisdiction != "EU":
            continue
        base = ruleset.rate("ecb_rate", "EU", decision.as_of)
        if base is not None:
            cites.extend([c.citation, base.citation])
            return round(base.value + c.value, 6)
    return None


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                             autoescape=jinja2.select_autoescape(["html.j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["money"] = format_money
    env.filters["day"] = format_date
    return env


_ENV: Any = None


def _env() -> Any:
    global _ENV
    if _ENV is None:
        _ENV = _environment()
    return _ENV


def format_money(value: float, currency: str, language: str) -> str:
    """``1.234,50 EUR`` (de, nl, sv, fr) or ``EUR 1,234.50`` (en)."""
    text = f"{value:,.2f}"
    if language == "en":
        return f"{currency} {text}"
    sep = {"de": ".", "nl": ".", "sv": "\u00a0", "fr": "\u00a0"}[language]
    text = text.replace(",", "\x00").replace(".", ",").replace("\x00", sep)
    return f"{text} {currency}"


def format_date(value: dt.date, language: str) -> str:
    return value.strftime("%d.%m.%Y" if language == "de" else
                          "%d/%m/%Y" if language in ("fr", "en") else
                          "%d-%m-%Y" if language == "nl" else "%Y-%m-%d")


def render_letter(invoice: InvoiceRef, action: Action | int, decision: Decision,
                  creditor: Creditor, letter_date: dt.date | None = None,
                  reminders_sent: int = 0, ruleset: Any | None = None) -> Letter:
    """Render the letter for ``action`` (email/letter -> reminder, final notice, agency).

    ``decision`` must be the legal decision of this action for this invoice on
    ``letter_date`` (default ``decision.as_of``); a vetoed or blocked action gets no letter.
    ``reminders_sent`` counts the reminders before this one (0: this is the first).
    """
    action = Action(int(action))
    if action not in LETTER_KINDS:
        raise InputError(f"invoice {invoice.invoice_id}: no letter for action {action.channel}; "
                         f"expected one of {', '.join(a.channel for a in LETTER_KINDS)}")
    if not decision.allowed:
        raise InputError(f"invoice {invoice.invoice_id}: {action.channel} is {decision.status} "
                         f"by {', '.join(decision.vetoed_by) or 'an unresolved rule'}; no letter")
    letter_date = letter_date or decision.as_of
    lang = letter_language(invoice)
    figures = compute_amounts(invoice, decision, creditor, letter_date, ruleset)
    kind = LETTER_KINDS[action]
    ctx = {"lang": lang, "kind": kind, "inv": invoice, "creditor": creditor,
           "letter_date": letter_date, "b2c": invoice.customer_type == "b2c",
           "reminder_number": reminders_sent + 1, **figures}
    text = _env().get_template("letter.txt.j2").render(**ctx)
    html = _env().get_template("letter.html.j2").render(**ctx)
    return Letter(kind=kind, language=lang, jurisdiction=invoice.jurisdiction,
                  invoice_id=invoice.invoice_id, letter_date=letter_date,
                  pay_by=figures["pay_by"], amounts=figures["amounts"],
                  interest_rate_pct=figures["interest_rate_pct"],
                  announced_costs=figures["announced_costs"], citations=figures["citations"],
                  text=text, html=html, creditor=creditor.name)


def chromium_path() -> str | None:
    """Headless Chromium for PDF output, or None if not installed."""
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def html_to_pdf(html: str, out: str | os.PathLike[str], timeout: float = 120) -> Path:
    """Print ``html`` to a PDF file with headless Chromium; atomic (temp file, then rename)."""
    exe = chromium_path()
    if exe is None:
        raise InputError("PDF output needs Chromium (Debian package `chromium`); not found. "
                         "Use --format text or html, or install it (`make chromium`).")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dunning-pdf-") as tmp:
        src = Path(tmp) / "letter.html"
        src.write_text(html, encoding="utf-8")
        pdf = Path(tmp) / "letter.pdf"
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", f"--user-data-dir={tmp}/profile",
               "--no-pdf-header-footer", f"--print-to-pdf={pdf}", src.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        if proc.returncode != 0 or not pdf.exists():
            raise RuntimeError(f"chromium failed ({proc.returncode}): "
                               f"{proc.stderr.decode(errors='replace')[-500:]}")
        tmp_out = out.with_name(out.name + ".tmp")
        shutil.copyfile(pdf, tmp_out)
        tmp_out.replace(out)
    return out


def write_letters(letters: Sequence[Letter], directory: str | os.PathLike[str],
                  formats: Sequence[str] = ("txt", "html")) -> list[Path]:
    """Write each letter as ``<invoice>_<kind>_<date>.<fmt>`` (txt, html, pdf); atomic."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for letter in letters:
        stem = f"{letter.invoice_id}_{letter.kind}_{letter.letter_date.isoformat()}"
        for fmt in formats:
            path = directory / f"{stem}.{fmt}"
            if fmt == "pdf":
                html_to_pdf(letter.html, path)
            elif fmt in ("txt", "html"):
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_text(letter.text if fmt == "txt" else letter.html, encoding="utf-8")
                tmp.replace(path)
            else:
                raise InputError(f"letter format {fmt!r}: expected txt, html or pdf")
            written.append(path)
    return written


def letters_for(store: Any, as_of: dt.date, creditor: Creditor,
                invoice_ids: Sequence[str] | None = None, ruleset: Any | None = None,
                actions: dict[str, Action] | None = None) -> list[Letter]:
    """Letters for the stored recommendations of ``as_of`` that send one.

    By default every row whose action is email, letter or final notice and whose status is
    ``recommended`` (an agency handover gets its pre-agency letter only once its review is
    approved: pass ``actions={invoice_id: Action.AGENCY}``). Each letter uses the
    durable_rules decision of its action on ``as_of`` (the caps in force that day).
    """
    from dunning.ops.recommend import (
        compiled_rules,
        invoice_state,
        legal_facts,
        stored_recommendations,
    )

    with store.connect() as con:
        recs = stored_recommendations(con, as_of)
    if actions is None:
        sendable = recs[recs["status"].eq("recommended")
                        & recs["action"].isin(["email", "letter", "final_notice"])]
        actions = {r.invoice_id: Action.from_channel(r.action) for r in sendable.itertuples()}
    if invoice_ids is not None:
        actions = {i: a for i, a in actions.items() if i in set(invoice_ids)}
    if not actions:
        return []
    from engine.store import WITH_EVENTS

    state = invoice_state(store.tables(as_of=as_of, names=WITH_EVENTS), as_of)
    state = state[state["invoice_id"].isin(list(actions))].reset_index(drop=True)
    missing = sorted(set(actions) - set(state["invoice_id"]))
    if missing:
        raise InputError(f"invoice {missing[0]}: not open on {as_of}; no letter")
    facts = legal_facts(state, as_of)
    evaluator = compiled_rules(ruleset)[2]
    out = []
    for i, r in state.iterrows():
        row_facts = {k: (v[i].item() if hasattr(v[i], "item") else v[i])
                     for k, v in facts.items()}
        action = actions[r["invoice_id"]]
        decision = evaluator.decide(row_facts, action, as_of)
        ref = InvoiceRef(
            invoice_id=r["invoice_id"], customer_id=r["customer_id"],
            customer_name=r["name"] if isinstance(r["name"], str) else r["customer_id"],
            jurisdiction=str(r["jurisdiction"]).upper(), customer_type=str(r["customer_type"]),
            language=r["language"] if isinstance(r["language"], str) else None,
            invoice_date=r["invoice_date"].date(), due_date=r["due_date"].date(),
            amount=float(r["amount"]), open_amount=float(r["open_amount"]),
            currency=str(r["currency"]).upper())
        out.append(render_letter(ref, action, decision, creditor, as_of,
                                 reminders_sent=int(row_facts["reminders_sent"]),
                                 ruleset=evaluator.ruleset))
    return out
