"""Monte Carlo dropout: dropout kept on at inference, and predictions with spread."""

from __future__ import annotations

import keras
import numpy as np

from kreg import _validation as v
from kreg.layers.scheduled import ScheduledDropout


@keras.saving.register_keras_serializable(package="kreg")
class MCDropout(ScheduledDropout):
    """Dropout that stays on at inference, for Monte Carlo predictions.

    Averaging several stochastic forward passes approximates the predictive
    distribution of a Bayesian network; their spread is an uncertainty
    estimate. Use ``kreg.predict_mc`` to get both.

    Args:
        rate: As in ``keras.layers.Dropout``; schedulable (assign
            ``layer.rate``, e.g. to sweep the rate used at inference without
            rebuilding). seed: Integer seed.

    Example:
        >>> mean, std = kreg.predict_mc(model, x, samples=30)

    References:
        Gal and Ghahramani, "Dropout as a Bayesian approximation", ICML 2016.
    """

    def call(self, inputs, training=None):
        return super().call(inputs, training=True)


def predict_mc(model, x, samples=30, batch_size=None):
    """Mean and standard deviation of ``samples`` stochastic predictions.

    Args:
        model: A Keras model containing ``MCDropout`` layers (other layers
            run in inference mode).
        x: Input data, as for ``model.predict``.
        samples: Number of forward passes, a positive integer. Default 30.
        batch_size: As in ``model.predict``.

    Returns:
        ``(mean, std)`` NumPy arrays of the prediction's shape.
    """
    samples = v.check_positive_int("samples", samples)
    outputs = np.stack([model.predict(x, batch_size=batch_size, verbose=0) for _ in range(samples)])
    return outputs.mean(axis=0), outputs.std(axis=0)
