"""Rule files from the browser: check a pasted or edited file with the rules in force, run
its inline tests, propose it (four eyes, :mod:`dunning.ops.rule_approval`). One code path for
the check page, the editor (:mod:`dunning.workspace.rule_editor`) and the rules page.

``ws`` is the ``dunning.workspace.routes.Workspace`` (its ``state.store``, ``rules_lock``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from engine.errors import InputError

TEST_CACHE: dict[str, Any] = {}  # rule-set hash -> inline test results per rule id
MAX_CACHED = 32


def check_rule_file(ws: Any, name: str, text: str
                     ) -> tuple[list[str], list[Any], dict[str, list[Any]]]:
    """Validate a rule file's text together with the rules in force, replacing the file of
    the same name (:func:`dunning.ops.rule_approval.rules_in_force`, what proposing and
    approving check), and run its inline tests; nothing is saved.

    Returns ``(problems as "file:line: field: message", its rules, test results per rule)``.
    """
    import tempfile

    from dunning.ops.rule_approval import rules_in_force
    from legal_rules.loader import RuleFileError

    with tempfile.TemporaryDirectory(prefix="dunning-rule-check-") as tmp:
        path = Path(tmp) / name
        path.write_text(text, encoding="utf-8")
        try:
            ruleset = rules_in_force(ws.state.store.path, extra=path)
        except RuleFileError as exc:
            return [str(p).replace(str(path), name) for p in exc.problems] or [str(exc)], [], {}
        except InputError as exc:
            return [str(exc).replace(str(path), name)], [], {}
        mine = [r for r in ruleset.rules if Path(r.source.file).name == name
                and Path(r.source.file).parent == Path(tmp)]
        if not mine:
            return [f"{name}:1: (file): no rules found; expected a list of rules"], [], {}
        results = rule_tests(ws, ruleset)
    return [], mine, {r.id: results.get(r.id, []) for r in mine}


def checked_proposal(ws: Any, name: str, text: str, who: str
                     ) -> tuple[list[str], list[Any], dict[str, list[Any]], Any]:
    """Propose a rule file's text only if it validates and its inline tests pass
    (:func:`check_rule_file`, then :func:`propose_text`: validated again, stored as pending and
    audited all or nothing). Returns ``(problems, rules, test results, proposal or None)``;
    nothing is saved when ``problems`` is not empty."""
    problems, rules, results = check_rule_file(ws, name, text)
    problems = problems or [f"{name}: inline test of {r.id} fails: {cs.label}" for r in rules
                            for cs in results[r.id] if not cs.passed]
    if problems:
        return problems, rules, results, None
    made = propose_text(ws, name, text, who)
    return (made, rules, results, None) if isinstance(made, list) else ([], rules, results, made)


def rule_file_name(value: str) -> str:
    """A form's file name as a safe ``*.yaml`` name (no path, at most 60 characters)."""
    name = re.sub(r"[^a-z0-9_.-]", "_", value.strip().lower())[:60].lstrip(".")
    return name if name.endswith((".yaml", ".yml")) else (name or "upload") + ".yaml"


def propose_text(ws: Any, name: str, text: str, who: str) -> Any:
    """:func:`dunning.ops.rule_approval.propose` of the pasted file (validated again with
    the rules in force); the ``Proposal``, or its problems as ``file:line: field: message``."""
    import tempfile

    from dunning.ops.rule_approval import propose
    from legal_rules.loader import RuleFileError

    with tempfile.TemporaryDirectory(prefix="dunning-rule-propose-") as tmp:
        path = Path(tmp) / name
        path.write_text(text, encoding="utf-8")
        try:
            with ws.rules_lock.over(ws.state.store):  # the API's one writer lock (audit)
                return propose(ws.state.store, path, who)[0]
        except RuleFileError as exc:
            return [str(p).replace(str(path), name) for p in exc.problems] or [str(exc)]
        except InputError as exc:
            return [str(exc).replace(str(path), name)]


def rule_tests(ws: Any, ruleset: Any) -> dict[str, list[Any]]:
    """Inline test results per rule id, computed once per rule-set hash (the last
    :data:`MAX_CACHED` rule sets are kept: every edited text checked is one)."""
    if ruleset.hash not in TEST_CACHE:
        from legal_rules.testing import run_rule_tests

        with ws.rules_lock:
            results = run_rule_tests(ruleset)
        by_rule: dict[str, list[Any]] = {}
        for res in results:
            by_rule.setdefault(res.rule.id, []).append(res)
        while len(TEST_CACHE) >= MAX_CACHED:
            TEST_CACHE.pop(next(iter(TEST_CACHE)))  # the oldest
        TEST_CACHE[ruleset.hash] = by_rule
        return by_rule
    return TEST_CACHE[ruleset.hash]
