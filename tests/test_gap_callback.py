import copy

import keras
import numpy as np
import pytest

from kreg.callbacks import GeneralizationGap, gap_value, lower_is_better


def small_model(dropout=0.5):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((13,)), keras.layers.Dense(64, activation="relu"),
        keras.layers.Dropout(dropout, seed=1), keras.layers.Dense(3),
    ])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


def test_gap_sign_convention():
    assert lower_is_better("loss") and lower_is_better("val_mse") and not lower_is_better("accuracy")
    # The lab's classification metric `nll` (the loss without penalty terms) is minimised: its gap is
    # val - train, and an objective `val_nll` is a minimisation (it once came out as "max").
    assert lower_is_better("val_nll") and lower_is_better("kl_divergence") and not lower_is_better("r2")
    assert gap_value("nll", 0.04, 0.15) == pytest.approx(0.11)
    assert gap_value("loss", 0.2, 0.5) == pytest.approx(0.3)
    assert gap_value("accuracy", 0.99, 0.90) == pytest.approx(0.09)


def test_logs_are_inference_mode_evaluations(wine_splits):
    s = wine_splits
    model = small_model()
    gap = GeneralizationGap((s.x_train, s.y_train), penalty=2.0)
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(dict(logs))

    model.fit(s.x_train, s.y_train, validation_data=(s.x_val, s.y_val), epochs=3, batch_size=16,
              callbacks=[gap, Spy()], verbose=0)
    last = seen[-1]
    for key in ("train_loss", "train_accuracy", "gap_loss", "gap_accuracy", "val_penalized_loss"):
        assert key in last
    # Equal to a fresh inference-mode evaluation with the final weights.
    ref = model.evaluate(s.x_train, s.y_train, verbose=0, return_dict=True)
    assert last["train_loss"] == pytest.approx(ref["loss"], rel=1e-4)
    assert last["gap_loss"] == pytest.approx(last["val_loss"] - last["train_loss"])
    assert last["gap_accuracy"] == pytest.approx(last["train_accuracy"] - last["val_accuracy"])
    assert last["val_penalized_loss"] == pytest.approx(last["val_loss"] + 2.0 * max(0.0, last["gap_loss"]))
    # With dropout 0.5 Keras' running training loss is not the honest one.
    assert abs(last["loss"] - last["train_loss"]) > 1e-3


def test_every_n_epochs_and_deepcopy(wine_splits):
    s = wine_splits
    gap = GeneralizationGap((s.x_train, s.y_train), every=2)
    clone = copy.deepcopy(gap)
    assert clone.train_data[0] is gap.train_data[0]  # data shared, not copied
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append("train_loss" in logs)

    small_model().fit(s.x_train, s.y_train, validation_data=(s.x_val, s.y_val), epochs=3, verbose=0,
                      callbacks=[clone, Spy()])
    assert seen == [False, True, True]  # every 2nd epoch, and always the last


def test_early_stopping_can_monitor_the_gap(wine_splits):
    s = wine_splits
    model = small_model(dropout=0.0)
    stop = keras.callbacks.EarlyStopping("gap_loss", patience=1, mode="min")
    history = model.fit(s.x_train, s.y_train, validation_data=(s.x_val, s.y_val), epochs=5, verbose=0,
                        callbacks=[GeneralizationGap((s.x_train, s.y_train)), stop])
    assert "gap_loss" in history.history


def test_validation():
    with pytest.raises(ValueError, match="Received: every=0"):
        GeneralizationGap((np.zeros((2, 1)), np.zeros(2)), every=0)
