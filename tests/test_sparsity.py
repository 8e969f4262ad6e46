"""L1 zeros, L2 shrinks: proximal L1 (SoftThreshold) against scikit-learn's Lasso."""

import keras
import numpy as np
import pytest
from keras import ops

from kreg import constraints, regularizers

pytestmark = pytest.mark.backend_agnostic  # also run under KERAS_BACKEND=jax


def regression(seed=0, n=200, p=12, informative=4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)).astype("float32")
    coef = np.zeros(p, "float32")
    coef[:informative] = rng.uniform(1.0, 3.0, informative) * rng.choice([-1, 1], informative)
    y = (x @ coef + 0.5 * rng.normal(size=n)).astype("float32")
    return x, y


def fit_linear(x, y, *, lr, steps, kernel_regularizer=None, kernel_constraint=None):
    """Full-batch gradient descent on 0.5 * mean squared error."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((x.shape[1],)),
        keras.layers.Dense(1, kernel_regularizer=kernel_regularizer, kernel_constraint=kernel_constraint,
                           kernel_initializer="zeros"),
    ])
    model.compile(keras.optimizers.SGD(lr), loss=lambda t, p: 0.5 * ops.mean(ops.square(ops.reshape(t, (-1,)) - ops.reshape(p, (-1,)))))
    # `steps` full-batch (proximal) gradient steps, in one epoch for speed.
    model.fit(np.tile(x, (steps, 1)), np.tile(y, steps), batch_size=len(x), epochs=1, verbose=0, shuffle=False)
    return model.layers[-1].kernel.numpy()[:, 0]


def test_soft_threshold_reproduces_sklearn_lasso():
    from sklearn.linear_model import Lasso

    x, y = regression()
    alpha, lr = 0.3, 0.1
    ours = fit_linear(x, y, lr=lr, steps=1500, kernel_constraint=constraints.SoftThreshold(lr * alpha))
    ref = Lasso(alpha=alpha, tol=1e-8, max_iter=100000).fit(x, y).coef_
    np.testing.assert_allclose(ours, ref, atol=2e-3)
    assert (ref == 0).sum() >= 4
    np.testing.assert_array_equal(ours == 0, ref == 0)  # the same exact zeros


def test_subgradient_l1_has_no_exact_zeros_and_l2_only_shrinks():
    x, y = regression()
    l1 = fit_linear(x, y, lr=0.1, steps=1500, kernel_regularizer=keras.regularizers.L1(0.3))
    l2 = fit_linear(x, y, lr=0.1, steps=1500, kernel_regularizer=keras.regularizers.L2(0.3))
    ols = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)[0][:-1]
    assert (l1 == 0).sum() == 0  # oscillates around zero instead
    assert np.abs(l1[4:]).max() < 0.05  # ...though small
    assert (l2 == 0).sum() == 0
    assert np.abs(l2).sum() < np.abs(ols).sum()  # shrinks every weight, zeroes none


def test_group_lasso_value_and_groups():
    w = np.array([[3.0, 0.0], [4.0, 0.0], [0.0, 1.0]], "float32")  # columns are groups of size 3
    reg = regularizers.GroupLasso(0.1)
    assert float(reg(w)) == pytest.approx(0.1 * np.sqrt(3) * (5.0 + 1.0), rel=1e-5)
    rows = regularizers.GroupLasso(1.0, axis=0)
    assert float(rows(w)) == pytest.approx(np.sqrt(2) * (3 + 4 + 1), rel=1e-5)
    assert isinstance(regularizers.get("group_lasso"), regularizers.GroupLasso)
    with pytest.raises(ValueError, match="Received: factor=-1"):
        regularizers.GroupLasso(-1)


def test_group_lasso_zeroes_whole_units():
    x, y = regression(n=300, p=6, informative=2)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(16, activation="relu", kernel_regularizer=regularizers.GroupLasso(0.05)),
        keras.layers.Dense(1),
    ])
    model.compile(keras.optimizers.Adam(0.01), "mse")
    model.fit(x, y, epochs=150, batch_size=300, verbose=0)
    norms = np.linalg.norm(model.layers[0].kernel.numpy(), axis=0)
    assert (norms < 1e-2 * norms.max()).sum() >= 4  # several units switched off entirely


def test_constraint_and_regularizer_serialize(tmp_path):
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(3, kernel_regularizer=regularizers.GroupLasso(0.01),
                           kernel_constraint=constraints.SoftThreshold(1e-3)),
    ])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    layer = loaded.layers[-1]
    assert isinstance(layer.kernel_regularizer, regularizers.GroupLasso)
    assert layer.kernel_constraint.threshold == pytest.approx(1e-3)
    x = np.ones((2, 4), "float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
