"""The payment model's top factors (``engine.features`` names, values and LightGBM
contributions, as stored by the daily run) in plain words for the customer page.

``{"feature": "hist_share_late", "value": 0.8, "effect": 0.42}`` becomes
``"80 % of this customer's paid invoices were late — raises the risk of late payment"``.
A missing value of a history feature reads "no payment history", never NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_Fmt = Callable[[Any], str]


def _days(v: Any) -> str:
    return f"{float(v):.0f} day{'s' if round(float(v)) != 1 else ''}"


def _pct(v: Any) -> str:
    return f"{float(v) * 100:.0f} %"


def _n(v: Any) -> str:
    return f"{float(v):.0f}"


PHRASES: dict[str, _Fmt] = {
    "amount": lambda v: f"invoice amount {float(v):,.2f}",
    "amount_rel_customer": lambda v: f"the amount is {float(v):.1f} times this customer's "
                                     "usual invoice",
    "terms_days": lambda v: f"payment terms of {_days(v)}",
    "invoice_month": lambda v: f"issued in month {_n(v)}",
    "due_weekday": lambda v: "due on a " + ("Monday", "Tuesday", "Wednesday", "Thursday",
                                            "Friday", "Saturday", "Sunday")[int(v) % 7],
    "due_days_to_month_end": lambda v: f"due {_days(v)} from a month end",
    "due_days_to_quarter_end": lambda v: f"due {_days(v)} from a quarter end",
    "holidays_in_terms": lambda v: f"{_n(v)} bank holiday(s) within the payment terms",
    "days_due_to_milestone": lambda v: f"project milestone {_days(v)} after the due date",
    "dispute_open": lambda v: "the invoice is disputed" if v else "no open dispute",
    "age_days": lambda v: f"issued {_days(v)} ago",
    "days_overdue": lambda v: f"{_days(v)} overdue" if float(v) > 0 else "not yet overdue",
    "paid_share": lambda v: f"{_pct(v)} of the amount already paid",
    "n_reminders": lambda v: f"{_n(v)} reminder(s) sent",
    "days_since_last_action": lambda v: f"last reminder {_days(v)} ago",
    "tenure_days": lambda v: f"customer for {float(v) / 365:.1f} years",
    "hist_n_issued": lambda v: f"{_n(v)} earlier invoices",
    "hist_n_paid": lambda v: f"{_n(v)} earlier invoices paid",
    "hist_n_late": lambda v: f"{_n(v)} earlier invoices paid late",
    "hist_share_late": lambda v: f"{_pct(v)} of this customer's paid invoices were late",
    "hist_mean_days_late": lambda v: f"paid {_days(v)} late on average",
    "hist_mean_days_late_last3": lambda v: f"the last 3 invoices were paid {_days(v)} late "
                                           "on average",
    "hist_days_late_trend": lambda v: ("paying later over time" if float(v) > 0 else
                                       "paying earlier over time"),
    "hist_last_days_late": lambda v: (f"the last invoice was paid {_days(v)} late"
                                      if float(v) > 0 else "the last invoice was paid on time"),
    "hist_max_days_late_last5": lambda v: f"at most {_days(v)} late over the last 5 invoices",
    "hist_mean_days_to_pay": lambda v: f"pays {_days(v)} after the invoice date on average",
    "hist_mean_amount": lambda v: f"usual invoice amount {float(v):,.2f}",
    "hist_days_since_last_payment": lambda v: f"last payment {_days(v)} ago",
    "hist_n_open": lambda v: f"{_n(v)} other open invoice(s)",
    "hist_open_amount": lambda v: f"{float(v):,.2f} open in other invoices",
    "hist_share_disputed": lambda v: f"{_pct(v)} of earlier invoices were disputed",
    "segment": lambda v: f"segment {v}",
    "industry": lambda v: f"industry {v}",
    "jurisdiction": lambda v: f"customer in {v}",
    "customer_type": lambda v: "a consumer" if v == "b2c" else "a business",
    "currency": lambda v: f"billed in {v}",
    "last_channel": lambda v: f"last reminder by {str(v).replace('_', ' ')}",
}


def _missing(feature: str) -> str:
    if feature.startswith("hist_"):
        return "no payment history"
    if feature in ("days_since_last_action", "last_channel"):
        return "no reminder yet"
    if feature == "days_due_to_milestone":
        return "no project milestone"
    return f"{feature.replace('_', ' ')} unknown"


def factor_words(factor: dict[str, Any]) -> str:
    """One stored factor ``{feature, value, effect}`` as a sentence."""
    feature, value = str(factor.get("feature", "")), factor.get("value")
    missing = value is None or (isinstance(value, float) and value != value) or value == ""
    phrase = PHRASES.get(feature)
    if missing:
        text = _missing(feature)
    elif phrase is None:
        text = f"{feature.replace('_', ' ')} = {value}"
    else:
        try:
            text = phrase(value)
        except (TypeError, ValueError):
            text = f"{feature.replace('_', ' ')} = {value}"
    effect = float(factor.get("effect") or 0.0)
    if effect > 0:
        return f"{text} — raises the risk of late payment"
    if effect < 0:
        return f"{text} — lowers the risk of late payment"
    return text
