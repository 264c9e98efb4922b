"""The workspace's fixed UI strings in English (the default) and German.

Templates write ``{{ _("Worklist") }}``: the English text is the key, :data:`GERMAN` its
translation; a string without one stays English (a page never breaks for a missing entry).
Data (names, rule ids, reasons from the rules engine, error messages of the engine) is not
translated. The language is per browser session: ``POST /ui/language`` sets the cookie
:data:`LANG_COOKIE` (``en`` or ``de``), logging out clears it.

    t = translator("de"); t("Worklist")   # 'Arbeitsliste'
"""

from __future__ import annotations

from collections.abc import Callable

LANG_COOKIE = "dunning_lang"
LANGUAGES = {"en": "English", "de": "Deutsch"}
DEFAULT = "en"

GERMAN: dict[str, str] = {
    # frame
    "Skip to content": "Zum Inhalt springen",
    "Workspace": "Arbeitsbereich",
    "Worklist": "Arbeitsliste",
    "Review queue": "Prüfliste",
    "Rules": "Regeln",
    "Explain": "Erklären",
    "Model & policy": "Modell & Strategie",
    "Log out": "Abmelden",
    "Language": "Sprache",
    "Switch": "Wechseln",
    # login
    "Log in": "Anmelden",
    "Token": "Token",
    "Use your API token (from the server's token file, <code>dunning serve --tokens</code>).":
        "Melden Sie sich mit Ihrem API-Token an (aus der Token-Datei des Servers, "
        "<code>dunning serve --tokens</code>).",
    # errors
    "Not allowed": "Nicht erlaubt",
    "Not found": "Nicht gefunden",
    "Busy for a moment": "Gerade beschäftigt",
    "Queued": "Vorgemerkt",
    "Cannot do that": "Nicht möglich",
    "Back to the worklist": "Zurück zur Arbeitsliste",
    # worklist
    "recommendations of": "Empfehlungen vom",
    "Search": "Suche",
    "customer, invoice": "Kunde, Rechnung",
    "Segment": "Segment",
    "Jurisdiction": "Rechtsraum",
    "Risk": "Risiko",
    "all": "alle",
    "no prediction": "keine Vorhersage",
    "Action": "Maßnahme",
    "Status": "Status",
    "Amount from": "Betrag von",
    "to": "bis",
    "Filter": "Filtern",
    "Reset": "Zurücksetzen",
    "open invoices": "offene Rechnungen",
    "open invoice": "offene Rechnung",
    "page": "Seite",
    "of": "von",
    "Export these as CSV": "Als CSV exportieren",
    "Customer": "Kunde",
    "Invoice": "Rechnung",
    "Amount": "Betrag",
    "Due": "Fällig",
    "Days overdue": "Tage überfällig",
    "P(on time / late / very late)": "P(pünktlich / spät / sehr spät)",
    "Legal status": "Rechtsstatus",
    "Flags": "Hinweise",
    "letter": "Brief",
    "why?": "warum?",
    "veto": "Veto",
    "vetoes": "Vetos",
    "Nothing matches these filters.": "Nichts passt zu diesen Filtern.",
    "Pages": "Seiten",
    "← previous": "← zurück",
    "next →": "weiter →",
    "no model": "kein Modell",
    "on time": "pünktlich",
    "late": "spät",
    "very late": "sehr spät",
    "late risk": "Verspätungsrisiko",
    "P(on time) under the threshold": "P(pünktlich) unter der Schwelle",
    "No recommendations stored yet: run <code>dunning recommend</code> (or "
    "<code>POST /recommendations/run</code>).":
        "Noch keine Empfehlungen gespeichert: <code>dunning recommend</code> ausführen (oder "
        "<code>POST /recommendations/run</code>).",
    # customer
    "Expected payment of the open balance": "Erwartete Zahlung des offenen Saldos",
    "as of": "Stand",
    "No open invoice with a prediction.": "Keine offene Rechnung mit Vorhersage.",
    "Open": "Offen",
    "On time": "Pünktlich",
    "Late": "Spät",
    "Very late": "Sehr spät",
    "expected on time": "pünktlich erwartet",
    "under": "unter",
    "Why": "Warum",
    "Payment history:": "Zahlungsverhalten:",
    "No model factors stored for the open invoices (they are computed for invoices the run "
    "acts on).": "Für die offenen Rechnungen sind keine Modellfaktoren gespeichert (sie werden "
                 "für Rechnungen berechnet, für die der Lauf etwas tut).",
    "Open invoices": "Offene Rechnungen",
    "No open invoices.": "Keine offenen Rechnungen.",
    "Payment history": "Zahlungsverhalten",
    "days late over time": "Tage Verspätung im Zeitverlauf",
    "No payment history.": "Kein Zahlungsverhalten bekannt.",
    "earlier or paid invoice(s)": "frühere oder bezahlte Rechnung(en)",
    "Paid": "Bezahlt",
    "Days late": "Tage verspätet",
    "Last P(on time / late / very late)": "Letzte P(pünktlich / spät / sehr spät)",
    "open": "offen",
    "Timeline": "Verlauf",
    "reminders, letters, disputes, payments, reviews":
        "Mahnungen, Briefe, Streitfälle, Zahlungen, Prüfungen",
    "Nothing recorded yet.": "Noch nichts erfasst.",
    "(after the worklist's day)": "(nach dem Tag der Arbeitsliste)",
    "Record what happened": "Ereignis erfassen",
    "Event": "Ereignis",
    "(none: the whole customer, for an opt-out)": "(keine: der ganze Kunde, für einen Widerspruch)",
    "Date": "Datum",
    "payment; optional for a promise": "Zahlung; bei einer Zusage optional",
    "Promised date": "Zugesagtes Datum",
    "promise to pay": "Zahlungszusage",
    "Channel": "Kanal",
    "opt-out": "Widerspruch",
    "Note": "Notiz",
    "personal data: erasable, kept out of the audit chain":
        "personenbezogen: löschbar, nicht in der Prüfkette",
    "Record": "Erfassen",
    # review
    "actions with significant effect need a person (GDPR art. 22)":
        "Maßnahmen mit erheblicher Wirkung brauchen eine Person (DSGVO Art. 22)",
    "Show": "Anzeigen",
    "Raised": "Erstellt",
    "P(on time)": "P(pünktlich)",
    "Why review": "Grund der Prüfung",
    "Decision": "Entscheidung",
    "Reason (required)": "Begründung (Pflicht)",
    "Approve": "Freigeben",
    "Reject": "Ablehnen",
    "pending": "offen",
    "approved": "freigegeben",
    "rejected": "abgelehnt",
    "by": "von",
    "No items.": "Keine Einträge.",
    "You have the role": "Sie haben die Rolle",
    "you can see the queue but not decide.": "Sie sehen die Liste, können aber nicht entscheiden.",
    # actions and statuses (shown names of fixed values)
    "wait": "warten",
    "email": "E-Mail",
    "phone": "Telefon",
    "final notice": "letzte Mahnung",
    "agency": "Inkasso",
    "allowed": "erlaubt",
    "needs review": "Prüfung nötig",
    "vetoed": "untersagt",
    # review item
    "Review": "Prüfung",
    "Decided": "Entschieden",
    "at": "am",
    "Audit trail": "Prüfpfad",
    "audit trail": "Prüfpfad",
    "audit record": "Prüfeintrag",
    "Recorded": "Erfasst",
    "Reviewer": "Prüfer",
    "Reason": "Begründung",
    "erased": "gelöscht",
    "No decision yet.": "Noch keine Entscheidung.",
    "Decide": "Entscheiden",
    "Reason (required, recorded in the audit trail)":
        "Begründung (Pflicht, wird im Prüfpfad festgehalten)",
    "Back to the queue": "Zurück zur Prüfliste",
    # rules browser
    "Legal rules": "Rechtsregeln",
    "rules in": "Regeln in",
    "files": "Dateien",
    "Inline tests:": "Eingebaute Tests:",
    "passed": "bestanden",
    "failed": "fehlgeschlagen",
    "(each case through durable_rules and numpy).":
        "(jeder Fall mit durable_rules und numpy).",
    "Explain a decision": "Entscheidung erklären",
    "Check a rule file": "Regeldatei prüfen",
    "Rule files": "Regeldateien",
    "rule": "Regel",
    "rules": "Regeln",
    "actions": "Maßnahmen",
    "valid": "gültig",
    "When:": "Wenn:",
    "tests": "Tests",
    "pass": "bestanden",
    "no inline tests": "keine eingebauten Tests",
    # explain
    "what the rules decide for these facts, action and date":
        "was die Regeln für diese Fakten, Maßnahme und Datum entscheiden",
    "Cannot decide:": "Keine Entscheidung möglich:",
    "on": "am",
    "Rule": "Regel",
    "Effect": "Wirkung",
    "Citation": "Fundstelle",
    "fired": "gegriffen",
    "cannot evaluate: fail closed": "nicht auswertbar: gesperrt (fail closed)",
    "No rule fired.": "Keine Regel hat gegriffen.",
    "Caps": "Obergrenzen",
    "rule(s) did not fire": "Regel(n) haben nicht gegriffen",
    "of other jurisdictions or scopes hidden": "anderer Rechtsräume oder Bereiche ausgeblendet",
    "Facts of invoice": "Fakten der Rechnung",
    "as known on": "Stand",
    "(from the store); change any of them to see what the rules would decide.":
        "(aus dem Speicher); ändern Sie beliebige, um zu sehen, was die Regeln entscheiden.",
    "list rules of other jurisdictions too": "auch Regeln anderer Rechtsräume zeigen",
    "Facts": "Fakten",
    "(empty = unknown: the decision fails closed)":
        "(leer = unbekannt: die Entscheidung sperrt)",
    "unknown": "unbekannt",
    # rule-file check
    "validated with the rules in force and tested; nothing is saved":
        "mit den geltenden Regeln validiert und getestet; nichts wird gespeichert",
    "problem": "Problem",
    "problems": "Probleme",
    "nothing loaded:": "nichts geladen:",
    "File name": "Dateiname",
    "Rule file (YAML, the format of <code>legal_rules/rules/*.yaml</code>)":
        "Regeldatei (YAML, im Format von <code>legal_rules/rules/*.yaml</code>)",
    "Check": "Prüfen",
    # rule proposals and their approval (four eyes)
    "Proposed:": "Vorgeschlagen:",
    "A second person with the legal role approves it on the":
        "Eine zweite Person mit der Rolle legal gibt sie frei auf der Seite",
    "pending rule changes": "offene Regeländerungen",
    "Pending rule changes": "Offene Regeländerungen",
    "Propose this file": "Diese Datei vorschlagen",
    "(a second person with the legal role must approve it before it is used)":
        "(eine zweite Person mit der Rolle legal muss sie freigeben, bevor sie gilt)",
    "rules in force": "geltende Regeln",
    "Approved:": "Freigegeben:",
    "proposed by": "vorgeschlagen von",
    "rules in force now": "jetzt geltende Regeln",
    "only the legal role proposes and approves rule changes.":
        "nur die Rolle legal schlägt Regeländerungen vor und gibt sie frei.",
    "No pending rule changes.": "Keine offenen Regeländerungen.",
    "replaces the file in force": "ersetzt die geltende Datei",
    "a new file": "eine neue Datei",
    "Proposed by": "Vorgeschlagen von",
    "rule set once approved": "Regelsatz nach Freigabe",
    "Changes": "Änderungen",
    # letters
    "Letter": "Brief",
    "dated": "datiert",
    "What it claims": "Was er fordert",
    "pay by": "zahlbar bis",
    "interest rate": "Zinssatz",
    "Mark %s as sent on %s": "%s am %s als versendet erfassen",
    "the letter as it will be sent": "der Brief, wie er versendet wird",
    "Letter recorded": "Brief erfasst",
    # model
    "Model and policy": "Modell und Strategie",
    "model card, drift, the policies' evaluation and per-segment timing":
        "Modellkarte, Drift, Bewertung der Strategien und Zeitplan je Segment",
    "The report of the latest run, as <code>dunning report</code> draws it:":
        "Der Bericht des letzten Laufs, wie <code>dunning report</code> ihn zeichnet:",
    "evaluation report": "Bewertungsbericht",
    "Not beside the store yet (<code>make demo</code> or <code>dunning demo</code> writes it):":
        "Noch nicht neben dem Speicher (<code>make demo</code> oder <code>dunning demo</code> "
        "schreibt ihn):",
    # event kinds (the customer page's form)
    "payment": "Zahlung",
    "dispute opened": "Streitfall eröffnet",
    "dispute resolved": "Streitfall beigelegt",
    "conversation": "Gespräch",
    "contact attempt": "Kontaktversuch",
    "opt out": "Widerspruch",
    # rule-file editor and what-if (dunning.workspace.rule_editor)
    "Caveats": "Einschränkungen",
    "Check result": "Prüfergebnis",
    "Check validates with the rules in force and runs the inline tests; nothing is saved. "
    "Propose saves the file as a pending change only if it passes; a second person with the "
    "legal role approves it.":
        "Prüfen validiert mit den geltenden Regeln und führt die eingebetteten Tests aus; "
        "nichts wird gespeichert. Vorschlagen speichert die Datei nur dann als offene "
        "Änderung, wenn sie besteht; eine zweite Person mit der Rolle legal gibt sie frei.",
    "Current rules against the changed rules (mean over seeds; difference with its 95 % "
    "interval)": "Geltende gegen geänderte Regeln (Mittel über Seeds; Differenz mit "
                 "95-%-Intervall)",
    "Edit": "Bearbeiten",
    "Edit a rule file": "Regeldatei bearbeiten",
    "KPI": "Kennzahl",
    "New rule file": "Neue Regeldatei",
    "No rule changes recorded yet.": "Noch keine Regeländerungen protokolliert.",
    "Not checked yet.": "Noch nicht geprüft.",
    "Numbered lines": "Nummerierte Zeilen",
    "Other rules whose refusals moved:": "Andere Regeln, deren Ablehnungen sich änderten:",
    "Propose": "Vorschlagen",
    "Reload": "Neu laden",
    "Rule changes in the audit trail": "Regeländerungen im Prüfpfad",
    "Running": "Läuft",
    "The KPIs of the simulated invoices under the rules in the file, against the current "
    "rules, on the same invoices and random draws.":
        "Die Kennzahlen der simulierten Rechnungen mit den Regeln der Datei, verglichen mit "
        "den geltenden Regeln, auf denselben Rechnungen und Zufallsziehungen.",
    "The file changes no rule that decides anything (same rules as in force).":
        "Die Datei ändert keine Regel, die etwas entscheidet (dieselben Regeln wie geltend).",
    "The what-if did not run:": "Die Was-wäre-wenn-Rechnung lief nicht:",
    "What each changed rule did": "Was jede geänderte Regel bewirkte",
    "What-if": "Was wäre wenn",
    "What-if: KPIs with this change": "Was wäre wenn: Kennzahlen mit dieser Änderung",
    "changed": "geändert",
    "current": "geltend",
    "difference (95 % interval)": "Differenz (95-%-Intervall)",
    "event": "Ereignis",
    "file": "Datei",
    "in force now:": "jetzt geltend:",
    "inline tests": "eingebettete Tests",
    "invoices": "Rechnungen",
    "lines added": "Zeilen hinzugefügt",
    "lines removed": "Zeilen entfernt",
    "nothing saved:": "nichts gespeichert:",
    "old against proposed": "alt gegen vorgeschlagen",
    "queued": "wartet",
    "reason": "Begründung",
    "seeds": "Seeds",
    "verdict": "Bewertung",
    "when": "wann",
    "who": "wer",
    "better": "besser",
    "worse": "schlechter",
    "no clear change": "keine klare Änderung",
    "added": "hinzugefügt",
    "removed": "entfernt",
    "proposed": "vorgeschlagen",
    "Money collected per invoice (NPV)": "Eingang je Rechnung (Barwert)",
    "Days from invoice to payment": "Tage von Rechnung bis Zahlung",
    "DSO (days sales outstanding)": "DSO (Forderungslaufzeit in Tagen)",
    "Paid within 14 days of the first reminder": "Bezahlt binnen 14 Tagen nach der ersten "
                                                 "Mahnung",
    "Reminders per invoice": "Mahnungen je Rechnung",
    "Complaints per 1,000 invoices": "Beschwerden je 1.000 Rechnungen",
    "Agency handovers per 1,000 invoices": "Inkasso-Übergaben je 1.000 Rechnungen",
    "Unpaid at the end (write-off rate)": "Am Ende unbezahlt (Abschreibungsquote)",
    "Actions taken that the rules forbid (must be 0)": "Ausgeführte, von den Regeln verbotene "
                                                       "Aktionen (muss 0 sein)",
    "Actions asked for and refused by the rules": "Angefragte, von den Regeln abgelehnte "
                                                  "Aktionen",
}


def language(value: str | None) -> str:
    """The language of a cookie value: a known code or :data:`DEFAULT`."""
    return value if value in LANGUAGES else DEFAULT


def translator(lang: str) -> Callable[[str], str]:
    """``_(text)`` for ``lang``: the German text, or ``text`` itself (English, or no entry)."""
    if lang == "de":
        return lambda text: GERMAN.get(text, text)
    return lambda text: text
