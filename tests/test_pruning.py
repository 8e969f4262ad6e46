"""Issue 20, part 1: pruning on the honest validation curve, checked on known curves without training."""

from __future__ import annotations

import math

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
    assert "median rule" in median.describe() and "[1, 3, 9, 27]" in asha.describe()


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
                     prune=prune, refit=False, tracking_uri=uri, verbose=0, seed=0), uri


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
    assert parent.data.tags["kreg.pruning"].startswith("1 of 2 trials pruned (")
    assert summary.pruning == parent.data.tags["kreg.pruning"]


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
