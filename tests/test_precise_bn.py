"""Precise batch-norm statistics: kreg.training.recompute_batch_norm_statistics, PreciseBatchNorm, the lab's switch."""

import dataclasses
import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import kreg
from kreg.training import PreciseBatchNorm, recompute_batch_norm_statistics

agnostic = pytest.mark.backend_agnostic  # the library's tests also run under KERAS_BACKEND=jax


def series(n, seed):
    """Three classes of 16-step series, each with a bump in its own place."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 16, 1)).astype("float32")
    for c in range(3):
        x[y == c, 4 * c:4 * c + 4, 0] += 3.0
    return x + 10.0, y  # not standardized: far from the moving statistics' start (mean 0, variance 1)


def fcn():
    """Conv1D + BatchNormalization + ReLU blocks, global average pooling, softmax (the issue's FCN, smaller)."""
    inp = keras.Input((16, 1))
    h = inp
    for i in range(2):
        h = keras.layers.Conv1D(8, 3, padding="same", name=f"conv{i}")(h)
        h = keras.layers.BatchNormalization(name=f"bn{i}")(h)
        h = keras.layers.ReLU()(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="out")(h))


def values(variables):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), -1) == y))


@agnostic
def test_one_step_per_epoch_collapses_until_the_statistics_are_recomputed():
    keras.utils.set_random_seed(0)
    x, y = series(36, 0)
    model = fcn()
    model.compile(keras.optimizers.Adam(0.03), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=20, verbose=0)  # 36 examples, batch 64: one step per epoch
    training_mode = float(np.mean(np.argmax(keras.ops.convert_to_numpy(model(x, training=True)), -1) == y))
    before = accuracy(model, x, y)
    weights = values(model.trainable_variables)
    result = recompute_batch_norm_statistics(model, x, batch_size=64)
    after = accuracy(model, x, y)
    assert (result.layers, result.batches, result.examples) == (2, 1, 36)
    # Training mode fits; inference mode is at chance until its statistics are those of the final weights.
    assert training_mode >= 0.75 and before <= 0.5, (training_mode, before)
    assert after >= training_mode - 0.06, (training_mode, after)
    assert all(np.array_equal(a, b) for a, b in zip(weights, values(model.trainable_variables)))
    assert all(l.momentum == 0.99 for l in (model.get_layer("bn0"), model.get_layer("bn1")))


@agnostic
def test_statistics_are_the_mean_of_the_batch_statistics():
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(43, 4)) * [1, 2, 3, 4] + [0, 1, -2, 5]).astype("float32")
    inp = keras.Input((4,))
    bn = keras.layers.BatchNormalization(momentum=0.9)
    model = keras.Model(inp, keras.layers.Dense(2)(bn(inp)))
    before = values([bn.gamma, bn.beta, *model.layers[-1].weights])
    result = recompute_batch_norm_statistics(model, (x, np.zeros(43)), batch_size=8, seed=3)
    # Numpy reference: the same seeded order, full batches only (40 of the 43), equal weight per batch.
    order = np.random.default_rng(3).permutation(43)[:40].reshape(5, 8)
    means = np.mean([x[b].mean(0) for b in order], 0)
    variances = np.mean([x[b].var(0) for b in order], 0)  # biased, as Keras' batch statistics
    assert (result.layers, result.batches, result.examples) == (1, 5, 40)
    np.testing.assert_allclose(values([bn.moving_mean])[0], means, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(values([bn.moving_variance])[0], variances, rtol=1e-5)
    assert all(np.array_equal(a, b) for a, b in zip(before, values([bn.gamma, bn.beta, *model.layers[-1].weights])))
    assert bn.momentum == 0.9
    # An iterable of (x, y) batches is read as it comes: the mean of its batches' statistics.
    batches = [(x[:20], None), (x[20:], None)]
    assert recompute_batch_norm_statistics(model, batches).batches == 2
    np.testing.assert_allclose(values([bn.moving_mean])[0], (x[:20].mean(0) + x[20:].mean(0)) / 2, atol=1e-5)
    capped = recompute_batch_norm_statistics(model, x, batch_size=8, max_batches=2)
    assert (capped.batches, capped.examples) == (2, 16)


@agnostic
def test_nested_layers_are_updated_and_frozen_ones_left_alone():
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(32, 6)) + 3.0).astype("float32")
    inner = keras.Sequential([keras.layers.Dense(5), keras.layers.BatchNormalization(name="inner_bn")],
                             name="block")
    sub_inp = keras.Input((5,))
    functional = keras.Model(sub_inp, keras.layers.BatchNormalization(name="deep_bn")(sub_inp), name="sub")
    frozen = keras.layers.BatchNormalization(name="frozen_bn")
    frozen.trainable = False
    inp = keras.Input((6,))
    model = keras.Model(inp, keras.layers.Dense(1)(frozen(functional(inner(inp)))))
    inner_bn, deep_bn = inner.get_layer("inner_bn"), functional.get_layer("deep_bn")
    inner_bn.gamma.assign(np.full(5, 2.0, "float32"))
    inner_bn.beta.assign(np.full(5, 3.0, "float32"))
    result = recompute_batch_norm_statistics(model, x, batch_size=32)
    assert result.layers == 2
    h = keras.ops.convert_to_numpy(inner.layers[0](x))
    np.testing.assert_allclose(values([inner_bn.moving_mean])[0], h.mean(0), rtol=1e-4, atol=1e-4)
    # The deeper layer saw the inner one's output normalized with the batch's own statistics, as in training:
    # mean beta = 3, variance gamma**2 = 4.
    np.testing.assert_allclose(values([deep_bn.moving_mean])[0], 3.0, atol=1e-4)
    np.testing.assert_allclose(values([deep_bn.moving_variance])[0], 4.0, rtol=1e-2)
    np.testing.assert_array_equal(values([frozen.moving_mean])[0], 0.0)
    np.testing.assert_array_equal(values([frozen.moving_variance])[0], 1.0)


@agnostic
def test_a_layer_frozen_between_two_recomputes_is_left_alone_by_the_second():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(32, 3)).astype("float32")
    inp = keras.Input((3,))
    first, second = keras.layers.BatchNormalization(), keras.layers.BatchNormalization()
    model = keras.Model(inp, second(first(inp)))
    assert recompute_batch_norm_statistics(model, x, batch_size=16).layers == 2  # compiled once (TensorFlow)
    second.trainable = False
    kept = values([second.moving_mean, second.moving_variance])
    assert recompute_batch_norm_statistics(model, x + 5.0, batch_size=16).layers == 1
    np.testing.assert_allclose(values([first.moving_mean])[0], (x + 5.0).mean(0), atol=1e-5)
    assert all(np.array_equal(a, b) for a, b in zip(kept, values([second.moving_mean, second.moving_variance])))


@agnostic
def test_dropout_is_off_and_no_other_state_moves():
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(64, 3)) * 2.0 + 1.0).astype("float32")
    inp = keras.Input((3,))
    dropout = keras.layers.Dropout(0.5, seed=1)
    bn = keras.layers.BatchNormalization()
    model = keras.Model(inp, bn(dropout(inp)))
    others = [v for v in model.variables if v.path not in (bn.moving_mean.path, bn.moving_variance.path)]
    state = values(others)  # dropout's random-number state among them
    recompute_batch_norm_statistics(model, x, batch_size=64)
    np.testing.assert_allclose(values([bn.moving_variance])[0], x.var(0), rtol=1e-4)  # not the dropped-out variance
    assert all(np.array_equal(a, b) for a, b in zip(state, values(others)))


@agnostic
def test_a_model_without_batch_norm_is_left_alone_and_its_data_not_read():
    def unread():
        raise AssertionError("the data was read")
        yield

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    weights = values(model.variables)
    result = recompute_batch_norm_statistics(model, unread())
    assert (result.layers, result.batches, result.examples) == (0, 0, 0)
    assert result.describe() == "no BatchNormalization layer"
    assert all(np.array_equal(a, b) for a, b in zip(weights, values(model.variables)))


@agnostic
def test_bad_arguments_and_empty_data_are_refused_before_anything_changes():
    inp = keras.Input((2,))
    bn = keras.layers.BatchNormalization()
    model = keras.Model(inp, bn(inp))
    with pytest.raises(ValueError, match="batch_size"):
        recompute_batch_norm_statistics(model, np.ones((4, 2), "float32"), batch_size=0)
    with pytest.raises(ValueError, match="data"):
        recompute_batch_norm_statistics(model, [])
    np.testing.assert_array_equal(values([bn.moving_mean])[0], 0.0)


@agnostic
def test_callback_recomputes_before_each_validation_and_at_the_end():
    keras.utils.set_random_seed(0)
    x, y = series(36, 0)
    xv, yv = series(30, 1)
    model = fcn()
    model.compile(keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    precise = PreciseBatchNorm(x, every=1, batch_size=64)
    history = model.fit(x, y, batch_size=64, epochs=3, validation_data=(xv, yv), callbacks=[precise], verbose=0)
    assert precise.recomputes == 3 + 1 and precise.result.layers == 2
    # The last validation ran with the statistics of the final weights: the same as after training.
    final = model.evaluate(xv, yv, verbose=0, return_dict=True)
    assert final["accuracy"] == pytest.approx(history.history["val_accuracy"][-1])
    assert final["loss"] == pytest.approx(history.history["val_loss"][-1], rel=1e-4)


def test_collapse_diagnosis_names_what_is_left_once_the_statistics_are_precise():
    from kreg.lab.analysis.diagnoses import diagnose

    history = {"accuracy": [0.9, 1.0], "train_accuracy": [0.3, 0.33]}
    plain = diagnose(history, {"kept_epoch": 2}, "accuracy")[0]
    assert "have not converged" in plain["advice"] and "precise_bn" in plain["advice"]
    precise = diagnose(history, {"kept_epoch": 2, "precise_bn_layers": 3, "precise_bn_examples": 28}, "accuracy")[0]
    assert precise["kind"] == "inference_collapse" and "(3 layers, 28 examples)" in precise["evidence"]
    assert "have not converged" not in precise["advice"] and "only 28 examples" in precise["advice"]


def test_precise_bn_setting_is_checked_before_any_work(tmp_path):
    from kreg.lab.config import parse_pipeline
    from kreg.lab.errors import ConfigError

    x, y = series(48, 0)
    for bad in ("yes", 1, None):
        with pytest.raises(ConfigError, match="precise_bn") as info:
            kreg.tune(fcn, kreg.data.from_arrays(x, y, x_test=x[:12], y_test=y[:12]), precise_bn=bad, max_trials=1,
                      epochs=1, verbose=0, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
        assert info.value.field == "precise_bn" and info.value.value == bad
    assert not (tmp_path / "mlflow.db").exists()
    base = {"name": "t", "data": {"dataset": "wine"}, "model": {"type": "mlp"}, "training": {"precise_bn": "on"}}
    with pytest.raises(ConfigError) as info:
        parse_pipeline(base)
    assert info.value.field == "training.precise_bn"
    base["training"]["precise_bn"] = False
    assert parse_pipeline(base).training.precise_bn is False


_FRESH = """
import json, sys
import keras
import kreg
model = keras.saving.load_model(sys.argv[1])
bns = [l for l in model._flatten_layers(include_self=False, recursive=True)
       if isinstance(l, keras.layers.BatchNormalization)]
print(json.dumps([keras.ops.convert_to_numpy(l.moving_mean).tolist() for l in bns]))
"""


def test_search_answer_carries_the_recomputed_statistics(tmp_path):
    from mlflow.tracking import MlflowClient

    from kreg.lab.search.tune import prepare, request
    from kreg.lab.trial.procedures import precise_bn
    from kreg.lab.trial.refit import pooled_search
    from kreg.training.precise_bn import batch_norm_layers

    x, y = series(96, 0)
    xt, yt = series(30, 1)
    data = kreg.data.from_arrays(x, y, x_test=xt, y_test=yt)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = dict(techniques={}, max_trials=1, epochs=3, batch_size=32, cv=False, tuner="random", learning_rate=0.03,
                verbose=0)
    summary = kreg.tune(fcn, data, tracking_uri=uri, experiment="precise", **args)
    client = MlflowClient(uri)
    trial = client.get_run(summary.baseline.run_id)
    tag = trial.data.tags["kreg.precise_bn"]  # e.g. "on (2 layers, 64 examples in 2 batches at the end; 64 before ..."
    assert tag.startswith("on (2 layers, ") and tag.endswith(" before each validation)"), tag
    assert summary.baseline.metrics["precise_bn_layers"] == 2
    # The answer's statistics are those of its final weights over the pooled training data: recomputing
    # them again (same weights, data, seed and batch size) changes nothing.
    bns = batch_norm_layers(summary.model)
    saved = [values([l.moving_mean, l.moving_variance]) for l in bns]
    assert len(bns) == 2
    # precise_bn=False: the same search (prepare resolves what tune would), Keras' moving averages as they are.
    search = prepare(request(fcn, data, tracking_uri=uri, experiment="precise-check", precise_bn=False, **args)).search
    assert search.training.precise_bn is False
    batch_size = summary.answer.refit.plan.batch_size or search.training.batch_size
    recompute_batch_norm_statistics(summary.answer.refit.model, pooled_search(search).splits.x_train,
                                    batch_size=batch_size, seed=search.seed)
    for layer, (mean, variance) in zip(bns, saved):
        np.testing.assert_allclose(values([layer.moving_mean])[0], mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(values([layer.moving_variance])[0], variance, rtol=1e-5, atol=1e-6)
    path = client.download_artifacts(summary.parent_run_id, "model/model.keras", str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", _FRESH, path], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(map(tuple, fresh)) == sorted(tuple(m.tolist()) for m, _ in saved)
    callback, tag = precise_bn(search, summary.answer.refit.model, search.splits, batch_size, seed=0)
    assert callback is None and tag == "off (training.precise_bn: false)"  # fit_plan adds no callback, tags this
    on, _ = precise_bn(dataclasses.replace(search, training=search.training.model_copy(update={"precise_bn": "auto"})),
                       summary.answer.refit.model, search.splits, batch_size, seed=0)
    assert on is not None and on.every == 1 and on.batch_size == batch_size


def test_a_collapsed_baseline_stops_the_search_with_its_line(tmp_path):
    """Issue 21: the user's FCN at one step per epoch with precise statistics off collapses in inference mode; the
    search stops after the baseline, saying what to change, instead of running its trials at chance."""
    from mlflow.tracking import MlflowClient

    x, y = series(36, 0)
    x_test, y_test = series(30, 1)
    data = kreg.data.from_arrays(x, y, x_val=x[:12], y_val=y[:12], x_test=x_test, y_test=y_test, standardize="none")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    summary = kreg.tune(fcn, data, techniques={"spatial_dropout": {"min": 0.1, "max": 0.3}}, tuner="random", max_trials=3,
                        cv=None, epochs=20, batch_size=64, learning_rate=0.03, precise_bn=False,
                        tracking_uri=uri, verbose=0, seed=0)
    assert len(summary.records) == 1 and summary.status == "FAILED" and summary.answer.refit is None
    assert summary.error.startswith("stopped after the baseline: inference collapse (training-mode accuracy"), \
        summary.error
    assert "precise" in summary.error  # with the statistics off, the line says to turn them on
    parent = MlflowClient(uri).get_run(summary.parent_run_id)
    assert parent.info.status == "FAILED" and parent.data.tags["kreg.error"] == summary.error
