"""``kreg tune``: config -> splits -> search space -> tuner -> MLflow -> summary.

The data is loaded (and so checked) before any MLflow run is created; a failed
trial is recorded and the search goes on; whatever happens, the parent run is
closed with everything logged so far and the summary of the trials that ran.
"""

from __future__ import annotations

import csv
import dataclasses
import tempfile
import time
from pathlib import Path

import yaml

from kreg.config import PipelineConfig
from kreg.tracking.records import COMPLETED, TrialRecord, markdown_table

METRIC = "accuracy"


@dataclasses.dataclass
class SearchSummary:
    """What a search found, relative to its baseline."""

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

    @property
    def gain_test(self) -> float | None:
        if self.best is None or self.baseline is None or self.baseline.status != COMPLETED:
            return None
        return self.best.metrics[f"test_{METRIC}"] - self.baseline.metrics[f"test_{METRIC}"]


def pick_best(records, objective) -> TrialRecord | None:
    """Best completed trial by the validation objective (never by test)."""
    done = [r for r in records if r.status == COMPLETED and r.objective is not None]
    if not done:
        return None
    sign = 1 if objective.direction == "max" else -1
    return max(done, key=lambda r: sign * r.objective)


def _parent_metrics(summary: SearchSummary) -> dict:
    metrics = {
        "n_trials": len(summary.records),
        "n_failed": sum(r.status != COMPLETED for r in summary.records),
        "search_duration_s": summary.duration_s,
    }
    best, base = summary.best, summary.baseline
    if best is not None:
        metrics["best_trial_id"] = int(best.trial_id)
        for key in ("test_loss", f"test_{METRIC}", f"test_gap_{METRIC}", f"val_{METRIC}", f"gap_{METRIC}"):
            metrics[key if key.startswith("test_") else f"best_{key}"] = best.metrics[key]
    if base is not None and base.status == COMPLETED:
        for key in ("test_loss", f"test_{METRIC}", f"test_gap_{METRIC}", f"val_{METRIC}", f"gap_{METRIC}"):
            metrics[f"baseline_{key}"] = base.metrics[key]
    if summary.gain_test is not None:
        metrics[f"gain_test_{METRIC}"] = summary.gain_test
        metrics[f"gain_test_gap_{METRIC}"] = (
            best.metrics[f"test_gap_{METRIC}"] - base.metrics[f"test_gap_{METRIC}"]
        )
    return metrics


def _summary_artifacts(summary: SearchSummary, directory: Path) -> list[Path]:
    from kreg.tracking import plots

    rows = [r.row(METRIC) for r in summary.records]
    paths = []
    if rows:
        csv_path = directory / "trials.csv"
        with csv_path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        md_path = directory / "trials.md"
        md_path.write_text(markdown_table(rows))
        paths += [csv_path, md_path]
    if any(r.status == COMPLETED for r in summary.records):
        paths.append(plots.search_map(
            summary.records, directory / "validation_vs_gap.png", metric=METRIC,
            best_id=summary.best.trial_id if summary.best else None,
            baseline_id=summary.baseline.trial_id if summary.baseline else None,
        ))
    return paths


def tune(cfg: PipelineConfig, *, reporter=None, config_text: str | None = None) -> SearchSummary:
    """Runs the search a pipeline describes and logs it to MLflow.

    Args:
        cfg: A validated pipeline (``kreg.config.load_pipeline``), with any
            overrides already applied.
        reporter: Progress reporter (``kreg.reporting.RichReporter`` in the
            CLI); silent by default.
        config_text: The pipeline as text, stored as the parent run's
            ``pipeline.yaml`` artifact. Default: the validated config as YAML.

    Returns:
        A ``SearchSummary``.
    """
    import keras_tuner as kt

    from kreg.data import load_splits
    from kreg.tracking.mlflow_tracker import SearchTracker
    from kreg.tuning.oracles import make_oracle, objective_for
    from kreg.tuning.space import plan_from_hp, setting_defaults
    from kreg.tuning.trial import NullReporter, TrialRunner
    from kreg.tuning.tuner import KregTuner

    reporter = reporter or NullReporter()
    start = time.perf_counter()
    splits = load_splits(
        cfg.data.dataset,
        validation_fraction=cfg.data.validation_fraction,
        seed=cfg.seed,
        data_dir=cfg.data.data_dir,
        standardize=cfg.data.standardize,
        max_train_examples=cfg.data.max_train_examples,
    )
    hyperparameters = kt.HyperParameters()
    plan_from_hp(hyperparameters, cfg.search, setting_defaults(cfg))

    config_dict = cfg.model_dump(mode="json")
    tracker = SearchTracker(cfg.tracking.tracking_uri, cfg.experiment_name())
    parent_id = tracker.start_search(
        cfg.name, config_dict, config_text or yaml.safe_dump(config_dict, sort_keys=False)
    )
    artifact_dir = tracker.parent_artifact_dir()
    scratch = None
    if artifact_dir is not None:
        workdir = artifact_dir.parent / "tuner"  # beside the run's artifacts, not among them
    else:
        scratch = tempfile.TemporaryDirectory()
        workdir = Path(scratch.name)

    runner = TrialRunner(cfg, splits, tracker, reporter)
    oracle = make_oracle(cfg.search, hyperparameters, seed=cfg.seed, max_epochs=cfg.training.epochs)
    tuner = KregTuner(oracle, runner, directory=str(workdir))
    reporter.search_started(cfg, cfg.search.max_trials)
    status, error = "FINISHED", ""
    try:
        tuner.search(verbose=0)  # kreg reports progress itself
    except KeyboardInterrupt:
        status, error = "KILLED", "interrupted by the user"
        raise
    except Exception as exc:  # e.g. keras-tuner's limit on consecutive failed trials
        status, error = "FAILED", f"{type(exc).__name__}: {exc}"
    finally:
        for problem in runner.wait():
            error = f"{error}; {problem}" if error else problem
        records = runner.records
        summary = SearchSummary(
            pipeline=cfg.name, parent_run_id=parent_id, experiment=cfg.experiment_name(),
            tracking_uri=tracker.tracking_uri, records=records,
            baseline=records[0] if records else None,
            best=pick_best(records, objective_for(cfg.search)),
            duration_s=time.perf_counter() - start, status=status, error=error,
            experiment_id=tracker.experiment_id,
        )
        with tempfile.TemporaryDirectory() as tmp:
            tags = {"kreg.best_trial_id": summary.best.trial_id} if summary.best else {}
            if error:
                tags["kreg.error"] = error[:5000]
            tracker.end_search(_parent_metrics(summary), _summary_artifacts(summary, Path(tmp)),
                               status=status, tags=tags)
        if scratch is not None:
            scratch.cleanup()
        reporter.search_ended(summary)
    return summary
