"""One trial: plan -> model -> fit with the honest gap -> test -> MLflow.

The test split is evaluated once, at the end, with the weights the trial keeps
(the restored best epoch under early stopping with ``restore_best``, else the
last epoch), and never feeds the objective or an early stop.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import keras_tuner as kt

from kreg.callbacks import GeneralizationGap, SharpnessProbe, WeightMonitor
from kreg.callbacks.gap import penalized_loss
from kreg.config import PipelineConfig
from kreg.plan import RegularizationPlan
from kreg.tracking import plots
from kreg.tracking.records import COMPLETED, FAILED, TrialRecord
from kreg.tuning import members
from kreg.tuning.oracles import objective_for
from kreg.tuning.procedures import build_for_plan, procedure_callbacks, train_data

METRIC = "accuracy"


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


class _EpochReporter(keras.callbacks.Callback):
    """Sends each epoch's logs (with the gap already added) to MLflow and the reporter."""

    def __init__(self, run, reporter, trial_index, epochs):
        super().__init__()
        self.run, self.reporter = run, reporter
        self.trial_index, self.epochs = trial_index, epochs

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self.run is not None:
            self.run.log_epoch(epoch + 1, logs)
        self.reporter.epoch_end(self.trial_index, epoch + 1, self.epochs, logs)


class NullReporter:
    """Reporter interface; the CLI's rich reporter implements the same methods."""

    def search_started(self, cfg, total):
        pass

    def trial_started(self, index, trial_id, plan, epochs):
        pass

    def epoch_end(self, index, epoch, epochs, logs):
        pass

    def trial_ended(self, index, record):
        pass

    def search_ended(self, summary):
        pass


class TrialRunner:
    """Runs trials for one pipeline over fixed data splits."""

    def __init__(self, cfg: PipelineConfig, splits, tracker=None, reporter=None):
        self.cfg, self.splits, self.tracker = cfg, splits, tracker
        self.reporter = reporter or NullReporter()
        self.objective = objective_for(cfg.search)
        self.records: list[TrialRecord] = []
        self._train_sample = splits.train_sample(cfg.data.train_eval_samples)
        # Plots, artifacts and closing a run happen on a worker thread while
        # the next trial trains; `wait` joins them before the search summary.
        self._finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kreg-finish")
        self._finishing: list = []

    @property
    def _penalty(self):
        return self.cfg.search.gap_penalty if self.cfg.search.objective == "gap_penalized" else None

    def _callbacks(self, plan: RegularizationPlan, model, run, index: int, epochs: int, mixers=()):
        """Gap first (others read its figures), monitors, procedures, early stop, reporter last."""
        gap = GeneralizationGap(self._train_sample, penalty=self._penalty)
        callbacks = [gap, keras.callbacks.TerminateOnNaN()]
        monitor = self.cfg.monitor
        if monitor.weights:
            callbacks.append(WeightMonitor())
        if monitor.sharpness is not None:
            s = monitor.sharpness
            callbacks.append(SharpnessProbe(self._train_sample, rho=s.rho, samples=s.samples, every=s.every,
                                            adversarial=s.adversarial, seed=self.cfg.seed))
        procedures, swa, scheduled = procedure_callbacks(plan, model, epochs, self._train_sample, mixers)
        callbacks += procedures
        early = None
        if plan.early_stopping is not None:
            early = keras.callbacks.EarlyStopping(
                monitor=self.objective.name,
                mode=self.objective.direction,
                patience=plan.early_stopping.patience,
                restore_best_weights=plan.early_stopping.restore_best,
            )
            callbacks.append(early)
        # EarlyStopping restores its best weights before SWA averages (SWA wins).
        if swa is not None and early is not None:
            callbacks.remove(swa)
            callbacks.append(swa)
        callbacks.append(_EpochReporter(run, self.reporter, index, epochs))
        return gap, early, swa, scheduled, callbacks

    def run(self, trial_id: str, hp_values: dict, plan: RegularizationPlan, epochs: int | None = None) -> TrialRecord:
        """Trains one plan; records it; raises ``kt.errors.FailedTrialError`` on failure."""
        cfg = self.cfg
        epochs = epochs or cfg.training.epochs
        index = len(self.records)
        record = TrialRecord(trial_id=trial_id, plan=plan, hp_values=dict(hp_values))
        self.records.append(record)
        keras.backend.clear_session()  # keras-tuner #395: memory grows across trials otherwise
        keras.utils.set_random_seed(cfg.seed)  # same initialization for every plan
        self.reporter.trial_started(index, trial_id, plan, epochs)
        run = self.tracker.start_trial(trial_id, hp_values, plan) if self.tracker else None
        record.run_id = run.run_id if run else None
        start = time.perf_counter()
        try:
            self._train(record, plan, run, index, epochs)
            record.status = COMPLETED
        except Exception as exc:  # a failed trial never stops the search by itself
            record.status = FAILED
            record.reason = f"{type(exc).__name__}: {exc}" if isinstance(exc, Diverged) else traceback.format_exc(limit=4)
        record.duration_s = time.perf_counter() - start
        if run is not None:
            self._finishing.append((record, self._finisher.submit(self._finish_run, record, run)))
        self.reporter.trial_ended(index, record)
        if record.status == FAILED:
            raise kt.errors.FailedTrialError(record.reason.strip().splitlines()[-1])
        return record

    def _train(self, record, plan, run, index, epochs):
        cfg, splits = self.cfg, self.splits
        # The effective plan: the pipeline's settings where the plan has none
        # (the proximal L1 threshold depends on the learning rate).
        plan = dataclasses.replace(
            plan, learning_rate=plan.learning_rate or cfg.training.learning_rate,
            batch_size=plan.batch_size or cfg.training.batch_size,
        )
        model = build_for_plan(cfg, splits.spec, plan, seed=cfg.seed)
        batch_size = plan.batch_size or cfg.training.batch_size
        data, mixers = train_data(splits, plan, batch_size, cfg.seed)
        gap, early, swa, scheduled, callbacks = self._callbacks(plan, model, run, index, epochs, mixers)
        history = model.fit(
            data,
            validation_data=splits.eval_dataset("validation"),
            epochs=epochs,
            callbacks=callbacks,
            shuffle=False,  # the tf.data pipeline shuffles (seeded) itself
            verbose=0,
        )
        hist = {k: [float(x) for x in v] for k, v in history.history.items()}
        record.history = hist
        losses = hist.get("loss", [])
        if not losses or any(not math.isfinite(x) for x in losses):
            bad = next((i + 1 for i, x in enumerate(losses) if not math.isfinite(x)), len(losses))
            raise Diverged(f"training loss became NaN or infinite at epoch {bad}")
        record.metrics = self._final_metrics(model, gap, early, swa, hist)
        if plan.schedule is not None:
            record.metrics["scheduled_targets"] = scheduled
        if plan.ensemble and plan.ensemble > 1:
            self._ensemble(record, plan, model)
        record.objective = record.metrics[f"kept_{self.objective.name}"]

    def _ensemble(self, record, plan, model):
        """Replaces the trial's figures by its bagged ensemble's (``single_*`` keep the model's)."""
        m = record.metrics
        for key in [k for k in m if k.startswith(("test_", "val_", "train_", "gap_"))]:
            m[f"single_{key}"] = m[key]
        ensemble = members.train_members(self.cfg, self.splits, plan, model, m["kept_epoch"],
                                         self._train_sample, self.cfg.seed)
        m.update(members.ensemble_metrics(ensemble, self.splits, self._train_sample, self._penalty))
        self._gaps(m)
        m[f"kept_{self.objective.name}"] = m[self.objective.name]

    @staticmethod
    def _gaps(metrics):
        metrics["gap_loss"] = metrics["val_loss"] - metrics["train_loss"]
        metrics[f"gap_{METRIC}"] = metrics[f"train_{METRIC}"] - metrics[f"val_{METRIC}"]
        metrics["test_gap_loss"] = metrics["test_loss"] - metrics["train_loss"]
        metrics[f"test_gap_{METRIC}"] = metrics[f"train_{METRIC}"] - metrics[f"test_{METRIC}"]

    def _final_metrics(self, model, gap, early, swa, hist) -> dict:
        epochs_run = len(hist["loss"])
        objective = hist.get(self.objective.name, [])
        pick = max if self.objective.direction == "max" else min
        best_epoch = objective.index(pick(objective)) + 1 if objective else epochs_run
        kept_epoch = epochs_run
        averaged = swa is not None and swa.models_averaged > 0
        if early is not None and early.restore_best_weights and early.best_weights is not None and not averaged:
            kept_epoch = early.best_epoch + 1
        kept = {f"val_{k}": float(v) for k, v in model.evaluate(
            self.splits.eval_dataset("validation"), verbose=0, return_dict=True).items()} if averaged else None
        test = model.evaluate(self.splits.eval_dataset("test"), verbose=0, return_dict=True)
        train = gap.evaluate(model)  # with the kept weights
        metrics = {
            "epochs_run": epochs_run,
            "best_epoch": best_epoch,
            "kept_epoch": kept_epoch,
            f"best_{self.objective.name}": pick(objective) if objective else float("nan"),
            f"kept_{self.objective.name}": objective[kept_epoch - 1] if objective else float("nan"),
        }
        if averaged:  # SWA's average is a model no epoch saw: its own validation figures
            kept["val_penalized_loss"] = penalized_loss(kept["val_loss"], train["train_loss"], self._penalty)
            metrics[f"kept_{self.objective.name}"] = kept[self.objective.name]
            metrics["swa_models"] = swa.models_averaged
        for name, value in test.items():  # every compiled metric (e.g. ece)
            metrics[f"test_{name}"] = float(value)
        for name in ("loss", METRIC):
            val = kept[f"val_{name}"] if averaged else hist[f"val_{name}"][kept_epoch - 1]
            metrics[f"val_{name}"] = val
            metrics[f"train_{name}"] = train[f"train_{name}"]
            metrics[f"test_{name}"] = float(test[name])
        self._gaps(metrics)
        return metrics

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

    def _finish_run(self, record: TrialRecord, run) -> None:
        # Final figures go under their own names (kept_/test_ etc.) at step
        # epochs_run, so the per-epoch curves stay intact.
        final = {k: v for k, v in record.metrics.items()
                 if k.startswith(("test_", "best_", "kept_", "epochs_run", "best_epoch", "kept_epoch", "single_",
                                  "swa_models", "ensemble_members", "scheduled_targets"))}
        final["duration_s"] = record.duration_s
        run.log_metrics(final, step=int(record.metrics.get("epochs_run", 0)))
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            (tmp / "plan.json").write_text(record.plan.to_json())
            run.log_artifact(tmp / "plan.json")
            if record.history.get("loss"):
                plots.learning_curves(
                    record.history, tmp / "learning_curves.png", metric=METRIC,
                    kept_epoch=record.metrics.get("kept_epoch"),
                    title=f"trial {record.trial_id}: {record.plan.describe()}",
                )
                run.log_artifact(tmp / "learning_curves.png")
        run.finish(record.status, record.reason)
