"""kreg.lab.apply: a RegularizationPlan onto a user's own Keras model."""

import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import kreg
from kreg.lab.apply import STRUCTURAL, apply_plan, check_structural, output_activation, regularize
from kreg.regularizers import GroupLasso, Schedulable, Sum

pytestmark = pytest.mark.backend_agnostic  # also run under KERAS_BACKEND=jax

Plan = kreg.RegularizationPlan
# Only training-time techniques: inference must match the original model.
TRAINING_TIME = Plan(l2=1e-3, group_lasso=1e-4, dropout=0.3, spatial_dropout=0.2, input_noise=0.3,
                     augmentation={"flip": 1.0, "contrast": 0.2})


def skip_net(head="softmax"):
    """conv -> BN -> ReLU, a nested Sequential conv branch, Add, a hidden dense block, a head."""
    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    branch = keras.Sequential([
        keras.layers.Conv2D(4, 3, padding="same", name="conv"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.Activation("relu", name="relu"),
    ], name="branch")
    x = keras.layers.Add(name="add")([x, branch(x)])
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(8, name="dense")(x)
    x = keras.layers.Activation("relu", name="dense_relu")(x)
    outputs = keras.layers.Dense(3, activation=head, name="head")(x)
    return keras.Model(inputs, outputs, name="user_net")


def mlp(activation="sigmoid"):
    return keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(8, activation="relu", name="h1"),
        keras.layers.Dense(8, activation="relu", name="h2"),
        keras.layers.Dense(1, activation=activation, name="out"),
    ], name="mlp")


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(8, activation="relu")
        self.out = keras.layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.out(self.hidden(x))


def images(n=6):
    return np.random.default_rng(0).normal(size=(n, 8, 8, 3)).astype("float32")


def after(model, name):
    """The layer called on ``name``'s output (the next one in a Sequential)."""
    if isinstance(model, keras.Sequential):
        names = [layer.name for layer in model.layers]
        return model.layers[names.index(name) + 1]
    return model.get_layer(name)._outbound_nodes[0].operation


# ---------------------------------------------------------------- placements
def test_skip_connection_and_nested_block_get_the_plan_where_it_belongs():
    model = skip_net()
    applied = apply_plan(model, TRAINING_TIME)
    new = applied.model
    assert applied.modality == "image" and applied.output_activation == "softmax"
    assert applied.placements["l2"] == ["stem", "branch/conv", "dense", "head"]
    assert applied.placements["group_lasso"] == ["stem", "branch/conv", "dense"]  # not the output layer
    assert applied.placements["dropout"] == ["dense_dropout"]
    assert applied.placements["spatial_dropout"] == ["stem_sdrop", "branch/conv_sdrop"]
    assert applied.placements["input_noise"] == ["input_noise"]
    assert applied.placements["augment_flip"] == ["augment_flip"]
    assert set(applied.placements) <= set(STRUCTURAL)
    for name in ("stem", "dense", "head"):
        assert new.get_layer(name).kernel_regularizer is not None
    assert not isinstance(new.get_layer("head").kernel_regularizer, Sum)  # L2 only, no group lasso
    assert isinstance(new.get_layer("dense").kernel_regularizer.regularizers[1], GroupLasso)
    branch = new.get_layer("branch")
    assert isinstance(branch, keras.Sequential)
    assert branch.get_layer("conv").kernel_regularizer is not None
    # Dropout after each block's activation; on the branch, before the merge.
    assert isinstance(after(new, "stem_relu"), keras.layers.SpatialDropout2D)
    assert [layer.name for layer in branch.layers] == ["conv", "bn", "relu", "conv_sdrop"]
    assert isinstance(after(new, "dense_relu"), keras.layers.Dropout)
    assert new.outputs[0]._keras_history.operation.name == "head"  # nothing after the output layer
    sdrops = [layer for layer in new.layers if isinstance(layer, keras.layers.SpatialDropout2D)]
    assert len(sdrops) == 1  # the dense block got plain dropout, not spatial
    # The first layer on the input reads the augmented, noisy input.
    first = [type(layer).__name__ for layer in new.layers[:4]]
    assert first == ["InputLayer", "RandomFlip", "RandomContrast", "GaussianNoise"]


def test_sequential_model_with_activations_inside_dense():
    model = mlp()
    applied = apply_plan(model, Plan(l1=1e-4, dropout=0.25))
    new = applied.model
    assert isinstance(new, keras.Sequential) and applied.modality == "tabular"
    assert [layer.name for layer in new.layers] == ["h1", "h1_dropout", "h2", "h2_dropout", "out"]
    assert applied.placements == {"l1": ["h1", "h2", "out"], "dropout": ["h1_dropout", "h2_dropout"]}
    assert all(layer.kernel_regularizer is not None for layer in new.layers if isinstance(layer, keras.layers.Dense))
    x = np.random.default_rng(1).normal(size=(5, 6)).astype("float32")
    np.testing.assert_allclose(new.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_inference_equals_the_original_and_training_differs():
    model = skip_net(head=None)
    new = regularize(model, TRAINING_TIME, seed=3)
    x = images()
    np.testing.assert_allclose(new(x, training=False), model(x, training=False), atol=1e-6)
    assert not np.allclose(new(x, training=True), model(x, training=True), atol=1e-3)


def test_drop_block_and_weights_of_every_layer_are_copied():
    model = skip_net()
    plan = Plan(drop_block=kreg.DropBlockSpec(0.1, 3), l2=1e-4)
    new = regularize(model, plan)
    for layer in model.layers:
        if layer.weights:
            for old, copied in zip(layer.get_weights(), new.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(old, copied)
    assert isinstance(after(new, "stem_relu"), kreg.layers.DropBlock2D)
    np.testing.assert_allclose(new(images(), training=False), model(images(), training=False), atol=1e-6)


def test_every_kernel_kind_gets_the_penalty_and_the_proximal_step():
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.SeparableConv2D(4, 3, name="sep")(inputs)
    x = keras.layers.DepthwiseConv2D(3, name="dw")(x)
    x = keras.layers.Conv2DTranspose(2, 3, name="up")(x)
    x = keras.layers.Reshape((6 * 6, 2))(x)
    x = keras.layers.Conv1D(3, 3, name="c1d")(x)
    x = keras.layers.EinsumDense("abc,cd->abd", output_shape=(34, 4), name="einsum")(x)
    outputs = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(x))
    applied = apply_plan(keras.Model(inputs, outputs), Plan(l2=1e-4, proximal_l1=1e-3, learning_rate=0.1))
    assert applied.placements["l2"] == ["sep", "dw", "up", "c1d", "einsum", "logits"]
    new = applied.model
    sep = new.get_layer("sep")
    assert sep.depthwise_regularizer is not None and sep.pointwise_regularizer is not None
    assert new.get_layer("dw").depthwise_regularizer is not None
    assert new.get_layer("einsum").kernel_regularizer is not None
    assert new.get_layer("logits").kernel_constraint.threshold == pytest.approx(1e-4)
    assert applied.output_activation == "linear"


def test_batch_norm_goes_before_the_activation_and_not_twice():
    applied = apply_plan(mlp(), Plan(batch_norm=True, dropout=0.1))
    names = [layer.name for layer in applied.model.layers]
    assert names == ["h1", "h1_bn", "h1_act", "h1_dropout", "h2", "h2_bn", "h2_act", "h2_dropout", "out"]
    assert applied.model.get_layer("h1").get_config()["activation"] == "linear"
    assert applied.model.get_layer("h1_act").get_config()["activation"] == "relu"
    assert applied.model.get_layer("out").get_config()["activation"] == "sigmoid"
    net = apply_plan(skip_net(), Plan(batch_norm=True))
    assert net.placements["batch_norm"] == ["dense_bn"]  # the convolutions have one already


def test_drop_connect_replaces_hidden_dense_with_the_same_weights():
    model = mlp()
    applied = apply_plan(model, Plan(drop_connect=0.3))
    new = applied.model
    assert applied.placements == {"drop_connect": ["h1", "h2"]}
    assert isinstance(new.get_layer("h1"), kreg.layers.DropConnect)
    assert type(new.get_layer("out")) is keras.layers.Dense
    x = np.ones((2, 6), "float32")
    np.testing.assert_allclose(new(x, training=False), model(x, training=False), atol=1e-6)


def test_users_regularizer_is_kept_and_kregs_added():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
        3, kernel_regularizer=keras.regularizers.L1(0.5), name="d")])
    reg = regularize(model, Plan(l2=1e-3)).get_layer("d").kernel_regularizer
    assert isinstance(reg, Sum)
    assert [type(r).__name__ for r in reg.regularizers] == ["L1", "L2"]


def test_schedule_uses_variable_rate_layers_and_schedulable_penalties():
    plan = Plan(l2=1e-3, spatial_dropout=0.1, dropout=0.2, input_noise=0.1, schedule=kreg.ScheduleSpec())
    new = regularize(skip_net(), plan)
    assert isinstance(new.get_layer("stem").kernel_regularizer, Schedulable)
    assert isinstance(new.get_layer("stem_sdrop"), kreg.layers.ScheduledSpatialDropout2D)
    assert isinstance(new.get_layer("dense_dropout"), kreg.layers.ScheduledDropout)
    assert isinstance(new.get_layer("input_noise"), kreg.layers.ScheduledGaussianNoise)


def test_multi_input_model_gets_noise_on_float_inputs_and_augmentation_where_the_rank_fits():
    seq = keras.Input((20, 1), name="signal")
    tab = keras.Input((3,), name="meta")
    x = keras.layers.GlobalMaxPooling1D()(keras.layers.Conv1D(4, 3, activation="relu", name="conv")(seq))
    x = keras.layers.Concatenate()([x, tab])
    outputs = keras.layers.Dense(2, name="logits")(keras.layers.Dense(4, activation="relu", name="dense")(x))
    applied = apply_plan(keras.Model([seq, tab], outputs), Plan(input_noise=0.1, augmentation={"shift": 0.1}))
    assert applied.modality == "sequence"
    assert applied.placements == {"augment_shift": ["signal_augment_shift"],
                                  "input_noise": ["signal_input_noise", "meta_input_noise"]}


def test_models_built_by_a_call_without_an_input():
    inner = keras.Sequential([keras.layers.Conv1D(4, 3, padding="same", name="conv"), keras.layers.ReLU(name="relu")],
                             name="inner")
    inputs = keras.Input((10, 2))
    outputs = keras.layers.Dense(3, name="logits")(keras.layers.Flatten()(inner(inputs)))
    applied = apply_plan(keras.Model(inputs, outputs), Plan(spatial_dropout=0.1))
    assert applied.placements == {"spatial_dropout": ["inner/conv_sdrop"]}
    called = keras.Sequential([keras.layers.Dense(8, activation="relu", name="h"), keras.layers.Dense(2, name="o")])
    called(np.ones((2, 5), "float32"))  # built for batches of 2
    new = regularize(called, Plan(dropout=0.1))
    assert new(np.ones((7, 5), "float32")).shape == (7, 2)


def test_apply_costs_milliseconds_not_seconds():
    model = skip_net()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        apply_plan(model, TRAINING_TIME)
        times.append(time.perf_counter() - start)
    assert min(times) < 0.5  # about 0.03 s on 2 cores; a trial is seconds


def test_proximal_step_refuses_a_kernel_with_its_own_constraint():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, kernel_constraint="max_norm", name="d")])
    with pytest.raises(ValueError, match=r"`plan.proximal_l1`. Expected kernels without a constraint of their own"):
        apply_plan(model, Plan(proximal_l1=1e-3))


def test_seeds_are_distinct_and_deterministic():
    def seeds(seed):
        new = regularize(skip_net(), TRAINING_TIME, seed=seed)
        return [layer.get_config()["seed"] for layer in new._flatten_layers() if "seed" in layer.get_config()]

    first = seeds(5)
    assert first == seeds(5) and len(set(first)) == len(first) == 6
    assert first != seeds(6)


def test_a_plan_without_structural_techniques_returns_a_clone():
    model = skip_net()
    applied = apply_plan(model, Plan(label_smoothing=0.1, sam=0.05, augmentation={"mixup": 0.2}))
    assert applied.model is not model and applied.placements == {}
    np.testing.assert_allclose(applied.model(images()), model(images()), atol=1e-6)


def test_input_model_is_unchanged():
    model = skip_net()
    count = len(model.layers)
    regularize(model, Plan(l2=1e-3, proximal_l1=1e-3, dropout=0.1, batch_norm=True))
    assert len(model.layers) == count
    assert all(getattr(layer, "kernel_regularizer", None) is None for layer in model._flatten_layers())
    assert all(getattr(layer, "kernel_constraint", None) is None for layer in model._flatten_layers())


# ------------------------------------------------------------- output kinds
def test_output_activation_is_detected():
    assert output_activation(skip_net("softmax")) == "softmax"
    assert output_activation(skip_net(None)) == "linear"
    assert output_activation(mlp("sigmoid")) == "sigmoid"
    inputs = keras.Input((4,))
    logits = keras.layers.Dense(3)(inputs)
    assert output_activation(keras.Model(inputs, keras.layers.Softmax()(logits))) == "softmax"
    assert output_activation(keras.Model(inputs, keras.layers.Activation("sigmoid")(logits))) == "sigmoid"
    assert output_activation(keras.Model(inputs, keras.layers.Reshape((3, 1))(logits))) == "linear"
    assert output_activation(keras.Sequential([keras.Input((6,)), mlp("softmax")])) == "softmax"
    subclassed = Subclassed()
    subclassed(np.ones((1, 4), "float32"))
    assert output_activation(subclassed) == "softmax"


# ---------------------------------------------------------------- subclassed
def test_subclassed_model_takes_model_agnostic_techniques_only():
    model = Subclassed()
    model(np.ones((1, 4), "float32"))
    applied = apply_plan(model, Plan(label_smoothing=0.1, weight_decay=1e-4, swa=kreg.SWASpec()))
    assert applied.model is model and applied.placements == {}
    with pytest.raises(ValueError, match=r"argument `plan.dropout`. Expected a Functional or Sequential model: "
                                         r"a subclassed model's layers cannot be rewired"):
        apply_plan(model, Plan(dropout=0.2, label_smoothing=0.1))
    with pytest.raises(ValueError, match=r"`plan.augment_jitter`.*subclassed"):
        check_structural(model, Plan(augmentation={"jitter": 0.1}))


# ------------------------------------------------------------------- errors
def test_drop_block_larger_than_a_feature_map_is_refused():
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    with pytest.raises(ValueError, match=r"`plan.drop_block`. Expected a block_size no larger than every feature "
                                         r"map it drops from; layer 'conv' outputs 4x4 maps"):
        check_structural(model, Plan(drop_block=kreg.DropBlockSpec(0.1, 9)))
    fits = apply_plan(model, Plan(drop_block=kreg.DropBlockSpec(0.1, 4)))
    assert fits.placements == {"drop_block": ["conv_dropblock"]}


def test_spatial_dropout_on_an_mlp_is_refused():
    with pytest.raises(ValueError, match=r"`plan.spatial_dropout`. Expected a model with hidden convolution layers "
                                         r"\(spatial dropout and DropBlock go after convolution blocks\); model 'mlp'"):
        apply_plan(mlp(), Plan(spatial_dropout=0.1))


def test_dropout_without_hidden_dense_is_refused():
    inputs = keras.Input((16, 1))
    x = keras.layers.GlobalMaxPooling1D()(keras.layers.Conv1D(4, 3, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(x), name="cnn")
    with pytest.raises(ValueError, match=r"`plan.dropout`. Expected a model with hidden Dense layers .*'cnn' has none"):
        apply_plan(model, Plan(dropout=0.2))
    with pytest.raises(ValueError, match=r"augmentation for tabular data"):
        apply_plan(mlp(), Plan(augmentation={"shift": 0.1}))


# ------------------------------------------------------- training and saving
def test_regularized_model_trains_with_its_penalties():
    model = skip_net(head=None)
    new = regularize(model, Plan(l2=1e-3, group_lasso=1e-4, spatial_dropout=0.1, dropout=0.2))
    assert len(new.losses) == 4  # stem, branch conv, dense, head
    new.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = new.fit(images(16), np.arange(16) % 3, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_saved_model_loads_in_a_fresh_process_with_identical_predictions(tmp_path):
    model = regularize(skip_net(), Plan(l2=1e-3, spatial_dropout=0.1, drop_block=kreg.DropBlockSpec(0.1, 3),
                                        dropout=0.2, input_noise=0.1, augmentation={"flip": 1.0}))
    path, data = tmp_path / "model.keras", tmp_path / "x.npy"
    model.save(path)
    np.save(data, images())
    code = ("import kreg, keras, numpy as np; "
            f"m = keras.saving.load_model({str(path)!r}); "
            f"np.save({str(tmp_path / 'y.npy')!r}, np.asarray(m(np.load({str(data)!r}), training=False)))")
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ.copy())
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model(images(), training=False), atol=1e-6)
