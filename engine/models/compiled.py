"""A LightGBM booster's predictions from the same trees compiled to machine code (lleaves).

Why: the planner asks the hazard model for millions of rows (every invoice in every
reachable state on every day of the horizon; about 670,000 rows for 32 invoices on the
default company), and LightGBM's own predict walks 80 trees at about 1.7 µs per row on one
thread. lleaves (MIT; https://github.com/siboehm/lleaves) translates the booster's model text
into LLVM code, so each tree becomes straight-line comparisons: the same rows take about
0.18 µs each (`benchmarks/bench_compiled_trees.py`). That is what lets the planner plan on the
mean of several hazard models (:class:`engine.models.ensemble.HazardEnsemble`) for about
36 s more of the demo's time instead of about 8 minutes (docs/planner.md).

The compiled forest gives LightGBM's values **bit for bit**: it reads the booster's model
text, so it takes the same decision at every split (numeric thresholds, categories, missing
values), and it is compiled as one block of trees, so it sums the trees in LightGBM's order
(lleaves' default blocks of 34 trees sum in another order and differ by up to 4e-16). It is
compiled for a generic CPU of the machine's architecture, not for this machine's vector
extensions, so two machines of one architecture compute the same bits.

Compiling costs about 17 ms per tree (1.4 s for 80), what LightGBM's predict spends on about
800,000 rows. So a predictor compiles only once it has been asked for
``compile_after_rows`` rows (the ski-rental rule: never more than about twice the cheaper
of the two); a model asked for a few rows (serving one invoice, most tests) never pays it.
As both give the same bits, when the switch happens changes no result.

Training still uses LightGBM, and LightGBM predicts wherever lleaves cannot: when it is
not installed, when compiling fails (a warning names why), or with
``DUNNING_COMPILED_TREES=0`` in the environment.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ENV_SWITCH = "DUNNING_COMPILED_TREES"  # "0": always LightGBM's predict
# rows LightGBM predicts before a predictor compiles: about what compiling costs
COMPILE_AFTER_ROWS = 500_000

_COMPILE_LOCK = threading.Lock()  # LLVM's per-process state is set up by one thread at a time


def compiled_trees_enabled() -> bool:
    """Whether boosters may be compiled (``DUNNING_COMPILED_TREES`` is not ``"0"``)."""
    return os.environ.get(ENV_SWITCH, "1").strip() != "0"


class BoosterPredictor:
    """``predict(X)`` of one LightGBM booster: LightGBM's predict until it has been asked
    for ``compile_after_rows`` rows, then the booster's trees compiled (the same values).

    Parameters
    ----------
    booster : a fitted ``lightgbm.Booster`` (the predictor reads its model text once).
    compile_after_rows : rows predicted with LightGBM before compiling (0: compile at the
        first call); compiling is skipped altogether when :func:`compiled_trees_enabled`
        is false.

    Attributes
    ----------
    compiled_ : bool, whether predictions now come from the compiled trees.
    rows_ : int, rows predicted so far.
    """

    def __init__(self, booster: Any, compile_after_rows: int = COMPILE_AFTER_ROWS) -> None:
        self.booster = booster
        self.compile_after_rows = int(compile_after_rows)
        self.rows_ = 0
        self.compiled_ = False
        self._model: Any = None
        self._tried = not compiled_trees_enabled()
        self._lock = threading.Lock()

    def predict(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """(n,) the booster's prediction (for the binary objective: the probability) of
        the rows of ``X`` (n, booster inputs), on one thread."""
        self.rows_ += len(X)
        if not self._tried and self.rows_ > self.compile_after_rows:
            self._compile_once()
        if self._model is None:
            return self.booster.predict(X, num_threads=1)
        if len(X) == 0:
            return np.empty(0)
        return self._model.predict(np.ascontiguousarray(X, dtype=np.float64), n_jobs=1)

    def _compile_once(self) -> None:
        with self._lock:
            if not self._tried:
                self._model = _compile(self.booster)
                self.compiled_ = self._model is not None
                self._tried = True


def _compile(booster: Any) -> Any:
    """The compiled lleaves model of ``booster``, or None (with a warning) when it cannot
    be compiled."""
    try:
        import lleaves
    except ImportError as e:  # an optional speed-up: LightGBM's predict gives the same bits
        log.warning("lleaves is not installed (%s): the hazard model predicts with LightGBM", e)
        return None
    with tempfile.TemporaryDirectory(prefix="dunning-trees-") as tmp:
        path = Path(tmp) / "model.txt"
        path.write_text(booster.model_to_string())
        try:
            with _COMPILE_LOCK:
                model = lleaves.Model(model_file=str(path))
                # one block of all trees: LightGBM's summation order, so its bits; a generic
                # CPU: the same code on every machine of the architecture
                model.compile(fblocksize=max(model.num_trees(), 1), target_cpu="generic",
                              target_cpu_features="")
        except Exception as e:  # noqa: BLE001 - any compiler failure falls back to LightGBM
            log.warning("could not compile the hazard model's trees (%s: %s): predicting "
                        "with LightGBM", type(e).__name__, e)
            return None
    return model
