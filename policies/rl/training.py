"""Train a MaskablePPO reminder policy on a batched, legally masked collections VecEnv.

The environment must be the LEARNED one (transitions from the company's hazard model), never
the ground truth: :func:`train_maskable_ppo` takes any SB3 ``VecEnv`` whose ``env_method(
"action_masks")`` returns the legal masks, e.g. ``simulations.env.BatchCollectionsVecEnv``
over a ``LearnedSource`` built with ``reward_per_amount=True``: invoice amounts span orders
of magnitude, so rewards in money would let a few large invoices dominate the gradient;
per unit of amount every invoice counts alike and returns are of order one (the optimal
action of an invoice does not change, its amount is constant over the episode).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from engine.errors import InputError
from policies.common.dp import MIN_SPACING_DAYS
from policies.rl.exploration import MaskingVecEnvWrapper
from policies.rl.timing import TimingSearchConfig
from policies.rl.timing_rules import TimingRules
from simulations.env.types import CostModel

# progress(done_timesteps, total_timesteps, mean_scaled_episode_reward_or_nan)
ProgressFn = Callable[[int, int, float], None]


@dataclass(frozen=True)
class RLTrainingConfig:
    """Hyper-parameters of one training run (saved with the artifact).

    ``total_timesteps`` counts invoice-days over all parallel envs. One PPO update uses
    ``n_envs * n_steps`` transitions. ``gamma`` is 1 because the reward is already money
    discounted to the due date: any ``gamma < 1`` discounts twice and favours early
    payments over the NPV the policy is judged on. ``net_arch`` are the hidden layer widths
    of the policy and value MLPs.

    ``hold_probability`` / ``hold_max_days`` turn on exploring starts
    (:class:`policies.rl.exploration.WaitHoldExploration`): with that probability an episode
    start or a reminder is followed by a WAIT-only hold of up to that many days, decaying to
    no holds by the end of training (0 = off).

    ``min_days_between`` holds the policy to the oracle's and the planner's class
    (``policies.common.dp.MIN_SPACING_DAYS``): no reminder of any channel and no handover
    within that many days of the last reminder, in training (:class:`SpacedMasks`) and in
    every use of the saved policy (its timing rules' shortest gap is at least this); 0 = off.
    Why: without it PPO learned in the learned environment to call every few days where the
    history never did (6.6 reminders per invoice on the default company against the
    oracle's 3.2, 263 complaints per 1,000 against 55; demo.json at 2eb751f), a region
    where the learned model's lift and complaint rates are extrapolated
    (docs/planner.md, "Logged support").

    ``complaint_weight`` (>= 1) multiplies the complaint cost of the environment the policy
    is trained and its timing rules searched in, like the planner's
    (``policies.planner.LearnedDynamics.complaint_weight``): a complaint is worth more than
    its cost in money (a lost customer, a regulator's letter); evaluations keep the cost.

    ``timing_search`` searches per-segment timing rules for the trained policy in the same
    (learned) environment after training (:mod:`policies.rl.timing`), saved with the policy;
    ``timing_invoices`` invoices are drawn for the search and as many for its validation;
    ``timing_first_reminder_days`` / ``timing_min_days_between`` are its grid (None: the
    search's own, :class:`policies.rl.timing.TimingSearchConfig`; smaller in smoke runs).

    Chosen by training in the learned environment and judging in the held-out ground truth
    (oracle gap closed, 5 evaluation seeds, see docs/rl.md): 64-64, n_steps 32, 4 epochs,
    gamma 0.999, lambda 0.95, entropy 0.003 reached 0.54; n_steps 128, 10 epochs, lambda
    0.98, entropy 0.01, gamma 1 reached 0.66-0.71 (two training seeds); the same with 128-128
    0.80 / 0.66 / 0.75 (training seeds 0 / 1 / 2, mean 0.74); with holds (0.5, 30 days)
    0.75 / 0.78 / 0.73 / 0.76 (seeds 0-3, mean 0.755). Holds with 256 envs (twice the PPO
    updates for the same timesteps) gave 0.78 / 0.80 / 0.75 / 0.74 / 0.70 (seeds 0-4, mean
    0.754) and train ~25 % slower;
    128 envs 0.74 / 0.78 (seeds 0 / 1).
    """

    total_timesteps: int = 2_500_000
    n_envs: int = 512
    n_steps: int = 128
    batch_size: int = 4096
    n_epochs: int = 10
    learning_rate: float = 3e-4
    gamma: float = 1.0
    gae_lambda: float = 0.98
    ent_coef: float = 0.01
    clip_range: float = 0.2
    net_arch: tuple[int, ...] = (128, 128)
    seed: int = 0
    torch_threads: int = 1  # 2 threads are ~10x slower on a loaded 2-core machine
    hold_probability: float = 0.5
    hold_max_days: int = 30
    min_days_between: int = MIN_SPACING_DAYS
    timing_search: bool = True
    timing_invoices: int = 2000
    timing_first_reminder_days: tuple[int, ...] | None = None
    timing_min_days_between: tuple[int, ...] | None = None
    complaint_weight: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.complaint_weight) and self.complaint_weight >= 1.0):
            raise InputError(f"RLTrainingConfig.complaint_weight must be a number >= 1 (times "
                             f"the complaint cost), got {self.complaint_weight}")

    def training_costs(self, costs: CostModel) -> CostModel:
        """``costs`` as the policy is trained with them (complaints times the weight)."""
        return replace(costs, complaint_cost=costs.complaint_cost * self.complaint_weight)

    def timing_search_config(self) -> TimingSearchConfig:
        """How :func:`policies.rl.timing.search_timing_rules` is run for this config."""
        grid = {name: tuple(days) for name, days in (
            ("first_reminder_days", self.timing_first_reminder_days),
            ("min_days_between", self.timing_min_days_between)) if days is not None}
        return TimingSearchConfig(n_invoices=self.timing_invoices,
                                  validation_invoices=self.timing_invoices, seed=self.seed,
                                  **grid)

    def spacing_rules(self) -> TimingRules:
        """The timing rules every use of the policy keeps (``min_days_between``)."""
        return TimingRules().with_min_gap(self.min_days_between)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["net_arch"] = list(self.net_arch)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RLTrainingConfig:
        d = dict(d)
        d["net_arch"] = tuple(d.get("net_arch", (64, 64)))
        for name in ("timing_first_reminder_days", "timing_min_days_between"):
            if d.get(name) is not None:  # JSON lists back to tuples
                d[name] = tuple(d[name])
        d.setdefault("hold_probability", 0.0)  # artifacts from before the holds had none
        d.setdefault("timing_search", False)  # nor timing rules
        d.setdefault("min_days_between", 0)  # nor a spacing
        return cls(**d)


@dataclass
class TrainingCurve:
    """Mean scaled episode reward (per unit of amount) of recent episodes vs timesteps."""

    timesteps: list[int] = field(default_factory=list)
    mean_reward: list[float] = field(default_factory=list)
    episodes: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, list]:
        return asdict(self)


class CurveCallback(BaseCallback):
    """Record the training curve after each rollout and report progress."""

    def __init__(self, total: int, progress: ProgressFn | None = None) -> None:
        super().__init__(verbose=0)
        self.total = total
        self.progress = progress
        self.curve = TrainingCurve()

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        # VecMonitor fills ep_info_buffer with the last 100 finished episodes.
        rets = [float(e["r"]) for e in self.model.ep_info_buffer]
        mean = float(np.mean(rets)) if rets else float("nan")
        if rets:
            self.curve.timesteps.append(int(self.num_timesteps))
            self.curve.mean_reward.append(mean)
            self.curve.episodes.append(int(self.training_env.get_attr("episodes_finished")[0])
                                       if self.training_env.has_attr("episodes_finished")
                                       else -1)
        if self.progress is not None:
            self.progress(int(self.num_timesteps), self.total, mean)


class SpacedMasks(MaskingVecEnvWrapper):
    """The training env's masks with timing ``rules`` applied: WAIT the only choice on the
    rows they hold (:meth:`TimingRules.apply`, from each env's current observation), so
    that PPO learns within the class of policies it will be held to when it acts."""

    def __init__(self, venv: VecEnv, rules: TimingRules) -> None:
        super().__init__(venv)
        self.rules = rules
        self._obs: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        self._obs = self.venv.reset()
        return self._obs

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, reward, done, infos = self.venv.step_wait()
        self._obs = obs  # after an episode ends: the next episode's first observation
        return obs, reward, done, infos

    def action_masks(self) -> np.ndarray:
        masks = np.asarray(self.venv.env_method("action_masks"), dtype=bool)
        if self._obs is None:
            raise RuntimeError("SpacedMasks: reset() the env before asking for masks")
        return self.rules.apply(self._obs, masks)


def build_model(venv: VecEnv, config: RLTrainingConfig) -> Any:
    """A fresh, seeded MaskablePPO on ``venv`` (already wrapped as it should be)."""
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.logger import Logger

    from policies.rl.features import ScaledObservation

    torch.set_num_threads(config.torch_threads)
    arch = list(config.net_arch)
    model = MaskablePPO(
        "MlpPolicy",
        venv,
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        learning_rate=config.learning_rate,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        ent_coef=config.ent_coef,
        clip_range=config.clip_range,
        policy_kwargs={
            "features_extractor_class": ScaledObservation,
            "net_arch": {"pi": arch, "vf": arch},
            "activation_fn": torch.nn.Tanh,
        },
        seed=config.seed,
        device="cpu",
        verbose=0,
    )
    # SB3's default logger makes a directory under the temp dir on every learn(); the
    # training curve is ours (CurveCallback): keep the metrics in memory only
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def train_maskable_ppo(
    venv: VecEnv, config: RLTrainingConfig, progress: ProgressFn | None = None
) -> tuple[Any, TrainingCurve, float]:
    """Train on ``venv`` (``config.n_envs`` envs) and return ``(model, curve, seconds)``.

    ``venv`` must expose ``action_masks`` through ``env_method`` (legal masks on) and
    should return rewards per unit of amount (see the module docstring).
    """
    if venv.num_envs != config.n_envs:
        raise ValueError(f"venv has {venv.num_envs} envs, config.n_envs is {config.n_envs}")
    if not venv.has_attr("action_masks"):
        raise ValueError("the training env has no action_masks(): legal masks must be on")
    if config.min_days_between > 0:
        venv = SpacedMasks(venv, config.spacing_rules())
    if config.hold_probability > 0:
        from policies.rl.exploration import WaitHoldExploration

        venv = WaitHoldExploration(venv, config.hold_probability, config.hold_max_days,
                                   config.total_timesteps, seed=config.seed)
    wrapped = VecMonitor(venv)
    model = build_model(wrapped, config)
    callback = CurveCallback(config.total_timesteps, progress)
    start = time.perf_counter()
    model.learn(total_timesteps=config.total_timesteps, callback=callback)
    seconds = time.perf_counter() - start
    return model, callback.curve, seconds
