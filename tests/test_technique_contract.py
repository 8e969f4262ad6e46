"""One contract over the technique registry: every technique, parametrized (as Optuna tests every sampler).

For each technique: its parameters validate and refuse with the house sentence; a structural one goes
into every built-in model it claims to fit and into every user model of a small zoo that has its part,
recording where it went, leaving inference outputs unchanged where it acts only in training, and is
refused, by name, by every model of the zoo that lacks its part; a model with it saves, and loads in a
fresh process (one process for all of them). Adding a technique is one class plus its row here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from kreg.lab import techniques as registry
from kreg.lab.apply import apply_plan
from kreg.lab.data.splits import InputSpec
from kreg.lab.models.builtin import MODEL_TYPES, build_model
from kreg.lab.models.source import placements_of
from kreg.lab.plan import RegularizationPlan

# Every technique has its row: the value a plan gives it here. A new technique adds one.
ROWS = {
    "l1": 1e-4, "l2": 1e-4, "elastic_net": {"alpha": 1e-4, "l1_ratio": 0.3}, "group_lasso": 1e-4, "orthogonal": 1e-3,
    "proximal_l1": 1e-3, "max_norm": 3.0, "spectral_norm": True, "dropout": 0.2, "spatial_dropout": 0.1,
    "drop_block": {"rate": 0.1, "block_size": 2}, "drop_connect": 0.2, "stochastic_depth": 0.2,
    "input_noise": 0.1, "weight_decay": 1e-3, "label_smoothing": 0.1, "confidence_penalty": 0.1,
    "batch_norm": True, "early_stopping": {"patience": 3}, "batch_size": 16, "learning_rate": 1e-3,
    "augment_shift": 0.1, "augment_time_scale": 0.1, "augment_time_warp": 0.1, "augment_jitter": 0.05,
    "augment_magnitude_scale": 0.1, "augment_feature_dropout": 0.1, "augment_swap_noise": 0.1, "augment_flip": 1.0,
    "augment_rotation": 0.05, "augment_zoom": 0.1, "augment_translation": 0.1, "augment_contrast": 0.1,
    "augment_brightness": 0.1, "augment_mixup": 0.2, "augment_cutmix": 0.2, "random_erasing": 0.5,
    "rand_augment": {"magnitude": 0.3, "num_ops": 1}, "schedule": {"warmup": 0.2}, "swa": 0.75, "sam": 0.05,
    "ensemble": 2,
}
NAMES = sorted(registry.REGISTRY)
STRUCTURAL = [n for n in NAMES if registry.REGISTRY[n].structural]
GOOD = {"strength": 0.01, "rate": 0.1, "ratio": 0.5, "count": 2, "positive": 0.5, "bool": True}
BAD = {"strength": -1.0, "rate": 1.5, "ratio": 2.0, "count": 0, "positive": 0.0, "bool": "yes"}
SPECS = {"mlp": InputSpec((6,), 3, "tabular"), "cnn1d": InputSpec((16, 1), 3, "sequence"),
         "cnn2d": InputSpec((8, 8, 1), 3, "image")}
X = {"tabular": np.linspace(-1, 1, 24, dtype="float32").reshape(4, 6),
     "sequence": np.linspace(-1, 1, 64, dtype="float32").reshape(4, 16, 1),
     "image": np.linspace(-1, 1, 256, dtype="float32").reshape(4, 8, 8, 1)}


def _zoo():
    """User models, each with one modality and a set of parts, as a user builds them (Functional, Sequential)."""
    L = keras.layers
    tab = keras.Sequential([keras.Input((6,)), L.Dense(8, activation="relu", name="hidden"),
                            L.Dense(3, activation="softmax", name="out")], name="tabular_mlp")
    x = keras.Input((16, 1))
    h = L.Conv1D(4, 3, padding="same", activation="relu", name="conv")(x)
    seq = keras.Model(x, L.Dense(3, name="out")(L.Flatten()(h)), name="sequence_cnn")
    x = keras.Input((8, 8, 1))
    stem = L.Conv2D(4, 3, padding="same", activation="relu", name="stem")(x)
    branch = L.ReLU(name="relu")(L.BatchNormalization(name="bn")(L.Conv2D(4, 3, padding="same", name="conv")(stem)))
    merged = L.Add(name="add")([stem, branch])
    res = keras.Model(x, L.Dense(3, name="out")(L.GlobalAveragePooling2D()(merged)), name="image_resnet")
    x = keras.Input((6,))
    normed = keras.Model(x, L.Dense(3, name="out")(L.ReLU()(L.BatchNormalization()(L.Dense(8, name="hidden")(x)))),
                         name="normalized_mlp")
    bare = keras.Sequential([keras.Input((6,)), L.Activation("softmax")], name="no_kernels")
    x = keras.Input((6,), dtype="int32")
    ints = keras.Model(x, L.Dense(3, name="out")(L.Dense(8, activation="relu", name="hidden")(
        L.Flatten()(L.Embedding(10, 2)(x)))), name="integer_inputs")
    return {"tabular": (tab, "tabular"), "sequence": (seq, "sequence"), "image": (res, "image"),
            "normed": (normed, "tabular"), "bare": (bare, "tabular"), "ints": (ints, "tabular")}


@pytest.fixture(scope="module")
def zoo():
    return _zoo()


def _plan(name):
    return RegularizationPlan(**{name: ROWS[name]})


def _inputs(model, modality):
    return X[modality] if "float" in str(model.inputs[0].dtype) else np.arange(24, dtype="int32").reshape(4, 6) % 10


def _placed(placements, tech) -> list:
    return placements.get(tech.name) or (placements.get("augmentation", []) if tech.augmentation else [])


def test_every_technique_has_a_row():
    assert sorted(ROWS) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_parameters_validate_and_refuse_with_the_house_sentence(name):
    tech = registry.REGISTRY[name]
    plan = _plan(name)
    assert name in plan.to_dict() and RegularizationPlan.from_json(plan.to_json()) == plan
    assert tech.acts_on in registry.ACTS_ON and tech.summary
    if tech.is_flag:
        with pytest.raises(ValueError, match=rf"Invalid value received for argument `{name}`\. Expected a boolean"):
            RegularizationPlan(**{name: "yes"})
        return
    good = {p.name: GOOD[p.kind] for p in tech.params}
    for param in tech.params:
        bad = BAD[param.kind]
        value = {**good, param.name: bad} if tech.value_is_spec else bad
        field = f"{name}.{param.name}" if tech.value_is_spec else name
        with pytest.raises(ValueError, match=rf"Invalid value received for argument `{field}`\. "
                                             "Expected " + re.escape(registry.KIND_EXPECTED[param.kind])):
            RegularizationPlan(**{name: value})


@pytest.mark.parametrize("name", NAMES)
def test_it_goes_into_every_builtin_model_it_claims_to_fit(name):
    tech = registry.REGISTRY[name]
    claimed = [m for m in MODEL_TYPES if registry.fits(name, modality=SPECS[m].modality, builtin_model=m) is None]
    if tech.builtin_models is not None:
        assert set(claimed) <= set(tech.builtin_models)
    for model_type in claimed:
        spec = SPECS[model_type]
        model = build_model(model_type, spec, _plan(name), width=4, **({"depth": 1} if model_type == "mlp" else {}))
        placed = _placed(placements_of(model, _plan(name)), tech)
        assert bool(placed) == tech.structural, (model_type, placed)
        model(X[spec.modality], training=True)  # its training path runs


@pytest.mark.parametrize("name", STRUCTURAL)
def test_it_goes_into_every_user_model_with_its_part_and_is_refused_by_the_others(name, zoo):
    tech = registry.REGISTRY[name]
    fitted, refused = [], []
    for key, (model, modality) in zoo.items():
        if tech.modalities and modality not in tech.modalities and key != "bare":
            continue  # (a technique for other data: the configuration refuses it before any model)
        try:
            applied = apply_plan(model, _plan(name), modality=modality, seed=1)
        except ValueError as exc:
            message = str(exc)
            if f"`plan.{name}`" in message:
                assert f"'{model.name}'" in message, message  # the house sentence names the model too
            else:
                assert tech.augmentation and tech.augmentation in message, message
            refused.append(key)
            continue
        placed = _placed(applied.placements, tech)
        assert placed, (key, applied.placements)
        x = _inputs(model, modality)
        if not tech.changes_inference:
            np.testing.assert_allclose(np.asarray(applied.model(x, training=False)),
                                       np.asarray(model(x, training=False)), rtol=1e-5, atol=1e-6)
        applied.model(x, training=True)
        fitted.append(key)
    assert fitted and refused, (fitted, refused)  # the zoo has a model with its part, and one without


@pytest.fixture(scope="module")
def reloaded(zoo, tmp_path_factory):
    """Every structural technique in the first zoo model that takes it, saved; all loaded in ONE fresh process."""
    root = tmp_path_factory.mktemp("contract")
    saved = {}
    for name in STRUCTURAL:
        for model, modality in zoo.values():
            try:
                applied = apply_plan(model, _plan(name), modality=modality, seed=1)
            except ValueError:
                continue
            x = _inputs(model, modality)
            np.save(root / f"{name}.npy", x)
            np.save(root / f"{name}.out.npy", np.asarray(applied.model(x, training=False)))
            applied.model.save(root / f"{name}.keras")
            saved[name] = True
            break
    script = f"""
import json, pathlib, numpy as np, kreg, keras
root, out = pathlib.Path({str(root)!r}), {{}}
for path in sorted(root.glob("*.keras")):
    name = path.stem
    try:
        model = keras.saving.load_model(path)
        got = np.asarray(model(np.load(root / f"{{name}}.npy"), training=False))
        out[name] = bool(np.allclose(got, np.load(root / f"{{name}}.out.npy"), rtol=1e-5, atol=1e-6)) or "outputs differ"
    except Exception as exc:
        out[name] = f"{{type(exc).__name__}}: {{exc}}"
print("RESULT" + json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert lines, done.stderr[-3000:]
    return saved, json.loads(lines[0][len("RESULT"):])


@pytest.mark.parametrize("name", STRUCTURAL)
def test_a_model_with_it_saves_and_loads_in_a_fresh_process(name, reloaded):
    saved, loaded = reloaded
    assert saved.get(name), f"no model of the zoo takes {name}"
    assert loaded.get(name) is True, loaded.get(name)
