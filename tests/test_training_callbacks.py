"""SWA, SharpnessProbe, WeightMonitor and SnapshotEnsemble: numbers, errors, deepcopy."""

import keras
import numpy as np
import pytest

from kreg.callbacks import (SWA, SharpnessProbe, SnapshotEnsemble, WeightMonitor, measure_sharpness,
                            refresh_batch_norm)
from kreg.constraints import SoftThreshold

pytestmark = pytest.mark.backend_agnostic  # also run under KERAS_BACKEND=jax


def _data(n=256, d=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    return x, (x[:, 0] - x[:, 1] > 0).astype("int32")


def _classifier(d=8, batch_norm=False):
    layers = [keras.Input((d,)), keras.layers.Dense(16, activation="relu")]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())
    layers.append(keras.layers.Dense(2))
    model = keras.Sequential(layers)
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class _Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([keras.ops.convert_to_numpy(w).copy() for w in self.model.trainable_variables])


def test_swa_weights_are_the_mean_of_the_snapshots():
    x, y = _data()
    keras.utils.set_random_seed(0)
    model = _classifier()
    recorder = _Recorder()
    swa = SWA(start_epoch=2, frequency=2)
    history = model.fit(x, y, epochs=7, batch_size=32, verbose=0, callbacks=[recorder, swa])
    snapshots = [recorder.weights[e] for e in (2, 4, 6)]
    for i, variable in enumerate(model.trainable_variables):
        expected = np.mean([snap[i] for snap in snapshots], axis=0)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), expected, rtol=1e-5, atol=1e-6)
        assert not np.allclose(expected, snapshots[-1][i])  # the average is not the last weights
    assert history.history["swa_models"] == [0, 0, 1, 1, 2, 2, 3]


def test_swa_sets_its_learning_rate():
    x, y = _data()
    model = _classifier()
    model.fit(x, y, epochs=3, verbose=0, callbacks=[SWA(start_epoch=1, swa_lr=0.01)])
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.01)


def test_swa_needs_bn_data_for_batch_norm_models():
    x, y = _data()
    with pytest.raises(ValueError, match=r"argument `bn_data`.*Received: bn_data=None"):
        _classifier(batch_norm=True).fit(x, y, epochs=1, verbose=0, callbacks=[SWA()])
    with pytest.raises(ValueError, match=r"argument `frequency`"):
        SWA(frequency=0)


def test_batch_norm_refresh_gives_the_average_batch_statistics():
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(256, 3)) * [1.0, 2.0, 0.5] + [3.0, -1.0, 0.0]).astype("float32")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.BatchNormalization()(inputs))
    assert refresh_batch_norm(model, x, batch_size=64) == 4
    bn = model.layers[-1]
    batches = x.reshape(4, 64, 3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_mean), batches.mean(axis=1).mean(0), rtol=1e-4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_variance), batches.var(axis=1).mean(0), rtol=1e-3)
    assert bn.momentum == pytest.approx(0.99)  # put back


def _linear_at_minimum(scale, d=10, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(2000, d)) * scale).astype("float32")
    w = rng.normal(size=(d, 1)).astype("float32")
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(1, use_bias=False)])
    model.compile("sgd", "mse")
    model.layers[0].kernel.assign(w)
    return model, x, x @ w, w


def test_sharpness_is_larger_at_a_sharp_minimum():
    # Same weights, same (zero) loss; the sharp problem's inputs are 5x larger,
    # so the loss rises 25x faster around the minimum: rise = rho^2 |w|^2 s^2.
    rho = 0.05
    rises = {}
    for scale in (1.0, 5.0):
        model, x, y, w = _linear_at_minimum(scale)
        result = measure_sharpness(model, x, y, rho=rho, samples=20)
        rises[scale] = result["sharpness"]
        expected = rho ** 2 * float(np.sum(w ** 2)) * scale ** 2
        assert result["sharpness"] == pytest.approx(expected, rel=0.25)
        assert result["probe_loss"] == pytest.approx(0.0, abs=1e-6)
        assert result["sharpness_adversarial"] >= -1e-6  # a rise, never a fall, at a minimum
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.layers[0].kernel), w)  # restored
    assert rises[5.0] > 20 * rises[1.0]


def test_sharpness_probe_logs_every_epoch_and_validates():
    x, y = _data()
    model = _classifier()
    probe = SharpnessProbe((x[:128], y[:128]), rho=0.1, samples=2, every=2)
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[probe])
    assert len(history.history["sharpness"]) == 2  # epochs 2 and 3 (the last)
    assert all(s > 0 for s in history.history["sharpness_adversarial"])
    with pytest.raises(ValueError, match=r"argument `rho`.*Received: rho=0"):
        SharpnessProbe((x, y), rho=0)
    with pytest.raises(ValueError, match=r"argument `data`"):
        SharpnessProbe(x)


def _sparse_regression(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, 20)).astype("float32")
    coef = np.zeros((20, 1), "float32")
    coef[:4, 0] = [3.0, -2.0, 1.5, 1.0]
    return x, x @ coef + 0.1 * rng.normal(size=(400, 1)).astype("float32")


@pytest.mark.parametrize("penalty", ["proximal_l1", "l2"])
def test_weight_monitor_shows_l1_zeros_and_l2_shrinkage(penalty):
    x, y = _sparse_regression()
    lr, alpha = 0.05, 0.1
    keras.utils.set_random_seed(0)
    kwargs = ({"kernel_constraint": SoftThreshold(lr * alpha)} if penalty == "proximal_l1"
              else {"kernel_regularizer": keras.regularizers.L2(alpha)})
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(1, name="linear", **kwargs)])
    model.compile(keras.optimizers.SGD(lr), "mse")
    history = model.fit(x, y, epochs=30, batch_size=400, verbose=0, callbacks=[WeightMonitor()])
    zeros = history.history["zero_fraction"]
    assert history.history["zero_fraction/linear"] == zeros
    if penalty == "proximal_l1":
        assert zeros[-1] >= 0.5  # most of the 16 irrelevant inputs exactly zero
    else:
        assert zeros[-1] == 0.0
    kernel = keras.ops.convert_to_numpy(model.layers[0].kernel)
    assert history.history["weight_norm"][-1] == pytest.approx(float(np.linalg.norm(kernel)), rel=1e-5)


def test_snapshot_ensemble_cycles_and_averages_snapshots():
    x, y = _data()
    model = _classifier()
    snaps = SnapshotEnsemble(cycles=3, lr_max=0.2, lr_min=0.0)
    history = model.fit(x, y, epochs=6, batch_size=32, verbose=0, callbacks=[snaps])
    np.testing.assert_allclose(history.history["learning_rate"], [0.2, 0.1, 0.2, 0.1, 0.2, 0.1], rtol=1e-6)
    assert len(snaps.snapshots) == 3
    ensemble = snaps.ensemble(from_logits=True)
    probabilities = []
    for weights in snaps.snapshots:
        model.set_weights(weights)
        logits = model.predict(x, verbose=0)
        probabilities.append(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(ensemble.predict(x), np.mean(probabilities, axis=0), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match=r"argument `cycles`"):
        _classifier().fit(x, y, epochs=2, verbose=0, callbacks=[SnapshotEnsemble(cycles=3)])
