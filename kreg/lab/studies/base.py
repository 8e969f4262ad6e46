"""What every study shares: the resolved problem it trains on, its MLflow runs, its verdict.

A study answers one claim of the seeds on the user's own model and data. It
is one MLflow parent run (tags ``kreg.role = study``, ``kreg.study = KIND``,
``kreg.claim``, ``kreg.verdict``, ``kreg.held``), one nested run per point
it trains (tag ``kreg.point``: the training size, the member count...), its
figures as the parent's metrics and its plot(s) as the parent's artifacts.

Training goes through the trial's own machinery (``prepare_problem``
resolves and checks the model, data, task and training exactly as
``kreg.tune`` does, into a ``Problem``: no tuner, no search; ``fit_plan`` and
``final_metrics`` train and measure a plan on it as a trial does), so a study
sees the model a search would train, with train figures in inference mode.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from kreg.lab.task import Classification
from kreg.lab.trial.predict import inference_outputs  # noqa: F401  (the studies' import of it)
from kreg.lab.tracking import tags as tag

# Class probabilities (n, classes) from a model's outputs and its head (softmax, logits, sigmoid...).
probabilities = Classification.probabilities


@dataclasses.dataclass
class StudyResult:
    """What a study found: its points, its headline figures, whether the claim held, and why."""

    kind: str
    claim: str
    points: list[dict]
    figures: dict[str, float]
    held: bool
    verdict: str
    plots: list[Path] = dataclasses.field(default_factory=list)
    parent_run_id: str | None = None
    duration_s: float = 0.0


class Study:
    """One claim and how to measure it; subclasses set ``kind``/``claim`` and implement ``run``."""

    kind: str = ""
    claim: str = ""
    options: dict[str, Any] = {}  # option -> default

    def check(self, **options) -> dict:
        """The options, checked (a ``ConfigError`` naming the bad one) before any data loads or run starts."""
        return options

    def run(self, ctx: "StudyContext", **options) -> tuple[list[dict], dict, bool, str, list[Path]]:
        """Returns (points, figures, held, verdict, plots)."""
        raise NotImplementedError


class StudyContext:
    """The resolved problem, the plan to compare with the baseline, and the study's MLflow runs.

    ``problem`` (also ``search``, the name the studies read it by) is a ``kreg.lab.trial.problem.Problem``.
    """

    def __init__(self, problem, space, tracker, kind: str, out_dir: Path, echo: Callable[[str], None]):
        self.search = problem
        self.space, self.tracker = space, tracker
        self.kind, self.out_dir, self.echo = kind, out_dir, echo
        settings = problem.training.settings()
        from kreg.lab.plan import RegularizationPlan

        self.baseline = RegularizationPlan(**settings)
        self.plan = space.largest_plan(settings)  # the study's fixed techniques
        self.train_sample = self.search.splits.train_sample(self.search.train_eval_samples)

    @property
    def problem(self):
        return self.search

    @property
    def metric(self) -> str:
        return self.search.task.primary

    def train(self, plan, *, point: str, splits=None, seed: int | None = None, epochs: int | None = None,
              keep_model: bool = False) -> dict:
        """Trains ``plan`` (on ``splits``, default the study's) as a trial does; logs a nested run.

        Returns the trial's end figures (``train_*`` in inference mode, ``val_*``, ``test_*``, gaps), plus
        ``model`` when ``keep_model``.
        """
        import keras

        from kreg.lab.trial.fit import fit_plan
        from kreg.lab.trial.measure import final_metrics

        search = self.search if splits is None else dataclasses.replace(self.search, splits=splits)
        sample = self.train_sample if splits is None else splits.train_sample(search.train_eval_samples)
        seed = self.search.seed if seed is None else seed
        keras.utils.set_random_seed(seed)  # as the search's runner does before a trial: a study repeats exactly
        start = time.perf_counter()
        fitted = fit_plan(search, plan, epochs or search.training.epochs, sample, seed=seed)
        metrics = final_metrics(fitted, search)
        metrics["duration_s"] = time.perf_counter() - start
        self.log_point(point, plan, metrics)
        if keep_model:
            metrics["model"], metrics["activation"] = fitted.model, fitted.built.output_activation
        else:
            keras.backend.clear_session()
        return metrics

    def log_point(self, point: str, plan, metrics: dict) -> None:
        from kreg.lab.tracking.mlflow import TrialRun

        run = self.tracker.client.create_run(
            self.tracker.experiment_id, run_name=f"{self.kind}-{point}",
            tags={tag.PARENT: self.tracker.parent_id, tag.STUDY: self.kind, tag.POINT: point,
                  tag.PLAN: plan.describe(), tag.TECHNIQUES: ",".join(plan.active_techniques()) or "baseline"})
        child = TrialRun(self.tracker.client, run.info.run_id)
        child.log_metrics(metrics)  # TrialRun writes the finite numbers
        child.finish("COMPLETED")


def run_study(study: Study, model, data, *, plan: dict | None = None, epochs: int = 30, batch_size: int = 64,
              learning_rate: float = 1e-3, optimizer: str = "adam", seed: int = 0, model_args: dict | None = None,
              tracking_uri: str | None = None, experiment: str = "kreg-studies", verbose: int = 1,
              task=None, **options) -> StudyResult:
    """Resolves the model and data as ``kreg.tune`` does, runs ``study`` under one MLflow parent run."""
    from kreg.lab.errors import ConfigError, DataError
    from kreg.lab.search.prepare import prepare_problem
    from kreg.lab.tracking import notes
    from kreg.lab.tracking.mlflow import SearchTracker, TrialRun
    from kreg.lab.tracking.store import check_tracking_uri, resolve_tracking_uri
    from kreg.lab.trial import memory

    unknown = sorted(set(options) - set(study.options))
    if unknown:
        raise ConfigError(f"study.{unknown[0]}", options[unknown[0]],
                          f"an option of the {study.kind} study ({', '.join(sorted(study.options)) or 'none'})")
    values = study.check(**{**study.options, **options})
    uri = check_tracking_uri(resolve_tracking_uri(tracking_uri))
    problem, space = prepare_problem(model, data, techniques=plan or {}, epochs=epochs, batch_size=batch_size,
                                     learning_rate=learning_rate, optimizer=optimizer, seed=seed,
                                     model_args=model_args, task=task)
    echo = print if verbose else (lambda line: None)
    tracker = SearchTracker(uri, experiment)
    start = time.perf_counter()
    parent = tracker.client.create_run(
        tracker.experiment_id, run_name=f"{study.kind}-{time.strftime('%Y%m%d-%H%M%S')}",
        tags={tag.ROLE: tag.STUDY_ROLE, tag.STUDY: study.kind, tag.CLAIM: study.claim,
              tag.TASK: problem.task.describe(), tag.MODEL: problem.model.describe(),
              **notes.note_tags(notes.study_note(study.kind, study.claim))})
    tracker.parent_id = parent.info.run_id
    tracker._log_params(tracker.parent_id, {"epochs": epochs, "seed": seed, **values, "plan": _describe(problem, space)})
    echo(f"kreg study {study.kind}: {study.claim}")
    echo(f"  model: {problem.model.describe()}; plan compared with the baseline: {_describe(problem, space)}")
    status = "FAILED"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ctx = StudyContext(problem, space, tracker, study.kind, Path(tmp), echo)
            # What existed before the study (TensorFlow, Keras, MLflow) out of the garbage collector's sight, as
            # for a search's trials: each clear_session between its fits then collects only what the study made.
            with memory.frozen():
                points, figures, held, verdict, plots = study.run(ctx, **values)
            TrialRun(tracker.client, tracker.parent_id).log_metrics(figures)  # finite numbers only
            for path in plots:
                tracker.client.log_artifact(tracker.parent_id, str(path))
            tracker.client.set_tag(tracker.parent_id, tag.VERDICT, verdict)
            tracker.client.set_tag(tracker.parent_id, tag.HELD, str(held).lower())
            notes.set_note(tracker.client, tracker.parent_id, notes.study_note(study.kind, study.claim, verdict, held))
            status = "FINISHED"
            echo(f"{'HELD' if held else 'DID NOT HOLD'}: {verdict}")
            echo(f"MLflow parent run {tracker.parent_id} in experiment '{experiment}' (plots among its artifacts)")
            plots = [Path(p.name) for p in plots]  # the files went with the temporary directory
    except (ConfigError, DataError):
        # An option that only the model or the data can refuse (a builder without a `width` argument, a class
        # the data lacks): bad input, not a failed study. Its runs go, so the store holds no FAILED husk.
        status = "DELETED"
        _delete_runs(tracker)
        raise
    finally:
        if status != "DELETED":
            tracker.client.set_terminated(tracker.parent_id, status)
    return StudyResult(study.kind, study.claim, points, figures, held, verdict, plots, tracker.parent_id,
                       time.perf_counter() - start)


def _delete_runs(tracker) -> None:
    """Deletes the study's parent run and its nested runs (MLflow keeps them as deleted, out of sight)."""
    children = tag.child_runs(tracker.client, tracker.experiment_id, tracker.parent_id)
    for run in children:
        tracker.client.delete_run(run.info.run_id)
    tracker.client.delete_run(tracker.parent_id)


def _describe(problem, space) -> str:
    return space.largest_plan(problem.training.settings()).describe()


def save_figure(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
