"""Load and validate rule files: JSON Schema, then fact names/types, dates, ids and rates.

Every problem names the file, the LINE and the field, and says what was expected. Loading is
all-or-nothing: if any file has a problem, :func:`load_rules` raises :class:`RuleFileError`
(an :class:`engine.errors.InputError`) listing every problem, and no rules are returned.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from engine.contract import Action
from engine.errors import InputError
from legal_rules.facts import FACTS, fact_problem
from legal_rules.known import ALIASES, FIXED, closest, suggestion
from legal_rules.model import (
    CAP_SCALES,
    All,
    Always,
    AnyOf,
    Approval,
    Cap,
    Compare,
    Condition,
    Not,
    Rate,
    RateSeries,
    Rule,
    RuleSet,
    Source,
    TestCase,
    parse_cap_expression,
)

PACKAGED = "packaged"  # CLI alias for the packaged rules directory


def packaged_rules_dir() -> Path:
    """Directory of the rule files shipped with dunning."""
    return Path(str(resources.files("legal_rules") / "rules"))


@lru_cache(maxsize=1)
def rule_schema() -> dict[str, Any]:
    """The JSON Schema of a rule file (``legal_rules/rule.schema.json``)."""
    return json.loads((resources.files("legal_rules") / "rule.schema.json").read_text("utf-8"))


# --- errors ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field or '(file)'}: {self.message}"


class RuleFileError(InputError):
    """One or more rule files are invalid; ``problems`` lists each with file, line and field."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in rule files (nothing loaded):"
        super().__init__("\n".join([head, *map(str, self.problems)]))


# --- YAML with line numbers --------------------------------------------------------------------


class LineDict(dict):
    """A YAML mapping that remembers its own line and each key's line (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class LineList(list):
    line: int = 0
    item_lines: list[int]


class LineLoader(yaml.SafeLoader):
    """SafeLoader that records lines, keeps dates as strings and rejects duplicate keys
    (also used for the creditor profile, ``dunning.ops.creditor``)."""


# Dates stay strings so the loader (not YAML) checks them and reports a bad date by line.
LineLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


def _construct_mapping(loader: LineLoader, node: yaml.MappingNode) -> LineDict:
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise _DuplicateKey(problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: LineLoader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


class _FastLineLoader(getattr(yaml, "CSafeLoader", LineLoader)):  # type: ignore[misc]
    """:class:`LineLoader` on libyaml's C parser (faster; the same documents, lines
    and duplicate-key check). Only for documents that parse: on any error the file is parsed
    again with :class:`LineLoader`, so a message never depends on libyaml's wording."""


_FastLineLoader.yaml_implicit_resolvers = LineLoader.yaml_implicit_resolvers
_FastLineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_FastLineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG,
                                _construct_sequence)


def load_lined_yaml(text: str) -> Any:
    """``text`` parsed into :class:`LineDict` / :class:`LineList` (lines recorded, dates kept
    as strings, duplicate keys rejected); raises :class:`yaml.YAMLError` as
    :class:`LineLoader` words it."""
    try:
        return yaml.load(text, Loader=_FastLineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError:
        return yaml.load(text, Loader=LineLoader)  # noqa: S506 - raises with its own wording


def line_of(doc: Any, path: Iterable[Any]) -> int:
    """Line of the deepest node on ``path`` that we know a line for."""
    line, node = getattr(doc, "line", 1), doc
    for step in path:
        if isinstance(node, LineDict) and step in node:
            line = node.key_lines.get(step, line)
            node = node[step]
        elif isinstance(node, LineList) and isinstance(step, int) and step < len(node):
            line = node.item_lines[step]
            node = node[step]
        else:
            break
        line = max(line, getattr(node, "line", 0)) if isinstance(node, LineDict) else line
    return line


def field_path(path: Iterable[Any]) -> str:
    """``["rules", 3, "when"]`` -> ``rules[3].when``: how an error names a field."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


# --- file -> objects ---------------------------------------------------------------------------


class _FileParser:
    """Turns one parsed, schema-valid YAML document into rules and rates, collecting problems."""

    def __init__(self, file: str, doc: LineDict):
        self.file, self.doc = file, doc
        self.problems: list[Problem] = []

    def problem(self, path: Sequence[Any], message: str) -> None:
        self.problems.append(Problem(self.file, line_of(self.doc, path), field_path(path), message))

    def date(self, path: Sequence[Any], text: str | None) -> date | None:
        if text is None:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            self.problem(path, f"{text!r} is not a date of the calendar; dates are written "
                         "2026-12-31 (year-month-day)")
            return None

    def condition(self, path: list[Any], node: dict[str, Any]) -> Condition:
        if "all" in node:
            return All(tuple(self.condition([*path, "all", i], c)
                             for i, c in enumerate(node["all"])))
        if "any" in node:
            return AnyOf(tuple(self.condition([*path, "any", i], c)
                               for i, c in enumerate(node["any"])))
        if "not" in node:
            return Not(self.condition([*path, "not"], node["not"]))
        name, op, value = node["fact"], node["op"], node["value"]
        if name not in FACTS:
            self.problem([*path, "fact"], f"unknown fact {name!r}; expected one of "
                         f"{', '.join(sorted(FACTS))} (legal_rules/facts.py)")
            return Compare(name, op, value)
        kind = FACTS[name].type
        if op in ("in", "not_in"):
            if not isinstance(value, list):
                self.problem([*path, "value"], f"op {op} expects a list of values")
                return Compare(name, op, (value,))
            for i, v in enumerate(value):
                self._check_literal([*path, "value", i], name, kind, v)
            return Compare(name, op, tuple(value))
        if isinstance(value, list):
            self.problem([*path, "value"], f"op {op} expects one value, found a list "
                         "(use in / not_in for lists)")
            return Compare(name, op, tuple(value))
        if op not in ("eq", "ne") and kind in ("bool", "str"):
            self.problem([*path, "op"], f"op {op} does not apply to {kind} fact {name!r}; "
                         "expected eq, ne, in or not_in")
        self._check_literal([*path, "value"], name, kind, value)
        if kind == "float" and isinstance(value, int):
            value = float(value)
        return Compare(name, op, value)

    def _check_literal(self, path: list[Any], name: str, kind: str, v: Any) -> None:
        ok = {
            "int": isinstance(v, int) and not isinstance(v, bool),
            "float": isinstance(v, (int, float)) and not isinstance(v, bool),
            "bool": isinstance(v, bool),
            "str": isinstance(v, str),
        }.get(kind, False)
        if not ok:
            self.problem(path, f"fact {name!r} is {kind}; found {type(v).__name__} {v!r}")
        elif kind == "str":
            self._check_known(path, name, v)

    def _check_known(self, path: list[Any], name: str, v: str) -> None:
        """A string a rule compares a fact with must be a value the fact can take."""
        known = FIXED.get(name)
        if name == "jurisdiction":
            alias = ALIASES["jurisdiction"].get(v)
            why = fact_problem(name, v)
            if alias:
                self.problem(path, f"{v!r} is not an ISO 3166-1 code; did you mean {alias!r}?")
            elif why:
                self.problem(path, f"{why}{suggestion(v, [v.upper()])}")
        elif name == "region" and v != v.upper():
            self.problem(path, f"regions are written in capitals, found {v!r}; did you mean "
                         f"{v.upper()!r}?")
        elif known is not None and v not in known:
            self.problem(path, f"{v!r} is not a value fact {name!r} takes{suggestion(v, known)}"
                         " (values are case-sensitive; legal_rules/known.py lists them)")

    def cap(self, path: list[Any], node: dict[str, Any]) -> Cap:
        value = node["value"]
        if isinstance(value, str) and value not in CAP_SCALES:
            try:
                parse_cap_expression(value)
            except ValueError as exc:
                self.problem([*path, "value"], str(exc))
        return Cap(name=node["name"], value=value, unit=node.get("unit", ""))

    def test_case(self, path: list[Any], node: dict[str, Any], rule_actions: tuple[str, ...],
                  is_cap: bool) -> TestCase:
        for key, v in node["facts"].items():
            if key not in FACTS:
                self.problem([*path, "facts", key], f"unknown fact {key!r} in test case; "
                             f"expected one of {', '.join(sorted(FACTS))}")
            elif isinstance(v, (list, dict)):
                self.problem([*path, "facts", key], "expected a single value or null")
        action = node.get("action")
        if action is not None and action not in rule_actions:
            self.problem([*path, "action"], f"action {action!r} is not in this rule's applies_to "
                         f"({', '.join(rule_actions)})")
        if "cap_value" in node and not is_cap:
            self.problem([*path, "cap_value"], "cap_value is only for rules with effect: cap")
        return TestCase(
            facts=dict(node["facts"]), expect=node["expect"], action=action,
            as_of=self.date([*path, "as_of"], node.get("as_of")), decision=node.get("decision"),
            cap_value=node.get("cap_value"), has_cap_value="cap_value" in node,
            name=node.get("name", ""), source=Source(self.file, line_of(self.doc, path)),
        )

    def rule(self, i: int, node: dict[str, Any]) -> Rule:
        path: list[Any] = ["rules", i]
        if node["jurisdiction"] == "UK":
            self.problem([*path, "jurisdiction"], "use GB (ISO 3166-1) for the United Kingdom")
        effect = node["effect"]
        if effect == "cap" and "cap" not in node:
            self.problem([*path, "effect"], "effect: cap needs a cap: {name, value} field")
        if effect != "cap" and "cap" in node:
            self.problem([*path, "cap"], f"cap is only allowed with effect: cap (found {effect})")
        valid_from = self.date([*path, "valid_from"], node["valid_from"])
        valid_to = self.date([*path, "valid_to"], node.get("valid_to"))
        if valid_from and valid_to and valid_to < valid_from:
            self.problem([*path, "valid_to"], f"valid_to {valid_to} is before valid_from "
                         f"{valid_from}")
        when = self.condition([*path, "when"], node["when"]) if "when" in node else Always()
        cap = self.cap([*path, "cap"], node["cap"]) if "cap" in node else None
        actions = tuple(node["applies_to"])
        tests = tuple(self.test_case([*path, "tests", j], t, actions, effect == "cap")
                      for j, t in enumerate(node["tests"]))
        expects = {t.expect for t in tests}
        if expects != {"fires", "does_not_fire"}:
            self.problem([*path, "tests"], "expected at least one case with expect: fires and "
                         "one with expect: does_not_fire")
        return Rule(
            id=node["id"], title=node["title"], jurisdiction=node["jurisdiction"],
            scope=node["scope"], applies_to=tuple(Action.from_channel(a) for a in actions),
            when=when, effect=effect, citation=node["citation"],
            valid_from=valid_from or date.min, valid_to=valid_to, rationale=node["rationale"],
            cap=cap, tests=tests, source=Source(self.file, line_of(self.doc, path)),
            kind=node["kind"], approved_by=self.approval([*path, "approved_by"],
                                                         node.get("approved_by")),
        )

    def approval(self, path: list[Any], node: dict[str, Any] | None) -> Approval | None:
        if node is None:
            return None
        day = self.date([*path, "date"], node["date"])
        return Approval(name=node["name"], date=day or date.min, role=node.get("role", ""),
                        note=node.get("note", ""))

    def series(self, i: int, node: dict[str, Any]) -> RateSeries:
        return RateSeries(name=node["name"], jurisdiction=node["jurisdiction"],
                          citation=node["citation"], publisher=node["publisher"],
                          note=node.get("note", ""),
                          source=Source(self.file, line_of(self.doc, ["rate_series", i])))

    def rate(self, i: int, node: dict[str, Any]) -> Rate:
        path: list[Any] = ["rates", i]
        valid_from = self.date([*path, "valid_from"], node["valid_from"])
        valid_to = self.date([*path, "valid_to"], node.get("valid_to"))
        return Rate(name=node["name"], jurisdiction=node["jurisdiction"],
                    value=float(node["value"]), valid_from=valid_from or date.min,
                    valid_to=valid_to, citation=node["citation"], unit=node.get("unit", "percent"),
                    source=Source(self.file, line_of(self.doc, path)))


# PyYAML's wording -> what to do about it (first match wins)
_YAML_HINTS = (
    ("duplicate key", None),
    ("expected <block end>", "the indentation does not line up with the lines above; "
     "indent with spaces so that this line starts where its neighbours start"),
    ("cannot start any token", "a tab or a special character starts this line; indent with "
     "spaces and put text that starts with @, ` or % in quotes"),
    ("mapping values are not allowed", "a ':' where none is expected: either this line "
     "is indented further than the lines above (line them up), or a value holds ': ' and "
     "needs quotes, e.g. title: \"Note: ...\""),
    ("could not find expected ':'", "a line without 'key: value' (or an unclosed quote "
     "above it)"),
    ("unexpected end of stream", "a quote or bracket opened here is never closed"),
    ("expected ',' or ']'", "a [list] is not closed with ]"),
    ("expected ',' or '}'", "a {mapping} is not closed with }"),
    ("expected alphabetic or numeric character", "'*' or '&' starts a YAML alias; write "
     "\"*\" in quotes (jurisdiction: \"*\")"),
    ("found undefined alias", "'*' starts a YAML alias; write \"*\" in quotes "
     "(jurisdiction: \"*\")"),
)


def yaml_message(exc: yaml.MarkedYAMLError) -> str:
    """A plain-language message for a YAML syntax error (the parser's wording in brackets)."""
    problem = str(exc.problem or exc)
    for needle, hint in _YAML_HINTS:
        if needle in problem:
            return problem if hint is None else f"{hint} (YAML: {problem})"
    return f"not valid YAML here: {problem}"


def _schema_message(err: Any) -> str:
    """Plain language for a JSON Schema error: dates, choices, missing fields, types."""
    field = str(err.absolute_path[-1]) if err.absolute_path else ""
    if err.validator == "pattern" and "YYYY-MM-DD" in str(err.schema.get("description", "")):
        return f"dates are written 2026-12-31 (year-month-day), found {err.instance!r}"
    if err.validator == "enum":
        choices = [str(c) for c in err.validator_value]
        hint = closest(str(err.instance), choices) if isinstance(err.instance, str) else None
        more = f"; did you mean {hint!r}?" if hint else ""
        return f"{err.instance!r} is not allowed; write one of {', '.join(choices)}{more}"
    if err.validator == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        if "kind" in missing:
            return ("every rule says whether it is law or company policy: add "
                    "'kind: law' or 'kind: company_policy'"
                    + (f" (also missing: {', '.join(m for m in missing if m != 'kind')})"
                       if len(missing) > 1 else ""))
        return f"missing field(s) {', '.join(missing)}"
    if err.validator == "type":
        want = err.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        words = {"string": "text", "array": "a list [..]", "object": "a mapping {..}",
                 "number": "a number", "boolean": "true or false", "null": "nothing"}
        for k, v in words.items():
            want = want.replace(k, v)
        return f"{field or 'value'}: expected {want}, found {err.instance!r}"
    if err.validator == "pattern" and field == "id":
        return (f"rule ids are lower case letters, digits, '.', '_' or '-' "
                f"(e.g. de.no_fee), found {err.instance!r}")
    if err.validator == "pattern" and field == "jurisdiction":
        return (f"a jurisdiction is a 2-letter ISO code in capitals (DE, GB), EU or \"*\", "
                f"found {err.instance!r}")
    return err.message


def _schema_problems(file: str, doc: Any) -> list[Problem]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(rule_schema())
    problems = []
    for err in validator.iter_errors(doc):
        # For oneOf/anyOf (conditions) report the most specific sub-error.
        best = jsonschema.exceptions.best_match([err]) if err.context else err
        path = list(best.absolute_path)
        if best.validator == "additionalProperties" and isinstance(best.instance, dict):
            allowed = list(best.schema.get("properties", {}))
            for key in best.instance:
                if key not in allowed:
                    problems.append(Problem(
                        file, line_of(doc, [*path, key]), field_path([*path, key]),
                        f"unknown field {key!r}; expected one of {', '.join(allowed)}"))
            continue
        problems.append(Problem(file, line_of(doc, path), field_path(path), _schema_message(best)))
    return sorted(problems, key=lambda p: p.line)


def parse_file(path: Path) -> tuple[list[Rule], list[Rate | RateSeries], list[Problem], bytes]:
    """Parse and check one rule file; returns rules, rates (periods and declared series),
    problems and the raw bytes."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return [], [], [Problem(file, 0, "", f"cannot read: {exc.strerror}")], b""
    parse = _parse_cached if len(raw) <= _CACHED_FILE_BYTES else _parse_bytes
    rules, rates, problems = parse(file, raw)
    return list(rules), list(rates), list(problems), raw


def _parse_bytes(file: str, raw: bytes) -> tuple[tuple[Rule, ...], tuple[Rate | RateSeries, ...],
                                                 tuple[Problem, ...]]:
    try:
        text = raw.decode("utf-8")
        doc = load_lined_yaml(text)
    except UnicodeDecodeError:
        return (), (), (Problem(file, 1, "", "expected UTF-8 text"),)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 1
        return (), (), (Problem(file, line, "", yaml_message(exc)),)
    except yaml.reader.ReaderError as exc:  # a control character: no mark, a position
        line = text.count("\n", 0, exc.position) + 1
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else exc.character
        return (), (), (Problem(file, line, "", f"character {char} is not allowed in a rule "
                                "file (a control character); remove it"),)
    if doc is None:
        doc = LineDict()
        doc.line, doc.key_lines = 1, {}
    problems = _schema_problems(file, doc)
    if problems:
        return (), (), tuple(problems)
    parser = _FileParser(file, doc)
    rules = [parser.rule(i, r) for i, r in enumerate(doc.get("rules", []))]
    rates: list[Rate | RateSeries] = [parser.rate(i, r)
                                      for i, r in enumerate(doc.get("rates", []))]
    rates += [parser.series(i, r) for i, r in enumerate(doc.get("rate_series", []))]
    return tuple(rules), tuple(rates), tuple(parser.problems)


# Why a cache: a process loads the same files many times (every simulator, evaluator and
# request builds its rule set); the key is the file's name and exact bytes, and what comes
# back is frozen, so an edited file is parsed again and nothing parsed is shared mutably.
# Bounded in bytes too (files are untrusted): at most 128 files of up to 256 KB are kept.
_CACHED_FILE_BYTES = 256_000
_parse_cached = lru_cache(maxsize=128)(_parse_bytes)


def rule_files(paths: str | Path | Sequence[str | Path] | None = None) -> list[Path]:
    """Expand ``paths`` (files or directories; ``"packaged"`` = the shipped rules) to files."""
    if paths is None:
        paths = [packaged_rules_dir()]
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for p in paths:
        p = packaged_rules_dir() if str(p) == PACKAGED else Path(p)
        if p.is_dir():
            files.extend(sorted([*p.glob("*.yaml"), *p.glob("*.yml")]))
        elif p.is_file():
            files.append(p)
        else:
            raise RuleFileError([Problem(str(p), 0, "", "no such file or directory")])
    return files


def load_rules(paths: str | Path | Sequence[str | Path] | None = None) -> RuleSet:
    """Load, validate and freeze rules from ``paths`` (default: the packaged rules).

    Parameters
    ----------
    paths : file, directory, ``"packaged"``, or a sequence of them. Directories contribute
        their ``*.yaml``/``*.yml`` files sorted by name.

    Raises
    ------
    RuleFileError
        Listing every problem (file:line: field: message); nothing is loaded then.
    """
    files = rule_files(paths)
    rules: list[Rule] = []
    rates: list[Rate | RateSeries] = []
    problems: list[Problem] = []
    digest = hashlib.sha256()
    for f in files:
        f_rules, f_rates, f_problems, raw = parse_file(f)
        rules += f_rules
        rates += f_rates
        problems += f_problems
        digest.update(f.name.encode() + b"\0" + hashlib.sha256(raw).digest())
    series = [r for r in rates if isinstance(r, RateSeries)]
    periods = [r for r in rates if isinstance(r, Rate)]
    problems += _cross_file_problems(rules, periods, series)
    if problems:
        raise RuleFileError(problems)
    if not files:
        raise RuleFileError([Problem(str(paths), 0, "", "no rule files (*.yaml) found")])
    return RuleSet(rules=tuple(rules), rates=tuple(periods), hash=digest.hexdigest(),
                   files=tuple(str(f) for f in files), series=tuple(series))


def _cross_file_problems(rules: list[Rule], rates: list[Rate],
                         series: list[RateSeries] = ()) -> list[Problem]:
    problems = []
    seen: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in seen:
            first = seen[rule.id].source
            problems.append(Problem(rule.source.file, rule.source.line, "id",
                                    f"duplicate rule id {rule.id!r} (first defined at {first})"))
        else:
            seen[rule.id] = rule
    problems += _rate_overlaps(rates)
    known_rates = {(r.name, r.jurisdiction) for r in [*rates, *series]}
    for rule in rules:
        if rule.cap is None or not isinstance(rule.cap.value, str) or rule.cap.value in CAP_SCALES:
            continue
        try:
            name, jur, _ = parse_cap_expression(rule.cap.value)
        except ValueError:
            continue  # already reported
        if name is not None and (name, jur) not in known_rates:
            known = ", ".join(sorted(map(_fmt, known_rates)))
            problems.append(Problem(rule.source.file, rule.source.line, "cap.value",
                                    f"unknown rate {name}({jur}); expected one declared in a "
                                    f"rate_series: or rates: section ({known})"))
    return problems


def _rate_overlaps(rates: list[Rate]) -> list[Problem]:
    """Two periods of the same rate that share a day: which figure applies is undefined."""
    problems = []
    by_key: dict[tuple[str, str], list[Rate]] = {}
    for r in rates:
        by_key.setdefault((r.name, r.jurisdiction), []).append(r)
    for key, periods in by_key.items():
        periods.sort(key=lambda r: r.valid_from)
        for a, b in zip(periods, periods[1:], strict=False):
            if a.valid_to is None or b.valid_from <= a.valid_to:
                until = a.valid_to.isoformat() if a.valid_to else "open end"
                problems.append(Problem(
                    b.source.file, b.source.line, "valid_from",
                    f"{_fmt(key)} {b.value} from {b.valid_from} overlaps the period "
                    f"{a.valid_from}..{until} ({a.value}) at {a.source}; end the earlier "
                    f"period the day before (valid_to) so each day has one rate"))
    return problems


def layered_files(paths: Sequence[str | Path] | None, packaged: bool = True) -> list[Path]:
    """Rule files: the packaged ones (with ``packaged``), then ``paths``' files; a file in
    ``paths`` named like a packaged one (``de.yaml``) replaces it instead of adding to it.

    ``"packaged"`` among ``paths`` means ``packaged=True``. This is how ``rules check/test/
    explain/list`` and ``what-if --rule-file`` combine a team's files with the shipped ones.
    """
    chosen = [p for p in paths or [] if str(p) != PACKAGED]
    packaged = packaged or len(chosen) < len(paths or []) or not chosen
    team = rule_files(chosen) if chosen else []
    if not packaged:
        return team
    names = {f.name for f in team}
    shipped = rule_files()
    team = [f for f in team if f.resolve() not in {s.resolve() for s in shipped}]
    return [f for f in shipped if f.name not in names] + team


def replaced_files(files: Sequence[str | Path]) -> list[str]:
    """Names of packaged rule files that ``files`` (from :func:`layered_files`) replace."""
    shipped = {f.name: f.resolve() for f in rule_files()}
    return sorted(Path(f).name for f in files
                  if Path(f).name in shipped and Path(f).resolve() != shipped[Path(f).name])


def _fmt(key: tuple[str, str]) -> str:
    return f"{key[0]}({key[1]})"
