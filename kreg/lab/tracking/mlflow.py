"""The keras-tuner -> MLflow bridge: one parent run per search, one child per trial.

Contract (other code and users rely on these names):

- parent run: tag ``kreg.pipeline``; the pipeline config as params and as an
  artifact; what a resume checks (tag ``kreg.search_fingerprint``, artifact
  ``search_spec.json``, see ``kreg.lab.search.spec``); at the end
  ``best_trial_id``, the best trial's test metrics (``best_test_*``),
  ``baseline_test_<metric>``, ``gain_test_<metric>``, the table of all
  trials (CSV and markdown) and the validation-vs-gap plot; with the refit,
  ``refit_test_*``, the comparison (``answer_*``, tag ``kreg.answer``) and
  ``model/model.keras``; ``technique_effects.*`` and ``report.html``
  (``kreg.lab.tracking.report``).
- child run per trial: tags ``kreg.trial_id``, ``kreg.trial_status``
  (COMPLETED / FAILED / KILLED) and ``mlflow.parentRunId``; params: every
  hyperparameter (``hp.*``) and the plan, flattened (``plan.*``); per epoch
  (step = epoch, from 1) Keras' logs plus ``train_*`` and ``gap_*``, written
  in batches (see ``TrialRun``); at the end ``test_*``, ``test_gap_*``, ``epochs_run``,
  ``best_epoch``, ``best_val_*`` and the artifacts (learning curves, plan,
  ``trial.json``: the trial's record, read back by a resumed search). A
  cross-validated trial logs its folds' mean curves per epoch, each fold's
  end figures as ``fold_*`` (step = fold) and ``cv_*`` spreads.
- what the UI shows (issue 18): the experiment tag ``mlflow.experimentKind``
  = ``custom_model_development`` (set on new and on existing experiments);
  the parent and every trial run log the search's splits as dataset inputs
  (``<data>-train`` / ``-validation`` / ``-test``, input tag
  ``mlflow.data.context`` = train / validation / test; ``datasets``); each
  run's description, tag ``mlflow.note.content`` (``notes``: the parent's
  answer, baseline against the chosen plan, refit figures and report; a
  trial's plan, placements and diagnoses; a study's claim and verdict); a
  stored view of the search's trials, experiment tag
  ``mlflow.sharedViewState.kreg-<parent run id>`` (``views``); trial runs'
  ``system/*`` metrics (CPU, memory; ``system``) unless
  ``monitor.system_metrics`` is false.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import tempfile
import time
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from kreg.errors import KregError
from kreg.lab.tracking import notes, system, views
from kreg.lab.tracking.records import ENDED
from kreg.lab.tracking.store import artifact_root_for, file_lock, local_store_path, resolve_tracking_uri
from kreg.lab.tracking import tags as tag

_EXPERIMENT_KIND = "mlflow.experimentKind"
_PARAM_BATCH = 100  # MLflow's limit of params per log_batch
_METRIC_BATCH = 1000


def _now_ms() -> int:
    return int(time.time() * 1000)


def _param_value(value) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return text[:6000]


def flatten(data, prefix: str = "") -> dict:
    """Nested mappings -> ``{"a.b.c": value}``."""
    flat = {}
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and value:
                flat.update(flatten(value, name))
            else:
                flat[name] = value
    return flat


def _finite_metrics(values: dict, step: int, ts: int) -> list[Metric]:
    out = []
    for key, value in values.items():
        if value is None or isinstance(value, bool):
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            out.append(Metric(key, value, ts, step))
    return out


class StoreError(KregError, RuntimeError):
    """The MLflow store stopped accepting writes (read-only, locked, disk full, server gone).

    Not a failed trial: the search stops, with one message and the console
    summary of what ran; what was already logged stays as it was.
    """

    def __init__(self, uri: str, cause: BaseException):
        super().__init__(f"the MLflow store {uri} cannot be written: {store_cause(cause)[:300]}")
        self.uri, self.cause = uri, cause


# SQLAlchemy's own lines around the driver's message: its hints, the statement, its parameters, a link.
_SQLALCHEMY_LINES = ("(raised as a result of", "(Background on this error", "[SQL:", "[parameters:")


def store_cause(cause: BaseException) -> str:
    """What the driver or the system said, first: ``database or disk is full``, ``No space left on device``.

    MLflow wraps SQLAlchemy's error, which wraps the driver's (``orig``) and
    may open with a hint of its own (``(raised as a result of Query-invoked
    autoflush; ...)``): the innermost error of the chain that says something
    is the cause. An ``OSError`` says its errno's text.
    """
    chain, seen, exc = [], set(), cause
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(exc)
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    for exc in reversed(chain):
        if isinstance(exc, OSError) and exc.strerror:
            return exc.strerror
        for line in str(exc).strip().splitlines():
            line = line.strip()
            if line.startswith("(") and ") " in line and not line.startswith(_SQLALCHEMY_LINES):
                line = line.split(") ", 1)[1]  # "(sqlite3.OperationalError) database is locked"
            if line and not line.startswith(_SQLALCHEMY_LINES):
                return line
    return type(cause).__name__


class _GuardedClient:
    """``MlflowClient`` whose every call turns a store failure into a ``StoreError``.

    MLflow's sqlite store also logs each database error with its whole
    traceback before raising it; the ``StoreError`` says it in one line, so
    that logger is kept to critical messages.
    """

    def __init__(self, client: MlflowClient, uri: str):
        self._client, self._uri = client, uri
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def guarded(*args, **kwargs):
            try:
                return attr(*args, **kwargs)
            except StoreError:
                raise
            except Exception as exc:  # sqlite/SQLAlchemy, OSError (disk full), MlflowException, HTTP
                raise StoreError(self._uri, exc) from exc

        return guarded


class TrialRun:
    """The MLflow child run of one trial.

    Per-epoch figures are buffered and written with one ``log_batch`` at most
    every ``flush_every_s`` seconds (and at the end), so the UI follows a
    running trial within seconds while training almost never waits for the
    store. (MLflow's own asynchronous logging costs about a second per run
    when the run ends, more than it saves here.)
    """

    def __init__(self, client: MlflowClient, run_id: str, flush_every_s: float = 5.0, monitor=None):
        self.client, self.run_id = client, run_id
        self.flush_every_s = flush_every_s
        self._buffer: list[Metric] = []
        self._last_flush = time.monotonic()
        self.monitor = monitor  # kreg.lab.tracking.system.TrialMonitor while the trial trains, or None

    def stop_monitor(self) -> None:
        """Ends the system metrics (CPU, memory) of this run: call when its training is over."""
        monitor, self.monitor = self.monitor, None
        if monitor is not None:
            monitor.stop()

    def log_epoch(self, step: int, values: dict) -> None:
        """Queues one epoch's figures; writes the queue when it is due."""
        self._buffer += _finite_metrics(values, step, _now_ms())
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush()

    def flush(self) -> None:
        buffer, self._buffer = self._buffer, []
        for i in range(0, len(buffer), _METRIC_BATCH):
            self.client.log_batch(self.run_id, metrics=buffer[i:i + _METRIC_BATCH])
        self._last_flush = time.monotonic()

    def log_metrics(self, values: dict, step: int = 0) -> None:
        """Writes ``values`` now (with anything still queued)."""
        self._buffer += _finite_metrics(values, step, _now_ms())
        self.flush()

    def log_artifact(self, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def set_tags(self, tags: dict) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])

    def finish(self, status: str, reason: str = "") -> None:
        self.stop_monitor()
        self.flush()
        tags = [RunTag(tag.TRIAL_STATUS, status)]
        if reason:
            tags.append(RunTag(tag.FAILURE_REASON, reason[:5000]))
        self.client.log_batch(self.run_id, tags=tags)
        # COMPLETED and PRUNED -> FINISHED; KILLED (a signal) stays KILLED; FAILED -> FAILED.
        self.client.set_terminated(self.run_id, {"COMPLETED": "FINISHED", "PRUNED": "FINISHED",
                                                 "KILLED": "KILLED"}.get(status, "FAILED"))


class SearchTracker:
    """Creates and fills the runs of one ``kreg tune`` call."""

    def __init__(self, tracking_uri: str | None, experiment: str):
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        store = local_store_path(self.tracking_uri)
        # A local store is created (tables, experiment) by one process at a time: two searches started
        # together on a fresh store would otherwise both run MLflow's migrations or create the experiment.
        # A process that does not take kreg's lock (`mlflow ui`, a notebook's MlflowClient) may be creating
        # the tables of a fresh store at the same moment: MLflow's migrations then fail in one of the two
        # ("table ... already exists", "Online migration expected to match one row"). The other finishes
        # them within a second or two, so a local store is tried three times.
        attempts = 3 if store is not None else 1
        for attempt in range(1, attempts + 1):
            try:
                with file_lock(store) if store is not None else contextlib.nullcontext():
                    self._open(experiment)
                break
            except StoreError:
                if attempt == attempts:
                    raise
                time.sleep(1.5 * attempt)
        self.experiment = experiment
        self.parent_id: str | None = None
        self.datasets: list = []  # the search's splits as MLflow dataset inputs (``describe``)
        self.system_metrics_interval_s: float | None = None  # None: no system metrics on trial runs
        self._view: tuple | None = None  # (objective, direction, metric) of the search's stored UI view

    def describe(self, search) -> None:
        """What every run of ``search`` logs besides its own figures: its data (dataset inputs of the
        parent and every trial) and, unless the monitor settings say no, the trials' system metrics."""
        if not self.datasets:
            from kreg.lab.tracking.datasets import dataset_inputs

            try:
                self.datasets = dataset_inputs(search.splits)
            except Exception as exc:  # data kreg cannot describe still trains: the runs go without inputs
                import warnings

                warnings.warn(f"the search's data is not logged as MLflow dataset inputs: {exc}", stacklevel=2)
        monitor = search.monitor
        self.system_metrics_interval_s = monitor.system_metrics_interval_s if monitor.system_metrics else None
        self._view = (search.objective.name, search.objective.direction, search.task.primary)

    def _log_datasets(self, run_id: str) -> None:
        if self.datasets:
            self.client.log_inputs(run_id, datasets=self.datasets)

    def _open(self, experiment: str) -> None:
        """The client and the experiment's id (the experiment created, and tagged for MLflow's UI, if new)."""
        try:
            client = MlflowClient(tracking_uri=self.tracking_uri)  # opens the store: runs MLflow's migrations
        except Exception as exc:
            raise StoreError(self.tracking_uri, exc) from exc
        self.client = _GuardedClient(client, self.tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            try:
                self.experiment_id = self.client.create_experiment(
                    experiment, artifact_location=artifact_root_for(self.tracking_uri))
            except StoreError:  # created meanwhile by another process (a remote server: no lock)
                found = self.client.get_experiment_by_name(experiment)
                if found is None:
                    raise
                self.experiment_id = found.experiment_id
        else:
            self.experiment_id = found.experiment_id
        if found is None or _EXPERIMENT_KIND not in found.tags:
            # MLflow 3's UI opens an untagged experiment on its GenAI (traces)
            # overview; this tag makes it open on the runs table.
            self.client.set_experiment_tag(self.experiment_id, _EXPERIMENT_KIND, "custom_model_development")

    # ------------------------------------------------------------- parent
    def start_search(self, pipeline_name: str, config: dict, config_text: str, run_name: str | None = None) -> str:
        run_name = run_name or f"{pipeline_name}-{time.strftime('%Y%m%d-%H%M%S')}"
        run = self.client.create_run(
            self.experiment_id,
            run_name=run_name,
            tags={tag.PIPELINE: pipeline_name, tag.ROLE: tag.SEARCH_ROLE,
                  **notes.note_tags(notes.search_started_note(pipeline_name))},
        )
        self.parent_id = run.info.run_id
        self._log_params(self.parent_id, flatten(config))
        self._log_datasets(self.parent_id)
        if self._view is not None:  # the UI's stored view of this search's trials (kreg.lab.tracking.views)
            views.save_view(self.client, self.experiment_id, self.parent_id, *self._view)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "pipeline.yaml"
            path.write_text(config_text)
            self.client.log_artifact(self.parent_id, str(path))
        return self.parent_id

    def parent_artifact_dir(self) -> Path | None:
        """Local directory of the parent run's artifacts (None for remote stores)."""
        uri = self.client.get_run(self.parent_id).info.artifact_uri
        if uri.startswith("file://"):
            return Path(uri[len("file://"):])
        return None

    def end_search(self, metrics: dict, artifacts: list[Path], status: str = "FINISHED",
                   tags: dict | None = None) -> None:
        run = TrialRun(self.client, self.parent_id)
        run.log_metrics(metrics)
        if tags:
            self.client.log_batch(self.parent_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
        for path in artifacts:
            run.log_artifact(path)
        self.client.set_terminated(self.parent_id, status)

    # ------------------------------------------------------------- trials
    def ended_trial_curves(self, metric: str, known=frozenset()) -> dict:
        """Run id -> ``(kreg.trial_status, per-epoch values of metric)`` of this search's trials that ended
        (COMPLETED or PRUNED), but for the ``known`` runs: what the pruning rules compare a trial with, whichever
        process trained them."""
        runs = self.client.search_runs([self.experiment_id], f"tags.mlflow.parentRunId = '{self.parent_id}'",
                                       max_results=10000)
        out = {}
        for run in runs:
            status = run.data.tags.get(tag.TRIAL_STATUS)
            if status in ENDED and run.info.run_id not in known:
                history = sorted(self.client.get_metric_history(run.info.run_id, metric), key=lambda m: m.step)
                out[run.info.run_id] = (status, [m.value for m in history])
        return out

    def start_trial(self, trial_id: str, hp_values: dict, plan) -> TrialRun:
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"trial-{trial_id}",
            tags={
                "mlflow.parentRunId": self.parent_id,
                tag.TRIAL_ID: trial_id,
                tag.TRIAL_STATUS: "RUNNING",
                tag.TECHNIQUES: ",".join(plan.active_techniques()) or "baseline",
                tag.PLAN: plan.describe(),
                **notes.note_tags(notes.trial_started_note(trial_id, plan)),
            },
        )
        params = {f"hp.{k}": v for k, v in hp_values.items()}
        params.update(plan.flatten(prefix="plan."))
        self._log_params(run.info.run_id, params)
        self._log_datasets(run.info.run_id)
        return TrialRun(self.client, run.info.run_id,
                        monitor=system.start(run.info.run_id, self.tracking_uri, self.system_metrics_interval_s))

    def _log_params(self, run_id: str, params: dict) -> None:
        items = [Param(k, _param_value(v)) for k, v in sorted(params.items())]
        for i in range(0, len(items), _PARAM_BATCH):
            self.client.log_batch(run_id, params=items[i:i + _PARAM_BATCH])
