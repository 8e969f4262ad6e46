"""Issue 18, parts 3-6: what the MLflow UI shows of a search: datasets, run descriptions, the Model
training view on the trials, system metrics; read back from the store, and rendered in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import kreg
from kreg.lab.tracking import datasets, views


def _tabular(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (x[:, 0] + 0.3 * x[:, 1] > 0).astype(int)


def _search(tmp_path, experiment="pages", **kwargs):
    x, y = _tabular()
    data = kreg.data.from_arrays(x[:90], y[:90], x_test=x[90:], y_test=y[90:])
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    summary = kreg.tune("mlp", data, techniques={"dropout": {"min": 0.1, "max": 0.5}}, max_trials=2,
                        epochs=3, tuner="random", tracking_uri=uri, experiment=experiment, verbose=0,
                        model_args={"width": 8, "depth": 1}, **{"cv": None, **kwargs})
    return summary, MlflowClient(uri)


def _contexts(run) -> dict:
    return {next(t.value for t in d.tags if t.key == "mlflow.data.context"): d.dataset
            for d in run.inputs.dataset_inputs}


def test_search_runs_carry_datasets_descriptions_kind_and_system_metrics(tmp_path):
    summary, client = _search(tmp_path, monitor={"system_metrics_interval_s": 0.5})
    parent = client.get_run(summary.parent_run_id)
    # Part 3: the three splits as dataset inputs, on the parent and on every trial, the same entities
    found = _contexts(parent)
    assert set(found) == {"train", "validation", "test"}
    train = found["train"]
    assert train.name == "arrays-train" and len(train.digest) == 8 and train.source_type == "code"
    schema = json.loads(train.schema)["mlflow_tensorspec"]
    assert json.loads(schema["features"])[0]["tensor-spec"]["shape"] == [-1, 6]
    assert json.loads(train.profile)["num_rows"] + json.loads(found["validation"].profile)["num_rows"] == 90
    for record in summary.records:
        trial = client.get_run(record.run_id)
        assert {k: d.digest for k, d in _contexts(trial).items()} == {k: d.digest for k, d in found.items()}
    # Part 4: the parent's description holds the answer line, the baseline against the chosen plan, the
    # refit figures and the report; a trial's holds its plan, its placements and its diagnoses
    note = parent.data.tags["mlflow.note.content"]
    assert parent.data.tags["kreg.answer"] in note
    assert "| validation |" in note and "| test |" in note and "| gap (train − validation) |" in note
    assert "**Refit**" in note and f"{summary.answer.refit.metrics['test_accuracy']:.4f}" in note
    assert "report.html" in note and "report.html" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    trial = client.get_run(summary.records[1].run_id)
    trial_note = trial.data.tags["mlflow.note.content"]
    assert summary.records[1].plan.describe() in trial_note and "COMPLETED" in trial_note
    assert "**Where each technique went:**" in trial_note and "- dropout: `" in trial_note
    assert "**Diagnoses:**" in trial_note
    # Part 5: the experiment opens in MLflow's traditional-ML (Model training) kind, with the search's view stored
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(experiment.tags[views.VIEW_PREFIX + views.view_key(parent.info.run_id)])
    assert view["searchFilter"] == f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    assert view["orderByKey"] == "metrics.`kept_val_accuracy`" and view["orderByAsc"] is False
    assert view["selectedColumns"][:4] == ["tags.`kreg.plan`", "metrics.`kept_val_accuracy`",
                                           "metrics.`kept_gap_accuracy`", "metrics.`test_accuracy`"]
    # Part 6: every trial run records CPU and memory use; the parent does not
    for record in summary.records:
        metrics = client.get_run(record.run_id).data.metrics
        for key in ("system/cpu_utilization_percentage", "system/system_memory_usage_megabytes",
                    "system/process_memory_rss_megabytes", "system/process_cpu_utilization_percentage"):
            assert key in metrics, key
        assert metrics["system/process_memory_rss_megabytes"] > 50  # this process, TensorFlow loaded
        assert client.get_metric_history(record.run_id, "system/process_memory_rss_megabytes")
    assert not [k for k in parent.data.metrics if k.startswith("system/")]


def test_system_metrics_switched_off_and_an_existing_experiment_gets_the_kind_tag(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    MlflowClient(uri).create_experiment("made_elsewhere")  # created by someone else, untagged
    summary, client = _search(tmp_path, experiment="made_elsewhere", monitor={"system_metrics": False},
                              refit=False)
    assert client.get_experiment_by_name("made_elsewhere").tags["mlflow.experimentKind"] == \
        "custom_model_development"
    for record in summary.records:
        assert not [k for k in client.get_run(record.run_id).data.metrics if k.startswith("system/")]


def test_dataset_digest_is_cheap_and_sees_a_change_anywhere():
    x = np.random.default_rng(0).random((60_000, 784), dtype=np.float32)  # MNIST-sized: 188 MB
    y = np.zeros(60_000, np.int64)
    start = time.perf_counter()
    digest = datasets.array_digest(x, y)
    assert time.perf_counter() - start < 0.5
    x[30_001, 5] += 1.0  # a row the evenly spaced sample does not read
    assert datasets.array_digest(x, y) != digest
    assert datasets.array_digest(x[:-1], y[:-1]) != digest


def test_csv_columns_named_and_streams_described_without_reading(tmp_path):
    import pandas as pd
    import tensorflow as tf

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.normal(40, 10, 80), "colour": rng.choice(["red", "blue"], 80),
                          "label": rng.choice(["yes", "no"], 80)})
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    splits = kreg.data.from_csv(str(path), target="label")
    found = {d["context"]: d for d in datasets.describe(splits)}
    features = json.loads(json.loads(found["train"]["schema"])["mlflow_tensorspec"]["features"])
    assert [c["name"] for c in features][:1] == ["age"] and any("colour" in c["name"] for c in features)

    read = [0]

    def gen():
        for i in range(50):
            read[0] += 1
            yield np.full(4, i, np.float32), np.int64(i % 2)

    sig = (tf.TensorSpec((4,), tf.float32), tf.TensorSpec((), tf.int64))
    stream = tf.data.Dataset.from_generator(gen, output_signature=sig)
    s = kreg.data.from_datasets(stream, validation=stream, test=stream, task="classification", num_classes=2,
                                name="my_stream")
    read[0] = 0
    inputs = datasets.dataset_inputs(s)
    assert read[0] == 0, "a stream was read to describe it"
    assert [d.dataset.name for d in inputs] == ["my_stream-train", "my_stream-validation", "my_stream-test"]
    schema = json.loads(inputs[0].dataset.schema)["mlflow_tensorspec"]
    assert json.loads(schema["features"])[0]["tensor-spec"]["shape"] == [4]
    assert json.loads(inputs[0].dataset.profile)["streamed"] is True


def test_study_parent_holds_claim_and_verdict(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = kreg.study("ensemble_size", "mlp", "wine", plan={"dropout": 0.2}, epochs=2, members=2,
                        tracking_uri=uri, verbose=0, model_args={"width": 8, "depth": 1})
    note = MlflowClient(uri).get_run(result.parent_run_id).data.tags["mlflow.note.content"]
    assert result.claim in note and result.verdict in note and ("held" in note)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ui_opens_on_the_trials_in_headless_chromium(tmp_path):
    """The URL ``kreg ui`` prints renders MLflow's Model training view with the search's trials as rows."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y --no-install-recommends chromium)")
    summary, client = _search(tmp_path, refit=False)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    port = _free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host",
                               "127.0.0.1", "--port", str(port), "--workers", "1"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("mlflow ui did not start within 90 s")
                time.sleep(1)
        lines = views.latest_search_lines(uri, base)
        url = lines[1].split(": ", 1)[1]
        assert url == views.experiment_url(base, summary.experiment_id, views.view_key(summary.parent_run_id))
        with tempfile.TemporaryDirectory() as profile:
            dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                                  "--no-first-run", f"--user-data-dir={profile}", "--window-size=1920,1000",
                                  "--virtual-time-budget=15000", "--dump-dom", url],
                                 capture_output=True, text=True, timeout=180)
        assert dom.returncode == 0, dom.stderr[-2000:]
        page = dom.stdout
        assert "Model training" in page and "trial-0" in page and "trial-1" in page
        assert "kept_val_accuracy" in page and "kreg.plan" in page
        assert summary.records[1].plan.describe() in page  # the plan column, first after the run's name
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
