import keras
import numpy as np
import pytest

from kreg.data import InputSpec
from kreg.models import build_model, compile_model
from kreg.lab.plan import EarlyStoppingSpec, ElasticNetSpec, RegularizationPlan
from kreg.regularizers import ElasticNet

pytestmark = pytest.mark.backend_agnostic  # also run under KERAS_BACKEND=jax

SEQ = InputSpec((40, 1), 10, "sequence")
IMG = InputSpec((8, 8, 1), 10, "image")
TAB = InputSpec((13,), 3, "tabular")


def layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


@pytest.mark.parametrize("kind, spec, capacity", [
    ("cnn1d", SEQ, {"width": 8, "depth": 3}),
    ("cnn1d", SEQ, {"width": 8, "depth": 2, "strides": 1, "pooling": "max"}),
    ("cnn2d", IMG, {"width": 8, "depth": 2}),
    ("mlp", TAB, {"width": 16, "depth": 2}),
])
def test_baseline_models_output_logits(kind, spec, capacity):
    model = build_model(kind, spec, RegularizationPlan(), **capacity)
    x = np.random.default_rng(0).normal(size=(4, *spec.shape)).astype("float32")
    assert model(x).shape == (4, spec.num_classes)
    assert not any(t in layer_types(model) for t in ("Dropout", "SpatialDropout1D", "BatchNormalization"))
    assert not model.losses


def test_plan_becomes_layers_and_penalties():
    plan = RegularizationPlan(l2=1e-3, spatial_dropout=0.1, dropout=0.2, batch_norm=True, input_noise=0.1,
                              augmentation={"shift": 0.1, "time_scale": 0.1})
    model = build_model("cnn1d", SEQ, plan, width=8, depth=2)
    types = layer_types(model)
    assert types.count("SpatialDropout1D") == 2 and types.count("BatchNormalization") == 2
    assert {"RandomShift1D", "RandomTimeScale1D", "GaussianNoise", "Dropout"} <= set(types)
    assert len(model.losses) == 3  # two convolutions and the classifier carry L2
    x = np.ones((2, 40, 1), "float32")
    np.testing.assert_allclose(model(x, training=False), model(x, training=False))


def test_elastic_net_plan_uses_kreg_regularizer():
    model = build_model("mlp", TAB, RegularizationPlan(elastic_net=ElasticNetSpec(1e-3, 0.5)), width=4, depth=1)
    assert isinstance(model.get_layer("dense1").kernel_regularizer, ElasticNet)


def test_compile_applies_optimizer_and_loss_settings():
    plan = RegularizationPlan(weight_decay=1e-2, label_smoothing=0.1, learning_rate=0.01)
    model = compile_model(build_model("mlp", TAB, plan, width=4, depth=1), plan, learning_rate=0.5)
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    assert model.optimizer.weight_decay == pytest.approx(1e-2)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)
    assert model.loss.label_smoothing == pytest.approx(0.1)


def test_bad_capacity_and_modality():
    with pytest.raises(ValueError, match="Received: width=0"):
        build_model("mlp", TAB, width=0)
    with pytest.raises(ValueError, match="augmentation for tabular data"):
        build_model("mlp", TAB, RegularizationPlan(augmentation={"rotation": 0.1}))
    with pytest.raises(ValueError, match="model.type"):
        build_model("resnet", TAB)


def test_model_with_kreg_layers_round_trips(tmp_path):
    plan = RegularizationPlan(l2=1e-3, elastic_net=None, spatial_dropout=0.1, label_smoothing=0.1,
                              augmentation={"shift": 0.2, "time_scale": 0.1}, early_stopping=EarlyStoppingSpec())
    model = compile_model(build_model("cnn1d", SEQ, plan, width=4, depth=2), plan)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(1).normal(size=(3, 40, 1)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0), rtol=1e-5)


def test_library_techniques_wired_into_builders():
    from kreg.constraints import SoftThreshold
    from kreg.layers import DropBlock1D, DropConnect
    from kreg.losses import ConfidencePenalty
    from kreg.lab.plan import DropBlockSpec
    from kreg.regularizers import GroupLasso, Sum

    plan = RegularizationPlan(drop_block=DropBlockSpec(0.1, 5), group_lasso=1e-3, l2=1e-4, proximal_l1=0.01,
                              learning_rate=0.1)
    model = build_model("cnn1d", SEQ, plan, width=4, depth=2)
    assert sum(isinstance(layer, DropBlock1D) for layer in model.layers) == 2
    conv = model.get_layer("conv1")
    assert isinstance(conv.kernel_regularizer, Sum)
    assert any(isinstance(r, GroupLasso) for r in conv.kernel_regularizer.regularizers)
    assert isinstance(conv.kernel_constraint, SoftThreshold)
    assert conv.kernel_constraint.threshold == pytest.approx(0.1 * 0.01)
    assert isinstance(model.get_layer("logits").kernel_regularizer, keras.regularizers.L2)  # no group lasso on logits
    mlp = build_model("mlp", TAB, RegularizationPlan(drop_connect=0.3, confidence_penalty=0.2), width=8, depth=2)
    assert sum(isinstance(layer, DropConnect) for layer in mlp.layers) == 2
    compile_model(mlp, RegularizationPlan(confidence_penalty=0.2, label_smoothing=0.1))
    assert isinstance(mlp.loss, ConfidencePenalty) and mlp.loss.label_smoothing == pytest.approx(0.1)
    x = np.zeros((4, 13), "float32")
    logs = mlp.evaluate(x, np.zeros(4, "int64"), verbose=0, return_dict=True)
    assert {"loss", "accuracy", "ece"} <= set(logs)
