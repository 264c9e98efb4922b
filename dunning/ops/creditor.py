"""The creditor profile: who sends the letters, the company details they must carry, where to pay.

A YAML file (``creditor.yaml`` next to the store, or ``--creditor FILE``; the demo company's
is ``dunning/ops/creditor.example.yaml``)::

    name: Nordlicht Maschinenbau GmbH
    jurisdiction: DE                  # the creditor's seat country (ISO 3166-1)
    address: [Hafenstr. 1, 20457 Hamburg]
    company:                          # the disclosures business letters must carry
      legal_form: GmbH
      seat: Hamburg
      register_court: Amtsgericht Hamburg
      register_number: HRB 123456
      managing_directors: [Anna Berg, Jonas Wolf]
    bank:
      account_holder: Nordlicht Maschinenbau GmbH
      iban: DE02 1203 0000 0000 2020 51
      bic: BYLADEM1001
    payment_reference: "{invoice_id}"   # placeholders: {invoice_id}, {customer_id}

Loading is validated like ``legal_rules/loader.py`` validates rule files: every problem names
the file, the line and the field and says what was expected; all-or-nothing
(:class:`CreditorFileError` lists every problem, nothing is loaded). Formats are checked on
load (IBAN check digits, BIC shape, payment-reference placeholders); what a *letter* needs is
checked when it is rendered (:meth:`Creditor.missing_for_letters`), by the creditor's
jurisdiction and legal form (:data:`DISCLOSURES`): a letter without them is not rendered.
"""

from __future__ import annotations

import difflib
import os
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import InputError

EXAMPLE_PROFILE = Path(__file__).resolve().parent / "creditor.example.yaml"

# Member states of the EU (Directive (EU) 2017/1132 applies to each).
EU_MEMBERS = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO "
                       "SE SI SK".split())
_EU_ART26 = "Directive (EU) 2017/1132 art. 26"
_ART26_FIELDS = ("company.legal_form", "company.seat", "company.register_court",
                 "company.register_number")
# Fields a business letter of the creditor must carry, by (jurisdiction, legal form) with
# "*" for any legal form, and the provision that requires them. A jurisdiction not listed
# here has no recorded requirements: its letters are refused (fail closed) until a legal
# team adds them (docs/operations.md, "Creditor profile").
DISCLOSURES: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    **{(c, "*"): (_ART26_FIELDS, _EU_ART26) for c in EU_MEMBERS},
    ("DE", "GmbH"): (_ART26_FIELDS + ("company.managing_directors",),
                     "GmbHG § 35a; " + _EU_ART26),
    ("DE", "UG (haftungsbeschränkt)"): (_ART26_FIELDS + ("company.managing_directors",),
                                        "GmbHG § 35a, § 5a; " + _EU_ART26),
    ("DE", "e.K."): (_ART26_FIELDS, "HGB § 37a"),
}
# Every letter asks for payment: the creditor's identity and where and how to pay.
PAYMENT_FIELDS = ("name", "address", "bank.account_holder", "bank.iban", "bank.bic",
                  "payment_reference")
REFERENCE_PLACEHOLDERS = ("invoice_id", "customer_id")

_SECTIONS = {
    "company": ("legal_form", "seat", "register_court", "register_number",
                "managing_directors", "vat_id"),
    "bank": ("account_holder", "iban", "bic"),
}
_TOP = ("name", "jurisdiction", "address", "email", "phone", "registration", "company", "bank",
        "payment_reference", "reminder_fee", "claim_compensation", "days_to_pay")
_BIC = re.compile(r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$")
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")


class CreditorFileError(InputError):
    """The creditor file is invalid; ``problems`` lists each with file, line and field."""

    def __init__(self, problems: Sequence[Any]):
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the creditor file (nothing loaded):"
        super().__init__("\n".join([head, *map(str, self.problems)]))


class CreditorProfileError(InputError):
    """The creditor profile lacks fields a letter must carry: the letter is not rendered."""


def iban_problem(iban: str) -> str | None:
    """Why ``iban`` (spaces allowed) is not a valid IBAN (ISO 13616 mod-97 check), or None."""
    compact = iban.replace(" ", "").upper()
    if not _IBAN.match(compact):
        return (f"found {iban!r}; expected an IBAN: country code, 2 check digits, then the "
                "account (e.g. DE02 1203 0000 0000 2020 51)")
    digits = "".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])
    if int(digits) % 97 != 1:
        return f"found {iban!r}; its check digits are wrong (mistyped?)"
    return None


def reference_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a payment-reference pattern, or None."""
    try:
        parts = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        return f"found {pattern!r}; {exc} (write a placeholder as {{invoice_id}})"
    names = [p[1] for p in parts if p[1] is not None]
    bad = [n for n in names if n not in REFERENCE_PLACEHOLDERS]
    if bad or any(p[2] or p[3] for p in parts if p[1] is not None):
        return (f"found {pattern!r}; placeholders may only be "
                f"{', '.join('{' + n + '}' for n in REFERENCE_PLACEHOLDERS)}")
    if not names:
        return (f"found {pattern!r}; expected at least one placeholder, e.g. '{{invoice_id}}', "
                "so that each payment can be matched to its invoice")
    return None


@dataclass(frozen=True)
class Creditor:
    """Who sends the letters, the company details they carry, where to pay, what to charge.

    Loaded from YAML by :meth:`from_yaml` (``company:`` and ``bank:`` sections, see the module
    docstring). ``reminder_fee`` is in the invoice currency; the rule caps may lower it to 0.
    ``source`` is the file it came from (named in errors).
    """

    name: str
    address: tuple[str, ...] = ()
    email: str = ""
    phone: str = ""
    jurisdiction: str = ""
    legal_form: str = ""
    seat: str = ""
    register_court: str = ""
    register_number: str = ""
    managing_directors: tuple[str, ...] = ()
    vat_id: str = ""
    account_holder: str = ""
    iban: str = ""
    bic: str = ""
    payment_reference: str = "{invoice_id}"
    registration: str = ""  # e.g. the collector's registration (RDG § 10) for consumer letters
    reminder_fee: float = 2.5
    claim_compensation: bool = True
    days_to_pay: int = 10
    source: str = ""

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> Creditor:
        """Load and validate a creditor file (:class:`CreditorFileError` on any problem)."""
        from legal_rules.loader import Problem, load_lined_yaml

        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"{path}: creditor file not found; expected a YAML file with at "
                             "least `name:` (example: dunning/ops/creditor.example.yaml, fields: "
                             "docs/operations.md)") from None
        import yaml

        try:
            doc = load_lined_yaml(text)
        except yaml.MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else 1
            raise CreditorFileError([Problem(str(path), line, "", _yaml_message(exc))]) from None
        except yaml.YAMLError as exc:
            raise CreditorFileError([Problem(str(path), 1, "", str(exc))]) from None
        fields, problems = _parse(str(path), doc if doc is not None else {})
        if problems:
            raise CreditorFileError(problems)
        return cls(**fields, source=str(path))

    def field_value(self, dotted: str) -> Any:
        """The value of a profile field named as in the YAML (``bank.iban``, ``name``)."""
        return getattr(self, dotted.rsplit(".", 1)[-1])

    def requirements(self) -> tuple[tuple[str, ...], str]:
        """``(fields, citation)`` a letter of this creditor must carry (payment data included).

        :class:`CreditorProfileError` if the creditor's jurisdiction (or, in Germany, its
        legal form) has no recorded requirements: fail closed.
        """
        jur = self.jurisdiction
        if not jur:
            raise CreditorProfileError(
                f"creditor profile {self.source or '(in code)'}: field `jurisdiction` is empty; "
                "expected the country of the creditor's seat (e.g. DE): it decides which "
                "company details the letters must carry")
        rule = DISCLOSURES.get((jur, self.legal_form)) or (
            DISCLOSURES.get((jur, "*")) if jur != "DE" else None)
        if rule is None:
            known_forms = sorted(f for j, f in DISCLOSURES if j == jur and f != "*")
            what = (f"legal form {self.legal_form!r} in {jur}" if known_forms
                    else f"jurisdiction {jur}")
            hint = (f"; known legal forms: {', '.join(known_forms)}" if known_forms else
                    f"; known: {', '.join(sorted({j for j, _ in DISCLOSURES}))}")
            raise CreditorProfileError(
                f"creditor profile {self.source or '(in code)'}: no recorded disclosure "
                f"requirements for {what}{hint}. No letter is rendered until a legal team "
                "records them (docs/operations.md, Creditor profile)")
        fields, citation = rule
        return PAYMENT_FIELDS + fields, citation

    def missing_for_letters(self) -> list[str]:
        """Fields the letters need that are empty ([] = complete); raises if unknown."""
        fields, _ = self.requirements()
        return [f for f in fields if not self.field_value(f)]

    def check_for_letters(self) -> None:
        """:class:`CreditorProfileError` naming every missing field and the law requiring it."""
        missing = self.missing_for_letters()
        if missing:
            _, citation = self.requirements()
            raise CreditorProfileError(
                f"creditor profile {self.source or '(in code)'}: no letter without "
                f"{', '.join(missing)} (required for a {self.jurisdiction} "
                f"{self.legal_form or 'creditor'}: {citation}; payment data to be paid at "
                "all); add them (docs/operations.md, Creditor profile)")

    def reference_for(self, invoice_id: str, customer_id: str) -> str:
        """The payment reference of one invoice (the pattern filled in; a pattern that is not
        one, e.g. built in code around the file check, is refused)."""
        why = reference_problem(self.payment_reference)
        if why:
            raise CreditorProfileError(f"creditor profile {self.source or '(in code)'}: "
                                       f"payment_reference: {why}")
        return self.payment_reference.format(invoice_id=invoice_id, customer_id=customer_id)

    def company_lines(self) -> list[tuple[str, str]]:
        """``[(label key, value)]`` of the company details present (for the letter footer)."""
        out = [("legal_form", self.legal_form), ("seat", self.seat),
               ("register", " ".join(x for x in (self.register_court, self.register_number)
                                     if x)),
               ("managing_directors", ", ".join(self.managing_directors)),
               ("vat_id", self.vat_id)]
        return [(k, v) for k, v in out if v]


def _yaml_message(exc: Any) -> str:
    """The loader's plain-language YAML message where it has one, else PyYAML's."""
    import legal_rules.loader as loader

    plain = getattr(loader, "yaml_message", None)
    return plain(exc) if plain is not None else f"not valid YAML: {exc.problem}"


def _parse(file: str, doc: Any) -> tuple[dict[str, Any], list[Any]]:
    """``(constructor kwargs, problems)`` of one parsed creditor document."""
    from legal_rules.loader import Problem, field_path, line_of

    problems: list[Any] = []

    def problem(path: Sequence[Any], message: str) -> None:
        problems.append(Problem(file, line_of(doc, path), field_path(path), message))

    if not isinstance(doc, dict):
        problem([], f"expected a mapping of fields (name: ..., bank: ...), found "
                    f"{type(doc).__name__}")
        return {}, problems
    out: dict[str, Any] = {}
    _unknown(doc, _TOP, [], problem)

    def text(path: list[Any], value: Any, required: bool = False) -> str:
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                problem(path, "missing or empty; expected text")
            return ""
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            problem(path, f"found {value!r}; expected text")
            return ""
        return str(value).strip()

    out["name"] = text(["name"], doc.get("name"), required=True)
    for key in ("email", "phone", "registration"):
        out[key] = text([key], doc.get(key))
    jur = text(["jurisdiction"], doc.get("jurisdiction"))
    if jur and not re.fullmatch(r"[A-Z]{2}", jur):
        problem(["jurisdiction"], f"found {jur!r}; expected a two-letter country code in "
                                  "capitals (ISO 3166-1), e.g. DE")
    out["jurisdiction"] = jur
    out["address"] = _text_list(doc, ["address"], problem)
    for section, keys in _SECTIONS.items():
        sub = doc.get(section)
        if sub is None:
            continue
        if not isinstance(sub, dict):
            problem([section], f"expected a mapping with some of {', '.join(keys)}")
            continue
        _unknown(sub, keys, [section], problem)
        for key in keys:
            if key == "managing_directors":
                out[key] = _text_list(doc, [section, key], problem)
            else:
                out[key] = text([section, key], sub.get(key))
    if out.get("iban"):
        why = iban_problem(out["iban"])
        if why:
            problem(["bank", "iban"], why)
    if out.get("bic"):
        out["bic"] = out["bic"].replace(" ", "").upper()
        if not _BIC.match(out["bic"]):
            problem(["bank", "bic"], f"found {out['bic']!r}; expected a BIC of 8 or 11 letters "
                                     "and digits (e.g. BYLADEM1001)")
    if "payment_reference" in doc:
        ref = text(["payment_reference"], doc["payment_reference"], required=True)
        why = reference_problem(ref) if ref else None
        if why:
            problem(["payment_reference"], why)
        out["payment_reference"] = ref
    _number(doc, "reminder_fee", float, 0.0, out, problem)
    _number(doc, "days_to_pay", int, 1, out, problem)
    if "claim_compensation" in doc:
        if not isinstance(doc["claim_compensation"], bool):
            problem(["claim_compensation"], f"found {doc['claim_compensation']!r}; expected "
                                            "true or false")
        out["claim_compensation"] = bool(doc["claim_compensation"])
    return out, problems


def _unknown(node: dict[str, Any], known: Sequence[str], path: list[Any], problem: Any) -> None:
    for key in node:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            where = "company" if str(key) in _SECTIONS["company"] else (
                "bank" if str(key) in _SECTIONS["bank"] else "")
            if where and not path:
                hint = f"it belongs in the `{where}:` section; "
            problem(path + [key], f"unknown field; {hint}expected one of {', '.join(known)}")


def _text_list(doc: Any, path: list[Any], problem: Any) -> tuple[str, ...]:
    node: Any = doc
    for step in path:
        node = node.get(step) if isinstance(node, dict) else None
    if node is None:
        return ()
    if isinstance(node, str):
        node = [node]
    if not isinstance(node, list) or not all(isinstance(x, (str, int)) and str(x).strip()
                                             for x in node):
        problem(path, f"found {node!r}; expected a list of non-empty lines, e.g. "
                      "[Hafenstr. 1, 20457 Hamburg]")
        return ()
    return tuple(str(x).strip() for x in node)


def _number(doc: dict[str, Any], key: str, typ: type, low: float, out: dict[str, Any],
            problem: Any) -> None:
    if key not in doc:
        return
    value = doc[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
        typ is float or float(value).is_integer())
    if not ok or value < low:
        kind = "a whole number" if typ is int else "a number"
        problem([key], f"found {value!r}; expected {kind} of at least {low:g}")
        return
    out[key] = typ(value)
