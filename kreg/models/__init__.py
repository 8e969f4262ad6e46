"""Model builders: an input spec, a capacity and a plan in, a Keras model out.

Builders never see keras-tuner's ``hp``; the search space turns ``hp`` into a
``RegularizationPlan`` first.
"""

from kreg.models.cnn import build_cnn1d
from kreg.models.cnn import build_cnn2d
from kreg.models.compile import compile_model
from kreg.models.compile import make_optimizer
from kreg.models.mlp import build_mlp
from kreg.models.registry import MODEL_TYPES
from kreg.models.registry import build_model

__all__ = [
    "MODEL_TYPES",
    "build_cnn1d",
    "build_cnn2d",
    "build_mlp",
    "build_model",
    "compile_model",
    "make_optimizer",
]
