"""The shared layer contract, and statistics of the structured dropout layers."""

import keras
import numpy as np
import pytest

import kreg
from kreg.layers import (DropBlock1D, DropBlock2D, DropConnect, MCDropout, ScheduledDropout,
                         ScheduledGaussianNoise, ScheduledSpatialDropout1D, ScheduledSpatialDropout2D,
                         StochasticDepth, drop_path_rates, predict_mc)

pytestmark = pytest.mark.backend_agnostic  # also run under KERAS_BACKEND=jax

CASES = [
    (lambda: DropBlock1D(0.2, block_size=3, seed=1), (8, 20, 4)),
    (lambda: DropBlock2D(0.2, block_size=3, seed=1), (8, 12, 12, 4)),
    (lambda: StochasticDepth(0.3, seed=1), (8, 6)),
    (lambda: DropConnect(5, rate=0.3, seed=1), (8, 6)),
    (lambda: MCDropout(0.3, seed=1), (8, 6)),
    (lambda: ScheduledDropout(0.3, seed=1), (8, 6)),
    (lambda: ScheduledSpatialDropout1D(0.3, seed=1), (8, 10, 6)),
    (lambda: ScheduledSpatialDropout2D(0.3, seed=1), (8, 5, 5, 6)),
    (lambda: ScheduledGaussianNoise(0.3, seed=1), (8, 6)),
]
IDS = ["DropBlock1D", "DropBlock2D", "StochasticDepth", "DropConnect", "MCDropout", "ScheduledDropout",
       "ScheduledSpatialDropout1D", "ScheduledSpatialDropout2D", "ScheduledGaussianNoise"]


@pytest.mark.parametrize("make, shape", CASES, ids=IDS)
def test_contract_shape_inference_seed(make, shape):
    x = np.random.default_rng(0).normal(size=shape).astype("float32") + 2.0
    keras.utils.set_random_seed(0)  # DropConnect's kernel initialization
    layer = make()
    out = np.asarray(layer(x, training=True))
    assert out.shape[:-1] == x.shape[:-1]
    if not isinstance(layer, (MCDropout, DropConnect)):
        np.testing.assert_array_equal(layer(x, training=False), x)  # identity at inference
        assert not np.allclose(out, x)
    keras.utils.set_random_seed(0)
    again = np.asarray(make()(x, training=True))
    np.testing.assert_array_equal(out, again)  # same seed, same draw


@pytest.mark.parametrize("make, shape", CASES, ids=IDS)
def test_contract_fit_and_saved_model(make, shape, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, *shape[1:])).astype("float32")
    y = rng.integers(0, 2, size=32)
    inputs = keras.Input(shape[1:])
    h = make()(inputs)
    h = keras.layers.Flatten()(h)
    model = keras.Model(inputs, keras.layers.Dense(2)(h))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    if not any(isinstance(layer, MCDropout) for layer in model.layers):
        np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    key = "stddev" if isinstance(model.layers[1], ScheduledGaussianNoise) else "rate"
    assert loaded.layers[1].get_config()[key] == pytest.approx(model.layers[1].get_config()[key])


@pytest.mark.parametrize("layer_cls", [DropBlock1D, DropBlock2D])
def test_dropblock_fraction_blocks_and_mean(layer_cls):
    shape = (64, 32, 8) if layer_cls is DropBlock1D else (64, 16, 16, 8)
    x = np.ones(shape, "float32")
    out = np.asarray(layer_cls(0.15, block_size=3, seed=0)(x, training=True))
    dropped = (out == 0).mean()
    assert 0.11 < dropped < 0.17  # about the rate (overlapping blocks drop a little less)
    assert out.mean() == pytest.approx(1.0, rel=1e-5)  # expectation kept exactly (renormalized)
    # Contiguous: a dropped step/pixel mostly has a dropped neighbour.
    zero = out == 0
    neighbour = zero[:, 1:] & zero[:, :-1]
    assert neighbour.sum() / zero[:, 1:].sum() > 0.5


def test_stochastic_depth_drops_whole_examples():
    short = np.zeros((4000, 3), "float32")
    branch = np.ones((4000, 3), "float32")
    out = np.asarray(StochasticDepth(0.25, seed=0)([short, branch], training=True))
    dropped, kept = np.all(out == 0, axis=1), np.all(np.isclose(out, 1 / 0.75), axis=1)
    assert np.all(dropped | kept)  # whole examples, never parts
    assert (out[:, 0] == 0).mean() == pytest.approx(0.25, abs=0.02)
    assert out.mean() == pytest.approx(1.0, abs=0.03)
    np.testing.assert_array_equal(StochasticDepth(0.25)([short, branch], training=False), short + branch)


def test_drop_path_rates():
    assert drop_path_rates(5, 0.2) == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])
    assert drop_path_rates(1, 0.1) == [0.1]
    with pytest.raises(ValueError, match="Received: max_rate=1.0"):
        drop_path_rates(3, 1.0)


def test_dropconnect_drops_weights_and_keeps_mean():
    layer = DropConnect(200, rate=0.4, seed=0, kernel_initializer="ones", use_bias=False)
    x = np.ones((1, 50), "float32")
    out = np.asarray(layer(x, training=True))
    # Each output sums 50 weights kept with probability 0.6 and scaled by 1/0.6.
    assert out.mean() == pytest.approx(50.0, rel=0.03)
    kept = out[0] * 0.6
    assert kept.std() == pytest.approx(np.sqrt(50 * 0.6 * 0.4), rel=0.15)
    np.testing.assert_allclose(layer(x, training=False), np.full((1, 200), 50.0))


def test_mc_dropout_predictions_have_spread():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(32, activation="relu"),
                              MCDropout(0.3, seed=2), keras.layers.Dense(1)])
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    mean, std = kreg.predict_mc(model, x, samples=20)
    assert mean.shape == std.shape == (16, 1)
    assert (std > 0).all()
    plain_mean, _ = predict_mc(model, x, samples=60)
    assert np.abs(plain_mean - mean).mean() < 3 * std.mean()


def test_rate_is_schedulable_without_recompiling():
    layer = DropBlock2D(0.0, block_size=2, seed=0)
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, layer(inputs))
    model.compile("sgd", "mse")
    x = np.ones((4, 8, 8, 1), "float32")
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(float(logs["loss"]))

        def on_epoch_end(self, epoch, logs=None):
            layer.rate = 0.5  # takes effect in the already-traced train step

    model.fit(x, x, epochs=2, batch_size=4, verbose=0, callbacks=[Probe()])
    assert seen[0] == 0.0 and seen[1] > 0.0
    with pytest.raises(ValueError, match="Received: rate=1.5"):
        layer.rate = 1.5


def test_layer_argument_validation():
    with pytest.raises(ValueError, match="Received: rate=-0.1"):
        DropBlock2D(-0.1)
    with pytest.raises(ValueError, match="Received: block_size=0"):
        DropBlock1D(0.1, block_size=0)
    with pytest.raises(ValueError, match="Received: seed=-1"):
        StochasticDepth(0.1, seed=-1)


@pytest.mark.parametrize("make", [
    lambda r: DropBlock1D(rate=r), lambda r: DropBlock2D(rate=r), lambda r: StochasticDepth(r),
    lambda r: DropConnect(4, rate=r), lambda r: MCDropout(r), lambda r: ScheduledDropout(r),
    lambda r: ScheduledSpatialDropout1D(r), lambda r: ScheduledSpatialDropout2D(r),
], ids=["DropBlock1D", "DropBlock2D", "StochasticDepth", "DropConnect", "MCDropout", "ScheduledDropout",
        "ScheduledSpatialDropout1D", "ScheduledSpatialDropout2D"])
def test_a_rate_that_is_not_a_number_gets_the_house_message(make):
    # A string is not a float: the house ValueError, never a TypeError from comparing it.
    for bad in ("0.1", True, None, [0.1], float("nan")):
        with pytest.raises(ValueError, match=r"Invalid value received for argument `rate`\. Expected a float "
                                             r"between 0 and 1 \(exclusive\)\. Received: rate="):
            make(bad)
    assert make(np.float32(0.25)).rate == pytest.approx(0.25)  # NumPy scalars are numbers
    with pytest.raises(ValueError, match="Received: stddev='0.1'"):
        ScheduledGaussianNoise("0.1")
