"""A decision explained in plain words, in English or German (``rules explain``).

For a works council, a data-protection officer or the debtor's lawyer: the decision, each rule
that applied (title, what it does, why it applied, citation, rationale, kind, version), the
caps with their basis, the rules checked that did not apply, and the facts used, marking
those that are personal data (:attr:`legal_rules.facts.Fact.personal`). Conditions are
written without operator names (``ge`` -> "at least", ``when: always`` -> "always").

The fixed phrases and the engine's messages (unknown input, why a rule could not be checked,
a missing rate: :mod:`legal_rules.messages`) are translated; a rule's title and rationale stay
in the language of its file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from legal_rules.decision import Decision
from legal_rules.facts import FACTS
from legal_rules.messages import FACT_LABEL, render
from legal_rules.model import All, Always, AnyOf, Compare, Condition, Not, Rule, RuleSet

LANGS = ("en", "de")

_OPS = {
    "en": {"eq": "is", "ne": "is not", "lt": "is less than", "le": "is at most",
           "gt": "is more than", "ge": "is at least", "in": "is one of",
           "not_in": "is none of"},
    "de": {"eq": "ist", "ne": "ist nicht", "lt": "ist kleiner als", "le": "ist höchstens",
           "gt": "ist größer als", "ge": "ist mindestens", "in": "ist eines von",
           "not_in": "ist keines von"},
}

_TEXT = {
    "en": {
        "and": "and", "or": "or", "not": "not", "always": "always", "yes": "yes", "no": "no",
        "header": "Decision of {day} on the action “{action}”: {status}",
        "allowed": "ALLOWED", "vetoed": "NOT ALLOWED",
        "needs_review": "ALLOWED ONLY AFTER A PERSON HAS REVIEWED IT",
        "blocked": "NOT DECIDED: information is missing or unknown, so the action is blocked",
        "ruleset": "Rule set {hash} ({n} files).",
        "applied": "Rules that applied:", "none_applied": "No rule applied.",
        "veto": "forbids this action", "require_human_review": "requires a person to review "
        "the action first", "cap": "limits what may be claimed",
        "because": "Applies because: {cond}.", "basis": "Legal basis: {citation}.",
        "why": "Why: {rationale}", "law": "law", "company_policy": "company policy",
        "version": "Version: in force from {since}{until}; file {file}, sha256 {sha}.",
        "until": " until {day}", "kind": "Kind: {kind}.",
        "approved": "Approved by {name} ({role}) on {day}.",
        "caps": "Limits on what may be claimed:",
        "cap_line": "{name}: at most {value} {unit}{note} (basis: {citation}; rule {rule})",
        "cap_floor": "{name}: at least {value} {unit}{note} (basis: {citation}; rule {rule})",
        "cap_blocked": "{name}: not claimed, its rate is not known on that day ({note}; "
        "basis: {citation}; rule {rule})",
        "unknown_value": "unknown",
        "problems": "Why no decision was made:",
        "unresolved": "{title} ({rule}): cannot be checked ({reason})",
        "not_applied": "Rules checked that did not apply:",
        "not_because": "{title} ({rule}): does not apply, it needs {cond}.",
        "other": "{n} rules of other countries, customer types or periods were not relevant.",
        "facts": "Facts used:", "personal": "personal data",
        "derived": "computed from the date", "neutral": "assumed (neutral value, not given)",
        "personal_note": "Marked facts describe the debtor as a person (who, where, what "
        "they chose or said). For a consumer every fact about the invoice is personal data "
        "(GDPR art. 4 (1)).",
    },
    "de": {
        "and": "und", "or": "oder", "not": "nicht", "always": "immer", "yes": "ja",
        "no": "nein",
        "header": "Entscheidung vom {day} über die Maßnahme „{action}“: {status}",
        "allowed": "ZULÄSSIG", "vetoed": "NICHT ZULÄSSIG",
        "needs_review": "NUR NACH PRÜFUNG DURCH EINEN MENSCHEN ZULÄSSIG",
        "blocked": "NICHT ENTSCHIEDEN: Angaben fehlen oder sind unbekannt, daher gesperrt",
        "ruleset": "Regelwerk {hash} ({n} Dateien).",
        "applied": "Angewandte Regeln:", "none_applied": "Keine Regel wurde angewandt.",
        "veto": "verbietet diese Maßnahme",
        "require_human_review": "verlangt vorher die Prüfung durch einen Menschen",
        "cap": "begrenzt, was gefordert werden darf",
        "because": "Greift, weil: {cond}.", "basis": "Rechtsgrundlage: {citation}.",
        "why": "Begründung: {rationale}", "law": "Gesetz",
        "company_policy": "Unternehmensrichtlinie",
        "version": "Fassung: gültig ab {since}{until}; Datei {file}, SHA-256 {sha}.",
        "until": " bis {day}", "kind": "Art: {kind}.",
        "approved": "Freigegeben von {name} ({role}) am {day}.",
        "caps": "Grenzen dessen, was gefordert werden darf:",
        "cap_line": "{name}: höchstens {value} {unit}{note} (Grundlage: {citation}; Regel "
        "{rule})",
        "cap_floor": "{name}: mindestens {value} {unit}{note} (Grundlage: {citation}; Regel "
        "{rule})",
        "cap_blocked": "{name}: wird nicht gefordert, der Zinssatz ist für diesen Tag nicht "
        "bekannt ({note}; Grundlage: {citation}; Regel {rule})",
        "unknown_value": "unbekannt",
        "problems": "Warum nicht entschieden wurde:",
        "unresolved": "{title} ({rule}): nicht prüfbar ({reason})",
        "not_applied": "Geprüfte Regeln, die nicht griffen:",
        "not_because": "{title} ({rule}): greift nicht, sie setzt voraus: {cond}.",
        "other": "{n} Regeln anderer Länder, Kundengruppen oder Zeiträume waren nicht "
        "einschlägig.",
        "facts": "Verwendete Tatsachen:", "personal": "personenbezogen",
        "derived": "aus dem Datum berechnet",
        "neutral": "angenommen (neutraler Wert, nicht angegeben)",
        "personal_note": "Markierte Tatsachen beschreiben den Schuldner als Person (wer, wo, "
        "was er gewählt oder erklärt hat). Bei Verbrauchern ist jede Tatsache zur Rechnung "
        "ein personenbezogenes Datum (Art. 4 Nr. 1 DSGVO).",
    },
}

_ACTIONS = {"de": {"email": "E-Mail", "letter": "Brief", "phone": "Anruf",
                   "final_notice": "letzte Mahnung", "agency": "Übergabe an ein Inkassobüro"},
            "en": {"email": "email", "letter": "letter", "phone": "phone call",
                   "final_notice": "final notice", "agency": "hand-over to a collection "
                   "agency"}}

_CAPS = {
    "en": {"max_reminder_fee": "reminder fee", "interest_rate_pp_over_base":
           "interest margin over the base rate", "max_interest_rate": "interest rate",
           "fixed_compensation": "flat compensation", "min_days_to_pay_in_letter":
           "days to pay given in the letter", "collection_cost_scale":
           "collection cost scale", "max_collection_fee": "collection fee",
           "min_interest_rate_pp_over_base": "interest margin over the base rate"},
    "de": {"max_reminder_fee": "Mahngebühr", "interest_rate_pp_over_base":
           "Zinsaufschlag über dem Basiszinssatz", "max_interest_rate": "Zinssatz",
           "fixed_compensation": "Pauschale", "min_days_to_pay_in_letter":
           "Zahlungsfrist im Schreiben (Tage)", "collection_cost_scale":
           "Inkassokostentabelle", "max_collection_fee": "Inkassogebühr",
           "min_interest_rate_pp_over_base": "Zinsaufschlag über dem Basiszinssatz"},
}
# caps that are floors (the claim may be at least this), not ceilings
_FLOORS = ("min_interest_rate_pp_over_base", "min_days_to_pay_in_letter")

_FACT_LABELS_DE = {
    "days_overdue": "Tage seit Fälligkeit", "days_since_last_contact":
    "Tage seit der letzten Erinnerung", "contacts_last_7_days":
    "Erinnerungen in den letzten 7 Tagen", "calls_last_7_days": "Anrufe in den letzten 7 Tagen",
    "reminders_sent": "bisherige Erinnerungen",
    "written_reminders_sent": "bisherige schriftliche Erinnerungen",
    "days_since_last_written_reminder": "Tage seit der letzten schriftlichen Erinnerung",
    "final_notice_sent": "letzte Mahnung versandt",
    "days_since_final_notice": "Tage seit der letzten Mahnung", "disputed":
    "Rechnung bestritten", "amount": "offener Betrag", "currency": "Währung",
    "customer_type": "Kundengruppe (b2b Unternehmen, b2c Verbraucher)", "jurisdiction":
    "Land des Schuldners", "region": "Region des Schuldners", "industry": "Branche",
    "is_weekend": "Wochenende", "is_bank_holiday": "Feiertag", "limitation_passed":
    "Forderung verjährt", "opted_out_email": "E-Mail abbestellt", "opted_out_phone":
    "Anrufe abbestellt", "opted_out_letter": "Briefe abbestellt", "agency_consent":
    "Einwilligung in die Übergabe an ein Inkassobüro", "reminder_fee_agreed":
    "Mahngebühr vereinbart", "milestone_reached": "Projektmeilenstein erreicht",
    "days_since_conversation": "Tage seit dem letzten Telefongespräch",
    "local_hour": "Uhrzeit beim Schuldner (Stunden)",
    "days_in_default": "Tage im Verzug (§ 286 BGB)",
    "promise_to_pay_pending": "offenes Zahlungsversprechen",
}


def fact_label(name: str, lang: str = "en") -> str:
    """A fact's name in words: German from the table above, English from the name."""
    if lang == "de" and name in _FACT_LABELS_DE:
        return _FACT_LABELS_DE[name]
    return name.replace("_", " ")


FACT_LABEL["fact_label"] = fact_label  # engine messages name facts in words too


def _value(value: Any, lang: str) -> str:
    if isinstance(value, bool):
        return _TEXT[lang]["yes" if value else "no"]
    if isinstance(value, (tuple, list)):
        return ", ".join(_value(v, lang) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def condition_text(cond: Condition, lang: str = "en") -> str:
    """``cond`` in words, e.g. ``contacts_last_7_days ge 2`` -> "contacts last 7 days is at
    least 2"; a yes/no fact tested against true/false reads "disputed: yes"."""
    t = _TEXT[lang]
    if isinstance(cond, Always):
        return t["always"]
    if isinstance(cond, Compare):
        label = fact_label(cond.fact, lang)
        if isinstance(cond.value, bool) and cond.op in ("eq", "ne"):
            return f"{label}: {_value(cond.value == (cond.op == 'eq'), lang)}"
        return f"{label} {_OPS[lang][cond.op]} {_value(cond.value, lang)}"
    if isinstance(cond, Not):
        inner = condition_text(cond.item, lang)
        return f"{t['not']} {inner if inner.startswith('(') else f'({inner})'}"
    joiner = f" {t['and']} " if isinstance(cond, All) else f" {t['or']} "
    assert isinstance(cond, All | AnyOf)
    parts = [condition_text(c, lang) for c in cond.items]
    return "(" + joiner.join(parts) + ")" if len(parts) > 1 else parts[0]


@lru_cache(maxsize=64)
def _file_sha(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    except OSError:
        return "?"


def _rule_lines(rule: Rule, lang: str) -> list[str]:
    t = _TEXT[lang]
    until = t["until"].format(day=rule.valid_to) if rule.valid_to else ""
    lines = [f"- {rule.title} ({rule.id}): {t[rule.effect]}.",
             "  " + t["because"].format(cond=condition_text(rule.when, lang)),
             "  " + t["basis"].format(citation=rule.citation),
             "  " + t["why"].format(rationale=" ".join(rule.rationale.split())),
             "  " + t["kind"].format(kind=t[rule.kind]),
             "  " + t["version"].format(since=rule.valid_from, until=until,
                                        file=Path(rule.source.file).name,
                                        sha=_file_sha(rule.source.file))]
    if rule.approved_by is not None:
        a = rule.approved_by
        lines.append("  " + t["approved"].format(name=a.name, role=a.role or "-", day=a.date))
    return lines


def facts_used(decision: Decision, ruleset: RuleSet) -> list[str]:
    """Names of the facts the decision looked at: those tested by the rules about its action
    that were checked (applied, did not apply on their condition, or could not be checked),
    plus jurisdiction and customer type (they select the rules), in the table's order."""
    checked = {h.rule_id for h in (*decision.fired, *decision.unresolved)}
    checked |= {rid for rid, why in decision.not_fired if why.startswith("condition false")}
    names = {"jurisdiction", "customer_type"}
    for rid in checked:
        names |= set(ruleset.rule(rid).needed_facts)
    return [n for n in FACTS if n in names]


def explain_text(decision: Decision, ruleset: RuleSet, facts: dict[str, Any],
                 lang: str = "en", derived: Iterable[str] = (),
                 neutral: Iterable[str] = ()) -> str:
    """The decision as prose (lines joined by newlines) in ``lang`` (``en`` or ``de``).

    ``facts``: the facts it was made on; ``derived`` / ``neutral``: names computed from the
    date or filled with neutral values (marked as such).
    """
    if lang not in LANGS:
        raise ValueError(f"language {lang!r}: expected one of {', '.join(LANGS)}")
    t = _TEXT[lang]
    action = _ACTIONS[lang][decision.action.channel]
    out = [t["header"].format(day=decision.as_of, action=action, status=t[decision.status]),
           t["ruleset"].format(hash=ruleset.hash[:12], n=len(ruleset.files)), ""]
    if decision.input_problems or decision.unresolved:
        out.append(t["problems"])
        out += [f"- {render(p, lang)}" for p in decision.input_problems]
        if not decision.input_problems:
            out += ["- " + t["unresolved"].format(title=h.title, rule=h.rule_id,
                                                  reason=render(h.reason, lang))
                    for h in decision.unresolved]
        out.append("")
    out.append(t["applied"] if decision.fired else t["none_applied"])
    for h in decision.fired:
        out += _rule_lines(ruleset.rule(h.rule_id), lang)
    if decision.caps:
        out += ["", t["caps"]]
    for c in decision.caps:
        fields = {"name": _CAPS[lang].get(c.name, c.name.replace("_", " ")),
                  "unit": c.unit, "citation": c.citation, "rule": c.rule_id,
                  "value": t["unknown_value"] if c.value is None else f"{c.value:g}",
                  "note": f" ({c.note})" if c.note and not c.blocked else ""}
        if c.blocked:
            note = render(c.note, lang)
            out.append("- " + t["cap_blocked"].format(**{**fields, "note": note}))
        else:
            key = "cap_floor" if c.name in _FLOORS else "cap_line"
            out.append("- " + t[key].format(**fields))
    checked = [(rid, why) for rid, why in decision.not_fired
               if why.startswith("condition false")]
    if checked:
        out += ["", t["not_applied"]]
    for rid, _ in checked:
        rule = ruleset.rule(rid)
        out.append("- " + t["not_because"].format(title=rule.title, rule=rid,
                                                  cond=condition_text(rule.when, lang)))
    others = len(decision.not_fired) - len(checked)
    if others:
        out.append(t["other"].format(n=others))
    derived, neutral = set(derived), set(neutral)
    out += ["", t["facts"]]
    any_personal = False
    for name in facts_used(decision, ruleset):
        marks = []
        if FACTS[name].personal:
            marks.append(t["personal"])
            any_personal = True
        if name in derived:
            marks.append(t["derived"])
        if name in neutral:
            marks.append(t["neutral"])
        value = facts.get(name)
        shown = t["unknown_value"] if value is None else _value(value, lang)
        out.append(f"- {fact_label(name, lang)}: {shown}"
                   + (f" [{'; '.join(marks)}]" if marks else ""))
    if any_personal:
        out.append(t["personal_note"])
    return "\n".join(out)
