"""Letters are safe against hostile data: every template in every language escapes every
free-text value, no value can forge a line of the text letter, and the PDF renderer loads
no file, no URL and runs no script (issue 21: a customer named ``<iframe src=file:///...>``
must not get a server file into their letter)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from dunning.ops.creditor import EXAMPLE_PROFILE
from dunning.ops.letters import (
    LANGUAGES,
    TEMPLATE_DIR,
    Creditor,
    InvoiceRef,
    html_to_pdf,
    render_letter,
)
from engine.contract import Action
from legal_rules.decision import Decision
from legal_rules.model import CapValue

DAY = dt.date(2026, 3, 2)
# Markup, script, event handlers, a forged line and a bidi override in one value.
EVIL = ('<iframe src="file:///etc/passwd"></iframe><script>alert(1)</script>'
        '<img src=x onerror=alert(1)>"\'&amp;\n\nTotal due: 0.00\u202e')
ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "div", "h1", "p", "table",
                "tr", "td", "br"}
ALLOWED_ATTRS = {("html", "lang"), ("meta", "charset"), ("div", "class"), ("table", "class"),
                 ("tr", "class"), ("td", "class")}


def hostile_invoice(lang: str, ctype: str) -> InvoiceRef:
    return InvoiceRef(invoice_id="INV" + EVIL, customer_id="C" + EVIL, customer_name=EVIL,
                      jurisdiction="DE", customer_type=ctype, language=lang,
                      invoice_date=dt.date(2026, 1, 1), due_date=dt.date(2026, 1, 31),
                      amount=1234.5, open_amount=1234.5, currency="EUR" + EVIL)


HOSTILE_CREDITOR = Creditor(name="Cred" + EVIL, address=("Street" + EVIL, "City" + EVIL),
                            email="mail" + EVIL, phone="tel" + EVIL, iban="IBAN" + EVIL,
                            registration="Reg" + EVIL, reminder_fee=5.0, days_to_pay=7,
                            jurisdiction="DE", legal_form="GmbH", seat="Seat" + EVIL,
                            register_court="Court" + EVIL, register_number="HRB" + EVIL,
                            managing_directors=("Dir" + EVIL,), vat_id="VAT" + EVIL,
                            account_holder="Holder" + EVIL, bic="BIC" + EVIL,
                            payment_reference="R-{invoice_id}" + EVIL)
# A real rule id per cap (the legal-basis line is looked up by rule id, in the letter's
# language, from legal_basis.yaml: no rule file's citation reaches a letter).
CAP_RULES = {"max_interest_rate": "de.interest_b2b", "max_reminder_fee": "de.later_reminder_fee",
             "fixed_compensation": "de.flat_fee_b2b", "collection_cost_scale": "nl.bik_scale",
             "min_days_to_pay_in_letter": "nl.fourteen_day_letter_content"}


def decision(action: Action) -> Decision:
    """An allowed decision with every cap a letter can show (each branch of the templates),
    with a hostile citation too."""
    caps = tuple(CapValue(name, value, unit, str(value), CAP_RULES[name], "Cite" + EVIL)
                 for name, value, unit in (("max_interest_rate", 9.5, "pct"),
                                           ("max_reminder_fee", 2.5, "amount"),
                                           ("fixed_compensation", 40.0, "amount"),
                                           ("collection_cost_scale", 150.0, "amount"),
                                           ("min_days_to_pay_in_letter", 14, "days")))
    return Decision(action=action, as_of=DAY, allowed=True, vetoed=False, needs_review=False,
                    caps=caps)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


CASES = [(lang, action, sent, ctype) for lang in LANGUAGES
         for action, sent in ((Action.EMAIL, 0), (Action.LETTER, 1), (Action.FINAL_NOTICE, 2),
                              (Action.AGENCY, 3))
         for ctype in ("b2b", "b2c")]


def test_the_cases_cover_every_template():
    used = {f"{lang}.j2" for lang, *_ in CASES} | {"letter.html.j2", "letter.txt.j2"}
    assert {p.name for p in TEMPLATE_DIR.iterdir() if p.suffix == ".j2"} == used


@pytest.mark.parametrize("lang, action, sent, ctype", CASES,
                         ids=[f"{c[0]}-{c[1].channel}-{c[3]}" for c in CASES])
def test_hostile_values_are_escaped_in_every_template(lang, action, sent, ctype):
    letter = render_letter(hostile_invoice(lang, ctype), action, decision(action),
                           HOSTILE_CREDITOR, DAY, reminders_sent=sent)
    parsed = _Tags()
    parsed.feed(letter.html)
    for tag, attrs in parsed.tags:
        assert tag in ALLOWED_TAGS, (tag, attrs)
        for name, _ in attrs:
            assert (tag, name) in ALLOWED_ATTRS, (tag, name)
    for raw in ("<iframe", "<script", "<img", "onerror=alert"):
        assert raw not in letter.html.replace("onerror=alert(1)&gt;", "")  # only escaped
    text = "".join(parsed.text)
    # every value is there, as text: the name in the salutation (en, sv) or the address block
    shown = EVIL.replace("\n", " ").replace("\u202e", " ")
    assert shown in text
    assert "\u202e" not in letter.html and "\u202e" not in letter.text
    # the text letter: values verbatim but on their own line, no forged line
    assert shown in letter.text
    assert not any(line.startswith("Total due: 0.00") for line in letter.text.splitlines())
    assert not any(line.startswith("Total due: 0.00") for line in text.splitlines())
    # a rule file's citation (internal, English) never reaches a letter
    assert "Cite" not in letter.text and "Cite" not in letter.html


pdftotext = shutil.which("pdftotext")


@pytest.mark.skipif(pdftotext is None, reason="needs pdftotext (Debian poppler-utils: "
                    "make pdf-deps)")
def test_pdf_of_a_hostile_name_contains_no_file_and_runs_no_script(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-7f3a9c\n")
    css = tmp_path / "leak.css"
    css.write_text('body::after { content: "LEAKED-BY-CSS"; }')
    name = (f'<img src="{secret.as_uri()}"><iframe src="{secret.as_uri()}"></iframe>'
            f'<object data="{secret.as_uri()}"></object><link rel="stylesheet" '
            f'href="{css.as_uri()}"><script>document.write("SCRIPT" + "-RAN")</script>')
    inv = InvoiceRef(invoice_id="INV-1", customer_id="C-1", customer_name=name,
                     jurisdiction="GB", customer_type="b2b", language="en",
                     invoice_date=dt.date(2026, 1, 1), due_date=dt.date(2026, 1, 31),
                     amount=100.0, open_amount=100.0, currency="GBP")
    letter = render_letter(inv, Action.LETTER, decision(Action.LETTER),
                           Creditor.from_yaml(EXAMPLE_PROFILE), DAY, reminders_sent=1)
    # The escaped letter shows the name as text; the renderer, fed the raw markup as if the
    # escaping had failed, still loads nothing and runs nothing (defence in depth).
    raw = letter.html.replace("</body>", name + "<style>@import url('" + css.as_uri()
                              + "');</style></body>")
    for html, expect_name in ((letter.html, True), (raw, False)):
        pdf = html_to_pdf(html, tmp_path / "letter.pdf")
        text = subprocess.run([pdftotext, str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout
        assert "Dear" in text and "INV-1" in text  # it is the letter
        assert "TOPSECRET" not in text and "LEAKED-BY-CSS" not in text
        assert "SCRIPT-RAN" not in text
        if expect_name:
            assert "secret.txt" in text  # the escaped name is printed as text
        images = subprocess.run([shutil.which("pdfimages") or "pdfimages", "-list", str(pdf)],
                                capture_output=True, text=True, check=True).stdout
        assert len(images.strip().splitlines()) == 2  # header lines only: no image embedded


def test_a_decision_that_needs_review_gets_no_letter_without_an_approval():
    from dunning.ops.gate import ReviewRequired

    needs = Decision(action=Action.AGENCY, as_of=DAY, allowed=True, vetoed=False,
                     needs_review=True)
    inv = hostile_invoice("en", "b2b")
    for approval in (None, {"review_id": "R-0123456789", "status": "pending"},
                     {"review_id": "R-0123456789", "status": "rejected"}):
        with pytest.raises(ReviewRequired, match="needs an approved human review"):
            render_letter(inv, Action.AGENCY, needs, HOSTILE_CREDITOR, DAY, 3,
                          approval=approval)
    letter = render_letter(inv, Action.AGENCY, needs, HOSTILE_CREDITOR, DAY, 3,
                           approval={"review_id": "R-0123456789", "status": "approved"})
    assert letter.kind == "pre_agency"
