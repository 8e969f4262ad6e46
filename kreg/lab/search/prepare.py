"""Preparing a search: ``kreg.tune``'s arguments (a ``Request``) resolved into a checked ``Search``, before any run.

Everything is checked here: the settings and the space (``ConfigError``),
the data (``DataError``), the objective against the task, and the model
itself: the baseline and the largest plan of the space are built once, so a
technique that does not fit the model fails now with a clear message
instead of as a failed trial. ``request`` turns ``tune``'s flat keywords
into the settings objects (the one place that does); ``prepare`` takes
them. The workers of a parallel search call ``prepare`` with the chief's
request and must arrive at the same search.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from kreg.lab.errors import ConfigError
from kreg.lab.search.settings import Monitor, SearchSettings, Training, build
from kreg.lab.search.space import SearchSpace
from kreg.lab.trial.problem import Objective, Problem


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
    def problem(self) -> Problem:
        """What its trials train: the model, the data, the task, the training (and the objective they keep by)."""
        return Problem(model=self.model, splits=self.splits, task=self.task, training=self.training, seed=self.seed,
                       loss=self.loss, metrics=self.metrics, train_eval_samples=self.train_eval_samples,
                       objective=self.objective, monitor=self.monitor, penalty=self.penalty)

    def trial_runner(self, tracker=None, reporter=None):
        """The runner of this search's trials: its problem, its folds (the same for every trial) and its pruner.
        ``tracker`` is told first what every trial run logs besides its figures (the data, system metrics)."""
        from kreg.lab.search.pruning import pruner_for
        from kreg.lab.trial.runner import TrialRunner, folds_of

        if tracker is not None:
            tracker.describe(self)
        return TrialRunner(self.problem, folds=folds_of(self.problem, self.settings.cv), pruner=pruner_for(self),
                           tracker=tracker, reporter=reporter)

    @property
    def penalty(self) -> float | None:
        """The gap penalty when the objective is gap-penalized, else None (not logged)."""
        return self.settings.gap_penalty if self.settings.objective == "gap_penalized" else None

    @property
    def penalty_metric(self) -> str:
        """The figure the gap penalty compares: the task's data loss (``nll``, ``mse``), not Keras'
        ``loss``, which includes the weight penalties; ``loss`` when the user compiles their own metrics."""
        return self.task.data_loss if self.metrics is None else "loss"


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
        built = _build_checked(search, search.space, plan, label)
        structures.append(model_structure(built.model))
        if choose_space is not None and len(structures) == 1:
            search = dataclasses.replace(search, space=choose_space(search, built))
        keras.backend.clear_session()
    return structures[0], search


def _build_checked(problem, space: SearchSpace, plan, label: str):
    """``plan`` built on ``problem`` (a ``Problem`` or a ``Search``), or a ``ConfigError`` saying why it does not fit."""
    try:
        built = problem.model.build(problem.splits.spec, plan, seed=problem.seed)
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError("techniques", plan.describe(), f"a plan that fits the model ({label} does not: {exc})") \
            from None
    problem.model.check_output(built, problem.task, problem.splits.spec)
    _check_head(space, built.output_activation)
    return built


def _check_head(space: SearchSpace, activation: str) -> None:
    """Techniques that need a softmax-or-logits head (soft labels over every class) refuse a sigmoid one."""
    if activation not in ("sigmoid", "binary_logit"):
        return
    for name in ("augment_mixup", "augment_cutmix", "confidence_penalty"):
        if name in space.names:
            raise ConfigError(f"techniques.{name}", name, "a model with one output per class (softmax or logits): "
                              f"{name} needs a distribution over the classes, the model ends in one sigmoid unit")


def _check_techniques(space: SearchSpace, splits, loss) -> None:
    """Techniques the data or the user's own loss rule out."""
    if "ensemble" in space.names and not splits.in_memory:
        raise ConfigError("techniques.ensemble", "ensemble", "in-memory data: bagging resamples the training "
                          "split, which a streamed tf.data source cannot do")
    if loss is not None:
        for name_ in ("label_smoothing", "confidence_penalty"):
            if name_ in space.names:
                raise ConfigError(f"techniques.{name_}", name_, "no loss technique with your own `loss` "
                                  "(kreg cannot smooth or penalize a loss it does not build)")


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


@dataclasses.dataclass(frozen=True)
class Request:
    """What ``kreg.tune`` was asked, as the settings objects, checked and not yet resolved (``request`` builds it).

    ``training``, ``settings`` and ``monitor`` are the validated settings objects (``kreg.lab.search.settings``),
    ``space`` the checked ``SearchSpace`` (empty with ``default_space``: kreg's default space is chosen once the
    baseline is built). ``model`` and ``data`` stay as given (a name, a function, arrays, a path): ``prepare``
    loads the data and makes the model source. A worker process receives this object pickled.
    """

    model: Any
    data: Any
    training: Training
    settings: SearchSettings
    monitor: Monitor
    space: SearchSpace
    default_space: bool = False
    max_active: int | None = None  # of the default space
    model_args: dict | None = None
    data_options: dict = dataclasses.field(default_factory=dict)  # the data source's options
    task: Any = None
    loss: Any = None  # the user's own loss and metrics, if given
    metrics: Any = None
    train_eval_samples: int | None = 500
    seed: int = 0
    name: str | None = None
    experiment: str | None = None
    tracking_uri: str | None = None
    register: str | None = None
    config: dict | None = None  # the pipeline's settings, logged as given (kreg tune PIPELINE)
    config_text: str | None = None
    source: str | None = None  # the pipeline file the values came from: errors name its fields


_REQUEST_OWN = tuple(f.name for f in dataclasses.fields(Request)
                     if f.name not in ("model", "data", "training", "settings", "monitor", "space", "default_space",
                                       "max_active", "data_options"))


def request(model, data, **keywords) -> Request:
    """``kreg.tune``'s keywords turned into the settings objects, every value checked: the one place that does it.

    ``tune`` calls it with all of its keywords; a worker of ``kreg worker`` with the pipeline's (any subset:
    the objects' own defaults, which are ``tune``'s, fill the rest). A keyword that is a field of ``Training``
    or ``SearchSettings`` goes there; ``techniques``, ``exclusive`` and ``max_active`` make the space;
    ``monitor`` the ``Monitor``; ``repeats`` joins ``cv``; what is left is the data source's options.
    A bad value is a ``ConfigError`` naming the field, before anything loads.
    """
    keywords = dict(keywords)
    source = keywords.get("source")
    field = "search" if source else None  # YAML names its sections; Python its arguments

    def take(cls) -> dict:
        return {k: keywords.pop(k) for k in cls.model_fields if k in keywords}

    own = {k: keywords.pop(k) for k in _REQUEST_OWN if k in keywords}
    register, refit = own.get("register"), keywords.get("refit", True)
    if register is not None and (not isinstance(register, str) or not register.strip()):
        raise ConfigError("tracking.register_as" if source else "register", register,
                          "a Model Registry name (a non-empty string) or None")
    if register is not None and not refit:
        raise ConfigError("tracking.register_as" if source else "register", register,
                          "refit: true as well (the registered model is the refit answer)")
    training = build(Training, take(Training), source=source, prefix="training." if source else "")
    repeats = keywords.pop("repeats", None)
    searching = take(SearchSettings)
    if repeats is not None:  # kreg.tune(cv=5, repeats=3): the YAML's search.cv.repeats
        cv = searching.get("cv", "auto")
        if cv is None or cv is False or cv == "auto":
            raise ConfigError("repeats", repeats, "cv= as well (repeats of what? e.g. cv=5, repeats=3)")
        searching["cv"] = {**(cv if isinstance(cv, dict) else {"folds": cv}), "repeats": repeats}
    settings = build(SearchSettings, searching, source=source, prefix="search." if source else "")
    monitor = keywords.pop("monitor", None)
    monitor = monitor if isinstance(monitor, Monitor) else build(Monitor, monitor or {}, source=source,
                                                                  prefix="monitor.")
    techniques, exclusive = keywords.pop("techniques", None), keywords.pop("exclusive", ())
    max_active = keywords.pop("max_active", None)
    default = techniques is None or (isinstance(techniques, str) and techniques == "auto")  # kreg's default space
    if default and exclusive:
        raise ConfigError(f"{field}.exclusive" if field else "exclusive", exclusive,
                          "techniques as well (the groups name techniques of your own space)", source)
    space = techniques if isinstance(techniques, SearchSpace) else SearchSpace.from_dict(
        {} if default else techniques, exclusive=exclusive, max_active=max_active, field=field, source=source)
    train_eval_samples = own.get("train_eval_samples", 500)
    if train_eval_samples is not None and (isinstance(train_eval_samples, bool)
                                           or not isinstance(train_eval_samples, int) or train_eval_samples < 1):
        raise ConfigError("train_eval_samples", train_eval_samples, "a positive integer or None (all)")
    return Request(model=model, data=data, training=training, settings=settings, monitor=monitor, space=space,
                   default_space=default, max_active=max_active, data_options=keywords, **own)


def prepare(asked: Request) -> "Prepared":
    """Resolves a search's ``Request`` (``request``: ``kreg.tune``'s keywords as objects) into a checked search,
    without starting it.

    Everything ``tune`` checks before any MLflow run exists happens in ``request`` and here (the store, the
    data, the model built once for the baseline and the largest plan). The workers of a parallel search call
    it with the chief's request and must arrive at the same search.

    Returns:
        A ``Prepared``: ``.search``, ``.config`` and ``.config_text`` (the
        parent run's settings) and ``.structure`` (the baseline model's digest).
    """
    from kreg.lab.data import resolve_data
    from kreg.lab.models.source import ModelSource
    from kreg.lab.tracking.store import check_tracking_uri, resolve_tracking_uri

    source, field = asked.source, "search" if asked.source else None
    training, settings, space, seed = asked.training, asked.settings, asked.space, asked.seed
    default, loss, metrics = asked.default_space, asked.loss, asked.metrics
    source_model = ModelSource(asked.model, asked.model_args)
    # The store is checked before the data loads: a bad or unreachable one fails in seconds, not after.
    tracking_uri = check_tracking_uri(resolve_tracking_uri(asked.tracking_uri))
    data_options = dict(asked.data_options)
    if asked.task is not None:  # a task given in the data's own options (YAML data.task) must not be overridden
        data_options["task"] = asked.task
    splits = resolve_data(asked.data, seed=seed, **data_options)
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
    _check_techniques(space, splits, loss)
    the_objective = resolve_objective(settings.objective, the_task,
                                      field="search.objective" if source else "objective")
    if metrics is not None and the_objective.name != "val_penalized_loss":
        compiled = {"loss", *(m if isinstance(m, str) else getattr(m, "name", "") for m in metrics)}
        if the_objective.name.removeprefix("val_") not in compiled:
            raise ConfigError("objective", the_objective.name, "the validation figure of a metric you compile: "
                              + ", ".join(f"val_{m}" for m in sorted(compiled)))
    name = asked.name or f"{source_model.short_name()}_{splits.spec.dataset or 'data'}".replace(":", "_")
    search = Search(
        name=name, seed=seed, model=source_model, splits=splits, task=the_task, space=space,
        training=training, settings=settings, monitor=asked.monitor, objective=the_objective,
        train_eval_samples=asked.train_eval_samples, loss=loss, metrics=metrics,
        experiment=asked.experiment or name, tracking_uri=tracking_uri, register=asked.register,
        notes=resolved.notes,
    )
    from kreg.lab.trial.compilation import enable_persistent_cache

    enable_persistent_cache()  # under JAX: compiled steps reused across trials, folds, refits and processes
    structure, search = _preflight(search, _default_space(asked.max_active) if default else None)
    config = asked.config
    if default and config is not None and isinstance(config.get("search"), dict):  # a pipeline: log what was searched
        config = {**config, "search": {**config["search"], **search.space.to_dict()}}
    if config is None:
        config = {
            "name": name, "seed": seed, "model": source_model.describe(), "data": splits.describe(),
            "task": the_task.describe(), "training": training.model_dump(),
            "search": {**settings.model_dump(), **search.space.to_dict()}, "monitor": asked.monitor.model_dump(),
        }
    return Prepared(search, config, asked.config_text or yaml.safe_dump(config, sort_keys=False), structure)


def prepare_problem(model, data, *, techniques: dict | None = None, epochs: int = 30, batch_size: int | None = None,
                    learning_rate: float = 1e-3, optimizer: str = "adam", precise_bn="auto", seed: int = 0,
                    model_args: dict | None = None, task=None, loss=None, metrics=None,
                    train_eval_samples: int | None = 500, **data_options) -> tuple[Problem, SearchSpace]:
    """The model, data, task and training resolved and checked as ``prepare`` does them, for work that trains
    chosen plans and searches nothing (the studies): no tuner, no trial limit, no folds, no store.

    ``techniques`` (a space, as ``kreg.tune`` takes it) is checked against the model and the data, and its
    largest plan is built once with the baseline, as a search's is.

    Returns:
        ``(problem, space)``: a ``kreg.lab.trial.problem.Problem`` (scored on the holdout validation split by
        the task's default objective) and the checked ``SearchSpace``.
    """
    from kreg.lab.data import resolve_data
    from kreg.lab.models.source import ModelSource
    from kreg.lab.plan import RegularizationPlan
    from kreg.lab.search.defaults import BATCH_MAX, auto_batch_size

    training = build(Training, dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                                    optimizer=optimizer, precise_bn=precise_bn))
    space = techniques if isinstance(techniques, SearchSpace) else SearchSpace.from_dict(techniques or {})
    if train_eval_samples is not None and (isinstance(train_eval_samples, bool)
                                           or not isinstance(train_eval_samples, int) or train_eval_samples < 1):
        raise ConfigError("train_eval_samples", train_eval_samples, "a positive integer or None (all)")
    source_model = ModelSource(model, model_args)
    if task is not None:
        data_options["task"] = task
    splits = resolve_data(data, seed=seed, **data_options)
    if training.batch_size is None:
        n_train = len(splits.x_train) if splits.in_memory else None
        training = training.model_copy(update={"batch_size": auto_batch_size(n_train) if n_train else BATCH_MAX})
    the_task = splits.spec.task
    space.check(modality=splits.spec.modality, task=the_task.kind, builtin_model=source_model.builtin)
    _check_techniques(space, splits, loss)
    problem = Problem(model=source_model, splits=splits, task=the_task, training=training, seed=seed, loss=loss,
                      metrics=metrics, train_eval_samples=train_eval_samples,
                      objective=resolve_objective(None, the_task), monitor=Monitor())
    from kreg.lab.trial.compilation import enable_persistent_cache

    enable_persistent_cache()  # under JAX: compiled steps reused across the study's points
    import keras

    settings = training.settings()
    for label, plan in (("the baseline", RegularizationPlan(**settings)),
                        ("the largest plan of the space", space.largest_plan(settings))):
        _build_checked(problem, space, plan, label)
        keras.backend.clear_session()
    return problem, space
