"""RegularizationPlan: plain data saying which techniques a model gets, and how strong.

The search space turns keras-tuner's ``hp`` into a plan; model builders and
the trainer read the plan and never see ``hp``. A plan serializes to JSON and
back, and flattens to MLflow params. ``None`` (or ``False``) means a technique
is off; the default plan is the unregularized baseline.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from kreg import _validation as v
from kreg.techniques import AUGMENTATIONS


@dataclasses.dataclass(frozen=True)
class ElasticNetSpec:
    """scikit-learn's parametrization: ``alpha`` strength, ``l1_ratio`` mix."""

    alpha: float
    l1_ratio: float = 0.5

    def __post_init__(self):
        v.check_non_negative("elastic_net.alpha", self.alpha)
        v.check_rate("elastic_net.l1_ratio", self.l1_ratio, allow_one=True)


@dataclasses.dataclass(frozen=True)
class DropBlockSpec:
    """DropBlock after convolutions: ``rate`` and ``block_size`` (steps or pixels)."""

    rate: float
    block_size: int = 3

    def __post_init__(self):
        v.check_rate("drop_block.rate", self.rate)
        v.check_positive_int("drop_block.block_size", self.block_size)


@dataclasses.dataclass(frozen=True)
class EarlyStoppingSpec:
    """Stop when the monitored validation metric stops improving."""

    patience: int = 10
    restore_best: bool = True

    def __post_init__(self):
        v.check_positive_int("early_stopping.patience", self.patience)
        if not isinstance(self.restore_best, bool):
            raise v.invalid("early_stopping.restore_best", "a boolean", self.restore_best)


@dataclasses.dataclass(frozen=True)
class SWASpec:
    """Stochastic weight averaging from the fraction ``start`` of the epochs on."""

    start: float = 0.75

    def __post_init__(self):
        v.check_rate("swa.start", self.start)


@dataclasses.dataclass(frozen=True)
class ScheduleSpec:
    """Strength schedule: linear warm-up over the first ``warmup`` fraction of
    the epochs, regularization off for the last ``off_last`` fraction."""

    warmup: float = 0.2
    off_last: float = 0.0

    def __post_init__(self):
        v.check_rate("schedule.warmup", self.warmup, allow_one=True)
        v.check_rate("schedule.off_last", self.off_last)

    def callback_args(self, epochs: int) -> dict:
        """``RegularizationSchedule`` arguments for a training of ``epochs`` epochs."""
        warmup = round(self.warmup * epochs)
        return {"schedule": {"name": "warmup", "warmup_epochs": warmup} if warmup else "constant",
                "off_last": min(epochs - 1, round(self.off_last * epochs))}


@dataclasses.dataclass(frozen=True)
class RegularizationPlan:
    """Which regularization techniques a model gets, and how strong.

    Args:
        l1: L1 weight penalty factor on every kernel. Default None (off).
        l2: L2 weight penalty factor on every kernel. Default None.
        elastic_net: ``ElasticNetSpec`` (sklearn's ``alpha``, ``l1_ratio``).
        group_lasso: ``GroupLasso`` factor on every hidden kernel (zeroes
            whole units / filters). Default None.
        proximal_l1: L1 strength ``alpha`` applied by a proximal step
            (``SoftThreshold(learning_rate * alpha)`` after each update),
            which gives exact zeros. Default None.
        dropout: Dropout rate after hidden dense layers. Default None.
        spatial_dropout: SpatialDropout rate after convolutions. Default None.
        drop_block: ``DropBlockSpec`` after convolutions. Default None.
        drop_connect: DropConnect rate of the MLP's hidden layers (dropout
            on weights). Default None.
        input_noise: Standard deviation of Gaussian noise added to the
            (standardized) input during training. Default None.
        weight_decay: Decoupled weight decay of the optimizer (AdamW).
        label_smoothing: Epsilon of label smoothing in the loss.
        confidence_penalty: ``beta`` of the confidence penalty (minus beta
            times the entropy of the prediction, Pereyra et al. 2017).
        batch_norm: Batch normalization after every hidden layer. Default False.
        early_stopping: ``EarlyStoppingSpec`` (patience, restore best weights).
        batch_size: Mini-batch size (small batches regularize implicitly);
            None keeps the pipeline's default.
        learning_rate: Learning rate; None keeps the pipeline's default.
        augmentation: Mapping from augmentation name to strength, e.g.
            ``{"shift": 0.2, "time_scale": 0.1}`` for sequences or
            ``{"rotation": 0.1, "zoom": 0.1}`` for images.
        schedule: ``ScheduleSpec``: ramp dropout-type rates, input noise and
            weight penalties (warm-up, switch-off at the end). Default None.
        swa: ``SWASpec``: stochastic weight averaging over the late epochs
            (batch-norm statistics recomputed). Default None.
        sam: Radius ``rho`` of sharpness-aware minimization. Default None.
        ensemble: Number of bagged members (the trial's model plus
            ``ensemble - 1`` trained on bootstrap resamples); the trial's
            figures are the ensemble's. Default None (a single model).

    Example:
        >>> plan = RegularizationPlan(l2=1e-4, dropout=0.2)
        >>> RegularizationPlan.from_json(plan.to_json()) == plan
        True
    """

    l1: float | None = None
    l2: float | None = None
    elastic_net: ElasticNetSpec | None = None
    group_lasso: float | None = None
    proximal_l1: float | None = None
    dropout: float | None = None
    spatial_dropout: float | None = None
    drop_block: DropBlockSpec | None = None
    drop_connect: float | None = None
    input_noise: float | None = None
    weight_decay: float | None = None
    label_smoothing: float | None = None
    confidence_penalty: float | None = None
    batch_norm: bool = False
    early_stopping: EarlyStoppingSpec | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    augmentation: dict = dataclasses.field(default_factory=dict)
    schedule: ScheduleSpec | None = None
    swa: SWASpec | None = None
    sam: float | None = None
    ensemble: int | None = None

    def __post_init__(self):
        for name in ("l1", "l2", "input_noise", "weight_decay", "group_lasso", "proximal_l1",
                     "confidence_penalty"):
            value = getattr(self, name)
            if value is not None:
                v.check_non_negative(name, value)
        for name in ("dropout", "spatial_dropout", "label_smoothing", "drop_connect"):
            value = getattr(self, name)
            if value is not None:
                v.check_rate(name, value)
        if not isinstance(self.batch_norm, bool):
            raise v.invalid("batch_norm", "a boolean", self.batch_norm)
        if self.batch_size is not None:
            v.check_positive_int("batch_size", self.batch_size)
        if self.learning_rate is not None:
            v.check_positive("learning_rate", self.learning_rate)
        if self.sam is not None:
            v.check_positive("sam", self.sam)
        if self.ensemble is not None:
            v.check_positive_int("ensemble", self.ensemble)
        if not isinstance(self.augmentation, dict):
            raise v.invalid("augmentation", "a mapping of augmentation name to strength", self.augmentation)
        for name, strength in self.augmentation.items():
            v.check_choice("augmentation", name, AUGMENTATIONS)
            v.check_non_negative(f"augmentation.{name}", strength)
        for name, cls in (("elastic_net", ElasticNetSpec), ("early_stopping", EarlyStoppingSpec),
                          ("drop_block", DropBlockSpec), ("schedule", ScheduleSpec), ("swa", SWASpec)):
            value = getattr(self, name)
            if value is not None and not isinstance(value, cls):
                raise v.invalid(name, f"None or a {cls.__name__}", value)

    # ----------------------------------------------------------------- views
    def active_techniques(self) -> list[str]:
        """Names of the techniques switched on, in a stable order."""
        names = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in ("batch_size", "learning_rate"):
                continue  # optimization settings, present in every model
            if field.name == "augmentation":
                names += [f"augment_{k}" for k, s in sorted(value.items()) if s]
            elif field.name == "ensemble" and (value or 1) < 2:
                continue  # one member is a single model
            elif value not in (None, False, 0, 0.0):
                names.append(field.name)
        return names

    @property
    def is_baseline(self) -> bool:
        return not self.active_techniques()

    def describe(self) -> str:
        """Short human-readable summary, e.g. ``l2=1e-04, dropout=0.2``."""

        def fmt(value):
            return f"{value:.3g}" if isinstance(value, float) else str(value)

        parts = []
        for name in self.active_techniques():
            if name.startswith("augment_"):
                parts.append(f"{name}={fmt(self.augmentation[name[len('augment_'):]])}")
            elif name == "elastic_net":
                parts.append(f"elastic_net(alpha={fmt(self.elastic_net.alpha)}, l1_ratio={fmt(self.elastic_net.l1_ratio)})")
            elif name == "drop_block":
                parts.append(f"drop_block(rate={fmt(self.drop_block.rate)}, block_size={self.drop_block.block_size})")
            elif name == "early_stopping":
                restore = ", restore best" if self.early_stopping.restore_best else ""
                parts.append(f"early_stopping(patience={self.early_stopping.patience}{restore})")
            elif name == "batch_norm":
                parts.append("batch_norm")
            elif name == "schedule":
                parts.append(f"schedule(warmup={fmt(self.schedule.warmup)}, off_last={fmt(self.schedule.off_last)})")
            elif name == "swa":
                parts.append(f"swa(start={fmt(self.swa.start)})")
            else:
                parts.append(f"{name}={fmt(getattr(self, name))}")
        return ", ".join(parts) or "baseline (no regularization)"

    # --------------------------------------------------------- serialization
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RegularizationPlan":
        if not isinstance(data, dict):
            raise v.invalid("plan", "a mapping", data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise v.invalid("plan", f"only the keys {', '.join(sorted(known))}", unknown[0])
        data = dict(data)
        if isinstance(data.get("elastic_net"), dict):
            data["elastic_net"] = ElasticNetSpec(**data["elastic_net"])
        if isinstance(data.get("drop_block"), dict):
            data["drop_block"] = DropBlockSpec(**data["drop_block"])
        if isinstance(data.get("early_stopping"), dict):
            data["early_stopping"] = EarlyStoppingSpec(**data["early_stopping"])
        if isinstance(data.get("schedule"), dict):
            data["schedule"] = ScheduleSpec(**data["schedule"])
        if isinstance(data.get("swa"), dict):
            data["swa"] = SWASpec(**data["swa"])
        if data.get("augmentation") is None:
            data["augmentation"] = {}
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "RegularizationPlan":
        return cls.from_dict(json.loads(text))

    def flatten(self, prefix: str = "plan.") -> dict[str, Any]:
        """One level of ``key: scalar`` pairs, e.g. ``plan.elastic_net.alpha``."""
        flat: dict[str, Any] = {}

        def walk(value, key):
            if isinstance(value, dict) and value:
                for k, item in sorted(value.items()):
                    walk(item, f"{key}.{k}")
            elif isinstance(value, dict):
                flat[key] = None
            else:
                flat[key] = value

        for name, value in self.to_dict().items():
            walk(value, f"{prefix}{name}")
        return flat
