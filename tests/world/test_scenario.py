"""Scenario files: the packaged ones load; mistakes name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.contract import SEGMENTS
from engine.errors import InputError
from simulations.world import load_scenario, packaged_scenarios
from simulations.world.scenario import SCENARIO_DIR


def test_packaged_scenarios_load_with_all_segments_and_jurisdictions() -> None:
    assert {"default", "shifted"} <= set(packaged_scenarios())
    for name in ("default", "shifted"):
        sc = load_scenario(name)
        assert tuple(s.name for s in sc.segments) == SEGMENTS
        codes = {j.code for j in sc.jurisdictions}
        assert {"DE", "AT", "SE", "FR", "GB", "NL"} <= codes
        cur = {j.code: j.currency for j in sc.jurisdictions}
        assert (cur["SE"], cur["GB"], cur["DE"]) == ("SEK", "GBP", "EUR")
        assert 0 < sc.costs.daily_discount < 1
        assert sc.segment("construction").industries == {"construction": 1.0}


def test_shifted_differs_from_default() -> None:
    d, s = load_scenario("default"), load_scenario("shifted")
    assert d.segment("startup").calendar == "month_end"
    assert s.segment("startup").calendar == "mid_month"
    assert s.segment("corporate").reminder_timing != d.segment("corporate").reminder_timing
    assert all(a.dispute_start > b.dispute_start for a, b in zip(s.segments, d.segments,
                                                                  strict=True))


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _default_dict() -> dict:
    return yaml.safe_load((SCENARIO_DIR / "default.yaml").read_text())


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d["segments"]["corporate"].__setitem__("hazard", "fast"),
         "segments.corporate.hazard"),
        (lambda d: d["segments"].pop("saas"), "segments"),
        (lambda d: d["economics"].__setitem__("agency_fee_share", 1.5),
         "economics.agency_fee_share"),
        (lambda d: d["jurisdictions"]["SE"].__setitem__("currency", "KRONA"),
         "jurisdictions.SE.currency"),
        (lambda d: d["segments"]["startup"].__setitem__("calendar", "weekly"),
         "segments.startup.calendar"),
        (lambda d: d["logging_policy"]["schedule"].append(["fax", 60]),
         "logging_policy.schedule[4]"),
        (lambda d: d.pop("horizon_days"), "horizon_days"),
        (lambda d: d["segments"]["corporate"].__setitem__("weekday_factors", [1, 2]),
         "segments.corporate.weekday_factors"),
        (lambda d: d["segments"]["construction"]["industries"].__setitem__("retail", 1),
         "segments.construction.industries"),
        (lambda d: d["segments"]["saas"].__setitem__("reminder_response_sigma", 4),
         "segments.saas.reminder_response_sigma"),
        (lambda d: d["segments"]["startup"].__setitem__("reminder_timing_shift_sd", -1),
         "segments.startup.reminder_timing_shift_sd"),
    ],
)
def test_bad_field_is_named_with_the_file(tmp_path: Path, edit, field: str) -> None:
    data = _default_dict()
    edit(data)
    path = _write(tmp_path, data)
    with pytest.raises(InputError) as exc:
        load_scenario(path)
    assert str(path) in str(exc.value)
    assert f"'{field}'" in str(exc.value)


def test_unknown_name_and_broken_yaml(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such packaged scenario"):
        load_scenario("nope")
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nsegments: [unclosed\n")
    with pytest.raises(InputError, match="line"):
        load_scenario(path)
