"""A trained model's inference outputs over in-memory inputs (the refit and the studies read them)."""

from __future__ import annotations

import numpy as np


def inference_outputs(model, x, batch: int = 1024) -> np.ndarray:
    """The model's inference outputs, batch by batch (``predict`` would retrace for every new model)."""
    import keras  # here, not at import: `kreg study` refuses bad input before Keras loads

    return np.concatenate([keras.ops.convert_to_numpy(model(x[i:i + batch], training=False))
                           for i in range(0, len(x), batch)])
