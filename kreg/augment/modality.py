"""What a plan's ``augmentation`` mapping means, per modality: layers for the model, mixing for the data.

Every name in ``BY_MODALITY`` has one strength (0 = off); the lab's technique
registry offers them as ``augment_<name>`` (a test pins that both agree). Layer augmentations go into the model after its input (active only
in training); mixing (MixUp, CutMix) changes labels, so it maps the batched
training ``tf.data`` pipeline instead.
"""

from __future__ import annotations

from kreg import _validation as v
from kreg.augment.image import image_layers
from kreg.augment.mixing import CutMix, MixUp
from kreg.augment.sequence import RandomShift1D, RandomTimeScale1D, RandomTimeWarp
from kreg.augment.values import RandomFeatureDropout, RandomJitter, RandomMagnitudeScale, SwapNoise
from kreg.augment.image import IMAGE_AUGMENTATIONS

# name -> factory(strength, seed) for sequences and tabular rows; the strength
# is the layer's main argument.
_LAYERS = {
    "shift": lambda s, seed: RandomShift1D(s, mode="circular", seed=seed),  # fraction of the length
    "time_scale": lambda s, seed: RandomTimeScale1D(s, seed=seed),  # largest relative stretch
    "time_warp": lambda s, seed: RandomTimeWarp(s, seed=seed),  # std of the local speed
    "jitter": lambda s, seed: RandomJitter(s, seed=seed),  # noise std (standardized data)
    "magnitude_scale": lambda s, seed: RandomMagnitudeScale(s, seed=seed),  # std of the factor
    "feature_dropout": lambda s, seed: RandomFeatureDropout(s, seed=seed),  # drop probability
    "swap_noise": lambda s, seed: SwapNoise(s, seed=seed),  # swap probability
}
_MIXING = {"mixup": MixUp, "cutmix": CutMix}
MIXING_AUGMENTATIONS = tuple(_MIXING)
SEQUENCE_AUGMENTATIONS = ("shift", "time_scale", "time_warp", "jitter", "magnitude_scale")
TABULAR_AUGMENTATIONS = ("jitter", "magnitude_scale", "feature_dropout", "swap_noise")
# Which augmentations fit which data: layers in the model, mixing in the data pipeline.
BY_MODALITY = {
    "sequence": SEQUENCE_AUGMENTATIONS + ("mixup",),
    "image": IMAGE_AUGMENTATIONS + MIXING_AUGMENTATIONS,
    "tabular": TABULAR_AUGMENTATIONS + ("mixup",),
}


def _check(modality: str, spec: dict) -> tuple:
    allowed = BY_MODALITY.get(modality)
    if allowed is None:
        v.check_choice("modality", modality, tuple(BY_MODALITY))
    for name, strength in spec.items():
        if strength:
            v.check_choice(f"augmentation for {modality} data", name, allowed)
            v.check_non_negative(f"augmentation.{name}", strength)
    return allowed


def augmentation_layers(modality: str, spec: dict, seed: int | None = None) -> list:
    """Training-only layers for ``spec`` (``{name: strength}``) on ``modality`` data.

    Mixing entries are left out (see ``mixing_layers``). Raises a
    ``ValueError`` naming the augmentation when it does not apply to the
    modality (a rotation for tabular data, say).
    """
    allowed = _check(modality, spec)
    if modality == "image":
        return image_layers({k: s for k, s in spec.items() if k in IMAGE_AUGMENTATIONS}, seed)
    layers = []
    for offset, name in enumerate(allowed):
        if name in _LAYERS and spec.get(name):
            layers.append(_LAYERS[name](float(spec[name]), None if seed is None else seed + offset))
    return layers


def mixing_layers(modality: str, spec: dict, num_classes: int, seed: int | None = None) -> list:
    """The MixUp / CutMix layers ``spec`` switches on (strength = alpha), in that order."""
    _check(modality, spec)
    return [_MIXING[name](float(spec[name]), num_classes=num_classes, seed=None if seed is None else seed + i)
            for i, name in enumerate(MIXING_AUGMENTATIONS) if spec.get(name)]


def mix_batches(dataset, layers: list):
    """Maps a batched ``(x, integer y)`` dataset through the mixing layers.

    One layer mixes every batch; with MixUp and CutMix both on they take
    turns batch by batch (timm switches between them the same way, at
    random), so every example is mixed once, never twice.
    """
    if not layers:
        return dataset
    if len(layers) == 1:
        return dataset.map(layers[0])
    import tensorflow as tf

    def alternate(index, x, y):
        branches = [lambda layer=layer: layer((x, y)) for layer in layers]
        return tf.switch_case(tf.cast(index % len(layers), tf.int32), branches)

    return dataset.enumerate().map(lambda i, batch: alternate(i, *batch))
