"""Dataset names, importable without TensorFlow (config validation uses them).

``DataError`` is re-exported from ``kreg.lab.errors`` (one class for every
data problem) so ``from kreg.lab.data.names import DataError`` keeps working.
"""

from __future__ import annotations

from kreg.lab.errors import DataError

__all__ = ["DataError", "PACKAGED_MODALITY", "PACKAGED_NAMES", "TFDS_PREFIX", "available_datasets",
           "is_known_dataset"]

PACKAGED_NAMES = ("breast_cancer", "digits", "mnist1d", "wine")
TFDS_PREFIX = "tfds:"

# Modality of the packaged datasets, known before any data is loaded.
PACKAGED_MODALITY = {
    "breast_cancer": "tabular",
    "digits": "image",
    "mnist1d": "sequence",
    "wine": "tabular",
}


def available_datasets() -> list[str]:
    """Names ``load_splits`` accepts without the ``tfds:`` prefix."""
    return list(PACKAGED_NAMES)


def is_known_dataset(name: str) -> bool:
    """A packaged name, or ``"tfds:<name>"`` for any tensorflow-datasets name."""
    return isinstance(name, str) and (
        name in PACKAGED_NAMES or (name.startswith(TFDS_PREFIX) and len(name) > len(TFDS_PREFIX))
    )
