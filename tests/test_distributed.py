"""Issue 12, part 6: the many-machines recipe, on loopback, over PostgreSQL.

The recipe for a team in docs/guide/parallel.md ("A team: many machines"), run
as written with every "machine" on 127.0.0.1: a private PostgreSQL 15
(Debian's package, ``initdb``/``pg_ctl`` as an unprivileged user in a
temporary directory), the documented ``mlflow server`` over it serving the
artifacts, one chief (``kreg tune PIPELINE --chief``) and two workers (``kreg
worker PIPELINE --oracle HOST:PORT``). One worker is killed (SIGKILL) in the
middle of its trial: the chief gives it up after ``--worker-timeout`` seconds
without a heartbeat, closes its run KILLED and the other worker runs that
trial again; the search completes with every trial logged once and the
parent's summary complete.

Skipped, saying why, where PostgreSQL's server binaries or the psycopg2
driver (the ``dev`` extra) are missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

PG_BIN = Path("/usr/lib/postgresql/15/bin")
TRIALS = 5
PIPELINE = {
    "name": "team_wine",
    "seed": 0,
    "data": {"dataset": "wine", "train_eval_samples": None},
    "model": {"type": "mlp", "width": 32, "depth": 1},
    "training": {"epochs": 25, "batch_size": 8},  # a trial lasts a few seconds: long enough to die in
    "search": {"cv": None, "tuner": "random", "max_trials": TRIALS, "refit": False, "techniques": {  # refit: test_parallel
        "l2": {"min": 1.0e-5, "max": 1.0e-2, "scale": "log"},
        "dropout": {"min": 0.1, "max": 0.5},
    }},
    "monitor": {"weights": False},
}


def _pg_tool(name: str) -> str | None:
    found = PG_BIN / name
    return str(found) if found.is_file() else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _missing() -> str | None:
    if _pg_tool("initdb") is None or _pg_tool("pg_ctl") is None:
        return "PostgreSQL's initdb/pg_ctl not found (Debian: apt-get install postgresql)"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "the psycopg2 driver is missing (pip install -e '.[dev]' brings psycopg2-binary)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: PostgreSQL refuses to run as root"
    return None


@contextlib.contextmanager
def postgres():
    """A private PostgreSQL on a free loopback port, as an unprivileged user; yields its port."""
    root = Path(tempfile.mkdtemp(prefix="kreg-pg-", dir="/tmp"))
    as_user = []
    if os.geteuid() == 0:  # PostgreSQL refuses root: the data directory belongs to nobody
        shutil.chown(root, "nobody", "nogroup" if _group_exists("nogroup") else "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    port = _free_port()
    data = root / "data"

    def run(*command):
        subprocess.run([*as_user, *command], cwd=root, check=True, capture_output=True, text=True, timeout=120)

    try:
        run(_pg_tool("initdb"), "-D", str(data), "-U", "kreg", "-A", "trust", "-E", "UTF8", "--no-sync")
        run(_pg_tool("pg_ctl"), "-D", str(data), "-l", str(root / "postgres.log"), "-w", "-t", "60", "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=port, user="kreg", dbname="postgres")
        connection.autocommit = True
        connection.cursor().execute("CREATE DATABASE mlflow")
        connection.close()
        yield port
    finally:
        with contextlib.suppress(Exception):
            run(_pg_tool("pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


@contextlib.contextmanager
def mlflow_server(backend: str, artifacts: Path, env: dict):
    """The ``mlflow server`` command of docs/guide/parallel.md on a free loopback port; yields its URL."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
         "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env={**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mlflow server did not come up: {server.stderr.read()[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


class Lines:
    """A process's output, read as it comes (a thread per process)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.lines = proc, []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.mark.skipif(_missing() is not None, reason=_missing() or "")
def test_many_machines_recipe_over_postgresql(tmp_path):
    pipeline = tmp_path / "team.yaml"
    pipeline.write_text(yaml.safe_dump(PIPELINE, sort_keys=False))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KREG_HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    kreg = [sys.executable, "-m", "kreg.lab.cli"]
    with postgres() as pg_port, mlflow_server(f"postgresql+psycopg2://kreg@127.0.0.1:{pg_port}/mlflow",
                                              tmp_path / "artifacts", env) as url:
        oracle_port = _free_port()
        spawn = dict(cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                     start_new_session=True)
        chief = Lines(subprocess.Popen([*kreg, "tune", str(pipeline), "--chief", "--oracle-host", "127.0.0.1",
                                        "--oracle-port", str(oracle_port), "--tracking-uri", url,
                                        "--worker-timeout", "8"], **spawn))
        workers = {name: Lines(subprocess.Popen(
            [*kreg, "worker", str(pipeline), "--oracle", f"127.0.0.1:{oracle_port}", "--tuner-id", name,
             "--threads", "1"], **spawn)) for name in ("alpha", "beta")}
        from mlflow.tracking import MlflowClient

        client = MlflowClient(url)
        try:
            killed = None
            deadline = time.monotonic() + 240
            while chief.proc.poll() is None and time.monotonic() < deadline:
                if killed is None:  # alpha in the middle of a trial (its run open): it dies, as a machine would
                    running = client.search_runs(
                        [e.experiment_id for e in client.search_experiments()],
                        filter_string="tags.`kreg.worker` = 'alpha' and attributes.status = 'RUNNING'")
                    if running:
                        os.kill(workers["alpha"].proc.pid, signal.SIGKILL)
                        killed = running[0].data.tags["kreg.trial_id"]
                time.sleep(0.3)
            code = chief.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            assert code == 0, chief.text()
            assert workers["beta"].proc.wait(timeout=60) == 0, workers["beta"].text()
        finally:
            for lines in (chief, *workers.values()):
                if lines.proc.poll() is None:
                    os.killpg(lines.proc.pid, signal.SIGKILL)
                    lines.proc.wait()
        assert killed is not None, workers["alpha"].text()
        assert workers["alpha"].proc.returncode == -signal.SIGKILL
        assert f"no heartbeat from worker alpha in 8 s; trial {killed} runs again" in chief.text(), chief.text()
        assert "[beta] trial" in chief.text()  # the chief shows every worker's trials
        experiment = client.get_experiment_by_name("team_wine")
        runs = client.search_runs([experiment.experiment_id], max_results=1000)
        parents = [r for r in runs if r.data.tags.get("kreg.role") == "search"]
        children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"
        completed = sorted(r.data.tags["kreg.trial_id"] for r in children
                           if r.data.tags["kreg.trial_status"] == "COMPLETED")
        assert completed == [str(i) for i in range(TRIALS)]  # every trial logged once, the killed one included
        dead = [r for r in children if r.data.tags["kreg.trial_status"] == "KILLED"]
        assert [(r.data.tags["kreg.trial_id"], r.data.tags["kreg.worker"], r.info.status) for r in dead] == \
            [(killed, "alpha", "KILLED")]
        assert "no heartbeat" in dead[0].data.tags["kreg.interrupted_by"]
        rerun = [r for r in children if r.data.tags["kreg.trial_id"] == killed and r.info.status == "FINISHED"]
        assert [r.data.tags["kreg.worker"] for r in rerun] == ["beta"]
        m = parents[0].data.metrics
        assert m["n_trials"] == TRIALS and m["n_failed"] == 0
        assert {"best_trial_id", "test_accuracy", "baseline_test_accuracy", "gain_test_accuracy"} <= set(m)
        # Artifacts went through the server to its --artifacts-destination.
        assert client.download_artifacts(parents[0].info.run_id, "trials.csv", str(tmp_path))
        assert list((tmp_path / "artifacts").rglob("trial.json"))
