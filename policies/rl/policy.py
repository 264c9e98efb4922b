"""The trained RL scheduler as a :class:`~policies.common.policy.Policy`, and its artifact.

Artifact directory (versioned, content-hashed)::

    DIR/policy.zip           the SB3 MaskablePPO model
    DIR/policy.json          format, training config, timesteps, seed, train seconds,
                             provenance (payment/hazard model hash, rule-set hash, db),
                             observation columns, content_hash
    DIR/training_curve.json  {"timesteps": [...], "mean_reward": [...], "episodes": [...]}
    DIR/timing_search.json   what :func:`policies.rl.timing.search_timing_rules` compared
                             (only when the policy has timing rules searched)

``policy.json`` holds the per-segment ``timing_rules`` the policy applies to its masks (absent
= none). ``content_hash`` is the SHA-256 of the network weights and the canonical JSON of the
training config, provenance (model and rule-set hashes, as-of date; not the file paths) and
timing rules: two artifacts with the same hash act identically, and the same seed gives the
same hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.contract import N_ACTIONS
from engine.errors import InputError
from policies.rl.timing_rules import TimingRules
from simulations.policy import Policy

if TYPE_CHECKING:  # training is not needed to load and serve a policy
    from policies.rl.training import RLTrainingConfig, TrainingCurve

FORMAT = "dunning.rl_policy/1"
MODEL_FILE = "policy.zip"
META_FILE = "policy.json"
CURVE_FILE = "training_curve.json"
TIMING_FILE = "timing_search.json"
UNHASHED_PROVENANCE = frozenset({"db", "model_dir"})


def _content_hash(model: Any, config: dict[str, Any], provenance: dict[str, Any],
                  timing: dict[str, Any] | None = None) -> str:
    """SHA-256 of the network weights (not the zip: it holds timestamps) + config + provenance
    (+ the timing rules, when there are any: artifacts without them keep their hash)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.policy.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().numpy().tobytes())
    # Where the inputs lay on disk does not change the policy: paths are not hashed.
    stable = {k: v for k, v in provenance.items() if k not in UNHASHED_PROVENANCE}
    hashed = {"config": config, "provenance": stable, **({"timing": timing} if timing else {})}
    h.update(json.dumps(hashed, sort_keys=True, default=str).encode())
    return h.hexdigest()


@dataclass
class RLArtifact:
    """A saved policy: its directory, metadata (``policy.json``) and training curve."""

    path: Path
    metadata: dict[str, Any]
    curve: dict[str, list]

    @property
    def content_hash(self) -> str:
        return str(self.metadata["content_hash"])

    @property
    def timing_rules(self) -> TimingRules:
        """The timing rules in ``policy.json`` (none when absent); bad ones name the field."""
        return TimingRules.from_dict(self.metadata.get("timing_rules", {}),
                                     f"{self.path / META_FILE}: field 'timing_rules'")


def save_artifact(
    model: Any,
    out_dir: str | Path,
    config: RLTrainingConfig,
    curve: TrainingCurve,
    train_seconds: float,
    provenance: dict[str, Any],
    timing: TimingRules | None = None,
    timing_report: dict[str, Any] | None = None,
) -> RLArtifact:
    """Write the artifact atomically (temp dir in the same parent, then rename).

    ``timing`` are the rules the policy applies to its masks (``timing_report``: what the
    search compared, written to ``timing_search.json``), each segment's shortest gap raised
    to the config's ``min_days_between``.
    """
    from simulations.env.layout import LAYOUT

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        model.save(tmp / MODEL_FILE)
        cfg = config.to_dict()
        # the spacing it was trained with holds whenever it acts (RLTrainingConfig)
        rules = (timing or TimingRules()).with_min_gap(config.min_days_between).to_dict()
        meta = {
            "format": FORMAT,
            "algorithm": "MaskablePPO",
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "training_config": cfg,
            "timesteps": int(model.num_timesteps),
            "seed": config.seed,
            "train_seconds": round(float(train_seconds), 2),
            "provenance": provenance,
            "observation_columns": LAYOUT.column_names(),
            **({"timing_rules": rules} if rules else {}),
            "content_hash": _content_hash(model, cfg, provenance, rules),
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n")
        (tmp / CURVE_FILE).write_text(json.dumps(curve.to_dict()) + "\n")
        if timing_report is not None:
            (tmp / TIMING_FILE).write_text(json.dumps(timing_report, indent=2, default=str)
                                           + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return RLArtifact(out, meta, curve.to_dict())


def load_artifact(path: str | Path) -> RLArtifact:
    """Read and verify an artifact directory (raises :class:`InputError` when broken)."""
    p = Path(path)
    meta_path, zip_path = p / META_FILE, p / MODEL_FILE
    for f in (meta_path, zip_path):
        if not f.exists():
            raise InputError(f"{f}: missing; expected an RL policy directory written by "
                             "`dunning train-policy`")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{meta_path}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if meta.get("format") != FORMAT:
        raise InputError(f"{meta_path}: field 'format' is {meta.get('format')!r}; "
                         f"expected {FORMAT!r}")
    curve_path = p / CURVE_FILE
    curve = json.loads(curve_path.read_text()) if curve_path.exists() else {}
    return RLArtifact(p, meta, curve)


def _check_observation_columns(artifact: RLArtifact) -> None:
    """Refuse a policy trained on another observation layout than this code builds: its
    network would read every column after the first difference as something else."""
    from simulations.env.layout import LAYOUT

    where = f"{artifact.path / META_FILE}: field 'observation_columns'"
    saved = artifact.metadata.get("observation_columns")
    if not isinstance(saved, list):
        raise InputError(f"{where} is missing; the policy's observation layout is unknown - "
                         "retrain with `dunning train-policy`")
    current = LAYOUT.column_names()
    if saved == current:
        return
    first = next((i for i, (a, b) in enumerate(zip(saved, current, strict=False)) if a != b),
                 min(len(saved), len(current)))
    was = saved[first] if first < len(saved) else "(nothing)"
    now = current[first] if first < len(current) else "(nothing)"
    raise InputError(f"{where}: the policy was trained on {len(saved)} observation columns, "
                     f"this version builds {len(current)}; column {first} was {was!r}, is now "
                     f"{now!r} - retrain with `dunning train-policy`")


class RLPolicy(Policy):
    """A trained MaskablePPO scheduler: deterministic, legal masks always applied, then its
    per-segment ``timing`` rules (:class:`policies.rl.timing.TimingRules`; none by default).

    ``act(observations (n, LAYOUT.dim) float32, masks (n, 6) bool) -> (n,) int64``.
    """

    name = "rl"

    def __init__(self, model: Any, artifact: RLArtifact | None = None,
                 timing: TimingRules | None = None) -> None:
        self.model = model
        self.artifact = artifact
        self.timing = timing or TimingRules()

    @classmethod
    def load(cls, path: str | Path) -> RLPolicy:
        """Load the policy saved in artifact directory ``path``."""
        import torch
        from sb3_contrib import MaskablePPO

        artifact = load_artifact(path)
        _check_observation_columns(artifact)
        torch.set_num_threads(int(artifact.metadata["training_config"].get("torch_threads", 1)))
        model = MaskablePPO.load(artifact.path / MODEL_FILE, device="cpu")
        meta = artifact.metadata
        timing = artifact.timing_rules
        expected = _content_hash(model, meta.get("training_config", {}),
                                 meta.get("provenance", {}), timing.to_dict())
        if expected != meta.get("content_hash"):
            raise InputError(f"{artifact.path / META_FILE}: field 'content_hash' does not match "
                             f"{MODEL_FILE}; the artifact was modified - retrain with "
                             "`dunning train-policy`")
        return cls(model, artifact, timing)

    @property
    def content_hash(self) -> str | None:
        return None if self.artifact is None else self.artifact.content_hash

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        obs = np.asarray(observations, dtype=np.float32)
        m = np.asarray(masks, dtype=bool)
        if obs.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        if m.shape != (obs.shape[0], N_ACTIONS):
            raise ValueError(f"masks must have shape ({obs.shape[0]}, {N_ACTIONS}), got {m.shape}")
        if self.timing.rules:
            m = self.timing.apply(obs, m)
        actions, _ = self.model.predict(obs, deterministic=True, action_masks=m)
        return np.asarray(actions, dtype=np.int64).reshape(obs.shape[0])
