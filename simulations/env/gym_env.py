"""``CollectionsEnv``: one invoice as a gymnasium environment (``dunning/Collections-v0``)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from engine.contract import Action
from simulations.env.core import CollectionsSimulator
from simulations.env.masks import ActionMask, default_mask
from simulations.env.source import TransitionSource
from simulations.env.spaces import action_space, observation_space


class CollectionsEnv(gym.Env):
    """Collect one overdue invoice, one day per step.

    ## Description
    An episode is one invoice (with its customer) from its due date (day 0) until it is
    paid, handed to a collection agency, or written off at the horizon (default 120 days
    after due). Each day the agent chooses one action; the legal rules decide which
    actions are lawful that day (:meth:`action_masks`).

    ## Action space
    ``Discrete(6)`` indexed by :class:`engine.contract.Action`: 0 wait, 1 email,
    2 letter, 3 phone call, 4 final notice, 5 agency handover.

    ## Observation space
    ``Box((38,), float32)`` laid out as documented in :mod:`simulations.env.layout`
    (read it by name through ``LAYOUT``): days overdue, reminders so far by channel, days
    since last contact, log amount, segment and jurisdiction one-hots, b2c flag, calendar
    (weekday, weekend, bank holiday, days to month end / quarter end), the payment model's
    p_on_time / p_late / p_very_late, disputed and complained flags, project milestone,
    final notice sent.

    ## Rewards
    Money in the invoice currency, discounted to the due date at the scenario's annual
    rate: the amount when paid (``amount * (1 + r) ** (-day / 365)``), minus each action's
    cost (email, letter, call, final notice), minus the complaint cost when the customer
    complains, and on agency handover the expected recovery net of the agency's fee share.

    ## Starting state
    A new invoice drawn from the transition source on its due date: nothing sent yet.

    ## Episode end
    Terminated when paid, handed to the agency, or written off on reaching ``horizon``
    days unpaid (value 0: a true end, so never ``truncated``).

    ## Vetoed actions
    An action the mask forbids is never taken: it is replaced by WAIT, ``info["refused"]``
    is ``True`` and :attr:`refused_attempts` counts it. ``info["vetoed_by"]`` maps each
    forbidden channel to the id of the rule that vetoed it.

    ## Arguments
    ``source``: a :class:`~simulations.env.source.TransitionSource` (default: the ground
    truth of ``scenario``); ``scenario``: scenario name or path used when ``source`` is
    None; ``mask``: legal mask (default: the packaged rules); ``horizon``: write-off day.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, source: TransitionSource | None = None, scenario: str = "default",
                 mask: ActionMask | None = None, horizon: int | None = None,
                 render_mode: str | None = None) -> None:
        if source is None:
            from simulations.env.ground_truth import GroundTruthSource

            source = GroundTruthSource(scenario)
        self.source = source
        self.sim = CollectionsSimulator(source, default_mask() if mask is None else mask,
                                        horizon=horizon)
        self.observation_space = observation_space()
        self.action_space = action_space()
        self.render_mode = render_mode
        self.refused_attempts = 0
        self._last_info: dict[str, Any] = {}

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.sim.load(self.source.sample_invoices(1, self.np_random))
        info = {"vetoed_by": self.sim.vetoes(0)}
        return self.sim.observations()[0], info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.sim.active[0]:
            raise RuntimeError("episode has ended: call reset()")
        res = self.sim.step(np.array([int(action)]), self.np_random)
        refused = bool(res.refused[0])
        self.refused_attempts += int(refused)
        info: dict[str, Any] = {
            "refused": refused,
            "executed": Action(int(res.executed[0])).channel,
            "paid": bool(res.outcome.paid[0] and res.executed[0] != Action.AGENCY),
            "complaint": bool(res.outcome.complaint[0]),
            "written_off": bool(res.written_off[0]),
            "vetoed_by": self.sim.vetoes(0),
        }
        self._last_info = info
        return (self.sim.observations()[0], float(res.reward[0]), bool(res.terminated[0]),
                bool(res.truncated[0]), info)

    def action_masks(self) -> np.ndarray:
        """``(6,)`` bool: the actions the legal rules allow today.

        Raises:
            RuntimeError: before the first :meth:`reset` (there is no invoice yet).
        """
        if self.sim.batch is None:
            raise RuntimeError("action_masks() before reset(): there is no invoice yet; "
                               "call reset() first")
        return self.sim.action_masks()[0].copy()

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        st = self.sim.state
        return (f"day {int(st.day[0])} reminders {st.reminders[0].tolist()} "
                f"disputed {bool(st.disputed[0])} last {self._last_info.get('executed', '-')}")
