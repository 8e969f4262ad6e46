"""Issue 13: cross-validated trials, the one-SE rule, the refit, and how sure the answer is."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from kreg.lab.analysis import stats
from kreg.lab.analysis.selection import regularization, select
from kreg.lab.data.folds import cross_validation_splits
from kreg.lab.errors import ConfigError, DataError
from kreg.lab.plan import RegularizationPlan
from kreg.lab.search.space import SearchSpace
from kreg.lab.search.tune import Objective
from kreg.lab.tracking.records import TrialRecord

SMALL = {"model_args": {"width": 16, "depth": 1}, "verbose": 0}


def _indexed_splits(n=240, classes=3, seed=0):
    """Splits whose first feature is the example's id: where every example went can be read back."""
    import kreg

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    x[:, 0] = np.arange(n)
    y = np.arange(n) % classes
    return kreg.data.from_arrays(x[:200], y[:200], x_test=x[200:], y_test=y[200:], standardize="none")


def test_folds_are_stratified_disjoint_cover_the_pool_and_never_touch_the_test_split():
    splits = _indexed_splits()
    pool_ids = set(np.concatenate([splits.x_train[:, 0], splits.x_val[:, 0]]).astype(int))
    test_ids = set(splits.x_test[:, 0].astype(int))
    folds = cross_validation_splits(splits, folds=4, repeats=2, seed=3)
    assert [f.name for f in folds] == [f"r{r}f{i}" for r in range(2) for i in range(4)]
    for repeat in range(2):
        these = [f for f in folds if f.repeat == repeat]
        seen = [set(f.splits.x_val[:, 0].astype(int)) for f in these]
        assert set().union(*seen) == pool_ids  # cover the pool
        assert sum(len(s) for s in seen) == len(pool_ids)  # disjoint
        for f in these:
            train = set(f.splits.x_train[:, 0].astype(int))
            assert not train & set(f.splits.x_val[:, 0].astype(int)) and train | set(f.splits.x_val[:, 0].astype(int)) == pool_ids
            assert not (train | set(f.splits.x_val[:, 0].astype(int))) & test_ids
            np.testing.assert_array_equal(f.splits.x_test, splits.x_test)  # the test split, untouched
            counts = np.bincount(f.splits.y_val, minlength=3)
            assert counts.max() - counts.min() <= 1  # stratified: the classes stay balanced in every fold
    first = [set(f.splits.x_val[:, 0].astype(int)) for f in folds[:4]]
    second = [set(f.splits.x_val[:, 0].astype(int)) for f in folds[4:]]
    assert first != second  # a repeat draws new folds


def test_forward_chaining_never_trains_on_the_future():
    splits = _indexed_splits()
    pool = np.concatenate([splits.x_train[:, 0], splits.x_val[:, 0]])
    folds = cross_validation_splits(splits, folds=3, scheme="forward")
    sizes = [len(f.splits.y_train) for f in folds]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3  # the training window grows
    for f in folds:
        assert f.val_index.min() == len(f.splits.y_train)  # everything before the fold, nothing after
        np.testing.assert_array_equal(f.splits.x_val[:, 0], pool[f.val_index])


def test_cv_settings_and_data_are_refused_before_anything_runs(tmp_path):
    import kreg

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(ConfigError, match="`select`.*search.cv as well"):
        kreg.tune("mlp", "wine", select="one_se", cv=None, tracking_uri=uri, **SMALL)
    with pytest.raises(ConfigError, match="`repeats`.*cv= as well"):
        kreg.tune("mlp", "wine", repeats=3, tracking_uri=uri, **SMALL)
    with pytest.raises(ConfigError, match="`cv.folds`.*greater than or equal to 2"):
        kreg.tune("mlp", "wine", cv=1, tracking_uri=uri, **SMALL)
    with pytest.raises(ConfigError, match="forward scheme"):
        kreg.tune("mlp", "wine", cv={"folds": 3, "scheme": "forward"}, repeats=2, tracking_uri=uri, **SMALL)
    x, y = np.random.default_rng(0).normal(size=(60, 4)), np.r_[np.zeros(57), np.ones(3)].astype(int)
    data = kreg.data.from_arrays(x, y, x_test=x[:10], y_test=y[:10])
    with pytest.raises(DataError, match="class 1 has 3"):
        kreg.tune("mlp", data, cv=5, tracking_uri=uri, **SMALL)
    assert not (tmp_path / "mlflow.db").exists()  # refused before the store was touched


def _record(trial_id, plan, objective, sem):
    return TrialRecord(trial_id=trial_id, status="COMPLETED", plan=plan, objective=objective,
                       metrics={"cv_sem_kept_val_accuracy": sem})


def test_one_se_rule_picks_the_most_regularized_trial_within_one_standard_error():
    space = SearchSpace.from_dict({"l2": {"min": 1e-5, "max": 1e-1, "scale": "log"},
                                   "dropout": {"min": 0.1, "max": 0.5},
                                   "early_stopping": {"patience": {"values": [5, 10, 20]}}})
    records = [
        _record("0", RegularizationPlan(), 0.900, 0.010),
        _record("1", RegularizationPlan(l2=1e-4), 0.930, 0.010),  # the best
        _record("2", RegularizationPlan(l2=1e-2), 0.921, 0.010),  # within 1 SE (>= 0.920), stronger L2
        _record("3", RegularizationPlan(l2=1e-1), 0.919, 0.010),  # strongest, but just outside
        _record("4", RegularizationPlan(dropout=0.1), 0.925, 0.010),  # within, weakest dropout: 1 + 0
    ]
    objective = Objective("val_accuracy", "max")
    assert select(records, objective, space, "best")[0].trial_id == "1"
    chosen, why = select(records, objective, space, "one_se")
    # l2=1e-2 sits at 3/4 of its log range (1 + 0.75); dropout 0.1 at the weak end of its range (1 + 0)
    assert regularization(records[2].plan, space) == pytest.approx(1.75)
    assert regularization(records[4].plan, space) == pytest.approx(1.0)
    assert chosen.trial_id == "2" and "within one SE" in why
    # Smaller is stronger for early stopping's patience: patience 5 is its strongest end
    assert regularization(RegularizationPlan(early_stopping={"patience": 5}), space) == pytest.approx(2.0)
    assert regularization(RegularizationPlan(early_stopping={"patience": 20}), space) == pytest.approx(1.0)
    # A loss (min) objective: within one SE means at most best + SE
    loss = Objective("val_loss", "min")
    recs = [_record("0", RegularizationPlan(), 0.52, 0.02), _record("1", RegularizationPlan(l2=1e-1), 0.505, 0.02),
            _record("2", RegularizationPlan(l2=1e-5), 0.49, 0.02)]
    for r in recs:
        r.metrics = {"cv_sem_kept_val_loss": 0.02}
    assert select(recs, loss, space, "one_se")[0].trial_id == "1"  # 0.505 <= 0.49 + 0.02
    recs[1].objective = 0.515  # now outside: the next most regularized within is l2=1e-5 (the best itself)
    assert select(recs, loss, space, "one_se")[0].trial_id == "2"


def test_exact_mcnemar_matches_scipy_binomtest():
    from scipy.stats import binomtest

    rng = np.random.default_rng(0)
    for n, flip in ((12, 0.3), (40, 0.1), (300, 0.05), (25, 0.0)):
        base = rng.random(n) < 0.7
        chosen = base.copy()
        flips = rng.random(n) < flip
        chosen[flips] = ~chosen[flips]
        result = stats.mcnemar_exact(base, chosen)
        b, c = int(np.sum(chosen & ~base)), int(np.sum(base & ~chosen))
        assert (result["b"], result["c"]) == (b, c)
        expected = binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
        assert result["p_value"] == pytest.approx(expected, rel=1e-9)


def test_bootstrap_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    covered = 0
    for i in range(200):
        sample = rng.random(150) < 0.8  # accuracy 0.8 on 150 examples
        low, high = stats.bootstrap_interval(sample, rounds=400, seed=i)
        covered += low <= 0.8 <= high
    assert 0.90 <= covered / 200 <= 0.99


def test_fold_summary_against_scipy():
    from scipy import stats as sps

    values = [0.91, 0.88, 0.93, 0.90, 0.86]
    s = stats.fold_summary(values)
    assert s["mean"] == pytest.approx(np.mean(values)) and s["std"] == pytest.approx(np.std(values, ddof=1))
    assert s["sem"] == pytest.approx(sps.sem(values))
    low, high = sps.t.interval(0.95, 4, loc=np.mean(values), scale=sps.sem(values))
    assert (s["ci95_low"], s["ci95_high"]) == pytest.approx((low, high))


def test_cross_validated_search_refit_and_comparison_end_to_end(tmp_path):
    """A 3-fold search: the objective is the folds' mean, the folds are in MLflow, the refit model is the
    parent's artifact and loads in a fresh process with identical predictions, the comparison is logged."""
    import keras

    import kreg

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    summary = kreg.tune("mlp", "wine", techniques={"l2": {"min": 1e-4, "max": 1e-1, "scale": "log"}},
                        tuner="random", max_trials=2, epochs=4, cv=3, select="one_se", tracking_uri=uri,
                        seed=1, **SMALL)
    for record in summary.records:
        assert len(record.folds) == 3
        folds = [f["kept_val_accuracy"] for f in record.folds]
        assert record.objective == pytest.approx(np.mean(folds))
        assert record.metrics["cv_sem_kept_val_accuracy"] == pytest.approx(np.std(folds, ddof=1) / np.sqrt(3))
    client = MlflowClient(uri)
    best = summary.best
    history = client.get_metric_history(best.run_id, "fold_kept_val_accuracy")
    assert sorted(m.step for m in history) == [1, 2, 3]
    assert sorted(m.value for m in history) == pytest.approx(sorted(f["kept_val_accuracy"] for f in best.folds))
    parent = client.get_run(summary.parent_run_id)
    m, tags = parent.data.metrics, parent.data.tags
    assert m["refit_test_accuracy"] == pytest.approx(summary.answer.refit.metrics["test_accuracy"])
    assert "kreg.selection" in tags and tags["kreg.model_artifact"] == "model/model.keras"
    if not best.plan.is_baseline:
        assert tags["kreg.answer"] == summary.comparison["line"]
        assert m["answer_chosen_test_accuracy_ci95_low"] <= m["refit_test_accuracy"] <= \
            m["answer_chosen_test_accuracy_ci95_high"]
    path = client.download_artifacts(summary.parent_run_id, "model/model.keras", str(tmp_path))
    x = summary.answer.refit.model.input_shape  # noqa: F841  (the model is built)
    from kreg.lab.data.catalog import load_splits

    x_test = load_splits("wine", seed=1).x_test
    np.save(tmp_path / "x.npy", x_test)
    expected = keras.ops.convert_to_numpy(summary.model(x_test, training=False))
    code = ("import numpy as np, kreg, keras; m = keras.saving.load_model(%r); "
            "np.save(%r, keras.ops.convert_to_numpy(m(np.load(%r), training=False)))"
            % (path, str(tmp_path / "p.npy"), str(tmp_path / "x.npy")))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, rtol=1e-6, atol=1e-6)


def test_comparison_of_regression_models_and_its_verdict_line():
    from kreg.lab.analysis.compare import compare
    from kreg.lab.task import Regression

    rng = np.random.default_rng(0)
    task = Regression(targets=1, offset=(0.0,), scale=(10.0,))  # standardized targets, errors in units x 10
    y = rng.normal(size=(400, 1))
    good = y + rng.normal(0, 0.2, size=y.shape)  # RMSE about 2 in the targets' units
    bad = y + rng.normal(0, 0.4, size=y.shape)  # about 4
    result = compare(task, bad, good, y, rounds=500)
    assert result["metric"] == "rmse" and result["test"] == "paired bootstrap"
    direct = np.sqrt(np.mean(((bad - y) * 10) ** 2)) - np.sqrt(np.mean(((good - y) * 10) ** 2))
    assert result["gain"] == pytest.approx(direct) and result["gain"] > 1.5
    assert result["gain_ci95_low"] > 0 and result["p_value"] < 0.01 and result["distinguishable"]
    assert result["line"].startswith("test RMSE gain (baseline's minus chosen's) +")
    assert result["chosen_test_rmse"] == pytest.approx(np.sqrt(np.mean(((good - y) * 10) ** 2)), rel=1e-6)
    worse = compare(task, good, bad, y, rounds=500)
    assert worse["gain"] == pytest.approx(-direct) and worse["line"].startswith("worse than the baseline: ")
    same = compare(task, good, good, y, rounds=500)
    assert same["p_value"] == 1.0 and same["line"].startswith("not distinguishable from the baseline: ")


def test_cli_overrides_for_cv_and_select_reach_the_search_and_the_workers():
    from pathlib import Path

    from kreg.lab.cli import _chief_overrides, _parser
    from kreg.lab.config import load_pipeline

    pipeline = Path(__file__).resolve().parents[1] / "pipelines" / "breast_cancer_mlp.yaml"
    args = _parser().parse_args(["tune", str(pipeline), "--cv", "4", "--select", "one_se"])
    cfg = load_pipeline(pipeline).with_overrides(cv=args.cv, select=args.select)
    kwargs = cfg.tune_kwargs()
    assert kwargs["cv"] == {"folds": 4, "repeats": 1, "scheme": "auto"} and kwargs["select"] == "one_se"
    # A worker rebuilds the chief's search from the chief's config: the same folds and rule
    worker = load_pipeline(pipeline).with_overrides(**_chief_overrides(kwargs["config"])).tune_kwargs()
    assert worker["cv"] == kwargs["cv"] and worker["select"] == "one_se"
    with pytest.raises(ConfigError, match="`search.cv.folds`"):
        load_pipeline(pipeline).with_overrides(cv=1)
