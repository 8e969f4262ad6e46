"""Opening a search's parent run: a new one, or the one a resume continues.

``kreg tune PIPELINE --resume`` (``kreg.tune(..., resume=True)``) picks the
latest unfinished (RUNNING, KILLED or FAILED) search of that pipeline in
that experiment; ``--resume PARENT_RUN_ID`` (``resume="<id>"``) names one.
Before anything changes in the store, a resume is refused (``ResumeError``,
exit code 2) when there is none, when it finished, when another process
still runs it (its state lock is held), or when the pipeline changed since
(the fingerprint differs: the message names what changed, from the spec
the parent keeps; see ``spec``). Then:

- child runs left RUNNING by a ``kill -9``, a crash or a store that stopped
  taking writes are closed: KILLED (tag ``kreg.trial_status`` KILLED), or
  FINISHED/FAILED when the trial had committed its result
  (``TrialRunner._commit``) but not closed its run; a completed trial's
  learning curves, if its run never got them, are drawn again from its
  per-epoch figures (``restore_artifacts``);
- the parent is RUNNING again (tag ``kreg.resumes`` counts the resumes);
- the finished trials' records are read back from their runs' ``trial.json``
  so the summary (best, baseline, gain, tables) covers the whole search;
- keras-tuner's oracle is reloaded (``state.open_tuner``): finished trials are
  not rerun, trial ids go on, an interrupted trial runs again under its id
  with a new run (its old run stays KILLED).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path

from kreg.lab.errors import ResumeError
from kreg.lab.search import spec as spec_module
from kreg.lab.search.state import PROJECT, StateLock, open_tuner, settle, state_dir
from kreg.lab.tracking.records import ENDED, FAILED, KILLED, TrialRecord
from kreg.lab.tracking import tags as tag

UNFINISHED = ("RUNNING", "KILLED", "FAILED")
RESUMES_TAG = tag.RESUMES  # kept under its old name


@dataclasses.dataclass
class Session:
    """One process's part of a search: its parent run, state directory and lock, what came before."""

    parent_id: str
    directory: Path
    lock: StateLock
    resumed: bool = False
    committed: dict = dataclasses.field(default_factory=dict)  # trial id -> TrialRecord with a result
    closed: int = 0  # child runs found RUNNING and closed
    previous_duration_s: float = 0.0  # the search's time before this resume

    def tuner(self, search, runner):
        """The search's tuner; for a resume, the oracle reloaded and ``runner.records`` the finished trials."""
        tuner = open_tuner(search, runner, self.directory, resume=self.resumed)
        if not self.resumed:
            return tuner
        oracle = tuner.oracle
        rerun = settle(oracle, self.committed)
        runner.records = finished_records(oracle, self.committed, search)
        reporter = getattr(runner.reporter, "search_resumed", None)
        if reporter is not None:
            reporter(self.parent_id, runner.records, rerun)
        return tuner

    def release(self) -> None:
        self.lock.release()


def open_session(search, tracker, *, config: dict, config_text: str, structure: str | None = None,
                 resume=False) -> Session:
    """A new parent run (``resume`` false) or the resumed one, its state directory locked."""
    spec = spec_module.search_spec(search, structure)
    if not resume:
        tracker.describe(search)  # the parent logs the search's data as dataset inputs
        parent_id = tracker.start_search(search.name, config, config_text)
        tracker.client.set_tag(parent_id, spec_module.FINGERPRINT_TAG, spec_module.fingerprint(spec))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / spec_module.SPEC_ARTIFACT
            path.write_text(json.dumps(spec, indent=1, sort_keys=True, default=str))
            tracker.client.log_artifact(parent_id, str(path))
        directory = state_dir(tracker)
        return Session(parent_id, directory, StateLock(directory, parent_id).acquire())
    parent = find_parent(tracker, search.name, resume)
    parent_id = parent.info.run_id
    tracker.parent_id = parent_id
    directory = state_dir(tracker)
    lock = StateLock(directory, parent_id).acquire()
    try:
        check_unchanged(tracker, parent, spec)
    except BaseException:
        lock.release()
        raise
    session = Session(parent_id, directory, lock, resumed=True,
                      previous_duration_s=float(parent.data.metrics.get("search_duration_s", 0.0)))
    children = child_runs(tracker, parent_id)
    session.committed = committed_records(tracker.client, children)
    if session.committed and not (directory / PROJECT / "oracle.json").is_file():
        lock.release()
        raise ResumeError(f"search {parent_id} has finished trials but its keras-tuner state ({directory}) is "
                          "missing: it cannot be continued without rerunning them; start a new search")
    unclosed = [r for r in children if r.info.status == "RUNNING" and r.data.tags.get(tag.TRIAL_STATUS) in ENDED]
    session.closed = close_stale(tracker.client, children)
    restore_artifacts(tracker, search, unclosed)
    client = tracker.client
    client.update_run(parent_id, status="RUNNING")
    client.set_tag(parent_id, RESUMES_TAG, str(int(parent.data.tags.get(RESUMES_TAG, "0")) + 1))
    if tag.ERROR in parent.data.tags:  # the interruption's line; the end of this run says what happened
        client.delete_tag(parent_id, tag.ERROR)
    return session


def find_parent(tracker, name: str, resume):
    """The parent run to resume: ``resume`` is True (latest unfinished of ``name``) or a parent run id."""
    client = tracker.client
    where = f"in experiment '{tracker.experiment}' ({tracker.tracking_uri})"
    if isinstance(resume, str):
        try:
            run = client.get_run(resume)
        except Exception:
            raise ResumeError(f"no run {resume} {where}") from None
        tags = run.data.tags
        if not tag.is_search_parent(tags):
            raise ResumeError(f"run {resume} is not a kreg search's parent run")
        if run.info.experiment_id != tracker.experiment_id:
            raise ResumeError(f"search {resume} is not {where}: pass its --experiment/--tracking-uri")
        if run.info.status not in UNFINISHED:
            raise ResumeError(f"search {resume} is {run.info.status}: nothing to resume "
                              "(run without --resume to start a new search)")
        return run
    runs = tag.search_parents(client, [tracker.experiment_id])
    for run in runs:
        if run.data.tags.get(tag.PIPELINE) == name and run.info.status in UNFINISHED:
            return run
    raise ResumeError(f"no unfinished search of pipeline '{name}' {where} to resume "
                      "(run without --resume to start one)")


def check_unchanged(tracker, parent, spec: dict) -> None:
    """Refuses a resume whose resolved search differs from the parent's, naming what changed."""
    saved = parent.data.tags.get(spec_module.FINGERPRINT_TAG)
    parent_id = parent.info.run_id
    if saved is None:
        raise ResumeError(f"search {parent_id} was started without what a resume needs "
                          f"(tag {spec_module.FINGERPRINT_TAG}); start a new search")
    if saved == spec_module.fingerprint(spec):
        return
    try:
        old = json.loads(read_artifact(tracker.client, parent, spec_module.SPEC_ARTIFACT))
        what = "; ".join(spec_module.changes(old, spec)) or "its settings differ"
    except Exception:
        what = "its fingerprint differs"
    raise ResumeError(f"cannot resume search {parent_id}: the pipeline changed since it started ({what}); "
                      "undo the change, or run without --resume to start a new search")


def child_runs(tracker, parent_id: str) -> list:
    """The search's child runs (its trials), oldest first."""
    return tag.child_runs(tracker.client, tracker.experiment_id, parent_id)


def close_stale(client, runs) -> int:
    """Closes the child runs left RUNNING (a kill -9, a crash); returns how many."""
    closed = 0
    for run in runs:
        if run.info.status != "RUNNING":
            continue
        committed = run.data.tags.get(tag.TRIAL_STATUS)
        if committed in (*ENDED, FAILED):  # its result is written: only the closing was missed
            client.set_terminated(run.info.run_id, "FINISHED" if committed in ENDED else "FAILED")
        else:
            client.set_tag(run.info.run_id, tag.TRIAL_STATUS, KILLED)
            client.set_tag(run.info.run_id, tag.INTERRUPTED_BY, "the process ended (kill -9 or a crash)")
            client.set_terminated(run.info.run_id, KILLED)
            run.data.tags[tag.TRIAL_STATUS] = KILLED
        closed += 1
    return closed


def restore_artifacts(tracker, search, runs) -> int:
    """Draws the learning curves of completed trials whose run never got them; returns how many.

    A trial's curves are written after it committed, on a worker thread, just before its run is closed: a
    store that stopped taking writes then (a full disk) leaves the run RUNNING without them. Its per-epoch
    figures are in the store: the curves are drawn again from them.
    """
    from kreg.lab.tracking import plots

    client, metric, restored = tracker.client, search.task.primary, 0
    keys = [key for name in ("loss", metric) for key in (name, f"train_{name}", f"val_{name}", f"gap_{name}")]
    for run in runs:
        run_id, tags = run.info.run_id, run.data.tags
        if any(a.path == "learning_curves.png" for a in client.list_artifacts(run_id)):
            continue
        history = {}
        for key in keys:
            points = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
            if points:
                history[key] = [m.value for m in points]
        if not history.get("loss"):
            continue
        kept = run.data.metrics.get("kept_epoch")
        with tempfile.TemporaryDirectory() as tmp:
            path = plots.learning_curves(history, Path(tmp) / "learning_curves.png", metric=metric,
                                         kept_epoch=int(kept) if kept else None,
                                         title=f"trial {tags.get(tag.TRIAL_ID)}: {tags.get(tag.PLAN, '')}")
            client.log_artifact(run_id, str(path))
        restored += 1
    return restored


def read_artifact(client, run, name: str) -> str:
    """The text of one of ``run``'s artifacts: read in place from a local store, else downloaded."""
    uri = run.info.artifact_uri
    if uri.startswith("file://"):
        return (Path(uri[len("file://"):]) / name).read_text()
    previous = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # no progress bar per small file
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return Path(client.download_artifacts(run.info.run_id, name, tmp)).read_text()
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = previous


def committed_records(client, runs) -> dict:
    """Trial id -> the record of its run that committed a result (COMPLETED, PRUNED or FAILED), read back."""
    records = {}
    for run in runs:  # oldest first: a later commit of the same id wins
        tags = run.data.tags
        if tags.get(tag.TRIAL_STATUS) in (*ENDED, FAILED) and tag.TRIAL_ID in tags:
            records[tags[tag.TRIAL_ID]] = _read_record(client, run)
    return records


def _read_record(client, run) -> TrialRecord:
    run_id, tags = run.info.run_id, run.data.tags
    try:
        return TrialRecord.from_json(read_artifact(client, run, "trial.json"), run_id=run_id)
    except Exception:  # no trial.json: what the run's tags and last metric values say
        metrics = dict(run.data.metrics)
        return TrialRecord(trial_id=tags[tag.TRIAL_ID], status=tags[tag.TRIAL_STATUS], metrics=metrics,
                           reason=tags.get(tag.FAILURE_REASON, ""), run_id=run_id,
                           duration_s=metrics.get("duration_s", 0.0),
                           objective=next((v for k, v in metrics.items() if k.startswith("kept_val_")), None))


def finished_records(oracle, committed: dict, search) -> list[TrialRecord]:
    """The records of the trials the oracle ended, in the order they ended."""
    from kreg.lab.search.space import plan_from_hp

    records, seen = [], set()
    for trial_id in oracle.end_order:
        if trial_id in seen:
            continue
        seen.add(trial_id)
        record = committed.get(trial_id)
        if record is None:  # ended in the oracle, but its run never committed: keep what the oracle knows
            trial = oracle.trials[trial_id]
            record = TrialRecord(trial_id=trial_id, status=FAILED, hp_values=dict(trial.hyperparameters.values),
                                 plan=plan_from_hp(trial.hyperparameters, search.space, search.training.settings()),
                                 reason="its MLflow run did not record a result")
        if record.plan is None:
            trial = oracle.trials[trial_id]
            record.plan = plan_from_hp(trial.hyperparameters, search.space, search.training.settings())
        records.append(record)
    return records
