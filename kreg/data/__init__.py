"""Datasets through tensorflow-datasets, split deterministically."""

from kreg.data.builders import BreastCancer
from kreg.data.builders import Digits
from kreg.data.builders import Mnist1d
from kreg.data.builders import Wine
from kreg.data.splits import DatasetSplits
from kreg.data.splits import InputSpec
from kreg.data.names import DataError
from kreg.data.names import available_datasets
from kreg.data.names import is_known_dataset
from kreg.data.splits import load_splits

__all__ = [
    "BreastCancer",
    "DataError",
    "DatasetSplits",
    "Digits",
    "InputSpec",
    "Mnist1d",
    "Wine",
    "available_datasets",
    "is_known_dataset",
    "load_splits",
]
