"""Every kreg callback survives keras-tuner's per-trial deepcopy and logs into each trial."""

import keras
import keras_tuner as kt
import numpy as np

from kreg.callbacks import (SWA, GeneralizationGap, RegularizationSchedule, SharpnessProbe, SnapshotEnsemble,
                            WeightMonitor)
from kreg.layers import ScheduledDropout
from kreg.schedules import LinearWarmup


def test_all_callbacks_in_a_two_trial_search(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")

    def build(hp):
        model = keras.Sequential([
            keras.Input((8,)), keras.layers.Dense(hp.Choice("units", [8, 16])), keras.layers.BatchNormalization(),
            keras.layers.Activation("relu"), ScheduledDropout(0.3, seed=0), keras.layers.Dense(2),
        ])
        model.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        return model

    callbacks = [
        GeneralizationGap((x[:64], y[:64])),
        RegularizationSchedule(LinearWarmup(2)),
        SWA(start_epoch=2, bn_data=x),
        SharpnessProbe((x[:64], y[:64]), samples=2),
        WeightMonitor(per_layer=False),
        SnapshotEnsemble(cycles=2),
    ]
    tuner = kt.GridSearch(build, objective="val_accuracy", max_trials=2, directory=tmp_path, project_name="t")
    tuner.search(x[:192], y[:192], validation_data=(x[192:], y[192:]), epochs=4, verbose=0, callbacks=callbacks)
    trials = tuner.oracle.get_best_trials(2)
    assert len(trials) == 2
    for trial in trials:
        for name in ("train_loss", "gap_loss", "regularization_multiplier", "swa_models", "sharpness",
                     "sharpness_adversarial", "weight_norm", "zero_fraction", "learning_rate"):
            assert trial.metrics.exists(name), name
    # the originals were copied, never used
    assert callbacks[2].models_averaged == 0 and callbacks[5].snapshots == []
