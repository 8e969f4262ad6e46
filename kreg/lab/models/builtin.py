"""kreg's built-in model builders by name, as a pipeline's ``model.type`` names them.

The names are importable without Keras (config validation reads them); the
builders load on first use.
"""

from __future__ import annotations

from kreg import _validation as v

MODEL_TYPES = ("mlp", "cnn1d", "cnn2d")


def build_model(model_type: str, spec, plan=None, *, seed: int = 0, **capacity):
    """Builds ``model_type`` ("mlp", "cnn1d", "cnn2d") for ``spec`` with ``plan``.

    ``capacity`` holds the builder's size arguments (``width``, ``depth``, ...).
    """
    from kreg.lab.models.cnn import build_cnn1d, build_cnn2d
    from kreg.lab.models.mlp import build_mlp

    v.check_choice("model.type", model_type, MODEL_TYPES)
    builders = {"mlp": build_mlp, "cnn1d": build_cnn1d, "cnn2d": build_cnn2d}
    return builders[model_type](spec, plan, seed=seed, **capacity)
