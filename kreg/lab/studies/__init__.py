"""The lab's studies: claims of the seeds, measured on the user's own model and data.

``kreg.study(kind, model, data, plan={...}, ...)`` or ``kreg study KIND
[PIPELINE]``. Each study is one MLflow parent run (``kreg.study`` tag) with a
nested run per point it trains, its plot(s) as artifacts, its figures as
metrics and a verdict: whether the claim held on this model and data.
"""

from __future__ import annotations

from kreg.lab.studies.base import Study, StudyResult, run_study
from kreg.lab.studies.bias_variance import BiasVariance
from kreg.lab.studies.capacity_curve import CapacityCurve
from kreg.lab.studies.dropout_inference import DropoutInference
from kreg.lab.studies.early_stopping_l2 import EarlyStoppingL2
from kreg.lab.studies.ensemble_size import EnsembleSize
from kreg.lab.studies.flat_minima import FlatMinima
from kreg.lab.studies.label_smoothing import LabelSmoothing
from kreg.lab.studies.learning_curve import LearningCurve
from kreg.lab.studies.noise_as_l2 import NoiseAsL2
from kreg.lab.studies.sparsity_paths import SparsityPaths
from kreg.lab.studies.validation_curve import ValidationCurve

STUDIES: dict[str, Study] = {s.kind: s for s in (LearningCurve(), EnsembleSize(), NoiseAsL2(), DropoutInference(),
                                                     LabelSmoothing(), SparsityPaths(), EarlyStoppingL2(),
                                                     FlatMinima(), CapacityCurve(), BiasVariance(),
                                                     ValidationCurve())}


def study(kind: str, model="mlp", data="digits", **kwargs) -> StudyResult:
    """Runs the study ``kind`` (see ``STUDIES``) on ``model`` and ``data``; returns its ``StudyResult``.

    ``model`` and ``data`` are what ``kreg.tune`` takes; ``plan`` is a dict of
    fixed techniques to compare with the baseline (``{"dropout": 0.3}``);
    ``epochs``, ``batch_size``, ``learning_rate``, ``optimizer``, ``seed``,
    ``model_args``, ``tracking_uri``, ``experiment`` (default
    ``kreg-studies``), ``verbose``; the rest are the study's own options.
    """
    from kreg.lab.errors import ConfigError

    if kind not in STUDIES:
        raise ConfigError("study", kind, f"one of {', '.join(sorted(STUDIES))}")
    return run_study(STUDIES[kind], model, data, **kwargs)


__all__ = ["STUDIES", "Study", "StudyResult", "study"]
