"""The scripts in examples/ run as a user runs them (a fresh process each), on the tiny budget.

Each one writes to an MLflow store under tmp_path (``MLFLOW_TRACKING_URI``), never the project's
mlruns/; the YAML one is read back from that store.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run(args, tmp_path):
    env = {**os.environ, "KREG_EXAMPLE_BUDGET": "tiny", "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
           "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "200", "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not (ROOT / "examples" / "mlruns").exists()
    return done.stdout


def number(pattern, text):
    match = re.search(pattern, text, re.M)
    assert match, f"{pattern!r} not in:\n{text}"
    return float(match.group(1))


def test_own_cnn_images(tmp_path):
    out = run([str(EXAMPLES / "own_cnn_images.py")], tmp_path)
    assert "model: your builder __main__.build (plan applied by kreg.regularize)" in out
    assert "trial 0 COMPLETED 2 ep" in out and "trial 1 " in out
    assert re.search(r"^chosen plan: \S", out, re.M)
    for label in ("baseline", "best"):
        assert 0.0 <= number(rf"^{label} \(trial \d+\) test accuracy: ([\d.]+)$", out) <= 1.0
    assert "train 718 / validation 180 / test 899" in out  # the classic split: second half is the test set


def test_own_mlp_regression(tmp_path):
    out = run([str(EXAMPLES / "own_mlp_regression.py")], tmp_path)
    assert "trial 0 COMPLETED 2 ep val_rmse" in out
    kreg_base = number(r"^kreg baseline \(trial \d+\) test MSE: ([\d.]+)$", out)
    kreg_best = number(r"^kreg best \(trial \d+\) test MSE: ([\d.]+)$", out)
    ridge = number(r"^RidgeCV \(alpha=\S+\) test MSE: ([\d.]+)$", out)
    # In the targets' units (diabetes: variance about 6000), not standardized (about 0.5).
    for mse in (kreg_base, kreg_best, ridge):
        assert 1000 < mse < 40000, mse


def test_own_loader_from_yaml(tmp_path):
    pipeline = EXAMPLES / "own_loader" / "pipeline.yaml"
    # `kreg tune` is `python -m kreg.lab.cli tune` (pyproject's entry point); run from elsewhere, the
    # loader and builder import from the pipeline's own folder.
    out = run(["-m", "kreg.lab.cli", "tune", str(pipeline), "--max-trials", "2", "--epochs", "2"], tmp_path)
    assert "data: mydata:load: train 340 / validation 86 / test 143" in out
    assert "trial 0 COMPLETED 2 ep val_accuracy" in out and "gain in test accuracy over the baseline" in out
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("own_loader_breast_cancer")
    found = client.search_runs([experiment.experiment_id])
    parents = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    children = [r for r in found if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 2 and all(c.data.tags["kreg.trial_status"] == "COMPLETED" for c in children)
    metrics = parent.data.metrics
    for name in ("gain_test_accuracy", "test_accuracy", "baseline_test_accuracy"):
        assert name in metrics, name
    assert metrics["gain_test_accuracy"] == pytest.approx(metrics["test_accuracy"] - metrics["baseline_test_accuracy"])
    assert 0.5 < metrics["test_accuracy"] <= 1.0
    assert parent.data.tags["kreg.pipeline"] == "own_loader_breast_cancer"
