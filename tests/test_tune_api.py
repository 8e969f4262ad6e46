"""kreg.tune on the user's own model, data and task, read back from MLflow."""

import json

import keras
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import kreg
from kreg.lab.errors import ConfigError, DataError


def tune(*args, **kwargs):
    """``kreg.tune`` without the refit unless a test asks for it: these tests read the trials and their runs (the
    refit, the answer and its model are tested in test_selection.py and test_export.py)."""
    return kreg.tune(*args, **{"refit": False, **kwargs})


def images(n=96, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 8, 8, 1)).astype("float32")
    x[np.arange(n), y * 2, 2:6, 0] += 3.0  # a learnable bright row per class
    return x, y


def skip_cnn():
    """The user's functional CNN: a skip connection and a nested Sequential block, softmax output."""
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(8, 3, padding="same", name="c1")(inp)
    h = keras.layers.ReLU(name="r1")(h)
    block = keras.Sequential([keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c2")], name="block")
    h = keras.layers.Add(name="skip")([h, block(h)])
    h = keras.layers.GlobalAveragePooling2D(name="pool")(h)
    h = keras.layers.Dense(16, activation="relu", name="hidden")(h)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="out")(h))


def runs(uri, experiment):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    found = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    parent = next(r for r in found if "mlflow.parentRunId" not in r.data.tags)
    return client, parent, [r for r in found if "mlflow.parentRunId" in r.data.tags]


def test_users_functional_model_on_arrays(tmp_path):
    x, y = images()
    xt, yt = images(48, seed=1)
    data = kreg.data.from_arrays(x, y, x_test=xt, y_test=yt)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = tune(skip_cnn, data, techniques={
        "l2": {"optional": False, "strength": 1e-4},
        "spatial_dropout": {"optional": False, "rate": 0.1},
        "dropout": {"optional": False, "rate": 0.2},
        "label_smoothing": {"min": 0.0, "max": 0.2},
    }, max_trials=2, epochs=2, tuner="random", tracking_uri=uri, experiment="users_cnn", cv=None)
    assert result.baseline is result.records[0] and len(result.records) == 2
    assert result.best is not None and result.best.run_id
    client, parent, children = runs(uri, "users_cnn")
    assert parent.info.run_id == result.parent_run_id and parent.info.status == "FINISHED"
    trial = children[0]
    placements = json.loads(open(client.download_artifacts(trial.info.run_id, "placements.json", str(tmp_path))).read())
    assert set(placements["l2"]) >= {"c1", "block/c2", "hidden", "out"}  # every kernel, nested ones too
    assert placements["dropout"] and placements["spatial_dropout"]
    for name in ("train_accuracy", "gap_accuracy", "val_accuracy"):
        assert len(client.get_metric_history(trial.info.run_id, name)) == 2, name
    assert 0 <= trial.data.metrics["test_accuracy"] <= 1
    # The output is a softmax: the loss is computed from probabilities, so it starts near ln(3).
    first_loss = client.get_metric_history(trial.info.run_id, "val_loss")[0].value
    assert first_loss < 3.0


@pytest.mark.parametrize("activation", ["softmax", None])
def test_softmax_and_logits_outputs_train_alike(tmp_path, activation):
    x, y = images()
    data = kreg.data.from_arrays(x, y, x_test=x[:30], y_test=y[:30])

    def build():
        inp = keras.Input((8, 8, 1))
        h = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(inp))
        return keras.Model(inp, keras.layers.Dense(3, activation=activation)(h))

    result = tune(build, data, techniques={}, max_trials=1, epochs=3, tuner="random", learning_rate=0.01,
                       tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="heads", cv=None)
    m = result.baseline.metrics
    assert m["train_accuracy"] > 0.6  # learnable data: a wrong from_logits would stall it
    assert m["val_loss"] < np.log(3)


def test_regression_contract_in_mlflow(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype("float32")
    y = 100.0 + 30.0 * (x @ np.array([1.0, -2.0, 0.5, 0.0, 0.0])) + rng.normal(scale=5.0, size=200)
    data = kreg.data.from_arrays(x[:150], y[:150], x_test=x[150:], y_test=y[150:])
    assert data.spec.task.kind == "regression"
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = tune("mlp", data, model_args={"width": 16, "depth": 1}, learning_rate=0.01,
                       techniques={"dropout": {"min": 0.1, "max": 0.3}, "label_smoothing": None} if False else
                       {"dropout": {"min": 0.1, "max": 0.3}}, max_trials=2, epochs=3, tuner="random",
                       tracking_uri=uri, experiment="reg", cv=None)
    assert result.metric == "rmse" and result.higher_is_better is False
    client, parent, children = runs(uri, "reg")
    for child in children:
        for name in ("gap_mae", "gap_rmse", "gap_loss", "train_mae", "val_rmse", "val_r2"):
            assert len(client.get_metric_history(child.info.run_id, name)) == 3, name
        m = child.data.metrics
        for name in ("test_rmse", "test_mae", "test_mse", "test_r2", "test_gap_rmse"):
            assert name in m, name
        assert m["test_rmse"] == pytest.approx(np.sqrt(m["test_mse"]), rel=1e-4)
        assert m["test_rmse"] > 5.0  # in the targets' units (scale 30), not standardized
    pm = parent.data.metrics
    assert pm["gain_test_rmse"] == pytest.approx(pm["baseline_test_rmse"] - pm["test_rmse"])
    assert parent.data.tags["kreg.task"] == "regression"


def test_regression_refuses_classification_techniques(tmp_path):
    x = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    data = kreg.data.from_arrays(x, x[:, 0] * 2.0, x_test=x[:20], y_test=x[:20, 0])
    with pytest.raises(ConfigError, match=r"`techniques.label_smoothing`.*a technique for classification"):
        tune("mlp", data, techniques={"label_smoothing": {"min": 0.0, "max": 0.1}},
                  tracking_uri=f"sqlite:///{tmp_path}/s/mlflow.db", cv=None)
    assert not (tmp_path / "s").exists()


class Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(8, activation="relu")
        self.out = keras.layers.Dense(3)

    def call(self, x):
        return self.out(self.hidden(keras.ops.reshape(x, (-1, 64))))


def test_subclassed_model_agnostic_only(tmp_path):
    x, y = images()
    data = kreg.data.from_arrays(x, y, x_test=x[:30], y_test=y[:30])
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = tune(lambda plan: Subclassed(), data, techniques={"label_smoothing": {"min": 0.05, "max": 0.1}},
                       max_trials=1, epochs=1, tracking_uri=uri, experiment="sub", cv=None)
    assert result.records[0].status == "COMPLETED"
    with pytest.raises(ConfigError, match="dropout"):
        tune(Subclassed, data, techniques={"dropout": {"min": 0.1, "max": 0.2}},
                  tracking_uri=f"sqlite:///{tmp_path}/refused/mlflow.db", cv=None)
    assert not (tmp_path / "refused").exists()  # refused before any run


def test_misfit_plan_fails_before_any_run(tmp_path):
    x = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    y = np.arange(60) % 2

    def mlp():
        inp = keras.Input((4,))
        return keras.Model(inp, keras.layers.Dense(2)(keras.layers.Dense(8, activation="relu")(inp)))

    data = kreg.data.from_arrays(x, y, x_test=x[:20], y_test=y[:20])
    with pytest.raises(ConfigError, match="spatial"):
        tune(mlp, data, techniques={"spatial_dropout": {"min": 0.1, "max": 0.2}},
                  tracking_uri=f"sqlite:///{tmp_path}/s/mlflow.db", cv=None)
    with pytest.raises(ConfigError, match="output units"):
        tune(mlp, kreg.data.from_arrays(x, np.arange(60) % 3, x_test=x[:21], y_test=np.arange(21) % 3),
                  tracking_uri=f"sqlite:///{tmp_path}/s/mlflow.db", cv=None)
    with pytest.raises(ConfigError, match="objective"):
        tune(mlp, data, objective="val_mae", tracking_uri=f"sqlite:///{tmp_path}/s/mlflow.db", cv=None)
    assert not (tmp_path / "s").exists()


def test_bad_data_fails_before_any_run(tmp_path):
    x = np.zeros((10, 3), "float32")
    with pytest.raises(DataError):
        tune("mlp", (x, np.arange(9)), tracking_uri=f"sqlite:///{tmp_path}/s/mlflow.db", cv=None)
    assert not (tmp_path / "s").exists()


def test_a_keras_model_instance_is_cloned_with_fresh_weights(tmp_path):
    x, y = images()
    data = kreg.data.from_arrays(x, y, x_test=x[:30], y_test=y[:30])
    model = skip_cnn()
    before = [w.copy() for w in model.get_weights()]
    result = tune(model, data, techniques={"dropout": {"optional": False, "rate": 0.2}}, max_trials=1,
                       epochs=1, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="inst", cv=None)
    assert result.records[0].status == "COMPLETED"
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # the user's model is never trained or changed


def test_binary_sigmoid_head_and_its_refusals(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64")
    data = kreg.data.from_arrays(x[:90], y[:90], x_test=x[90:], y_test=y[90:])

    def build():
        inp = keras.Input((6,))
        h = keras.layers.Dense(8, activation="relu")(inp)
        return keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(h))

    result = tune(build, data, techniques={"l2": {"optional": False, "strength": 1e-4}}, max_trials=1,
                       epochs=20, learning_rate=0.05, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="bin", cv=None)
    m = result.baseline.metrics
    assert m["train_accuracy"] > 0.8 and "test_accuracy" in m
    with pytest.raises(ConfigError, match="augment_mixup"):
        tune(build, data, techniques={"augment_mixup": {"min": 0.1, "max": 0.2}},
                  tracking_uri=f"sqlite:///{tmp_path}/s/mlflow.db", cv=None)
    assert not (tmp_path / "s").exists()


def test_streamed_tf_data_through_tune(tmp_path):
    import tensorflow as tf

    x, y = images(128)
    ds = lambda a, b: tf.data.Dataset.from_tensor_slices((a, b))  # noqa: E731
    data = kreg.data.from_datasets(ds(x[:80], y[:80]), validation=ds(x[80:104], y[80:104]),
                                   test=ds(x[104:], y[104:]), task="classification", num_classes=3)
    result = tune(skip_cnn, data, techniques={"dropout": {"optional": False, "rate": 0.1}}, max_trials=1,
                       epochs=2, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="stream", cv=None)
    assert result.records[0].status == "COMPLETED"
    with pytest.raises(ConfigError, match="ensemble"):
        tune(skip_cnn, data, techniques={"ensemble": {"members": 2}},
                  tracking_uri=f"sqlite:///{tmp_path}/s/mlflow.db", cv=None)


def test_yaml_with_csv_and_builder_behaves_like_the_call(tmp_path):
    import pandas as pd
    import yaml

    from kreg.lab.cli import main

    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 3))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "colour": np.where(x[:, 2] > 0, "red", "blue"),
                          "price": 10 + 3 * x[:, 0] - 2 * x[:, 1] + rng.normal(scale=0.1, size=150)})
    frame[:110].to_csv(tmp_path / "train.csv", index=False)
    frame[110:].to_csv(tmp_path / "test.csv", index=False)
    (tmp_path / "mymodels.py").write_text(
        "import keras\n\n"
        "def build(width=8):\n"
        "    inp = keras.Input((4,))\n"
        "    h = keras.layers.Dense(width, activation='relu')(inp)\n"
        "    return keras.Model(inp, keras.layers.Dense(1)(h))\n")
    pipeline = {
        "name": "csv_builder", "data": {"csv": "train.csv", "target": "price", "test": "test.csv"},
        "model": {"builder": "mymodels:build", "args": {"width": 12}},
        "training": {"epochs": 3, "learning_rate": 0.01},
        "search": {"tuner": "random", "max_trials": 2, "techniques": {"l2": {"min": 1e-5, "max": 1e-3, "scale": "log"}}},
    }
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(pipeline))
    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    assert main(["tune", str(tmp_path / "p.yaml"), "--tracking-uri", uri]) == 0
    client, parent, children = runs(uri, "csv_builder")
    assert len(children) == 2 and "test_rmse" in parent.data.metrics
    assert parent.data.params["model.builder"] == "mymodels:build"
    assert all(c.data.tags["kreg.trial_status"] == "COMPLETED" for c in children)


def test_builder_taking_the_plan_places_techniques_with_its_helpers(tmp_path):
    x, y = images()
    data = kreg.data.from_arrays(x, y, x_test=x[:30], y_test=y[:30])

    def build(plan):
        inp = keras.Input((8, 8, 1))
        h = inp
        for layer in plan.input_layers("image", seed=1):
            h = layer(h)
        h = keras.layers.Conv2D(8, 3, activation="relu", kernel_regularizer=plan.kernel_regularizer(),
                                name="conv")(h)
        sdrop = plan.spatial_dropout_layer(2, name="conv_sdrop")
        h = sdrop(h) if sdrop else h
        h = keras.layers.Dense(16, activation="relu", kernel_regularizer=plan.kernel_regularizer(),
                               name="hidden")(keras.layers.Flatten()(h))
        drop = plan.dropout_layer(name="hidden_dropout")
        h = drop(h) if drop else h
        return keras.Model(inp, keras.layers.Dense(3, kernel_regularizer=plan.kernel_regularizer(hidden=False),
                                                   name="logits")(h))

    result = tune(build, data, techniques={
        "l2": {"optional": False, "strength": 1e-4}, "dropout": {"optional": False, "rate": 0.2},
        "spatial_dropout": {"optional": False, "rate": 0.1}, "augment_flip": {"optional": False, "strength": 1.0}},
        max_trials=1, epochs=1, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="planned", cv=None)
    placements = result.records[0].placements
    assert placements["l2"] == ["conv", "hidden", "logits"]
    assert placements["dropout"] == ["hidden_dropout"] and placements["spatial_dropout"] == ["conv_sdrop"]
    assert placements["augmentation"]


def _binary(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64")


def test_heads_read_from_their_outputs(tmp_path):
    """One linear unit for two classes is a binary logit; a softmax written as an op is still a softmax."""
    x, y = _binary()
    data = kreg.data.from_arrays(x[:90], y[:90], x_test=x[90:], y_test=y[90:])

    def logit():
        inp = keras.Input((6,))
        return keras.Model(inp, keras.layers.Dense(1)(keras.layers.Dense(8, activation="relu")(inp)))

    def op_softmax():
        inp = keras.Input((6,))
        return keras.Model(inp, keras.ops.softmax(keras.layers.Dense(2)(keras.layers.Dense(8, activation="relu")(inp))))

    for build in (logit, op_softmax):
        result = tune(build, data, techniques={}, max_trials=1, epochs=20, learning_rate=0.05, verbose=0,
                           tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", experiment=build.__name__, cv=None)
        m = result.baseline.metrics
        assert m["train_accuracy"] > 0.8, build.__name__  # a misread head would not learn
        assert 0 < m["val_nll"] < np.log(2) and m["val_nll"] <= m["val_loss"] + 1e-6


def test_models_that_cannot_fit_the_data_are_refused_before_any_run(tmp_path):
    x, y = _binary()
    uri = f"sqlite:///{tmp_path}/s/mlflow.db"
    reg = kreg.data.from_arrays(x[:90], x[:90, 0] * 3.0 + 1.0, x_test=x[90:], y_test=x[90:, 0])

    def relu_head():
        inp = keras.Input((6,))
        return keras.Model(inp, keras.layers.Dense(1, activation="relu")(inp))

    with pytest.raises(ConfigError, match="output activation relu"):
        tune(relu_head, reg, tracking_uri=uri, cv=None)

    def wrong_input():
        inp = keras.Input((5,))
        return keras.Model(inp, keras.layers.Dense(1)(inp))

    with pytest.raises(ConfigError, match=r"input shape \(5,\)"):
        tune(wrong_input, reg, tracking_uri=uri, cv=None)
    cls = kreg.data.from_arrays(x[:90], y[:90], x_test=x[90:], y_test=y[90:])
    with pytest.raises(ConfigError, match="val_accuracy"):
        tune("mlp", cls, metrics=[keras.metrics.AUC(name="auc")], tracking_uri=uri, cv=None)
    assert not (tmp_path / "s").exists()


def test_hyperband_baseline_trains_every_epoch_and_zero_strength_is_off(tmp_path):
    x, y = _binary(200)
    data = kreg.data.from_arrays(x[:150], y[:150], x_test=x[150:], y_test=y[150:])
    result = tune("mlp", data, model_args={"width": 8, "depth": 1}, tuner="hyperband", max_trials=3,
                       epochs=9, techniques={"dropout": {"min": 0.1, "max": 0.3}}, verbose=0,
                       tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", cv=None)
    assert result.baseline.plan.is_baseline and result.baseline.metrics["epochs_run"] == 9
    assert kreg.RegularizationPlan(l2=0.0, label_smoothing=0.0).is_baseline


def test_tune_keywords_become_the_settings_objects_at_once():
    """tune()'s flat keywords are the request's objects (kreg.lab.search.prepare.request): its documented defaults
    are the objects' defaults, every keyword lands in an object (none is mistaken for a data option), and a bad
    value names its field before anything loads (no data read, no store opened)."""
    import inspect
    import pickle

    from kreg.lab.search.prepare import Request
    from kreg.lab.search.tune import _HOW_IT_RUNS, request

    defaults = {k: p.default for k, p in inspect.signature(kreg.tune).parameters.items()
                if p.default is not inspect.Parameter.empty and k not in _HOW_IT_RUNS}
    spelled_out, omitted = request("mlp", "wine", **defaults), request("mlp", "wine")
    assert spelled_out == omitted and spelled_out.data_options == {}
    assert set(defaults) - {"repeats", "techniques", "exclusive", "monitor"} <= (
        set(type(omitted.training).model_fields) | set(type(omitted.settings).model_fields)
        | {f.name for f in __import__("dataclasses").fields(Request)})
    asked = request("mlp", "nowhere.npz", epochs=3, cv=5, repeats=2, prune="asha", monitor={"weights": False},
                    techniques={"l2": {"min": 1e-5, "max": 1e-2, "scale": "log"}}, validation_fraction=0.2)
    assert (asked.training.epochs, asked.settings.cv.folds, asked.settings.cv.repeats) == (3, 5, 2)
    assert asked.settings.prune.rule == "asha" and asked.monitor.weights is False and not asked.default_space
    assert asked.space.names == ("l2",) and asked.data_options == {"validation_fraction": 0.2}
    assert pickle.loads(pickle.dumps(asked)) == asked  # what a local worker process receives
    for bad, field in ((dict(epochs=0), "`epochs`"), (dict(repeats=2), "`repeats`"), (dict(prune="x"), "`prune.rule`"),
                       (dict(register="m", refit=False), "`register`"), (dict(train_eval_samples=0), "`train_eval_samples`")):
        with pytest.raises(ConfigError, match=field):
            request("mlp", "nowhere.npz", **bad)
