"""Pipeline configs: the one module that reads YAML.

A pipeline file declares the dataset, the model, the training defaults, the
search (candidate techniques, their ranges, which combinations are allowed,
tuner, objective, budget) and tracking. ``load_pipeline`` validates all of it
before anything runs and raises one ``ConfigError`` naming the field and the
value; no TensorFlow, Keras or MLflow is imported here, so ``kreg validate``
answers fast.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator

from kreg.data.names import PACKAGED_MODALITY, available_datasets, is_known_dataset
from kreg.techniques import (
    MODEL_TYPES,
    NEEDS_MODEL,
    PARAM_DEFAULTS,
    SETTINGS,
    TECHNIQUES,
    technique_modalities,
)


class ConfigError(ValueError):
    """A pipeline config is invalid: names the field and the value."""

    def __init__(self, field: str, value: Any, expected: str, source: str | None = None):
        self.field, self.value, self.expected, self.source = field, value, expected, source
        where = f" in {source}" if source else ""
        super().__init__(
            f"Invalid value received for field `{field}`{where}. "
            f"Expected {expected}. Received: {field}={value!r}"
        )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------ search space
class RangeSpec(_Strict):
    """A numeric range: ``{min, max, scale: linear|log, step}``."""

    min: float
    max: float
    scale: Literal["linear", "log"] = "linear"
    step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self):
        if self.min > self.max:
            raise ValueError(f"min <= max (min={self.min}, max={self.max})")
        if self.scale == "log" and self.min <= 0:
            raise ValueError(f"min > 0 for a log-scale range (min={self.min})")
        return self


class ChoiceSpec(_Strict):
    """A list of values: ``{values: [...]}``."""

    values: list[Union[bool, int, float, str]] = Field(min_length=1)


ParamSpec = Union[RangeSpec, ChoiceSpec, bool, int, float]
_SHORTHAND_KEYS = {"min", "max", "scale", "step", "values"}


class TechniqueSpec(_Strict):
    """A candidate technique: switched on/off (``optional``) with its parameters."""

    optional: bool = True
    params: dict[str, ParamSpec] = Field(default_factory=dict)


def _kind_check(kind: str, value: Any) -> str | None:
    """None when ``value`` is valid for the parameter kind, else what is expected."""
    if kind == "bool":
        return None if isinstance(value, bool) else "a boolean"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "a number"
    if kind == "count":
        return None if float(value).is_integer() and value >= 1 else "an integer >= 1"
    if kind == "strength":
        return None if value >= 0 else "a float >= 0"
    if kind == "positive":
        return None if value > 0 else "a float > 0"
    if kind == "rate":
        return None if 0 <= value < 1 else "a float in [0, 1)"
    if kind == "ratio":
        return None if 0 <= value <= 1 else "a float in [0, 1]"
    raise AssertionError(kind)


def _normalize_technique(name: str, raw: Any) -> dict:
    """Accepts the YAML shorthands and returns ``{optional, params}``.

    ``l2: {min: 1e-6, max: 1e-2, scale: log}`` is short for the single
    parameter (``strength``); ``batch_norm: {}`` or ``batch_norm: true`` is an
    on/off technique with no parameters.
    """
    field = f"search.techniques.{name}"
    if name not in TECHNIQUES:
        raise ConfigError(field, name, "a known technique: " + ", ".join(sorted(TECHNIQUES)))
    if raw is None or raw is True or raw == {}:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(field, raw, "a mapping of parameter ranges")
    raw = dict(raw)
    optional = raw.pop("optional", name not in SETTINGS)
    if set(raw) == {"params"} and isinstance(raw["params"], dict):  # already normalized
        raw = dict(raw["params"])
    params_spec = TECHNIQUES[name]
    if raw and set(raw) <= _SHORTHAND_KEYS:
        if len(params_spec) != 1:
            raise ConfigError(field, raw, f"one entry per parameter ({', '.join(params_spec)})")
        raw = {next(iter(params_spec)): raw}
    for param in raw:
        if param not in params_spec:
            allowed = ", ".join(params_spec) or "no parameters"
            raise ConfigError(f"{field}.{param}", param, f"a parameter of {name}: {allowed}")
    for param in params_spec:
        if param not in raw and (name, param) not in PARAM_DEFAULTS:
            raise ConfigError(f"{field}.{param}", None, "a range, a list of values or a fixed value")
    return {"optional": optional, "params": raw}


class SearchConfig(_Strict):
    tuner: Literal["random", "bayesian", "hyperband", "grid"] = "bayesian"
    max_trials: int = Field(default=10, ge=1)
    objective: Literal["val_accuracy", "val_loss", "gap_penalized"] = "val_accuracy"
    gap_penalty: float = Field(default=1.0, ge=0)
    max_active: int | None = Field(default=None, ge=0)
    exclusive: list[list[str]] = Field(default_factory=list)
    techniques: dict[str, TechniqueSpec] = Field(default_factory=dict)
    max_consecutive_failed_trials: int = Field(default=3, ge=1)
    hyperband_factor: int = Field(default=3, ge=2)
    initial_points: int | None = Field(default=None, ge=1)

    @field_validator("techniques", mode="before")
    @classmethod
    def _shorthands(cls, value):
        if not isinstance(value, dict):
            return value
        return {name: _normalize_technique(name, raw) for name, raw in value.items()}


class DataConfig(_Strict):
    dataset: str
    validation_fraction: float = Field(default=0.2, gt=0, lt=1)
    data_dir: str | None = None
    standardize: Literal["none", "global", "feature"] | None = None
    train_eval_samples: int | None = Field(default=500, ge=1)
    max_train_examples: int | None = Field(default=None, ge=1)

    @field_validator("dataset")
    @classmethod
    def _known(cls, value):
        if not is_known_dataset(value):
            raise ValueError("one of " + ", ".join(available_datasets()) + " or 'tfds:<name>'")
        return value


class ModelConfig(_Strict):
    type: Literal[MODEL_TYPES]  # type: ignore[valid-type]
    width: int | None = Field(default=None, ge=1)
    depth: int | None = Field(default=None, ge=0)
    kernel_size: int | None = Field(default=None, ge=1)
    dense_units: int | None = Field(default=None, ge=0)
    strides: int | None = Field(default=None, ge=1)
    pooling: Literal["flatten", "max", "avg"] | None = None

    def capacity(self) -> dict:
        """The builder's size arguments that the config sets."""
        return {k: v for k, v in self.model_dump(exclude={"type"}).items() if v is not None}


class TrainingConfig(_Strict):
    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0)
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"


class SharpnessConfig(_Strict):
    """``SharpnessProbe`` settings: relative radius, random directions, how often."""

    rho: float = Field(default=0.05, gt=0)
    samples: int = Field(default=3, ge=1)
    every: int = Field(default=5, ge=1)
    adversarial: StrictBool = True


class MonitorConfig(_Strict):
    """Figures every trial logs per epoch besides the honest gap.

    ``weights``: weight norms and the fraction of exactly-zero weights
    (``WeightMonitor``); ``sharpness``: the loss rise under weight
    perturbations (``SharpnessProbe``) on the honest-gap training sample,
    off unless set (``true`` for the defaults).
    """

    weights: StrictBool = True
    sharpness: SharpnessConfig | None = None

    @field_validator("sharpness", mode="before")
    @classmethod
    def _switch(cls, value):
        if value is True:
            return {}
        return None if value is False else value


class TrackingConfig(_Strict):
    experiment: str | None = None
    tracking_uri: str | None = None


class PipelineConfig(_Strict):
    """A whole pipeline file, validated."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: int = Field(default=0, ge=0)
    data: DataConfig
    model: ModelConfig
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @model_validator(mode="after")
    def _consistent(self):
        _check_search(self)
        return self

    def with_overrides(self, **overrides) -> "PipelineConfig":
        """A validated copy with CLI overrides (``max_trials``, ``epochs``, ``seed``,
        ``experiment``, ``tracking_uri``); None leaves a value as it is."""
        if all(value is None for value in overrides.values()):
            return self
        data = self.model_dump()
        where = {
            "max_trials": ("search", "max_trials"),
            "epochs": ("training", "epochs"),
            "seed": (None, "seed"),
            "experiment": ("tracking", "experiment"),
            "tracking_uri": ("tracking", "tracking_uri"),
        }
        for key, value in overrides.items():
            if value is None:
                continue
            section, field = where[key]
            (data[section] if section else data)[field] = value
        return parse_pipeline(data, source="command line")

    def experiment_name(self) -> str:
        return self.tracking.experiment or self.name


def _check_search(cfg: PipelineConfig) -> None:
    if cfg.model.type == "mlp":
        for key in ("kernel_size", "dense_units", "strides", "pooling"):
            if getattr(cfg.model, key) is not None:
                raise ConfigError(f"model.{key}", getattr(cfg.model, key), "no value: mlp has width and depth only")
    search = cfg.search
    if search.tuner == "grid" and search.max_active is not None:
        raise ConfigError("search.max_active", search.max_active, "no value with the grid tuner (it tries every combination)")
    modality = PACKAGED_MODALITY.get(cfg.data.dataset)
    for name, tech in search.techniques.items():
        field = f"search.techniques.{name}"
        needed = technique_modalities(name)
        if needed and modality and modality not in needed:
            raise ConfigError(field, name, f"a technique for {modality} data ({cfg.data.dataset} is {modality})")
        if name in NEEDS_MODEL and cfg.model.type not in NEEDS_MODEL[name]:
            raise ConfigError(field, name, f"a technique that applies to model.type={cfg.model.type}")
        if name in SETTINGS and tech.optional:
            raise ConfigError(f"{field}.optional", True, "false: a setting is tuned, never switched off")
        for param, spec in tech.params.items():
            kind = TECHNIQUES[name][param]
            pfield = f"{field}.{param}"
            if isinstance(spec, RangeSpec):
                if kind == "bool":
                    raise ConfigError(pfield, spec.model_dump(), "true, false or {values: [...]}")
                for end in ("min", "max"):
                    problem = _kind_check(kind, getattr(spec, end))
                    if problem:
                        raise ConfigError(f"{pfield}.{end}", getattr(spec, end), problem)
                if search.tuner == "grid" and spec.step is None:
                    raise ConfigError(pfield, spec.model_dump(), "a `step` or a list of `values` for the grid tuner")
            else:
                values = spec.values if isinstance(spec, ChoiceSpec) else [spec]
                for value in values:
                    problem = _kind_check(kind, value)
                    if problem:
                        raise ConfigError(pfield, value, problem)
    seen: dict[str, int] = {}
    for i, group in enumerate(search.exclusive):
        field = f"search.exclusive[{i}]"
        if len(group) < 2:
            raise ConfigError(field, group, "a list of at least two technique names")
        for name in group:
            if name not in search.techniques:
                raise ConfigError(field, name, "a technique listed under search.techniques")
            if not search.techniques[name].optional:
                raise ConfigError(field, name, "an optional technique (one that can be off)")
            if name in seen:
                raise ConfigError(field, name, f"a technique in one group only (also in exclusive[{seen[name]}])")
            seen[name] = i


def _pydantic_error(exc: ValidationError, source: str | None) -> ConfigError:
    error = exc.errors()[0]
    loc = [str(p) for p in error["loc"] if not str(p).startswith(("function-", "union["))]
    # Drop pydantic's union-branch names (RangeSpec, bool, ...) from the path.
    loc = [p for p in loc if p not in ("RangeSpec", "ChoiceSpec", "bool", "int", "float", "str")]
    field = ".".join(loc) or "pipeline"
    field = field.replace(".params.", ".")
    cause = error.get("ctx", {}).get("error")
    message = str(cause) if cause else error["msg"]
    if error["type"] == "extra_forbidden":
        message = "no such field (unknown key)"
    elif error["type"] == "missing":
        message = "a value (the field is required)"
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.replace(prefix, "")
    return ConfigError(field, error.get("input"), message[0].lower() + message[1:] if message else message, source)


def parse_pipeline(data: Any, source: str | None = None) -> PipelineConfig:
    """Validates a pipeline given as a mapping."""
    if not isinstance(data, dict):
        raise ConfigError("pipeline", data, "a mapping at the top of the file", source)
    try:
        return PipelineConfig.model_validate(data)
    except ConfigError as exc:
        raise ConfigError(exc.field, exc.value, exc.expected, source) from None
    except ValidationError as exc:
        raw = exc.errors()[0].get("ctx", {}).get("error")
        if isinstance(raw, ConfigError):
            raise ConfigError(raw.field, raw.value, raw.expected, source) from None
        raise _pydantic_error(exc, source) from None


def load_pipeline(path: str | Path) -> PipelineConfig:
    """Reads and validates a pipeline YAML file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("pipeline", str(path), "an existing YAML file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError("pipeline", str(path), f"valid YAML ({exc})") from None
    return parse_pipeline(data, source=str(path))
