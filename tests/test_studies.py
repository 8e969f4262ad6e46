"""Issue 14 (first studies): a claim of the seeds measured on a model and data, logged to MLflow and read back."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from kreg.lab.studies.base import probabilities
from kreg.lab.studies.ensemble_size import decomposition

SMALL = {"model_args": {"width": 16, "depth": 1}, "verbose": 0}


def test_decomposition_equals_the_error_of_the_average_and_falls_as_1_over_k_for_independent_errors():
    rng = np.random.default_rng(0)
    errors = rng.normal(size=(4, 500, 3))
    d = decomposition(errors)
    direct = np.mean(np.sum(errors.mean(axis=0) ** 2, axis=-1))  # the reference: the average's squared error
    assert d["measured"] == pytest.approx(direct, rel=1e-12)
    assert d["predicted"] == pytest.approx(direct, rel=1e-12)
    assert d["V"] == pytest.approx(3.0, rel=0.05) and abs(d["C"]) < 0.1  # independent: V/k
    assert d["measured"] == pytest.approx(3.0 / 4, rel=0.1)
    shared = rng.normal(size=(1, 500, 3))  # the same error in every member: averaging cannot help
    same = decomposition(np.repeat(shared, 4, axis=0))
    assert same["C"] == pytest.approx(same["V"]) and same["measured"] == pytest.approx(same["V"])


def test_probabilities_from_every_head():
    logits = np.array([[2.0, 0.0, -1.0]])
    assert probabilities(logits, "linear").sum() == pytest.approx(1.0)
    assert probabilities(logits, "linear").argmax() == 0
    assert probabilities(np.array([[0.8]]), "sigmoid") == pytest.approx(np.array([[0.2, 0.8]]))
    assert probabilities(np.array([[0.0]]), "binary_logit") == pytest.approx(np.array([[0.5, 0.5]]))


def test_ensemble_size_formula_holds_and_its_runs_are_in_mlflow(tmp_path):
    import kreg

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = kreg.study("ensemble_size", "mlp", "wine", plan={"dropout": 0.2}, epochs=3, members=3,
                        tracking_uri=uri, **SMALL)
    assert [p["k"] for p in result.points] == [1, 2, 3]
    for point in result.points:
        assert point["measured"] == pytest.approx(point["predicted"], abs=1e-12)
    assert result.held and result.figures["error_kmax"] <= result.figures["V"]
    client = MlflowClient(uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["kreg.study"] == "ensemble_size"
    assert parent.data.tags["kreg.held"] == "true" and "V/k + (k-1)C/k" in parent.data.tags["kreg.verdict"]
    assert parent.data.metrics["max_abs_difference"] < 1e-12
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{result.parent_run_id}'")
    assert sorted(r.data.tags["kreg.point"] for r in children) == ["member-1", "member-2", "member-3"]
    assert all(r.data.tags["kreg.plan"] == "dropout=0.2" and "test_accuracy" in r.data.metrics for r in children)
    assert [a.path for a in client.list_artifacts(result.parent_run_id)] == ["ensemble_size.png"]


def test_learning_curve_from_the_command_line(tmp_path):
    """`kreg study` in a fresh process (its default: the MLP on digits); the store read back: the gap shrinks
    from 10% of the training set to all of it. 15 epochs (was 40): baseline gap 0.236 at 72 examples against
    0.005 at 718 (40 epochs: 0.233 against 0.017; 10 epochs: 0.203 against -0.002)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KREG_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "kreg.lab.cli", "study", "learning_curve", "--plan", "dropout=0.3",
                           "--set", "fractions=0.1,1", "--epochs", "15", "--tracking-uri", uri],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "HELD: baseline gap in accuracy" in proc.stdout, proc.stdout
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("kreg-studies")
    parents = client.search_runs([exp.experiment_id], "tags.`kreg.role` = 'study'")
    assert len(parents) == 1 and parents[0].data.tags["kreg.study"] == "learning_curve"
    m = parents[0].data.metrics
    assert m["size_smallest"] == 72 and m["size_largest"] == 718 and m["gap_largest"] < m["gap_smallest"]
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'")
    assert sorted(r.data.tags["kreg.point"] for r in children) == ["baseline-n718", "baseline-n72",
                                                                    "plan-n718", "plan-n72"]
    assert [a.path for a in client.list_artifacts(parents[0].info.run_id)] == ["learning_curve.png"]


@pytest.mark.parametrize("args, expected", [
    (["study", "nope"], "Expected one of bias_variance, capacity_curve, dropout_inference, early_stopping_l2, "
                        "ensemble_size, flat_minima, label_smoothing, learning_curve, noise_as_l2, sparsity_paths, "
                        "validation_curve"),
    (["study", "validation_curve", "--set", "strengths=1e-5,1e-4,1e-3", "--set", "technique=nope"],
     "`study.technique`"),
    (["study", "label_smoothing", "--set", "strengths=0.1,0.2"], "0 among them"),
    (["study", "dropout_inference", "--set", "rate=1.5"], "a dropout rate in (0, 1)"),
    (["study", "learning_curve", "--set", "bogus=1"], "an option of the learning_curve study (fractions)"),
    (["study", "learning_curve", "--set", "fractions=0.5"], "two or more fractions"),
    (["study", "ensemble_size", "--set", "members=1"], "an integer of at least 2"),
    (["study", "ensemble_size", "--plan", "dropout"], "NAME=VALUE"),
])
def test_bad_study_input_is_refused_naming_the_field(tmp_path, capsys, args, expected):
    from kreg.lab.cli import main

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main([*args, "--tracking-uri", uri, "--epochs", "1"]) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists()  # refused before the data loaded or any run was created


def test_ridge_convention_matches_scikit_learn_with_the_summed_loss():
    """alpha = s^2 on the mean loss is scikit-learn's Ridge(alpha = n * s^2) on the summed one."""
    from sklearn.linear_model import Ridge

    from kreg.lab.studies.noise_as_l2 import ridge

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 6)), rng.normal(size=(200, 2))
    reference = Ridge(alpha=200 * 0.25).fit(x, y).coef_.T
    assert ridge(x, y, 0.25) == pytest.approx(reference, rel=1e-9, abs=1e-12)


def test_noise_as_l2_on_wine(tmp_path):
    import kreg

    result = kreg.study("noise_as_l2", "mlp", "wine", noise=(0.5,), steps=900,
                        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", **SMALL)
    (point,) = result.points
    assert point["l2_vs_ridge"] < 0.005  # Keras' L2(s^2 / outputs) on the scaled problem is the closed form
    assert point["noise_vs_ridge"] < 0.05 and point["ols_vs_ridge"] > 0.5  # noise lands on ridge, far from OLS
    assert result.held
    parent = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(result.parent_run_id)
    assert parent.data.tags["kreg.study"] == "noise_as_l2" and parent.data.metrics["max_noise_vs_ridge"] < 0.05


def test_spread_auroc_against_a_direct_count():
    from kreg.lab.studies.dropout_inference import spread_auroc

    spread = np.array([0.1, 0.2, 0.3, 0.4, 0.2])
    wrong = np.array([False, False, True, True, True])
    # misclassified spreads 0.3, 0.4, 0.2 against correct 0.1, 0.2: 5 of 6 pairs higher, 1 tie
    assert spread_auroc(spread, wrong) == pytest.approx((5 + 0.5) / 6)


def test_dropout_inference_on_digits(tmp_path):
    import kreg

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = kreg.study("dropout_inference", epochs=15, samples=40, tracking_uri=uri, verbose=0,
                        model_args={"width": 32, "depth": 1})  # undertrained (accuracy about 0.82) on purpose
    f = result.figures
    assert f["mean_to_inference_ratio"] == pytest.approx(1.0, abs=0.02)  # inverted dropout keeps the mean
    assert f["relative_deviation"] < f["relative_deviation_unscaled"] / 2
    assert f["spread_auroc"] > 0.6 and f["error_high_spread"] > f["error_low_spread"]
    assert result.held
    client = MlflowClient(uri)
    assert client.get_run(result.parent_run_id).data.tags["kreg.study"] == "dropout_inference"
    assert [a.path for a in client.list_artifacts(result.parent_run_id)] == ["dropout_inference.png"]


def test_reliability_bins_and_ece_by_hand():
    from kreg.lab.studies.label_smoothing import reliability

    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.4, 0.6], [0.7, 0.3]])
    y = np.array([0, 1, 1, 0])
    conf, acc, count, ece = reliability(probs, y, bins=10)
    assert count.sum() == 4 and count[9] == 1 and count[8] == 1 and count[5] == 1 and count[6] == 1
    # |1 - 0.95| + |0 - 0.9| + |1 - 0.6| + |1 - 0.7|, over 4 examples
    assert ece == pytest.approx((0.05 + 0.9 + 0.4 + 0.3) / 4)


def test_label_smoothing_lowers_confidence_and_is_logged(tmp_path):
    import kreg

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = kreg.study("label_smoothing", "mlp", "wine", epochs=150, strengths=(0.0, 0.3), tracking_uri=uri,
                        model_args={"width": 32, "depth": 1}, verbose=0)  # trained until confident
    zero, smoothed = result.points
    assert zero["strength"] == 0.0 and smoothed["strength"] == 0.3
    assert smoothed["mean_confidence"] < zero["mean_confidence"]  # the targets cap the confidence
    assert result.held == (smoothed["ece"] < zero["ece"])
    parent = MlflowClient(uri).get_run(result.parent_run_id)
    assert parent.data.metrics["ece_baseline"] == pytest.approx(zero["ece"])
    assert parent.data.tags["kreg.held"] == str(result.held).lower()
