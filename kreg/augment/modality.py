"""Which augmentation layers a plan's ``augmentation`` mapping means, per modality."""

from __future__ import annotations

from kreg import _validation as v
from kreg.augment.image import image_layers
from kreg.augment.sequence import RandomShift1D
from kreg.augment.sequence import RandomTimeScale1D
from kreg.techniques import AUGMENTATIONS_BY_MODALITY as BY_MODALITY


def augmentation_layers(modality: str, spec: dict, seed: int | None = None) -> list:
    """Training-only layers for ``spec`` (``{name: strength}``) on ``modality`` data.

    Raises a ``ValueError`` naming the augmentation when it does not apply to
    the modality (a rotation for tabular data, say).
    """
    allowed = BY_MODALITY.get(modality)
    if allowed is None:
        v.check_choice("modality", modality, tuple(BY_MODALITY))
    for name, strength in spec.items():
        if strength:
            v.check_choice(f"augmentation for {modality} data", name, allowed)
    if modality == "image":
        return image_layers(spec, seed)
    layers = []
    if spec.get("shift"):
        shift = float(spec["shift"])
        layers.append(RandomShift1D(shift, mode="circular", seed=seed))
    if spec.get("time_scale"):
        layers.append(RandomTimeScale1D(float(spec["time_scale"]), seed=None if seed is None else seed + 1))
    return layers
