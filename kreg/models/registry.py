"""Model builders by name, as a pipeline's ``model.type`` names them."""

from __future__ import annotations

from kreg import _validation as v
from kreg.models.cnn import build_cnn1d
from kreg.models.cnn import build_cnn2d
from kreg.models.mlp import build_mlp

from kreg.techniques import MODEL_TYPES

BUILDERS = {"mlp": build_mlp, "cnn1d": build_cnn1d, "cnn2d": build_cnn2d}
assert tuple(BUILDERS) == MODEL_TYPES  # one spelling of the names


def build_model(model_type: str, spec, plan=None, *, seed: int = 0, **capacity):
    """Builds ``model_type`` ("mlp", "cnn1d", "cnn2d") for ``spec`` with ``plan``.

    ``capacity`` holds the builder's size arguments (``width``, ``depth``, ...).
    """
    v.check_choice("model.type", model_type, MODEL_TYPES)
    return BUILDERS[model_type](spec, plan, seed=seed, **capacity)
