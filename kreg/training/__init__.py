"""Training procedures beyond a plain ``fit``: SAM and ensembles."""

from kreg.training.ensemble import Bagging
from kreg.training.ensemble import Ensemble
from kreg.training.ensemble import error_decomposition
from kreg.training.gradients import loss_and_gradients
from kreg.training.sam import SAM
from kreg.training.sam import sam_perturbation

__all__ = [
    "Bagging",
    "Ensemble",
    "SAM",
    "error_decomposition",
    "loss_and_gradients",
    "sam_perturbation",
]
