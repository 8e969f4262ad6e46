"""A search's time budget (``kreg.lab.search.budget``): its parsing, its decisions on a given clock, the oracle
that stops proposing, the trial stopped at an epoch's end, and what the summary and the parent run say."""

from __future__ import annotations

import pytest

from kreg.lab.errors import ConfigError
from kreg.lab.search.budget import END_S, Budget, parse_duration, show


@pytest.mark.parametrize("text, seconds", [("20m", 1200), ("1h30m", 5400), ("90s", 90), ("2.5h", 9000),
                                           ("1d", 86400), ("45", 45), (45, 45), (7.5, 7.5), (" 5M ", 300)])
def test_durations_read_as_people_write_them(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "10x", "", "m", 0, -3, True, "0s", float("nan"), float("inf")])
def test_a_bad_duration_names_the_field_and_the_value(bad):
    with pytest.raises(ConfigError, match=r"field `search.budget`.*Received: search.budget="):
        parse_duration(bad, "search.budget")


def test_max_trials_is_optional_with_a_budget_only():
    from kreg.lab.search.settings import SearchSettings, build

    assert build(SearchSettings, {}).trial_limit == 10  # no budget: the old default
    with_budget = build(SearchSettings, {"budget": "5m"})
    assert with_budget.budget == 300 and with_budget.trial_limit is None  # the budget decides how many
    assert build(SearchSettings, {"budget": "5m", "max_trials": 3}).trial_limit == 3  # whichever ends first
    with pytest.raises(ConfigError, match="search.budget"):
        build(SearchSettings, {"budget": "a while"}, prefix="search.")


def test_a_pipeline_takes_its_budget_from_the_file_or_the_command_line(tmp_path):
    from kreg.lab.config import parse_pipeline

    cfg = parse_pipeline({"name": "p", "data": {"dataset": "wine"}, "model": {"type": "mlp"},
                          "search": {"budget": "10m"}}, base=tmp_path)
    assert cfg.tune_kwargs()["budget"] == 600 and cfg.tune_kwargs()["max_trials"] is None
    overridden = cfg.with_overrides(budget="90s")
    assert overridden.tune_kwargs()["budget"] == 90
    with pytest.raises(ConfigError, match="search.budget"):
        cfg.with_overrides(budget="later")


def _budget(seconds=100.0, start=1000.0, **kw):
    return Budget(seconds=seconds, deadline=start + seconds, started=start, **kw)


def test_the_next_trial_starts_only_when_it_fits_before_the_refits_reserve():
    lines = []
    budget = _budget(pooled_ratio=1.25, notify=lines.append)
    assert budget.admits(now=1001.0)  # nothing measured yet: the baseline always runs
    budget.trial_ended("0", 10.0, completed=True)  # the baseline: 10 s
    reserve = 2 * 10.0 * 1.25 + END_S  # the answer's and the baseline's refit on 1.25x the data, then saving
    assert budget.reserve() == pytest.approx(reserve)
    assert lines and lines[0].startswith("budget 1m40s: the baseline took 10s; about")
    assert budget.admits(now=1100.0 - reserve - 10.0)  # exactly one trial's room left
    assert not budget.admits(now=1100.0 - reserve - 9.0)
    assert budget.stopped_proposing.startswith("no trial started after ")
    budget.trial_ended("1", 1.0, completed=False)  # a pruned trial says nothing about a whole one
    assert budget.trial_estimate() == 10.0
    budget.trial_ended("2", 20.0, completed=True)
    assert budget.trial_estimate() == 15.0  # the median of the whole trials
    # A running trial stops when one more epoch would eat into the reserve.
    assert not budget.should_stop(2.0, now=1100.0 - budget.reserve() - 2.0)
    assert budget.should_stop(2.0, now=1100.0 - budget.reserve() - 1.9)


def test_a_search_without_refit_keeps_only_the_time_to_save():
    budget = _budget(refit=False)
    budget.trial_ended("0", 30.0, completed=True)
    assert budget.reserve() == END_S


def test_a_resumed_budget_counts_the_time_already_spent_and_plans_from_the_saved_trials():
    class Settings:
        budget, cv, refit = 600.0, None, True

    class Splits:
        x_train, x_val, in_memory = [0] * 80, [0] * 20, True

    class Search:
        settings, splits = Settings(), Splits()

    budget = Budget.start(Search(), started=5000.0, previous_s=200.0)
    assert budget.deadline == 5400.0 and budget.elapsed(now=5000.0) == 200.0
    assert budget.pooled_ratio == 1.25  # the refit trains on training + validation
    budget.restore({"baseline_id": "00", "trial_seconds": {"00": 12.0, "03": 14.0}})
    assert budget.baseline_id == "00" and budget.trial_estimate() == 13.0
    assert Budget(seconds=1, deadline=1).state() == {"baseline_id": None, "trial_seconds": {}}


def test_the_spent_line_says_where_the_time_went():
    budget = _budget(seconds=300.0, start=0.0)
    budget.first_proposal = 9.0
    line = budget.spent_line(trials=14, pruned=5, stopped=1, refit_s=38.0, search_s=240.0, now=292.0)
    assert line == ("budget 5m00s: 9s on start-up, 4m00s on 14 trials (5 pruned, 1 stopped by the budget), "
                    "38s on the refit, 5s on the summary; ended 8s before the budget")
    over = budget.spent_line(trials=1, pruned=0, stopped=0, refit_s=0.0, search_s=300.0, now=315.0)
    assert over.endswith("ended 15s over the budget (5.0%)")
    assert show(3725) == "1h02m" and show(59.4) == "59s"


def test_the_oracle_saves_what_trials_cost_for_a_resume():
    import keras_tuner as kt

    from kreg.lab.search.oracles import make_oracle
    from kreg.lab.search.settings import SearchSettings, build
    from kreg.lab.search.space import SearchSpace, plan_from_hp
    from kreg.lab.search.tune import Objective

    space = SearchSpace.from_dict({"l2": {"min": 1e-5, "max": 1e-2, "scale": "log"}})
    settings = build(SearchSettings, {"tuner": "random", "budget": "1m"})

    def oracle():
        hps = kt.HyperParameters()
        plan_from_hp(hps, space, {})
        return make_oracle(settings, space, Objective("val_accuracy", "max"), hps, seed=0, max_epochs=3)

    first = oracle()
    assert first.max_trials is None  # the budget, not a count, ends the search
    first.set_budget(_budget(seconds=60.0, start=0.0))
    first._kreg_budget.trial_ended("0", 4.0, completed=True)
    state = first.get_state()
    assert state["kreg_budget"] == {"baseline_id": "0", "trial_seconds": {"0": 4.0}}
    second = oracle()
    second.set_state(state)
    later = _budget(seconds=60.0, start=0.0)
    second.set_budget(later)
    assert later.trial_estimate() == 4.0 and later.baseline_id == "0"


# --------------------------------------------------------------- whole searches
def _tune(tmp_path, **kw):
    import kreg

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = dict(model_args={"width": 8, "depth": 1}, tuner="random", epochs=3, batch_size=16, cv=None,
                techniques={"l2": {"min": 1e-5, "max": 1e-2, "scale": "log"}}, tracking_uri=uri, verbose=0, seed=0)
    return kreg.tune("mlp", "wine", **{**args, **kw}), uri


def test_a_budget_smaller_than_the_baseline_still_ends_with_an_answer_and_says_so(tmp_path):
    from mlflow.tracking import MlflowClient

    summary, uri = _tune(tmp_path, budget="1s")  # no max_trials: the budget alone ends the search
    assert [r.trial_id for r in summary.records] == [summary.baseline.trial_id]  # the baseline always runs
    assert summary.status == "FINISHED" and summary.model is not None  # and is refit: the answer is whole
    assert summary.budget.startswith("budget 1s: ") and "over the budget" in summary.budget
    parent = MlflowClient(uri).get_run(summary.parent_run_id)
    assert parent.data.tags["kreg.budget"] == summary.budget
    assert parent.data.metrics["budget_s"] == 1.0 and parent.data.metrics["budget_used_s"] > 1.0


@pytest.mark.parametrize("cv", [None, 3])
def test_a_trial_that_would_overrun_stops_at_an_epochs_or_folds_end_and_is_never_the_answer(tmp_path, monkeypatch,
                                                                                              cv):
    from mlflow.tracking import MlflowClient

    from kreg.lab.search import budget as budget_module

    # The clock is the machine's; what is tested is what happens when the budget says "stop now".
    monkeypatch.setattr(budget_module.Budget, "admits", lambda self, now=None: True)
    monkeypatch.setattr(budget_module.Budget, "should_stop", lambda self, epoch_s, now=None: True)
    summary, uri = _tune(tmp_path, budget="1h", max_trials=2, refit=False, prune="none", cv=cv)
    baseline, stopped = summary.records
    assert baseline.status == "COMPLETED" and baseline.metrics["epochs_run"] == 3  # never stopped
    tags = MlflowClient(uri).get_run(stopped.run_id).data.tags
    if cv is None:  # holdout: at the end of the epoch
        assert stopped.status == "PRUNED" and stopped.metrics["budget_stopped_at_epoch"] == 1
        assert stopped.metrics["epochs_run"] == 1 and summary.best is baseline
        assert tags["kreg.pruned"] == "after epoch 1 of 3 (stopped by the budget)"
        assert "**Stopped by the budget** after epoch 1" in tags["mlflow.note.content"]
    else:  # cross-validated: between folds, the folds it trained kept
        assert stopped.status == "PRUNED" and stopped.metrics["budget_stopped_at_fold"] == 1
        assert len(stopped.folds) == 1 and len(baseline.folds) == 3 and summary.best is baseline
        assert tags["kreg.pruned"] == "after fold 1 of 3 (stopped by the budget)"
        assert "**Stopped by the budget** after fold 1" in tags["mlflow.note.content"]
    assert " on 2 trials (1 stopped by the budget)" in summary.budget  # max_trials came first: an hour was left
    assert summary.budget.endswith("before the budget") and summary.status == "FINISHED"
