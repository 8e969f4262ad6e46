"""keras-tuner oracles that start from the baseline and respect combination limits.

Every search's trial 0 is the unregularized baseline (all switches at their
default, off), so every gain is measured against it. ``max_active`` caps how
many techniques one trial may combine: random proposals that break it are
drawn again, and a Bayesian proposal that breaks it is replaced by a valid
random one.
"""

from __future__ import annotations

import keras_tuner as kt


_MAX_DRAWS = 200
_TUNER_KEYS = ("tuner/epochs", "tuner/initial_epoch", "tuner/bracket", "tuner/round", "tuner/trial_id")


class _KregOracleMixin:
    """Baseline first, then only combinations within ``max_active``."""

    def _kreg_setup(self, space):
        self._kreg_space = space

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

    def _random_values(self):
        if not self.trials:
            return self._default_values()
        for _ in range(_MAX_DRAWS):
            values = super()._random_values()
            if values is None or self._allowed(values):
                return values
        return None

    def populate_space(self, trial_id):
        response = super().populate_space(trial_id)
        values = response.get("values")
        if values and not self._allowed(values):
            tuner_values = {k: values[k] for k in _TUNER_KEYS if k in values}
            replacement = self._random_values()
            if replacement is None:
                return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}
            response = {"status": response["status"], "values": {**replacement, **tuner_values}}
        return response


class RandomOracle(_KregOracleMixin, kt.oracles.RandomSearchOracle):
    pass


class BayesianOracle(_KregOracleMixin, kt.oracles.BayesianOptimizationOracle):
    pass


class HyperbandOracle(_KregOracleMixin, kt.oracles.HyperbandOracle):
    pass


class GridOracle(_KregOracleMixin, kt.oracles.GridSearchOracle):
    """Grid search already starts from the defaults, i.e. the baseline."""


def make_oracle(settings, space, objective, hyperparameters, *, seed: int, max_epochs: int):
    """The oracle for ``settings.tuner`` over the declared ``hyperparameters``.

    ``objective`` has the logged metric's ``name`` and ``direction``.
    """
    common = dict(
        objective=kt.Objective(objective.name, direction=objective.direction),
        seed=seed,
        hyperparameters=hyperparameters,
        tune_new_entries=False,
        allow_new_entries=False,
        max_consecutive_failed_trials=settings.max_consecutive_failed_trials,
    )
    if settings.tuner == "random":
        oracle = RandomOracle(max_trials=settings.max_trials, **common)
    elif settings.tuner == "bayesian":
        oracle = BayesianOracle(
            max_trials=settings.max_trials, num_initial_points=settings.initial_points, **common
        )
    elif settings.tuner == "hyperband":
        oracle = HyperbandOracle(max_epochs=max_epochs, factor=settings.hyperband_factor, **common)
        oracle.max_trials = settings.max_trials  # the budget caps Hyperband's brackets too
    else:
        oracle = GridOracle(max_trials=settings.max_trials, **common)
    oracle._kreg_setup(space)
    return oracle
