"""The chief of a parallel or distributed search: the parent run, the oracle on gRPC, the workers' fate, the summary.

The chief trains nothing. It opens the search's parent run (a new one, or
the one ``resume`` continues: ``resume.open_session``, as a single-process
search does), builds keras-tuner's oracle in the search's state directory,
serves it over gRPC (``rpc``: keras-tuner's own oracle service plus kreg's
``Info`` and ``Beat``) and watches its workers: local worker processes it
started (``parallel.LocalPool``) and any number of ``kreg worker`` processes
on other machines. Each worker writes its own trials' child runs under the
parent; when the oracle has proposed its last trial and every trial has
ended, the chief reads the trials back from those child runs (their
``trial.json``, tags and metrics; ``resume.committed_records``) and writes
the parent's summary, exactly as a single-process search would.

A worker that dies (its process exits, or it stops beating for
``worker_timeout_s``; one stopped by a signal says so in its last beat) is
given up: its trial's run, if still RUNNING, ends KILLED (tag
``kreg.interrupted_by`` says why); a trial whose run had already committed
its result keeps it; otherwise the trial goes back to the oracle's queue and
the next worker that asks runs it again under the same trial id (a new child
run). A trial whose worker dies twice is recorded FAILED. The search goes on
with the workers left, and completes.
"""

from __future__ import annotations

import importlib
import signal
import socket
import threading
import time

from kreg.lab.search import _keras_tuner as _kt
from kreg.lab.search import rpc, signals
from kreg.lab.search.rpc import quiet_mlflow
from kreg.lab.tracking.records import FAILED, KILLED
from kreg.lab.tracking import tags as tag

MAX_RUNS = 2  # a trial whose worker dies runs once more; a second death records it FAILED
POLL_S = 0.2


def trial_runs(tracker, parent_id: str, trial_id: str) -> list:
    """The child runs of ``parent_id`` that ran ``trial_id``, oldest first."""
    return tag.trial_runs(tracker.client, tracker.experiment_id, parent_id, trial_id)


def release(tracker, oracle, parent_id: str, tuner_id: str, why: str, failures: dict) -> str | None:
    """Gives up worker ``tuner_id``: closes its trial's run and re-queues, keeps or fails that trial.

    Returns what happened to its trial (None when it held none).
    """
    from kreg.lab.search.resume import close_stale, committed_records

    trial_id = _ongoing_id(oracle, tuner_id)
    if trial_id is None:
        _forget(oracle, tuner_id)
        return None
    runs = trial_runs(tracker, parent_id, trial_id)
    stale = [r for r in runs if r.info.status == "RUNNING"]
    close_stale(tracker.client, stale)
    for run in stale:
        if run.data.tags.get(tag.TRIAL_STATUS) == KILLED:
            tracker.client.set_tag(run.info.run_id, tag.INTERRUPTED_BY, why)
    # A run closed KILLED (now or by an earlier loss) never counts, whatever it wrote after.
    live = [r for r in runs if r.info.status != "KILLED" and r.data.tags.get(tag.TRIAL_STATUS) != KILLED]
    return _requeue(oracle, tuner_id, trial_id, committed_records(tracker.client, live), why, failures)


@_kt.synchronized
def _ongoing_id(oracle, tuner_id: str) -> str | None:
    trial = oracle.ongoing_trials.get(tuner_id)
    return trial.trial_id if trial is not None else None


@_kt.synchronized
def _forget(oracle, tuner_id: str) -> None:
    oracle.tuner_ids.discard(tuner_id)


@_kt.synchronized
def _requeue(oracle, tuner_id: str, trial_id: str, committed: dict, why: str, failures: dict) -> str | None:
    from kreg.lab.search.state import settle

    oracle.tuner_ids.discard(tuner_id)
    trial = oracle.ongoing_trials.get(tuner_id)
    if trial is None or trial.trial_id != trial_id:  # ended meanwhile
        return None
    del oracle.ongoing_trials[tuner_id]
    queue = _kt.retry_queue(oracle)
    queue.append(trial_id)
    if trial_id in committed:  # its result was written before the worker died: kept, not rerun
        settle(oracle, {trial_id: committed[trial_id]})
        oracle.save()
        return f"trial {trial_id} had finished ({committed[trial_id].status}): kept"
    runs = _kt.count_run(oracle, trial_id)
    if runs < MAX_RUNS:
        oracle.save()
        return f"trial {trial_id} runs again"
    queue.remove(trial_id)
    trial.status, trial.message = FAILED, why
    oracle.end_order.append(trial_id)
    _kt.save_trial(oracle, trial)
    oracle.save()
    failures[trial_id] = f"its worker died {runs} times (last: {why})"
    return f"trial {trial_id} FAILED (its worker died {runs} times)"


@_kt.synchronized
def _ended(oracle) -> int:
    return len(oracle.end_order)


class Chief:
    """Serves the oracle and watches the workers until the search is done (``run``)."""

    def __init__(self, oracle, tracker, parent_id: str, info: dict, *, host: str, port: int,
                 worker_timeout_s: float, reporter, pool=None, remote: bool = False):
        self.oracle, self.tracker, self.parent_id = oracle, tracker, parent_id
        self.host, self.worker_timeout_s = host, worker_timeout_s
        self.reporter, self.pool, self.remote = reporter, pool, remote
        self.board = rpc.Board(oracle, info)
        self.failures: dict[str, str] = {}
        self.failed: str | None = None
        self.server, self.port = rpc.serve(oracle, self.board, host, port)
        self.target = rpc.address(host, self.port)
        # The summary's plots need matplotlib: imported now, while the chief waits, not after the last trial.
        threading.Thread(target=importlib.import_module, args=("kreg.lab.tracking.plots",), daemon=True).start()

    def run(self) -> None:
        """Until every trial has ended (or every local worker is gone, with no remote ones expected)."""
        while True:
            signals.checkpoint()
            self._show()
            if self.pool is not None:
                for label, code, tail in self.pool.exited():
                    if code != 0:  # an error's last line says why; a killed worker's log says nothing
                        last = f": {tail[-1]}" if tail and code > 0 else ""
                        self._lose(label, f"worker {label} exited ({_describe_exit(code)}){last}")
            for tuner_id in self.board.silent(self.worker_timeout_s):
                if self.pool is not None:
                    self.pool.kill(tuner_id)  # a local worker that hangs
                self._lose(tuner_id, f"no heartbeat from worker {tuner_id} in {self.worker_timeout_s:g} s")
            for tuner_id in sorted(self.board.left - self.board.dead):
                if tuner_id in rpc._counted(self.oracle):  # stopped (a signal) holding a trial
                    self._lose(tuner_id, f"worker {tuner_id} stopped")
            if self.board.failure:  # as a single-process search stops: keras-tuner's failure limit
                self._show()
                self.failed = self.board.failure
                return
            if self.board.done():
                self._show()
                return
            if self.pool is not None and not self.remote and self.pool.alive() == 0:
                self._show()
                if not self.board.done():
                    self.failed = "every worker exited before the search finished" + self.pool.last_words()
                return
            time.sleep(POLL_S)

    def _lose(self, tuner_id: str, why: str) -> None:
        self.board.dead.add(tuner_id)
        with self.board.lock:
            self.board.progress.pop(tuner_id, None)
        outcome = release(self.tracker, self.oracle, self.parent_id, tuner_id, why, self.failures)
        self.reporter_line("chief", f"{why}; {outcome}" if outcome else why)

    def reporter_line(self, label: str, text: str) -> None:
        line = getattr(self.reporter, "line", None)
        if line is not None:
            line(label, text)

    def _show(self) -> None:
        for label, text in self.board.take_lines():
            self.reporter_line(label, text)
        with self.board.lock:
            progress = {k: dict(v) for k, v in self.board.progress.items() if k not in self.board.dead}
        for method, value in (("workers", progress), ("ended", _ended(self.oracle))):
            show = getattr(self.reporter, method, None)
            if show is not None:
                show(value)

    def close(self, stop_reason: str | None = None, signum: int | None = None, wait_s: float = 60.0) -> None:
        """Stops the workers if the search was stopped; waits for the local ones; stops serving."""
        if stop_reason:
            self.board.stop_reason = stop_reason  # remote workers hear it at their next beat
            if self.pool is not None and signum is not None:
                self.pool.signal(signum)
        if self.pool is not None:
            self.pool.wait(wait_s)
        if stop_reason and self.remote:  # let remote workers hear it and close their runs
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline and rpc._counted(self.oracle) - self.board.left - self.board.dead:
                time.sleep(POLL_S)
        self._show()
        self.server.stop(grace=1.0).wait(5.0)

    def records(self, search) -> list:
        """Every ended trial's record, read back from its child run, in trial order."""
        from kreg.lab.search.resume import child_runs, committed_records, finished_records

        runs = [r for r in child_runs(self.tracker, self.parent_id)
                if r.info.status != "KILLED" and r.data.tags.get(tag.TRIAL_STATUS) != KILLED]
        records = finished_records(self.oracle, committed_records(self.tracker.client, runs), search)
        for record in records:
            if record.trial_id in self.failures and record.run_id is None:
                record.reason = self.failures[record.trial_id]
        return sorted(records, key=lambda r: (len(r.trial_id), r.trial_id))


def _reachable(host: str, port: int) -> str:
    """The address workers on other machines use: this machine's name when serving on every interface."""
    return rpc.address(socket.gethostname() if host in ("0.0.0.0", "::") else host, port)


def _describe_exit(code: int) -> str:
    if code < 0:
        return f"killed by {signals.signal_name(-code)}"
    if code > 128:
        return f"exit {code}, {signals.signal_name(code - 128)}"
    return f"exit {code}"


def info(prepared, tracker, parent_id: str, spec: dict) -> dict:
    """The chief's ``Info``: what a worker needs to join (and to check it runs the same search)."""
    from kreg.lab.search import spec as spec_module

    search = prepared.search
    return {
        "parent_id": parent_id, "tracking_uri": tracker.tracking_uri, "experiment": search.experiment,
        "pipeline": search.name, "fingerprint": spec_module.fingerprint(spec), "spec": spec,
        "config": prepared.config, "host": socket.gethostname(),
    }


class ChiefExecutor:
    """The trials run by worker processes; this process serves the oracle and watches them (``run.Executor``)."""

    def __init__(self, prepared, *, host: str, port: int, pool, remote: bool, worker_timeout_s: float,
                 join_command: str | None):
        self.prepared, self.host, self.port, self.pool, self.remote = prepared, host, port, pool, remote
        self.worker_timeout_s, self.join_command = worker_timeout_s, join_command
        self.chief: Chief | None = None
        self.tracker = self.oracle = None
        self.stopped = False
        quiet_mlflow()

    def runner(self, search, tracker, reporter):
        self.tracker = tracker
        return search.trial_runner(None, reporter)  # builds the tuner (and hears of a resume); trains nothing here

    def execute(self, search, session, runner, budget, reporter):
        from kreg.lab.search import spec as spec_module

        tuner = session.tuner(search, runner)
        self.oracle = tuner.oracle
        tuner.oracle.verbose = 0  # kreg reports progress itself
        tuner.oracle.set_budget(budget)  # the chief decides: no trial is handed out that would overrun it
        tuner.save()
        spec = spec_module.search_spec(search, self.prepared.structure)
        pool = self.pool
        self.chief = chief = Chief(
            tuner.oracle, self.tracker, session.parent_id, info(self.prepared, self.tracker, session.parent_id, spec),
            host=self.host, port=self.port, worker_timeout_s=self.worker_timeout_s, reporter=reporter, pool=pool,
            remote=self.remote)
        serving = getattr(reporter, "serving", None)
        if serving is not None:
            serving(chief.target, session.parent_id, pool.count if pool else 0, pool.threads if pool else None,
                    self.join_command.format(_reachable(self.host, chief.port))
                    if self.join_command and self.remote else None)
        chief.run()
        if chief.failed:
            raise RuntimeError(chief.failed)

    def done(self, runner):
        return _ended(self.oracle) if self.chief is not None else None

    def stop(self, search, runner, status, error, interrupted):
        chief, pool = self.chief, self.pool
        self.stopped = interrupted is not None or status != "FINISHED"
        if chief is not None and self.stopped:  # the workers stop first (their runs end KILLED), then the summary
            chief.close(f"the chief was interrupted by {interrupted.name}" if interrupted else
                        f"the search stopped: {error}", interrupted.signum if interrupted else signal.SIGTERM)
        elif chief is None and pool is not None:
            pool.signal(signal.SIGTERM)
            pool.wait(30.0)
        return (chief.records(search) if chief is not None else list(runner.records)), error

    def close(self, session, stopped):
        if self.chief is not None and not stopped:  # every trial has ended; the workers close their runs and exit
            self.chief.close()
        if self.pool is not None:
            self.pool.keep_logs(session.directory / "workers")


def run_chief(prepared, *, host: str = "127.0.0.1", port: int = 0, pool=None, remote: bool = False,
              worker_timeout_s: float = 30.0, reporter=None, resume=False, resume_command: str | None = None,
              join_command: str | None = None, started: float | None = None):
    """Runs a search as its chief (see the module docstring; ``run`` with ``ChiefExecutor``); returns the summary."""
    from kreg.lab.search.run import run

    executor = ChiefExecutor(prepared, host=host, port=port, pool=pool, remote=remote,
                             worker_timeout_s=worker_timeout_s, join_command=join_command)
    return run(prepared.search, executor, reporter=reporter, config=prepared.config,
               config_text=prepared.config_text, resume=resume, resume_command=resume_command,
               structure=prepared.structure, started=started)
