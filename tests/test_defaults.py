"""Defaults that fit the data's size (``kreg.lab.search.defaults``), ties broken toward regularization, and a
baseline that makes the search meaningless stopping it (``kreg.lab.analysis.blockers``)."""

from __future__ import annotations

import numpy as np
import pytest

from kreg.lab.analysis.blockers import blocking_line, chance_accuracy
from kreg.lab.analysis.selection import pick_best, select
from kreg.lab.plan import RegularizationPlan
from kreg.lab.search.defaults import AUTO_CV_BELOW, auto_batch_size, auto_cv
from kreg.lab.search.space import SearchSpace
from kreg.lab.search.tune import Objective
from kreg.lab.tracking.records import TrialRecord


@pytest.mark.parametrize("n, size", [(5, 8), (28, 8), (67, 8), (128, 16), (200, 16), (300, 32), (511, 32),
                                     (512, 64), (3200, 64), (60000, 64)])
def test_the_default_batch_size_gives_small_data_several_steps_an_epoch(n, size):
    assert auto_batch_size(n) == size
    assert -(-n // size) >= min(8, n // 8 or 1) or size == 8  # at least ~8 steps unless the floor of 8 binds


def test_cv_auto_folds_below_the_threshold_and_keeps_the_holdout_above():
    assert auto_cv(AUTO_CV_BELOW - 1, 2000, True) == {"folds": 3, "repeats": 1, "scheme": "auto"}
    assert auto_cv(AUTO_CV_BELOW, 2000, True) is None
    assert auto_cv(14, 67, True)["repeats"] == 2  # a tiny pool: the folds are drawn twice
    assert auto_cv(14, 67, False) is None  # a stream has no pool to fold


def _prepare(data, **kw):
    from kreg.lab.search.tune import prepare, request

    return prepare(request("mlp", data, model_args={"width": 8, "depth": 1}, techniques={}, **kw)).search


def test_small_data_is_cross_validated_and_chosen_by_one_se_by_default(tmp_path):
    search = _prepare("wine", tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")  # 27 validation examples
    assert search.settings.cv.folds == 3 and search.settings.cv.repeats == 1 and search.settings.select == "one_se"
    assert search.training.batch_size == 8  # 106 training examples: 14 steps an epoch
    assert any(line.startswith("scored by 3-fold cross-validation of the 133") for line in search.notes)
    assert any(line.startswith("batch size 8 (auto: 106 training examples") for line in search.notes)
    explicit = _prepare("wine", cv=None, batch_size=32, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert explicit.settings.cv is None and explicit.settings.select == "best" and explicit.training.batch_size == 32
    assert explicit.notes == ()  # nothing was decided for the user


def test_large_data_keeps_the_holdout_and_the_batch_of_64(tmp_path):
    import kreg

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3000, 4)).astype("float32"), rng.integers(0, 2, 3000)
    search = _prepare(kreg.data.from_arrays(x, y, validation_fraction=0.2), tracking_uri=f"sqlite:///{tmp_path}/m.db")
    assert search.settings.cv is None and search.settings.select == "best" and search.training.batch_size == 64
    assert search.notes[0].startswith("scored on the holdout validation split (cv auto: 480 validation examples")


def _record(trial_id, plan, objective):
    return TrialRecord(trial_id=trial_id, status="COMPLETED", plan=plan, objective=objective, metrics={})


def test_a_tie_goes_to_the_more_regularized_plan_never_to_the_earlier_trial():
    space = SearchSpace.from_dict({"l2": {"min": 1e-5, "max": 1e-1, "scale": "log"},
                                   "dropout": {"min": 0.1, "max": 0.5}})
    objective = Objective("val_accuracy", "max")
    records = [_record("0", RegularizationPlan(), 0.9286),  # the baseline, first, tied
               _record("1", RegularizationPlan(l2=1e-5), 0.9286),
               _record("2", RegularizationPlan(l2=1e-2, dropout=0.4), 0.9286),
               _record("3", RegularizationPlan(dropout=0.5), 0.8571)]
    assert pick_best(records, objective, space).trial_id == "2"
    assert pick_best(records, objective).trial_id == "0"  # without the space: the old order (kept for callers)
    chosen, why = select(records, objective, space, "best")
    assert chosen.trial_id == "2" and why.startswith("best validation objective, tied with 2 other trials")
    records[2].objective = 0.93  # a real difference still wins over regularization
    assert pick_best([*records[:2], _record("4", RegularizationPlan(dropout=0.5), 0.9), records[2]],
                     objective, space).trial_id == "2"
    assert select(records[:2], objective, space, "best")[0].trial_id == "1"


# --------------------------------------------------------------- baselines that stop the search
class _Search:
    def __init__(self, y_train, kind="classification"):
        from kreg.lab.search.settings import Training
        from kreg.lab.task import Classification, Regression

        self.task = Classification(num_classes=3) if kind == "classification" else Regression()
        self.training = Training(epochs=30, learning_rate=1e-3)

        class Splits:
            pass

        self.splits = Splits()
        self.splits.y_train = y_train


def test_what_stops_a_search_after_its_baseline():
    search = _Search(np.array([0] * 50 + [1] * 30 + [2] * 20))
    assert chance_accuracy(search.splits.y_train, 3) == 0.5
    ok = TrialRecord(trial_id="0", plan=RegularizationPlan(), status="COMPLETED", metrics={"train_accuracy": 0.99,
                                                                            "val_accuracy": 0.50})
    assert blocking_line(ok, search) is None  # fits training, validates at chance: overfitting, search on
    flat = TrialRecord(trial_id="0", plan=RegularizationPlan(), status="COMPLETED",
                       metrics={"train_accuracy": 0.52, "val_accuracy": 0.49})
    assert blocking_line(flat, search).startswith("stopped after the baseline: it does not learn (honest "
                                                  "training accuracy 0.520, validation 0.490, chance 0.500)")
    nan = TrialRecord(trial_id="0", plan=RegularizationPlan(), status="FAILED",
                      reason="Traceback...\nDiverged: training loss became NaN or infinite at epoch 3")
    assert blocking_line(nan, search) == (
        "stopped after the baseline: training loss became NaN or infinite at epoch 3; every plan shares its "
        "learning rate (0.001) and data: lower the learning rate, or look for NaN or infinite values in the inputs")
    crashed = TrialRecord(trial_id="0", plan=RegularizationPlan(), status="FAILED", reason="ValueError: shapes")
    assert blocking_line(crashed, search) is None  # a bug, not a state: keras-tuner's failure handling applies
    collapsed = TrialRecord(trial_id="0", plan=RegularizationPlan(), status="COMPLETED", metrics={"train_accuracy": 0.9},
                            diagnoses=[{"kind": "inference_collapse", "evidence": "training-mode accuracy 1.000 "
                                        "but inference-mode training accuracy 0.357", "advice": "use larger batches"}])
    assert blocking_line(collapsed, search).startswith("stopped after the baseline: inference collapse "
                                                       "(training-mode accuracy 1.000")
    assert blocking_line(flat, _Search(None, "regression")) is None


def test_a_baseline_that_does_not_learn_stops_the_search_with_its_line(tmp_path):
    import kreg
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # Inputs that say nothing about the labels: every prediction is the same class, at chance or below.
    data = kreg.data.from_arrays(np.zeros((120, 4), "float32"), np.arange(120) % 3, standardize="none",
                                 x_test=np.zeros((30, 4), "float32"), y_test=np.arange(30) % 3)
    summary = kreg.tune("mlp", data, model_args={"width": 8, "depth": 1}, epochs=2,
                        techniques={"dropout": {"min": 0.1, "max": 0.5}}, tuner="random", max_trials=4, cv=None,
                        tracking_uri=uri, verbose=0)
    assert len(summary.records) == 1 and summary.status == "FAILED" and summary.answer.refit is None
    assert summary.error.startswith("stopped after the baseline: it does not learn")
    parent = MlflowClient(uri).get_run(summary.parent_run_id)
    assert parent.info.status == "FAILED" and parent.data.tags["kreg.error"] == summary.error


def _cv_record(trial_id, plan, folds):
    return TrialRecord(trial_id=trial_id, status="COMPLETED", plan=plan, objective=float(np.mean(folds)),
                       folds=[{"kept_val_accuracy": v} for v in folds],
                       metrics={"cv_sem_kept_val_accuracy": float(np.std(folds, ddof=1) / np.sqrt(len(folds)))})


def test_one_se_judges_a_plan_against_the_best_fold_by_fold():
    space = SearchSpace.from_dict({"l2": {"min": 1e-5, "max": 1e-1, "scale": "log"},
                                   "dropout": {"min": 0.1, "max": 0.5}})
    objective = Objective("val_accuracy", "max")
    # Folds of very different difficulty: the best's own SE is about 3 points.
    best = _cv_record("0", RegularizationPlan(l2=1e-5), [0.90, 0.80, 0.85])  # the weakest L2 of the range
    steady_loss = _cv_record("1", RegularizationPlan(l2=1e-1), [0.885, 0.785, 0.835])  # 1.5 points worse on every fold
    noisy_tie = _cv_record("2", RegularizationPlan(dropout=0.3), [0.91, 0.78, 0.855])  # better, worse, better
    assert steady_loss.objective >= best.objective - best.metrics["cv_sem_kept_val_accuracy"]  # the old rule: in
    chosen, why = select([best, steady_loss, noisy_tie], objective, space, "one_se")
    assert chosen is noisy_tie and "fold by fold" in why  # the consistent loser is out; the noisy tie is within
    chosen, _ = select([best, steady_loss], objective, space, "one_se")
    assert chosen is best  # a best that wins on every fold is not displaced by a plan that loses on each
    baseline = _cv_record("9", RegularizationPlan(), [0.90, 0.80, 0.85])
    assert select([baseline, noisy_tie], objective, space, "one_se")[0] is baseline  # below none: never chosen
    no_folds = [_record("0", RegularizationPlan(), 0.85), _record("1", RegularizationPlan(l2=1e-1), 0.835)]
    for r in no_folds:
        r.metrics = {"cv_sem_kept_val_accuracy": 0.029}
    assert select(no_folds, objective, space, "one_se")[0].trial_id == "0"  # never a plan that scored below none
    no_folds[0].plan = RegularizationPlan(dropout=0.1)  # the same figures, no baseline among them
    assert select(no_folds, objective, space, "one_se")[0].trial_id == "1"  # without folds: the best's own SE
    # A regularized best: the candidates are the plans at least as good as the baseline, within one SE.
    base = _cv_record("0", RegularizationPlan(), [0.80, 0.70, 0.75])
    top = _cv_record("1", RegularizationPlan(l2=1e-4), [0.90, 0.80, 0.85])
    strong = _cv_record("2", RegularizationPlan(l2=1e-1, dropout=0.5), [0.905, 0.79, 0.85])
    assert select([base, top, strong], objective, space, "one_se")[0] is strong
