"""tensorflow-datasets builders for the datasets that ship inside packages.

Every dataset kreg trains on goes through tensorflow-datasets, so the data
pipeline is the same for packaged data and for any tfds dataset the user has.
None of these builders downloads anything:

- ``mnist1d``: generated from templates in code by the ``mnist1d`` package
  (``make_dataset(get_dataset_args())``): the standard 4000 train / 1000 test
  split, identical to the published data. ``get_dataset()`` is never called: it
  tries a download.
- ``digits``, ``breast_cancer``, ``wine``: scikit-learn's bundled copies. Their
  test split is fixed: digits follows scikit-learn's classic example (first
  half train, second half test, where ``SVC(gamma=0.001)`` scores 97%); the two
  tabular sets hold out a stratified 25% with a fixed seed.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

# The test split of the scikit-learn tabular sets never depends on a run seed.
_FIXED_TEST_SEED = 20201231
_TABULAR_TEST_FRACTION = 0.25


def _examples(x, y):
    for i, (features, label) in enumerate(zip(x, y)):
        yield i, {"x": np.asarray(features, np.float32), "label": int(label)}


def _fixed_stratified_split(x, y):
    from sklearn.model_selection import train_test_split

    return train_test_split(
        x, y, test_size=_TABULAR_TEST_FRACTION, stratify=y, random_state=_FIXED_TEST_SEED
    )


class _PackagedBuilder(tfds.core.GeneratorBasedBuilder):
    """A builder whose examples come from an installed package, offline."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    SHAPE: tuple = ()
    CLASSES: int = 0
    DESCRIPTION = ""
    HOMEPAGE = ""
    CITATION = ""

    def _info(self):
        return self.dataset_info_from_configs(
            description=self.DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {
                    "x": tfds.features.Tensor(shape=self.SHAPE, dtype=np.float32),
                    "label": tfds.features.ClassLabel(num_classes=self.CLASSES),
                }
            ),
            supervised_keys=("x", "label"),
            homepage=self.HOMEPAGE,
            citation=self.CITATION,
        )

    def _load_arrays(self):
        """Returns (x_train, y_train, x_test, y_test) as numpy arrays."""
        raise NotImplementedError

    def _split_generators(self, dl_manager):
        x_train, y_train, x_test, y_test = self._load_arrays()
        return {"train": _examples(x_train, y_train), "test": _examples(x_test, y_test)}

    def _generate_examples(self, *args):  # pragma: no cover - splits yield directly
        raise NotImplementedError


class Mnist1d(_PackagedBuilder):
    """MNIST-1D (Greydanus 2020): 10 classes of 40-step 1D signals."""

    SHAPE = (40, 1)
    CLASSES = 10
    DESCRIPTION = "MNIST-1D, generated offline from the mnist1d package's templates."
    HOMEPAGE = "https://github.com/greydanus/mnist1d"
    CITATION = "Greydanus, Scaling down deep learning, 2020."

    def _load_arrays(self):
        from mnist1d.data import get_dataset_args, make_dataset

        data = make_dataset(get_dataset_args())
        x, x_test = data["x"][..., None], data["x_test"][..., None]
        return x, data["y"], x_test, data["y_test"]


class Digits(_PackagedBuilder):
    """scikit-learn's 8x8 handwritten digits (1797 images), pixels 0-16."""

    SHAPE = (8, 8, 1)
    CLASSES = 10
    DESCRIPTION = "scikit-learn's digits; test split = second half, as in its SVC example."
    HOMEPAGE = "https://scikit-learn.org/stable/datasets/toy_dataset.html"

    def _load_arrays(self):
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = digits.images[..., None]
        half = len(x) // 2
        return x[:half], digits.target[:half], x[half:], digits.target[half:]


class _SklearnTabular(_PackagedBuilder):
    """A scikit-learn tabular set with a fixed stratified 25% test split."""

    LOADER = ""  # name of the sklearn.datasets loader
    HOMEPAGE = "https://scikit-learn.org/stable/datasets/toy_dataset.html"

    def _load_arrays(self):
        import sklearn.datasets

        data = getattr(sklearn.datasets, self.LOADER)()
        x_train, x_test, y_train, y_test = _fixed_stratified_split(data.data, data.target)
        return x_train, y_train, x_test, y_test


class BreastCancer(_SklearnTabular):
    """scikit-learn's Wisconsin breast cancer set: 569 examples, 30 features."""

    SHAPE = (30,)
    CLASSES = 2
    LOADER = "load_breast_cancer"
    DESCRIPTION = "scikit-learn's breast_cancer; fixed stratified 25% test split."


class Wine(_SklearnTabular):
    """scikit-learn's wine recognition set: 178 examples, 13 features, 3 classes."""

    SHAPE = (13,)
    CLASSES = 3
    LOADER = "load_wine"
    DESCRIPTION = "scikit-learn's wine; fixed stratified 25% test split."


PACKAGED = {"mnist1d": Mnist1d, "digits": Digits, "breast_cancer": BreastCancer, "wine": Wine}
