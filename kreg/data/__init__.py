"""Your data as checked train / validation / test splits: the public face of ``kreg.lab.data``.

Example:
    >>> splits = kreg.data.from_arrays(x, y, x_test=x_test, y_test=y_test)
    >>> splits = kreg.data.load_splits("mnist1d", seed=0)
"""

from kreg.lab.data import DataError
from kreg.lab.data import DatasetSplits
from kreg.lab.data import InputSpec
from kreg.lab.data import StreamSplits
from kreg.lab.data import available_datasets
from kreg.lab.data import from_arrays
from kreg.lab.data import from_csv
from kreg.lab.data import from_datasets
from kreg.lab.data import from_loader
from kreg.lab.data import from_tfds
from kreg.lab.data import is_known_dataset
from kreg.lab.data import load_splits
from kreg.lab.data.packaged import BreastCancer
from kreg.lab.data.packaged import Digits
from kreg.lab.data.packaged import Mnist1d
from kreg.lab.data.packaged import Wine

__all__ = [
    "BreastCancer",
    "DataError",
    "DatasetSplits",
    "Digits",
    "InputSpec",
    "Mnist1d",
    "StreamSplits",
    "Wine",
    "available_datasets",
    "from_arrays",
    "from_csv",
    "from_datasets",
    "from_loader",
    "from_tfds",
    "is_known_dataset",
    "load_splits",
]
