"""What the legal layer knows: the values a string fact may take, and the closest one to a typo.

Fail closed: a value the rules do not know (a jurisdiction no rule covers, an industry, a
currency or a region not listed here, a fact name that is not a fact) blocks every action of
the decision, with a message naming the value and the closest known one
(``unknown jurisdiction 'UK'; did you mean 'GB'?``). Both evaluators call
:meth:`Vocabulary.value_ok` on each distinct value, so they agree on what is known.

Vocabularies:

* ``jurisdiction``: the countries some rule of the rule set covers (explicit codes and groups
  such as ``EU``); a country no rule names is unknown, whatever rules with ``*`` say.
* ``region``: ``""`` (no subdivision) or a subdivision code of the jurisdiction as the
  ``holidays`` package knows it (German Länder, US states, ...), upper case; the same
  calendar data gives ``is_bank_holiday``. Without a known jurisdiction: any such code.
* ``industry``: :data:`INDUSTRIES`; ``currency``: :data:`CURRENCIES`;
  ``customer_type``: ``b2b`` / ``b2c`` (:data:`legal_rules.facts.FACT_CHOICES`).

To add a value (a new industry, say) edit the tuple here and describe it in
``docs/legal-rules.md``; rules naming it then pass ``dunning rules check``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import lru_cache

from engine.calendar import regions_of
from legal_rules.facts import FACT_CHOICES, FACTS
from legal_rules.messages import FactName, Message

# Industries a debtor may have. "other" is a deliberate answer ("none of the special
# industries"), unlike "" or a misspelling, which are unknown and block.
INDUSTRIES: tuple[str, ...] = (
    "agriculture", "construction", "education", "energy", "finance", "healthcare",
    "hospitality", "logistics", "manufacturing", "media", "other", "public_sector",
    "real_estate", "retail", "services", "software", "telecommunications", "wholesale",
)
# ISO 4217 codes of the currencies of Europe and the main trading partners.
CURRENCIES: tuple[str, ...] = (
    "AUD", "BGN", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HUF", "ISK", "JPY",
    "NOK", "PLN", "RON", "SEK", "USD",
)
# Keys a facts mapping may carry besides facts: they identify the case, they are not facts.
META_KEYS: frozenset[str] = frozenset({"invoice_id", "as_of", "action"})
# Codes people write that are not ISO 3166-1 alpha-2 (EL is the EU's code for Greece).
ALIASES: dict[str, dict[str, str]] = {"jurisdiction": {"UK": "GB", "EL": "GR"}}
FIXED: dict[str, tuple[str, ...]] = {"industry": INDUSTRIES, "currency": CURRENCIES,
                                     **FACT_CHOICES}


def closest(value: object, known: Iterable[str], name: str = "") -> str | None:
    """The known value ``value`` was most likely meant to be, or ``None``.

    An alias (UK -> GB), then the same text in another case or with blanks trimmed, then the
    nearest spelling (:func:`difflib.get_close_matches`, cutoff 0.6).
    """
    if not isinstance(value, str):
        return None
    return _closest(value, tuple(sorted(set(known))), name)


@lru_cache(maxsize=4096)
def _closest(value: str, known: tuple[str, ...], name: str) -> str | None:
    """:func:`closest` on a sorted tuple (cached: the same mistakes recur in a batch)."""
    alias = ALIASES.get(name, {}).get(value.strip().upper())
    if alias is not None and alias in known:
        return alias
    folded = {k.casefold(): k for k in known}
    hit = folded.get(value.strip().casefold())
    if hit is not None:
        return hit
    near = difflib.get_close_matches(value, known, n=1, cutoff=0.6)
    return near[0] if near else None


def suggestion(value: object, known: Iterable[str], name: str = "") -> Message | str:
    """``"; did you mean 'GB'?"`` or ``"; known: a, b, c, ..."`` (at most 12 listed), as a
    :class:`~legal_rules.messages.Message` (``""`` when nothing is known)."""
    known = sorted(set(known))
    hit = closest(value, known, name)
    if hit is not None:
        return Message("hint.did_you_mean", value=hit)
    shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    return Message("hint.known", values=shown) if known else ""


def unknown_fact_message(key: str) -> Message:
    return Message("input.unknown_fact", name=key, hint=suggestion(key, FACTS))


class Vocabulary:
    """The known values of a rule set's string facts (see the module docstring).

    Parameters
    ----------
    jurisdictions : the countries the rules cover (``RuleSet.jurisdictions``).
    """

    def __init__(self, jurisdictions: Iterable[str]):
        self.jurisdictions = frozenset(jurisdictions)
        self._all_regions: frozenset[str] | None = None

    def known(self, name: str) -> tuple[str, ...] | frozenset[str] | None:
        """The known values of fact ``name`` (``None``: any value of the right type)."""
        if name == "jurisdiction":
            return self.jurisdictions
        return FIXED.get(name)

    def all_regions(self) -> frozenset[str]:
        if self._all_regions is None:
            self._all_regions = frozenset().union(*(regions_of(j) for j in self.jurisdictions))
        return self._all_regions

    def value_ok(self, name: str, value: str) -> bool:
        """Whether a string ``value`` (already of the right type) is known for ``name``.

        ``region`` is checked against every covered jurisdiction here; the pair check is
        :meth:`region_ok`.
        """
        if name == "region":
            return value == "" or value in self.all_regions()
        known = self.known(name)
        return known is None or value in known

    def region_ok(self, jurisdiction: str | None, region: str) -> bool:
        """A known region of a known ``jurisdiction`` (any covered one when it is None)."""
        if region == "":
            return True
        if jurisdiction is None or jurisdiction not in self.jurisdictions:
            return region in self.all_regions()
        return region in regions_of(jurisdiction)

    def value_message(self, name: str, value: object,
                      jurisdiction: str | None = None) -> Message:
        """``unknown jurisdiction 'UK'; did you mean 'GB'?`` for an unknown ``value`` (a
        :class:`~legal_rules.messages.Message`: English as text, German by ``render``)."""
        hint = self.hint(name, value, jurisdiction)
        if name == "region":
            where = (Message("input.region_of", jurisdiction=jurisdiction)
                     if jurisdiction in self.jurisdictions else "")
            return Message("input.unknown_region", value=value, where=where, hint=hint)
        if name == "jurisdiction" and isinstance(value, str) and len(value) == 2 \
                and value.isupper() and value not in ALIASES["jurisdiction"]:
            return Message("input.unknown_jurisdiction", value=value, hint=hint)
        return Message("input.unknown_value", label=FactName(name), value=value, hint=hint)

    def hint(self, name: str, value: object, jurisdiction: str | None = None
             ) -> Message | str:
        """The closest known value of fact ``name`` (or the known ones) as a hint."""
        if name == "region":
            pool = regions_of(jurisdiction) if jurisdiction in self.jurisdictions \
                else self.all_regions()
            return suggestion(value, pool, name)
        return suggestion(value, self.known(name) or (), name)
