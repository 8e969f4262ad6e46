"""A keras-tuner tuner whose trials are kreg trials.

keras-tuner's oracles pick the hyperparameters; ``KregTuner.run_trial`` turns
them into a plan and hands it to a ``TrialRunner``, which trains, measures the
gap, tests and writes MLflow. It saves no per-epoch checkpoints (the kept
weights stay in memory), so the tuner directory holds only small JSON files
(keras-tuner #172: directories growing to many GB).

That directory is the search's state (``kreg.lab.search.state`` decides
where it lives): keras-tuner's ``oracle.json`` and a ``trial.json`` per
trial. ``overwrite=False`` keeps it for a resume, which reloads the oracle
itself (``state.open_tuner``); the tuner's own file (``tuner0.json``, an
empty state) is never written, so keras-tuner never reloads on its own.
"""

from __future__ import annotations

import keras_tuner as kt

from kreg.lab.search import _keras_tuner as _kt
from kreg.lab.search import signals
from kreg.lab.search.space import plan_from_hp
from kreg.lab.tracking.mlflow import StoreError
from kreg.lab.tracking.records import COMPLETED


class KregTuner(kt.engine.base_tuner.BaseTuner):
    def __init__(self, oracle, runner, *, search, directory, project_name="search", overwrite=True):
        # kreg's resolved search (its space turns keras-tuner's values into plans); not ``self.search``, which is
        # keras-tuner's search loop
        self.runner, self.kreg_search = runner, search
        super().__init__(oracle=oracle, hypermodel=None, directory=directory,
                         project_name=project_name, overwrite=overwrite)

    def save(self):
        """Saves the oracle only (keras-tuner also writes the tuner's empty state)."""
        if not _kt.is_worker(self):
            self.oracle.save()

    def pre_create_trial(self):
        signals.checkpoint()  # a signal noted meanwhile stops the search before the oracle proposes more

    def search(self, *args, **kwargs):
        # keras-tuner prints every failed trial's traceback (its config.DEBUG is on by default); kreg
        # says why a trial failed in one line and keeps the traceback in its run (kreg.failure_reason).
        with _kt.quiet_failed_trials():
            return super().search(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        hp = trial.hyperparameters
        search = self.kreg_search
        plan = plan_from_hp(hp, search.space, search.training.settings())
        # Hyperband's budget for this trial; the baseline always trains fully, since every gain is
        # measured against it (Hyperband's first bracket would give it a couple of epochs).
        epochs = None if plan.is_baseline else hp.values.get("tuner/epochs")
        values = {k: v for k, v in hp.values.items() if hp.is_active(k) or k.startswith("tuner/")}
        try:
            record = self.runner.run(trial.trial_id, values, plan, epochs=epochs)
        except StoreError as exc:  # keras-tuner would record a failed trial and go on: stop instead
            raise kt.errors.FatalError(str(exc)) from exc
        from kreg.lab.search.oracles import WHOLE_TRIAL

        # The oracle times trials for a budget; a pruned one's time says nothing about what a whole trial costs.
        return {self.oracle.objective.name: record.objective, WHOLE_TRIAL: float(record.status == COMPLETED)}

    def save_model(self, trial_id, model, step=0):  # models are not kept on disk
        pass

    def load_model(self, trial):
        raise NotImplementedError("kreg keeps no trial models on disk; rebuild from the trial's plan.json")
