"""Calibration metrics against a NumPy reference, and the confidence penalty."""

import keras
import numpy as np
import pytest

from kreg.losses import ConfidencePenalty
from kreg.metrics import BrierScore, ExpectedCalibrationError, MaxCalibrationError

pytestmark = pytest.mark.backend_agnostic  # also run under KERAS_BACKEND=jax


def reference_ece_mce(probs, labels, bins):
    conf = probs.max(1)
    correct = (probs.argmax(1) == labels).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    ece, mce = 0.0, 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            gap = abs(correct[inside].mean() - conf[inside].mean())
            ece += inside.mean() * gap
            mce = max(mce, gap)
    return ece, mce


def random_predictions(seed=0, n=2000, k=5, temperature=2.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * temperature
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.integers(0, k, size=n)
    return probs.astype("float32"), labels


def test_ece_and_mce_match_numpy_in_batches():
    probs, labels = random_predictions()
    ece, mce = ExpectedCalibrationError(num_bins=10), MaxCalibrationError(num_bins=10)
    for start in range(0, len(labels), 300):
        for metric in (ece, mce):
            metric.update_state(labels[start:start + 300], probs[start:start + 300])
    ref_ece, ref_mce = reference_ece_mce(probs, labels, 10)
    assert float(ece.result()) == pytest.approx(ref_ece, abs=1e-5)
    assert float(mce.result()) == pytest.approx(ref_mce, abs=1e-5)
    ece.reset_state()
    assert float(ece.result()) == 0.0


def test_calibrated_predictor_has_ece_near_zero():
    rng = np.random.default_rng(1)
    n, k = 20000, 4
    probs = rng.dirichlet(np.ones(k), size=n).astype("float32")
    labels = np.array([rng.choice(k, p=p) for p in probs])  # labels drawn from the predictions
    metric = ExpectedCalibrationError()
    metric.update_state(labels, probs)
    assert float(metric.result()) < 0.02
    over = probs ** 4 / (probs ** 4).sum(1, keepdims=True)  # over-confident version of it
    worse = ExpectedCalibrationError()
    worse.update_state(labels, over)
    assert float(worse.result()) > 0.1


def test_from_logits_and_brier():
    probs, labels = random_predictions(n=500)
    logits = np.log(probs)
    a, b = ExpectedCalibrationError(from_logits=True), ExpectedCalibrationError()
    a.update_state(labels, logits)
    b.update_state(labels, probs)
    assert float(a.result()) == pytest.approx(float(b.result()), abs=1e-5)
    brier = BrierScore()
    brier.update_state(labels, probs)
    ref = ((probs - np.eye(5)[labels]) ** 2).sum(1).mean()
    assert float(brier.result()) == pytest.approx(ref, rel=1e-5)


def test_confidence_penalty_value():
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]], "float32")
    labels = np.array([0, 2])
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    ce = -np.log(p[np.arange(2), labels])
    entropy = -(p * np.log(p)).sum(1)
    loss = ConfidencePenalty(0.5, from_logits=True)(labels, logits)
    assert float(loss) == pytest.approx(np.mean(ce - 0.5 * entropy), rel=1e-5)
    probs_loss = ConfidencePenalty(0.5)(labels, p)
    assert float(probs_loss) == pytest.approx(float(loss), rel=1e-4)
    with pytest.raises(ValueError, match="Received: beta=-0.1"):
        ConfidencePenalty(-0.1)


def test_metrics_in_compiled_fit_and_saved_model(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)])
    model.compile("adam", ConfidencePenalty(0.1, from_logits=True),
                  metrics=[ExpectedCalibrationError(from_logits=True), MaxCalibrationError(from_logits=True),
                           BrierScore(from_logits=True)])
    history = model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    assert {"ece", "mce", "brier"} <= set(history.history)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(model.predict(x[:4], verbose=0), loaded.predict(x[:4], verbose=0), rtol=1e-6)
