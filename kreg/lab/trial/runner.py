"""Runs trials: plan -> fit with the honest gap -> measure -> MLflow, and keeps their records.

A failed trial (a diverging loss, an error in training) is recorded FAILED
with its reason and the search goes on. Plots, artifacts and closing a run
happen on a worker thread while the next trial trains; ``wait`` joins them.

A trial is *committed* before keras-tuner hears of its result: its
``trial.json`` (the record a resumed search reads back), ``plan.json``,
final figures and then the tag ``kreg.trial_status`` COMPLETED/FAILED are
written from the main thread. A resume trusts that tag: a run that has it
is a finished trial (never rerun), one without it was interrupted.

A signal (``SearchInterrupted``, see ``kreg.lab.trial.signals``) stops a
trial after a training batch: the trial is not recorded as failed; its
buffered epochs are written, its run ends KILLED (tag ``kreg.trial_status``
KILLED) and the exception goes on to end the search.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import keras_tuner as kt

from kreg.lab import timing
from kreg.lab.analysis import stats
from kreg.lab.analysis.diagnoses import diagnose
from kreg.lab.trial import signals
from kreg.lab.tracking import notes, plots
from kreg.lab.tracking.mlflow import StoreError
from kreg.lab.tracking.records import COMPLETED, ENDED, FAILED, KILLED, PRUNED, TrialRecord
from kreg.lab.trial import ensemble, measure, memory
from kreg.lab.trial.fit import Diverged, FoldStart, fit_plan
from kreg.training.ensemble import _quiet_retracing
from kreg.lab.tracking import tags as tag
from kreg.lab.trial.problem import Problem

_FINAL_PREFIXES = ("test_", "best_", "kept_", "epochs_run", "best_epoch", "kept_epoch", "single_", "swa_models",
                   "ensemble_members", "scheduled_targets", "cv_", "pruned_", "budget_")


def _fold_curve_metric(i: int, objective: str) -> str:
    """The metric holding fold ``i``'s (from 0) objective per epoch: ``fold1_val_accuracy``."""
    return f"fold{i + 1}_{objective}"


class _PruneCheck(keras.callbacks.Callback):
    """After every epoch, asks the search's pruner whether this trial's validation curve can still win;
    stops the training at the end of the epoch when it cannot (``kreg.lab.trial.pruning``)."""

    def __init__(self, pruner, objective: str, completed: list, pruned: list):
        super().__init__()
        self.pruner, self.objective = pruner, objective
        self.completed, self.pruned = completed, pruned
        self.curve: list[float] = []
        self.stopped_at: int | None = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.objective)
        if value is None or self.stopped_at is not None:
            return
        self.curve.append(float(value))
        if self.pruner.should_stop(self.curve, self.completed, self.pruned):
            self.stopped_at = epoch + 1
            self.model.stop_training = True


class _BudgetStop(keras.callbacks.Callback):
    """Stops a trial at the end of an epoch when one more (as long as its longest so far) would eat into the
    time the search's budget keeps for the refit (``kreg.lab.search.budget``)."""

    def __init__(self, budget):
        super().__init__()
        self.budget = budget
        self.longest = 0.0
        self.began = 0.0
        self.stopped_at: int | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.began = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.longest = max(self.longest, time.perf_counter() - self.began)
        if self.stopped_at is None and not self.model.stop_training and self.budget.should_stop(self.longest):
            self.stopped_at = epoch + 1
            self.model.stop_training = True


class _EpochReporter(keras.callbacks.Callback):
    """Sends each epoch's logs (with the gap already added) to MLflow and the reporter.

    After every training batch it is also where a signal stops the trial
    (``signals.checkpoint``): between two batches, never inside a write.
    """

    def __init__(self, run, reporter, trial_index, epochs):
        super().__init__()
        self.run, self.reporter = run, reporter  # run None: a fold's epochs (the trial logs their mean)
        self.trial_index, self.epochs = trial_index, epochs

    def on_train_batch_end(self, batch, logs=None):
        signals.checkpoint()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        with timing.section("trial.mlflow_epochs"):
            if self.run is not None:
                self.run.log_epoch(epoch + 1, logs)
        with timing.section("trial.reporter"):
            self.reporter.epoch_end(self.trial_index, epoch + 1, self.epochs, logs)


class _Stopwatch(keras.callbacks.Callback):
    """Timing on (``kreg.lab.timing``): splits ``model.fit`` into its epochs' training, validation and
    epoch-end callbacks (the honest gap, the monitors, early stopping), and the first epoch's extra cost
    (tracing) over the median of the later ones. Placed just before the epoch reporter, so the epoch-end
    time it takes covers every callback before it."""

    def __init__(self):
        super().__init__()
        self.train_begin = self.train_end = None
        self.epochs: list[dict] = []

    def on_train_begin(self, logs=None):
        self.train_begin = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append({"begin": time.perf_counter()})

    def on_test_begin(self, logs=None):
        if self.epochs:
            self.epochs[-1]["test_begin"] = time.perf_counter()

    def on_test_end(self, logs=None):
        if self.epochs:
            self.epochs[-1]["test_end"] = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        e = self.epochs[-1]
        now = time.perf_counter()
        e.setdefault("test_begin", now)
        e.setdefault("test_end", e["test_begin"])
        e["end"] = now

    def on_train_end(self, logs=None):
        self.train_end = time.perf_counter()

    def account(self, fit_start: float, fit_end: float) -> None:
        """Adds this fit's parts to the timing totals (``trial.*``)."""
        if self.train_begin is None:
            return
        parts = [(e["test_begin"] - e["begin"], e["test_end"] - e["test_begin"], e["end"] - e["test_end"])
                 for e in self.epochs if "end" in e]
        timing.add("trial.build_and_setup", self.train_begin - fit_start)  # model, plan, data, fit's set-up
        if parts:
            totals = [sum(p) for p in parts]
            steady = sorted(totals[1:])[len(totals[1:]) // 2] if len(totals) > 1 else totals[0]
            first_extra = max(0.0, totals[0] - steady)
            timing.add("trial.first_epoch_extra", first_extra)
            share = first_extra / totals[0] if totals[0] else 0.0  # the tracing, taken off the first epoch's parts
            train = sum(p[0] for p in parts) - share * parts[0][0]
            validation = sum(p[1] for p in parts) - share * parts[0][1]
            epoch_end = sum(p[2] for p in parts) - share * parts[0][2]
            timing.add("trial.train_epochs", train)
            timing.add("trial.validation", validation)
            timing.add("trial.epoch_end_callbacks", epoch_end)
            timing.add("trial.epochs", len(parts))
        timing.add("trial.fit_teardown", fit_end - (self.train_end or fit_end))


class NullReporter:
    """Reporter interface; the CLI's rich reporter implements the same methods."""

    def search_started(self, search, total):
        pass

    def search_resumed(self, parent_run_id, records, rerun):
        """A resumed search: ``records`` finished before, ``rerun`` the trial ids that run again."""

    def trial_started(self, index, trial_id, plan, epochs):
        pass

    def epoch_end(self, index, epoch, epochs, logs):
        pass

    def fold_started(self, index, fold, folds):
        """Cross-validation: trial ``index`` starts training fold ``fold`` (from 0) of ``folds``."""

    def trial_ended(self, index, record):
        pass

    def search_ended(self, summary):
        pass


# Per-fold figures logged with step = fold number (``fold_kept_val_accuracy`` at step 2: fold 2's).
_FOLD_FIGURES = ("kept_", "train_", "val_", "gap_", "test_")


def folds_of(problem: Problem, cv) -> list:
    """``(Fold, its honest-gap training sample)`` for each fold of ``problem``'s data under ``cv`` (the
    search's ``CrossValidation`` settings: folds, repeats, scheme); [] for holdout (``cv`` None)."""
    if cv is None:
        return []
    from kreg.lab.data.folds import cross_validation_splits

    return [(fold, fold.splits.train_sample(problem.train_eval_samples))
            for fold in cross_validation_splits(problem.splits, cv.folds, cv.repeats, seed=problem.seed,
                                                scheme=cv.scheme)]


class TrialRunner:
    """Runs trials of plans on one ``Problem``, over fixed data splits.

    ``folds`` (``folds_of``): a cross-validated search's folds, the same for
    every trial so their scores compare pair by pair; empty for holdout.
    ``pruner`` (``kreg.lab.trial.pruning.Pruner``): None, every trial trains
    to the end. ``tracker``: the search's ``SearchTracker`` (None: nothing is
    logged), already told what the search's runs describe. The search builds
    one with all of these (``kreg.lab.search.prepare.Search.trial_runner``).
    """

    def __init__(self, problem: Problem, *, folds=(), pruner=None, tracker=None, reporter=None, records=()):
        self.problem, self.tracker = problem, tracker
        self.reporter = reporter or NullReporter()
        self.records: list[TrialRecord] = list(records)  # a resumed search starts with its finished trials
        self.interrupted: list[TrialRecord] = []
        self.train_sample = problem.splits.train_sample(problem.train_eval_samples)
        self.folds = list(folds)
        self.pruner = pruner
        self.budget = None  # the search's time budget (kreg.lab.search.budget.Budget), set by the search
        # A baseline that makes the search meaningless stops it (kreg.lab.analysis.blockers); a parallel
        # search's workers go on, since their other trials already run beside it.
        self.stop_on_blocked_baseline = False
        self._store_curves: dict = {}  # metric -> run id -> (status, series) of ended trials read from the store
        self._finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kreg-finish")
        self._finishing: list = []

    def run(self, trial_id: str, hp_values: dict, plan, epochs: int | None = None) -> TrialRecord:
        """Trains one plan; records it; raises ``kt.errors.FailedTrialError`` on failure."""
        problem = self.problem
        signals.checkpoint()  # a signal noted since the last trial stops the search before this one
        epochs = epochs or problem.training.epochs
        index = len(self.records)
        record = TrialRecord(trial_id=trial_id, plan=plan, hp_values=dict(hp_values))
        self.records.append(record)
        timing.mark("first_trial")
        began = time.perf_counter()
        with timing.section("trial.clear"):
            keras.backend.clear_session()  # keras-tuner #395: memory grows across trials otherwise
            keras.utils.set_random_seed(problem.seed)  # same initialization for every plan
        self.reporter.trial_started(index, trial_id, plan, epochs)
        try:
            with timing.section("trial.mlflow_start"):
                run = self.tracker.start_trial(trial_id, hp_values, plan) if self.tracker else None
        except StoreError:
            self._unfinished(record)
            raise
        record.run_id = run.run_id if run else None
        start = time.perf_counter()
        try:
            with timing.section("trial.scope"), memory.trial_scope():  # what TensorFlow would keep of the
                with timing.section("trial.train_call"):  # trial's graphs is released after
                    self._train(record, plan, run, index, epochs)  # a signal lands after a batch (_EpochReporter)
            pruned = record.metrics.get("pruned_at_epoch") or record.metrics.get("pruned_at_fold")
            record.status = PRUNED if pruned else COMPLETED
            record.diagnoses = diagnose(record.history, record.metrics, problem.task.primary)
        except signals.SearchInterrupted as exc:
            self._interrupted(record, run, exc, time.perf_counter() - start)
            raise
        except StoreError:  # not the trial's fault: the search stops (run_search says why)
            self._unfinished(record)
            raise
        except Exception as exc:  # a failed trial never stops the search by itself
            record.status = FAILED
            record.reason = f"{type(exc).__name__}: {exc}" if isinstance(exc, Diverged) else traceback.format_exc(limit=4)
        record.duration_s = time.perf_counter() - start
        if run is not None:
            try:
                with timing.section("trial.mlflow_commit"):
                    self._commit(record, run)
            except StoreError:
                self._unfinished(record)
                raise
            self._finishing.append((record, self._finisher.submit(self._finish_run, record, run)))
        self.reporter.trial_ended(index, record)
        timing.add("trial.total", time.perf_counter() - began)
        if self.stop_on_blocked_baseline and plan.is_baseline and index == 0:
            from kreg.lab.analysis.blockers import BaselineBlocked, blocking_line

            line = blocking_line(record, problem)
            if line is not None:  # every later trial would be meaningless: keras-tuner stops on a FatalError
                raise kt.errors.FatalError(line) from BaselineBlocked(line)
        if record.status == FAILED:
            raise kt.errors.FailedTrialError(record.reason.strip().splitlines()[-1])
        return record

    def _train(self, record, plan, run, index, epochs):
        if self.folds:
            return self._train_folds(record, plan, run, index, epochs)
        check = None
        if self.pruner is not None and not plan.is_baseline:  # the baseline always trains fully
            name = self.problem.objective.name
            check = _PruneCheck(self.pruner, name, *self._ended(name, lambda r: r.history.get(name)))
        budget = _BudgetStop(self.budget) if self.budget is not None and not plan.is_baseline else None
        callbacks = [c for c in (check, budget, _EpochReporter(run, self.reporter, index, epochs)) if c is not None]
        fitted, record.metrics = self._fit(self.problem, plan, epochs, self.train_sample, *callbacks)
        if check is not None and check.stopped_at is not None:
            record.metrics["pruned_at_epoch"] = check.stopped_at
        elif budget is not None and budget.stopped_at is not None:
            record.metrics["pruned_at_epoch"] = record.metrics["budget_stopped_at_epoch"] = budget.stopped_at
        record.history = fitted.history
        self._placements(record, fitted, run)
        record.objective = record.metrics[f"kept_{self.problem.objective.name}"]

    def _ended(self, metric: str, series) -> tuple[list, list]:
        """The series of ``metric`` (per epoch, or per fold) of the trials that have ended: (completed, pruned).
        This process's records (``series(record)``), and with a store the other processes' trials too
        (workers) and those of before a resume, read once per run."""
        ended = {r.run_id or f"record-{r.trial_id}": (r.status, series(r)) for r in self.records
                 if r.status in ENDED and series(r)}
        if self.tracker is not None:
            cache = self._store_curves.setdefault(metric, {})
            cache.update(self.tracker.ended_trial_curves(metric, known=set(cache) | set(ended)))
            for run_id, value in cache.items():
                ended.setdefault(run_id, value)
        completed = [list(c) for status, c in ended.values() if status == COMPLETED]
        pruned = [list(c) for status, c in ended.values() if status == PRUNED]
        return completed, pruned

    def _fit(self, problem: Problem, plan, epochs, sample, *callbacks, fold_start=None):
        """Trains and measures ``plan`` on ``problem``'s splits: (fitted, end figures). ``fold_start``: a
        cross-validated trial's model, reset for each fold (``FoldStart``)."""
        watch = _Stopwatch() if timing.enabled() else None
        if watch is not None:  # just before the epoch reporter (the last), after every other epoch-end callback
            callbacks = (*callbacks[:-1], watch, callbacks[-1]) if callbacks else (watch,)
        start = time.perf_counter()
        fitted = fit_plan(problem, plan, epochs, sample, seed=problem.seed, last_callbacks=list(callbacks),
                          start=fold_start)
        if watch is not None:
            watch.account(start, time.perf_counter())
        with timing.section("trial.final_figures"):  # the test evaluation, the kept weights' honest figures
            metrics = measure.final_metrics(fitted, problem)
        if plan.schedule is not None:
            metrics["scheduled_targets"] = fitted.scheduled
        if plan.ensemble and plan.ensemble > 1:
            self._ensemble(problem, metrics, plan, fitted, sample)
        return fitted, metrics

    def _placements(self, record, fitted, run):
        record.placements = fitted.built.placements
        if run is not None and fitted.precise_bn_tag:  # "on (3 layers, 28 examples in 1 batch; ...)" or "off (...)"
            run.set_tags({tag.PRECISE_BN: fitted.precise_bn_tag})
        if run is not None and record.placements:
            # The runs table shows it at a glance; placements.json has the whole lists.
            run.set_tags({tag.PLACEMENTS: "; ".join(
                f"{name}: {', '.join(layers[:4])}{' +%d' % (len(layers) - 4) if len(layers) > 4 else ''}"
                for name, layers in record.placements.items())})

    def _train_folds(self, record, plan, run, index, epochs):
        """Cross-validation: ``plan`` trained on every fold from the same initialization; the trial's
        figures are the folds' means (``cv_*``: their spread), its curves the folds' mean curves."""
        problem = self.problem
        per_fold, histories = [], []
        key = f"kept_{problem.objective.name}"
        judge = self.pruner is not None and self.pruner.by_fold and not plan.is_baseline
        completed = self._ended(f"fold_{key}", lambda r: [f.get(key) for f in r.folds])[0] if judge else []
        stopped = None  # folds done when the fold test (or the budget) stopped the trial
        fold_began, longest_fold, by_budget = time.perf_counter(), 0.0, None
        start = FoldStart() if FoldStart.reusable(plan) else None  # one model for every fold, reset between
        within = self.pruner is not None and self.pruner.active and not plan.is_baseline
        pruned_in_fold = None  # (fold, epoch) when the epoch rule stopped a fold's curve
        try:
            with _quiet_retracing():  # a plan that needs a new model per fold retraces: the warning means nothing
                for i, (fold, sample) in enumerate(self.folds):
                    check = self._fold_check(i) if within else None
                    fitted = self._fold(plan, index, epochs, i, fold, sample, per_fold, histories, start, check)
                    record.fold_curves.append(list(fitted.history.get(problem.objective.name, [])))
                    if check is not None and check.stopped_at is not None:
                        stopped, pruned_in_fold = len(per_fold), (i + 1, check.stopped_at)
                        break  # this fold's curve cannot reach the other trials' on the same fold
                    if judge and self.pruner.should_stop_folds([f[key] for f in per_fold], completed):
                        stopped = len(per_fold)  # significantly worse than the incumbent: stop here
                        break
                    longest_fold = max(longest_fold, time.perf_counter() - fold_began)
                    fold_began = time.perf_counter()
                    if (self.budget is not None and not plan.is_baseline and len(per_fold) < len(self.folds)
                            and self.budget.should_stop(longest_fold)):
                        stopped = by_budget = len(per_fold)  # one more fold would eat into the refit's reserve
                        break
        except signals.SearchInterrupted:  # the folds that finished keep their figures on the KILLED run
            if run is not None and per_fold:
                self._log_folds(run, per_fold)
                run.set_tags({tag.FOLDS_DONE: f"{len(per_fold)} of {len(self.folds)}"})
            raise
        self._placements(record, fitted, run)
        record.folds = per_fold
        record.history = stats.mean_curves(histories)
        m = problem.task.primary
        record.metrics = stats.fold_metrics(per_fold, [f"kept_{problem.objective.name}", f"val_{m}", f"train_{m}",
                                                       f"gap_{m}", f"test_{m}"])
        record.objective = record.metrics[f"kept_{problem.objective.name}"]
        if stopped:
            record.metrics["pruned_at_fold"] = stopped
            if pruned_in_fold is not None:
                record.metrics["pruned_at_epoch"] = pruned_in_fold[1]
            if by_budget:
                record.metrics["budget_stopped_at_fold"] = by_budget
            if run is not None:
                run.set_tags({tag.FOLDS_DONE: f"{len(per_fold)} of {len(self.folds)}"})
        if run is not None:
            for epoch in range(len(record.history.get("loss", []))):
                run.log_epoch(epoch + 1, {k: v[epoch] for k, v in record.history.items() if epoch < len(v)})
            self._log_folds(run, per_fold)
            self._log_fold_curves(run, record.fold_curves, problem.objective.name)

    def _fold_check(self, i: int):
        """The epoch rule on fold ``i``'s curve, against the curves the ended trials had on the same fold (the
        same examples: a fold's difficulty is shared by every trial, so curves compare only fold by fold)."""
        name = self.problem.objective.name
        series = (lambda r: r.fold_curves[i] if len(r.fold_curves) > i else None)
        return _PruneCheck(self.pruner, name, *self._ended(_fold_curve_metric(i, name), series))

    @staticmethod
    def _log_fold_curves(run, curves, objective: str):
        """Each fold's objective per epoch (``fold1_val_accuracy`` ...): a chart per fold in the UI, and what
        another worker's (or a resumed search's) trial is compared with on that fold."""
        for i, curve in enumerate(curves):
            for epoch, value in enumerate(curve, start=1):
                run.log_epoch(epoch, {_fold_curve_metric(i, objective): value})

    @staticmethod
    def _log_folds(run, per_fold):
        for number, metrics in enumerate(per_fold, start=1):  # MLflow charts them against the fold
            run.log_epoch(number, {f"fold_{k}": v for k, v in metrics.items() if k.startswith(_FOLD_FIGURES)})

    def _fold(self, plan, index, epochs, i, fold, sample, per_fold, histories, start=None, check=None):
        """One fold. With ``start`` (``FoldStart``) the trial's one model is reset to its initial state instead
        of a new one being built: the same start, without tracing the steps again."""
        seed = self.problem.seed
        if i:
            with timing.section("trial.fold_clear"):
                if start is None or not start.intact():
                    keras.backend.clear_session()
                    keras.utils.set_random_seed(seed)
                else:  # the kept model, reset by fit_plan: its traced steps stay instantiated (FoldStart.reseed)
                    start.reseed(seed)
        getattr(self.reporter, "fold_started", lambda *_: None)(index, i, len(self.folds))
        callbacks = (*((check,) if check is not None else ()), _EpochReporter(None, self.reporter, index, epochs))
        fitted, metrics = self._fit(dataclasses.replace(self.problem, splits=fold.splits), plan, epochs, sample,
                                    *callbacks, fold_start=start)
        per_fold.append({"fold": fold.name, **metrics})
        histories.append(fitted.history)
        return fitted

    def _ensemble(self, problem: Problem, m, plan, fitted, sample):
        """Replaces the trial's figures by its bagged ensemble's (``single_*`` keep the model's)."""
        for key in [k for k in m if k.startswith(("test_", "val_", "train_", "gap_"))]:
            m[f"single_{key}"] = m[key]
        members = ensemble.train_members(problem, plan, m["kept_epoch"], sample, problem.seed)
        m.update(ensemble.ensemble_metrics(problem, [fitted.model, *members], fitted.built.output_activation, sample))
        measure.add_gaps(m, problem.task)
        m[f"kept_{problem.objective.name}"] = m[problem.objective.name]

    def wait(self) -> list[str]:
        """Waits for every trial's artifacts and run closing; returns any errors."""
        errors = []
        for record, future in self._finishing:
            try:
                future.result()
            except Exception as exc:  # the trial's metrics are logged; say what is missing
                errors.append(f"trial {record.trial_id}: could not write its artifacts ({exc})")
        self._finishing = []
        return errors

    def _interrupted(self, record: TrialRecord, run, exc, duration_s: float) -> None:
        """The trial a signal stopped: out of the records, its epochs written, its run KILLED."""
        record.status, record.duration_s = KILLED, duration_s
        record.reason = f"interrupted by {exc.name}"
        self.records.remove(record)
        self.interrupted.append(record)
        if run is not None:
            try:
                run.set_tags({tag.INTERRUPTED_BY: exc.name})
                run.finish(KILLED)  # writes the buffered epochs first
            except Exception:  # the store failing now must not hide the interruption; resume closes the run
                pass

    def _unfinished(self, record: TrialRecord) -> None:
        """The trial the store stopped before it committed: not a finished trial (its run stays RUNNING and a
        resume runs it again), so not in the records the summary counts."""
        record.status, record.reason = KILLED, "the MLflow store stopped accepting writes"
        self.records.remove(record)
        self.interrupted.append(record)

    def _commit(self, record: TrialRecord, run) -> None:
        """Writes the trial's result; the status tag last (what a resume trusts)."""
        run.stop_monitor()  # training is over: the system metrics cover it, not the next trial
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            (tmp / "trial.json").write_text(record.to_json())
            (tmp / "plan.json").write_text(record.plan.to_json())
            run.log_artifact(tmp / "trial.json")
            run.log_artifact(tmp / "plan.json")
            if record.placements:
                (tmp / "placements.json").write_text(json.dumps(record.placements, indent=2, sort_keys=True))
                run.log_artifact(tmp / "placements.json")
        # Final figures go under their own names (kept_/test_ etc.) at step
        # epochs_run, so the per-epoch curves stay intact.
        final = {k: v for k, v in record.metrics.items() if k.startswith(_FINAL_PREFIXES)}
        # The figures of the weights the trial kept (the restored epoch, SWA's average, the ensemble)
        # under their own names: the per-epoch curves keep theirs.
        final.update({f"kept_{k}": v for k, v in record.metrics.items() if k.startswith(("train_", "val_", "gap_"))})
        final["duration_s"] = record.duration_s
        run.log_metrics(final, step=int(record.metrics.get("epochs_run", 0)))
        tags = {tag.TRIAL_STATUS: record.status}
        if record.status == PRUNED:  # the runs table says when and by which rule
            from kreg.lab.tracking.records import stopped_by_budget

            m, epochs = record.metrics, self.problem.training.epochs
            if stopped_by_budget(m):
                why = "stopped by the budget"
            elif self.folds and "pruned_at_epoch" in m:  # the epoch rule, on one fold's curve
                why = f"{self.pruner.describe_epochs()} on that fold's curve"
            else:
                why = self.pruner.describe_fold_test() if self.folds else self.pruner.describe()
            if self.folds and "pruned_at_epoch" in m:
                at = f"at epoch {m['pruned_at_epoch']} of {epochs} in fold {m['pruned_at_fold']} of {len(self.folds)}"
            elif self.folds:
                at = f"after fold {m['pruned_at_fold']} of {len(self.folds)}"
            else:
                at = f"after epoch {m['pruned_at_epoch']} of {epochs}"
            tags[tag.PRUNED] = f"{at} ({why})"
        if record.diagnoses:  # the runs table shows them; trial.json has evidence and advice
            tags[tag.DIAGNOSES] = "; ".join(f"{d['kind']}: {d['evidence']}" for d in record.diagnoses)
        if record.reason:
            tags[tag.FAILURE_REASON] = record.reason
        tags.update(notes.note_tags(notes.trial_note(record, self.problem.task.primary)))  # the run's description
        run.set_tags(tags)

    def _finish_run(self, record: TrialRecord, run) -> None:
        with tempfile.TemporaryDirectory() as tmp, timing.section("trial.plots_background"):
            tmp = Path(tmp)
            if record.history.get("loss"):
                plots.learning_curves(
                    record.history, tmp / "learning_curves.png", metric=self.problem.task.primary,
                    kept_epoch=record.metrics.get("kept_epoch"),
                    title=f"trial {record.trial_id}: {record.plan.describe()}",
                )
                run.log_artifact(tmp / "learning_curves.png")
        with timing.section("trial.mlflow_finish_background"):
            run.finish(record.status, record.reason)
