"""Augmentation layers and stacks, by modality: images, sequences, tabular rows, text, audio."""

import keras

from kreg.augment.audio import RandomBackgroundNoise
from kreg.augment.audio import RandomPitchShift
from kreg.augment.audio import RandomTimeStretch
from kreg.augment.audio import SpecAugment
from kreg.augment.image import image
from kreg.augment.image import image_layers
from kreg.augment.mixing import CutMix
from kreg.augment.mixing import MixUp
from kreg.augment.modality import augmentation_layers
from kreg.augment.modality import mix_batches
from kreg.augment.modality import mixing_layers
from kreg.augment.sequence import RandomShift1D
from kreg.augment.sequence import RandomTimeScale1D
from kreg.augment.sequence import RandomTimeWarp
from kreg.augment.values import RandomFeatureDropout
from kreg.augment.values import RandomJitter
from kreg.augment.values import RandomMagnitudeScale
from kreg.augment.values import SwapNoise

# Text augmentation is TensorFlow ops (strings). Under the TensorFlow backend
# it is imported (and its layers registered for loading) now; under another
# backend on first use, so importing kreg.augment does not load TensorFlow
# (and a model with text layers, which only runs under TensorFlow, does not
# load there).
_TEXT = ("BackTranslation", "RandomDeletion", "RandomInsertion", "RandomSwap",
         "RandomSynonymReplacement", "load_synonyms")


if keras.backend.backend() == "tensorflow":
    from kreg.augment import text  # noqa: F401


def __getattr__(name):
    if name in _TEXT:
        from kreg.augment import text

        return getattr(text, name)
    raise AttributeError(f"module 'kreg.augment' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

__all__ = [
    "BackTranslation",
    "CutMix",
    "MixUp",
    "RandomBackgroundNoise",
    "RandomDeletion",
    "RandomFeatureDropout",
    "RandomInsertion",
    "RandomJitter",
    "RandomMagnitudeScale",
    "RandomPitchShift",
    "RandomShift1D",
    "RandomSwap",
    "RandomSynonymReplacement",
    "RandomTimeScale1D",
    "RandomTimeStretch",
    "RandomTimeWarp",
    "SpecAugment",
    "SwapNoise",
    "augmentation_layers",
    "image",
    "image_layers",
    "load_synonyms",
    "mix_batches",
    "mixing_layers",
]
