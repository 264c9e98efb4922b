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
one language's wording (macros), ``letter.txt.j2`` / ``letter.html.j2`` the layout.

Every value in a letter is untrusted (a customer name is typed by the customer). Hence:

- the HTML layout and the language macros it imports are compiled with autoescape on (one
  Jinja2 environment for HTML: *every* template autoescaped, so a macro's output is escaped
  too); control and bidi-override characters in values become a space;
- the text layout is rendered by a second environment that never feeds HTML: the text is
  written as ``.txt`` and served as ``text/plain`` with ``nosniff``; line breaks in a value
  are removed, so a value cannot forge lines of the letter;
- PDF is printed by WeasyPrint (no script engine at all) with a URL fetcher that refuses
  every URL (``file:``, ``http(s):``, ``data:``), so a letter can never load a local file
  or reach the network; the letter's CSS is inline. See ``docs/operations.md``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
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


# C0/C1 control characters (line breaks included) and the Unicode bidi overrides/isolates:
# a value cannot break a text line, hide text or reorder what the reader sees.
_UNSAFE_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean_value(value: Any) -> Any:
    """``value`` with control / bidi characters replaced by a space (str only).

    Jinja2's ``finalize``: runs on every ``{{ }}`` value before autoescaping (HTML). Markup
    (a macro's output, already built from cleaned and escaped values) is left as it is.
    """
    if not isinstance(value, str) or hasattr(value, "__html__"):
        return value
    return _UNSAFE_CHARS.sub(" ", value)


def _environment(html: bool) -> Any:
    """The Jinja2 environment for one output kind.

    ``html=True``: autoescape for EVERY template (the layout and the ``<lang>.j2`` macros it
    imports: a macro compiled without autoescape would return its output marked safe).
    ``html=False``: plain text, never served or embedded as HTML.
    """
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                             autoescape=html, finalize=clean_value,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["money"] = format_money
    env.filters["day"] = format_date
    return env


_ENVS: dict[bool, Any] = {}


def _env(html: bool) -> Any:
    if html not in _ENVS:
        _ENVS[html] = _environment(html)
    return _ENVS[html]


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
                  reminders_sent: int = 0, ruleset: Any | None = None,
                  approval: dict[str, Any] | None = None) -> Letter:
    """Render the letter for ``action`` (email/letter -> reminder, final notice, agency).

    ``decision`` must be the legal decision of this action for this invoice on
    ``letter_date`` (default ``decision.as_of``); a vetoed or blocked action gets no letter.
    ``reminders_sent`` counts the reminders before this one (0: this is the first).
    A decision that needs human review needs ``approval``, the approved review item
    :func:`dunning.ops.gate.review_gate` returned (:class:`~dunning.ops.gate.ReviewRequired`
    otherwise): the pre-agency notice says that a person reviewed the account.
    """
    action = Action(int(action))
    if action not in LETTER_KINDS:
        raise InputError(f"invoice {invoice.invoice_id}: no letter for action {action.channel}; "
                         f"expected one of {', '.join(a.channel for a in LETTER_KINDS)}")
    if not decision.allowed:
        raise InputError(f"invoice {invoice.invoice_id}: {action.channel} is {decision.status} "
                         f"by {', '.join(decision.vetoed_by) or 'an unresolved rule'}; no letter")
    if decision.needs_review and (approval or {}).get("status") != "approved":
        from dunning.ops.gate import ReviewRequired

        raise ReviewRequired(f"invoice {invoice.invoice_id}: {action.channel} needs an approved "
                             "human review; no letter without it (see `dunning review list`)",
                             invoice.invoice_id, action.channel,
                             (approval or {}).get("review_id"), (approval or {}).get("status"))
    letter_date = letter_date or decision.as_of
    lang = letter_language(invoice)
    figures = compute_amounts(invoice, decision, creditor, letter_date, ruleset)
    kind = LETTER_KINDS[action]
    ctx = {"lang": lang, "kind": kind, "inv": invoice, "creditor": creditor,
           "letter_date": letter_date, "b2c": invoice.customer_type == "b2c",
           "reminder_number": reminders_sent + 1, **figures}
    text = _env(False).get_template("letter.txt.j2").render(**ctx)
    html = _env(True).get_template("letter.html.j2").render(**ctx)
    return Letter(kind=kind, language=lang, jurisdiction=invoice.jurisdiction,
                  invoice_id=invoice.invoice_id, letter_date=letter_date,
                  pay_by=figures["pay_by"], amounts=figures["amounts"],
                  interest_rate_pct=figures["interest_rate_pct"],
                  announced_costs=figures["announced_costs"], citations=figures["citations"],
                  text=text, html=html, creditor=creditor.name)


def refusing_fetcher() -> Any:
    """A WeasyPrint URL fetcher that refuses every URL; ``.refused`` lists what was asked.

    A subclass of :class:`weasyprint.urls.URLFetcher` (WeasyPrint routes every external
    resource: images, stylesheets, fonts, ``<object>``, ``<embed>``, attachments, through
    its fetcher) whose ``fetch`` opens nothing, whatever the scheme. Built on demand so that
    importing this module does not import WeasyPrint.
    """
    from weasyprint.urls import URLFetcher

    class RefusingFetcher(URLFetcher):
        def __init__(self) -> None:
            super().__init__(allowed_protocols=(), allow_redirects=False)
            self.refused: list[str] = []

        def fetch(self, url: str, headers: Any = None) -> Any:
            self.refused.append(url[:200])
            raise ValueError(f"letters load no external resource (refused {url[:80]!r})")

    return RefusingFetcher()


def html_to_pdf(html: str, out: str | os.PathLike[str]) -> Path:
    """Print ``html`` to a PDF file with WeasyPrint; atomic (temp file, then rename).

    No script runs (WeasyPrint has no JavaScript engine) and no URL is fetched (every
    fetch is refused by :func:`refusing_fetcher`; ``base_url`` is None, so a relative URL
    resolves to nothing on disk). Returns the path written.
    """
    import logging

    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: pango/cairo libraries missing
        raise InputError("PDF output needs WeasyPrint and the Debian pango libraries "
                         f"(`make install`, `make pdf-deps`): {exc}. Use --format text or "
                         "html.") from None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fetcher = refusing_fetcher()
    # WeasyPrint logs each refused resource at ERROR level: kept (an escaped letter has
    # none, so such a line means something tried); its progress chatter is not
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    pdf = HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf()
    tmp_out = out.with_name(out.name + ".tmp")
    tmp_out.write_bytes(pdf)
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
    ``recommended``; ``actions={invoice_id: action}`` asks for given letters instead (e.g.
    the pre-agency notice of an approved handover). Each letter uses the durable_rules
    decision of its action on ``as_of`` (the caps in force that day), built from the store's
    facts by :func:`dunning.ops.gate.legal_decisions`. An action whose decision needs human
    review gets its letter only with an approved review item
    (:func:`dunning.ops.gate.review_gate`: :class:`~dunning.ops.gate.ReviewRequired`
    otherwise); a vetoed or blocked action gets none (InputError).
    """
    from dunning.ops.gate import legal_decisions, review_gate
    from dunning.ops.recommend import compiled_rules, stored_recommendations

    if actions is None:
        with store.connect() as con:
            recs = stored_recommendations(con, as_of)
        sendable = recs[recs["status"].eq("recommended")
                        & recs["action"].isin(["email", "letter", "final_notice"])]
        actions = {r.invoice_id: Action.from_channel(r.action) for r in sendable.itertuples()}
    if invoice_ids is not None:
        actions = {i: a for i, a in actions.items() if i in set(invoice_ids)}
    if not actions:
        return []
    checks = legal_decisions(store, actions, as_of, ruleset)
    with store.connect() as con:  # all or nothing: every gate before any letter
        approvals = [review_gate(con, c.invoice_id, c.action, as_of, c.decision.needs_review)
                     if c.decision.allowed else None for c in checks]
    rs = compiled_rules(ruleset)[0]
    out = []
    for c, approval in zip(checks, approvals, strict=True):
        r = c.state
        ref = InvoiceRef(
            invoice_id=r["invoice_id"], customer_id=r["customer_id"],
            customer_name=r["name"] if isinstance(r["name"], str) else r["customer_id"],
            jurisdiction=str(r["jurisdiction"]).upper(), customer_type=str(r["customer_type"]),
            language=r["language"] if isinstance(r["language"], str) else None,
            invoice_date=r["invoice_date"].date(), due_date=r["due_date"].date(),
            amount=float(r["amount"]), open_amount=float(r["open_amount"]),
            currency=str(r["currency"]).upper())
        out.append(render_letter(ref, c.action, c.decision, creditor, as_of,
                                 reminders_sent=int(c.facts["reminders_sent"]), ruleset=rs,
                                 approval=approval))
    return out
