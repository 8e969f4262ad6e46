"""Augmentation layers and stacks, by modality."""

from kreg.augment.image import image
from kreg.augment.image import image_layers
from kreg.augment.modality import augmentation_layers
from kreg.augment.sequence import RandomShift1D
from kreg.augment.sequence import RandomTimeScale1D

__all__ = [
    "RandomShift1D",
    "RandomTimeScale1D",
    "augmentation_layers",
    "image",
    "image_layers",
]
