"""Running a prepared search: one skeleton, two executors (trials in this process, or a chief and its workers).

The skeleton (``run``) is the same for both: the parent run (new or resumed:
``resume.open_session``), the time budget, the trials, then the summary
(``finish.finish_search``) whatever happened. What differs is who trains
the trials, and that is the executor's part:

- ``InProcess``: keras-tuner's own search loop runs every trial here, one
  after another (``run_search``).
- ``chief.ChiefExecutor``: this process serves the oracle and trains
  nothing; worker processes train the trials and the chief reads them back
  from their child runs (``chief.run_chief``).

A search owns its signals (``signals``): SIGINT, SIGTERM and SIGHUP stop it
within a training batch, the running trial's run and the parent end KILLED
with what was done, and ``SearchInterrupted`` carries one line saying how to
resume.
"""

from __future__ import annotations

import time

from kreg.lab import timing
from kreg.lab.search import signals
from kreg.lab.search.finish import SearchSummary, finish_search, interrupted_line, one_line, start_budget
from kreg.lab.search.prepare import Search


class Executor:
    """Who trains a search's trials. ``run`` calls these in order; each is one step of the skeleton."""

    def runner(self, search: Search, tracker, reporter):
        """The ``TrialRunner`` of this search (it builds the tuner; it trains only where trials run here)."""
        raise NotImplementedError

    def execute(self, search: Search, session, runner, budget, reporter) -> None:
        """Runs the trials until the oracle has no more; raises what stopped them."""
        raise NotImplementedError

    def done(self, runner) -> int | None:
        """How many trials ended so far (said when the search is stopped)."""
        raise NotImplementedError

    def stop(self, search: Search, runner, status: str, error: str, interrupted) -> tuple[list, str]:
        """After the trials (however they ended): every trial's record, trial 0 first, and the error so far."""
        raise NotImplementedError

    def close(self, session, stopped: bool) -> None:
        """Once the summary is written (or failed to be)."""


class InProcess(Executor):
    """Every trial in this process, one after another, through keras-tuner's own search loop."""

    def runner(self, search, tracker, reporter):
        runner = search.trial_runner(tracker, reporter)
        runner.stop_on_blocked_baseline = True
        return runner

    def execute(self, search, session, runner, budget, reporter):
        from kreg.lab.trial import memory

        runner.budget = budget
        tuner = session.tuner(search, runner)  # a resume: the oracle and the finished trials reloaded
        tuner.oracle.set_budget(budget)
        with memory.frozen():  # the collection between trials walks only what they made
            tuner.search(verbose=0)  # kreg reports progress itself

    def done(self, runner):
        return len(runner.records)

    def stop(self, search, runner, status, error, interrupted):
        with timing.section("end.wait_finishers"):
            problems = runner.wait()
        for problem in problems:
            error = f"{error}; {problem}" if error else problem
        return runner.records, error


@signals.deferring
def run(search: Search, executor: Executor, *, reporter=None, config: dict, config_text: str, resume=False,
        resume_command: str | None = None, structure: str | None = None,
        started: float | None = None) -> SearchSummary:
    """Runs a resolved search with ``executor``: the parent run (new or resumed), the trials, the summary.

    Signals are deferred to safe points here (``signals``): after a training batch, between trials.
    """
    from kreg.lab.search.resume import open_session
    from kreg.lab.tracking.mlflow import SearchTracker
    from kreg.lab.trial.runner import NullReporter

    reporter = reporter or NullReporter()
    start = time.perf_counter()
    timing.mark("run_search")
    with timing.section("start.open_session"):
        tracker = SearchTracker(search.tracking_uri, search.experiment)
        session = open_session(search, tracker, config=config, config_text=config_text, structure=structure,
                               resume=resume)
    with timing.section("start.runner"):
        runner = executor.runner(search, tracker, reporter)
    budget = start_budget(search, reporter, started, session.previous_duration_s)
    reporter.search_started(search, search.settings.trial_limit)
    status, error, interrupted = "FINISHED", "", None
    try:
        executor.execute(search, session, runner, budget, reporter)
    except signals.SearchInterrupted as exc:
        status, interrupted = "KILLED", exc
        error = exc.message = interrupted_line(exc, search, executor.done(runner) or 0, session.parent_id,
                                               resume_command)
        raise
    except Exception as exc:  # e.g. keras-tuner's limit on consecutive failed trials
        status, error = "FAILED", one_line(exc, search.settings, done=executor.done(runner),
                                           parent_id=session.parent_id, resume_command=resume_command)
    finally:
        timing.mark("trials_done")
        stopped = interrupted is not None or status != "FINISHED"
        records, error = executor.stop(search, runner, status, error, interrupted)
        try:  # a signal during the refit ends the search KILLED (raised by finish_search once it is closed)
            summary = finish_search(search, tracker, session, records, status=status, error=error,
                                    duration_s=session.previous_duration_s + time.perf_counter() - start,
                                    reporter=reporter, interrupted=interrupted, resume_command=resume_command,
                                    budget=budget)
        finally:
            executor.close(session, stopped)
    return summary


def run_search(search: Search, *, reporter=None, config: dict, config_text: str, resume=False,
               resume_command: str | None = None, structure: str | None = None,
               started: float | None = None) -> SearchSummary:
    """Runs a resolved search in this process (``run`` with ``InProcess``)."""
    return run(search, InProcess(), reporter=reporter, config=config, config_text=config_text, resume=resume,
               resume_command=resume_command, structure=structure, started=started)
