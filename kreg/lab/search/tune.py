"""``kreg.tune``: your model, your data, a search space -> keras-tuner -> MLflow -> the search summary.

Everything is checked before any MLflow run exists: the settings and the
space (``ConfigError``), the data (``DataError``), the objective against the
task, and the model itself: the baseline and the largest plan of the space
are built once, so a technique that does not fit the model fails now with
a clear message instead of as a failed trial. Then a failed trial is
recorded and the search goes on; whatever happens, the parent run is closed
with everything logged so far and the summary of the trials that ran.

A search owns its signals (``signals``): SIGINT, SIGTERM and SIGHUP stop it
within a training batch, the running trial's run and the parent end KILLED
with what was done, and ``SearchInterrupted`` carries one line saying how to
resume. ``resume=True`` / ``resume="<parent run id>"`` continues an
unfinished search in its own parent run (``resume``): finished trials are
read back, not rerun, and an interrupted trial runs again.

``workers=N`` runs the trials side by side in N worker processes, and
``chief="HOST:PORT"`` lets workers on other machines join (``parallel``,
``chief``, ``worker``): they resolve the search with ``prepare`` as this
module does, and the chief closes it with ``finish_search``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from kreg.lab import timing
from kreg.lab.analysis.selection import pick_best
from kreg.lab.errors import ConfigError
from kreg.lab.search import signals
from kreg.lab.search.settings import Monitor, SearchSettings, Training, build
from kreg.lab.search.space import SearchSpace
from kreg.lab.tracking.records import COMPLETED, ENDED, PRUNED, TrialRecord


@dataclasses.dataclass(frozen=True)
class Objective:
    """What the oracle optimizes: a logged name (``val_accuracy``) and ``"max"``/``"min"``."""

    name: str
    direction: str


@dataclasses.dataclass(frozen=True)
class Search:
    """One search, resolved: what every trial needs, and nothing from YAML."""

    name: str
    seed: int
    model: Any  # kreg.lab.models.source.ModelSource
    splits: Any  # kreg.lab.data splits
    task: Any  # kreg.lab.task.Task
    space: SearchSpace
    training: Training
    settings: SearchSettings
    monitor: Monitor
    objective: Objective
    train_eval_samples: int | None = 500
    loss: Any = None  # the user's own loss and metrics, if given
    metrics: Any = None
    experiment: str = ""
    tracking_uri: str | None = None
    register: str | None = None  # Model Registry name of the answer, if it is to be registered
    notes: tuple = ()  # what the "auto" defaults decided for this data, one line each (search.defaults)

    @property
    def penalty(self) -> float | None:
        """The gap penalty when the objective is gap-penalized, else None (not logged)."""
        return self.settings.gap_penalty if self.settings.objective == "gap_penalized" else None

    @property
    def penalty_metric(self) -> str:
        """The figure the gap penalty compares: the task's data loss (``nll``, ``mse``), not Keras'
        ``loss``, which includes the weight penalties; ``loss`` when the user compiles their own metrics."""
        return self.task.data_loss if self.metrics is None else "loss"


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


def resolve_objective(objective: str | None, task, field: str = "objective") -> Objective:
    """The logged name and direction an objective setting means for ``task``."""
    objective = objective or task.default_objective
    if objective not in task.objectives():
        raise ConfigError(field, objective, f"one of {', '.join(task.objectives())} for {task.describe()}")
    if objective == "gap_penalized":
        return Objective("val_penalized_loss", "min")
    return Objective(objective, task.direction(objective))


def _preflight(search: Search, choose_space=None) -> tuple[str | None, Search]:
    """Builds the baseline and the largest plan of the space once: misfits fail here, before any run.

    ``choose_space(search, built)``, given, picks the space from the built baseline (kreg's default space)
    before the largest plan is built. Returns a digest of the baseline model's structure (part of what a
    resume must match) and the search with its space.
    """
    import keras

    from kreg.lab.plan import RegularizationPlan
    from kreg.lab.search.spec import model_structure

    settings = search.training.settings()
    structures = []
    for label in ("the baseline", "the largest plan of the space"):
        plan = search.space.largest_plan(settings) if structures else RegularizationPlan(**settings)
        try:
            built = search.model.build(search.splits.spec, plan, seed=search.seed)
        except ConfigError:
            raise
        except ValueError as exc:
            raise ConfigError("techniques", plan.describe(), f"a plan that fits the model ({label} does not: {exc})") \
                from None
        search.model.check_output(built, search.task, search.splits.spec)
        _check_head(search, built.output_activation)
        structures.append(model_structure(built.model))
        if choose_space is not None and len(structures) == 1:
            search = dataclasses.replace(search, space=choose_space(search, built))
        keras.backend.clear_session()
    return structures[0], search


def _check_head(search: Search, activation: str) -> None:
    """Techniques that need a softmax-or-logits head (soft labels over every class) refuse a sigmoid one."""
    if activation not in ("sigmoid", "binary_logit"):
        return
    for name in ("augment_mixup", "augment_cutmix", "confidence_penalty"):
        if name in search.space.names:
            raise ConfigError(f"techniques.{name}", name, "a model with one output per class (softmax or logits): "
                              f"{name} needs a distribution over the classes, the model ends in one sigmoid unit")


def _check_folds(cv, splits, seed: int, field: str) -> None:
    """The folds can be drawn from this data (in memory, enough examples of every class): now, not in trial 1."""
    from kreg.lab.data.folds import cross_validation_splits

    if not splits.in_memory:
        raise ConfigError(field, cv.model_dump(), "no cross-validation with streamed tf.data sources (there is no "
                          "pool to fold): use the holdout validation split, or in-memory data")
    cross_validation_splits(splits, cv.folds, cv.repeats, seed=seed, scheme=cv.scheme)  # DataError if not


def _default_space(max_active: int | None):
    """Picks kreg's default space from the built baseline (``default_space``), for ``_preflight``."""
    from kreg.lab.search.default_space import for_search

    return lambda search, built: for_search(search, built, max_active=max_active)


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A search resolved and checked by ``prepare``, not started."""

    search: Search
    config: dict
    config_text: str
    structure: str | None = None


def prepare(model, data, *, techniques: dict | None = None, exclusive=(), max_active: int | None = None,
            epochs: int = 30, batch_size: int | None = None, learning_rate: float = 1e-3, optimizer: str = "adam", precise_bn="auto",
            tuner: str = "bayesian", max_trials: int | None = None, budget=None, objective: str | None = None, gap_penalty: float = 1.0,
            initial_points: int | None = None, hyperband_factor: int = 3, max_consecutive_failed_trials: int = 3,
            cv="auto", repeats: int | None = None, select: str = "auto", refit: bool = True,
            register: str | None = None, prune="median", task=None, loss=None, metrics=None,
            model_args: dict | None = None, monitor: dict | None = None,
            train_eval_samples: int | None = 500, seed: int = 0, name: str | None = None,
            experiment: str | None = None, tracking_uri: str | None = None,
            config: dict | None = None, config_text: str | None = None,
            source: str | None = None, **data_options) -> "Prepared":
    """Resolves ``tune``'s arguments into a checked search, without starting it.

    Everything ``tune`` checks before any MLflow run exists happens here (the
    settings, the space, the store, the data, the model built once for the
    baseline and the largest plan). The workers of a parallel search call it
    with the chief's arguments and must arrive at the same search.

    Returns:
        A ``Prepared``: ``.search``, ``.config`` and ``.config_text`` (the
        parent run's settings) and ``.structure`` (the baseline model's digest).
    """
    from kreg.lab.data import resolve_data
    from kreg.lab.models.source import ModelSource
    from kreg.lab.tracking.store import check_tracking_uri, resolve_tracking_uri

    field = "search" if source else None  # YAML names its sections; Python its arguments
    if register is not None and (not isinstance(register, str) or not register.strip()):
        raise ConfigError("tracking.register_as" if source else "register", register,
                          "a Model Registry name (a non-empty string) or None")
    if register is not None and not refit:
        raise ConfigError("tracking.register_as" if source else "register", register,
                          "refit: true as well (the registered model is the refit answer)")
    training = build(Training, dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                                    optimizer=optimizer, precise_bn=precise_bn), source=source,
                     prefix="training." if source else "")
    if repeats is not None:  # kreg.tune(cv=5, repeats=3): the YAML's search.cv.repeats
        if cv is None or cv is False or cv == "auto":
            raise ConfigError("repeats", repeats, "cv= as well (repeats of what? e.g. cv=5, repeats=3)")
        cv = {**(cv if isinstance(cv, dict) else {"folds": cv}), "repeats": repeats}
    settings = build(SearchSettings, dict(
        tuner=tuner, max_trials=max_trials, budget=budget, objective=objective, gap_penalty=gap_penalty,
        initial_points=initial_points, hyperband_factor=hyperband_factor,
        max_consecutive_failed_trials=max_consecutive_failed_trials, cv=cv, select=select, refit=refit,
        prune=prune),
        source=source, prefix="search." if source else "")
    monitor = monitor if isinstance(monitor, Monitor) else build(Monitor, monitor or {}, source=source,
                                                                  prefix="monitor.")
    default = techniques is None or (isinstance(techniques, str) and techniques == "auto")  # kreg's default space
    if default and exclusive:
        raise ConfigError(f"{field}.exclusive" if field else "exclusive", exclusive,
                          "techniques as well (the groups name techniques of your own space)", source)
    space = techniques if isinstance(techniques, SearchSpace) else SearchSpace.from_dict(
        {} if default else techniques, exclusive=exclusive, max_active=max_active, field=field, source=source)
    if train_eval_samples is not None and (isinstance(train_eval_samples, bool)
                                           or not isinstance(train_eval_samples, int) or train_eval_samples < 1):
        raise ConfigError("train_eval_samples", train_eval_samples, "a positive integer or None (all)")
    source_model = ModelSource(model, model_args)
    # The store is checked before the data loads: a bad or unreachable one fails in seconds, not after.
    tracking_uri = check_tracking_uri(resolve_tracking_uri(tracking_uri))
    if task is not None:  # a task given in the data's own options (YAML data.task) must not be overridden by None
        data_options["task"] = task
    splits = resolve_data(data, seed=seed, **data_options)
    the_task = splits.spec.task
    from kreg.lab.search.defaults import resolve as resolve_defaults

    resolved = resolve_defaults(settings, training, splits)  # cv, select and batch size "auto" for this data
    settings, training = resolved.settings, resolved.training
    space.check(tuner=settings.tuner, modality=splits.spec.modality, task=the_task.kind,
                builtin_model=source_model.builtin, field=field, source=source)
    if settings.select == "one_se" and settings.cv is None:
        raise ConfigError("search.select" if source else "select", "one_se", "search.cv as well (cv= in kreg.tune): "
                          "the one-standard-error rule needs the spread of the objective across folds")
    if settings.cv is not None:
        _check_folds(settings.cv, splits, seed, field="search.cv" if source else "cv")
    if "ensemble" in space.names and not splits.in_memory:
        raise ConfigError("techniques.ensemble", "ensemble", "in-memory data: bagging resamples the training "
                          "split, which a streamed tf.data source cannot do")
    if loss is not None:
        for name_ in ("label_smoothing", "confidence_penalty"):
            if name_ in space.names:
                raise ConfigError(f"techniques.{name_}", name_, "no loss technique with your own `loss` "
                                  "(kreg cannot smooth or penalize a loss it does not build)")
    the_objective = resolve_objective(settings.objective, the_task,
                                      field="search.objective" if source else "objective")
    if metrics is not None and the_objective.name != "val_penalized_loss":
        compiled = {"loss", *(m if isinstance(m, str) else getattr(m, "name", "") for m in metrics)}
        if the_objective.name.removeprefix("val_") not in compiled:
            raise ConfigError("objective", the_objective.name, "the validation figure of a metric you compile: "
                              + ", ".join(f"val_{m}" for m in sorted(compiled)))
    name = name or f"{source_model.short_name()}_{splits.spec.dataset or 'data'}".replace(":", "_")
    search = Search(
        name=name, seed=seed, model=source_model, splits=splits, task=the_task, space=space,
        training=training, settings=settings, monitor=monitor, objective=the_objective,
        train_eval_samples=train_eval_samples, loss=loss, metrics=metrics,
        experiment=experiment or name, tracking_uri=tracking_uri, register=register, notes=resolved.notes,
    )
    from kreg.lab.trial.compilation import enable_persistent_cache

    enable_persistent_cache()  # under JAX: compiled steps reused across trials, folds, refits and processes
    structure, search = _preflight(search, _default_space(max_active) if default else None)
    if default and config is not None and isinstance(config.get("search"), dict):  # a pipeline: log what was searched
        config = {**config, "search": {**config["search"], **search.space.to_dict()}}
    if config is None:
        config = {
            "name": name, "seed": seed, "model": source_model.describe(), "data": splits.describe(),
            "task": the_task.describe(), "training": training.model_dump(),
            "search": {**settings.model_dump(), **search.space.to_dict()}, "monitor": monitor.model_dump(),
        }
    return Prepared(search, config, config_text or yaml.safe_dump(config, sort_keys=False), structure)


@signals.owning_signals
def tune(model, data, *, techniques: dict | None = None, exclusive=(), max_active: int | None = None,
         epochs: int = 30, batch_size: int | None = None, learning_rate: float = 1e-3, optimizer: str = "adam", precise_bn="auto",
         tuner: str = "bayesian", max_trials: int | None = None, budget=None, objective: str | None = None, gap_penalty: float = 1.0,
         initial_points: int | None = None, hyperband_factor: int = 3, max_consecutive_failed_trials: int = 3,
         cv="auto", repeats: int | None = None, select: str = "auto", refit: bool = True,
         register: str | None = None, prune="median", task=None, loss=None, metrics=None,
         model_args: dict | None = None, monitor: dict | None = None,
         train_eval_samples: int | None = 500, seed: int = 0, name: str | None = None,
         experiment: str | None = None, tracking_uri: str | None = None, verbose: int = 1, reporter=None,
         config: dict | None = None, config_text: str | None = None, source: str | None = None,
         resume: bool | str = False, resume_command: str | None = None, workers: int = 1,
         chief: str | None = None, worker_timeout: float = 30.0, **data_options) -> SearchSummary:
    """Searches which regularization ``model`` needs on ``data``, and logs every trial to MLflow.

    Args:
        model: A built-in name (``"mlp"``, ``"cnn1d"``, ``"cnn2d"``, sized by
            ``model_args``); a function returning a plain Keras model (the
            plan is applied to it with ``kreg.regularize``); a function taking
            the ``RegularizationPlan`` (it places the techniques itself, with
            the plan's helpers); a ``keras.Model`` (cloned per trial with
            fresh weights); or ``"module:function"``.
        data: Splits from ``kreg.data`` (``from_arrays``, ``from_csv``,
            ``from_datasets``, ...), a packaged or ``"tfds:<name>"`` dataset
            name, a ``"module:function"`` loader, a ``.npz``/``.csv`` path, or
            ``(x, y)`` / ``(x_train, y_train, x_test, y_test)`` arrays.
            ``data_options`` go to the data source (``validation_fraction``,
            ``standardize``, ``target``, ``modality``, ``num_classes``, ...).
        techniques: The search space: technique name -> range(s), e.g.
            ``{"l2": {"min": 1e-6, "max": 1e-2, "scale": "log"}, "early_stopping": {"patience": 20}}``.
            Each technique is switched on and off; settings (``batch_size``,
            ``learning_rate``) are tuned, never off. Default None (or
            ``"auto"``): kreg's default space, the techniques that fit the
            model's structure, the data's modality and size, and the task
            (``kreg.lab.search.default_space``; the console says which);
            ``{}``: nothing, the baseline alone.
        exclusive: Groups of techniques of which at most one is on.
        max_active: At most this many techniques in one trial.
        epochs, batch_size, learning_rate, optimizer: How every trial trains.
            ``batch_size`` None (default): from the training set's size, the
            largest power of two at most an eighth of it, between 8 and 64
            (``kreg.lab.search.defaults``; the console says which).
        precise_bn: ``"auto"`` (default): a model with BatchNormalization gets
            its statistics re-estimated with the final weights over the
            training split (``kreg.training.recompute_batch_norm_statistics``)
            before every validation and at the end; ``False``: Keras' moving
            averages as they are.
        tuner: ``"random"``, ``"bayesian"``, ``"hyperband"`` or ``"grid"``.
        max_trials: Trials, the baseline (trial 0) included. Default: 10, or as
            many as ``budget`` holds when a budget is given.
        budget: The wall time the whole search may take, the refit included:
            ``"20m"``, ``"1h30m"``, ``"90s"`` or seconds. The clock starts
            with this call; no trial starts that would not end in time with
            room for the refit, and a trial that would overrun it stops at an
            epoch's end (PRUNED, "stopped by the budget"). The summary's
            ``budget`` line says how it was spent. Default None: no limit.
        objective: ``val_<metric>`` of the task or ``"gap_penalized"``
            (``val_m + gap_penalty * max(0, val_m - train_m)`` with ``m`` the
            data loss: ``nll`` or ``mse``, free of weight penalties). Default:
            ``val_accuracy`` (classification), ``val_mse`` (regression; Keras'
            ``val_loss`` includes the weight penalties, so it would favour weak ones).
        cv: Score each trial by cross-validation of training + validation:
            the number of folds, or ``{"folds": 5, "repeats": 2, "scheme":
            "auto" | "stratified" | "kfold" | "forward"}``; None: the holdout
            validation split. Default ``"auto"``: 3-fold cross-validation
            (2 repeats under 100 pooled examples) when the validation split
            has fewer than 400 examples, the holdout split otherwise
            (``kreg.lab.search.defaults`` says why). ``repeats``: new folds
            this many times.
        select: ``"best"`` or ``"one_se"``: the most regularized trial
            within one standard error of the best (needs ``cv``). Default
            ``"auto"``: ``one_se`` whenever there are folds, else ``best``.
            Ties go to the more regularized plan, never to trial order.
        refit: Refit the answer and the baseline on training + validation,
            test both once and compare them on the same test examples
            (default True): ``summary.model`` (takes your raw inputs),
            ``summary.comparison``, ``summary.model_uri`` (the MLflow model).
        register: Register the answer in MLflow's Model Registry under this
            name (a new version each search). Default None.
        prune: Stop trials whose validation curve says they will not win:
            ``"median"`` (default), ``"asha"``, ``"none"``, or a mapping
            ``{"rule": "median", "warmup_trials": 5, "warmup_epochs": 10}`` /
            ``{"rule": "asha", "min_epochs": 1, "eta": 3}``. A pruned trial
            is recorded PRUNED with its curves so far; the baseline is never
            pruned; cross-validated trials are not pruned by epoch.
        task: ``"classification"``, ``"regression"`` or a ``kreg.lab.task``
            object. Default: inferred from the labels.
        loss, metrics: Your own loss and metrics instead of the task's (then
            label smoothing and the confidence penalty are not available).
        monitor: ``{"weights": bool, "sharpness": {...} | True}``.
        train_eval_samples: Training examples of the honest train figures.
        seed: Seed of the splits, the initialization and the oracle.
        name: Name of the search (parent run tag ``kreg.pipeline``, default experiment).
        experiment, tracking_uri: Where in MLflow (default: the project's sqlite store).
        verbose: 1 (default) shows progress on the console as ``kreg tune``
            does (trial k of N, epoch, validation figure and gap, a line per
            trial, the baseline-vs-best table); 0 is silent.
        reporter: A progress reporter of your own instead (the methods of
            ``kreg.lab.trial.runner.NullReporter``).
        resume: ``True`` continues the latest unfinished (interrupted,
            failed or killed) search of this name in this experiment; a parent
            run id continues that one. Its finished trials are not rerun, an
            interrupted trial runs again, and the summary covers them all. A
            search whose settings, space, data or model changed since is
            refused (``kreg.lab.errors.ResumeError`` naming the change).
        resume_command: How to resume, shown when a signal stops the search
            (``{}`` is the parent run id; the CLI passes its command line).
        workers: Trials run side by side in this many worker processes on
            this machine (keras-tuner's distributed mode: this process
            serves the oracle on loopback and trains nothing; each worker
            gets ``cores // workers`` TensorFlow threads). 1 (default): one
            process, no workers. The arguments must be picklable (a model
            function at a module's top level, arrays or a dataset name).
        chief: ``"HOST:PORT"``: serve the oracle there for ``kreg worker``
            processes on other machines too (``workers`` local ones beside
            them, 0 for none). See the README's "Parallel and distributed
            searches".
        worker_timeout: Seconds without a heartbeat after which a worker is
            given up for dead: its trial runs again on another worker.

    Signals: called from the main thread, the search owns SIGINT, SIGTERM and
    SIGHUP while it runs; one of them stops it cleanly (the running trial's
    run and the parent end KILLED, the summary of the finished trials is
    written) and raises ``kreg.lab.search.signals.SearchInterrupted`` (a
    ``KeyboardInterrupt``) with ``.summary`` and the line to resume.

    Returns:
        A ``SearchSummary``: ``.best``, ``.baseline``, ``.records`` (each
        with ``.plan``, ``.metrics``, ``.run_id``), ``.parent_run_id``.

    Example:
        >>> data = kreg.data.from_arrays(x_train, y_train, x_test=x_test, y_test=y_test)
        >>> result = kreg.tune(build, data, techniques={"l2": {"min": 1e-6, "max": 1e-2, "scale": "log"}},
        ...                    max_trials=8, epochs=50)
        >>> result.best.plan, result.best.metrics["test_accuracy"]
    """
    from kreg.lab.search.budget import take_start

    started = take_start()  # a budget counts from here (or from the start of the `kreg tune` command)
    arguments = {k: v for k, v in locals().items() if k in _PREPARE_ARGUMENTS}
    # A misspelled keyword (max_trails=3) or a data option the data cannot take (validation_fraction with
    # prepared splits) is a TypeError naming it here, not ignored or blamed on the data source's function.
    from kreg.lab.data.resolve import check_data_options

    check_data_options(data, data_options, "tune", parameters=inspect.signature(tune).parameters)
    if not (isinstance(resume, bool) or (isinstance(resume, str) and resume.strip())):
        raise ConfigError("resume", resume, "True, False or a parent run id")
    if workers != 1 or chief is not None:  # this process becomes the chief of worker processes
        from kreg.lab.search.parallel import run_parallel

        return run_parallel(dict(model=model, data=data, **arguments, **data_options), workers=workers, chief=chief,
                            worker_timeout=worker_timeout, verbose=verbose, reporter=reporter, resume=resume,
                            resume_command=resume_command, started=started)
    prepared = prepare(model, data, **arguments, **data_options)
    if reporter is None and verbose:
        import logging

        import mlflow  # noqa: F401  (configures its loggers on import; quiet them after)

        from kreg.lab.tracking.console import RichReporter

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines drown the progress
        reporter = RichReporter()
    return run_search(prepared.search, reporter=reporter, config=prepared.config, config_text=prepared.config_text,
                      resume=resume, resume_command=resume_command, structure=prepared.structure, started=started)


# What tune() passes on to prepare(): every argument of prepare() but the model, the data and the data's options.
_PREPARE_ARGUMENTS = tuple(p for p in inspect.signature(prepare).parameters
                           if p not in ("model", "data", "data_options"))


def _one_line(exc: Exception, settings, *, done: int | None = None, parent_id: str | None = None,
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


def _interrupted_line(exc, search: Search, done: int, parent_id: str, resume_command: str | None) -> str:
    """``interrupted by SIGTERM after 3 of 20 trials; resume with: ...``"""
    how = (resume_command.format(parent_id) if resume_command
           else f'kreg.tune(..., resume="{parent_id}") with the same arguments')
    return f"interrupted by {exc.name} after {done}{_of_limit(search.settings)} trials; resume with: {how}"


def _of_limit(settings) -> str:
    """`` of 20`` (the trial limit), or nothing when the budget decides how many."""
    return f" of {settings.trial_limit}" if settings.trial_limit is not None else ""


@signals.deferring
def run_search(search: Search, *, reporter=None, config: dict, config_text: str, resume=False,
               resume_command: str | None = None, structure: str | None = None,
               started: float | None = None) -> SearchSummary:
    """Runs a resolved search: the parent run (new or resumed), the oracle and tuner, every trial, the summary.

    Signals are deferred to safe points here (``signals``): after a training batch, between trials.
    """
    from kreg.lab.search.resume import open_session
    from kreg.lab.tracking.mlflow import SearchTracker
    from kreg.lab.trial import memory
    from kreg.lab.trial.runner import NullReporter, TrialRunner

    reporter = reporter or NullReporter()
    start = time.perf_counter()
    timing.mark("run_search")
    with timing.section("start.open_session"):
        tracker = SearchTracker(search.tracking_uri, search.experiment)
        session = open_session(search, tracker, config=config, config_text=config_text, structure=structure,
                               resume=resume)
    parent_id = session.parent_id
    with timing.section("start.runner"):
        runner = TrialRunner(search, tracker, reporter)
    runner.budget = budget = start_budget(search, reporter, started, session.previous_duration_s)
    runner.stop_on_blocked_baseline = True
    reporter.search_started(search, search.settings.trial_limit)
    status, error, interrupted = "FINISHED", "", None
    try:
        tuner = session.tuner(search, runner)  # a resume: the oracle and the finished trials reloaded
        tuner.oracle.set_budget(budget)
        with memory.frozen():  # the collection between trials walks only what they made
            tuner.search(verbose=0)  # kreg reports progress itself
    except signals.SearchInterrupted as exc:
        status, interrupted = "KILLED", exc
        error = exc.message = _interrupted_line(exc, search, len(runner.records), parent_id, resume_command)
        raise
    except Exception as exc:  # e.g. keras-tuner's limit on consecutive failed trials
        status, error = "FAILED", _one_line(exc, search.settings, done=len(runner.records), parent_id=parent_id,
                                            resume_command=resume_command)
    finally:
        timing.mark("trials_done")
        with timing.section("end.wait_finishers"):
            problems = runner.wait()
        for problem in problems:
            error = f"{error}; {problem}" if error else problem
        summary = finish_search(search, tracker, session, runner.records, status=status, error=error,
                                duration_s=session.previous_duration_s + time.perf_counter() - start,
                                reporter=reporter, interrupted=interrupted, resume_command=resume_command,
                                budget=budget)
    return summary


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
            exc.message = (f"interrupted by {exc.name} during the refit (all {len(records)} trials are kept); "
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
        tags = {"kreg.best_trial_id": summary.best.trial_id} if summary.best else {}
        tags["kreg.task"] = search.task.describe()
        if search.notes:  # what the "auto" defaults decided for this data (search.defaults)
            tags["kreg.defaults"] = "; ".join(search.notes)
        if summary.pruning:
            tags["kreg.pruning"] = summary.pruning
        if summary.best is not None:
            tags["kreg.selection"] = answer.why
        if answer.line:
            tags["kreg.answer"] = answer.line
        if error:
            tags["kreg.error"] = error[:5000]
        try:
            if answer.refit is not None:
                try:
                    with timing.section("end.save_model"):
                        tags["kreg.model_artifact"] = answering.save_model(answer, tracker, search)
                    if answer.model_uri:
                        tags["kreg.model_uri"] = answer.model_uri
                    if answer.registered:
                        tags["kreg.registered_model"] = answer.registered
                except StoreError:
                    raise
                except Exception as exc:  # a model Keras cannot serialize (a subclass without get_config...)
                    problem = f"the refit model was not saved ({type(exc).__name__}: {str(exc).strip()[:300]})"
                    summary.error = f"{summary.error}; {problem}" if summary.error else problem
                    tags["kreg.error"] = summary.error[:5000]
            if budget is not None:  # as late as it can be said: only the report and the parent's writes come after
                summary.budget = _budget_line(budget, records, trials_ended, refit_s)
                tags["kreg.budget"] = summary.budget
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
