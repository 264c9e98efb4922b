"""`dunning rates import`: ECB and Bundesbank CSV downloads -> checked rate periods.

The figures in these files are made up for the test (they are not published rates)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dunning.cli import app
from engine.errors import InputError
from legal_rules.loader import load_rules, packaged_rules_dir
from legal_rules.rate_import import Period, read_observations, to_periods

runner = CliRunner()


def flat(res) -> str:  # noqa: ANN001 - the output without rich's line wrapping
    return " ".join(res.output.split())

BUNDESBANK = """\
;BBIN1.M.DE.BBK.BBKBAS2.EUR.ME;BBIN1.M.DE.BBK.BBKBAS2.EUR.ME_FLAGS
;Base rate as per Civil Code / End of month / SU0115;
unit;% p.a.;
unit multiplier;one;
last update;2027-01-05 10:00:00;
source;Deutsche Bundesbank;
2026-05;1,27;
2026-06;1,27;
2026-07;0,55;
2026-08;0,55;
2026-09;0,55;
2026-10;.;
2026-11;0,55;
2026-12;0,55;
2027-01;0,91;
"""

ECB_PORTAL = """\
"DATE","TIME PERIOD","Main refinancing operations - Level (FM.B.U2.EUR.4F.KR.MRR_FR.LEV)"
"2026-03-11","2026-03-11","3.10"
"2026-06-10","2026-06-10","2.60"
"2026-09-16","2026-09-16","2.40"
"""

SDMX = """\
KEY,FREQ,REF_AREA,CURRENCY,PROVIDER_FM,INSTRUMENT_FM,PROVIDER_FM_ID,DATA_TYPE_FM,TIME_PERIOD,OBS_VALUE
FM.B.U2.EUR.4F.KR.MRR_FR.LEV,B,U2,EUR,4F,KR,MRR_FR,LEV,2026-03-11,3.10
FM.B.U2.EUR.4F.KR.MRR_FR.LEV,B,U2,EUR,4F,KR,MRR_FR,LEV,2026-06-10,2.60
FM.B.U2.EUR.4F.KR.MRR_FR.LEV,B,U2,EUR,4F,KR,MRR_FR,LEV,2026-09-16,2.40
"""


def test_bundesbank_monthly_to_half_years():
    obs = read_observations(BUNDESBANK)
    assert obs[0].start == date(2026, 5, 1) and obs[0].value == 1.27
    assert date(2026, 10, 1) not in [o.start for o in obs]  # "." is no value
    assert to_periods(obs) == [  # 2026H1 is not proven: January is not in the file
        Period(0.55, date(2026, 7, 1), date(2026, 12, 31)),
        Period(0.91, date(2027, 1, 1), date(2027, 6, 30))]
    changes = to_periods(obs, "change")
    assert changes[0] == Period(1.27, date(2026, 5, 1), date(2026, 6, 30))
    assert changes[-1] == Period(0.91, date(2027, 1, 1), date(2027, 1, 31))


@pytest.mark.parametrize("text", [ECB_PORTAL, SDMX])
def test_ecb_change_dates_to_half_years(text):
    obs = read_observations(text)
    assert [o.value for o in obs] == [3.10, 2.60, 2.40]
    # the rate in force on 1 July 2026 (set on 10 June) applies to 2026H2; 2027H1 is not
    # proven (the data end in September)
    assert to_periods(obs) == [Period(2.60, date(2026, 7, 1), date(2026, 12, 31))]
    assert to_periods(obs, "change")[0] == Period(3.10, date(2026, 3, 11), date(2026, 6, 9))


def test_bad_rows_name_their_line():
    with pytest.raises(InputError, match="no observations found"):
        read_observations("a;b\nc;d\n")
    with pytest.raises(InputError, match=r"file:3: expected a rate in percent"):
        read_observations("x;y\n2026-01;1,0\n2026-02;one\n")
    with pytest.raises(InputError, match="given twice"):
        read_observations("2026-01;1\n2026-01;2\n")


@pytest.fixture()
def rates_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rates.yaml"
    shutil.copy(packaged_rules_dir() / "rates.yaml", target)
    return target


def test_cli_import_appends_checked_periods(tmp_path, rates_copy):
    src = tmp_path / "bbk.csv"
    src.write_text(BUNDESBANK, "utf-8")
    args = ["rates", "import", str(src), "--name", "base_rate", "-j", "DE", "--into",
            str(rates_copy)]
    n_before = len(load_rules(rates_copy).rates)
    res = runner.invoke(app, [*args, "--dry-run"])
    assert res.exit_code == 0 and "would add 2 period(s)" in flat(res), res.output
    assert "valid_from: 2026-07-01" in res.output
    assert len(load_rules(rates_copy).rates) == n_before  # dry run: nothing written
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "added 2 period(s)" in flat(res), res.output
    rates = [r for r in load_rules(rates_copy).rates
             if (r.name, r.jurisdiction) == ("base_rate", "DE") and r.valid_from.year >= 2026]
    assert [(r.valid_from, r.value) for r in rates] == [
        (date(2026, 1, 1), 1.27), (date(2026, 7, 1), 0.55), (date(2027, 1, 1), 0.91)]
    assert "imported from bbk.csv" in rates[1].citation
    res = runner.invoke(app, args)  # again: nothing new
    assert res.exit_code == 0 and "added 0 period(s)" in flat(res) and "2 already" in flat(res)


def test_import_refuses_a_contradicting_figure(tmp_path, rates_copy):
    src = tmp_path / "bbk.csv"
    src.write_text("2026-01;2,00\n2026-02;2,00\n", "utf-8")
    before = rates_copy.read_text("utf-8")
    res = runner.invoke(app, ["rates", "import", str(src), "--name", "base_rate", "-j", "DE",
                              "--into", str(rates_copy)])
    assert res.exit_code == 2 and "contradicts 1.27" in flat(res)
    assert rates_copy.read_text("utf-8") == before
    res = runner.invoke(app, ["rates", "import", str(src), "--name", "prime_rate", "-j", "DE",
                              "--into", str(rates_copy)])
    assert res.exit_code == 2 and "not declared under rate_series" in flat(res)
