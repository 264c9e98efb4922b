"""Build policies from the names the CLI and the harness accept.

=====================  ===============================================================
spec                   policy
=====================  ===============================================================
``never``              never remind
``fixed``              email day 14, letter day 30, final notice day 45
``fixed[7:email;21:letter]``
                       a fixed schedule of ``DAY:CHANNEL`` steps separated by ``;``
                       (channels default to email, letter, final notice); the form to
                       use inside a comma-separated ``--policies`` list
``fixed:7:email,...``  the same with commas (one policy alone, e.g. ``--policy``)
``tuned``              per-segment schedule: loaded from ``tuned_path`` if given, else
                       tuned now in the learned environment ``learned_source``
``tuned:FILE``         a saved tuned schedule (JSON)
``oracle``             exact optimum of the ground truth (evaluation only)
``planner``            exact DP on the learned model (``policies.planner``), set up from
                       the learned environment ``learned_source`` (no training) on its one
                       hazard model
``planner:DIR``        a saved planner (``PlannerPolicy.save``, e.g. dunning-data/planner;
                       with ``PipelineConfig.planner_hazard_members > 1`` it plans on the
                       mean of hazard models of other seeds, ``engine.models.ensemble``;
                       with ``PipelineConfig.planner_min_support > 0`` it reminds only
                       where the history logged that many reminders of the cell)
``rl:DIR``             a trained RL policy artifact (``policies.rl``)
``module:Class[:json]`` a policy class of your own (``policies.plugins``), or the name
                       of an installed one (entry-point group ``dunning.policies``)
=====================  ===============================================================
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import InputError
from simulations.policy import Policy

POLICY_NAMES: tuple[str, ...] = ("never", "fixed", "tuned", "oracle", "rl", "planner")
_BRACKETED = re.compile(r"^(\w+)\[(.*)\]$", re.DOTALL)
_STEP = re.compile(r"^\d+(:\w*)?$")
SPEC_HELP = ("never, fixed, fixed[14:email;30:letter], tuned, tuned:FILE, oracle, rl:DIR, "
             "planner, planner:DIR, module:Class[:json-args] or an installed policy's name")


def policy_name(spec: str) -> str:
    """The display name of ``spec`` (what :func:`make_policy` returns), read without
    loading anything: the kind for never, fixed, tuned, oracle, planner and rl whatever
    file they name (``rl:runs/a`` is ``rl``), the schedule for one written out
    (``fixed[...]``, ``fixed:...``), the spec itself for a plugin."""
    s = spec.strip()
    if _BRACKETED.match(s):
        return s
    kind, _, arg = s.partition(":")
    kind = kind.lower()
    if kind == "fixed" and arg:
        return f"fixed:{arg}"
    return kind if kind in POLICY_NAMES else spec


def make_policy(spec: str, *, tuned_path: Path | None = None,
                learned_source: Callable[[], Any] | None = None,
                tuning: Any = None,
                progress: Callable[[str, int, int], None] | None = None
                ) -> tuple[str, Policy]:
    """``(display name, policy)`` for a spec (see the module table; the name is
    :func:`policy_name`).

    ``learned_source`` is called (lazily) only when a tuned policy must be searched;
    ``progress(message, done, total)`` follows that search.
    """
    return policy_name(spec), _build_policy(spec, tuned_path, learned_source, tuning, progress)


def _build_policy(spec: str, tuned_path: Path | None,
                  learned_source: Callable[[], Any] | None, tuning: Any,
                  progress: Callable[[str, int, int], None] | None) -> Policy:
    bracketed = _BRACKETED.match(spec.strip())
    if bracketed:
        name, arg = bracketed.group(1).lower(), bracketed.group(2).replace(";", ",")
        if name != "fixed":
            raise InputError(f"policy {spec!r}: only fixed[...] takes a bracketed schedule, "
                             "e.g. fixed[14:email;30:letter]")
        from policies.baselines.schedule import FixedSchedulePolicy, parse_schedule

        return FixedSchedulePolicy(parse_schedule(arg))
    name, _, arg = spec.strip().partition(":")
    name = name.lower()
    if name == "never":
        from policies.baselines.schedule import NeverPolicy

        return NeverPolicy()
    if name == "fixed":
        from policies.baselines.schedule import FixedSchedulePolicy, parse_schedule

        if arg:
            return FixedSchedulePolicy(parse_schedule(arg))
        return FixedSchedulePolicy()
    if name == "tuned":
        from policies.tuned import TunedSchedulePolicy, TuningConfig, tune_schedules

        path = Path(arg) if arg else tuned_path
        if path is not None:
            return TunedSchedulePolicy.load(path)
        if learned_source is None:
            raise InputError("policy 'tuned' needs a saved schedule (tuned:FILE) or a learned "
                             "environment to tune in")
        return tune_schedules(learned_source(), tuning or TuningConfig(), progress=progress)
    if name == "oracle":
        from policies.baselines.oracle import GroundTruthOracle

        return GroundTruthOracle()
    if name == "planner":
        from policies.planner import LearnedDynamics, PlannerPolicy

        if arg:
            return PlannerPolicy.load(arg)
        if learned_source is None:
            raise InputError("policy 'planner' needs a saved planner (planner:DIR) or a "
                             "learned environment to plan in")
        return PlannerPolicy(LearnedDynamics.from_source(learned_source()))
    if name == "rl":
        if not arg:
            raise InputError("policy 'rl' needs the artifact directory: rl:DIR")
        try:
            from policies.rl import RLPolicy  # type: ignore[attr-defined]
        except ImportError as exc:
            raise InputError(f"policy 'rl' is not available ({exc})") from None
        return RLPolicy.load(arg)
    from policies.plugins import is_plugin_spec, load_plugin_policy

    if is_plugin_spec(spec):
        return load_plugin_policy(spec)[1]
    if _STEP.match(spec.strip()):
        raise InputError(f"policy {spec!r} looks like a step of a fixed schedule cut off by "
                         "the comma between policies: inside --policies write the schedule "
                         "as fixed[14:email;30:letter] (steps separated by ';')")
    raise InputError(f"unknown policy {spec!r}; expected {SPEC_HELP} (inside a comma-separated "
                     "--policies list a schedule is written fixed[14:email;30:letter])")
