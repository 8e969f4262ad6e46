"""The summary a user reads at the end of `kreg tune`: what picked the best trial is on the table."""

from __future__ import annotations

import io

from rich.console import Console

from kreg.lab.plan import RegularizationPlan
from kreg.lab.search.tune import Objective, SearchSummary, pick_best
from kreg.lab.tracking.console import RichReporter
from kreg.lab.tracking.records import TrialRecord


def _record(trial_id, objective, val, test, **plan):
    metrics = {"val_accuracy": val, "test_accuracy": test, "gap_accuracy": 0.05, "test_gap_accuracy": 0.02,
               "epochs_run": 60}
    return TrialRecord(trial_id, "COMPLETED", RegularizationPlan(**plan), metrics=metrics, objective=objective)


def _summary_text(objective: Objective) -> str:
    # The numbers of a breast_cancer search read back from MLflow: trial 10 has the lowest penalized
    # validation loss, though a lower validation accuracy than the baseline.
    records = [_record("00", 0.4974, 0.9626, 0.9790), _record("10", 0.2389, 0.9346, 0.9720, l2=5.94e-05)]
    summary = SearchSummary(pipeline="p", parent_run_id="0" * 32, experiment="e", tracking_uri="sqlite:///x.db",
                            records=records, baseline=records[0], best=pick_best(records, objective),
                            duration_s=1.0, objective=objective)
    out = io.StringIO()
    RichReporter(Console(file=out, width=220)).search_ended(summary)
    return out.getvalue()


def test_a_penalized_objective_is_shown_beside_the_metric_it_differs_from():
    text = _summary_text(Objective("val_penalized_loss", "min"))
    assert "val_penalized_loss (min, picks best)" in text
    baseline = next(line for line in text.splitlines() if "baseline (00)" in line)
    best = next(line for line in text.splitlines() if "best (10)" in line)
    assert "0.4974" in baseline and "0.2389" in best and "0.9346" in best


def test_the_objective_column_is_left_out_when_it_is_the_metric_shown():
    text = _summary_text(Objective("val_accuracy", "max"))
    assert "picks best" not in text and "best (00)" in text  # by accuracy, the baseline wins here
