"""`kreg tune` end to end into a temporary MLflow store, read back with MlflowClient."""

from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from kreg.lab.cli import main

PIPELINE = {
    "name": "wine_it",
    "seed": 0,
    "data": {"dataset": "wine", "train_eval_samples": 50},
    "model": {"type": "mlp", "width": 16, "depth": 1},
    "training": {"epochs": 2, "batch_size": 16, "learning_rate": 0.01},
    "search": {"cv": None, "refit": False,  # nothing here reads the refit: test_selection's and test_export's
        "tuner": "random",
        "max_trials": 2,
        "techniques": {"dropout": {"min": 0.1, "max": 0.3}, "l2": {"min": 1e-5, "max": 1e-3, "scale": "log"}},
    },
}


def write(tmp_path, data, name="p.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory, tfds_dir):
    tmp = tmp_path_factory.mktemp("it")
    data = {**PIPELINE, "data": {**PIPELINE["data"], "data_dir": tfds_dir}}
    path = write(tmp, data)
    uri = f"sqlite:///{tmp}/mlflow.db"
    assert main(["tune", str(path), "--tracking-uri", uri]) == 0
    assert main(["tune", str(path), "--tracking-uri", uri, "--max-trials", "1"]) == 0
    return MlflowClient(uri)


def runs(client):
    exp = client.get_experiment_by_name("wine_it")
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


def test_parents_and_children(store):
    all_runs = runs(store)
    parents = [r for r in all_runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in all_runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 2  # two calls, two parent runs, nothing overwritten
    exp = store.get_experiment_by_name("wine_it")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # UI opens on runs
    assert len(children) == 3
    first = parents[0]
    assert first.data.tags["kreg.pipeline"] == "wine_it"
    assert first.data.params["data.dataset"] == "wine"
    assert first.info.status == "FINISHED"
    mine = [c for c in children if c.data.tags["mlflow.parentRunId"] == first.info.run_id]
    assert sorted(c.data.tags["kreg.trial_id"] for c in mine) == ["0", "1"]
    assert all(c.data.tags["kreg.trial_status"] == "COMPLETED" for c in mine)
    baseline = next(c for c in mine if c.data.tags["kreg.trial_id"] == "0")
    assert baseline.data.tags["kreg.techniques"] == "baseline"
    assert baseline.data.params["hp.dropout"] == "False" and baseline.data.params["plan.dropout"] == "None"


def test_per_epoch_metrics_and_trial_results(store):
    child = next(r for r in runs(store) if r.data.tags.get("kreg.trial_id") == "1")
    for name in ("loss", "val_loss", "accuracy", "val_accuracy", "train_loss", "train_accuracy",
                 "gap_loss", "gap_accuracy", "ece", "val_ece", "train_ece", "gap_ece"):
        history = store.get_metric_history(child.info.run_id, name)
        assert [m.step for m in history] == [1, 2], name
    gap = store.get_metric_history(child.info.run_id, "gap_loss")
    val = store.get_metric_history(child.info.run_id, "val_loss")
    train = store.get_metric_history(child.info.run_id, "train_loss")
    for g, v, t in zip(gap, val, train):
        assert g.value == pytest.approx(v.value - t.value, abs=1e-6)
    m = child.data.metrics
    for name in ("test_loss", "test_accuracy", "test_gap_accuracy", "test_ece", "epochs_run", "best_epoch",
                 "best_val_accuracy"):
        assert name in m, name
    assert m["epochs_run"] == 2 and 0 <= m["test_accuracy"] <= 1
    assert m["test_gap_accuracy"] == pytest.approx(m["train_accuracy"] - m["test_accuracy"], abs=1e-6)
    artifacts = {a.path for a in store.list_artifacts(child.info.run_id)}
    assert {"learning_curves.png", "plan.json"} <= artifacts


def test_parent_summary(store, tmp_path):
    parent = next(r for r in runs(store) if "mlflow.parentRunId" not in r.data.tags)
    m = parent.data.metrics
    for name in ("best_trial_id", "test_accuracy", "baseline_test_accuracy", "gain_test_accuracy", "n_trials"):
        assert name in m, name
    assert m["n_trials"] == 2
    assert m["gain_test_accuracy"] == pytest.approx(m["test_accuracy"] - m["baseline_test_accuracy"])
    artifacts = {a.path for a in store.list_artifacts(parent.info.run_id)}
    assert {"pipeline.yaml", "trials.csv", "trials.md", "validation_vs_gap.png"} <= artifacts
    local = Path(store.download_artifacts(parent.info.run_id, "trials.csv", str(tmp_path)))
    lines = local.read_text().splitlines()
    assert lines[0].startswith("trial_id,status,plan") and len(lines) == 3


def test_diverging_trial_is_failed_and_search_goes_on(tmp_path, tfds_dir):
    data = {
        **PIPELINE,
        "name": "wine_nan",
        "data": {**PIPELINE["data"], "data_dir": tfds_dir},
        "training": {"epochs": 2, "batch_size": 16, "learning_rate": 0.01, "optimizer": "sgd"},
        "search": {"cv": None, "tuner": "grid", "max_trials": 3, "max_consecutive_failed_trials": 5, "refit": False,
                   "techniques": {"learning_rate": {"values": [0.01, 1.0e12, 0.02]}}},
    }
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert main(["tune", str(write(tmp_path, data)), "--tracking-uri", uri]) == 0
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("wine_nan")
    children = client.search_runs([exp.experiment_id], "tags.kreg.trial_id != ''")
    status = {r.data.tags["kreg.trial_id"]: r.data.tags["kreg.trial_status"] for r in children}
    assert sorted(status.values()) == ["COMPLETED", "COMPLETED", "FAILED"]
    failed = next(r for r in children if r.data.tags["kreg.trial_status"] == "FAILED")
    assert "NaN" in failed.data.tags["kreg.failure_reason"]
    assert failed.info.status == "FAILED"
    parent = client.search_runs([exp.experiment_id], "tags.kreg.role = 'search'")[0]
    assert parent.data.metrics["n_failed"] == 1


PROCEDURES = {
    "name": "wine_procedures",
    "seed": 0,
    "data": {"dataset": "wine", "train_eval_samples": 50},
    "model": {"type": "mlp", "width": 16, "depth": 1},
    "training": {"epochs": 4, "batch_size": 16, "learning_rate": 0.01},
    "monitor": {"weights": True, "sharpness": {"samples": 2, "every": 1}},
    "search": {"cv": None, "refit": False,
        "tuner": "random",
        "max_trials": 1,
        "techniques": {
            "dropout": {"optional": False, "rate": 0.2},
            "l2": {"optional": False, "strength": 1e-4},
            "schedule": {"optional": False, "warmup": 0.5, "off_last": 0.25},
            "swa": {"optional": False, "start": 0.5},
            "sam": {"optional": False, "rho": {"min": 0.02, "max": 0.1}},
            "ensemble": {"optional": False, "members": 2},
        },
    },
}


def test_training_procedures_reach_every_trial_run(tmp_path, tfds_dir):
    data = {**PROCEDURES, "data": {**PROCEDURES["data"], "data_dir": tfds_dir}}
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert main(["tune", str(write(tmp_path, data)), "--tracking-uri", uri]) == 0
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("wine_procedures")
    (child,) = [r for r in client.search_runs([exp.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    assert child.info.status == "FINISHED"
    params, metrics = child.data.params, child.data.metrics
    assert 0.02 <= float(params["hp.sam_rho"]) <= 0.1
    assert params["plan.ensemble"] == "2" and params["plan.swa.start"] == "0.5"
    assert metrics["swa_models"] == 2  # epochs 3 and 4 averaged
    assert metrics["scheduled_targets"] == 3  # dropout and the two kernel penalties
    assert metrics["ensemble_members"] == 2
    for key in ("test_diversity", "test_mean_member_error", "test_ensemble_error", "single_test_accuracy"):
        assert key in metrics, key
    assert metrics["test_mean_member_error"] == pytest.approx(metrics["test_ensemble_error"] + metrics["test_diversity"])
    multipliers = [m.value for m in client.get_metric_history(child.info.run_id, "regularization_multiplier")]
    assert multipliers == [0.5, 1.0, 1.0, 0.0]
    for key in ("sharpness", "sharpness_adversarial", "weight_norm", "zero_fraction", "weight_norm/dense1"):
        assert len(client.get_metric_history(child.info.run_id, key)) == 4, key


AUGMENTED = {
    "name": "wine_augmented",
    "seed": 0,
    "data": {"dataset": "wine", "train_eval_samples": 50},
    "model": {"type": "mlp", "width": 16, "depth": 1},
    "training": {"epochs": 3, "batch_size": 16, "learning_rate": 0.01},
    "search": {"cv": None, "refit": False,
        "tuner": "random",
        "max_trials": 1,
        "techniques": {
            "augment_mixup": {"optional": False, "strength": {"min": 0.2, "max": 0.4}},
            "augment_swap_noise": {"optional": False, "strength": 0.1},
            "augment_feature_dropout": {"optional": False, "strength": 0.1},
            "augment_jitter": {"optional": False, "strength": 0.05},
            "label_smoothing": {"optional": False, "epsilon": 0.1},
            "schedule": {"optional": False, "warmup": 0.67},
        },
    },
}


def test_tabular_augmentation_and_mixup_reach_a_trial(tmp_path, tfds_dir):
    data = {**AUGMENTED, "data": {**AUGMENTED["data"], "data_dir": tfds_dir}}
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert main(["tune", str(write(tmp_path, data)), "--tracking-uri", uri]) == 0
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("wine_augmented")
    (child,) = [r for r in client.search_runs([exp.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    assert child.info.status == "FINISHED"
    params, metrics = child.data.params, child.data.metrics
    assert 0.2 <= float(params["plan.augmentation.mixup"]) <= 0.4
    assert float(params["plan.augmentation.swap_noise"]) == 0.1
    # Training ran on soft (mixed) labels; the honest figures use the integer labels.
    assert 0.0 <= metrics["train_accuracy"] <= 1.0 and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["scheduled_targets"] == 1  # the MixUp alpha in the data pipeline
    multipliers = [m.value for m in client.get_metric_history(child.info.run_id, "regularization_multiplier")]
    assert multipliers == [0.5, 1.0, 1.0]
