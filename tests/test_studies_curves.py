"""Issue 14 (curves): the capacity curve, the bias-variance decomposition and the validation curve.

The helpers' math against direct computations and scikit-learn / SciPy; each study on small data with a
fixed seed, the direction of its claim, and its MLflow parent run read back.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from kreg.lab.errors import ConfigError
from kreg.lab.studies.bias_variance import main_prediction, squared_decomposition, zero_one_decomposition
from kreg.lab.studies.capacity_curve import (capacity_problem, curve_shape, proportion_se, rank_correlation,
                                             rmse_se)
from kreg.lab.studies.validation_curve import ValidationCurve, choose, mean_and_se, paired_shape, plan_with


def wine_net(units=8):
    """A user's builder for wine (13 features, 3 classes) whose capacity is ``units``."""
    return keras.Sequential([keras.Input((13,)), keras.layers.Dense(units, activation="relu"), keras.layers.Dense(3)])


def fixed_net():
    return keras.Sequential([keras.Input((13,)), keras.layers.Dense(3)])


def diabetes(seed=0):
    from sklearn.datasets import load_diabetes

    import kreg

    x, y = load_diabetes(return_X_y=True)
    return kreg.data.from_arrays(x[:400], y[:400], x_test=x[400:], y_test=y[400:], seed=seed)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One MLflow store for the module's studies (creating one costs seconds); each reads back its own runs."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlruns') / 'mlflow.db'}"


def children(client, run_id):
    parent = client.get_run(run_id)
    return client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")


def known_curve(monkeypatch, figures):
    """Every point a study trains gets the figures ``figures(ctx, plan, splits, seed)`` says, and is logged as a
    trained one is: the study's own logic (choices, shapes, verdict, MLflow) on curves whose answer is known."""
    from kreg.lab.studies.base import StudyContext

    def train(self, plan, *, point, splits=None, seed=None, epochs=None, keep_model=False):
        m = figures(self, plan, splits if splits is not None else self.search.splits, seed)
        self.log_point(point, plan, {k: v for k, v in m.items() if isinstance(v, float)})
        return m

    monkeypatch.setattr(StudyContext, "train", train)


def errors_as_accuracy(train, val, test) -> dict:
    return {"train_accuracy": 1.0 - train, "val_accuracy": 1.0 - val, "test_accuracy": 1.0 - test,
            "model": None, "activation": "linear"}


# ------------------------------------------------------------------ capacity curve: the helpers

def test_curve_shape_counts_a_difference_only_beyond_twice_its_standard_error():
    assert curve_shape([0.5, 0.1, 0.3]) == "U"
    assert curve_shape([0.5, 0.1, 0.1]) == "falling"
    assert curve_shape([0.1, 0.2, 0.3]) == "rising"
    assert curve_shape([0.2, 0.2, 0.2]) == "flat"
    # one validation example in 180 is no U: 0.0111 against 0.0056 with their proportions' standard errors
    se = [proportion_se(e, 180) for e in (0.3, 0.0056, 0.0111)]
    assert curve_shape([0.3, 0.0056, 0.0111], se) == "falling"
    se_rise = [proportion_se(e, 180) for e in (0.3, 0.0056, 0.05)]  # 0.044 against 2 x 0.017
    assert curve_shape([0.3, 0.0056, 0.05], se_rise) == "U"
    assert curve_shape([0.3, 0.0056, 0.05], se_rise, z=3.0) == "falling"


def test_rank_correlation_is_scipys_spearman():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    for x, y in ((rng.normal(size=7), rng.normal(size=7)), ([1, 2, 3, 4, 5], [0.1, 0.1, 0.3, 0.2, 0.2])):
        assert rank_correlation(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert np.isnan(rank_correlation([1, 2, 3], [0.5, 0.5, 0.5]))


def test_standard_errors_of_an_error_rate_and_of_an_rmse():
    assert proportion_se(0.1, 100) == pytest.approx(0.03)
    assert proportion_se(0.0, 50) == 0.0
    rng = np.random.default_rng(0)
    sq = rng.chisquare(1, size=4000)  # per-example squared errors
    rmse = float(np.sqrt(sq.mean()))
    # the delta method against the spread of the RMSE over resamples of the examples
    boot = [np.sqrt(sq[rng.integers(0, len(sq), len(sq))].mean()) for _ in range(400)]
    assert rmse_se(sq, rmse) == pytest.approx(np.std(boot), rel=0.15)


def test_capacity_argument_is_read_off_the_builders_signature():
    from kreg.lab.models.source import ModelSource

    assert capacity_problem(ModelSource("mlp", {"width": 64}), "width") is None
    assert capacity_problem(ModelSource("cnn1d"), "kernel_size") is None
    assert "cnn1d's `pooling` defaults to 'flatten'" in capacity_problem(ModelSource("cnn1d"), "pooling")
    assert capacity_problem(ModelSource(wine_net), "units") is None
    problem = capacity_problem(ModelSource(wine_net), "width")
    assert "takes an integer `width` argument (wine_net takes units)" in problem
    assert "a keras.Model has a fixed size" in capacity_problem(ModelSource(fixed_net()), "width")
    assert capacity_problem(ModelSource(lambda **kwargs: fixed_net()), "layers") is None  # **kwargs may take it
    assert "(mlp takes width, depth)" in capacity_problem(ModelSource("mlp"), "seed")  # the seed is no capacity


# ------------------------------------------------------------------ capacity curve: the study

def test_capacity_curve_on_wine_with_a_users_builder(store):
    import kreg

    uri = store
    result = kreg.study("capacity_curve", wine_net, "wine", capacity="units", values=(32, 1, 4), epochs=15,
                        learning_rate=0.02, tracking_uri=uri, verbose=0)
    assert [p["capacity"] for p in result.points] == [1, 4, 32]
    assert [p["parameters"] for p in result.points] == [17 * u + 3 for u in (1, 4, 32)]  # 13u + u + 3u + 3
    one, _, wide = result.points
    assert wide["train"] < one["train"] - 0.1  # the claim's first half: more units fit the training set better
    for p in result.points:
        assert p["gap"] == pytest.approx(p["val"] - p["train"])
        assert p["val_se"] == pytest.approx(proportion_se(p["val"], 27), rel=1e-6)  # wine's validation split
        assert p["test_se"] == pytest.approx(proportion_se(p["test"], 45), rel=1e-6)
    f = result.figures
    bottom = min(result.points, key=lambda p: p["val"])
    assert f["bottom_units"] == bottom["capacity"] and f["bottom_val_error"] == pytest.approx(bottom["val"])
    assert result.held == (f["u_shape"] == 1.0) and "plan_bottom_units" not in f  # no plan: the baseline alone
    client = MlflowClient(uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags["kreg.study"] == "capacity_curve"
    assert parent.data.tags["kreg.held"] == str(result.held).lower()
    assert parent.data.metrics["train_error_largest"] == pytest.approx(wide["train"])
    assert "baseline validation error" in parent.data.tags["kreg.verdict"]
    points = sorted(r.data.tags["kreg.point"] for r in children(client, result.parent_run_id))
    assert points == ["baseline-units1", "baseline-units32", "baseline-units4"]
    assert [a.path for a in client.list_artifacts(result.parent_run_id)] == ["capacity_curve.png"]


@pytest.mark.parametrize("baseline, plan, held, seen", [
    # a U whose bottom the plan moves to the largest size
    ({1: (0.40, 0.45), 4: (0.0, 0.10), 32: (0.0, 0.35)}, {1: (0.5, 0.5), 4: (0.1, 0.2), 32: (0.05, 0.08)}, True,
     "a U (it rose again"),
    # still falling at the largest size: no U
    ({1: (0.40, 0.45), 4: (0.0, 0.10), 32: (0.0, 0.09)}, {1: (0.5, 0.5), 4: (0.1, 0.2), 32: (0.05, 0.08)}, False,
     "no U (it fell"),
])
def test_capacity_curve_reads_a_known_curve(store, monkeypatch, baseline, plan, held, seen):
    import kreg

    def figures(ctx, p, splits, seed):
        train, val = (plan if p.active_techniques() else baseline)[ctx.search.model.args["units"]]
        return errors_as_accuracy(train, val, val + 0.01)

    known_curve(monkeypatch, figures)
    uri = store
    result = kreg.study("capacity_curve", wine_net, "wine", plan={"dropout": 0.2}, capacity="units",
                        values=(1, 4, 32), tracking_uri=uri, verbose=0)
    f = result.figures
    assert result.held is held and seen in result.verdict
    assert f["bottom_units"] == min(baseline, key=lambda c: baseline[c][1]) and f["plan_bottom_units"] == 32
    assert ("the bottom moved up" if held else "the same bottom") in result.verdict
    assert f["gap_largest"] == pytest.approx(baseline[32][1] - baseline[32][0])
    # the gap grows from 1 to 32 units in the first curve: +0.05, +0.10, +0.35 (rank correlation 1)
    assert f["gap_rank_correlation"] == pytest.approx(1.0 if held else 0.5)
    runs = children(MlflowClient(uri), result.parent_run_id)
    assert len(runs) == 6 and {r.data.tags["kreg.plan"] for r in runs} == {"baseline (no regularization)",
                                                                            "dropout=0.2"}


def test_capacity_curve_refuses_a_builder_without_the_argument(tmp_path):
    import kreg

    with pytest.raises(ConfigError, match=r"study.capacity.*an integer `width` argument \(wine_net takes units\)"):
        kreg.study("capacity_curve", wine_net, "wine", epochs=1, tracking_uri=f"sqlite:///{tmp_path / 'db'}",
                   verbose=0)
    with pytest.raises(ConfigError, match=r"study.values.*width=0"):  # a size the builder cannot build
        kreg.study("capacity_curve", "mlp", "wine", values=(0, 2, 4), epochs=1,
                   tracking_uri=f"sqlite:///{tmp_path / 'db'}", verbose=0)


# ------------------------------------------------------------------ bias-variance: the helpers

def test_zero_one_decomposition_by_hand():
    # 4 rounds, 3 examples, 3 classes; labels 0, 1, 2
    predictions = np.array([[0, 1, 0],
                            [0, 2, 0],
                            [1, 2, 2],
                            [0, 2, 1]])
    y = np.array([0, 1, 2])
    assert main_prediction(predictions, 3).tolist() == [0, 2, 0]
    d = zero_one_decomposition(predictions, y, 3)
    # example 0: unbiased, V = 1/4; example 1: biased, 1 round of 4 hits the truth; example 2: biased, 1 of 4
    assert d["bias"] == pytest.approx(2 / 3)
    assert d["variance"] == pytest.approx((1 / 4 + 1 / 4 + 2 / 4) / 3)
    assert d["unbiased_variance"] == pytest.approx(1 / 12)
    assert d["biased_variance"] == pytest.approx((1 / 4 + 1 / 4) / 3)
    assert d["loss"] == pytest.approx((1 / 4 + 3 / 4 + 3 / 4) / 3)
    assert d["loss"] == pytest.approx(d["bias"] + d["net_variance"], abs=1e-15)


def test_zero_one_identity_holds_exactly_and_two_classes_give_domingos_biased_variance():
    rng = np.random.default_rng(0)
    for classes in (2, 5):
        y = rng.integers(0, classes, 300)
        predictions = np.where(rng.random((7, 300)) < 0.7, y, rng.integers(0, classes, (7, 300)))
        d = zero_one_decomposition(predictions, y, classes)
        direct = np.mean(predictions != y)
        assert d["loss"] == pytest.approx(direct, abs=1e-15) and d["identity_error"] < 1e-15
        if classes == 2:  # two classes: a round that leaves a wrong main prediction hits the truth
            main = main_prediction(predictions, 2)
            biased = main != y
            assert d["biased_variance"] == pytest.approx(np.mean(biased * np.mean(predictions != main, axis=0)))


def test_squared_decomposition_against_a_direct_computation():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(50, 2))
    predictions = y + 0.3 + rng.normal(scale=0.5, size=(6, 50, 2))  # a shift (bias) and a spread (variance)
    d = squared_decomposition(predictions, y)
    assert d["loss"] == pytest.approx(np.mean((predictions - y) ** 2), rel=1e-12)
    assert d["variance"] == pytest.approx(np.mean(np.var(predictions, axis=0)), rel=1e-12)
    assert d["bias2_noise"] == pytest.approx(np.mean((predictions.mean(axis=0) - y) ** 2), rel=1e-12)
    assert d["identity_error"] < 1e-12
    assert d["bias2_noise"] == pytest.approx(0.09 + 0.25 / 6, abs=0.03)  # the mean of 6 keeps 1/6 of the spread
    assert d["variance"] == pytest.approx(0.25 * 5 / 6, abs=0.03)


# ------------------------------------------------------------------ bias-variance: the study

def test_bias_variance_on_regression_l2_lowers_the_variance_and_raises_the_bias(store):
    """On diabetes, l2=0.1 makes the trade clear in 3 bootstrap rounds of 5 epochs: the plan's variance is 0.45 of
    the baseline's (10 epochs: 0.42; 3 epochs: 0.62, too near the 0.7 asserted)."""
    import kreg

    uri = store
    result = kreg.study("bias_variance", "mlp", diabetes(), plan={"l2": 0.1}, rounds=3, epochs=5,
                        learning_rate=0.01, tracking_uri=uri, model_args={"width": 16, "depth": 1}, verbose=0)
    f = result.figures
    for label in ("baseline", "plan"):
        assert f[f"loss_{label}"] == pytest.approx(f[f"bias2_noise_{label}"] + f[f"variance_{label}"], rel=1e-12)
    assert f["variance_plan"] < 0.7 * f["variance_baseline"] and f["bias2_noise_plan"] > f["bias2_noise_baseline"]
    assert result.held and "bias^2+noise" in result.verdict
    client = MlflowClient(uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags["kreg.study"] == "bias_variance" and parent.data.tags["kreg.held"] == "true"
    assert "l2=0.1 against the baseline" in parent.data.tags["kreg.verdict"]
    assert parent.data.metrics["max_identity_error"] < 1e-12 and parent.data.metrics["variance_change"] < 0
    runs = children(client, result.parent_run_id)
    assert sorted(r.data.tags["kreg.point"] for r in runs) == [f"{p}-round{i}" for p in ("baseline", "plan")
                                                               for i in (1, 2, 3)]
    assert {r.data.tags["kreg.plan"] for r in runs} == {"baseline (no regularization)", "l2=0.1"}
    assert [a.path for a in client.list_artifacts(result.parent_run_id)] == ["bias_variance.png"]


def test_bias_variance_of_known_classifiers_and_the_plan_it_compares_without_one(store, monkeypatch):
    """Rounds whose test predictions are known: the baseline's flip 25% of the labels at random in every round,
    the plan's always get the same 15% wrong (no variance, more bias). No plan given: the study compares l2=0.01."""
    import kreg

    rounds, seen, labels = {}, [], []

    class Known:
        def __init__(self, predicted):
            self.predicted = predicted

        def __call__(self, x, training=False):
            return np.eye(3)[self.predicted[:len(x)]] * 5.0  # logits whose top class is the prediction

    def figures(ctx, plan, splits, seed):
        y = np.asarray(ctx.search.splits.y_test)
        labels.append(y)
        rng = np.random.default_rng(seed)
        if plan.active_techniques():
            predicted = np.where(np.arange(len(y)) % 7 == 0, (y + 1) % 3, y)
        else:
            predicted = np.where(rng.random(len(y)) < 0.25, (y + rng.integers(1, 3, len(y))) % 3, y)
        rounds.setdefault(bool(plan.active_techniques()), []).append(predicted)
        seen.append(plan.describe())
        return {**errors_as_accuracy(0.0, 0.1, float(np.mean(predicted != y))), "model": Known(predicted)}

    known_curve(monkeypatch, figures)
    uri = store
    result = kreg.study("bias_variance", wine_net, "wine", rounds=4, tracking_uri=uri, verbose=0)
    y = labels[0]
    expected = {"baseline": zero_one_decomposition(np.stack(rounds[False]), y, 3),
                "plan": zero_one_decomposition(np.stack(rounds[True]), y, 3)}
    for label, d in expected.items():
        for key, value in d.items():
            assert result.figures[f"{key}_{label}"] == pytest.approx(value, abs=1e-12)
    assert result.figures["variance_plan"] == 0.0 and result.figures["bias_plan"] == pytest.approx(7 / 45)
    assert result.held == (expected["baseline"]["bias"] <= 7 / 45)
    assert set(seen) == {"baseline (no regularization)", "l2=0.01"} and "l2=0.01 against" in result.verdict
    assert "loss = bias + net variance within" in result.verdict
    parent = MlflowClient(uri).get_run(result.parent_run_id)
    assert parent.data.metrics["net_variance_baseline"] == pytest.approx(expected["baseline"]["net_variance"])


# ------------------------------------------------------------------ validation curve: the helpers

def test_mean_and_se_is_scipys_sem():
    from scipy.stats import sem

    values = [0.1, 0.15, 0.12, 0.2, 0.09]
    mean, se = mean_and_se(values)
    assert mean == pytest.approx(np.mean(values)) and se == pytest.approx(sem(values))
    assert np.isnan(mean_and_se([0.3])[1])


def test_best_and_one_standard_error_choices():
    strengths = [1e-4, 1e-3, 1e-2, 1e-1]
    errors, se = [0.030, 0.020, 0.024, 0.200], [0.004, 0.005, 0.005, 0.010]
    assert choose(strengths, errors, se) == (1, 2)  # 0.024 <= 0.020 + 0.005: the larger strength
    assert choose(strengths, errors, [0.004, 0.003, 0.005, 0.01]) == (1, 1)  # 0.024 > 0.023
    patience = [2, 5, 10, 20]  # smaller regularizes more
    assert choose(patience, [0.05, 0.03, 0.031, 0.04], [0.01] * 4, stronger=-1) == (1, 1)
    assert choose(patience, [0.035, 0.03, 0.031, 0.04], [0.01] * 4, stronger=-1) == (1, 0)
    assert choose(strengths, errors, [float("nan")] * 4) == (1, 1)  # no spread: the best itself


def test_paired_shape_uses_the_fold_by_fold_differences():
    # the folds differ in difficulty by far more than the strengths do; paired, the U is clear
    folds = np.array([0.01, 0.05, 0.10, 0.02, 0.07])
    errors = np.stack([folds + 0.01, folds, folds + 0.008, folds + 0.2])
    noisy = errors + np.random.default_rng(0).normal(scale=0.001, size=errors.shape)
    assert paired_shape(noisy) == "U"
    unpaired = curve_shape(noisy.mean(axis=1), [mean_and_se(row)[1] for row in noisy])
    assert unpaired == "rising"  # unpaired, the fold spread hides the weak end's rise
    assert paired_shape(np.stack([folds, folds, folds + 0.2])) == "rising"  # the weakest is as good as any
    # digits' l2 = 1e-5 against 1e-3, measured: one example worse in 2 of 5 folds of 180 (1.6 SE) is no U
    best = np.array([0.0278, 0.0278, 0.0167, 0.0112, 0.0168])
    weak = best + np.array([0.00556, 0, 0, 0, 0.00559])
    assert paired_shape(np.stack([weak, best, best + 0.24])) == "rising"
    assert paired_shape(np.stack([weak, best, best + 0.24]), z=1.0) == "U"


def test_plan_with_sets_the_first_parameter_and_keeps_the_others():
    from kreg.lab.plan import RegularizationPlan

    base = RegularizationPlan(dropout=0.2, elastic_net={"alpha": 1e-3, "l1_ratio": 0.3})
    plan = plan_with(base, "elastic_net", 0.05)
    assert plan.elastic_net.alpha == 0.05 and plan.elastic_net.l1_ratio == 0.3 and plan.dropout == 0.2
    assert plan_with(base, "l2", 1e-4).l2 == 1e-4
    assert plan_with(RegularizationPlan(), "early_stopping", 4).early_stopping.patience == 4


def test_validation_curve_reads_strengths_as_the_command_line_gives_them():
    # YAML 1.1 (the command line's --set) reads 1e-4 as a string
    checked = ValidationCurve().check(strengths=("1e-4", "1e-2", 0.001), folds=3)
    assert checked == {"technique": "l2", "strengths": (1e-4, 1e-3, 1e-2), "folds": 3}
    assert ValidationCurve().check(technique="early_stopping", strengths=(20, 5, 2))["strengths"] == (2, 5, 20)


# ------------------------------------------------------------------ validation curve: the study

def test_validation_curve_on_wine_cross_validated(store):
    import kreg

    uri = store
    result = kreg.study("validation_curve", "mlp", "wine", strengths=(1e-4, 1e-2, 1.0), folds=2, epochs=6,
                        learning_rate=0.02, tracking_uri=uri, model_args={"width": 16, "depth": 1}, verbose=0)
    low, mid, high = result.points
    assert [p["strength"] for p in result.points] == [1e-4, 1e-2, 1.0] and low["folds"] == 2
    assert high["train"] > low["train"] + 0.05  # l2 = 1 underfits: the claim's underfitting side (6 epochs: 0.38
    # against 0.04; 12 epochs: 0.51 against 0.02)
    for p in result.points:
        assert (p["val"], p["val_se"]) == pytest.approx(mean_and_se(p["fold_val"]))
    f = result.figures
    assert f["folds"] == 2 and f["one_se_strength"] >= f["best_strength"]
    assert f["val_error_best"] == pytest.approx(min(p["val"] for p in result.points))
    client = MlflowClient(uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags["kreg.study"] == "validation_curve"
    assert parent.data.tags["kreg.held"] == str(result.held).lower()
    assert "2-fold cross-validation of the 133 pooled" in parent.data.tags["kreg.verdict"]
    runs = children(client, result.parent_run_id)
    assert sorted(r.data.tags["kreg.point"] for r in runs) == sorted(f"l2-{s:g}-f{i}" for s in (1e-4, 1e-2, 1.0)
                                                                     for i in (1, 2))
    assert {int(r.data.metrics["epochs_run"]) for r in runs} == {6}
    assert [a.path for a in client.list_artifacts(result.parent_run_id)] == ["validation_curve.png"]


def test_validation_curve_reads_a_known_cross_validated_curve(store, monkeypatch):
    """Folds that differ in difficulty (0 to 0.06) far more than the strengths do near the best: paired by fold,
    both ends of the U stand out; the best is 1e-3 and the one-SE rule takes 1e-2 (0.045 <= 0.04 + SE)."""
    import kreg

    val = {1e-4: 0.06, 1e-3: 0.04, 1e-2: 0.045, 1e-1: 0.2}
    train = {1e-4: 0.0, 1e-3: 0.0, 1e-2: 0.01, 1e-1: 0.18}
    offsets = [0.0, 0.03, 0.06, 0.01, 0.04]
    seen = []

    def figures(ctx, plan, splits, seed):
        fold = splits.seed - ctx.search.splits.seed  # the folds' seeds: the run's plus the fold's index
        seen.append((plan.l2, fold, len(splits.y_val)))
        jitter = 0.002 * ((list(val).index(plan.l2) + fold) % 3 - 1)
        return errors_as_accuracy(train[plan.l2], val[plan.l2] + offsets[fold] + jitter, val[plan.l2])

    known_curve(monkeypatch, figures)
    result = kreg.study("validation_curve", "mlp", "wine", plan={"dropout": 0.1}, strengths=(1e-4, 1e-3, 1e-2, 1e-1),
                        tracking_uri=store, model_args={"width": 8, "depth": 1},
                        verbose=0)  # "auto": 133 pooled examples, so 5 folds
    assert sorted({fold for _, fold, _ in seen}) == [0, 1, 2, 3, 4] and len(seen) == 20
    assert sum(n for _, fold, n in seen if _ == 1e-4) == 133  # the folds partition the pool
    f = result.figures
    assert f["folds"] == 5 and f["best_strength"] == 1e-3 and f["one_se_strength"] == 1e-2
    assert f["val_error_best"] == pytest.approx(0.04 + np.mean(offsets), abs=0.002)
    assert f["u_shape"] == 1.0 and result.held
    assert "a U (both ends above the best by more than twice" in result.verdict and "chosen: 0.001 (best), 0.01 (one standard error)" \
        in result.verdict
    assert [p["strength"] for p in result.points] == [1e-4, 1e-3, 1e-2, 1e-1]


def test_validation_curve_holdout_where_a_smaller_value_regularizes_more(store, monkeypatch):
    """Early stopping's patience: the strongest is the smallest. On wine's 27 validation examples the best is
    20 (0.05), and the one-SE rule takes 5 (0.08 <= 0.05 + sqrt(0.05 x 0.95 / 27) = 0.092)."""
    import kreg

    val = {2: 0.6, 5: 0.08, 20: 0.05, 50: 0.5}
    train = {2: 0.55, 5: 0.03, 20: 0.0, 50: 0.0}
    known_curve(monkeypatch, lambda ctx, plan, splits, seed: errors_as_accuracy(
        train[plan.early_stopping.patience], val[plan.early_stopping.patience], 0.1))
    result = kreg.study("validation_curve", "mlp", "wine", technique="early_stopping", strengths=(50, 2, 20, 5),
                        folds="holdout", tracking_uri=store, model_args={"width": 8, "depth": 1}, verbose=0)
    f = result.figures
    assert [p["strength"] for p in result.points] == [2, 5, 20, 50] and f["folds"] == 1
    assert f["best_strength"] == 20 and f["one_se_strength"] == 5
    assert f["val_se_best"] == pytest.approx(proportion_se(0.05, 27))
    assert f["val_error_weakest"] == 0.5 and f["val_error_strongest"] == 0.6  # patience 50, then 2
    assert result.held and "the holdout validation split (27 examples)" in result.verdict


def test_validation_curve_holdout_on_regression(store):
    import kreg

    result = kreg.study("validation_curve", "mlp", diabetes(), technique="dropout", strengths=(0.05, 0.3, 0.6),
                        folds="holdout", epochs=5, learning_rate=0.01, model_args={"width": 16, "depth": 1},
                        tracking_uri=store, verbose=0)
    assert [p["folds"] for p in result.points] == [1, 1, 1]
    assert all(p["val_se"] > 0 for p in result.points)  # the RMSE's own standard error, from the examples
    assert "the holdout validation split (80 examples)" in result.verdict
    assert result.figures["one_se_strength"] >= result.figures["best_strength"]


def test_validation_curve_refuses_a_technique_the_model_lacks(tmp_path):
    import kreg

    with pytest.raises(ConfigError, match=r"study.technique.*spatial_dropout needs cnn1d, cnn2d"):
        kreg.study("validation_curve", "mlp", "wine", technique="spatial_dropout", strengths=(0.1, 0.2, 0.3),
                   epochs=1, tracking_uri=f"sqlite:///{tmp_path / 'db'}", verbose=0)


@pytest.mark.parametrize("args, expected", [
    (["capacity_curve", "--set", "values=8"], "three or more different non-negative integer sizes"),
    (["capacity_curve", "--set", "values=4,8,-1"], "three or more different non-negative integer sizes"),
    (["capacity_curve", "--set", "capacity=units"], "defaults exist for width and depth only"),
    (["capacity_curve", "--set", "capacity=3"], "the name of an integer argument of the model builder"),
    (["bias_variance", "--set", "rounds=2"], "an integer of at least 3"),
    (["validation_curve", "--set", "technique=nope"], "Invalid value received for field `study.technique`"),
    (["validation_curve", "--set", "technique=batch_norm"], "a technique whose strength orders"),
    (["validation_curve", "--set", "technique=learning_rate"], "not a flag, not learning_rate or schedule"),
    (["validation_curve", "--set", "strengths=0,1e-3,1e-2"], "each a non-negative float above 0"),
    (["validation_curve", "--set", "technique=dropout", "--set", "strengths=0.1,0.5,1.5"],
     "each a float between 0 and 1 (exclusive) above 0"),
    (["validation_curve", "--set", "strengths=1e-3,1e-3,1e-2"], "three or more different values of l2's strength"),
    (["validation_curve", "--set", "folds=1"], "'auto', 'holdout' or a number of folds of at least 2"),
    (["validation_curve", "--set", "bogus=1"], "an option of the validation_curve study (folds, strengths, "
                                                "technique)"),
])
def test_bad_curve_options_are_refused_naming_the_field(tmp_path, capsys, args, expected):
    from kreg.lab.cli import main

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["study", *args, "--tracking-uri", uri, "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert expected in err and "study." in err
    assert not (tmp_path / "mlflow.db").exists()  # refused before the data loaded or any run was created
