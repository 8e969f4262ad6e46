"""Issue 12, part 5: parallel trials on one machine (``kreg tune PIPELINE --workers N``).

What the user's next process sees (DESIGN house rule 11): ``kreg tune``
runs in a subprocess on a small wine MLP with two worker processes, and the
store is read back: every trial logged exactly once, by the workers, under
one parent whose summary covers them all, the same trials a single-process
search proposes. Then the store itself: several processes writing child runs
to one sqlite file at once (what a local parallel search does) lose nothing.
And a worker whose search differs from the chief's is refused, naming why.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TRIALS, EPOCHS = 4, 8  # two workers each get a trial and more; kept small: each process imports TensorFlow
PIPELINE = {
    "name": "parallel_wine",
    "seed": 0,
    "data": {"dataset": "wine", "train_eval_samples": None},
    "model": {"type": "mlp", "width": 32, "depth": 1},
    "training": {"epochs": EPOCHS, "batch_size": 8},
    # refit: the chief's refit is tested by test_kreg_tune_with_workers_from_python; here it would only add time
    "search": {"cv": None, "tuner": "random", "max_trials": TRIALS, "refit": False, "techniques": {
        "l2": {"min": 1.0e-5, "max": 1.0e-2, "scale": "log"},
        "dropout": {"min": 0.1, "max": 0.5},
    }},
    "monitor": {"weights": False},
}
NOISE = ("I0000 ", "W0000 ", "E0000 ", "WARNING: All log messages", "To enable the following instructions")


def _env(tmp_path: Path) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KREG_HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _tune(tmp_path: Path, pipeline: Path, uri: str, *args: str, timeout: float = 240) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "kreg.lab.cli", "tune", str(pipeline), "--tracking-uri", uri, *args],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + "\n".join(line for line in proc.stderr.splitlines() if not line.startswith(NOISE))
    return proc.returncode, output


def _runs(uri: str, experiment: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("kreg.role") == "search"]
    return client, parents, [r for r in runs if "mlflow.parentRunId" in r.data.tags]


def _tune_here(tmp_path: Path, monkeypatch, capfd, pipeline: Path, uri: str, *args: str) -> tuple[int, str]:
    """``kreg tune`` in this process (TensorFlow is imported already: a subprocess would import it again),
    with the environment ``_tune`` gives its subprocess; spawned workers write to the captured descriptors."""
    for key, value in _env(tmp_path).items():
        if os.environ.get(key) != value:
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    from kreg.lab.cli import main

    capfd.readouterr()
    code = main(["tune", str(pipeline), "--tracking-uri", uri, *args])
    captured = capfd.readouterr()
    return code, captured.out + "\n".join(line for line in captured.err.splitlines() if not line.startswith(NOISE))


def test_workers_log_every_trial_once_and_propose_the_same_trials(tmp_path, monkeypatch, capfd):
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(yaml.safe_dump(PIPELINE, sort_keys=False))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    code, out = _tune(tmp_path, pipeline, uri, "--workers", "2")
    assert code == 0, out
    client, parents, children = _runs(uri, "parallel_wine")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    ids = [r.data.tags["kreg.trial_id"] for r in children]
    assert sorted(ids) == [str(i) for i in range(TRIALS)]  # every trial exactly once
    assert {r.data.tags["kreg.trial_status"] for r in children} == {"COMPLETED"}
    assert {r.info.status for r in children} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    # Both workers ran trials, and the console showed each one's lines.
    assert {r.data.tags["kreg.worker"] for r in children} == {"w1", "w2"}
    assert "[w1] trial" in out and "[w2] trial" in out, out
    # The parent's summary, read back from the workers' child runs.
    m = parent.data.metrics
    assert m["n_trials"] == TRIALS and m["n_failed"] == 0
    assert "best_trial_id" in m and "baseline_test_accuracy" in m and "gain_test_accuracy" in m
    rows = Path(client.download_artifacts(parent.info.run_id, "trials.csv", str(tmp_path))).read_text().splitlines()
    assert len(rows) == TRIALS + 1 and rows[1].startswith("0,")  # trial 0 (the baseline) first
    # The workers' logs are kept beside the search's state.
    logs = list((tmp_path / "artifacts").rglob("workers/w*.log"))
    assert sorted(p.name for p in logs) == ["w1.log", "w2.log"]

    # The same trials as one process proposes (a random oracle: proposals do not depend on who finishes first).
    code, out = _tune_here(tmp_path, monkeypatch, capfd, pipeline, uri, "--experiment", "single")
    assert code == 0, out
    _, _, single = _runs(uri, "single")

    def proposals(runs):
        return {r.data.tags["kreg.trial_id"]: {k: v for k, v in r.data.params.items() if k.startswith("hp.")}
                for r in runs}

    assert proposals(children) == proposals(single)


def test_sqlite_store_holds_under_several_writers(tmp_path):
    """Three processes log trials under one parent at once, each far faster than a search does: nothing is lost.

    A search's worker writes a trial's epochs at most every 5 s and a few
    batches when a trial starts and ends; here every epoch is written at once
    (``flush_every_s=0``): about 400 writes in 10 s from the three.
    """
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent('''
        import sys
        from kreg.lab.plan import RegularizationPlan
        from kreg.lab.tracking.mlflow import SearchTracker, TrialRun

        uri, parent, writer = sys.argv[1], sys.argv[2], sys.argv[3]
        tracker = SearchTracker(uri, "writers")
        tracker.parent_id = parent
        for t in range(6):
            run = tracker.start_trial(f"{writer}-{t}", {"l2": True}, RegularizationPlan(l2=1e-4))
            run = TrialRun(run.client, run.run_id, flush_every_s=0.0)
            for epoch in range(1, 16):
                run.log_epoch(epoch, {"loss": 1.0 / epoch, "val_loss": 1.1 / epoch, "gap_loss": 0.1 / epoch})
            run.log_metrics({"test_accuracy": 0.9}, step=15)
            run.finish("COMPLETED")
        print("ok", writer)
    '''))
    from kreg.lab.tracking.mlflow import SearchTracker

    tracker = SearchTracker(uri, "writers")
    parent = tracker.start_search("writers", {"a": 1}, "a: 1\n")
    env = _env(tmp_path)
    procs = [subprocess.Popen([sys.executable, str(script), uri, parent, f"w{i}"], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    client, _, children = _runs(uri, "writers")
    assert len(children) == 18
    for run in children:
        assert run.info.status == "FINISHED" and run.data.tags["kreg.trial_status"] == "COMPLETED"
        assert len(client.get_metric_history(run.info.run_id, "gap_loss")) == 15
        assert run.data.metrics["test_accuracy"] == pytest.approx(0.9)


def test_a_worker_with_another_search_is_refused(tmp_path, wine_splits):
    """The chief's fingerprint against the worker's own resolution: a changed space is named, before any trial."""
    from kreg.lab.search import spec as spec_module
    from kreg.lab.search.tune import prepare, request
    from kreg.lab.search.worker import JoinError, check_join

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = dict(model="mlp", data=wine_splits, model_args={"width": 8, "depth": 1}, tuner="random",
                  max_trials=2, epochs=1, tracking_uri=uri, experiment="join")
    chief = prepare(request(techniques={"l2": {"min": 1e-5, "max": 1e-2, "scale": "log"}}, **common))
    spec = spec_module.search_spec(chief.search, chief.structure)
    info = {"fingerprint": spec_module.fingerprint(spec), "spec": spec, "parent_id": "0" * 32,
            "experiment": "join", "tracking_uri": uri}
    other = prepare(request(techniques={"l2": {"min": 1e-5, "max": 1e-1, "scale": "log"}}, **common))
    with pytest.raises(JoinError, match=r"search space changed: .*l2.*0\.01 -> 0\.1"):
        check_join(info, other, lambda *a: pytest.fail("no store is opened for a refused worker"))

    class Store:  # the same search, but the chief's parent is not in this worker's store
        class client:
            @staticmethod
            def get_run(run_id):
                raise LookupError(run_id)

    with pytest.raises(JoinError, match="is not in .*point --tracking-uri at the chief's store"):
        check_join(info, chief, lambda *a: Store())


def build_small():
    """A user's own model, at a module's top level: worker processes import it by name."""
    import keras

    inputs = keras.Input((13,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))


def test_kreg_tune_with_workers_from_python(tmp_path, wine_splits):
    import kreg
    from kreg.lab.errors import ConfigError

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    space = {"dropout": {"min": 0.1, "max": 0.5}, "l2": {"min": 1e-5, "max": 1e-2, "scale": "log"}}
    with pytest.raises(ConfigError, match="picklable"):  # refused before anything starts
        kreg.tune(lambda: build_small(), wine_splits, techniques=space, workers=2, tracking_uri=uri, verbose=0, cv=None)
    summary = kreg.tune(build_small, wine_splits, techniques=space, tuner="random", max_trials=3, epochs=3,
                        workers=2, tracking_uri=uri, experiment="python", verbose=0, cv=None)
    assert summary.status == "FINISHED", summary.error
    assert [r.trial_id for r in summary.records] == ["0", "1", "2"]
    assert all(r.status == "COMPLETED" and r.run_id for r in summary.records)
    assert summary.baseline.plan.active_techniques() == [] and summary.best is not None
    assert summary.model is not None and "test_accuracy" in summary.answer.refit.metrics  # the chief refits
    _, parents, children = _runs(uri, "python")
    assert [p.info.run_id for p in parents] == [summary.parent_run_id]
    assert sorted(r.data.tags["kreg.trial_id"] for r in children) == ["0", "1", "2"]
    # The worker that ran the baseline refit it at once and kept it on the baseline's run (issue 20 part 4a);
    # the chief read it back for the comparison instead of training it again.
    from mlflow.tracking import MlflowClient

    from kreg.lab.tracking.refits import read_refit
    from kreg.lab.trial.refit import refit_epochs

    kept = read_refit(MlflowClient(uri), summary.baseline.run_id, epochs=refit_epochs(summary.baseline), seed=0,
                      test_examples=len(wine_splits.y_test))
    assert kept is not None and kept["by"].startswith("worker w"), kept
    if summary.answer.baseline_refit is not None:  # the chosen plan is not the baseline: they were compared
        assert summary.answer.baseline_refit.model is None  # read back, not trained by the chief
        assert summary.answer.baseline_refit.metrics == kept["metrics"]


def test_a_signal_stops_the_chief_and_its_workers_and_resume_completes(tmp_path, monkeypatch, capfd):
    """SIGTERM to the chief mid-search: its workers stop too, every run is closed, exit 143; --resume finishes."""
    import signal

    import psutil

    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(yaml.safe_dump({**PIPELINE, "training": {"epochs": 30, "batch_size": 8}}, sort_keys=False))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kreg.lab.cli", "tune", str(pipeline), "--tracking-uri", uri, "--workers", "2"],
        cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    chief = psutil.Process(proc.pid)
    # Watch the console, as a user does, until a trial has ended. (Not the store: an MLflow client
    # opened on it while the chief creates its tables would race MLflow's own migrations.)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None and not any(" COMPLETED " in x for x in lines):
        time.sleep(0.2)
    workers = [p for p in chief.children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]
    assert len(workers) == 2
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    reader.join(10)
    out, err = "".join(lines), proc.stderr.read()
    assert proc.returncode == 143, out + err
    assert "interrupted by SIGTERM" in out and "--workers 2 --resume" in out, out
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in workers)  # no worker left behind
    _, parents, children = _runs(uri, "parallel_wine")
    assert [p.info.status for p in parents] == ["KILLED"]
    assert "RUNNING" not in {r.info.status for r in children}  # the workers closed their trials' runs
    done = {r.data.tags["kreg.trial_id"] for r in children if r.data.tags["kreg.trial_status"] == "COMPLETED"}
    assert 1 <= len(done) < TRIALS

    # The resume in this process: its chief need not import TensorFlow again (its workers are fresh processes)
    code, out = _tune_here(tmp_path, monkeypatch, capfd, pipeline, uri, "--workers", "2", "--resume")
    assert code == 0, out
    _, parents, children = _runs(uri, "parallel_wine")
    assert [p.info.status for p in parents] == ["FINISHED"] and parents[0].data.metrics["n_trials"] == TRIALS
    completed = sorted(r.data.tags["kreg.trial_id"] for r in children
                       if r.data.tags["kreg.trial_status"] == "COMPLETED")
    assert completed == [str(i) for i in range(TRIALS)]  # the finished trials were kept, not rerun


def test_a_chief_that_cannot_open_its_store_stops_its_workers_and_exits(tmp_path):
    """The workers start before the chief opens the store; if it cannot, they are stopped, not waited for."""
    import psutil

    script = tmp_path / "chief.py"
    script.write_text(textwrap.dedent('''
        import sys
        import kreg
        import kreg.lab.tracking.mlflow as tracking

        class Unreachable(tracking.SearchTracker):  # this process only: the spawned workers open the store
            def __init__(self, *args, **kwargs):
                # An event, not a clock: the store fails once both workers exist; their pids go to the test.
                import time, psutil
                while len(workers := [p for p in psutil.Process().children()
                                      if "spawn_main" in " ".join(p.cmdline())]) < 2:
                    time.sleep(0.05)
                print("workers", *[p.pid for p in workers], flush=True)
                raise tracking.StoreError(sys.argv[1], OSError("the store went away"))

        if __name__ == "__main__":  # the spawned workers import this file too
            tracking.SearchTracker = Unreachable
            kreg.tune("mlp", "wine", techniques={"dropout": {"min": 0.1, "max": 0.5}}, model_args={"width": 8},
                      tuner="random", max_trials=2, epochs=1, workers=2, tracking_uri=sys.argv[1], verbose=0, cv=None)
    '''))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.Popen([sys.executable, str(script), uri], cwd=tmp_path, env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=120)  # before the fix: waited for its workers forever
    assert proc.returncode == 1 and "the store went away" in err, err[-2000:]
    [pids] = [line.split()[1:] for line in out.splitlines() if line.startswith("workers ")]
    assert len(pids) == 2
    for pid in map(int, pids):  # stopped with the chief, not left behind
        with contextlib.suppress(psutil.NoSuchProcess):
            assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_trials_failing_in_a_row_stop_a_parallel_search_as_they_stop_one_process(tmp_path, monkeypatch, capfd):
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(yaml.safe_dump({**PIPELINE, "name": "all_nan", "training": {
        "epochs": 2, "batch_size": 16, "learning_rate": 1.0e12, "optimizer": "sgd"}}, sort_keys=False))
    # The chief in this process (the workers, spawned, write to the same captured descriptors)
    code, out = _tune_here(tmp_path, monkeypatch, capfd, pipeline, f"sqlite:///{tmp_path / 'mlflow.db'}",
                           "--workers", "2")
    assert code == 1, out
    assert "Traceback" not in out
    assert "stopped after 3 failed trials in a row" in out and "no trial completed" in out, out
    assert "most often: Diverged" in out
