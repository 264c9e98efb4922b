"""Serving a saved RL policy: old artifacts keep loading and acting the same, loading needs
neither the simulator nor the training code, and a policy trained on another observation
layout is refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.errors import InputError
from policies.rl import RLPolicy

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"
ARTIFACT = FIXTURES / "rl_policy_v1"  # saved by the code of 622c22b, before the move


def test_an_artifact_saved_before_the_move_loads_and_acts_the_same():
    cases = np.load(FIXTURES / "rl_policy_v1_cases.npz")
    policy = RLPolicy.load(ARTIFACT)
    actions = policy.act(cases["observations"], cases["masks"])
    np.testing.assert_array_equal(actions, cases["actions"])
    assert len(np.unique(actions)) > 1  # the cases exercise more than one action


def test_serving_loads_neither_the_simulator_nor_the_training_code():
    probe = (
        "import sys, numpy as np\n"
        "from policies.rl.policy import RLPolicy\n"
        f"p = RLPolicy.load({str(ARTIFACT)!r})\n"
        f"c = np.load({str(FIXTURES / 'rl_policy_v1_cases.npz')!r})\n"
        "p.act(c['observations'][:8], c['masks'][:8])\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith(('simulations', "
        "'policies', 'legal_rules', 'dunning')))))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    loaded = set(out.stdout.strip().split(","))
    assert "policies.rl.policy" in loaded
    for heavy in ("simulations.env.core", "simulations.env.masks", "simulations.env.learned",
                  "simulations.env.ground_truth", "simulations.evaluation.harness",
                  "policies.rl.training", "policies.rl.timing", "legal_rules", "dunning"):
        assert heavy not in loaded, heavy


@pytest.mark.parametrize("edit, said", [
    (lambda cols: cols[:-1], "37 observation columns"),
    (lambda cols: [cols[1], cols[0], *cols[2:]], "column 0 was 'reminders=email'"),
])
def test_a_policy_trained_on_another_layout_is_refused(tmp_path, edit, said):
    art = tmp_path / "policy"
    shutil.copytree(ARTIFACT, art)
    meta = json.loads((art / "policy.json").read_text())
    meta["observation_columns"] = edit(meta["observation_columns"])
    (art / "policy.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="observation_columns") as err:
        RLPolicy.load(art)
    assert said in str(err.value)
    assert "retrain" in str(err.value)
