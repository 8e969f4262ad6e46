"""Pipeline configs: the one module that reads YAML.

A pipeline file declares the data, the model, the training defaults, the
search (candidate techniques, their ranges, which combinations are allowed,
tuner, objective, budget), the monitors and tracking. ``load_pipeline``
validates all of it before anything runs and raises one ``ConfigError``
naming the field and the value; no TensorFlow, Keras or MLflow is imported
here, so ``kreg validate`` answers fast.

A pipeline is a thin layer over ``kreg.tune``: ``PipelineConfig.tune_kwargs()``
builds the very arguments the Python call takes, so ``kreg tune my.yaml``
behaves exactly like ``kreg.tune(...)``. Relative paths in the file (arrays,
CSV files) are read from the file's directory; ``module:function`` builders
and loaders are imported with that directory and the working directory on
the import path.
"""

from __future__ import annotations

import contextlib
import re
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from kreg.lab.data.names import PACKAGED_MODALITY, available_datasets, is_known_dataset
from kreg.lab.errors import ConfigError, PipelineSyntaxError
from kreg.lab.models.builtin import MODEL_TYPES
from kreg.lab.search.settings import Float, Int, Monitor, SearchSettings, Strict, Training, pydantic_error
from kreg.lab.search.space import SearchSpace
from kreg.lab.task import TASK_KINDS
from kreg.lab.techniques import MODALITIES

DATA_SOURCES = ("dataset", "arrays", "csv", "loader")
_CALLABLE = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"


class DataConfig(Strict):
    """Where the data comes from (exactly one of ``dataset``, ``arrays``, ``csv``, ``loader``) and how it is split."""

    dataset: str | None = None  # mnist1d | digits | breast_cancer | wine | tfds:<name>
    arrays: str | None = None  # a .npz file: x_train, y_train (or x, y), optional x_val/y_val, x_test/y_test
    csv: str | None = None  # a CSV file of the training data
    loader: str | None = Field(default=None, pattern=_CALLABLE)  # module:function
    target: str | list[str] | None = None  # csv: the label column(s)
    test: str | None = None  # csv: the test file
    validation: str | None = None  # csv: the validation file
    features: list[str] | None = None  # csv: the feature columns (default: all others)
    task: Literal[TASK_KINDS] | None = None  # type: ignore[valid-type]  # default: inferred from the labels
    num_classes: Int | None = Field(default=None, ge=2)
    modality: Literal[MODALITIES] | None = None  # type: ignore[valid-type]  # default: from the input rank
    validation_fraction: Float = Field(default=0.2, gt=0, lt=1)
    data_dir: str | None = None
    standardize: Literal["none", "global", "feature"] | None = None
    train_eval_samples: Int | None = Field(default=500, ge=1)
    max_train_examples: Int | None = Field(default=None, ge=1)

    @field_validator("dataset")
    @classmethod
    def _known(cls, value):
        if value is not None and not is_known_dataset(value):
            raise ValueError("one of " + ", ".join(available_datasets()) + " or 'tfds:<name>'")
        return value

    @model_validator(mode="after")
    def _one_source(self):
        given = [k for k in DATA_SOURCES if getattr(self, k) is not None]
        if len(given) != 1:
            raise ConfigError("data", given or None, "exactly one of dataset, arrays, csv, loader")
        if self.csv is not None and self.target is None:
            raise ConfigError("data.target", None, "the name of the label column of the CSV file")
        for key in ("target", "test", "validation", "features"):
            if getattr(self, key) is not None and self.csv is None:
                raise ConfigError(f"data.{key}", getattr(self, key), "no value: it is an option of `csv`")
        return self

    @property
    def source(self) -> str:
        return next(k for k in DATA_SOURCES if getattr(self, k) is not None)

    def modality_known(self) -> str | None:
        return self.modality or PACKAGED_MODALITY.get(self.dataset or "")

    def task_known(self) -> str | None:
        return self.task or ("classification" if self.dataset else None)

    def spec(self, base: Path) -> dict:
        """The data as ``kreg.tune`` takes it: ``{source: value, **options}``, paths made absolute."""
        value = getattr(self, self.source)
        if self.source in ("arrays", "csv"):
            value = str(_path(base, value))
        spec = {self.source: value}
        for key in ("target", "features", "task", "num_classes", "modality", "validation_fraction", "data_dir",
                    "standardize", "max_train_examples"):
            if getattr(self, key) is not None:
                spec[key] = getattr(self, key)
        for key in ("test", "validation"):
            if getattr(self, key) is not None:
                spec[key] = str(_path(base, getattr(self, key)))
        return spec


def _path(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


class ModelConfig(Strict):
    """A built-in model (``type`` and its size) or your builder (``builder: module:function`` and ``args``)."""

    type: Literal[MODEL_TYPES] | None = None  # type: ignore[valid-type]
    builder: str | None = Field(default=None, pattern=_CALLABLE)
    args: dict[str, Any] = Field(default_factory=dict)
    width: Int | None = Field(default=None, ge=1)
    depth: Int | None = Field(default=None, ge=0)
    kernel_size: Int | None = Field(default=None, ge=1)
    dense_units: Int | None = Field(default=None, ge=0)
    strides: Int | None = Field(default=None, ge=1)
    pooling: Literal["flatten", "max", "avg"] | None = None

    @model_validator(mode="after")
    def _one_model(self):
        if (self.type is None) == (self.builder is None):
            raise ConfigError("model", {k: v for k, v in (("type", self.type), ("builder", self.builder)) if v},
                              "exactly one of type (a built-in model) or builder (module:function)")
        if self.builder is not None:
            for key, value in self.capacity().items():
                raise ConfigError(f"model.{key}", value, "no value with a builder (pass its arguments in model.args)")
        elif self.args:
            raise ConfigError("model.args", self.args, "no value with a built-in type (use width, depth, ...)")
        if self.type == "mlp":
            for key in ("kernel_size", "dense_units", "strides", "pooling"):
                if getattr(self, key) is not None:
                    raise ConfigError(f"model.{key}", getattr(self, key), "no value: mlp has width and depth only")
        return self

    def capacity(self) -> dict:
        """The built-in builder's size arguments that the config sets."""
        return {k: v for k, v in self.model_dump(exclude={"type", "builder", "args"}).items() if v is not None}


class SearchConfig(SearchSettings):
    """The ``search`` section: the settings plus the space (techniques, exclusive groups, max_active)."""

    max_active: Int | None = Field(default=None, ge=0)
    exclusive: list[list[str]] = Field(default_factory=list)
    techniques: dict[str, Any] | None = None  # absent: kreg's default space for the model and data; {}: none

    @property
    def default_space(self) -> bool:
        """No ``techniques``: kreg picks the space from the model and the data (``kreg techniques --for``)."""
        return self.techniques is None

    def settings(self) -> SearchSettings:
        return SearchSettings(**self.model_dump(include=set(SearchSettings.model_fields)))

    def space(self, source: str | None = None) -> SearchSpace:
        return SearchSpace.from_dict(self.techniques or {}, exclusive=self.exclusive, max_active=self.max_active,
                                     field="search", source=source)


class TrackingConfig(Strict):
    experiment: str | None = None
    tracking_uri: str | None = None
    # Model Registry name of the answer (not `register`: pydantic models have a `register` attribute).
    register_as: str | None = Field(default=None, min_length=1)


class PipelineConfig(Strict):
    """A whole pipeline file, validated."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: Int = Field(default=0, ge=0)
    data: DataConfig
    model: ModelConfig
    training: Training = Field(default_factory=Training)
    search: SearchConfig = Field(default_factory=SearchConfig)
    monitor: Monitor = Field(default_factory=Monitor)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    _base: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self):
        # What can be checked before the data loads: the space itself, and its
        # fit with the data and task when the file says them.
        self.search.space().check(tuner=self.search.tuner, modality=self.data.modality_known(),
                                  task=self.data.task_known(), builtin_model=self.model.type)
        return self

    def with_overrides(self, **overrides) -> "PipelineConfig":
        """A validated copy with CLI overrides (``max_trials``, ``budget``, ``epochs``, ``seed``, ``cv`` (folds),
        ``select``, ``experiment``, ``tracking_uri``, ``register``); None leaves a value as it is."""
        if all(value is None for value in overrides.values()):
            return self
        data = self.model_dump()
        where = {
            "max_trials": ("search", "max_trials"),
            "budget": ("search", "budget"),
            "epochs": ("training", "epochs"),
            "seed": (None, "seed"),
            "select": ("search", "select"),
            "experiment": ("tracking", "experiment"),
            "tracking_uri": ("tracking", "tracking_uri"),
            "register": ("tracking", "register_as"),
            "prune": ("search", "prune"),
        }
        for key, value in overrides.items():
            if value is None:
                continue
            if key == "cv":  # --cv FOLDS keeps the pipeline's repeats and scheme
                cv = data["search"].get("cv")
                data["search"]["cv"] = {**(cv if isinstance(cv, dict) else {}), "folds": value}
                continue
            section, field = where[key]
            (data[section] if section else data)[field] = value
        return parse_pipeline(data, source="command line", base=self._base)

    def experiment_name(self) -> str:
        return self.tracking.experiment or self.name

    @property
    def base(self) -> Path:
        """The directory relative paths and imports are resolved against."""
        return self._base or Path.cwd()

    def tune_kwargs(self, source: str | None = None) -> dict:
        """The arguments of ``kreg.tune`` this pipeline means."""
        model = self.model.type or self.model.builder
        return dict(
            model=model, model_args=self.model.capacity() if self.model.type else (self.model.args or None),
            data=self.data.spec(self.base),
            techniques=None if self.search.default_space else self.search.space(source),
            **({"max_active": self.search.max_active} if self.search.default_space else {}),
            **self.training.model_dump(), **self.search.settings().model_dump(), monitor=self.monitor,
            train_eval_samples=self.data.train_eval_samples, seed=self.seed, name=self.name,
            experiment=self.experiment_name(), tracking_uri=self.tracking.tracking_uri,
            register=self.tracking.register_as, config=self.model_dump(mode="json"), source=source or "pipeline",
        )


def check_sources(cfg: PipelineConfig):
    """What ``kreg tune`` checks before it trains, minus the training (``kreg validate``).

    The builder and loader (``module:function``) are imported, with the
    pipeline's directory and the working directory on the import path, and
    must be callable; they are not called. A CSV or ``.npz`` file is read
    through the very code ``kreg tune`` reads it with (present, readable, not
    empty, the target column there, labels that fit the task): no Keras, no
    TensorFlow. A packaged dataset was checked by name already. Raises the
    ``ConfigError`` or ``DataError`` ``kreg tune`` raises on the same file;
    returns the splits of a CSV or ``.npz`` file, else None.
    """
    from kreg.lab.data.loader import import_loader
    from kreg.lab.data.resolve import resolve_data
    from kreg.lab.models.source import import_callable

    with import_paths(cfg.base, Path.cwd()):
        if cfg.model.builder is not None:
            import_callable(cfg.model.builder)  # the field kreg tune names: `model`
        if cfg.data.loader is not None:
            import_loader(cfg.data.loader)
        elif cfg.data.source in ("csv", "arrays"):
            spec = cfg.data.spec(cfg.base)
            return resolve_data(spec, seed=cfg.seed)
    return None


@contextlib.contextmanager
def import_paths(*directories: Path):
    """``module:function`` builders and loaders next to the pipeline file (or in the cwd) import."""
    added = [str(d) for d in directories if str(d) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for d in added:
            if d in sys.path:
                sys.path.remove(d)


def parse_pipeline(data: Any, source: str | None = None, base: Path | None = None) -> PipelineConfig:
    """Validates a pipeline given as a mapping; ``base`` is the directory its relative paths start from."""
    if not isinstance(data, dict):
        raise ConfigError("pipeline", data, "a mapping at the top of the file", source)
    try:
        cfg = PipelineConfig.model_validate(data)
    except ConfigError as exc:
        raise ConfigError(exc.field, exc.value, exc.expected, source) from None
    except ValidationError as exc:
        raise pydantic_error(exc, source) from None
    cfg._base = base
    return cfg


def _syntax_error(path: Path, exc: yaml.YAMLError) -> PipelineSyntaxError:
    """PyYAML's several-line report as one line: where (1-based, as editors count) and what."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or not problem:
        return PipelineSyntaxError(str(path), None, None, " ".join(str(exc).split()))
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None and (context_mark.line, context_mark.column) != (mark.line, mark.column):
        problem += f" ({context} at line {context_mark.line + 1}, column {context_mark.column + 1})"
    elif context:
        problem += f" ({context})"
    return PipelineSyntaxError(str(path), mark.line + 1, mark.column + 1, problem)


class _PipelineLoader(yaml.SafeLoader):
    """PyYAML's safe loader reading ``1e-3`` as the number it is (YAML 1.2; PyYAML's YAML 1.1 wants ``1.0e-3`` and
    reads ``1e-3`` as text, which the settings refuse as not a number)."""


_PipelineLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
                                      list("-+0123456789."))


def load_pipeline(path: str | Path) -> PipelineConfig:
    """Reads and validates a pipeline YAML file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("pipeline", str(path), "an existing YAML file")
    try:
        data = yaml.load(path.read_text(), Loader=_PipelineLoader)  # noqa: S506  (a SafeLoader)
    except yaml.YAMLError as exc:
        raise _syntax_error(path, exc) from None
    return parse_pipeline(data, source=str(path), base=path.resolve().parent)
