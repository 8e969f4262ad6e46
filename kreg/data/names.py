"""Dataset names, importable without TensorFlow (config validation uses them)."""

class DataError(ValueError):
    """A dataset cannot be loaded as asked (unknown name, not prepared, no test split)."""


PACKAGED_NAMES = ("breast_cancer", "digits", "mnist1d", "wine")
TFDS_PREFIX = "tfds:"


def available_datasets() -> list[str]:
    """Names ``load_splits`` accepts without the ``tfds:`` prefix."""
    return list(PACKAGED_NAMES)


def is_known_dataset(name: str) -> bool:
    return isinstance(name, str) and (
        name in PACKAGED_NAMES or (name.startswith(TFDS_PREFIX) and len(name) > len(TFDS_PREFIX))
    )

# Modality of the packaged datasets, known before any data is loaded.
PACKAGED_MODALITY = {
    "breast_cancer": "tabular",
    "digits": "image",
    "mnist1d": "sequence",
    "wine": "tabular",
}
