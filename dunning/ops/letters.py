"""Dunning letters: reminder, final notice and pre-agency notice, per jurisdiction and language.

Every figure a letter claims comes from the legal decision of record for that letter
(:class:`legal_rules.decision.Decision` of the action on the letter date), never from code:

- interest: the tightest ``max_interest_rate`` cap (a rate expression such as
  ``base_rate(DE) + 9``) or an EU ``interest_rate_pp_over_base`` cap plus the ECB rate;
  simple interest on the open principal from the first day of default (the fact
  ``days_in_default``: BGB § 286 for German debtors, elsewhere the day after the due date;
  :attr:`InvoiceRef.first_interest_day`), act/365, one
  period per half-year at that half-year's rate (:func:`interest_periods`; the UK rate is
  fixed at the half-year the debt fell due), shown period by period in the letter's annex;
  a period without a known rate -> no figure: the letter goes to the human review queue
  (``rates.missing_period``, :func:`interest_problem`); approved, it is sent without the
  interest claim and says so (the claim is reserved, never waived, never guessed);
  without an approval no letter (:class:`InterestRateUnknown` / ``ReviewRequired``);
- reminder fee: ``min(creditor's fee, max_reminder_fee cap)``, less what a claimed fixed
  compensation already covers (BGB § 288 (5) sentence 3; Directive 2011/7/EU art. 6(3));
  no cap fired -> no fee (none for a German first reminder, SEK 60 only if agreed);
- fixed recovery compensation (EUR 40 B2B, GBP 40/70/100, SEK 450): the ``fixed_compensation``
  cap, claimed if the creditor opts in;
- announced collection costs (Dutch BIK scale, ``collection_cost_scale``): stated as what will
  be charged if the debt is not paid by the pay-by date (the Dutch 14-day letter is itself free);
- pay-by date: letter date + ``max(creditor's days, min_days_to_pay_in_letter cap)``;
- the pre-agency notice carries the final notice's interest and compensation
  (:func:`carried_claims`);
- the legal-basis line: per amount claimed, the provisions of the rules behind it in the
  letter's language (``templates/letters/legal_basis.yaml``), never a rule file's citation;
- the creditor's company details, bank account and payment reference come from its profile
  (:class:`dunning.ops.creditor.Creditor`); without the fields its jurisdiction requires,
  no letter.

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
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dunning.ops.creditor import Creditor
from dunning.ops.interest import (  # noqa: F401 - re-exported: the letters' interest API
    RATE_FIXED_AT_DUE_DATE,
    InterestPeriod,
    InterestRateUnknown,
    carried_claims,
    default_start,
    half_year_start,
    half_years,
    interest_expression,
    interest_periods,
    interest_problem,
)
from engine.contract import Action
from engine.errors import InputError
from engine.files import atomic_write_text

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
    interest_from: dt.date | None = None  # first day of default; None: the day after due

    @property
    def first_interest_day(self) -> dt.date:
        """The first day interest runs: the first day of default (BGB § 286 for German
        debtors, fact ``days_in_default``), else the day after the due date."""
        return self.interest_from or self.due_date + dt.timedelta(days=1)


@dataclass
class Letter:
    """A rendered letter. ``amounts`` split principal / interest / fees / compensation.

    ``interest_periods`` is the interest calculation (the letter's annex); ``legal_basis``
    the legal-basis line's entries in the letter's language; ``citations`` the rule files'
    citations of the same caps (internal, English: for the audit trail, not the letter).
    """

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
    interest_periods: list[InterestPeriod] = field(default_factory=list)
    legal_basis: list[str] = field(default_factory=list)
    payment_reference: str = ""
    interest_withheld: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["letter_date"] = self.letter_date.isoformat()
        out["pay_by"] = self.pay_by.isoformat()
        out["interest_periods"] = [p.to_dict() for p in self.interest_periods]
        return out


def letter_language(invoice: InvoiceRef) -> str:
    """The customer's language if a template exists, else the jurisdiction's, else English."""
    lang = (invoice.language or "").strip().lower()
    if lang in LANGUAGES:
        return lang
    return DEFAULT_LANGUAGE.get(invoice.jurisdiction, "en")


# Caps whose amount a letter claims or whose requirement it states, with the basis item.
_BASIS_ITEMS = ("interest", "fees", "compensation", "costs", "payment_term")


def _binding(decision: Decision, name: str) -> tuple[float | None, list[Any]]:
    """The tightest value of cap ``name`` and the caps that set it."""
    value = decision.cap(name)
    return value, [c for c in decision.caps if c.name == name and c.value == value]


def compute_amounts(invoice: InvoiceRef, decision: Decision, creditor: Creditor,
                    letter_date: dt.date, ruleset: Any | None = None,
                    claims: Decision | None = None,
                    withhold_interest: bool = False) -> dict[str, Any]:
    """Principal, interest, fee, compensation, announced costs and pay-by date from the caps.

    ``claims``: the decision whose interest and compensation caps the letter claims (the
    pre-agency letter carries the final notice's: :func:`letters_for`); default ``decision``.
    Interest: :func:`interest_periods` under the tightest ``max_interest_rate`` cap (an EU
    ``interest_rate_pp_over_base`` + ECB rate without one); no cap -> no interest.
    Fee: ``min(creditor's fee, max_reminder_fee cap)``, minus what the fixed compensation
    already covers (it is credited against the costs of pursuing the claim: BGB § 288 (5)
    sentence 3; Directive 2011/7/EU art. 6(3)). ``basis`` lists ``(item, rule_id)`` of
    every cap behind an amount claimed or a term stated (for the legal-basis line).
    ``withhold_interest``: a reviewer approved sending the letter without its interest
    (whose rate is unknown for a period): no interest, ``interest_withheld`` True.
    """
    claims = claims or decision
    principal = round(invoice.open_amount, 2)
    basis: list[tuple[str, str]] = []
    used: list[Any] = []

    def cite(item: str, caps: list[Any]) -> None:
        caps = sorted(caps, key=lambda c: c.rule_id.startswith("eu."))  # national law first
        used.extend(caps)
        basis.extend((item, c.rule_id) for c in caps)

    rate_caps = [] if withhold_interest else interest_expression(claims, ruleset)
    periods = (interest_periods(principal, invoice.due_date, letter_date,
                                rate_caps[0].expression, ruleset, invoice.invoice_id,
                                invoice.first_interest_day)
               if rate_caps else [])
    interest = round(sum(p.amount for p in periods), 2)
    if periods:
        cite("interest", rate_caps)
    comp_cap, comp_caps = _binding(claims, "fixed_compensation")
    compensation = round(comp_cap, 2) if comp_cap and creditor.claim_compensation else 0.0
    if compensation:
        cite("compensation", comp_caps)
    fee_cap, fee_caps = _binding(decision, "max_reminder_fee") if claims is decision \
        else (None, [])
    fee = round(min(creditor.reminder_fee, fee_cap), 2) if fee_cap is not None else 0.0
    credited = round(min(fee, compensation), 2)
    fee = round(fee - credited, 2)
    if fee:
        cite("fees", fee_caps)
    scale, scale_caps = _binding(decision, "collection_cost_scale")
    max_fee, max_fee_caps = _binding(decision, "max_collection_fee")
    announced = scale or 0.0
    if max_fee is not None and max_fee < announced:
        announced, scale_caps = max_fee, scale_caps + max_fee_caps
    if announced:
        cite("costs", scale_caps)
    min_days, min_caps = _binding(decision, "min_days_to_pay_in_letter")
    if min_days is not None:
        cite("payment_term", min_caps)
    days = max(creditor.days_to_pay, int(min_days or 0))
    total = round(principal + interest + fee + compensation, 2)
    return {
        "amounts": {"principal": principal, "interest": interest, "fees": fee,
                    "compensation": compensation, "total": total},
        "interest_periods": periods,
        "interest_rate_pct": periods[-1].rate_pct if periods else None,
        "interest_days": sum(p.days for p in periods),
        "fee_credited": credited, "interest_withheld": withhold_interest,
        "announced_costs": round(announced, 2), "days_to_pay": days,
        "pay_by": letter_date + dt.timedelta(days=days),
        "basis": basis,
        "citations": list(dict.fromkeys(c.citation for c in used)),
    }


@lru_cache(maxsize=1)
def legal_basis_texts() -> dict[str, Any]:
    """``legal_basis.yaml`` (next to the templates): per-language texts of the provisions."""
    import yaml

    return yaml.safe_load((TEMPLATE_DIR / "legal_basis.yaml").read_text(encoding="utf-8"))


def legal_basis(basis: Sequence[tuple[str, str]], lang: str, invoice: InvoiceRef,
                fee_credited: float, ruleset: Any | None = None) -> list[tuple[str, str]]:
    """``[(item, text)]`` of the legal-basis line in ``lang``: one entry per item claimed.

    Texts come from ``legal_basis.yaml`` only (never a rule's citation or rationale, which
    are internal and English). Fail closed (:class:`InputError`): a rule without a text in
    ``lang``, or a consumer letter citing a rule scoped to businesses.
    """
    table = legal_basis_texts()
    grouped: dict[str, list[str]] = {}
    for item, rule_id in basis:
        text = (table["rules"].get(rule_id) or {}).get(lang)
        if not text:
            raise InputError(f"invoice {invoice.invoice_id}: rule {rule_id} has no legal-basis "
                             f"text in {lang!r} (dunning/ops/templates/letters/legal_basis.yaml);"
                             " no letter without its legal basis")
        if ruleset is not None and invoice.customer_type == "b2c":
            try:
                scope = ruleset.rule(rule_id).scope
            except KeyError:
                scope = "both"
            if scope == "b2b":
                raise InputError(f"invoice {invoice.invoice_id}: a consumer letter would cite "
                                 f"{rule_id}, a rule for businesses only; no letter")
        if text not in grouped.setdefault(item, []):
            grouped[item].append(text)
    if fee_credited:
        credit = table["fee_credited"]
        grouped.setdefault("fee_credited", []).append(
            (credit.get(invoice.jurisdiction) or credit["*"])[lang])
    order = (*_BASIS_ITEMS, "fee_credited")
    return [(item, "; ".join(grouped[item])) for item in order if item in grouped]


def rate_label(base: str | None, lang: str) -> str:
    """The name of a reference rate (``base_rate(DE)``) in ``lang``; "" for a fixed rate."""
    if base is None:
        return ""
    names = legal_basis_texts()["rates"].get(base) or {}
    if lang not in names:
        raise InputError(f"rate {base} has no name in {lang!r} "
                         "(dunning/ops/templates/letters/legal_basis.yaml)")
    return names[lang]


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
    env.filters["pct"] = format_pct
    env.filters["num"] = format_number
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


def format_number(value: float, language: str) -> str:
    """Up to 2 decimals, trailing zeros dropped: ``9``, ``9,2`` (de, fr, nl, sv) / ``9.2``."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text if language == "en" else text.replace(".", ",")


def format_pct(value: float, language: str) -> str:
    """``10,27 %`` (de, fr, nl, sv) or ``10.27 %`` (en); two decimals."""
    text = f"{value:.2f}"
    return f"{text if language == 'en' else text.replace('.', ',')} %"


def format_date(value: dt.date, language: str) -> str:
    return value.strftime("%d.%m.%Y" if language == "de" else
                          "%d/%m/%Y" if language in ("fr", "en") else
                          "%d-%m-%Y" if language == "nl" else "%Y-%m-%d")


def render_letter(invoice: InvoiceRef, action: Action | int, decision: Decision,
                  creditor: Creditor, letter_date: dt.date | None = None,
                  reminders_sent: int = 0, ruleset: Any | None = None,
                  approval: dict[str, Any] | None = None,
                  claims: Decision | None = None) -> Letter:
    """Render the letter for ``action`` (email/letter -> reminder, final notice, agency).

    ``decision`` must be the legal decision of this action for this invoice on
    ``letter_date`` (default ``decision.as_of``); a vetoed or blocked action gets no letter.
    ``reminders_sent`` counts the written reminders before this one (email, letter, final
    notice: the fact ``written_reminders_sent``; 0: this is the first). Call attempts do not
    count: "2. Mahnung" after one letter and three unanswered calls would misstate the record.
    A decision that needs human review needs ``approval``, the approved review item
    :func:`dunning.ops.gate.review_gate` returned (:class:`~dunning.ops.gate.ReviewRequired`
    otherwise): the pre-agency notice says that a person reviewed the account.
    ``claims``: the decision whose interest and compensation the letter claims (the
    pre-agency notice carries the final notice's; see :func:`compute_amounts`).

    Refused (an :class:`InputError`, nothing rendered): a creditor profile without the fields
    its jurisdiction requires (:class:`~dunning.ops.creditor.CreditorProfileError`), an
    interest period without a known rate (:class:`InterestRateUnknown`) unless ``approval``
    is an approved review item (then the letter claims no interest, states that it is
    reserved, and ``Letter.interest_withheld`` is True), a claim without a legal-basis text
    in the letter's language.
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
    creditor.check_for_letters()
    letter_date = letter_date or decision.as_of
    lang = letter_language(invoice)
    try:
        figures = compute_amounts(invoice, decision, creditor, letter_date, ruleset, claims)
    except InterestRateUnknown as exc:
        msg = str(exc)
        prefix = f"invoice {invoice.invoice_id}: "
        msg = msg if msg.startswith(prefix) else prefix + msg
        from legal_rules.decision import RATES_MISSING_PERIOD

        if ((approval or {}).get("status") != "approved"
                or RATES_MISSING_PERIOD not in (approval or {}).get("rule_ids", ())):
            raise InterestRateUnknown(msg + "; it goes to the review queue "
                                      f"({RATES_MISSING_PERIOD})") from None
        # a reviewer approved this letter knowing its interest cannot be computed: it goes
        # out without the interest claim, and says that the claim is reserved
        figures = compute_amounts(invoice, decision, creditor, letter_date, ruleset, claims,
                                  withhold_interest=True)
    kind = LETTER_KINDS[action]
    basis = legal_basis(figures["basis"], lang, invoice, figures["fee_credited"], ruleset)
    reference = creditor.reference_for(invoice.invoice_id, invoice.customer_id)
    annex = [{"period": p, "rate_name": rate_label(p.base, lang)}
             for p in figures["interest_periods"]]
    ctx = {"lang": lang, "kind": kind, "inv": invoice, "creditor": creditor,
           "letter_date": letter_date, "b2c": invoice.customer_type == "b2c",
           "reminder_number": reminders_sent + 1, "legal_basis": basis,
           "payment_reference": reference, "annex": annex,
           "rate_fixed": any(p.base and p.base.split("(")[0] in RATE_FIXED_AT_DUE_DATE
                             for p in figures["interest_periods"]),
           "company": creditor.company_lines(), "carried": claims is not None,
           "default_later": invoice.first_interest_day > invoice.due_date + dt.timedelta(days=1),
           **figures}
    text = _env(False).get_template("letter.txt.j2").render(**ctx)
    html = _env(True).get_template("letter.html.j2").render(**ctx)
    return Letter(kind=kind, language=lang, jurisdiction=invoice.jurisdiction,
                  invoice_id=invoice.invoice_id, letter_date=letter_date,
                  pay_by=figures["pay_by"], amounts=figures["amounts"],
                  interest_rate_pct=figures["interest_rate_pct"],
                  announced_costs=figures["announced_costs"], citations=figures["citations"],
                  text=text, html=html, creditor=creditor.name,
                  interest_periods=figures["interest_periods"],
                  legal_basis=[line for _, line in basis], payment_reference=reference,
                  interest_withheld=figures["interest_withheld"])


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
                atomic_write_text(path, letter.text if fmt == "txt" else letter.html)
            else:
                raise InputError(f"letter format {fmt!r}: expected txt, html or pdf")
            written.append(path)
    return written


def letters_for(store: Any, as_of: dt.date, creditor: Creditor,
                invoice_ids: Sequence[str] | None = None, ruleset: Any | None = None,
                actions: dict[str, Action] | None = None,
                refused: list[str] | None = None) -> list[Letter]:
    """Letters for the stored recommendations of ``as_of`` that send one.

    By default every row whose action is email, letter or final notice and whose status is
    ``recommended``; ``actions={invoice_id: action}`` asks for given letters instead (e.g.
    the pre-agency notice of an approved handover). Each letter uses the durable_rules
    decision of its action on ``as_of`` (the caps in force that day), built from the store's
    facts by :func:`dunning.ops.gate.legal_decisions`. An action whose decision needs human
    review gets its letter only with an approved review item
    (:func:`dunning.ops.gate.review_gate`: :class:`~dunning.ops.gate.ReviewRequired`
    otherwise); a vetoed or blocked action gets none (InputError).

    A letter whose interest has a period without a known rate (:func:`interest_problem`)
    needs an approved review item raised for it (rule ``rates.missing_period``; the daily run
    raises it): approved, it is rendered without the interest claim, which it says is
    reserved; otherwise it is not rendered (fail closed): with ``refused=None`` such a
    letter stops them all (:class:`~dunning.ops.gate.ReviewRequired` naming the missing rate
    and the review item); with a list (the daily batch), the others are rendered and each
    letter left out is appended to ``refused`` for the caller to report.
    """
    from dunning.ops.gate import ReviewRequired, legal_decisions, review_gate
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
    creditor.check_for_letters()  # before anything: no letter without the company details
    checks = legal_decisions(store, actions, as_of, ruleset)
    rs, _, evaluator = compiled_rules(ruleset, store.path)
    refs = [_invoice_ref(c.state, default_start(as_of, c.facts.get("days_in_default")))
            for c in checks]
    claims = [carried_claims(evaluator, c.facts, c.action, as_of, ref.invoice_id)
              if c.decision.allowed else None for c, ref in zip(checks, refs, strict=True)]
    # a letter whose interest cannot be computed needs an approved review like an escalation
    blocked = [interest_problem(ref.open_amount, ref.due_date, as_of, c.decision, rs,
                                ref.invoice_id, cl, ref.first_interest_day)
               if c.decision.allowed else None
               for c, ref, cl in zip(checks, refs, claims, strict=True)]
    out, errors = [], []
    with store.connect() as con:  # all or nothing: every gate before any letter
        approvals = []
        for c, why in zip(checks, blocked, strict=True):
            if not c.decision.allowed:
                approvals.append(None)
                continue
            try:
                approvals.append(review_gate(con, c.invoice_id, c.action, as_of,
                                             c.decision.needs_review or why is not None))
            except ReviewRequired as exc:
                if why is None:
                    raise
                if refused is None:
                    raise ReviewRequired(f"{why}; {exc}", exc.invoice_id, exc.action,
                                         exc.review_id, exc.status) from None
                errors.append(f"{why}; {exc}")
                approvals.append(False)
    for c, ref, cl, approval in zip(checks, refs, claims, approvals, strict=True):
        if approval is False:
            continue  # waits for its review (reported in ``refused``)
        try:
            out.append(render_letter(ref, c.action, c.decision, creditor, as_of,
                                     reminders_sent=int(c.facts["written_reminders_sent"]),
                                     ruleset=rs,
                                     approval=approval, claims=cl))
        except InterestRateUnknown as exc:  # every such invoice named, then nothing written
            errors.append(str(exc))
    if errors and refused is None:
        raise InterestRateUnknown(f"{len(errors)} letter(s) not rendered (no letters "
                                  "written):\n" + "\n".join(errors))
    if refused is not None:
        refused.extend(errors)
    return out


def _invoice_ref(r: Any, interest_from: dt.date | None = None) -> InvoiceRef:
    """The :class:`InvoiceRef` of a row of ``legal_rules.from_tables.invoice_states``."""
    return InvoiceRef(
        invoice_id=r["invoice_id"], customer_id=r["customer_id"],
        customer_name=r["name"] if isinstance(r["name"], str) else r["customer_id"],
        jurisdiction=str(r["jurisdiction"]).upper(), customer_type=str(r["customer_type"]),
        language=r["language"] if isinstance(r["language"], str) else None,
        invoice_date=r["invoice_date"].date(), due_date=r["due_date"].date(),
        amount=float(r["amount"]), open_amount=float(r["open_amount"]),
        currency=str(r["currency"]).upper(), interest_from=interest_from)
