"""Issue 20, part 1: pruning on the honest validation curve, checked on known curves without training."""

from __future__ import annotations

import math

import numpy as np

import pytest

from kreg.lab.search.pruning import AshaRule, MedianRule, Pruner, epochs_saved
from kreg.lab.tracking.records import TrialRecord

# Five completed trials' validation accuracy over 8 epochs.
COMPLETED = [
    [0.50, 0.60, 0.70, 0.75, 0.80, 0.82, 0.84, 0.85],
    [0.40, 0.55, 0.65, 0.72, 0.78, 0.80, 0.81, 0.83],
    [0.55, 0.65, 0.72, 0.78, 0.83, 0.86, 0.87, 0.88],
    [0.30, 0.45, 0.60, 0.70, 0.74, 0.77, 0.79, 0.80],
    [0.45, 0.58, 0.68, 0.74, 0.79, 0.81, 0.83, 0.84],
]


def test_median_rule_stops_below_the_median_of_completed_trials_at_the_same_epoch():
    rule = MedianRule(warmup_trials=5, warmup_epochs=3)
    median_at_4 = sorted(c[3] for c in COMPLETED)[2]  # 0.74
    assert median_at_4 == 0.74
    assert not rule.should_stop([0.1, 0.1, 0.1], COMPLETED, "max")  # warm-up epochs: never
    assert rule.should_stop([0.1, 0.2, 0.3, 0.73], COMPLETED, "max")  # best so far 0.73 < 0.74
    assert not rule.should_stop([0.1, 0.2, 0.3, 0.74], COMPLETED, "max")  # ties go on
    assert not rule.should_stop([0.1, 0.75, 0.3, 0.2], COMPLETED, "max")  # its best so far counts
    assert not rule.should_stop([0.1, 0.2, 0.3, 0.5], COMPLETED[:4], "max")  # 4 completed < 5: no pruning
    losses = [[1 - v for v in c] for c in COMPLETED]
    assert rule.should_stop([0.9, 0.8, 0.7, 0.27], losses, "min")  # 0.27 > median 0.26 for a loss
    assert not rule.should_stop([0.9, 0.8, 0.7, 0.26], losses, "min")
    assert rule.should_stop([math.nan] * 4, COMPLETED, "max")


def test_median_rule_only_counts_trials_that_reached_the_epoch():
    short = [[0.9, 0.9]] * 10  # pruned early: nothing to say about epoch 4
    rule = MedianRule(warmup_trials=5, warmup_epochs=0)
    assert not rule.should_stop([0.1, 0.1, 0.1, 0.1], short, "max")


def test_asha_rungs_and_the_best_third_goes_on():
    rule = AshaRule(min_epochs=1, eta=3)
    assert rule.rungs(30) == [1, 3, 9, 27]
    assert AshaRule(min_epochs=2, eta=2).rungs(16) == [2, 4, 8]
    ended = [[0.5, 0.6, 0.70], [0.4, 0.5, 0.60], [0.3, 0.4, 0.50], [0.2, 0.3, 0.45], [0.1, 0.2, 0.40]]
    # At rung 3 with five ended values and this one: six values, the best 6 // 3 = 2 go on (0.70 and this?).
    assert not rule.should_stop([0.1, 0.2, 0.65], ended, "max", 30)  # second best of six: goes on
    assert rule.should_stop([0.1, 0.2, 0.55], ended, "max", 30)  # third best: stops
    assert not rule.should_stop([0.1, 0.2], ended, "max", 30)  # epoch 2 is no rung
    assert not rule.should_stop([0.1, 0.2, 0.0], ended[:1], "max", 30)  # two values < eta: nothing to halve
    assert rule.should_stop([0.1, 0.2, 0.61], [[1 - v for v in c] for c in ended], "min", 30)


def test_pruner_combines_the_rules_and_none_never_stops():
    median = Pruner("median", "max", 8, median=MedianRule(5, 3))
    assert median.should_stop([0.1, 0.2, 0.3, 0.5], COMPLETED)
    asha = Pruner("asha", "max", 30, asha=AshaRule(1, 3))
    # ASHA counts pruned trials that reached the rung; the median rule does not.
    assert asha.should_stop([0.05], [[0.5]], pruned=[[0.4], [0.3]])
    assert not Pruner("none").should_stop([0.0] * 10, COMPLETED)
    assert "the median rule" in median.describe() and "[1, 3, 9, 27]" in asha.describe()


def test_epochs_saved_counts_what_pruned_trials_did_not_train():
    records = [TrialRecord("0", "COMPLETED", metrics={"epochs_run": 30}),
               TrialRecord("1", "PRUNED", metrics={"epochs_run": 6}),
               TrialRecord("2", "PRUNED", metrics={"epochs_run": 12}),
               TrialRecord("3", "FAILED", metrics={})]
    pruned, saved = epochs_saved(records, 30)
    assert pruned == 2 and saved == pytest.approx((24 + 18) / 90)


# --------------------------------------------------------------- in a search
def _search(tmp_path, prune, techniques=None, max_trials=2, tuner="grid"):
    import kreg

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # l2 = 10 crushes the weights: its validation accuracy stays far below the baseline's from the first epochs.
    return kreg.tune("mlp", "wine", model_args={"width": 16, "depth": 1}, tuner=tuner, max_trials=max_trials,
                     techniques=techniques or {"l2": {"values": [10.0]}}, epochs=10, batch_size=8,
                     prune=prune, refit=False, tracking_uri=uri, verbose=0, seed=0, cv=None), uri


@pytest.mark.parametrize("prune, stopped_at", [({"rule": "median", "warmup_trials": 1, "warmup_epochs": 2}, 3),
                                               ({"rule": "asha", "min_epochs": 2, "eta": 2}, 2)])
def test_a_hopeless_trial_is_pruned_and_recorded_with_its_partial_curves(tmp_path, prune, stopped_at):
    from mlflow.tracking import MlflowClient

    summary, uri = _search(tmp_path, prune)
    baseline, hopeless = summary.records
    assert baseline.status == "COMPLETED" and baseline.metrics["epochs_run"] == 10  # never pruned
    assert hopeless.status == "PRUNED" and hopeless.metrics["pruned_at_epoch"] == stopped_at
    assert hopeless.metrics["epochs_run"] == stopped_at
    assert summary.best is baseline  # a pruned trial is never the answer
    client = MlflowClient(uri)
    run = client.get_run(hopeless.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["kreg.trial_status"] == "PRUNED"
    assert run.data.tags["kreg.pruned"].startswith(f"after epoch {stopped_at} of 10 (")
    assert "**Pruned** after epoch" in run.data.tags["mlflow.note.content"]
    steps = [m.step for m in client.get_metric_history(hopeless.run_id, "val_accuracy")]
    assert steps == list(range(1, stopped_at + 1))  # its curve up to the epoch it stopped
    parent = client.get_run(summary.parent_run_id)
    assert parent.data.metrics["n_pruned"] == 1 and parent.data.metrics["n_failed"] == 0
    assert parent.data.metrics["pruned_epochs_saved"] == pytest.approx((10 - stopped_at) / 20)
    assert parent.data.tags["kreg.pruning"].startswith("1 of 2 trials pruned by ")
    assert summary.pruning == parent.data.tags["kreg.pruning"]

    # What a worker (or a resumed search) judges a trial against: the ended trials of the search, whichever
    # process trained them, read from the store (pruned ones say so), with their whole per-epoch curves.
    from kreg.lab.tracking.mlflow import SearchTracker

    other = SearchTracker(uri, summary.experiment)  # a fresh client, as in another process
    other.parent_id = summary.parent_run_id
    ended = other.ended_trial_curves("val_accuracy")
    assert ended[baseline.run_id] == ("COMPLETED", pytest.approx(baseline.history["val_accuracy"]))
    assert ended[hopeless.run_id] == ("PRUNED", pytest.approx(hopeless.history["val_accuracy"]))
    assert other.ended_trial_curves("val_accuracy", known={baseline.run_id}).keys() == {hopeless.run_id}


def test_no_pruning_trains_every_trial_to_the_end(tmp_path):
    summary, _ = _search(tmp_path, "none")
    assert [r.status for r in summary.records] == ["COMPLETED", "COMPLETED"]
    assert all(r.metrics["epochs_run"] == 10 for r in summary.records) and summary.pruning == ""


def test_prune_settings_are_checked_before_anything_runs():
    from kreg.lab.errors import ConfigError
    from kreg.lab.search.settings import SearchSettings, build

    with pytest.raises(ConfigError, match="prune"):
        build(SearchSettings, {"prune": "sometimes"})
    with pytest.raises(ConfigError, match="prune.eta"):
        build(SearchSettings, {"prune": {"rule": "asha", "eta": 1}})
    assert build(SearchSettings, {"prune": "asha"}).prune.rule == "asha"
    assert build(SearchSettings, {"prune": False}).prune.rule == "none"


# --------------------------------------------------------------- across folds
def test_fold_test_is_scipys_one_sided_paired_t_test():
    from scipy import stats

    from kreg.lab.search.pruning import FoldRule, one_se_margin

    rule = FoldRule(alpha=0.05)
    mine, incumbent = [0.80, 0.84, 0.79], [0.90, 0.93, 0.91, 0.92]
    expected = stats.ttest_rel(mine, incumbent[:3], alternative="less").pvalue
    assert rule.test(mine, incumbent, "max") == pytest.approx(expected, rel=1e-12)
    assert rule.should_stop(mine, incumbent, "max") and expected < 0.05
    assert math.isnan(rule.test([0.5], incumbent, "max"))  # one fold: nothing to test yet
    losses = [1 - v for v in mine], [1 - v for v in incumbent]
    assert rule.test(*losses, "min") == pytest.approx(expected, rel=1e-9)  # the same question for a loss
    # Under the one-SE rule the bar is the incumbent minus its standard error across folds.
    se = one_se_margin(incumbent)
    assert se == pytest.approx(np.std(incumbent, ddof=1) / 2)
    close = [0.905, 0.915, 0.90]  # a little worse than the incumbent: maybe within one SE
    shifted = stats.ttest_1samp(np.array(close) - (np.array(incumbent[:3]) - se), 0, alternative="less").pvalue
    assert rule.test(close, incumbent, "max", margin=se) == pytest.approx(shifted, rel=1e-12)
    assert rule.test(close, incumbent, "max", margin=se) > rule.test(close, incumbent, "max")


def test_the_incumbent_is_the_completed_trial_with_every_fold_and_the_best_mean():
    from kreg.lab.search.pruning import FoldRule

    pruner = Pruner("median", "max", 10, folds=3, fold=FoldRule(alpha=0.05))
    assert pruner.by_fold and "paired t-test" in pruner.describe()
    completed = [[0.70, 0.72, 0.71], [0.95, 0.96, 0.94], [0.99, 0.99]]  # the last has too few folds
    assert pruner.should_stop_folds([0.80, 0.81], completed)  # worse than the 0.95 trial
    assert not pruner.should_stop_folds([0.80, 0.81], completed[:1])  # better than the only incumbent
    assert not pruner.should_stop_folds([0.1, 0.1, 0.1], completed)  # every fold done: nothing to save


@pytest.mark.lab_e2e  # also under KERAS_BACKEND=jax (scripts/test.sh)
def test_a_cross_validated_hopeless_trial_stops_before_its_last_fold(tmp_path):
    import kreg
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    summary = kreg.tune("mlp", "wine", model_args={"width": 16, "depth": 1}, tuner="grid", max_trials=2,
                        techniques={"l2": {"values": [10.0]}}, epochs=6, batch_size=8, cv=4, refit=False,
                        tracking_uri=uri, verbose=0, seed=0)
    baseline, hopeless = summary.records
    assert baseline.status == "COMPLETED" and len(baseline.folds) == 4
    done = hopeless.metrics.get("pruned_at_fold")
    # Two folds give the t-test one degree of freedom: it stops after the second or the third fold.
    assert hopeless.status == "PRUNED" and done in (2, 3) and len(hopeless.folds) == done, hopeless.folds
    tags = MlflowClient(uri).get_run(hopeless.run_id).data.tags
    assert tags["kreg.folds_done"] == f"{done} of 4"
    assert tags["kreg.pruned"].startswith(f"after fold {done} of 4 (a paired t-test")
    assert summary.pruning.startswith("1 of 2 trials pruned by the median rule") and summary.best is baseline
    assert "on each fold's curve and a paired t-test across folds" in summary.pruning
    assert MlflowClient(uri).get_run(summary.parent_run_id).data.metrics["pruned_epochs_saved"] == \
        pytest.approx((4 - done) / 8)  # the folds it did not train, of eight planned



def test_a_cross_validated_hopeless_trial_is_pruned_inside_its_first_fold(tmp_path):
    """The epoch rule on a fold's curve: the hopeless trial's fold-1 curve is below the baseline's fold-1 curve
    after the warm-up epoch, so it stops there and its other folds are never trained."""
    import kreg
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    summary = kreg.tune("mlp", "wine", model_args={"width": 16, "depth": 1}, tuner="grid", max_trials=2,
                        techniques={"l2": {"values": [10.0]}}, epochs=6, batch_size=8, cv=4, refit=False,
                        prune={"rule": "median", "warmup_trials": 1, "warmup_epochs": 1},
                        tracking_uri=uri, verbose=0, seed=0)
    baseline, hopeless = summary.records
    assert baseline.status == "COMPLETED" and [len(c) for c in baseline.fold_curves] == [6, 6, 6, 6]
    assert hopeless.status == "PRUNED", hopeless.metrics
    assert (hopeless.metrics["pruned_at_fold"], hopeless.metrics["pruned_at_epoch"]) == (1, 2)
    assert len(hopeless.folds) == 1 and [len(c) for c in hopeless.fold_curves] == [2]
    client = MlflowClient(uri)
    tags = client.get_run(hopeless.run_id).data.tags
    assert tags["kreg.pruned"] == "at epoch 2 of 6 in fold 1 of 4 (the median rule (after 1 epoch, once 1 trials " \
                                  "completed) on that fold's curve)"
    # Each fold's curve is in the store (what another worker's trial is compared with), step = epoch.
    curve = sorted(client.get_metric_history(baseline.run_id, "fold3_val_accuracy"), key=lambda m: m.step)
    assert [m.step for m in curve] == [1, 2, 3, 4, 5, 6]
    assert [m.value for m in curve] == pytest.approx(baseline.fold_curves[2])
    # Saved: three folds not trained and four epochs of the first, of 2 x 4 x 6 planned.
    assert client.get_run(summary.parent_run_id).data.metrics["pruned_epochs_saved"] == pytest.approx((18 + 4) / 48)
