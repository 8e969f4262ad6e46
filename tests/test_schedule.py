"""Schedulable strengths: schedules, variable-backed layers and penalties, RegularizationSchedule."""

import copy

import keras
import numpy as np
import pytest

import kreg
from kreg import schedules
from kreg.callbacks import RegularizationSchedule
from kreg.layers import ScheduledDropout, ScheduledSpatialDropout1D
from kreg.regularizers import Schedulable

pytestmark = pytest.mark.backend_agnostic  # also run under KERAS_BACKEND=jax


def test_schedule_shapes():
    assert [schedules.LinearWarmup(4)(e, 10) for e in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert [schedules.LinearWarmup(2, start=0.5)(e, 10) for e in range(3)] == [0.75, 1.0, 1.0]
    step = schedules.Step([2, 4], [0.0, 0.5, 1.0])
    assert [step(e, 6) for e in range(6)] == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]
    cosine = schedules.Cosine(0.0, 1.0)
    assert cosine(0, 11) == pytest.approx(0.0) and cosine(5, 11) == pytest.approx(0.5)
    assert cosine(10, 11) == pytest.approx(1.0)
    assert schedules.get({"name": "warmup", "warmup_epochs": 3})(0, 9) == pytest.approx(1 / 3)
    assert schedules.get("constant")(3, 9) == 1.0


def test_schedule_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"argument `warmup_epochs`.*Received: warmup_epochs=0"):
        schedules.LinearWarmup(0)
    with pytest.raises(ValueError, match="argument `values`"):
        schedules.Step([2], [1.0])
    with pytest.raises(ValueError, match=r"argument `schedule`.*Received: schedule='linear'"):
        schedules.get("linear")
    with pytest.raises(ValueError, match=r"argument `targets`.*Received: targets='weights'"):
        RegularizationSchedule("constant", targets="weights")
    with pytest.raises(ValueError, match=r"argument `off_last`"):
        RegularizationSchedule("constant", off_last=-1)


def test_layer_rate_is_a_variable_that_takes_effect_without_rebuild():
    layer = ScheduledSpatialDropout1D(0.0, seed=0)
    x = np.ones((64, 10, 16), "float32")
    np.testing.assert_array_equal(layer(x, training=True), x)  # rate 0: unchanged
    layer.rate = 0.5
    out = np.asarray(layer(x, training=True))
    dropped = (out == 0).all(axis=1).mean()  # whole channels
    assert 0.4 < dropped < 0.6
    assert out.mean() == pytest.approx(1.0, abs=0.08)  # expectation kept
    with pytest.raises(ValueError, match=r"argument `rate`.*Received: rate=1.5"):
        layer.rate = 1.5


def test_schedulable_regularizer_value_and_round_trip():
    w = np.arange(6, dtype="float32").reshape(2, 3)
    reg = Schedulable(keras.regularizers.L2(0.1), scale=0.5)
    assert float(reg(w)) == pytest.approx(0.5 * 0.1 * float(np.sum(w ** 2)), rel=1e-6)
    reg.scale = 0.0
    assert float(reg(w)) == 0.0
    again = Schedulable.from_config(reg.get_config())
    assert again.scale == 0.0 and again.regularizer.l2 == pytest.approx(0.1)
    assert kreg.regularizers.get(keras.saving.serialize_keras_object(reg)).scale == 0.0


def _frozen_model(regularizer=None, dropout=None):
    """Weights never move (learning rate 0), so the logged loss shows the schedule alone."""
    inputs = keras.Input((4,))
    h = inputs if dropout is None else dropout(inputs)
    out = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", kernel_regularizer=regularizer)(h)
    model = keras.Model(inputs, out)
    model.compile(keras.optimizers.SGD(0.0), "mse")
    return model


def test_regularizer_schedule_changes_the_compiled_loss():
    x, y = np.ones((32, 4), "float32"), np.full((32, 1), 4.0, "float32")  # data loss 0
    reg = Schedulable(keras.regularizers.L2(0.25))
    model = _frozen_model(regularizer=reg)
    ramp = RegularizationSchedule(schedules.Step([1, 2], [0.0, 1.0, 0.5]), targets="regularizer")
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[ramp])
    penalty = 0.25 * 4  # L2 factor * sum of the four squared ones
    np.testing.assert_allclose(history.history["loss"], [0.0, penalty, 0.5 * penalty], atol=1e-6)
    assert history.history["regularization_multiplier"] == [0.0, 1.0, 0.5]
    assert reg.scale == 1.0  # restored at the end of training


def test_dropout_schedule_warmup_and_switch_off():
    x, y = np.ones((256, 4), "float32"), np.full((256, 1), 4.0, "float32")
    layer = ScheduledDropout(0.5, seed=0)
    model = _frozen_model(dropout=layer)
    seen = []
    probe = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(layer.rate))
    ramp = RegularizationSchedule(schedules.LinearWarmup(2), off_last=1)
    history = model.fit(x, y, epochs=4, batch_size=256, verbose=0, callbacks=[ramp, probe])
    assert seen == pytest.approx([0.25, 0.5, 0.5, 0.0])
    loss = history.history["loss"]
    assert loss[-1] == pytest.approx(0.0, abs=1e-6)  # dropout off: exact output
    assert loss[0] > 0.5 and loss[1] > loss[0]  # more dropout, noisier output
    assert layer.rate == 0.5


def test_nothing_to_schedule_is_a_clear_error():
    model = _frozen_model(regularizer=keras.regularizers.L2(0.1))  # Keras' L2 holds a float
    with pytest.raises(ValueError, match="found nothing to schedule"):
        model.fit(np.ones((4, 4)), np.ones((4, 1)), epochs=1, verbose=0,
                  callbacks=[RegularizationSchedule("constant", targets="regularizer")])


def test_deepcopy_shares_explicit_targets():
    layer = ScheduledDropout(0.2)
    ramp = RegularizationSchedule("constant", targets=[layer])
    clone = copy.deepcopy(ramp)
    assert clone.targets[0] is layer
