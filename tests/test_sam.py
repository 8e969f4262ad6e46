"""SAM: one step against a hand computation, flatter minima than SGD, saving."""

import keras
import numpy as np
import pytest

from kreg.callbacks import measure_sharpness
from kreg.training import SAM

pytestmark = pytest.mark.backend_agnostic  # also run under KERAS_BACKEND=jax


def _linear(w):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
    model.layers[0].kernel.assign(w)
    return model


@pytest.mark.parametrize("adaptive", [False, True])
def test_one_sam_step_matches_the_formula(adaptive):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    w0 = rng.normal(size=(3, 1)).astype("float32")
    lr, rho = 0.1, 0.3

    def grad(w):  # of mean squared error
        return (2.0 / len(x)) * x.T @ (x @ w - y)

    g = grad(w0)
    if adaptive:
        e = rho * w0 ** 2 * g / np.linalg.norm(np.abs(w0) * g)
    else:
        e = rho * g / np.linalg.norm(g)
    expected = w0 - lr * grad(w0 + e)

    sam = SAM(_linear(w0), rho=rho, adaptive=adaptive)
    sam.compile(keras.optimizers.SGD(lr), "mse")
    sam.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(sam.inner.layers[0].kernel), expected, rtol=1e-4, atol=1e-6)


def _toy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 10)).astype("float32")
    y = ((x[:, 0] * x[:, 1] + 0.5 * rng.normal(size=256)) > 0).astype("int32")
    return x, y


def _train(rho):
    x, y = _toy()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(2)])
    net = model if rho is None else SAM(model, rho=rho)
    net.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    net.fit(x, y, epochs=40, batch_size=32, verbose=0)
    return measure_sharpness(net, x, y, rho=0.1, samples=10)


def test_sam_ends_flatter_than_sgd_with_the_same_seed():
    sgd, sam = _train(None), _train(0.1)
    assert sam["sharpness_adversarial"] < 0.8 * sgd["sharpness_adversarial"]
    assert sam["sharpness"] < sgd["sharpness"]


def test_sam_saves_loads_and_validates(tmp_path):
    x, y = _toy()
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)])
    sam = SAM(model, rho=0.05)
    sam.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = sam.fit(x, y, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}
    sam.save(tmp_path / "sam.keras")
    loaded = keras.saving.load_model(tmp_path / "sam.keras")
    assert isinstance(loaded, SAM) and loaded.rho == 0.05
    np.testing.assert_allclose(loaded.predict(x, verbose=0), sam.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"argument `rho`.*Received: rho=-0.1"):
        SAM(model, rho=-0.1)
    with pytest.raises(ValueError, match=r"argument `model`"):
        SAM("model")
