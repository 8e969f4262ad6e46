"""Regularizers, losses and sequence augmentation against references."""

import keras
import numpy as np
import pytest

from kreg import regularizers
from kreg.augment import RandomShift1D, RandomTimeScale1D
from kreg.losses import SparseCategoricalCrossentropy, smooth_sparse_targets

pytestmark = pytest.mark.backend_agnostic  # also run under KERAS_BACKEND=jax


def test_elastic_net_formula_and_keras_equivalents():
    w = np.array([[0.5, -1.0], [2.0, 0.0]], "float32")
    reg = regularizers.ElasticNet(alpha=0.1, l1_ratio=0.3)
    expected = 0.1 * 0.3 * np.abs(w).sum() + 0.5 * 0.1 * 0.7 * (w ** 2).sum()
    assert float(reg(w)) == pytest.approx(expected, rel=1e-6)
    assert float(regularizers.ElasticNet(0.1, 1.0)(w)) == pytest.approx(float(keras.regularizers.L1(0.1)(w)))
    assert float(regularizers.ElasticNet(0.1, 0.0)(w)) == pytest.approx(float(keras.regularizers.L2(0.05)(w)))


def test_regularizer_get():
    assert regularizers.get(None) is None
    assert isinstance(regularizers.get("elastic_net"), regularizers.ElasticNet)
    assert isinstance(regularizers.get("l2"), keras.regularizers.L2)
    r = regularizers.get({"elastic_net": {"alpha": 0.2, "l1_ratio": 0.9}})
    assert (r.alpha, r.l1_ratio) == (0.2, 0.9)
    assert regularizers.get({"l2": 0.3}).l2 == pytest.approx(0.3)
    r = regularizers.get({"class_name": "ElasticNet", "config": {"alpha": 0.5}})
    assert r.alpha == 0.5
    with pytest.raises(ValueError, match="l1_ratio"):
        regularizers.ElasticNet(0.1, 2.0)


def test_label_smoothing_targets_both_rules():
    y = np.array([2, 0])
    uniform = np.asarray(smooth_sparse_targets(y, 4, 0.2, "uniform"))
    np.testing.assert_allclose(uniform[0], [0.05, 0.05, 0.85, 0.05], rtol=1e-6)
    others = np.asarray(smooth_sparse_targets(y, 4, 0.2, "others"))
    np.testing.assert_allclose(others[1], [0.8, 0.2 / 3, 0.2 / 3, 0.2 / 3], rtol=1e-6)
    np.testing.assert_allclose(uniform.sum(1), 1, rtol=1e-6)
    np.testing.assert_allclose(others.sum(1), 1, rtol=1e-6)


def test_sparse_label_smoothing_matches_keras_categorical():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(8, 5)).astype("float32")
    y = rng.integers(0, 5, size=8)
    ours = SparseCategoricalCrossentropy(0.1, from_logits=True)(y, logits)
    ref = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(np.eye(5)[y], logits)
    assert float(ours) == pytest.approx(float(ref), rel=1e-5)
    plain = SparseCategoricalCrossentropy(0.0, from_logits=True)(y, logits)
    ref = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
    assert float(plain) == pytest.approx(float(ref), rel=1e-6)


def test_shift_is_a_roll_per_example():
    x = np.tile(np.arange(20, dtype="float32"), (64, 1))[..., None]
    out = np.asarray(RandomShift1D(0.25, seed=3)(x, training=True))[..., 0]
    shifts = set()
    for row in out:
        k = (20 - int(row[0])) % 20  # the value now at step 0 tells the shift
        np.testing.assert_array_equal(row, np.roll(np.arange(20), k))
        shifts.add(((k + 10) % 20) - 10)
    assert max(abs(s) for s in shifts) <= 5 and len(shifts) > 5  # spread over [-5, 5]
    np.testing.assert_array_equal(RandomShift1D(0.25)(x, training=False), x)


def test_constant_shift_fills_and_seed_determinism():
    x = np.ones((32, 10, 2), "float32")
    out = np.asarray(RandomShift1D(3, mode="constant", fill_value=0.0, seed=1)(x, training=True))
    assert out.shape == x.shape and set(np.unique(out)) <= {0.0, 1.0} and (out == 0).any()
    a = RandomShift1D(3, seed=7)(np.random.default_rng(0).normal(size=(4, 10, 1)), training=True)
    b = RandomShift1D(3, seed=7)(np.random.default_rng(0).normal(size=(4, 10, 1)), training=True)
    np.testing.assert_array_equal(a, b)


def test_time_scale_stretches_about_centre():
    x = np.linspace(-1, 1, 41, dtype="float32")[None, :, None].repeat(256, 0)
    out = np.asarray(RandomTimeScale1D(0.2, seed=0)(x, training=True))[..., 0]
    # A ramp through the centre stays a ramp: its slope is divided by the factor.
    centre = out[:, 15:26]
    slopes = (centre[:, -1] - centre[:, 0]) / (x[0, 25, 0] - x[0, 15, 0])
    assert slopes.min() > 1 / 1.2 - 1e-3 and slopes.max() < 1 / 0.8 + 1e-3
    assert slopes.std() > 0.05
    np.testing.assert_allclose(out[:, 20], 0.0, atol=1e-6)  # the centre does not move
    np.testing.assert_array_equal(RandomTimeScale1D(0.0)(x, training=True), x)


def test_augmentation_in_tf_data_and_validation():
    import tensorflow as tf

    layer = RandomShift1D(0.2, seed=0)
    ds = tf.data.Dataset.from_tensor_slices(np.zeros((8, 10, 1), "float32")).batch(4)
    ds = ds.map(lambda x: layer(x, training=True))
    assert [tuple(b.shape) for b in ds] == [(4, 10, 1), (4, 10, 1)]
    with pytest.raises(ValueError, match="Received: max_shift=1.5"):
        RandomShift1D(1.5)
    with pytest.raises(ValueError, match="Received: mode='reflect'"):
        RandomShift1D(0.1, mode="reflect")
    with pytest.raises(ValueError, match="Received: factor=-0.1"):
        RandomTimeScale1D(-0.1)
