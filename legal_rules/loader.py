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
from legal_rules.facts import FACTS
from legal_rules.model import (
    CAP_SCALES,
    All,
    Always,
    AnyOf,
    Cap,
    Compare,
    Condition,
    Not,
    Rate,
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


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records lines, keeps dates as strings and rejects duplicate keys."""


# Dates stay strings so the loader (not YAML) checks them and reports a bad date by line.
_LineLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
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


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _line_of(doc: Any, path: Iterable[Any]) -> int:
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


def _field(path: Iterable[Any]) -> str:
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
        self.problems.append(Problem(self.file, _line_of(self.doc, path), _field(path), message))

    def date(self, path: Sequence[Any], text: str | None) -> date | None:
        if text is None:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            self.problem(path, f"expected a real date YYYY-MM-DD, found {text!r}")
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
            name=node.get("name", ""), source=Source(self.file, _line_of(self.doc, path)),
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
            cap=cap, tests=tests, source=Source(self.file, _line_of(self.doc, path)),
        )

    def rate(self, i: int, node: dict[str, Any]) -> Rate:
        path: list[Any] = ["rates", i]
        valid_from = self.date([*path, "valid_from"], node["valid_from"])
        valid_to = self.date([*path, "valid_to"], node.get("valid_to"))
        return Rate(name=node["name"], jurisdiction=node["jurisdiction"],
                    value=float(node["value"]), valid_from=valid_from or date.min,
                    valid_to=valid_to, citation=node["citation"], unit=node.get("unit", "percent"),
                    source=Source(self.file, _line_of(self.doc, path)))


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
                        file, _line_of(doc, [*path, key]), _field([*path, key]),
                        f"unknown field {key!r}; expected one of {', '.join(allowed)}"))
            continue
        problems.append(Problem(file, _line_of(doc, path), _field(path), best.message))
    return sorted(problems, key=lambda p: p.line)


def parse_file(path: Path) -> tuple[list[Rule], list[Rate], list[Problem], bytes]:
    """Parse and check one rule file; returns rules, rates, problems and the raw bytes."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return [], [], [Problem(file, 0, "", f"cannot read: {exc.strerror}")], b""
    try:
        doc = yaml.load(raw.decode("utf-8"), Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except UnicodeDecodeError:
        return [], [], [Problem(file, 1, "", "expected UTF-8 text")], raw
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 1
        return [], [], [Problem(file, line, "", f"invalid YAML: {exc.problem}")], raw
    if doc is None:
        doc = LineDict()
        doc.line, doc.key_lines = 1, {}
    problems = _schema_problems(file, doc)
    if problems:
        return [], [], problems, raw
    parser = _FileParser(file, doc)
    rules = [parser.rule(i, r) for i, r in enumerate(doc.get("rules", []))]
    rates = [parser.rate(i, r) for i, r in enumerate(doc.get("rates", []))]
    return rules, rates, parser.problems, raw


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
    rates: list[Rate] = []
    problems: list[Problem] = []
    digest = hashlib.sha256()
    for f in files:
        f_rules, f_rates, f_problems, raw = parse_file(f)
        rules += f_rules
        rates += f_rates
        problems += f_problems
        digest.update(f.name.encode() + b"\0" + hashlib.sha256(raw).digest())
    problems += _cross_file_problems(rules, rates)
    if problems:
        raise RuleFileError(problems)
    if not files:
        raise RuleFileError([Problem(str(paths), 0, "", "no rule files (*.yaml) found")])
    return RuleSet(rules=tuple(rules), rates=tuple(rates), hash=digest.hexdigest(),
                   files=tuple(str(f) for f in files))


def _cross_file_problems(rules: list[Rule], rates: list[Rate]) -> list[Problem]:
    problems = []
    seen: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in seen:
            first = seen[rule.id].source
            problems.append(Problem(rule.source.file, rule.source.line, "id",
                                    f"duplicate rule id {rule.id!r} (first defined at {first})"))
        else:
            seen[rule.id] = rule
    known_rates = {(r.name, r.jurisdiction) for r in rates}
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
                                    f"unknown rate {name}({jur}); expected one defined in a "
                                    f"rates: section ({known})"))
    return problems


def _fmt(key: tuple[str, str]) -> str:
    return f"{key[0]}({key[1]})"
