"""Training procedures beyond a plain ``fit``: SAM, ensembles and precise batch-norm statistics."""

from kreg.training.ensemble import Bagging
from kreg.training.ensemble import Ensemble
from kreg.training.ensemble import error_decomposition
from kreg.training.gradients import loss_and_gradients
from kreg.training.precise_bn import BatchNormStatistics
from kreg.training.precise_bn import PreciseBatchNorm
from kreg.training.precise_bn import recompute_batch_norm_statistics
from kreg.training.sam import SAM
from kreg.training.sam import sam_perturbation

__all__ = [
    "Bagging",
    "BatchNormStatistics",
    "Ensemble",
    "PreciseBatchNorm",
    "SAM",
    "error_decomposition",
    "loss_and_gradients",
    "recompute_batch_norm_statistics",
    "sam_perturbation",
]
