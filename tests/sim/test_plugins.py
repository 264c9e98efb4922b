"""Bring your own policy: module:Class[:json-args] and the dunning.policies entry points from
the CLI, the schedule syntax inside --policies, and rl:/plugin policies seeing the payment
model's probabilities when --model is given."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dunning.cli import app
from engine.errors import InputError
from policies.baselines.factory import make_policy
from policies.plugins import split_policy_specs
from simulations.evaluation.harness import EvaluationResult

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

PLUGIN = textwrap.dedent('''
    import numpy as np

    from engine.contract import Action
    from simulations.env.layout import LAYOUT
    from simulations.policy import Policy

    SEEN = []  # payment probabilities of every row act() was given


    class EmailThenCall(Policy):
        """Email on day ``email_day``, call on day ``call_day`` if still unpaid."""

        def __init__(self, email_day=10, call_day=25):
            self.email_day, self.call_day = email_day, call_day

        def act(self, obs, masks):
            SEEN.append(obs[:, LAYOUT.slice("payment_probs")].copy())
            day = obs[:, LAYOUT["days_overdue"]]
            sent = LAYOUT.reminders_sent(obs)
            a = np.zeros(len(obs), np.int64)
            a[(sent == 0) & (day >= self.email_day)] = Action.EMAIL
            a[(sent == 1) & (day >= self.call_day)] = Action.PHONE
            a[~masks[np.arange(len(a)), a]] = Action.WAIT
            return a


    class Duck:  # not a Policy subclass: wrapped
        def act(self, obs, masks):
            return np.zeros(len(obs), np.int64)


    class TooFew(Policy):
        def act(self, obs, masks):
            return np.zeros(max(len(obs) - 1, 0), np.int64)
''')


@pytest.fixture()
def plugin(tmp_path, monkeypatch):
    """A module ``rk_user_policies`` on sys.path (removed again afterwards)."""
    (tmp_path / "rk_user_policies.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "rk_user_policies", raising=False)
    yield tmp_path
    sys.modules.pop("rk_user_policies", None)


def test_split_keeps_brackets_braces_and_quotes_together() -> None:
    text = 'never, fixed[14:email;30:letter],m.x:Cls:{"a": 1, "b": [2, 3]},q:C:"x,y"'
    assert split_policy_specs(text) == [
        "never", "fixed[14:email;30:letter]", 'm.x:Cls:{"a": 1, "b": [2, 3]}', 'q:C:"x,y"']
    with pytest.raises(InputError, match="unclosed"):
        split_policy_specs("fixed[14:email")


def test_a_policy_class_on_sys_path_is_evaluated_from_the_cli(plugin, tmp_path) -> None:
    spec = 'rk_user_policies:EmailThenCall:{"email_day": 5, "call_day": 20}'
    out = tmp_path / "out"
    res = runner.invoke(app, ["evaluate", "--policies",
                              f"never,fixed[14:email;30:letter],{spec}",
                              "--reference", "fixed[14:email;30:letter]",
                              "--invoices", "60", "--seeds", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    ev = EvaluationResult.load(out)
    assert ev.policies == ["never", "fixed[14:email;30:letter]", spec]
    mine = ev.outcomes[spec]
    reminded = mine["reminders"] > 0
    assert reminded.any() and (mine["first_reminder_day"][reminded] >= 5).all()
    assert mine["first_reminder_day"][reminded].min() < 14  # earlier than the schedule
    assert ev.overall[spec]["violations"]["mean"] == 0
    assert ev.reference == "fixed[14:email;30:letter]"
    assert ev.paired[spec]["npv"]["n"] == 120  # 2 seeds x 60 invoices
    fixed = ev.outcomes["fixed[14:email;30:letter]"]
    assert (fixed["first_reminder_day"][fixed["reminders"] > 0] >= 14).all()
    assert max(r["reminder"] for rows in ev.timing[spec].values() for r in rows) == 3
    chans = {r["main_channel"] for rows in ev.timing[spec].values() for r in rows[:2]
             if r["main_channel"]}
    assert chans == {"email", "phone"}


def test_plugin_loading_errors_are_clean(plugin) -> None:
    _, duck = make_policy("rk_user_policies:Duck")
    assert duck.act(np.zeros((3, 38)), np.ones((3, 6), bool)).tolist() == [0, 0, 0]
    for spec, msg in [
        ("rk_no_such_module:Cls", "cannot import module 'rk_no_such_module'"),
        ("rk_user_policies:Nope",
         "has no 'Nope' (its classes and functions: Duck, EmailThenCall, TooFew)"),
        ("rk_user_policies:EmailThenCall:{day: 5}", "are not JSON"),
        ('rk_user_policies:EmailThenCall:{"bogus": 1}', "constructing it failed"),
    ]:
        with pytest.raises(InputError) as exc:
            make_policy(spec)
        assert msg in str(exc.value) and spec in str(exc.value)
    res = runner.invoke(app, ["simulate", "--policy", "rk_user_policies:TooFew",
                              "--invoices", "10", "--seeds", "1"])
    assert res.exit_code == 2 and "TooFew.act returned shape" in res.output
    assert "Traceback" not in res.output


def test_schedule_syntax_does_not_collide_with_the_policy_separator() -> None:
    res = runner.invoke(app, ["evaluate", "--policies", "never,fixed:14:email,30:letter",
                              "--invoices", "10", "--seeds", "1"])
    assert res.exit_code == 2
    assert "fixed[14:email;30:letter]" in " ".join(res.output.split())
    res = runner.invoke(app, ["evaluate", "--policy", "never", "--policy",
                              "fixed:14:email,30:letter", "--invoices", "30", "--seeds", "1"])
    assert res.exit_code == 0, res.output
    assert "fixed:14:email,30:letter" in res.output or "fixed:14:email,30:let" in res.output
    name, pol = make_policy("fixed[7:phone;21:letter]")
    assert name == "fixed[7:phone;21:letter]"
    assert [(s.day, s.channel) for s in pol.schedule] == [(7, "phone"), (21, "letter")]
    with pytest.raises(InputError, match="only fixed"):
        make_policy("never[3]")


def test_an_installed_entry_point_adds_a_policy(plugin, monkeypatch) -> None:
    dist = plugin / "rk_user_policies-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rk-user-policies\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[dunning.policies]\nemail-then-call = rk_user_policies:EmailThenCall\n")
    name, pol = make_policy('email-then-call:{"email_day": 3}')
    assert name == 'email-then-call:{"email_day": 3}' and pol.email_day == 3
    res = runner.invoke(app, ["evaluate", "--policies", "fixed,email-then-call",
                              "--invoices", "30", "--seeds", "1"])
    assert res.exit_code == 0, res.output
    assert "email-then-call" in res.output


@pytest.fixture(scope="module")
def payment_model(tmp_path_factory) -> Path:
    """A small payment model fitted on a generated company (what `train-model` writes)."""
    from engine.features import build_training_frame, prepare_tables
    from engine.models import PaymentModel
    from simulations import world

    company = world.generate_company(world.load_scenario("default"), 150, 8, 5)
    tables = {"customers": company.customers, "invoices": company.invoices,
              "payments": company.payments, "actions": company.actions}
    frame = build_training_frame(prepare_tables(tables), company.as_of, 30)
    model = PaymentModel(30, fit_days_late=False, n_estimators=20)
    model.fit(frame.X, frame.days_late, frame.ref_day)
    out = tmp_path_factory.mktemp("model") / "payment"
    model.save(out)
    return out


def test_model_probabilities_reach_rl_and_plugin_policies(plugin, payment_model,
                                                          monkeypatch) -> None:
    from policies.rl import RLPolicy
    from simulations.env.layout import LAYOUT

    seen_rl: list[np.ndarray] = []
    original = RLPolicy.act

    def spy(self, obs, masks):
        seen_rl.append(obs[:, LAYOUT.slice("payment_probs")].copy())
        return original(self, obs, masks)

    monkeypatch.setattr(RLPolicy, "act", spy)
    import dunning.commands.sim as sim_cmd

    # a smaller generated company to score than the command's 800 x 12 (test time)
    monkeypatch.setattr(sim_cmd, "SCORED_CUSTOMERS", 150)
    monkeypatch.setattr(sim_cmd, "SCORED_MONTHS", 8)
    artifact = ROOT / "tests" / "data" / "fixtures" / "rl_policy_v1"
    args = ["evaluate", "--policies", f"rl:{artifact},rk_user_policies:EmailThenCall",
            "--invoices", "40", "--seeds", "1"]
    res = runner.invoke(app, args)  # without --model: the uninformative prior
    assert res.exit_code == 0, res.output
    seen_plugin = sys.modules["rk_user_policies"].SEEN
    assert np.allclose(np.concatenate(seen_rl), 1 / 3)
    assert np.allclose(np.concatenate(seen_plugin), 1 / 3)
    seen_rl.clear()
    seen_plugin.clear()
    res = runner.invoke(app, [*args, "--model", str(payment_model)])
    assert res.exit_code == 0, res.output
    for seen in (np.concatenate(seen_rl), np.concatenate(seen_plugin)):
        assert not np.allclose(seen, 1 / 3)
        np.testing.assert_allclose(seen.sum(axis=1), 1, atol=1e-5)
        # the model tells invoices apart (as of the due date p_on_time is small for all)
        assert seen.std(axis=0).max() > 0.01 and len(np.unique(seen[:, 1])) > 10


def test_bad_model_directory_is_a_clean_error(tmp_path) -> None:
    res = runner.invoke(app, ["evaluate", "--policies", "never", "--invoices", "10",
                              "--seeds", "1", "--model", str(tmp_path)])
    assert res.exit_code == 2 and "payment_model.json" in res.output


def test_docs_list_every_observation_column_where_it_is() -> None:
    """docs/policies.md's column table is LAYOUT: every field, its columns, in order."""
    import re

    from simulations.env.layout import CONTACT_CAP, LAYOUT

    text = (ROOT / "docs" / "policies.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| (\d+)(?:-(\d+))? \|", text, flags=re.M)
    documented = [(name, int(lo), int(hi or lo)) for name, lo, hi in rows]
    actual = [(name, LAYOUT.slice(name).start, LAYOUT.slice(name).stop - 1)
              for name in LAYOUT.names]
    assert documented == actual
    assert f"**{CONTACT_CAP} when nothing was sent yet**" in text
