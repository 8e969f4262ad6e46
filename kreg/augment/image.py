"""Image augmentation stacks built from Keras' own layers.

kreg does not rewrite Keras' image augmentation; it turns a name/strength
mapping (the form YAML and the search space use) into a stack of them.
"""

from __future__ import annotations

import keras

from kreg import _validation as v

# name -> factory(strength, seed). Strengths are Keras' `factor` arguments,
# except `flip` where any positive strength means "flip horizontally".
_IMAGE_LAYERS = {
    "flip": lambda s, seed: keras.layers.RandomFlip("horizontal", seed=seed),
    "rotation": lambda s, seed: keras.layers.RandomRotation(s, fill_mode="constant", seed=seed),
    "zoom": lambda s, seed: keras.layers.RandomZoom(s, fill_mode="constant", seed=seed),
    "translation": lambda s, seed: keras.layers.RandomTranslation(s, s, fill_mode="constant", seed=seed),
    "contrast": lambda s, seed: keras.layers.RandomContrast(s, value_range=(-3, 3), seed=seed),
    "brightness": lambda s, seed: keras.layers.RandomBrightness(s, value_range=(-3, 3), seed=seed),
}
IMAGE_AUGMENTATIONS = tuple(_IMAGE_LAYERS)


def image_layers(spec: dict, seed: int | None = None) -> list:
    """Keras augmentation layers for a ``{name: strength}`` spec, in a fixed order.

    Strengths of 0 are skipped. ``contrast`` and ``brightness`` assume
    standardized pixels (value range about -3..3), which is what kreg's data
    pipeline yields.
    """
    layers = []
    for offset, name in enumerate(IMAGE_AUGMENTATIONS):
        strength = spec.get(name)
        if not strength:
            continue
        v.check_non_negative(f"augmentation.{name}", strength)
        layer_seed = None if seed is None else seed + offset
        layers.append(_IMAGE_LAYERS[name](float(strength), layer_seed))
    unknown = sorted(set(spec) - set(IMAGE_AUGMENTATIONS))
    if unknown:
        v.check_choice("augmentation", unknown[0], IMAGE_AUGMENTATIONS)
    return layers


def image(spec: dict, seed: int | None = None, name: str = "image_augmentation"):
    """A ``keras.Sequential`` augmentation stack from a name/strength spec.

    Example:
        >>> aug = kreg.augment.image({"rotation": 0.1, "zoom": 0.1}, seed=0)
        >>> aug(np.zeros((2, 8, 8, 1), "float32"), training=True).shape
        (2, 8, 8, 1)
    """
    return keras.Sequential(image_layers(spec, seed), name=name)
