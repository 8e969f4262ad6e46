"""Issue 21, part 5: kreg's default search space, picked from the model's structure, the data and the task.

No training here: the space is read off the built baseline model and checked by building its largest plan on the
model, as ``kreg.tune`` does before its first trial.
"""

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

import kreg
from kreg.lab.apply import model_parts
from kreg.lab.errors import ConfigError
from kreg.lab.models.source import ModelSource
from kreg.lab.plan import RegularizationPlan
from kreg.lab.search import default_space as ds
from kreg.lab.search.space import SearchSpace

ROOT = Path(__file__).resolve().parents[1]


def _classes(n, shape, classes=3, seed=0, val=None):
    """``n`` examples of ``classes`` classes; ``val`` validation examples of their own (else 20% carved)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + (val or 0), *shape)).astype("float32")
    y = np.arange(len(x)) % classes
    extra = {"x_val": x[n:], "y_val": y[n:]} if val else {}
    return kreg.data.from_arrays(x[:n], y[:n], x_test=x[: max(classes, n // 4)], y_test=y[: max(classes, n // 4)],
                                 **extra)


def _regression(n, features=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (x @ rng.normal(size=features) + 0.1 * rng.normal(size=n)).astype("float32")
    return kreg.data.from_arrays(x, y, x_test=x[:40], y_test=y[:40])


def _choose(model, splits, model_args=None, **options):
    """The default space as ``prepare`` picks it (baseline built once), and the largest plan built on the model."""
    source = ModelSource(model, model_args)
    built = source.build(splits.spec, RegularizationPlan(), seed=0)
    source.check_output(built, splits.spec.task, splits.spec)
    found = ds.choose(source, splits, parts=model_parts(built.model), head=built.output_activation, **options)
    space = found.space
    # Valid ranges: the space's own plain data goes back through SearchSpace.from_dict, and fits the data and task.
    again = SearchSpace.from_dict(space.to_dict()["techniques"], max_active=space.max_active)
    assert again == space
    space.check(tuner=options.get("tuner", "bayesian"), modality=splits.spec.modality, task=splits.spec.task.kind,
                builtin_model=source.builtin)
    assert len(space.names) <= ds.MAX_TECHNIQUES
    largest = space.largest_plan({"batch_size": 32, "learning_rate": 1e-3})
    source.build(splits.spec, largest, seed=0)  # every technique on at its strongest fits the model
    keras.backend.clear_session()
    return found


# The built-in models on the data they are made for.
@pytest.mark.parametrize("model, shape, model_args, expected", [
    ("mlp", (13,), {"width": 16, "depth": 2}, ("dropout", "l2", "label_smoothing", "augment_mixup", "input_noise")),
    ("cnn1d", (40, 1), {"width": 8, "depth": 2},
     ("augment_shift", "spatial_dropout", "l2", "label_smoothing", "augment_mixup")),
    ("cnn2d", (8, 8, 1), {"width": 8, "depth": 2, "dense_units": 16},
     ("augment_translation", "spatial_dropout", "dropout", "l2", "label_smoothing")),
])
def test_the_default_space_of_each_builtin_model(model, shape, model_args, expected):
    found = _choose(model, _classes(120, shape), model_args)
    assert found.space.names == expected
    assert found.space.max_active == ds.MAX_ACTIVE
    assert found.space.origin.startswith(f"built-in {model} on ")
    left = dict(found.left_out)
    assert "batch_norm" not in found.space.names and "weight_decay" in left  # no normalization in the baseline
    if model == "cnn1d":  # the 1D CNN has no hidden Dense block (dense_units=0)
        assert left["dropout"] == "the model has no hidden Dense blocks"
    if model == "mlp":
        assert "spatial_dropout" in left and "augment_shift" in left


def _fcn(classes=10):
    """The issue's fully convolutional net: Conv1D + BN + ReLU x3, global average pooling, softmax."""
    inp = keras.Input((40, 1))
    h = inp
    for filters, kernel in [(32, 8), (64, 5), (32, 3)]:
        h = keras.layers.Conv1D(filters, kernel, padding="same")(h)
        h = keras.layers.BatchNormalization()(h)
        h = keras.layers.ReLU()(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    return keras.Model(inp, keras.layers.Dense(classes, activation="softmax")(h))


@pytest.mark.parametrize("n", [30, 60, 120])
def test_a_users_functional_cnn_with_batch_norm_on_tiny_sequences(n):
    found = _choose(_fcn, _classes(n, (40, 1), classes=10, val=20))  # MNIST-1D subsets of 30/60/120 examples
    assert found.space.names == ("augment_shift", "spatial_dropout", "weight_decay", "label_smoothing",
                                 "augment_mixup")
    left = dict(found.left_out)
    assert left["dropout"] == "the model has no hidden Dense blocks"
    assert "l2" in left and "weight_decay" in found.space.names  # its blocks normalize: decoupled decay
    why = {r.name: r.why for r in found.chosen}
    assert "normaliz" in why["weight_decay"]
    assert "too few to stop on" in left["early_stopping"]  # a tiny validation split: no early stopping
    assert found.space.origin.startswith("your _fcn on sequence classification data")


def test_a_users_mlp_with_dropout_keeps_its_dropout_and_gets_the_rest():
    def mlp():
        inp = keras.Input((13,))
        h = keras.layers.Dropout(0.2)(keras.layers.Dense(32, activation="relu")(inp))
        return keras.Model(inp, keras.layers.Dense(3)(h))

    found = _choose(mlp, _classes(150, (13,)))
    assert found.space.names == ("l2", "label_smoothing", "augment_mixup", "input_noise")
    assert dict(found.left_out)["dropout"] == "the model has Dropout layers already"


def test_regression_gets_no_label_techniques_and_early_stopping_only_with_enough_validation():
    large = _choose("mlp", _regression(442), {"width": 16, "depth": 1})
    assert large.space.names == ("dropout", "l2", "input_noise", "early_stopping")
    tiny = _choose("mlp", _regression(60), {"width": 16, "depth": 1})
    assert tiny.space.names == ("dropout", "l2", "input_noise")
    left = dict(tiny.left_out)
    assert left["label_smoothing"].startswith("a technique for classification")
    assert "12 validation examples are too few" in left["early_stopping"]


def test_what_the_model_or_the_loss_cannot_take_is_left_out():
    splits = _classes(120, (6,), classes=2)

    def sigmoid():
        inp = keras.Input((6,))
        hidden = keras.layers.Dense(8, activation="relu")(inp)
        return keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(hidden))

    found = _choose(sigmoid, splits, own_loss=True)
    assert "augment_mixup" not in found.space.names and "label_smoothing" not in found.space.names
    left = dict(found.left_out)
    assert "one sigmoid unit" in left["augment_mixup"] and "your own loss" in left["label_smoothing"]

    class Sub(keras.Model):  # a subclassed model: nothing can be placed inside it
        def __init__(self):
            super().__init__()
            self.hidden, self.out = keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)

        def call(self, x):
            return self.out(self.hidden(x))

    def subclassed():
        model = Sub()
        model(np.zeros((1, 6), "float32"))
        return model

    found = _choose(subclassed, splits)
    assert found.space.names == ("weight_decay", "label_smoothing", "augment_mixup")

    def by_plan(plan):  # the builder places techniques itself: kreg keeps to techniques outside the model
        inp = keras.Input((6,))
        return keras.Model(inp, keras.layers.Dense(2)(keras.layers.Dense(8, activation="relu")(inp)))

    found = _choose(by_plan, splits)
    assert found.space.names == ("weight_decay", "label_smoothing", "augment_mixup")
    assert "places the plan's techniques itself" in dict(found.left_out)["dropout"]


def test_the_grid_tuner_gets_values_and_no_max_active():
    found = _choose("mlp", _regression(442), {"width": 8, "depth": 1}, tuner="grid")
    specs = found.space.to_dict()["techniques"]
    assert specs["l2"] == {"strength": {"values": [1e-6, 1e-4, 1e-2]}}
    assert specs["dropout"] == {"rate": {"values": [0.1, 0.3, 0.5]}}
    assert found.space.max_active is None
    assert _choose("mlp", _regression(442), {"width": 8, "depth": 1}, max_active=2).space.max_active == 2


# ------------------------------------------------------------------ prepare
def test_prepare_searches_the_default_space_and_an_empty_mapping_means_the_baseline_alone(tmp_path):
    from rich.console import Console

    from kreg.lab.search.tune import SearchSummary, prepare, request
    from kreg.lab.tracking.console import RichReporter
    from kreg.lab.tracking.notes import search_note

    splits = _classes(90, (5,))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = dict(model_args={"width": 8, "depth": 1}, tracking_uri=uri, epochs=1)
    prepared = prepare(request("mlp", splits, **common))
    default = prepared.search.space
    assert default.names == ("dropout", "l2", "label_smoothing", "augment_mixup", "input_noise")
    assert default.origin.startswith("built-in mlp on tabular classification data (")
    assert prepared.config["search"]["techniques"]["l2"] == {"strength": {"min": 1e-6, "max": 1e-2, "scale": "log"}}
    auto = prepare(request("mlp", splits, techniques="auto", max_active=1, **common)).search.space
    assert auto.names == default.names and auto.max_active == 1
    alone = prepare(request("mlp", splits, techniques={}, **common))
    assert alone.search.space.names == () and alone.search.space.origin == ""
    assert alone.config["search"]["techniques"] == {}
    with pytest.raises(ConfigError, match="`exclusive`.*techniques as well"):
        prepare(request("mlp", splits, exclusive=[["l1", "l2"]], **common))
    with pytest.raises(ConfigError, match="`techniques`.*a mapping"):
        prepare(request("mlp", splits, techniques="everything", **common))
    # What the user sees: the console's first lines and the parent run's description say what was searched.
    reporter = RichReporter(Console(record=True, width=400))
    reporter.search_started(prepared.search, 3)
    reporter.progress.stop()
    assert f"default space: {default.origin}" in reporter.console.export_text()
    summary = SearchSummary(pipeline="p", parent_run_id=None, experiment="p", tracking_uri=uri, records=[],
                            baseline=None, best=None, duration_s=1.0)
    assert f"Default space (no techniques given): {default.origin}." in search_note(summary, prepared.search)
    assert "Default space" not in search_note(summary, alone.search)


def test_a_pipeline_without_techniques_searches_the_default_space():
    from kreg.lab.config import parse_pipeline

    base = {"name": "p", "data": {"dataset": "wine"}, "model": {"type": "mlp"}}
    cfg = parse_pipeline({**base, "search": {"max_active": 2}})
    assert cfg.search.default_space
    kwargs = cfg.tune_kwargs()
    assert kwargs["techniques"] is None and kwargs["max_active"] == 2
    empty = parse_pipeline({**base, "search": {"techniques": {}}}).tune_kwargs()
    assert isinstance(empty["techniques"], SearchSpace) and empty["techniques"].names == ()
    with pytest.raises(ConfigError, match="search.exclusive"):
        parse_pipeline({**base, "search": {"exclusive": [["l1", "l2"]]}})


# ---------------------------------------------------------------------- CLI
def test_kreg_techniques_for_a_pipeline_prints_the_space_with_ranges_and_sources(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x_train=rng.normal(size=(80, 4)), y_train=np.arange(80) % 2,
             x_test=rng.normal(size=(20, 4)), y_test=np.arange(20) % 2)
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(yaml.safe_dump({"name": "p", "data": {"arrays": "d.npz"}, "model": {"type": "mlp", "width": 8},
                                        "search": {"max_trials": 4}}))
    result = subprocess.run([sys.executable, "-m", "kreg.lab.cli", "techniques", "--for", str(pipeline)],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "search.techniques is absent: `kreg tune` searches kreg's default space" in out
    assert "default space for built-in mlp on tabular classification data (64 training, 16 validation examples)" \
        in out
    assert "at most 3 on in one trial" in out
    assert "  l2                   strength 1e-06 to 0.01 (log)" in out
    assert "source: Srivastava et al. 2014" in out and "why: " in out
    assert "left out:" in out and "early_stopping" in out


def test_kreg_techniques_for_a_shipped_pipeline_names_its_own_space(capsys):
    from kreg.lab.cli import main

    assert main(["techniques", "--for", str(ROOT / "pipelines" / "mnist1d_cnn.yaml")]) == 0
    out = capsys.readouterr().out
    assert "the pipeline searches its own space (search.techniques); without it, kreg would search" in out
    assert "default space for built-in cnn1d on sequence classification data (3200 training, 800 validation" in out
    assert "augment_shift        strength 0.02 to 0.3" in out


def test_the_docs_table_lists_every_technique_of_the_default_table():
    text = (ROOT / "docs" / "guide" / "defaults.md").read_text()
    table = text[text.index("## The default search space"):text.index("What that gives:")]
    for row in ds.DEFAULTS:
        assert f"| `{row.name}` |" in table, row.name


def test_kreg_validate_says_a_pipeline_without_techniques_searches_the_default_space(tmp_path, capsys):
    from kreg.lab.cli import main

    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(yaml.safe_dump({"name": "p", "data": {"dataset": "wine"}, "model": {"type": "mlp"}}))
    assert main(["validate", str(pipeline)]) == 0
    out = capsys.readouterr().out
    said = f"techniques: none given, so kreg's default space for the model and data (`kreg techniques --for {pipeline}`"
    assert said in out
