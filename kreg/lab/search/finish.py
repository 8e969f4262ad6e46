"""Finishing a search: the summary, the answer's refit, the parent run's metrics, tags, artifacts and status.

Shared by both ways a search runs (``run``: trials in this process, or a
chief whose workers train them): ``finish_search`` takes every trial's
record, trial 0 (the baseline) first, and closes the parent run. The lines
that say what stopped a search (``one_line``, ``interrupted_line``) are here
too, for the same reason.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

from kreg.lab import timing
from kreg.lab.analysis.selection import pick_best
from kreg.lab.search import signals
from kreg.lab.search.prepare import Objective, Search
from kreg.lab.tracking.records import COMPLETED, ENDED, PRUNED, TrialRecord
from kreg.lab.tracking import tags as tag


@dataclasses.dataclass
class SearchSummary:
    """What a search found, relative to its baseline.

    ``records`` hold every trial (``.plan``, ``.metrics``, ``.run_id``,
    ``.status``); ``best`` is the answer, chosen on validation only by the
    selection rule (``top``: the best objective, the same trial under
    ``select="best"``); ``model`` the answer refit on training + validation
    and ``comparison`` its test figures against the refit baseline's;
    ``gain_test`` is the best trial's test figure of the task's headline
    metric against the baseline's, positive when the best is better.
    """

    pipeline: str
    parent_run_id: str | None
    experiment: str
    tracking_uri: str
    records: list
    baseline: TrialRecord | None
    best: TrialRecord | None
    duration_s: float
    status: str = "FINISHED"
    error: str = ""
    experiment_id: str | None = None
    metric: str = "accuracy"
    higher_is_better: bool = True
    objective: Objective | None = None  # what picked the best trial (validation only)
    top: TrialRecord | None = None  # the best objective (``best`` differs under select="one_se")
    selection: str = ""  # why ``best`` was chosen
    answer: Any = None  # kreg.lab.search.answer.Answer: the refit and the comparison with the baseline
    pruning: str = ""  # "12 of 20 trials pruned by the median rule (...), 58% of the planned epochs saved"
    budget: str = ""  # "budget 5m: 4m31s on 14 trials (...), 38s on the refit, ...; ended 12s before the budget"

    @property
    def model(self):
        """The chosen plan refit on training + validation (a ``keras.Model``; None without a refit).

        It takes your raw inputs (the standardization, the categories' encoding and the channel axis kreg
        added are inside it; a dict of columns for CSV/DataFrame data) and answers in your units
        (regression targets de-standardized).
        """
        exported = getattr(self.answer, "exported", None)
        return None if exported is None else exported.model

    @property
    def model_uri(self) -> str | None:
        """The answer's MLflow model (``models:/<id>``): ``mlflow.pyfunc.load_model(uri).predict(raw)``."""
        return getattr(self.answer, "model_uri", None)

    @property
    def comparison(self) -> dict | None:
        """Bootstrap intervals of both models' test figures, the paired gain, its p-value and ``line``."""
        return getattr(self.answer, "comparison", None)

    @property
    def gain_test(self) -> float | None:
        if self.best is None or self.baseline is None or self.baseline.status != COMPLETED:
            return None
        key = f"test_{self.metric}"
        diff = self.best.metrics[key] - self.baseline.metrics[key]
        return diff if self.higher_is_better else -diff

    def failure_summary(self) -> str:
        """One line on why trials failed (the most common last line of their reasons)."""
        reasons = [r.reason.strip().splitlines()[-1] for r in self.records if r.status != COMPLETED and r.reason]
        if not reasons:
            return self.error or "no trial ran"
        common = max(set(reasons), key=reasons.count)
        return f"{len(reasons)} of {len(self.records)} trials failed; most often: {common}"


def _parent_metrics(summary: SearchSummary, task) -> dict:
    metrics = {
        "n_trials": len(summary.records),
        "n_failed": sum(r.status not in ENDED for r in summary.records),
        "n_pruned": sum(r.status == PRUNED for r in summary.records),
        "search_duration_s": summary.duration_s,
    }
    keys = [*(f"test_{m}" for m in task.metric_names()), *(f"test_gap_{m}" for m in task.metric_names()),
            *(f"val_{m}" for m in task.metric_names()), *(f"gap_{m}" for m in task.metric_names())]
    best, base = summary.best, summary.baseline
    if best is not None:
        metrics["best_trial_id"] = int(best.trial_id)
        for key in keys:
            if key in best.metrics:
                metrics[key if key.startswith("test_") else f"best_{key}"] = best.metrics[key]
    if base is not None and base.status == COMPLETED:
        for key in keys:
            if key in base.metrics:
                metrics[f"baseline_{key}"] = base.metrics[key]
    if summary.gain_test is not None:
        metric = summary.metric
        metrics[f"gain_test_{metric}"] = summary.gain_test
        # A smaller train-test gap is better: positive when the best trial's gap shrank.
        key = f"test_gap_{metric}"
        if key in best.metrics and key in base.metrics:
            metrics[f"gain_test_gap_{metric}"] = base.metrics[key] - best.metrics[key]
    return metrics


def one_line(exc: Exception, settings, *, done: int | None = None, parent_id: str | None = None,
              resume_command: str | None = None) -> str:
    """What stopped a search, in one line: the store, or too many failed trials, or the error itself.

    A store that stopped taking writes (a full disk, a lock, a server gone) says its cause first, then, given
    the search's ``parent_id``, how to resume once the store takes writes again (``done`` trials finished).
    """
    import errno

    from kreg.lab.tracking.mlflow import StoreError

    from kreg.lab.analysis.blockers import BaselineBlocked

    cause = exc
    while cause is not None:
        if isinstance(cause, BaselineBlocked):
            return cause.line
        what = str(cause) if isinstance(cause, StoreError) else None
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):  # the state, beside the store
            what = f"the search's state cannot be written ({cause.filename}): {cause.strerror}"
        if what is not None:
            if parent_id is None:
                return what
            how = (resume_command.format(parent_id) if resume_command
                   else f'kreg.tune(..., resume="{parent_id}") with the same arguments')
            finished = f"{done}{_of_limit(settings)} trials done; " if done is not None else ""
            return (f"{what}; {finished}once the store takes writes again, resume with: {how} (the resume "
                    "closes the runs left RUNNING and writes the artifacts they miss)")
        cause = cause.__cause__ or cause.__context__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    from kreg.lab.search._keras_tuner import is_failure_limit

    if is_failure_limit(text):  # keras-tuner appends the last trial's whole traceback
        return f"stopped after {settings.max_consecutive_failed_trials} failed trials in a row"
    return f"{type(exc).__name__}: {text}"


def interrupted_line(exc, search: Search, done: int, parent_id: str, resume_command: str | None) -> str:
    """``interrupted by SIGTERM after 3 of 20 trials; resume with: ...``"""
    how = (resume_command.format(parent_id) if resume_command
           else f'kreg.tune(..., resume="{parent_id}") with the same arguments')
    return f"interrupted by {exc.name} after {done}{_of_limit(search.settings)} trials; resume with: {how}"


def _of_limit(settings) -> str:
    """`` of 20`` (the trial limit), or nothing when the budget decides how many."""
    return f" of {settings.trial_limit}" if settings.trial_limit is not None else ""


def _budget_line(budget, records, trials_ended: float, refit_s: float) -> str:
    from kreg.lab.tracking.records import stopped_by_budget

    stopped = sum(r.status == PRUNED and stopped_by_budget(r.metrics) for r in records)
    pruned = sum(r.status == PRUNED for r in records) - stopped
    began = budget.first_proposal or trials_ended
    return budget.spent_line(trials=len(records), pruned=pruned, stopped=stopped, refit_s=refit_s,
                             search_s=max(0.0, trials_ended - began))


def start_budget(search: Search, reporter, started: float | None, previous_s: float):
    """The search's ``Budget`` (None without one), its clock started at ``started`` (when ``kreg.tune`` was
    called) less the time a resumed search had taken; its plan goes to the reporter's notes."""
    from kreg.lab.search.budget import Budget

    budget = Budget.start(search, started=started, previous_s=previous_s)
    if budget is not None:
        budget.notify = getattr(reporter, "note", None)
    return budget


def finish_search(search: Search, tracker, session, records, *, status: str, error: str, duration_s: float,
                  reporter, interrupted=None, resume_command: str | None = None, budget=None) -> SearchSummary:
    """Closes a search: its summary, the parent run's metrics, tags, artifacts and status; shows it.

    ``records`` hold every trial, trial 0 (the baseline) first. Shared by
    ``run_search`` and the chief of a parallel search (``chief``), whose
    records come back from the workers' child runs.

    A signal during the refit stops it at the next batch: the parent ends
    KILLED with every trial intact and the line to resume (which only redoes
    the refit), and ``SearchInterrupted`` is raised once the runs are closed.
    """
    from kreg.lab.search import answer as answering
    from kreg.lab.search import pruning
    from kreg.lab.tracking import report
    from kreg.lab.tracking.mlflow import StoreError

    timing.mark("finish_search")

    baseline = records[0] if records else None
    refit_stopped = None
    trials_ended, refit_s = time.time(), 0.0
    answer = answering.choose(search, records)
    if status == "FINISHED" and answer.chosen is not None and search.settings.refit and search.splits.in_memory:
        note = getattr(reporter, "note", lambda line: None)
        try:
            answering.refit_and_compare(search, answer, baseline, echo=note, tracker=tracker)
            refit_s = time.time() - trials_ended
        except signals.SearchInterrupted as exc:  # the trials stand; only the refit is left for a resume
            status, interrupted, refit_stopped = "KILLED", exc, exc
            answer.refit = answer.baseline_refit = answer.comparison = answer.exported = None
            how = (resume_command.format(session.parent_id) if resume_command
                   else f'kreg.tune(..., resume="{session.parent_id}") with the same arguments')
            kept = "its one trial is kept" if len(records) == 1 else f"all {len(records)} trials are kept"
            exc.message = (f"interrupted by {exc.name} during the refit ({kept}); "
                           f"resume with: {how} (it only redoes the refit)")
            error = f"{error}; {exc.message}" if error else exc.message
        except Exception as exc:  # the search's trials stand; say what is missing
            problem = f"the refit failed ({type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]})"
            error = f"{error}; {problem}" if error else problem
    summary = SearchSummary(
        pipeline=search.name, parent_run_id=session.parent_id, experiment=search.experiment,
        tracking_uri=tracker.tracking_uri, records=records, baseline=baseline, best=answer.chosen,
        duration_s=duration_s, status=status, error=error,
        experiment_id=tracker.experiment_id, metric=search.task.primary,
        higher_is_better=search.task.higher_is_better(search.task.primary), objective=search.objective,
        top=pick_best(records, search.objective, search.space), selection=answer.why, answer=answer,
        pruning=pruning.summary_line(records, search),
    )
    with tempfile.TemporaryDirectory() as tmp:
        tags = {tag.BEST_TRIAL_ID: summary.best.trial_id} if summary.best else {}
        tags[tag.TASK] = search.task.describe()
        if search.notes:  # what the "auto" defaults decided for this data (search.defaults)
            tags[tag.DEFAULTS] = "; ".join(search.notes)
        if summary.pruning:
            tags[tag.PRUNING] = summary.pruning
        if summary.best is not None:
            tags[tag.SELECTION] = answer.why
        if answer.line:
            tags[tag.ANSWER] = answer.line
        if error:
            tags[tag.ERROR] = error[:5000]
        try:
            if answer.refit is not None:
                try:
                    with timing.section("end.save_model"):
                        tags[tag.MODEL_ARTIFACT] = answering.save_model(answer, tracker, search)
                    if answer.model_uri:
                        tags[tag.MODEL_URI] = answer.model_uri
                    if answer.registered:
                        tags[tag.REGISTERED_MODEL] = answer.registered
                except StoreError:
                    raise
                except Exception as exc:  # a model Keras cannot serialize (a subclass without get_config...)
                    problem = f"the refit model was not saved ({type(exc).__name__}: {str(exc).strip()[:300]})"
                    summary.error = f"{summary.error}; {problem}" if summary.error else problem
                    tags[tag.ERROR] = summary.error[:5000]
            if budget is not None:  # as late as it can be said: only the report and the parent's writes come after
                summary.budget = _budget_line(budget, records, trials_ended, refit_s)
                tags[tag.BUDGET] = summary.budget
            metrics = {**_parent_metrics(summary, search.task), **answering.parent_metrics(answer),
                       **pruning.parent_metrics(records, search)}
            if budget is not None:
                metrics.update(budget_s=budget.seconds, budget_used_s=budget.elapsed())
            with timing.section("end.report"):
                artifacts = (answering.artifacts(answer, Path(tmp))
                             + report.search_artifacts(summary, search, Path(tmp)))
            from kreg.lab.tracking.notes import note_tags, search_note

            tags.update(note_tags(search_note(summary, search)))  # the parent's description (Overview)
            with timing.section("end.write_parent"):
                tracker.end_search(metrics, artifacts, status=status, tags=tags)
        except StoreError as exc:  # the store is gone: the console summary below is all there is
            summary.error = f"{summary.error}; the summary was not written ({exc})" if summary.error else str(exc)
    session.release()
    if interrupted is not None:
        interrupted.summary = summary
    with timing.section("end.reporter"):
        reporter.search_ended(summary)
    timing.mark("finish_search_done")
    if refit_stopped is not None:
        raise refit_stopped
    return summary
