"""Strict scenario files: unknown keys with "did you mean", shares that sum to 1, and the
published JSON Schema agreeing with the loader (keys, required keys, every numeric bound)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from dunning.cli import app
from engine.errors import InputError
from simulations.world import load_scenario, packaged_scenarios
from simulations.world.scenario import SCENARIO_DIR, scenario_schema

ROOT = Path(__file__).resolve().parents[2]


def _default() -> dict:
    return yaml.safe_load((SCENARIO_DIR / "default.yaml").read_text())


def _load(tmp_path: Path, data: dict) -> tuple[Path, str]:
    """Write ``data`` as a scenario file and return (path, the loader's error message)."""
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError) as exc:
        load_scenario(path)
    return path, str(exc.value)


def _as_json(data: dict) -> Any:
    """What an editor sees: JSON keys are strings, dates ISO strings."""
    return json.loads(json.dumps(data, default=str))


def test_every_packaged_scenario_loads_and_validates_against_the_schema() -> None:
    validator = jsonschema.Draft202012Validator(scenario_schema())
    jsonschema.Draft202012Validator.check_schema(scenario_schema())
    assert {"default", "shifted"} <= set(packaged_scenarios())
    for name in packaged_scenarios():
        load_scenario(name)
        data = yaml.safe_load((SCENARIO_DIR / f"{name}.yaml").read_text())
        assert list(validator.iter_errors(_as_json(data))) == [], name


def test_published_schema_file_is_the_generated_one() -> None:
    published = json.loads((ROOT / "docs" / "scenario.schema.json").read_text())
    assert published == scenario_schema(), "regenerate: dunning scenarios schema --out " \
                                           "docs/scenario.schema.json"
    res = CliRunner().invoke(app, ["scenarios", "schema"])
    assert res.exit_code == 0 and json.loads(res.output) == published


def test_unknown_key_is_an_error_with_did_you_mean(tmp_path: Path) -> None:
    data = _default()
    data["segments"]["corporate"]["reminder_efect_typo"] = 3.0
    path, msg = _load(tmp_path, data)
    assert str(path) in msg
    assert "'segments.corporate.reminder_efect_typo'" in msg
    assert "did you mean 'reminder_effect'?" in msg and "(required)" not in msg


def test_misspelt_optional_key_is_an_error(tmp_path: Path) -> None:
    data = _default()
    data["segments"]["family_business"]["weekday_factor"] = [1, 1, 1, 1, 0.5]
    _, msg = _load(tmp_path, data)
    assert "unknown key 'weekday_factor'" in msg and "did you mean 'weekday_factors'?" in msg
    data = _default()
    data["logging_policy"]["explor"] = 0.2
    assert "did you mean 'explore'?" in _load(tmp_path, data)[1]


def test_misspelt_required_key_says_required(tmp_path: Path) -> None:
    data = _default()
    data["segments"]["saas"]["hazzard"] = data["segments"]["saas"].pop("hazard")
    _, msg = _load(tmp_path, data)
    assert "unknown key 'hazzard'" in msg and "did you mean 'hazard' (required)?" in msg
    data = _default()
    data["horizon"] = data.pop("horizon_days")
    _, msg = _load(tmp_path, data)
    assert "unknown key 'horizon' in the top level, did you mean 'horizon_days' (required)?" \
        in msg


def test_unknown_key_without_a_close_match_lists_the_known_ones(tmp_path: Path) -> None:
    data = _default()
    data["economics"]["vat"] = 0.19
    _, msg = _load(tmp_path, data)
    assert "'economics.vat'" in msg and "expected one of annual_discount_rate" in msg


@pytest.mark.parametrize(("edit", "field"), [
    (lambda d: d["segments"]["corporate"].__setitem__("weight", 0.9), "segments.*.weight"),
    (lambda d: d["jurisdictions"]["DE"].__setitem__("weight", 0.2), "jurisdictions.*.weight"),
    (lambda d: d["segments"]["startup"]["industries"].__setitem__("software", 0.7),
     "segments.startup.industries"),
    (lambda d: d["segments"]["saas"]["payment_terms_days"].__setitem__(30, 0.5),
     "segments.saas.payment_terms_days"),
])
def test_shares_must_sum_to_one(tmp_path: Path, edit, field: str) -> None:
    data = _default()
    edit(data)
    path, msg = _load(tmp_path, data)
    assert str(path) in msg and f"'{field}'" in msg and "sum to 1" in msg


def test_shares_within_tolerance_load() -> None:
    from simulations.world.scenario import scenario_from_dict

    data = _default()
    data["segments"]["corporate"]["weight"] += 0.0004
    assert scenario_from_dict(data).segment("corporate").weight == pytest.approx(0.3004)


def _leaves(schema: dict, data: Any, path: tuple) -> Iterator[tuple[tuple, dict]]:
    """(path in the data, schema) of every number/integer leaf reachable in ``data``."""
    if schema.get("type") in ("number", "integer"):
        yield path, schema
        return
    if schema.get("type") != "object" or not isinstance(data, dict):
        return
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    for key, sub in props.items():
        if key in data:
            yield from _leaves(sub, data[key], (*path, key))
        elif sub.get("type") in ("number", "integer"):
            yield (*path, key), sub  # an optional key absent from the file
    if isinstance(extra, dict):
        for key in data:
            if key not in props:
                yield from _leaves(extra, data[key], (*path, key))


def _set(data: dict, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def test_schema_bounds_and_required_keys_agree_with_the_loader(tmp_path: Path) -> None:
    """Every bound the schema publishes is enforced by the loader, naming the field."""
    from simulations.world.scenario import scenario_from_dict

    base = _default()
    leaves = list(_leaves(scenario_schema(), base, ()))
    assert len(leaves) > 100
    checked = 0
    for path, sub in leaves:
        step = 1 if sub["type"] == "integer" else 0.5
        field = ".".join(str(p) for p in path)
        for bound, outside in (("minimum", -step), ("maximum", step)):
            if bound not in sub:
                continue
            data = copy.deepcopy(base)
            _set(data, path, sub[bound] + outside)
            with pytest.raises(InputError, match=f"'{field}'"):
                scenario_from_dict(data, "mine.yaml")
            checked += 1
        if sub["type"] == "integer":
            data = copy.deepcopy(base)
            _set(data, path, sub["minimum"] + 0.5)
            with pytest.raises(InputError, match=f"'{field}'"):
                scenario_from_dict(data, "mine.yaml")
    assert checked > 100

    def required(schema: dict, data: Any, path: tuple) -> Iterator[tuple]:
        if not isinstance(data, dict):
            return
        for key in schema.get("required", ()):
            yield (*path, key)
            yield from required(schema["properties"][key], data[key], (*path, key))

    for path in required(scenario_schema(), base, ()):
        data = copy.deepcopy(base)
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
        with pytest.raises(InputError):
            scenario_from_dict(data, "mine.yaml")


def test_cli_scenarios_check(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["scenarios", "check", "default", "shifted"])
    assert res.exit_code == 0 and res.output.count(": ok") == 2
    data = _default()
    data["segments"]["corporate"]["reminder_efect_typo"] = 3.0
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(data))
    res = runner.invoke(app, ["scenarios", "check", str(path)])
    assert res.exit_code == 2 and "did you mean 'reminder_effect'" in res.output
    assert "Traceback" not in res.output
