"""Engine messages as ids with parameters, rendered in English or German at the edge.

A :class:`Message` is what the engine stores (in a ``Decision``, a what-if report, an input
problem): a message id from :data:`CATALOGUE` and its parameters. It *is* a ``str`` whose value
is the English text, so code, logs and JSON that treat engine messages as text keep working;
the language-neutral part is ``.id`` / ``.params`` (``.to_dict()``), and ``.render("de")``
gives the German text. :func:`render` renders a message or any plain string (a plain string,
e.g. a rule title from a YAML file, stays as written).

Parameters are plain values; a parameter that is itself a :class:`Message` (e.g. a hint) is
rendered in the same language. One catalogue, ``{id: {"en": template, "de": template}}``,
``str.format`` templates; :func:`check_catalogue` (run by the tests) guarantees that both
languages exist for every id and use the same parameter names.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable
from typing import Any

LANGS: tuple[str, ...] = ("en", "de")

CATALOGUE: dict[str, dict[str, str]] = {
    # ---- unknown input (legal_rules.known, legal_rules.decision) ---------------------------
    "hint.did_you_mean": {"en": "; did you mean {value!r}?", "de": "; gemeint ist wohl {value!r}?"},
    "hint.known": {"en": "; known: {values}", "de": "; bekannt: {values}"},
    "input.unknown_fact": {"en": "unknown fact {name!r}{hint}",
                           "de": "unbekannte Angabe {name!r}{hint}"},
    "input.unknown_jurisdiction": {
        "en": "unknown jurisdiction {value!r}: no rule covers it{hint}",
        "de": "unbekanntes Land {value!r}: keine Regel gilt dafür{hint}"},
    "input.unknown_region": {"en": "unknown region {value!r}{where}{hint}",
                             "de": "unbekannte Region {value!r}{where}{hint}"},
    "input.region_of": {"en": " of {jurisdiction}", "de": " in {jurisdiction}"},
    "input.unknown_value": {"en": "unknown {label} {value!r}{hint}",
                            "de": "unbekannter Wert {value!r} für „{label}“{hint}"},
    "input.bad_fact": {"en": "fact {name!r}: {problem}{hint}",
                       "de": "Angabe {name!r}: {problem}{hint}"},
    # ---- why a fact value is invalid (legal_rules.facts.fact_problem) ----------------------
    "fact.missing": {"en": "missing", "de": "fehlt"},
    "fact.expected_bool": {"en": "expected true/false, found {type} {value!r}",
                           "de": "erwartet ja/nein (true/false), gefunden {type} {value!r}"},
    "fact.expected_string": {"en": "expected a string, found {type} {value!r}",
                             "de": "erwartet ein Text, gefunden {type} {value!r}"},
    "fact.expected_unicode": {"en": "expected valid Unicode text, found {value!r}",
                              "de": "erwartet gültiger Unicode-Text, gefunden {value!r}"},
    "fact.expected_iso": {"en": "expected a 2-letter upper-case ISO code, found {value!r}",
                          "de": "erwartet ein ISO-Code aus 2 Großbuchstaben, gefunden {value!r}"},
    "fact.expected_choice": {"en": "expected one of {choices}, found {value!r}",
                             "de": "erwartet eines von {choices}, gefunden {value!r}"},
    "fact.expected_number": {"en": "expected a number, found {type} {value!r}",
                             "de": "erwartet eine Zahl, gefunden {type} {value!r}"},
    "fact.expected_finite": {"en": "expected a finite number, found {value!r}",
                             "de": "erwartet eine endliche Zahl, gefunden {value!r}"},
    "fact.expected_whole": {"en": "expected a whole number, found {value!r}",
                            "de": "erwartet eine ganze Zahl, gefunden {value!r}"},
    "fact.expected_range": {"en": "expected a number within +-{limit}, found {value!r}",
                            "de": "erwartet eine Zahl innerhalb ±{limit}, gefunden {value!r}"},
    # ---- a hand-written case (`dunning rules explain --facts`) ------------------------------
    "case.one_source": {"en": "explain: give exactly one of --facts FILE.json or --invoice ID",
                        "de": "explain: genau eines angeben, --facts DATEI.json oder "
                              "--invoice ID"},
    "case.neutral_without_file": {
        "en": "explain: --neutral needs --facts (the store gives every fact)",
        "de": "explain: --neutral geht nur mit --facts (der Datenbestand liefert jede Angabe)"},
    "case.action_differs": {
        "en": "explain: --action {given} differs from the action {action!r} in {path}",
        "de": "explain: --action {given} weicht von der Maßnahme {action!r} in {path} ab"},
    "case.cannot_read": {"en": "{path}: cannot read facts file: {reason}",
                         "de": "{path}: Datei mit den Angaben nicht lesbar: {reason}"},
    "case.invalid_json": {
        "en": "{path}:{line}: invalid JSON: {reason}; expected an object of facts, e.g. "
              '{{"days_overdue": 20, ...}}',
        "de": "{path}:{line}: kein gültiges JSON: {reason}; erwartet ein Objekt mit Angaben, "
              'z. B. {{"days_overdue": 20, ...}}'},
    "case.not_object": {"en": "{path}:1: expected a JSON object of facts, found {found}",
                        "de": "{path}:1: erwartet ein JSON-Objekt mit Angaben, gefunden {found}"},
    "case.unknown_facts": {
        "en": "{path}: unknown fact(s) {names} ({hints}); expected names from "
              "legal_rules/facts.py or {case_keys}",
        "de": "{path}: unbekannte Angabe(n) {names} ({hints}); erlaubt sind die Namen aus "
              "legal_rules/facts.py oder {case_keys}"},
    "case.bad_date": {"en": "{path}: {key}: dates are written 2026-12-31, found {value!r}",
                      "de": "{path}: {key}: ein Datum wird 2026-12-31 geschrieben, gefunden "
                            "{value!r}"},
    "case.due_before_invoice": {
        "en": "{path}: due_date {due} is before invoice_date {invoice_date}",
        "de": "{path}: due_date {due} liegt vor invoice_date {invoice_date}"},
    "case.action_time": {
        "en": "{path}: action_time: write the time with its UTC offset, e.g. "
              "2026-03-02T14:30-05:00, found {value!r}",
        "de": "{path}: action_time: die Uhrzeit mit UTC-Versatz angeben, z. B. "
              "2026-03-02T14:30-05:00, gefunden {value!r}"},
    "case.expected_bool": {"en": "{path}: {key}: expected true or false, found {value!r}",
                           "de": "{path}: {key}: erwartet true oder false, gefunden {value!r}"},
    "case.contradicts_date": {
        "en": "{path}: facts contradict the decision date {day}: {problems}",
        "de": "{path}: Angaben widersprechen dem Entscheidungsdatum {day}: {problems}"},
    "case.contradiction": {"en": "{name} is {given}, but {why}, which gives {value}",
                           "de": "{name} ist {given}, aber {why}, daraus folgt {value}"},
    "case.why_weekend": {"en": "{day} is a {weekday}", "de": "der {day} ist ein {weekday}"},
    "case.why_holiday": {"en": "{day} in the {calendar} holiday calendar",
                         "de": "der {day} im Feiertagskalender {calendar}"},
    "case.why_overdue": {"en": "due {due}, decided {day}",
                         "de": "fällig am {due}, entschieden am {day}"},
    "case.why_limitation": {
        "en": "due {due}, limitation period of {jurisdiction} (legal_rules/{file})",
        "de": "fällig am {due}, Verjährungsfrist in {jurisdiction} (legal_rules/{file})"},
    "case.why_default": {
        "en": "due {due}, first reminder {first_reminder}, § 286 (3) notice {notice} (BGB "
              "§ 286 for DE; else from the day after the due date)",
        "de": "fällig am {due}, erste Mahnung {first_reminder}, Hinweis nach § 286 (3) "
              "{notice} (BGB § 286 für DE; sonst ab dem Tag nach Fälligkeit)"},
    "case.why_local_hour": {"en": "the action time {time} in {zones}",
                            "de": "die Uhrzeit {time} in {zones}"},
    "case.neutral_needs": {
        "en": "{path}: --neutral fills facts that do not change the decision, not {missing}: "
              "give them in the file",
        "de": "{path}: --neutral ergänzt nur Angaben, die die Entscheidung nicht ändern, "
              "nicht {missing}: bitte in der Datei angeben"},
    "case.history": {
        "en": "{path}: the reminder history does not add up{neutral}: {problems}; give the "
              "written reminders in the file",
        "de": "{path}: die Mahnhistorie ist nicht stimmig{neutral}: {problems}; bitte die "
              "schriftlichen Mahnungen in der Datei angeben"},
    "case.with_neutral": {"en": " (with the --neutral values)",
                          "de": " (mit den --neutral-Werten)"},
    "case.more_written": {
        "en": "written_reminders_sent is {written}, more than reminders_sent {sent} (which "
              "counts every reminder, calls included)",
        "de": "written_reminders_sent ist {written}, mehr als reminders_sent {sent} (das "
              "jede Mahnung zählt, auch Anrufe)"},
    "case.written_later": {
        "en": "days_since_last_written_reminder is {since_written}, less than "
              "days_since_last_contact {since} (the last contact of any channel)",
        "de": "days_since_last_written_reminder ist {since_written}, weniger als "
              "days_since_last_contact {since} (der letzte Kontakt auf jedem Weg)"},
    "case.written_without_day": {
        "en": "written_reminders_sent is {written} but days_since_last_written_reminder is "
              "{since_written} ({never} means none was sent)",
        "de": "written_reminders_sent ist {written}, aber days_since_last_written_reminder "
              "ist {since_written} ({never} heißt: keine gesendet)"},
    **{f"weekday.{i}": {"en": en, "de": de} for i, (en, de) in enumerate(zip(
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
        strict=True))},
    # ---- why a rule did not apply or could not be checked (legal_rules.decision) -----------
    "rule.not_in_force": {"en": "not in force on {day} (valid {valid_from} .. {valid_to})",
                          "de": "am {day} nicht in Kraft (gültig {valid_from} .. {valid_to})"},
    "rule.open_end": {"en": "open end", "de": "unbefristet"},
    "rule.other_jurisdiction": {"en": "jurisdiction {value} is not {rule_jurisdiction}",
                                "de": "Land {value} ist nicht {rule_jurisdiction}"},
    "rule.other_scope": {"en": "scope {scope} only (customer is {customer_type})",
                         "de": "nur für {scope} (Kunde ist {customer_type})"},
    "rule.facts_unknown": {"en": "{problems}", "de": "{problems}"},
    "rule.fact_unknown": {"en": "fact {name!r} {problem}", "de": "Angabe {name!r} {problem}"},
    "rule.condition_false": {"en": "condition false: {condition} ({facts})",
                             "de": "Bedingung nicht erfüllt: {condition} ({facts})"},
    # ---- rates and claims (legal_rules.model, legal_rules.decision) ------------------------
    "rate.missing": {
        "en": "no {key} on {day}: {have}; interest is blocked until the period is added to "
              "rates.yaml{publisher}",
        "de": "kein Wert für {key} am {day}: {have}; Zinsen werden nicht gefordert, bis der "
              "Zeitraum in rates.yaml ergänzt ist{publisher}"},
    "rate.periods": {"en": "the rate table has {key} for {spans}",
                     "de": "die Zinstabelle hat {key} für {spans}"},
    "rate.none": {"en": "no period of {key} is recorded",
                  "de": "für {key} ist kein Zeitraum erfasst"},
    "rate.publisher": {"en": " (published by {publisher})",
                       "de": " (veröffentlicht von {publisher})"},
    "claim.blocked": {"en": "{name} [{rule}]: {note}", "de": "{name} [{rule}]: {note}"},
    # ---- what-if (dunning.business.whatif) -------------------------------------------------
    "whatif.held_back": {
        "en": "blocked {what} on {n} more invoice-days ({per_1000} per 1,000 invoices; a "
              "blocked action is replaced by the policy's next choice)",
        "de": "hat {what} an {n} Rechnungstagen mehr gesperrt ({per_1000} je 1.000 "
              "Rechnungen; statt einer gesperrten Maßnahme wählt die Strategie die nächste)"},
    "whatif.allowed": {
        "en": "allowed {what} on {n} invoice-days on which they were blocked before "
              "({per_1000} per 1,000 invoices)",
        "de": "hat {what} an {n} Rechnungstagen erlaubt, an denen sie vorher gesperrt waren "
              "({per_1000} je 1.000 Rechnungen)"},
    "whatif.never_sent": {
        "en": "no effect visible here: the policy that ran ({policy}) never sends {what}, "
              "so this comparison cannot show the rule",
        "de": "hier keine Wirkung sichtbar: die gerechnete Strategie ({policy}) versendet nie "
              "{what}, daher kann dieser Vergleich die Regel nicht zeigen"},
    "whatif.outside_period": {
        "en": "no effect visible here: the rule is in force {valid_from} .. {valid_to}, "
              "outside the simulated dates {start} .. {end}",
        "de": "hier keine Wirkung sichtbar: die Regel gilt {valid_from} .. {valid_to}, "
              "außerhalb der simulierten Tage {start} .. {end}"},
    "whatif.no_jurisdiction": {
        "en": "no effect visible here: the simulated company has no customers in "
              "{jurisdiction} (it has {known})",
        "de": "hier keine Wirkung sichtbar: das simulierte Unternehmen hat keine Kunden in "
              "{jurisdiction} (nur in {known})"},
    "whatif.no_case": {
        "en": "no effect: it blocked or allowed no {what} on the simulated invoices (its "
              "cases did not come up, or other rules already blocked the same actions)",
        "de": "keine Wirkung: sie hat auf den simulierten Rechnungen keine {what} gesperrt "
              "oder erlaubt (ihre Fälle kamen nicht vor, oder andere Regeln sperrten "
              "dieselben Maßnahmen schon)"},
    "whatif.policy_given": {"en": "the policy given: {spec}",
                            "de": "die angegebene Strategie: {spec}"},
    "whatif.policy_run_rl": {"en": "the RL policy of the pipeline run in {dir}",
                             "de": "die RL-Strategie des Pipeline-Laufs in {dir}"},
    "whatif.policy_run_tuned": {"en": "the tuned schedule of the pipeline run in {dir}",
                                "de": "der abgestimmte Zeitplan des Pipeline-Laufs in {dir}"},
    "whatif.policy_packaged": {
        "en": "the demo's tuned schedule (packaged; no policy artifact was given or found)",
        "de": "der abgestimmte Zeitplan der Demo (mitgeliefert; keine Strategie angegeben "
              "oder gefunden)"},
    "whatif.uniform_probs": {
        "en": "the simulated invoices carry no payment-model scores (every invoice 1/3 on "
              "time, late, very late); an RL policy that reads them acts on that",
        "de": "die simulierten Rechnungen tragen keine Werte des Zahlungsmodells (jede "
              "Rechnung 1/3 pünktlich, spät, sehr spät); eine RL-Strategie handelt danach"},
    "whatif.blocked_means": {
        "en": "actions blocked: invoice-days on which the policy wanted an action the rules "
              "forbade (a schedule retries the next day, so one reminder can count several "
              "times)",
        "de": "gesperrte Maßnahmen: Rechnungstage, an denen die Strategie eine Maßnahme "
              "wollte, die die Regeln verbieten (ein Zeitplan versucht es am nächsten Tag "
              "wieder, eine Mahnung kann also mehrfach zählen)"},
    "whatif.dates": {
        "en": "invoices issued from {start} over {days} days, followed until {end}",
        "de": "Rechnungen ab {start} über {days} Tage ausgestellt, verfolgt bis {end}"},
}

# What an action is called for a finance or legal reader, plural, per language.
ACTION_WORDS: dict[str, dict[str, str]] = {
    "en": {"email": "email reminders", "letter": "reminder letters", "phone": "phone calls",
           "final_notice": "final notices", "agency": "agency handovers"},
    "de": {"email": "E-Mail-Erinnerungen", "letter": "Mahnbriefe", "phone": "Anrufe",
           "final_notice": "letzte Mahnungen", "agency": "Übergaben an ein Inkassobüro"},
}
OR: dict[str, str] = {"en": " or ", "de": " oder "}


def actions_text(channels: Iterable[str], lang: str = "en") -> str:
    """``"phone calls or final notices"`` for ``["phone", "final_notice"]``."""
    words = ACTION_WORDS[_lang(lang)]
    return OR[_lang(lang)].join(words.get(c, c) for c in channels)


def _lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"language {lang!r}: expected one of {', '.join(LANGS)}")
    return lang


def _format(msg_id: str, params: dict[str, Any], lang: str) -> str:
    try:
        template = CATALOGUE[msg_id][lang]
    except KeyError:
        raise KeyError(f"message {msg_id!r} has no {lang!r} text in legal_rules.messages"
                       ) from None
    shown = {k: _param(v, lang) for k, v in params.items()}
    return template.format(**shown)


def _param(value: Any, lang: str) -> Any:
    """A parameter as shown in ``lang``: messages rendered, lists of them joined by "; "."""
    if isinstance(value, Message):
        return value.render(lang)
    if isinstance(value, list | tuple) and any(isinstance(v, Message) for v in value):
        return "; ".join(render(v, lang) for v in value)
    return value


class Message(str):
    """An engine message: ``id`` (a :data:`CATALOGUE` key) and ``params``; as a ``str`` its
    English text.

    >>> m = Message("input.unknown_fact", name="amout", hint="")
    >>> str(m), m.render("de")
    ("unknown fact 'amout'", "unbekannte Angabe 'amout'")
    """

    id: str
    params: dict[str, Any]

    def __new__(cls, msg_id: str, **params: Any) -> Message:
        obj = super().__new__(cls, _format(msg_id, params, "en"))
        obj.id = msg_id
        obj.params = params
        return obj

    def render(self, lang: str = "en") -> str:
        return _format(self.id, self.params, _lang(lang))

    def to_dict(self) -> dict[str, Any]:
        """``{"id", "params", "text"}`` (params rendered as English text when messages)."""
        return {"id": self.id, "params": {k: _neutral(v) for k, v in self.params.items()},
                "text": str(self)}

    def __reduce__(self) -> tuple[Any, ...]:  # pickling (worker processes) keeps id/params
        return (_rebuild, (self.id, self.params))


def _neutral(value: Any) -> Any:
    """A parameter in JSON form: nested messages as their dicts, other values as text."""
    if isinstance(value, Message):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [_neutral(v) for v in value]
    return value if isinstance(value, int | float | bool) or value is None else str(value)


# ``fact_label(name, lang)``, registered by ``legal_rules.prose`` (which holds the German fact
# names and imports this module; a registry, not an import, keeps the modules acyclic).
FACT_LABEL: dict[str, Callable[[str, str], str]] = {}


class FactName(Message):
    """A fact's name as a parameter: ``days_overdue`` -> "days overdue" / "Tage seit
    Fälligkeit" (the labels of :func:`legal_rules.prose.fact_label`)."""

    def __new__(cls, name: str) -> FactName:  # type: ignore[misc]
        obj = str.__new__(cls, name.replace("_", " "))
        obj.id, obj.params = "fact_name", {"name": name}
        return obj

    def render(self, lang: str = "en") -> str:
        label = FACT_LABEL.get("fact_label")
        name = self.params["name"]
        return label(name, _lang(lang)) if label else name.replace("_", " ")

    def __reduce__(self) -> tuple[Any, ...]:
        return (FactName, (self.params["name"],))


def _rebuild(msg_id: str, params: dict[str, Any]) -> Message:
    return Message(msg_id, **params)


def render(message: object, lang: str = "en") -> str:
    """``message`` in ``lang``: a :class:`Message` rendered, anything else as ``str``."""
    if isinstance(message, Message):
        return message.render(lang)
    return str(message)


def check_catalogue() -> list[str]:
    """Problems of :data:`CATALOGUE`: a language missing or using other parameter names."""
    out = []
    for msg_id, texts in CATALOGUE.items():
        missing = [lang for lang in LANGS if lang not in texts]
        if missing:
            out.append(f"{msg_id}: no text in {', '.join(missing)}")
            continue
        names = {lang: {f[1].split("!")[0] for f in string.Formatter().parse(texts[lang])
                        if f[1]} for lang in LANGS}
        if len({frozenset(v) for v in names.values()}) > 1:
            out.append(f"{msg_id}: parameters differ between languages {names}")
    return out


__all__ = ["ACTION_WORDS", "CATALOGUE", "FactName", "LANGS", "Message", "actions_text",
           "check_catalogue", "render"]
