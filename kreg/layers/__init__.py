"""Regularization layers Keras 3 lacks."""

from kreg.layers.mc_dropout import MCDropout
from kreg.layers.mc_dropout import predict_mc
from kreg.layers.scheduled import ScheduledDropout
from kreg.layers.scheduled import ScheduledGaussianNoise
from kreg.layers.scheduled import ScheduledSpatialDropout1D
from kreg.layers.scheduled import ScheduledSpatialDropout2D
from kreg.layers.structured_dropout import DropBlock1D
from kreg.layers.structured_dropout import DropBlock2D
from kreg.layers.structured_dropout import DropConnect
from kreg.layers.structured_dropout import StochasticDepth
from kreg.layers.structured_dropout import drop_path_rates

__all__ = [
    "DropBlock1D",
    "DropBlock2D",
    "DropConnect",
    "MCDropout",
    "ScheduledDropout",
    "ScheduledGaussianNoise",
    "ScheduledSpatialDropout1D",
    "ScheduledSpatialDropout2D",
    "StochasticDepth",
    "drop_path_rates",
    "predict_mc",
]
