"""The one registry of regularization techniques the lab can search.

Each entry says, as plain data, everything the rest of the lab asks about a
technique: its parameters (kind, default), what it acts on (the model's
structure, the loss, the optimizer, the data, the training procedure, or a
setting that is tuned but never switched off), which data modalities and
tasks it fits, what part of a model it needs, and which direction of its
main parameter regularizes more. Validation, the plan, the search space, the
plan's description and the config all read it; how a technique changes a
model lives in exactly one apply function (``kreg.lab.apply`` for the
structure, ``kreg.lab.task`` for the loss, ``kreg.lab.trial.procedures`` for
optimizer, data and training).

Adding a technique: one entry here, one apply function there.

Importable without Keras (config validation reads it).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

REQUIRED = object()  # a parameter with no default

# Parameter kinds: how a value is checked.
#   strength: float >= 0     rate: float in [0, 1)     ratio: float in [0, 1]
#   count: integer >= 1      positive: float > 0       bool: True / False
KIND_EXPECTED = {
    "strength": "a non-negative float",
    "rate": "a float between 0 and 1 (exclusive)",
    "ratio": "a float between 0 and 1",
    "count": "a positive integer",
    "positive": "a positive float",
    "bool": "a boolean",
}

# What a technique acts on.
ACTS_ON = ("model", "loss", "optimizer", "data", "training", "setting")
MODALITIES = ("tabular", "sequence", "image")
TASKS = ("classification", "regression")


def kind_problem(kind: str, value: Any) -> str | None:
    """None when ``value`` is valid for the parameter kind, else what is expected."""
    if kind == "bool":
        return None if isinstance(value, bool) else KIND_EXPECTED[kind]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return KIND_EXPECTED[kind]
    ok = {
        "count": lambda x: float(x).is_integer() and x >= 1,
        "strength": lambda x: x >= 0,
        "positive": lambda x: x > 0,
        "rate": lambda x: 0 <= x < 1,
        "ratio": lambda x: 0 <= x <= 1,
    }[kind](value)
    return None if ok else KIND_EXPECTED[kind]


def coerce(kind: str, value: Any):
    """A checked value in its canonical Python type (int for counts)."""
    if kind == "count":
        return int(value)
    if kind == "bool":
        return bool(value)
    return float(value)


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    kind: str
    default: Any = REQUIRED

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclasses.dataclass(frozen=True)
class Technique:
    """One searchable technique, as data.

    Attributes:
        name: The name in plans, YAML and hyperparameters (``l2``, ``augment_shift``).
        params: Its parameters; the first is the "strength" a shorthand range sets.
        acts_on: ``model``, ``loss``, ``optimizer``, ``data``, ``training`` or ``setting``.
        summary: One line for docs and ``kreg validate``.
        needs: The part of a model it goes into (``"conv"``, ``"hidden_dense"``,
            ``"kernel"``, ``"input"``), checked when the plan is applied.
        builtin_models: The built-in model types that have that part (None: all).
        modalities: Data modalities it fits (None: all).
        tasks: Tasks it fits.
        stronger: ``+1`` when a larger first parameter regularizes more, ``-1``
            when a smaller one does (patience), ``0`` when it has no such order.
    """

    name: str
    params: tuple[Param, ...]
    acts_on: str
    summary: str
    needs: str | None = None
    builtin_models: tuple[str, ...] | None = None
    modalities: tuple[str, ...] | None = None
    tasks: tuple[str, ...] = TASKS
    stronger: int = 1

    @property
    def is_setting(self) -> bool:
        return self.acts_on == "setting"

    @property
    def is_flag(self) -> bool:
        return not self.params

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def augmentation(self) -> str | None:
        """``"shift"`` for ``augment_shift``; None for other techniques."""
        return self.name[len("augment_"):] if self.name.startswith("augment_") else None


def _t(name, params, acts_on, summary, **kw) -> Technique:
    return Technique(name, tuple(Param(*p) for p in params), acts_on, summary, **kw)


_CONV_MODELS = ("cnn1d", "cnn2d")
_SEQ, _TAB, _IMG = ("sequence",), ("tabular",), ("image",)
_CLS = ("classification",)

# Augmentations: (name, kind of its strength, modalities, tasks, summary).
_AUGMENTATIONS = (
    ("shift", "rate", _SEQ, TASKS, "circular shift by up to this fraction of the length"),
    ("time_scale", "rate", _SEQ, TASKS, "stretch or squeeze time by up to this fraction"),
    ("time_warp", "strength", _SEQ, TASKS, "smooth random time warp (std of the local speed)"),
    ("jitter", "strength", _SEQ + _TAB, TASKS, "Gaussian jitter of the (standardized) values"),
    ("magnitude_scale", "strength", _SEQ + _TAB, TASKS, "random scale of the values (std of the factor)"),
    ("feature_dropout", "rate", _TAB, TASKS, "zero whole features with this probability"),
    ("swap_noise", "rate", _TAB, TASKS, "swap a value with another row's, with this probability"),
    ("flip", "strength", _IMG, TASKS, "horizontal flips (any strength > 0)"),
    ("rotation", "strength", _IMG, TASKS, "random rotation (fraction of a full turn)"),
    ("zoom", "strength", _IMG, TASKS, "random zoom"),
    ("translation", "strength", _IMG, TASKS, "random translation (fraction of the size)"),
    ("contrast", "strength", _IMG, TASKS, "random contrast"),
    ("brightness", "strength", _IMG, TASKS, "random brightness"),
    ("mixup", "strength", MODALITIES, _CLS, "MixUp of examples and labels (Beta alpha), in the data pipeline"),
    ("cutmix", "strength", _IMG, _CLS, "CutMix of image patches and labels (Beta alpha), in the data pipeline"),
)
MIXING = ("mixup", "cutmix")

_ENTRIES = (
    _t("l1", [("strength", "strength")], "model", "L1 penalty on every kernel", needs="kernel"),
    _t("l2", [("strength", "strength")], "model", "L2 penalty on every kernel", needs="kernel"),
    _t("elastic_net", [("alpha", "strength"), ("l1_ratio", "ratio", 0.5)], "model",
       "elastic net on every kernel, scikit-learn's alpha and l1_ratio", needs="kernel"),
    _t("group_lasso", [("strength", "strength")], "model",
       "group lasso on hidden kernels (zeroes whole units / filters)", needs="kernel"),
    _t("proximal_l1", [("alpha", "strength")], "model",
       "L1 by a proximal step after each update (exact zeros)", needs="kernel"),
    _t("dropout", [("rate", "rate")], "model", "dropout after hidden dense blocks", needs="hidden_dense"),
    _t("spatial_dropout", [("rate", "rate")], "model", "spatial dropout after convolution blocks",
       needs="conv", builtin_models=_CONV_MODELS),
    _t("drop_block", [("rate", "rate"), ("block_size", "count", 3)], "model",
       "DropBlock after convolution blocks", needs="conv", builtin_models=_CONV_MODELS),
    _t("drop_connect", [("rate", "rate")], "model", "DropConnect (dropout on weights) of hidden dense layers",
       needs="hidden_dense", builtin_models=("mlp",)),
    _t("input_noise", [("stddev", "strength")], "model", "Gaussian noise on the (standardized) input",
       needs="input"),
    _t("weight_decay", [("strength", "strength")], "optimizer", "decoupled weight decay of the optimizer"),
    _t("label_smoothing", [("epsilon", "rate")], "loss", "label smoothing in the cross-entropy", tasks=_CLS),
    _t("confidence_penalty", [("beta", "strength")], "loss",
       "minus beta times the entropy of the prediction", tasks=_CLS),
    _t("batch_norm", [], "model", "batch normalization in every hidden block", stronger=0),
    _t("early_stopping", [("patience", "count", 10), ("restore_best", "bool", True)], "training",
       "stop when the objective stops improving", stronger=-1),
    _t("batch_size", [("value", "count")], "setting", "mini-batch size (small batches regularize)",
       stronger=-1),
    _t("learning_rate", [("value", "positive")], "setting", "learning rate", stronger=0),
    *(_t(f"augment_{name}", [("strength", kind)], "data" if name in MIXING else "model", summary,
         needs=None if name in MIXING else "input", modalities=modalities, tasks=tasks)
      for name, kind, modalities, tasks, summary in _AUGMENTATIONS),
    _t("schedule", [("warmup", "ratio", 0.2), ("off_last", "rate", 0.0)], "training",
       "ramp every rate and penalty in over the warm-up, off for the last fraction", stronger=0),
    _t("swa", [("start", "rate", 0.75)], "training",
       "stochastic weight averaging from this fraction of the epochs", stronger=-1),
    _t("sam", [("rho", "positive")], "training", "sharpness-aware minimization (radius rho)"),
    _t("ensemble", [("members", "count")], "training", "bagged ensemble of this many members"),
)

REGISTRY: dict[str, Technique] = {t.name: t for t in _ENTRIES}
SETTINGS = tuple(name for name, t in REGISTRY.items() if t.is_setting)
AUGMENTATIONS = tuple(t.augmentation for t in _ENTRIES if t.augmentation)


def get(name: str) -> Technique:
    """The registry entry for ``name``; a ValueError listing the known names otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        from kreg import _validation as v

        raise v.invalid("technique", "one of " + ", ".join(sorted(REGISTRY)), name) from None


def for_modality(modality: str) -> tuple[str, ...]:
    """The augmentation names that fit ``modality`` data."""
    return tuple(t.augmentation for t in _ENTRIES if t.augmentation and modality in (t.modalities or MODALITIES))


def fits(name: str, *, modality: str | None = None, task: str | None = None,
         builtin_model: str | None = None) -> str | None:
    """None when the technique fits, else what it would need (for a ConfigError's "Expected ...")."""
    t = get(name)
    if modality and t.modalities and modality not in t.modalities:
        return f"a technique for {' or '.join(t.modalities)} data (the data is {modality})"
    if task and task not in t.tasks:
        return f"a technique for {' or '.join(t.tasks)} (the task is {task})"
    if builtin_model and t.builtin_models and builtin_model not in t.builtin_models:
        return f"a technique that applies to model.type={builtin_model} ({name} needs {', '.join(t.builtin_models)})"
    return None
