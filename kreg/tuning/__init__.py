"""The search: keras-tuner's hp -> RegularizationPlan -> trial -> MLflow."""

from kreg.tuning.oracles import make_oracle
from kreg.tuning.oracles import objective_for
from kreg.tuning.space import plan_from_hp
from kreg.tuning.trial import TrialRunner
from kreg.tuning.tuner import KregTuner

__all__ = [
    "KregTuner",
    "TrialRunner",
    "make_oracle",
    "objective_for",
    "plan_from_hp",
]
