"""A worker of a parallel or distributed search: it asks the chief for trials and runs them.

A worker resolves the same search as the chief (from the same pipeline file,
or the same ``kreg.tune`` arguments for a local worker) and joins it only if
the two agree: its search fingerprint must equal the chief's (the data, the
model's structure, the space, the settings; a differing worker is refused
naming what changed, exit code 2), and the chief's parent run must be in the
store it writes to. Then it runs trials as a single-process search does
(``TrialRunner``: the honest gap, the test, one MLflow child run per trial
under the chief's parent, tag ``kreg.worker``), asking keras-tuner's oracle on
the chief for each next trial, until the chief says the search is over.

A heartbeat thread tells the chief every few seconds that the worker lives
and what it runs (the chief's console shows it); it carries each finished
trial's line too. If the chief stops answering for ``lost_after_s`` seconds,
or answers that it is closing or gave this worker up, the worker stops as if
interrupted: the running trial's run ends KILLED, and the chief runs that
trial again elsewhere. A signal (SIGINT, SIGTERM, SIGHUP) ends a worker the
same way (exit 128+n), and its last heartbeat tells the chief at once.
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
import tempfile
import threading
import time

from kreg.errors import KregError
from kreg.lab.search import signals
from kreg.lab.search.rpc import ChiefLost, Connection, OracleClient
from kreg.lab.tracking import tags as tag

EXIT_DONE, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2


class JoinError(KregError, ValueError):
    """A worker cannot join this chief's search (another search, another store): says why."""

    exit_code = 2


class Heartbeat(threading.Thread):
    """Beats every ``interval_s`` with the worker's progress; stops the worker when the chief is lost."""

    def __init__(self, connection: Connection, tuner_id: str, interval_s: float = 3.0, lost_after_s: float = 30.0):
        super().__init__(name="kreg-heartbeat", daemon=True)
        self.connection, self.tuner_id = connection, tuner_id
        self.interval_s, self.lost_after_s = interval_s, lost_after_s
        self.stop_reason: str | None = None
        self._state: dict = {}
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._last_ok = time.monotonic()

    def update(self, **state) -> None:
        with self._lock:
            self._state.update(state)

    def send(self, lines=(), leaving: bool = False) -> None:
        """Beats now, with ``lines`` for the chief's console (kept for the next beat if this one fails)."""
        with self._lock:
            self._lines += list(lines)
            sent, self._lines = self._lines, []
            payload = {"tuner_id": self.tuner_id, **self._state, "lines": sent, "leaving": leaving}
        try:
            answer = self.connection.beat(payload, timeout_s=min(10.0, self.lost_after_s))
        except Exception:
            with self._lock:
                self._lines[:0] = sent
            silent = time.monotonic() - self._last_ok
            if silent > self.lost_after_s and not leaving:
                self._stop(f"the chief at {self.connection.target} stopped answering ({silent:.0f} s)")
            return
        self._last_ok = time.monotonic()
        if answer.get("stop") and not leaving:
            self._stop(str(answer["stop"]))

    def _stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            _thread.interrupt_main(signal.SIGINT)  # the search's signal guard stops the trial cleanly

    def run(self) -> None:
        while not self._halt.wait(self.interval_s):
            self.send()

    def halt(self) -> None:
        self._halt.set()


class WorkerReporter:
    """A worker's progress: to the chief through the heartbeat, and to its own console when ``echo``."""

    def __init__(self, heartbeat: Heartbeat, metric: str, label: str, echo: bool = True):
        self.heartbeat, self.metric, self.label, self.echo = heartbeat, metric, label, echo
        self.counts = {"COMPLETED": 0, "FAILED": 0}

    def _print(self, text: str) -> None:
        if self.echo:
            from rich.console import Console
            from rich.markup import escape

            Console(soft_wrap=True, highlight=False).print(f"{escape(f'[{self.label}]')} {text}")

    def search_started(self, search, total):
        pass

    def search_resumed(self, parent_run_id, records, rerun):
        pass

    def trial_started(self, index, trial_id, plan, epochs):
        self.heartbeat.update(trial_id=trial_id, epoch=0, epochs=epochs, val=None, gap=None)
        self._print(f"trial {trial_id} started | {plan.describe()}")

    def epoch_end(self, index, epoch, epochs, logs):
        self.heartbeat.update(epoch=epoch, epochs=epochs, val=_number(logs.get(f"val_{self.metric}")),
                              gap=_number(logs.get(f"gap_{self.metric}")))

    def trial_ended(self, index, record):
        from kreg.lab.tracking.workers import trial_line

        self.counts[record.status] = self.counts.get(record.status, 0) + 1
        line = trial_line(record, self.metric)
        self.heartbeat.update(trial_id=None, epoch=None, epochs=None, val=None, gap=None)
        self.heartbeat.send([line])  # before keras-tuner ends the trial: the chief shows it first
        self._print(line)

    def search_ended(self, summary):
        pass


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def check_join(info: dict, prepared, tracker_factory):
    """The worker's tracker, attached to the chief's parent run.

    Refuses (``JoinError``) a worker whose search differs from the chief's, or
    whose store does not hold the chief's running parent run.
    """
    from kreg.lab.search import spec as spec_module

    spec = spec_module.search_spec(prepared.search, prepared.structure)
    if spec_module.fingerprint(spec) != info["fingerprint"]:
        what = "; ".join(spec_module.changes(info.get("spec") or {}, spec)) or "its settings differ"
        raise JoinError(f"this worker's search differs from the chief's ({what}): run the same pipeline "
                        "file, data and code as the chief")
    uri = prepared.search.tracking_uri
    tracker = tracker_factory(uri, info["experiment"])
    try:
        parent = tracker.client.get_run(info["parent_id"])
    except Exception:
        raise JoinError(f"the chief's parent run {info['parent_id']} is not in {uri}: point --tracking-uri at "
                        f"the chief's store ({info['tracking_uri']})") from None
    if parent.info.status != "RUNNING":
        raise JoinError(f"the chief's search {info['parent_id']} is {parent.info.status}: nothing to join")
    tracker.parent_id = info["parent_id"]
    return tracker


def run_worker(prepared, connection: Connection, info: dict, *, tuner_id: str, echo: bool = True,
               lost_after_s: float = 30.0, heartbeat_s: float = 3.0, label: str | None = None) -> int:
    """Joins the chief's search and runs trials until it ends; returns the exit code.

    ``prepared`` is the worker's own resolution of the search
    (``kreg.lab.search.prepare.prepare``); ``info`` the chief's ``Info``.
    """
    from kreg.lab.tracking.mlflow import SearchTracker
    search = prepared.search
    tracker = check_join(info, prepared, SearchTracker)
    label = label or tuner_id
    heartbeat = Heartbeat(connection, tuner_id, interval_s=heartbeat_s, lost_after_s=lost_after_s)
    reporter = WorkerReporter(heartbeat, search.task.primary, label, echo=echo)
    _tag_runs(tracker, tuner_id)
    runner = search.trial_runner(tracker, reporter)
    heartbeat.send()
    heartbeat.start()
    code = EXIT_DONE
    with tempfile.TemporaryDirectory(prefix="kreg-worker-") as directory:
        oracle = _local_oracle(search)
        tuner = _worker_tuner_class()(oracle, runner, search=search, directory=directory, project_name="search", overwrite=True)
        tuner.oracle = OracleClient(oracle, connection, tuner_id, timeout_s=max(60.0, 2 * lost_after_s))
        tuner.tuner_id = tuner_id
        try:
            from kreg.lab.trial import memory

            with signals.deferred(), memory.frozen():  # the collection between trials walks only what they made
                tuner.search(verbose=0)
        except signals.SearchInterrupted as exc:
            code = EXIT_FAILED if heartbeat.stop_reason else exc.exit_code
            if echo or heartbeat.stop_reason:
                print(f"kreg worker {label}: {heartbeat.stop_reason or exc.message}", file=sys.stderr, flush=True)
        except ChiefLost as exc:
            code = EXIT_FAILED
            print(f"kreg worker {label}: {exc}", file=sys.stderr, flush=True)
        except Exception as exc:  # the store failing (keras-tuner's FatalError), or a bug: say it in one line
            code = EXIT_FAILED
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            print(f"kreg worker {label}: stopped: {type(exc).__name__}: {first}", file=sys.stderr, flush=True)
        finally:
            for problem in runner.wait():
                print(f"kreg worker {label}: {problem}", file=sys.stderr, flush=True)
            heartbeat.halt()
            with contextlib.suppress(Exception):
                heartbeat.send(leaving=True)
    if echo:
        counts = ", ".join(f"{n} {status.lower()}" for status, n in reporter.counts.items() if n) or "no trial"
        print(f"kreg worker {label}: done ({counts})", flush=True)
    return code


def _tag_runs(tracker, tuner_id: str) -> None:
    """Every child run this worker starts says which worker ran it (tag ``kreg.worker``)."""
    start_trial = tracker.start_trial

    def tagged(trial_id, hp_values, plan):
        run = start_trial(trial_id, hp_values, plan)
        run.set_tags({tag.WORKER: tuner_id})
        return run

    tracker.start_trial = tagged


def _local_oracle(search):
    """An oracle like the chief's (its objective and limits); the chief's own answers every call."""
    import keras_tuner as kt

    from kreg.lab.search.oracles import make_oracle
    from kreg.lab.search.space import plan_from_hp

    hyperparameters = kt.HyperParameters()
    plan_from_hp(hyperparameters, search.space, search.training.settings())
    return make_oracle(search.settings, search.space, search.objective, hyperparameters, seed=search.seed,
                       max_epochs=search.training.epochs)


def _worker_tuner_class():
    from kreg.lab.search.tuner import KregTuner

    class WorkerTuner(KregTuner):
        """A ``KregTuner`` whose oracle is the chief's: it saves nothing (the chief keeps the state).

        The worker that ran the baseline refits it as soon as the chief has its result, before it asks
        for the next trial (``answer.refit_baseline_early``): the chief, which waits for every worker
        to ask once more before it ends the search, then reads that refit back instead of training it
        after the last trial, while this worker's cores would otherwise idle.
        """

        baseline_refit = False

        def save(self):
            pass

        def on_trial_end(self, trial):
            super().on_trial_end(trial)  # the chief has the trial's result first
            if self.baseline_refit:
                return
            record = next((r for r in reversed(self.runner.records) if r.trial_id == trial.trial_id), None)
            if record is None or not record.plan.is_baseline:
                return
            from kreg.lab.search.answer import refit_baseline_early

            self.baseline_refit = True
            heartbeat = getattr(self.runner.reporter, "heartbeat", None)
            echo = (lambda line: heartbeat.send([line])) if heartbeat is not None else (lambda line: None)
            refit_baseline_early(self.kreg_search, record, self.runner.tracker, echo=echo,
                                 by=f"worker {self.tuner_id}")

    return WorkerTuner

