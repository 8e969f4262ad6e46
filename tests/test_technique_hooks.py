"""The loss, data, model-wrapper and callback hooks of techniques (issue 22, part 1).

``kreg.lab.task`` and ``kreg.lab.trial.procedures`` ask the plan's techniques through these hooks and name
none of them: the losses, batch maps and callbacks must be the ones they made before, when they read
``plan.label_smoothing``, ``plan.confidence_penalty``, ``plan.augmentation``, ``plan.sam``,
``plan.schedule`` and ``plan.swa`` themselves (the reference formulas below are that code).
"""

import ast
import pathlib
import types

import keras
import numpy as np
import pytest

from kreg.augment import CutMix, MixUp, mixing_layers
from kreg.callbacks import SWA, RegularizationSchedule
from kreg.lab import techniques as registry
from kreg.lab.plan import RegularizationPlan
from kreg.lab.task import Classification, Regression
from kreg.lab.techniques import placing
from kreg.lab.techniques.base import Technique
from kreg.lab.trial.procedures import build_for_plan, procedure_callbacks, train_data
from kreg.layers import ScheduledDropout
from kreg.training import SAM

ROOT = pathlib.Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------- loss
def _loss_before(plan, activation):
    """Classification.loss as it was, reading the plan by name."""
    from kreg.lab.metrics import BinaryHeadCrossentropy
    from kreg.losses import ConfidencePenalty, SparseCategoricalCrossentropy

    smoothing = plan.label_smoothing or 0.0
    if activation in ("sigmoid", "binary_logit"):
        return BinaryHeadCrossentropy(label_smoothing=smoothing, from_logits=activation == "binary_logit")
    from_logits = activation != "softmax"
    if plan.confidence_penalty:
        return ConfidencePenalty(plan.confidence_penalty, from_logits=from_logits, label_smoothing=smoothing)
    return SparseCategoricalCrossentropy(label_smoothing=smoothing, from_logits=from_logits)


@pytest.mark.parametrize("activation", ["linear", "softmax", "sigmoid", "binary_logit"])
@pytest.mark.parametrize("techniques", [{}, {"label_smoothing": 0.1}, {"confidence_penalty": 0.3},
                                        {"label_smoothing": 0.05, "confidence_penalty": 0.2, "dropout": 0.1}])
def test_the_task_loss_is_the_one_made_before(techniques, activation):
    plan = RegularizationPlan(**techniques)
    task = Classification(num_classes=2 if activation in ("sigmoid", "binary_logit") else 3)
    new, old = task.loss(plan, activation), _loss_before(plan, activation)
    assert type(new) is type(old)
    assert new.get_config() == old.get_config()
    y = np.array([0, 1, 1, 0]) if task.num_classes == 2 else np.array([0, 2, 1, 0])
    out = np.random.default_rng(0).normal(size=(4, 1 if task.num_classes == 2 else 3)).astype("float32")
    if activation == "softmax":
        out = keras.ops.convert_to_numpy(keras.ops.softmax(out))
    elif activation == "sigmoid":
        out = keras.ops.convert_to_numpy(keras.ops.sigmoid(out))
    assert float(new(y, out)) == float(old(y, out))
    if techniques.get("label_smoothing") or (techniques.get("confidence_penalty") and task.num_classes > 2):
        assert float(new(y, out)) != float(task.loss(RegularizationPlan(), activation)(y, out))  # they act


def test_regression_loss_is_the_mean_squared_error():
    loss = Regression().loss(RegularizationPlan(l2=1e-4))
    assert type(loss) is keras.losses.MeanSquaredError and loss.name == "loss"


# ----------------------------------------------------------------- data
class _Splits:
    """What ``train_data`` reads of a search's splits; ``train_dataset`` hands back the batch map."""

    def __init__(self, modality, num_classes):
        self.spec = types.SimpleNamespace(modality=modality, num_classes=num_classes)

    def train_dataset(self, batch_size, batch_map=None):
        return batch_map


@pytest.mark.parametrize("modality, augmentation, kinds", [
    ("sequence", {"mixup": 0.3}, [MixUp]),
    ("image", {"cutmix": 0.5}, [CutMix]),
    ("image", {"mixup": 0.2, "cutmix": 1.0, "flip": 1.0}, [MixUp, CutMix]),
])
def test_mixing_layers_are_the_ones_made_before(modality, augmentation, kinds):
    plan, seed = RegularizationPlan(augmentation=augmentation), 7
    batch_map, mixers = train_data(_Splits(modality, 4), plan, 16, seed)
    before = mixing_layers(modality, plan.augmentation, 4, seed=seed + 11)  # procedures' call, as it was
    assert [type(m) for m in mixers] == kinds == [type(m) for m in before]
    assert [m.alpha for m in mixers] == [m.alpha for m in before]
    assert batch_map is not None and batch_map.keywords["layers"] == mixers
    shape = (8, 40, 1) if modality == "sequence" else (8, 6, 6, 1)
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    y = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    for new, old in zip(mixers, before):  # the same seeds: the same mixed batches
        (xn, yn), (xo, yo) = new((x, y)), old((x, y))
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(xn), keras.ops.convert_to_numpy(xo))
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(yn), keras.ops.convert_to_numpy(yo))
        assert not np.array_equal(keras.ops.convert_to_numpy(xn), x)  # it mixed


def test_no_batch_maps_without_mixing_or_classes():
    assert train_data(_Splits("sequence", 4), RegularizationPlan(augmentation={"shift": 0.1}), 16, 0) == (None, [])
    assert train_data(_Splits("sequence", None), RegularizationPlan(augmentation={"mixup": 0.2}), 16, 0) == (None, [])


# ------------------------------------------------------------ callbacks
def _scheduled_model():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), ScheduledDropout(0.2), keras.layers.Dense(2)])


def test_schedule_and_swa_callbacks_are_the_ones_made_before():
    plan = RegularizationPlan(schedule={"warmup": 0.25, "off_last": 0.1}, swa={"start": 0.6})
    x = np.zeros((5, 4), "float32")
    mixers = mixing_layers("tabular", {"mixup": 0.2}, 2, seed=0)
    callbacks, swa, scheduled = procedure_callbacks(plan, _scheduled_model(), 20, (x, None), mixers)
    assert [type(c) for c in callbacks] == [RegularizationSchedule, SWA]  # registry order, as before
    schedule = callbacks[0]
    assert scheduled == 2  # the ScheduledDropout and the mixing layer
    assert schedule.targets[-1] is mixers[0] and schedule.off_last == 2  # round(0.1 * 20)
    assert schedule.schedule(0, 20) == pytest.approx(0.2)  # warm-up of round(0.25 * 20) = 5 epochs
    assert swa is callbacks[1] and swa.start_epoch == 12 and swa.bn_data is x  # int(0.6 * 20)
    _, swa, _ = procedure_callbacks(RegularizationPlan(swa={"start": 0.99}), _scheduled_model(), 3, (x, None))
    assert swa.start_epoch == 2  # at most the last epoch


def test_a_schedule_with_nothing_to_ramp_gives_no_callback():
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert procedure_callbacks(RegularizationPlan(schedule=True), plain, 10, (None, None)) == ([], None, 0)
    assert procedure_callbacks(RegularizationPlan(dropout=0.1), plain, 10, (None, None)) == ([], None, 0)


# ---------------------------------------------------------------- model
def _search(model):
    built = types.SimpleNamespace(model=model, output_activation="linear")
    return types.SimpleNamespace(
        model=types.SimpleNamespace(build=lambda spec, plan, seed: built), splits=types.SimpleNamespace(spec=None),
        training=types.SimpleNamespace(optimizer="adam", learning_rate=1e-3), task=Classification(num_classes=2),
        loss=None, metrics=None)


def test_sam_wraps_the_model_that_trains():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model, _ = build_for_plan(_search(inner), RegularizationPlan(sam=0.07), seed=0)
    assert isinstance(model, SAM) and model.inner is inner and model.rho == pytest.approx(0.07)
    assert model.optimizer is not None  # the wrapper is what gets compiled
    model, _ = build_for_plan(_search(inner), RegularizationPlan(label_smoothing=0.1), seed=0)
    assert model is inner and model.loss.get_config()["label_smoothing"] == pytest.approx(0.1)


# ------------------------------------------------------- a new technique
class _Toy(Technique):
    """A technique outside kreg's families: every training hook, none named by the lab."""

    name = "toy"
    params = (("strength", "strength"),)
    acts_on = "training"
    tasks = ("classification",)

    def loss(self, value, site):
        site.args["label_smoothing"] = value

    def data(self, value, site):
        return [MixUp(value, num_classes=site.num_classes, seed=site.seed)]

    def wrap_model(self, value, model):
        return SAM(model, rho=value)

    def callbacks(self, value, site):
        return [keras.callbacks.TerminateOnNaN()]


def test_a_new_technique_acts_through_its_hooks_alone(monkeypatch):
    monkeypatch.setitem(registry.REGISTRY, "toy", _Toy())
    plan = RegularizationPlan(toy=0.25)
    assert Classification(num_classes=3).loss(plan).get_config()["label_smoothing"] == 0.25
    assert Regression().loss(plan).get_config()["name"] == "loss"  # not a regression technique: not asked
    _, mixers = train_data(_Splits("tabular", 3), plan, 8, 0)
    assert [type(m) for m in mixers] == [MixUp] and mixers[0].alpha == 0.25
    callbacks, swa, scheduled = procedure_callbacks(plan, _scheduled_model(), 5, (None, None))
    assert [type(c) for c in callbacks] == [keras.callbacks.TerminateOnNaN] and swa is None and scheduled == 0
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert isinstance(placing.wrap_model(plan, inner), SAM)


# ---------------------------------------------------- no technique named
@pytest.mark.parametrize("path", ["kreg/lab/task.py", "kreg/lab/trial/procedures.py"])
def test_task_and_procedures_name_no_technique(path):
    tree = ast.parse((ROOT / path).read_text())
    names = set(registry.REGISTRY)
    read = [node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr in names
            and isinstance(node.value, ast.Name) and node.value.id == "plan"]
    spelled = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in names]
    assert (read, spelled) == ([], [])
    assert "augmentation" not in {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
