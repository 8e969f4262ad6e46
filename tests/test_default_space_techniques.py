"""The default space reads the techniques' own rows (``Technique.defaults``): the rows of the techniques added
the new way (issue 22, part 3) enter where they fit, and only there."""

import keras
import numpy as np

import kreg
from kreg.lab.apply import model_parts
from kreg.lab.models.source import ModelSource
from kreg.lab.plan import RegularizationPlan
from kreg.lab.search import default_space as ds


def _choose(model, splits, model_args=None):
    """The default space as ``prepare`` picks it, and its largest plan built on the model (every technique fits)."""
    source = ModelSource(model, model_args)
    built = source.build(splits.spec, RegularizationPlan(), seed=0)
    found = ds.choose(source, splits, parts=model_parts(built.model), head=built.output_activation)
    source.build(splits.spec, found.space.largest_plan({"batch_size": 32, "learning_rate": 1e-3}), seed=0)
    keras.backend.clear_session()
    return found


def _images(n=60, regression=False):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8, 8, 1)).astype("float32")
    y = x.mean(axis=(1, 2, 3)) if regression else np.arange(n) % 3
    return kreg.data.from_arrays(x, y, x_test=x[:15], y_test=y[:15], **({"task": "regression"} if regression else {}))


def test_a_residual_model_gets_stochastic_depth_and_an_image_regression_the_image_augmentations():
    """The default space reads the techniques' own rows: stochastic depth where the model has skip connections
    (never on the built-in models, which have none), Keras' image augmentations where room is left on images."""
    L = keras.layers
    x = keras.Input((8, 8, 1))
    stem = L.Conv2D(4, 3, padding="same", activation="relu")(x)
    branch = L.Conv2D(4, 3, padding="same", activation="relu")(stem)
    model = keras.Model(x, L.Dense(3)(L.GlobalAveragePooling2D()(L.Add()([stem, branch]))))
    found = _choose(model, _images())
    assert "stochastic_depth" in found.space.names
    assert "stochastic_depth" not in _choose("cnn2d", _images(), {"width": 4, "depth": 2}).space.names
    x = keras.Input((8, 8, 1))
    h = L.SpatialDropout2D(0.1)(L.Conv2D(4, 3, padding="same", activation="relu")(x))
    conv_only = keras.Model(x, L.Dense(1)(L.Flatten()(h)))  # has its spatial dropout, no hidden Dense block
    found = _choose(conv_only, _images(regression=True))
    assert {"random_erasing", "rand_augment"} <= set(found.space.names), found.space.names
