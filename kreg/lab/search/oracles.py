"""keras-tuner oracles that start from the baseline and respect combination limits.

Every search's trial 0 is the unregularized baseline (all switches at their
default, off), so every gain is measured against it. ``max_active`` caps how
many techniques one trial may combine: random proposals that break it are
drawn again, and a Bayesian proposal that breaks it is replaced by a valid
random one.

Reproducible: keras-tuner's ``Oracle`` reads ``seed or random.randint(...)``,
so seed 0 (every shipped pipeline) would draw a random seed and explore
different trials each run. ``oracle_seed`` maps every kreg seed, 0 included,
to a fixed non-zero keras-tuner seed (``seed + 1``), so the same pipeline and
seed propose the same hyperparameters in the same order.

Resumable: the oracle's state (``oracle.json`` and one ``trial.json`` per
trial in the search's state directory) is written atomically, so a
``kill -9`` mid-write leaves the previous version rather than half a file.
Two pieces keras-tuner keeps in memory only are saved and restored too: the
Bayesian oracle's NumPy random state (the starting points of its
acquisition search; without it a resumed search's proposals would differ
from an uninterrupted one's), and the grid's enumeration position
(``GridOracle``). A resumed oracle proposes what it would have proposed
had it never stopped (``tests/test_resilience.py``).
"""

from __future__ import annotations

import json
import os
import time

import keras_tuner as kt
import numpy as np

from kreg.lab.search import _keras_tuner as _kt


_MAX_DRAWS = 200
_TUNER_KEYS = ("tuner/epochs", "tuner/initial_epoch", "tuner/bracket", "tuner/round", "tuner/trial_id")


WHOLE_TRIAL = "kreg_whole_trial"  # reported with a trial's objective: 1.0 when it trained to its end (not pruned)


def _whole(trial) -> bool:
    try:
        value = trial.metrics.get_last_value(WHOLE_TRIAL) if trial.metrics.exists(WHOLE_TRIAL) else None
    except Exception:  # a result without kreg's figure (an older state): count it whole
        return True
    return value is None or value >= 0.5


def oracle_seed(seed: int) -> int:
    """keras-tuner's seed for kreg's ``seed``: never 0, which keras-tuner reads as "draw a random seed"."""
    return int(seed) % (2**31 - 2) + 1


def _write_json(path: str, state) -> None:
    """Writes ``state`` to ``path`` atomically (a temporary file renamed over it).

    Enough for a killed process (the page cache survives it); no fsync, which
    would cost every trial several disk flushes for the power-loss case.
    """
    tmp = f"{path}.tmp"
    with open(tmp, "w") as handle:
        json.dump(state, handle)
    os.replace(tmp, path)


class _KregOracleMixin(_kt.OracleHooks):
    """Baseline first, then only combinations within ``max_active``; state saved atomically."""

    def _kreg_setup(self, space):
        self._kreg_space = space
        self._kreg_budget = None  # kreg.lab.search.budget.Budget, set by the search that runs this oracle
        self._kreg_started: dict = {}  # trial id -> time.time() of its proposal: what a trial costs

    def set_budget(self, budget) -> None:
        """The search's time budget (None: none): no trial is proposed once the next would overrun it."""
        saved = getattr(self, "_kreg_budget_state", None)  # measured before a resume, read by set_state
        self._kreg_budget = budget
        if budget is not None:
            budget.restore(saved)

    def _default_values(self):
        hps = kt.HyperParameters()
        values = {}
        for hp in self.hyperparameters.space:
            hps.merge([hp])
            if hps.is_active(hp):
                values[hp.name] = hp.default
                hps.values[hp.name] = hp.default
        return values

    def _allowed(self, values) -> bool:
        limit = self._kreg_space.max_active
        return limit is None or self._kreg_space.active_count(values) <= limit

    def kreg_random_values(self, draw):
        """keras-tuner's random draw (``draw``), redrawn until it fits ``max_active``; the baseline first."""
        if not self.trials:
            return self._default_values()
        for _ in range(_MAX_DRAWS):
            values = draw()
            if values is None or self._allowed(values):
                return values
        return None

    def populate_space(self, trial_id):
        budget = self._kreg_budget
        if budget is not None and not budget.admits() and self.trials:
            return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}
        self._kreg_started[trial_id] = time.time()
        response = super().populate_space(trial_id)
        values = response.get("values")
        if values and not self._allowed(values):
            tuner_values = {k: values[k] for k in _TUNER_KEYS if k in values}
            replacement = self.random_values()
            if replacement is None:
                return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}
            response = {"status": response["status"], "values": {**replacement, **tuner_values}}
        return response

    # ------------------------------------------------------------- state
    def save(self):
        _write_json(_kt.oracle_file(self), self.get_state())

    def kreg_save_trial(self, trial):
        _write_json(_kt.trial_file(self, trial.trial_id), trial.get_state())

    def get_state(self):
        state = super().get_state()
        random_state = _kt.random_state(self)  # the Bayesian oracle's
        if isinstance(random_state, np.random.RandomState):
            name, keys, pos, has_gauss, cached = random_state.get_state()
            state["kreg_random_state"] = [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]
        budget = getattr(self, "_kreg_budget", None)
        if budget is not None:
            state["kreg_budget"] = budget.state()
        elif getattr(self, "_kreg_budget_state", None):
            state["kreg_budget"] = self._kreg_budget_state  # a resume without a budget keeps what was measured
        return state

    @_kt.oracle_synchronized
    def end_trial(self, trial):
        started = self._kreg_started.pop(trial.trial_id, None)
        if self._kreg_budget is not None and started is not None:
            # A pruned trial (stopped early) reports a result too: its time says nothing about a whole trial.
            self._kreg_budget.trial_ended(trial.trial_id, time.time() - started,
                                          completed=trial.status == "COMPLETED" and _whole(trial))
        super().end_trial(trial)
        # keras-tuner saves the state before it drops the ended trial from ``ongoing_trials``: saved again, so
        # a search stopped before its next proposal (a worker's last trial, a signal) is not left "ongoing".
        self.save()

    def set_state(self, state):
        # A state saved by keras-tuner's own ``end_trial`` (or by an older kreg) may list an ended trial as
        # ongoing: reload() would queue it to run again and ``settle`` would end it twice.
        ended = set(state["end_order"])
        state = {**state, "ongoing_trials": {k: v for k, v in state["ongoing_trials"].items() if v not in ended}}
        super().set_state(state)
        self._kreg_budget_state = state.get("kreg_budget")
        if getattr(self, "_kreg_budget", None) is not None:
            self._kreg_budget.restore(self._kreg_budget_state)
        saved = state.get("kreg_random_state")
        if saved is not None and isinstance(_kt.random_state(self), np.random.RandomState):
            name, keys, pos, has_gauss, cached = saved
            _kt.random_state(self).set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


class RandomOracle(_KregOracleMixin, kt.oracles.RandomSearchOracle):
    pass


class BayesianOracle(_KregOracleMixin, kt.oracles.BayesianOptimizationOracle):
    pass


class HyperbandOracle(_KregOracleMixin, kt.oracles.HyperbandOracle):
    pass


class GridOracle(_KregOracleMixin, kt.oracles.GridSearchOracle):
    """Grid search already starts from the defaults, i.e. the baseline.

    keras-tuner's grid keeps its position in memory only (the trials ordered
    by their values, and the ended trials whose successor is still to be
    proposed), so a reloaded ``GridSearchOracle`` proposes nothing. On
    reload this oracle rebuilds both from the saved trials, as its own
    ``populate_space`` would have left them: the enumeration goes on where it
    stopped, and an interrupted trial (ongoing when saved) runs again first.
    """

    def set_state(self, state):
        super().set_state(state)
        _kt.rebuild_grid_position(self)


def make_oracle(settings, space, objective, hyperparameters, *, seed: int, max_epochs: int):
    """The oracle for ``settings.tuner`` over the declared ``hyperparameters``.

    ``objective`` has the logged metric's ``name`` and ``direction``; ``seed``
    is kreg's (0 included), mapped by ``oracle_seed``.
    """
    common = dict(
        objective=kt.Objective(objective.name, direction=objective.direction),
        seed=oracle_seed(seed),
        hyperparameters=hyperparameters,
        tune_new_entries=False,
        allow_new_entries=False,
        max_consecutive_failed_trials=settings.max_consecutive_failed_trials,
    )
    if settings.tuner == "random":
        oracle = RandomOracle(max_trials=settings.trial_limit, **common)
    elif settings.tuner == "bayesian":
        oracle = BayesianOracle(
            max_trials=settings.trial_limit, num_initial_points=settings.initial_points, **common
        )
    elif settings.tuner == "hyperband":
        oracle = HyperbandOracle(max_epochs=max_epochs, factor=settings.hyperband_factor, **common)
        oracle.max_trials = settings.trial_limit  # max_trials caps Hyperband's brackets too
    else:
        oracle = GridOracle(max_trials=settings.trial_limit, **common)
    oracle._kreg_setup(space)
    # kreg reports progress itself. keras-tuner's display, when on, also keeps each trial's start by trial id
    # in memory only (not for trials proposed while it was off): ending a reloaded trial raised KeyError.
    oracle.verbose = 0
    return oracle
