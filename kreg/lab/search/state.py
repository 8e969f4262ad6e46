"""Where a search's keras-tuner state lives, who may use it, and how its oracle is built or reloaded.

The one place that decides it (parallel workers and other machines will
build on it): ``state_dir`` is beside the parent run's artifacts
(``<artifacts>/<experiment>/<parent run>/tuner``) for a local store, and
``<project>/mlruns/tuner/<parent run>`` when the artifacts are elsewhere;
``StateLock`` lets one process at a time run a search there; ``open_tuner``
builds the oracle for the search's tuner and, for a resume, reloads
keras-tuner's state (its trials, their order, the random state, the
Hyperband brackets; see ``oracles`` for the Bayesian random state and the
grid position keras-tuner does not save), then settles the trials that
were running when the search stopped (``settle``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from kreg.lab.errors import ResumeError
from kreg.lab.tracking.records import ENDED

PROJECT = "search"  # keras-tuner's project name inside the state directory


def state_dir(tracker) -> Path:
    """The state directory of ``tracker``'s parent run (``tracker.parent_id`` set)."""
    from kreg.lab.tracking.store import store_dir

    artifact_dir = tracker.parent_artifact_dir()
    if artifact_dir is not None:
        return artifact_dir.parent / "tuner"  # beside the run's artifacts, not among them
    return store_dir() / "tuner" / tracker.parent_id


class StateLock:
    """An exclusive, non-blocking lock on a state directory, held while its search runs.

    The kernel drops it when the process dies (even by ``kill -9``), so a
    stale lock never blocks a resume, while a search still running (a
    parent RUNNING because it *is* running) refuses a second process.
    """

    def __init__(self, directory: Path, parent_id: str):
        self.path = Path(directory) / "lock"
        self.parent_id = parent_id
        self._handle = None

    def acquire(self) -> "StateLock":
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "?"
            handle.close()
            raise ResumeError(f"search {self.parent_id} is running in another process (pid {pid}); "
                              "wait for it to end or stop it first") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()  # closing drops the lock
            self._handle = None


def open_tuner(search, runner, directory: Path, *, resume: bool):
    """The oracle of ``search.settings.tuner`` and its ``KregTuner`` in ``directory``.

    A fresh search starts from an empty directory; a resumed one reloads
    keras-tuner's state from it, where the trials that were running when it
    stopped are queued to run again (keras-tuner's retry queue).
    """
    import keras_tuner as kt

    from kreg.lab.search.oracles import make_oracle
    from kreg.lab.search.space import plan_from_hp
    from kreg.lab.search.tuner import KregTuner

    hyperparameters = kt.HyperParameters()
    plan_from_hp(hyperparameters, search.space, search.training.settings())
    oracle = make_oracle(search.settings, search.space, search.objective, hyperparameters, seed=search.seed,
                         max_epochs=search.training.epochs)
    tuner = KregTuner(oracle, runner, search=search, directory=str(directory), project_name=PROJECT, overwrite=not resume)
    if resume and (Path(directory) / PROJECT / "oracle.json").is_file():
        oracle.reload()
    return tuner


def settle(oracle, committed: dict) -> list[str]:
    """Ends, in the oracle, the trials queued to run again whose MLflow run had committed a result.

    A ``kill -9`` between a trial's commit (its status tag) and keras-tuner
    saving the trial as ended leaves it "ongoing" in the oracle: it is ended
    now with the committed objective, never trained twice. Returns the ids
    that really run again (interrupted mid-training).
    """
    rerun = []
    from kreg.lab.search._keras_tuner import retry_queue

    queue = retry_queue(oracle)
    for trial_id in list(queue):
        record = committed.get(trial_id)
        if record is None:
            rerun.append(trial_id)
            continue
        queue.remove(trial_id)
        trial = oracle.trials[trial_id]
        if record.status in ENDED and record.objective is not None:  # a pruned trial ended with its value too
            if not trial.metrics.exists(oracle.objective.name):
                oracle.update_trial(trial_id, {oracle.objective.name: record.objective})
            trial.status = "COMPLETED"
        else:
            trial.status, trial.message = "FAILED", record.reason
        with contextlib.suppress(RuntimeError):  # keras-tuner's failure limit: the search stops at the next end
            oracle.end_trial(trial)
    return rerun
