"""Issue 18: the answer leaves the lab whole.

The refit model takes the user's raw inputs (standardization, categories'
encoding, kreg's channel axis inside it) and answers in their units; it is an
MLflow model (Keras flavor, a pyfunc over raw arrays and DataFrames, a
signature and an input example), optionally registered. Every round trip is
checked in a fresh process, on the raw data the user has, against the parent
run's own ``refit_test_*`` figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

# A fresh process: the saved Keras answer (after `import kreg`, safe mode) and the MLflow pyfunc model
# (without importing kreg first: the model's loader does) on the user's raw inputs.
_FRESH = r"""
import json, sys
import numpy as np, pandas as pd
args = json.loads(sys.argv[1])
import mlflow
mlflow.set_tracking_uri(args["uri"])
before = "kreg" in sys.modules
pyfunc = mlflow.pyfunc.load_model(args["model_uri"])
raw = pd.read_csv(args["raw"]) if args["raw"].endswith(".csv") else np.load(args["raw"])
out = pyfunc.predict(raw)
out.to_csv(args["out"] + ".pyfunc.csv", index=False)
import keras, kreg
model = keras.saving.load_model(args["keras"], safe_mode=True)
if isinstance(raw, pd.DataFrame):
    feed = {}
    for column, (name, kind) in args["columns"].items():
        values = raw[column].to_numpy()
        feed[name] = values.astype(str).astype(object) if kind == "string" else values.astype("float32")
else:
    feed = raw
np.save(args["out"] + ".keras.npy", keras.ops.convert_to_numpy(model.predict(feed, verbose=0)))
schema = pyfunc.metadata.get_input_schema()
print(json.dumps({"kreg_before_pyfunc": before, "signature": str(schema),
                  "example": pyfunc.metadata.saved_input_example_info is not None}))
"""


def _fresh(tmp_path, uri, summary, raw_path, columns=None):
    client = MlflowClient(uri)
    keras_path = client.download_artifacts(summary.parent_run_id, "model/model.keras", str(tmp_path))
    out = str(tmp_path / "out")
    args = {"uri": uri, "model_uri": summary.model_uri, "raw": str(raw_path), "keras": keras_path, "out": out,
            "columns": columns or {}}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", _FRESH, json.dumps(args)], capture_output=True, text=True,
                          env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return report, pd.read_csv(out + ".pyfunc.csv"), np.load(out + ".keras.npy")


def _refit_figures(uri, summary):
    return MlflowClient(uri).get_run(summary.parent_run_id).data.metrics


@pytest.mark.lab_e2e  # also under KERAS_BACKEND=jax (scripts/test.sh)
def test_regression_on_raw_units_predicts_in_target_units_in_a_fresh_process_and_registers(tmp_path):
    import keras

    import kreg
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    x = x * 100 + 50  # raw units, far from standardized
    x_test, y_test = x[350:], y[350:]

    def build():
        inputs = keras.Input((10,))
        return keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(16, activation="relu")(inputs)))

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    summary = kreg.tune(build, kreg.data.from_arrays(x[:350], y[:350], x_test=x_test, y_test=y_test),
                        techniques={"l2": {"min": 1e-5, "max": 1e-2, "scale": "log"}}, tuner="random",
                        max_trials=1, epochs=4, tracking_uri=uri, verbose=0, register="diabetes_answer", cv=None)
    figures = _refit_figures(uri, summary)
    # In this process: the model takes raw inputs and answers in the targets' units.
    here = summary.model.predict(x_test, verbose=0).reshape(-1)
    assert np.sqrt(np.mean((here - y_test) ** 2)) == pytest.approx(figures["refit_test_rmse"], rel=1e-4)
    assert abs(here.mean() - y_test.mean()) < 0.5 * y_test.std()  # in the targets' units, not standardized
    np.save(tmp_path / "raw.npy", x_test)
    report, pyfunc, fresh = _fresh(tmp_path, uri, summary, tmp_path / "raw.npy")
    assert report["kreg_before_pyfunc"] is False and report["example"]
    assert "float64" in report["signature"] and "(-1, 10)" in report["signature"]
    rmse = np.sqrt(np.mean((fresh.reshape(-1) - y_test) ** 2))
    assert rmse == pytest.approx(figures["refit_test_rmse"], rel=1e-4)
    np.testing.assert_allclose(pyfunc["prediction"].to_numpy(), fresh.reshape(-1), rtol=1e-5)
    # The registry holds it, and its version points at the parent run's logged model.
    version = MlflowClient(uri).get_model_version("diabetes_answer", "1")
    assert version.run_id == summary.parent_run_id
    tags = MlflowClient(uri).get_run(summary.parent_run_id).data.tags
    assert tags["kreg.registered_model"] == "diabetes_answer version 1"
    assert tags["kreg.model_uri"] == summary.model_uri
    model = MlflowClient(uri).get_logged_model(summary.model_uri.removeprefix("models:/"))
    assert model.source_run_id == summary.parent_run_id
    linked = {m.key: m.value for m in model.metrics}
    assert linked["refit_test_rmse"] == pytest.approx(figures["refit_test_rmse"])


def test_raw_digits_images_score_the_refit_accuracy_in_a_fresh_process(tmp_path):
    import kreg
    from sklearn.datasets import load_digits

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    summary = kreg.tune("cnn2d", "digits", model_args={"width": 8, "depth": 1, "dense_units": 16}, techniques={},
                        tuner="random", max_trials=1, epochs=3, tracking_uri=uri, verbose=0, cv=None)
    figures = _refit_figures(uri, summary)
    digits = load_digits()
    half = len(digits.images) // 2
    raw, labels = digits.images[half:], digits.target[half:]  # pixels 0-16, (n, 8, 8): no channel axis
    np.save(tmp_path / "raw.npy", raw[..., None].astype("float32"))
    report, pyfunc, fresh = _fresh(tmp_path, uri, summary, tmp_path / "raw.npy")
    assert np.mean(fresh.argmax(1) == labels) == pytest.approx(figures["refit_test_accuracy"], abs=1e-6)  # float32 accuracy; one example is 1e-3
    assert np.mean(pyfunc["label"].to_numpy() == labels) == pytest.approx(figures["refit_test_accuracy"], abs=1e-6)  # float32 accuracy; one example is 1e-3
    from kreg.lab.task import Classification  # the pyfunc answers probabilities; this model outputs logits

    probabilities = Classification.probabilities(fresh, summary.answer.exported.activation)
    assert summary.answer.exported.activation == "linear"
    np.testing.assert_allclose(pyfunc[[f"p_{i}" for i in range(10)]].to_numpy(), probabilities, rtol=1e-5,
                               atol=1e-7)
    # In this process the model also takes the images as scikit-learn gives them (no channel axis).
    answer = summary.answer.exported
    assert np.mean(answer.predict(raw).argmax(1) == labels) == pytest.approx(figures["refit_test_accuracy"])


def _table(rng, n):
    """Numbers, a category and a boolean; string labels that depend on them."""
    age = rng.normal(45, 12, n)
    city = rng.choice(["Lyon", "Paris", "Nice"], n)
    member = rng.random(n) > 0.5
    score = (age - 45) / 12 + np.where(city == "Paris", 1.2, np.where(city == "Nice", -1.2, 0)) + member
    label = np.where(score + rng.normal(0, 0.5, n) > 0.5, "buys", "leaves")
    return pd.DataFrame({"age": age, "city": city, "member": member, "label": label})


def test_csv_with_categories_and_string_labels_predicts_raw_rows_in_a_fresh_process(tmp_path):
    import kreg

    rng = np.random.default_rng(0)
    train, test = _table(rng, 400), _table(rng, 150)
    test.loc[:4, "city"] = "Brest"  # unseen in training: all zeros, as inside the search
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    summary = kreg.tune("mlp", kreg.data.from_csv(train, "label", test=test), model_args={"width": 16, "depth": 1},
                        techniques={}, tuner="random", max_trials=1, epochs=4, tracking_uri=uri, verbose=0, cv=None)
    figures = _refit_figures(uri, summary)
    raw = test.drop(columns="label")
    raw.to_csv(tmp_path / "raw.csv", index=False)
    exported = summary.answer.exported
    assert exported.inputs == "columns" and exported.classes == ("buys", "leaves")
    report, pyfunc, fresh = _fresh(tmp_path, uri, summary, tmp_path / "raw.csv", columns=exported.describe()["columns"])
    assert "city" in report["signature"] and "string" in report["signature"]
    assert set(pyfunc["label"]) <= {"buys", "leaves"}
    accuracy = np.mean(pyfunc["label"].to_numpy() == test["label"].to_numpy())
    assert accuracy == pytest.approx(figures["refit_test_accuracy"], abs=1e-6)  # float32 accuracy; one example is 1e-3
    from kreg.lab.task import Classification

    np.testing.assert_allclose(pyfunc[["p_buys", "p_leaves"]].to_numpy(),
                               Classification.probabilities(fresh, exported.activation), rtol=1e-5, atol=1e-7)
    # A dict of raw columns predicts in this process too.
    here = exported.predict({c: raw[c].to_numpy() for c in raw.columns})
    np.testing.assert_allclose(here, fresh, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("mode", ["feature", "global"])
def test_whole_model_equals_the_model_on_prepared_inputs(mode):
    import keras

    import kreg
    from kreg.lab.trial.export import raw_example, whole_model

    rng = np.random.default_rng(1)
    x = rng.normal(50, 20, size=(120, 12)).astype("float64")
    y = rng.integers(0, 3, 120)
    splits = kreg.data.from_arrays(x[:100], y[:100], x_test=x[100:], y_test=y[100:], modality="sequence",
                                   standardize=mode)
    assert splits.spec.shape == (12, 1) and splits.raw_shape == (12,)
    inner = keras.Sequential([keras.Input((12, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    exported = whole_model(inner, splits, splits.task)
    np.testing.assert_allclose(exported.model.predict(x[100:], verbose=0),
                               inner.predict(splits.x_test, verbose=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(raw_example(splits, 3), x[100:103], rtol=1e-5)  # the example is raw, too


def test_data_kreg_did_not_prepare_gives_back_the_users_model():
    import keras

    import kreg
    from kreg.lab.trial.export import whole_model

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(60, 4)), rng.integers(0, 2, 60)
    splits = kreg.data.from_arrays(x[:50], y[:50], x_test=x[50:], y_test=y[50:], standardize="none")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert whole_model(model, splits, splits.task).model is model


def test_register_needs_a_name_and_a_refit():
    import kreg
    from kreg.lab.errors import ConfigError

    with pytest.raises(ConfigError, match="register"):
        kreg.tune("mlp", "wine", register="", max_trials=1, epochs=1, verbose=0, cv=None)
    with pytest.raises(ConfigError, match="refit"):
        kreg.tune("mlp", "wine", register="x", refit=False, max_trials=1, epochs=1, verbose=0, cv=None)


def test_a_pipeline_and_the_command_line_name_the_registry_entry_and_the_pruning():
    from kreg.lab.config import parse_pipeline

    cfg = parse_pipeline({"name": "x", "data": {"dataset": "wine"}, "model": {"type": "mlp"},
                          "tracking": {"register_as": "wine_answer"}, "search": {"prune": "asha"}})
    kwargs = cfg.tune_kwargs()
    assert kwargs["register"] == "wine_answer" and kwargs["prune"]["rule"] == "asha"
    overridden = cfg.with_overrides(register="other", prune="none").tune_kwargs()  # --register / --prune
    assert overridden["register"] == "other" and overridden["prune"]["rule"] == "none"
