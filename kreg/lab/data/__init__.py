"""The lab's data layer: any source -> checked train / validation / test splits.

Sources: ``from_arrays`` (and ``from_npz``), ``from_csv``, ``from_datasets``
(``tf.data``, streamed), ``from_tfds`` / ``load_splits`` (tfds and the
packaged datasets), ``from_loader`` (``"module:function"``), and
``resolve_data``, which picks one. Importing this package does not import
TensorFlow (config validation imports ``names``); the packaged tfds builders
live in ``kreg.lab.data.packaged``.
"""

from kreg.lab.data.arrays import from_arrays
from kreg.lab.data.arrays import from_npz
from kreg.lab.data.catalog import from_tfds
from kreg.lab.data.catalog import load_splits
from kreg.lab.data.loader import from_loader
from kreg.lab.data.names import available_datasets
from kreg.lab.data.names import is_known_dataset
from kreg.lab.data.resolve import resolve_data
from kreg.lab.data.splits import DatasetSplits
from kreg.lab.data.splits import InputSpec
from kreg.lab.data.splits import Standardization
from kreg.lab.data.stream import StreamSplits
from kreg.lab.data.stream import from_datasets
from kreg.lab.data.tables import TableEncoder
from kreg.lab.data.tables import from_csv
from kreg.lab.errors import DataError

__all__ = [
    "DataError",
    "DatasetSplits",
    "InputSpec",
    "Standardization",
    "StreamSplits",
    "TableEncoder",
    "available_datasets",
    "from_arrays",
    "from_csv",
    "from_datasets",
    "from_loader",
    "from_npz",
    "from_tfds",
    "is_known_dataset",
    "load_splits",
    "resolve_data",
]
