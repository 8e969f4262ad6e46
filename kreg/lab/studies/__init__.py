"""The lab's studies: claims of the seeds, measured on the user's own model and data.

``kreg.study(kind, model, data, plan={...}, ...)`` or ``kreg study KIND
[PIPELINE]``. Each study is one MLflow parent run (``kreg.study`` tag) with a
nested run per point it trains, its plot(s) as artifacts, its figures as
metrics and a verdict: whether the claim held on this model and data.

``KINDS`` names every study and where it lives without importing any:
``kreg study --help`` lists them and ``kreg study NOPE`` is refused before
Keras loads. ``STUDIES`` (the study objects) imports them on first use.
"""

from __future__ import annotations

import importlib

# The kinds and where each lives, importable without Keras: `kreg study --help` lists them, and a kind
# that does not exist is refused, before TensorFlow loads. ``STUDIES`` (the study objects) loads on first use.
KINDS: dict[str, str] = {
    "learning_curve": "kreg.lab.studies.learning_curve:LearningCurve",
    "ensemble_size": "kreg.lab.studies.ensemble_size:EnsembleSize",
    "noise_as_l2": "kreg.lab.studies.noise_as_l2:NoiseAsL2",
    "dropout_inference": "kreg.lab.studies.dropout_inference:DropoutInference",
    "label_smoothing": "kreg.lab.studies.label_smoothing:LabelSmoothing",
    "sparsity_paths": "kreg.lab.studies.sparsity_paths:SparsityPaths",
    "early_stopping_l2": "kreg.lab.studies.early_stopping_l2:EarlyStoppingL2",
    "flat_minima": "kreg.lab.studies.flat_minima:FlatMinima",
    "capacity_curve": "kreg.lab.studies.capacity_curve:CapacityCurve",
    "bias_variance": "kreg.lab.studies.bias_variance:BiasVariance",
    "validation_curve": "kreg.lab.studies.validation_curve:ValidationCurve",
}
_BASE = ("Study", "StudyResult", "run_study")


def _studies() -> dict:
    out = {}
    for kind, where in KINDS.items():
        module, name = where.split(":")
        out[kind] = getattr(importlib.import_module(module), name)()
    return out


def __getattr__(name):
    if name == "STUDIES":
        globals()["STUDIES"] = _studies()
        return globals()["STUDIES"]
    if name in _BASE:
        return getattr(importlib.import_module("kreg.lab.studies.base"), name)
    raise AttributeError(f"module 'kreg.lab.studies' has no attribute {name!r}")


def study(kind: str, model="mlp", data="digits", **kwargs) -> StudyResult:
    """Runs the study ``kind`` (see ``STUDIES``) on ``model`` and ``data``; returns its ``StudyResult``.

    ``model`` and ``data`` are what ``kreg.tune`` takes; ``plan`` is a dict of
    fixed techniques to compare with the baseline (``{"dropout": 0.3}``);
    ``epochs``, ``batch_size``, ``learning_rate``, ``optimizer``, ``seed``,
    ``model_args``, ``tracking_uri``, ``experiment`` (default
    ``kreg-studies``), ``verbose``; the rest are the study's own options.
    """
    from kreg.lab.errors import ConfigError

    if kind not in KINDS:
        raise ConfigError("study", kind, f"one of {', '.join(sorted(KINDS))}")
    from kreg.lab.studies.base import run_study

    return run_study(__getattr__("STUDIES")[kind], model, data, **kwargs)


__all__ = ["KINDS", "STUDIES", "Study", "StudyResult", "study"]
