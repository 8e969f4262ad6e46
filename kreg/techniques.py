# Temporary: the lab's registry is kreg.lab.techniques (this file goes once every importer is updated).
"""The names of everything a plan can switch on, importable without Keras.

Config validation, the plan and the layers all read these tuples, so a name is
spelled in one place.
"""

# Augmentations by the data they apply to. Each has one strength (0 = off):
# the layer's main argument (see kreg.augment.modality).
SEQUENCE_AUGMENTATIONS = ("shift", "time_scale", "time_warp", "jitter", "magnitude_scale")
TABULAR_AUGMENTATIONS = ("jitter", "magnitude_scale", "feature_dropout", "swap_noise")
IMAGE_AUGMENTATIONS = ("flip", "rotation", "zoom", "translation", "contrast", "brightness")
# Batch-level mixing of examples and labels: applied in the tf.data pipeline
# (the labels change), strength = the Beta distribution's alpha.
MIXING_AUGMENTATIONS = ("mixup", "cutmix")
AUGMENTATIONS_BY_MODALITY = {
    "sequence": SEQUENCE_AUGMENTATIONS + ("mixup",),
    "image": IMAGE_AUGMENTATIONS + MIXING_AUGMENTATIONS,
    "tabular": TABULAR_AUGMENTATIONS + ("mixup",),
}
# Strengths that are fractions or probabilities (checked as rates, < 1); the
# others are any strength >= 0.
AUGMENTATION_KINDS = {"shift": "rate", "time_scale": "rate", "feature_dropout": "rate", "swap_noise": "rate"}
AUGMENTATIONS = tuple(dict.fromkeys(name for names in AUGMENTATIONS_BY_MODALITY.values() for name in names))

MODEL_TYPES = ("mlp", "cnn1d", "cnn2d")

# Parameter kinds: how a value of each parameter is checked.
#   strength: float >= 0        rate: float in [0, 1)     ratio: float in [0, 1]
#   count: integer >= 1         positive: float > 0       bool: True / False
TECHNIQUES = {
    "l1": {"strength": "strength"},
    "l2": {"strength": "strength"},
    "elastic_net": {"alpha": "strength", "l1_ratio": "ratio"},
    "group_lasso": {"strength": "strength"},
    "proximal_l1": {"alpha": "strength"},
    "dropout": {"rate": "rate"},
    "spatial_dropout": {"rate": "rate"},
    "drop_block": {"rate": "rate", "block_size": "count"},
    "drop_connect": {"rate": "rate"},
    "input_noise": {"stddev": "strength"},
    "weight_decay": {"strength": "strength"},
    "label_smoothing": {"epsilon": "rate"},
    "confidence_penalty": {"beta": "strength"},
    "batch_norm": {},
    "early_stopping": {"patience": "count", "restore_best": "bool"},
    "batch_size": {"value": "count"},
    "learning_rate": {"value": "positive"},
    "schedule": {"warmup": "ratio", "off_last": "rate"},
    "swa": {"start": "rate"},
    "sam": {"rho": "positive"},
    "ensemble": {"members": "count"},
    **{f"augment_{name}": {"strength": AUGMENTATION_KINDS.get(name, "strength")} for name in AUGMENTATIONS},
}

# Parameters a technique may leave out of the YAML, and their value then.
PARAM_DEFAULTS = {
    ("elastic_net", "l1_ratio"): 0.5,
    ("early_stopping", "patience"): 10,
    ("early_stopping", "restore_best"): True,
    ("drop_block", "block_size"): 3,
    ("schedule", "warmup"): 0.2,
    ("schedule", "off_last"): 0.0,
    ("swa", "start"): 0.75,
}

# Optimization settings: tuned when listed, never switched off.
SETTINGS = ("batch_size", "learning_rate")

# Models whose layers a technique needs (absent: any model).
NEEDS_MODEL = {
    "spatial_dropout": ("cnn1d", "cnn2d"),
    "drop_block": ("cnn1d", "cnn2d"),
    "drop_connect": ("mlp",),
}


def technique_modalities(name: str) -> tuple | None:
    """The data modalities an augmentation technique applies to, None for other techniques."""
    if not name.startswith("augment_"):
        return None
    aug = name[len("augment_"):]
    return tuple(m for m, names in AUGMENTATIONS_BY_MODALITY.items() if aug in names)
