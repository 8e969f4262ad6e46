"""keras-tuner's private API, behind one door, checked against the versions kreg was checked on.

kreg's search leans on keras-tuner in places keras-tuner does not publish:
its gRPC protocol (``keras_tuner.src.protos``, the chief's
``OracleServicer``), its oracle lock (``LOCKS``, ``THREADS``), an oracle's
retry queue, run counts and trial writer (``_retry_queue``, ``_run_times``,
``_save_trial``), the grid's private enumeration (``LinkedList``,
``_ordered_ids``, ``_populate_next``), its ``config.DEBUG`` switch and the
text of its "consecutive failures" error. Every one of those reads is here
and nowhere else in kreg, so a keras-tuner release that moves one breaks
this module, in one place, with one sentence.

At import the installed version is compared with the series kreg was checked
on (``KNOWN_SERIES``); another one is refused (``UnknownKerasTuner``) before
any of its private modules is touched. Nothing is patched at import: the one
patch (``Parent.to_proto`` without its debug ``print``) is applied by
``apply_patches``, which the chief and each worker call when they start.
"""

from __future__ import annotations

import contextlib
import functools
import threading

import keras_tuner

KNOWN_SERIES = ("1.4",)  # major.minor series whose private API this module was checked against
CHECKED_ON = "1.4.8"
PIN = "keras-tuner>=1.4.8,<1.5"


class UnknownKerasTuner(ImportError):
    """The installed keras-tuner is not one whose private API kreg's search was checked against."""


def check_version(version: str | None = None) -> str:
    """Returns the installed keras-tuner version; raises ``UnknownKerasTuner`` on a series not in ``KNOWN_SERIES``."""
    version = str(keras_tuner.__version__ if version is None else version)
    series = ".".join(version.split(".")[:2])
    if series not in KNOWN_SERIES:
        known = ", ".join(f"{s}.x" for s in KNOWN_SERIES)
        raise UnknownKerasTuner(
            f"kreg's search uses keras-tuner internals checked on {known} (last on {CHECKED_ON}), and the installed "
            f"keras-tuner is {version}: install a known one with pip install '{PIN}'")
    return version


VERSION = check_version()

# Imported only once the version is known to have them.
from keras_tuner.src import config as _config  # noqa: E402
from keras_tuner.src import protos  # noqa: E402
from keras_tuner.src.distribute.oracle_chief import OracleServicer  # noqa: E402
from keras_tuner.src.engine import conditions as _conditions  # noqa: E402
from keras_tuner.src.engine import hyperparameters as _hp_module  # noqa: E402
from keras_tuner.src.engine import trial as _trial_module  # noqa: E402
from keras_tuner.src.engine.oracle import LOCKS, THREADS  # noqa: E402
from keras_tuner.src.engine.oracle import synchronized as oracle_synchronized  # noqa: E402
from keras_tuner.src.tuners.gridsearch import LinkedList as _LinkedList  # noqa: E402

Trial = _trial_module.Trial
TrialStatus = _trial_module.TrialStatus
HyperParameters = _hp_module.HyperParameters

__all__ = [
    "CHECKED_ON", "KNOWN_SERIES", "PIN", "VERSION", "HyperParameters", "OracleHooks", "OracleServicer", "Trial",
    "TrialStatus", "UnknownKerasTuner", "apply_patches", "check_version", "count_run", "is_failure_limit",
    "is_worker", "oracle_synchronized", "patched", "protos", "quiet_failed_trials", "random_state",
    "rebuild_grid_position", "retry_queue", "save_trial", "synchronized", "oracle_file", "trial_file",
]


# ------------------------------------------------------------------ patches (applied when needed, never at import)
_KERAS_TUNER_PARENT_TO_PROTO = _conditions.Parent.to_proto
_PATCH_LOCK = threading.Lock()


def _parent_to_proto(self):
    """keras-tuner 1.4.8's ``Parent.to_proto`` without its stray debug ``print`` (a line per condition per call)."""
    proto = protos.get_proto()
    first = self.values[0]
    kind = ("string_value" if isinstance(first, str) else "boolean_value" if isinstance(first, bool)
            else "int_value" if isinstance(first, int) else "float_value")
    values = [proto.Value(**{kind: v}) for v in self.values]
    return proto.Condition(parent=proto.Condition.Parent(name=self.name, values=values))


def apply_patches() -> None:
    """Patches keras-tuner for a chief or a worker (idempotent): conditions cross the wire without a print each."""
    with _PATCH_LOCK:
        _conditions.Parent.to_proto = _parent_to_proto


def patched() -> bool:
    """Whether ``apply_patches`` has run in this process."""
    return _conditions.Parent.to_proto is _parent_to_proto


@contextlib.contextmanager
def quiet_failed_trials():
    """keras-tuner prints every failed trial's traceback (its ``config.DEBUG``, on by default): off meanwhile."""
    previous, _config.DEBUG = _config.DEBUG, False
    try:
        yield
    finally:
        _config.DEBUG = previous


def is_failure_limit(exc: BaseException | str) -> bool:
    """Whether ``exc`` (or its text) is keras-tuner's stop after ``max_consecutive_failed_trials`` failed trials in a row."""
    return "consecutive failures" in str(exc)


# ------------------------------------------------------------------ the oracle's lock
def synchronized(function):
    """keras-tuner's lock on an oracle around ``function(oracle, ...)``, released even when it raises.

    keras-tuner's own ``synchronized`` leaves the lock held when the method
    raises (its end_trial does, at the limit of consecutive failed trials):
    harmless in one thread, a deadlock of the chief's gRPC threads. Methods
    called inside (``create_trial``, ``end_trial``, ...) see the lock taken by
    this thread and do not take it again.
    """
    @functools.wraps(function)
    def wrapper(oracle, *args, **kwargs):
        name = threading.current_thread().name
        acquire = THREADS[oracle] != name
        if acquire:
            LOCKS[oracle].acquire()
            THREADS[oracle] = name
        try:
            return function(oracle, *args, **kwargs)
        finally:
            if acquire:
                THREADS[oracle] = None
                LOCKS[oracle].release()
    return wrapper


# ------------------------------------------------------------------ an oracle's private state
def retry_queue(oracle) -> list:
    """The trial ids the oracle hands out again before proposing new ones (a list kreg may append to)."""
    return oracle._retry_queue


def count_run(oracle, trial_id: str) -> int:
    """Counts one more run of ``trial_id`` (keras-tuner's retry count); returns the runs so far."""
    oracle._run_times[trial_id] += 1
    return oracle._run_times[trial_id]


def save_trial(oracle, trial) -> None:
    """Writes ``trial``'s ``trial.json`` (the oracle's own writer)."""
    oracle._save_trial(trial)


def oracle_file(oracle) -> str:
    """The path of the oracle's ``oracle.json``."""
    return oracle._get_oracle_fname()


def trial_file(oracle, trial_id: str) -> str:
    """The path of trial ``trial_id``'s ``trial.json``."""
    import os

    return os.path.join(oracle._get_trial_dir(trial_id), "trial.json")


def random_state(oracle):
    """The Bayesian oracle's NumPy random state (None for the other oracles)."""
    return getattr(oracle, "_random_state", None)


def is_worker(tuner) -> bool:
    """Whether ``tuner`` runs as a worker of keras-tuner's distributed mode."""
    return tuner._is_worker()


class OracleHooks:
    """keras-tuner's private oracle hooks, under kreg's names: mix in before a keras-tuner oracle.

    ``kreg_random_values(draw)`` replaces ``_random_values`` (``draw()``:
    keras-tuner's own draw); ``kreg_save_trial(trial)`` replaces
    ``_save_trial``. ``random_values()`` draws as the oracle would.
    """

    def _random_values(self):
        return self.kreg_random_values(super()._random_values)

    def _save_trial(self, trial):
        self.kreg_save_trial(trial)

    def random_values(self):
        return self._random_values()

    def kreg_random_values(self, draw):
        return draw()

    def kreg_save_trial(self, trial):
        super()._save_trial(trial)


def rebuild_grid_position(oracle) -> None:
    """Rebuilds a reloaded ``GridSearchOracle``'s enumeration position from its saved trials.

    keras-tuner's grid keeps its position in memory only (the trials ordered
    by their values, and the ended trials whose successor is still to be
    proposed): rebuilt as its own ``populate_space`` would have left them.
    """
    def order(a, b):
        return oracle._compare(oracle.trials[a].hyperparameters.values, oracle.trials[b].hyperparameters.values)

    oracle._ordered_ids = _LinkedList()
    for trial_id in sorted(oracle.start_order, key=functools.cmp_to_key(order)):
        oracle._ordered_ids.insert(trial_id)  # appended: the list is in value order
    oracle._populate_next = []
    for trial_id in oracle.end_order:
        values = oracle._get_next_combination(oracle.trials[trial_id].hyperparameters.values)
        if values is None:
            continue
        next_id = oracle._ordered_ids.next(trial_id)
        if next_id is not None and oracle._compare(values, oracle.trials[next_id].hyperparameters.values) >= 0:
            continue  # its successor was proposed already
        oracle._populate_next.append(trial_id)
