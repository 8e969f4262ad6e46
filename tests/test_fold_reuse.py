"""Issues 20/21: the folds of a cross-validated trial train one model, reset before each fold
(``kreg.lab.trial.fit.FoldStart``): the same start and the same figures as a new model per fold, traced once."""

from __future__ import annotations

import numpy as np
import pytest

from kreg.lab.plan import RegularizationPlan
from kreg.lab.trial import fit as fit_module
from kreg.lab.trial import runner as runner_module


def _data():
    import kreg

    rng = np.random.default_rng(0)
    n, classes = 60, 3
    y = np.arange(n) % classes
    x = rng.normal(size=(n, 16, 1)).astype("float32")
    x[np.arange(n), 2 + 4 * y, 0] += 3.0  # a learnable pattern per class
    return kreg.data.from_arrays(x[:36], y[:36], x_val=x[36:45], y_val=y[36:45], x_test=x[45:], y_test=y[45:],
                                 modality="sequence", num_classes=classes, seed=0)


def _build():
    import keras

    inp = keras.Input((16, 1))
    h = keras.layers.Conv1D(8, 3, padding="same")(inp)
    h = keras.layers.BatchNormalization()(h)  # moving statistics and precise BN: state beyond the weights
    h = keras.layers.ReLU()(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    h = keras.layers.Dropout(0.2)(h)  # a seed generator
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(h))


def _search(tmp_path, monkeypatch, reuse: bool):
    """One baseline trial over 2 folds; per fold: the start state, the model and its traced train step."""
    import keras

    import kreg

    seen = []

    class Capture(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            opt = self.model.optimizer
            seen.append({"model": self.model, "start": [keras.ops.convert_to_numpy(v) for v in self.model.variables],
                         "optimizer": [keras.ops.convert_to_numpy(v) for v in opt.variables],
                         "iterations": int(keras.ops.convert_to_numpy(opt.iterations))})

        def on_train_end(self, logs=None):
            seen[-1]["train_function"] = self.model.train_function

    real = runner_module.fit_plan

    def fit_plan(search, plan, epochs, sample, *, seed, last_callbacks=(), start=None):
        return real(search, plan, epochs, sample, seed=seed, last_callbacks=[Capture(), *last_callbacks],
                    start=start)

    monkeypatch.setattr(runner_module, "fit_plan", fit_plan)
    if not reuse:
        monkeypatch.setattr(fit_module.FoldStart, "reusable", staticmethod(lambda plan: False))
    from kreg.lab.search.tune import prepare, request

    search = prepare(request(_build, _data(), techniques={}, epochs=2, cv=2, seed=3,
                             tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")).search  # the runner alone: no MLflow, no tuner
    # randomness in the model (dropout, a shift layer) and in the data pipeline (MixUp), besides the shuffle
    plan = RegularizationPlan(augmentation={"shift": 0.1, "mixup": 0.2})
    record = search.trial_runner().run("0", {}, plan)
    assert record.status == "COMPLETED" and len(record.folds) == 2 == len(seen), record.reason
    return record, seen


TENSORFLOW = __import__("keras").backend.backend() == "tensorflow"


@pytest.mark.skipif(not TENSORFLOW, reason="other backends keep a model per fold (FoldStart.reusable)")
def test_folds_share_one_model_reset_to_the_fresh_start_with_the_same_figures(tmp_path, monkeypatch):
    reused, r_seen = _search(tmp_path, monkeypatch, reuse=True)
    monkeypatch.undo()
    fresh, f_seen = _search(tmp_path, monkeypatch, reuse=False)

    # reused: one model, its train step traced once (the same function object in every fold)
    assert len({id(s["model"]) for s in r_seen}) == 1
    assert len({id(s["train_function"]) for s in r_seen}) == 1
    # a new model per fold without reuse
    assert len({id(s["model"]) for s in f_seen}) == 2

    # every fold starts exactly where the first did: weights, BN statistics, seed state, a fresh optimizer
    first = r_seen[0]
    for s in r_seen[1:]:
        assert s["iterations"] == 0
        for a, b in zip(first["start"], s["start"], strict=True):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(first["optimizer"], s["optimizer"], strict=True):
            np.testing.assert_array_equal(a, b)
    # ... which is where a freshly built model starts (today's behaviour: clear_session, the seed, build)
    for s in f_seen:
        for a, b in zip(first["start"], s["start"], strict=True):
            np.testing.assert_array_equal(a, b)
    # and the folds trained the reused model away from its start, so the reset had something to undo
    import keras

    assert any(not np.array_equal(a, keras.ops.convert_to_numpy(v))
               for a, v in zip(first["start"], r_seen[0]["model"].variables))

    # each fold's figures are what a fresh model gives on that fold
    keys = ["kept_val_accuracy", "val_loss", "train_accuracy", "train_loss", "test_accuracy", "epochs_run"]
    for a, b in zip(reused.folds, fresh.folds, strict=True):
        assert a["fold"] == b["fold"]
        for key in keys:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), (a["fold"], key)
    assert reused.objective == pytest.approx(fresh.objective, rel=1e-4)


def test_plans_that_wrap_or_change_the_model_outside_its_variables_keep_a_model_per_fold():
    assert fit_module.FoldStart.reusable(RegularizationPlan()) == TENSORFLOW  # JAX: see FoldStart's docstring
    assert not fit_module.FoldStart.reusable(RegularizationPlan(sam=0.05))
    assert not fit_module.FoldStart.reusable(RegularizationPlan(ensemble=3))
    assert not fit_module.FoldStart.reusable(RegularizationPlan(swa=0.75))
    assert not fit_module.FoldStart.reusable(RegularizationPlan(dropout=0.2, schedule={}))
    # techniques inside the model, in the loss, the data or the optimizer share it
    assert fit_module.FoldStart.reusable(RegularizationPlan(dropout=0.2, l2=1e-4, weight_decay=1e-3,
                                                            label_smoothing=0.1, early_stopping=5)) == TENSORFLOW


def test_a_model_that_gains_variables_in_training_is_let_go():
    import keras

    start = fit_module.FoldStart()
    model = _build()
    model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    start.model, start._variables = model, fit_module.FoldStart._state(model)
    start._initial = [keras.ops.convert_to_numpy(v) for v in start._variables]
    assert start.intact()
    model.optimizer.add_variable(shape=(1,), name="late")  # a variable the start does not know
    assert not start.intact() and start.model is None
