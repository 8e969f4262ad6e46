"""A keras-tuner tuner whose trials are kreg trials.

keras-tuner's oracles pick the hyperparameters; ``KregTuner.run_trial`` turns
them into a plan and hands it to a ``TrialRunner``, which trains, measures the
gap, tests and writes MLflow. It saves no per-epoch checkpoints (the kept
weights stay in memory), so the tuner directory holds only small JSON files
(keras-tuner #172: directories growing to many GB).
"""

from __future__ import annotations

import keras_tuner as kt

from kreg.lab.search.space import plan_from_hp


class KregTuner(kt.engine.base_tuner.BaseTuner):
    def __init__(self, oracle, runner, *, directory, project_name="search"):
        self.runner = runner
        super().__init__(oracle=oracle, hypermodel=None, directory=directory,
                         project_name=project_name, overwrite=True)

    def run_trial(self, trial, *args, **kwargs):
        hp = trial.hyperparameters
        search = self.runner.search
        plan = plan_from_hp(hp, search.space, search.training.settings())
        epochs = hp.values.get("tuner/epochs")  # Hyperband's budget for this trial
        values = {k: v for k, v in hp.values.items() if hp.is_active(k) or k.startswith("tuner/")}
        record = self.runner.run(trial.trial_id, values, plan, epochs=epochs)
        return {self.oracle.objective.name: record.objective}

    def save_model(self, trial_id, model, step=0):  # models are not kept on disk
        pass

    def load_model(self, trial):
        raise NotImplementedError("kreg keeps no trial models on disk; rebuild from the trial's plan.json")
