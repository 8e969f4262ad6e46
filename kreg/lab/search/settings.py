"""The settings of a search, validated the same way from Python and from YAML.

``kreg.tune(...)``'s keyword arguments and a pipeline file's ``training``,
``search`` and ``monitor`` sections build these objects; a bad value raises
a ``ConfigError`` naming the field before anything runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, ValidationError, field_validator,
                      model_validator)

from kreg.lab.errors import ConfigError


def _not_text_or_bool(expected: str):
    """Before pydantic's own (lax) number check: ``True`` is not 1 and ``"3"`` is not 3 (``max_trials=True``
    ran one trial, ``epochs="3"`` three epochs). NumPy integers and floats stay welcome."""

    def check(value):
        if isinstance(value, (bool, str, bytes)) or type(value).__name__ == "bool_":
            raise ValueError(f"{expected} (a {type(value).__name__} is not a number)")
        return value

    return BeforeValidator(check)


Int = Annotated[int, _not_text_or_bool("an integer")]
Float = Annotated[float, _not_text_or_bool("a number")]


def _auto_or_bool(value):
    """``"auto"``, ``true`` or ``false``; 1 or ``"yes"`` are not switches."""
    if (isinstance(value, str) and value == "auto") or isinstance(value, bool):
        return value
    raise ValueError("'auto', true or false")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Training(Strict):
    """How every trial trains, unless its plan tunes a setting."""

    epochs: Int = Field(default=30, ge=1)
    batch_size: Int | None = Field(default=None, ge=1)  # None: from the training set's size (search.defaults)
    learning_rate: Float = Field(default=1e-3, gt=0)
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    # Batch-norm statistics re-estimated with the final weights (``kreg.training.recompute_batch_norm_statistics``)
    # before each validation and at the end of training: "auto" (on when the model has BatchNormalization), or off.
    precise_bn: Annotated[Literal["auto", True, False], BeforeValidator(_auto_or_bool)] = "auto"

    def settings(self) -> dict:
        """The values of the tunable settings, for the plan and the hyperparameters' defaults."""
        return {"batch_size": self.batch_size, "learning_rate": self.learning_rate}


class CrossValidation(Strict):
    """``search.cv``: each trial trains on ``folds`` folds of the pooled training + validation data,
    ``repeats`` times with new fold assignments; the objective is the mean over them.

    ``scheme``: ``stratified`` (classification), ``kfold`` (shuffled folds), ``forward`` (forward
    chaining for time-ordered data: no fold trains on its future) or ``auto`` (stratified for
    classification, kfold otherwise).
    """

    folds: Int = Field(default=5, ge=2)
    repeats: Int = Field(default=1, ge=1)
    scheme: Literal["auto", "stratified", "kfold", "forward"] = "auto"

    @model_validator(mode="after")
    def _one_order(self):
        if self.scheme == "forward" and self.repeats != 1:
            raise ValueError("repeats: 1 with the forward scheme (time has one order)")
        return self

    @property
    def trainings(self) -> int:
        return self.folds * self.repeats


class Pruning(Strict):
    """``search.prune``: stop trials whose validation curve says they will not win (``kreg.lab.search.pruning``).

    ``rule``: ``median`` (default), ``asha`` or ``none``. The median rule waits for ``warmup_trials``
    completed trials and judges a trial only after ``warmup_epochs`` epochs (default: a third of the
    epochs: regularized trials learn slower at first, and an early verdict would prune them for it);
    ASHA judges at rungs of ``min_epochs * eta**k`` epochs. A cross-validated trial is judged by the
    same rule on each fold's curve (against the ended trials' curves on that fold), and across folds by
    a paired t-test against the incumbent.
    """

    rule: Literal["median", "asha", "none"] = "median"
    warmup_trials: Int = Field(default=5, ge=1)
    warmup_epochs: Int | None = Field(default=None, ge=0)
    min_epochs: Int = Field(default=1, ge=1)
    eta: Int = Field(default=3, ge=2)


DEFAULT_MAX_TRIALS = 10


class SearchSettings(Strict):
    """The tuner, the budget, what is optimized, how a trial is scored and how the answer is chosen.

    ``cv`` scores each trial by cross-validation (None: the holdout validation split; ``"auto"``, the
    default: folds when the validation split would be small, see ``kreg.lab.search.defaults``);
    ``select`` picks the answer: ``best`` (the best objective) or ``one_se`` (the most regularized
    trial whose objective is within one standard error of the best; ``"auto"``: one_se with folds);
    ``refit`` trains the chosen plan (and the baseline) once more on training + validation and tests it.

    ``budget`` (seconds; ``"20m"`` in YAML and Python) bounds the whole search's wall time, the refit
    included (``kreg.lab.search.budget``); with a budget, ``max_trials`` is optional.
    """

    tuner: Literal["random", "bayesian", "hyperband", "grid"] = "bayesian"
    # None: 10 trials, or as many as the budget holds when there is one.
    max_trials: Int | None = Field(default=None, ge=1)
    # Seconds the whole search may take (``"20m"``, ``"1h30m"``, ``"90s"`` or a number): see ``budget``.
    budget: Float | None = Field(default=None, gt=0)
    # val_<metric of the task> (val_accuracy, val_loss, val_mae, ...) or gap_penalized;
    # None: the task's default (val_accuracy for classification, val_loss for regression).
    objective: str | None = Field(default=None, pattern=r"^(val_[a-z0-9_]+|gap_penalized)$")
    gap_penalty: Float = Field(default=1.0, ge=0)
    max_consecutive_failed_trials: Int = Field(default=3, ge=1)
    hyperband_factor: Int = Field(default=3, ge=2)
    initial_points: Int | None = Field(default=None, ge=1)
    # "auto": folds when the holdout validation split is small, else the holdout (kreg.lab.search.defaults)
    cv: CrossValidation | Literal["auto"] | None = "auto"
    # "auto": one_se whenever there are folds, else best
    select: Literal["auto", "best", "one_se"] = "auto"
    refit: StrictBool = True
    prune: Pruning = Field(default_factory=Pruning)

    @property
    def trial_limit(self) -> int | None:
        """Trials at most: ``max_trials``, else 10 without a budget, else None (the budget decides)."""
        if self.max_trials is not None:
            return self.max_trials
        return None if self.budget is not None else DEFAULT_MAX_TRIALS

    @field_validator("budget", mode="before")
    @classmethod
    def _duration(cls, value):
        from kreg.lab.search.budget import parse_duration

        try:
            return parse_duration(value)
        except ConfigError as exc:
            raise ValueError(exc.expected) from None

    @field_validator("prune", mode="before")
    @classmethod
    def _rule_only(cls, value):
        if isinstance(value, str):
            return {"rule": value}  # prune: asha
        return {"rule": "none"} if value is False or value is None else value

    @field_validator("cv", mode="before")
    @classmethod
    def _folds_only(cls, value):
        if isinstance(value, int) and not isinstance(value, bool):
            return {"folds": value}  # cv: 5
        return None if value is False else value


class Sharpness(Strict):
    """``SharpnessProbe`` settings: relative radius, random directions, how often."""

    rho: Float = Field(default=0.05, gt=0)
    samples: Int = Field(default=3, ge=1)
    every: Int = Field(default=5, ge=1)
    adversarial: StrictBool = True


class Monitor(Strict):
    """Figures every trial logs per epoch besides the honest gap.

    ``weights``: weight norms and the fraction of exactly-zero weights
    (``WeightMonitor``); ``sharpness``: the loss rise under weight
    perturbations (``SharpnessProbe``) on the honest-gap training sample,
    off unless set (``true`` for the defaults); ``system_metrics``: the
    trial run's CPU and memory use (MLflow's ``system/*`` metrics, sampled
    every ``system_metrics_interval_s`` seconds; not part of what a resume
    must match).
    """

    weights: StrictBool = True
    sharpness: Sharpness | None = None
    system_metrics: StrictBool = True
    system_metrics_interval_s: Float = Field(default=2.0, gt=0)

    @field_validator("sharpness", mode="before")
    @classmethod
    def _switch(cls, value):
        if value is True:
            return {}
        return None if value is False else value


_BRANCH_NAMES = ("RangeSpec", "ChoiceSpec", "bool", "int", "float", "str", "Sharpness", "dict[str,any]")


def pydantic_error(exc: ValidationError, source: str | None = None, prefix: str = "") -> ConfigError:
    """The first error of a pydantic validation as a ConfigError naming the field."""
    error = exc.errors()[0]
    loc = [str(p) for p in error["loc"] if not str(p).startswith(("function-", "union["))]
    loc = [p for p in loc if p not in _BRANCH_NAMES]
    field = ".".join(loc) or "pipeline"
    field = f"{prefix}{field}" if prefix and loc else (prefix.rstrip(".") or field)
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, ConfigError):
        return ConfigError(cause.field, cause.value, cause.expected, source)
    message = str(cause) if cause else error["msg"]
    if error["type"] == "extra_forbidden":
        message = "no such field (unknown key)"
    elif error["type"] == "missing":
        message = "a value (the field is required)"
    elif error["type"] == "string_pattern_mismatch" and loc and loc[-1] == "objective":
        message = "val_<metric> (e.g. val_accuracy, val_loss, val_mae) or gap_penalized"
    for cut in ("Value error, ", "Assertion failed, "):
        message = message.replace(cut, "")
    return ConfigError(field, error.get("input"), message[0].lower() + message[1:] if message else message, source)


def build(cls, values: dict[str, Any], *, prefix: str = "", source: str | None = None):
    """``cls(**values)`` with pydantic's errors turned into a ConfigError (field = prefix + name)."""
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        raise pydantic_error(exc, source, prefix) from None
