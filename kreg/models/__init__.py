"""Model builders: an input spec, a capacity and a plan in, a Keras model out.

The public face of ``kreg.lab.models``. Builders never see keras-tuner's
``hp``; the search space turns ``hp`` into a ``RegularizationPlan`` first.
"""

from kreg.lab.models.builtin import MODEL_TYPES
from kreg.lab.models.builtin import build_model
from kreg.lab.models.cnn import build_cnn1d
from kreg.lab.models.cnn import build_cnn2d
from kreg.lab.models.compile import compile_model
from kreg.lab.models.compile import make_optimizer
from kreg.lab.models.mlp import build_mlp

__all__ = [
    "MODEL_TYPES",
    "build_cnn1d",
    "build_cnn2d",
    "build_mlp",
    "build_model",
    "compile_model",
    "make_optimizer",
]
