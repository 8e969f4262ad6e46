"""Ensembles: the seeds' decomposition adds up; bagging, voting, feature subsets."""

import keras
import numpy as np
import pytest

from kreg.training import Bagging, Ensemble, error_decomposition

pytestmark = pytest.mark.backend_agnostic  # also run under KERAS_BACKEND=jax


def test_decomposition_adds_up_for_squared_error():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(200, 1))
    members = y[None] + rng.normal(size=(5, 200, 1)) * 0.5 + rng.normal(size=(1, 200, 1)) * 0.3
    d = error_decomposition(members, y)
    ensemble = members.mean(axis=0)
    assert d["ensemble_error"] == pytest.approx(float(np.mean((ensemble - y) ** 2)))
    assert d["mean_member_error"] == pytest.approx(float(np.mean((members - y[None]) ** 2)))
    # mean member error = ensemble error + diversity (Krogh and Vedelsby)
    assert d["mean_member_error"] == pytest.approx(d["ensemble_error"] + d["diversity"])
    # ensemble error = V / k + (k - 1) / k * C (the seeds' formula)
    assert d["ensemble_error_from_terms"] == pytest.approx(d["ensemble_error"])
    # shared noise (std 0.3) is the covariance; independent noise (std 0.5) averages out
    assert d["covariance"] == pytest.approx(0.09, abs=0.03)
    assert d["mean_member_error"] == pytest.approx(0.25 + 0.09, abs=0.05)


def test_identical_members_gain_nothing():
    y = np.arange(10.0)
    d = error_decomposition(np.stack([y + 1.0] * 4), y)
    assert d["diversity"] == 0.0 and d["ensemble_error"] == d["mean_member_error"] == d["covariance"] == 1.0


def test_vote_and_mean_combine():
    logits_a = np.log(np.array([[0.6, 0.4], [0.2, 0.8]]))
    logits_b = np.log(np.array([[0.45, 0.55], [0.1, 0.9]]))
    logits_c = np.log(np.array([[0.7, 0.3], [0.4, 0.6]]))
    members = [lambda x, l=l: l for l in (logits_a, logits_b, logits_c)]
    mean = Ensemble(members, from_logits=True).predict(np.zeros((2, 1)))
    np.testing.assert_allclose(mean, [[0.5833333, 0.4166667], [0.2333333, 0.7666667]], rtol=1e-6)
    vote = Ensemble(members, combine="vote", from_logits=True).predict(np.zeros((2, 1)))
    np.testing.assert_allclose(vote, [[2 / 3, 1 / 3], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"argument `combine`.*Received: combine='median'"):
        Ensemble(members, combine="median")
    with pytest.raises(ValueError, match=r"argument `combine`"):
        Ensemble(members, task="regression", combine="vote")


def _build():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_bagging_members_differ_and_the_ensemble_helps():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype("float32")
    y = ((x[:, 0] + x[:, 1] * x[:, 2] + 0.5 * rng.normal(size=300)) > 0).astype("int32")
    bag = Bagging(_build, members=4, feature_fraction=0.67, from_logits=True, seed=3)
    histories = bag.fit(x[:200], y[:200], epochs=15, batch_size=32, verbose=0)
    assert len(bag.members) == len(histories) == 4
    assert all(mask.sum() == 4 for mask in bag.feature_masks)  # round(0.67 * 6) features each
    assert len({tuple(m) for m in bag.feature_masks}) > 1
    result = bag.evaluate(x[200:], y[200:])
    assert result["diversity"] > 0
    assert result["ensemble_error"] < result["mean_member_error"]
    assert result["mean_member_error"] == pytest.approx(result["ensemble_error"] + result["diversity"])
    assert 0.5 < result["accuracy"] <= 1.0
    with pytest.raises(ValueError, match=r"argument `feature_fraction`"):
        Bagging(_build, feature_fraction=0.0)
    with pytest.raises(ValueError, match=r"argument `members`"):
        Bagging(_build, members=0)
