"""Issue 20 part 4a: what a trial and a search's end cost beyond training, and what was cut.

The timing sections (``kreg.lab.timing``), the comparison's bootstrap computed
for all resamples at once, and the baseline's refit kept on its run (refit
before the chosen plan, read back instead of trained again).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

SMALL = {"model_args": {"width": 8, "depth": 1}, "verbose": 0}
SPACE = {"l2": {"min": 1e-4, "max": 1e-1, "scale": "log"}}


def test_timing_sections_count_only_when_enabled():
    import threading

    from kreg.lab import timing

    was = timing.enabled()
    try:
        timing.enable(False)
        timing.reset()
        with timing.section("off"):
            pass
        timing.add("off", 1.0)
        timing.mark("off")
        assert timing.totals() == {} and timing.marks() == {}  # off: nothing kept
        assert timing.section("a") is timing.section("b")  # off: one shared no-op context, nothing built

        timing.enable()
        with timing.section("x"):
            pass
        worker = threading.Thread(target=lambda: timing.add("x", 2.0))  # a worker thread adds to the same totals
        worker.start()
        worker.join()
        timing.mark("m")
        timing.mark("m")  # the first time stays
        first = timing.marks()["m"]
        timing.mark("m")
        assert timing.counts()["x"] == 2 and 2.0 <= timing.totals()["x"] < 3.0
        assert timing.marks()["m"] == first
    finally:
        timing.enable(was)
        timing.reset()


@pytest.mark.parametrize("classes", [2, 5])
def test_resampled_figures_equal_figures_of_each_resample(classes):
    """The comparison's 2000 resamples at once: loss, NLL and accuracy exactly as ``figures`` computes each;
    the ECE as kreg's Keras metric bins it, to float32 rounding."""
    from kreg.lab.analysis.stats import bootstrap_indices
    from kreg.lab.task import Classification

    rng = np.random.default_rng(classes)
    task = Classification(num_classes=classes)
    probabilities = task.probabilities(rng.normal(size=(300, classes)) * 3, "linear")
    y = rng.integers(0, classes, 300)
    probabilities[0] = np.eye(classes)[y[0]]  # a confidence of exactly 1 (the top bin's edge)
    index = bootstrap_indices(300, 20, seed=1)
    each = [task.figures(probabilities[i], y[i]) for i in index]
    resampled = task.resampled_figures(probabilities, y, index)
    for key in ("loss", "nll", "accuracy"):
        np.testing.assert_array_equal(resampled[key], [d[key] for d in each])
    np.testing.assert_allclose(resampled["ece"], [d["ece"] for d in each], rtol=0, atol=2e-6)
    assert np.ptp(resampled["ece"]) > 0  # the resamples differ: the test can tell a wrong index


@pytest.fixture(scope="module")
def searched(tmp_path_factory, wine_splits):
    """A finished 2-trial search on wine (no refit yet): its resolved search, tracker and records."""
    import kreg
    from kreg.lab.search.tune import prepare, request
    from kreg.lab.tracking.mlflow import SearchTracker

    uri = f"sqlite:///{tmp_path_factory.mktemp('overhead') / 'mlflow.db'}"
    kwargs = dict(techniques=SPACE, tuner="random", max_trials=2, epochs=2, refit=False, tracking_uri=uri,
                  experiment="overhead", **SMALL)
    summary = kreg.tune("mlp", wine_splits, **kwargs)
    assert summary.status == "FINISHED", summary.error
    search = prepare(request("mlp", wine_splits, **kwargs)).search
    return search, SearchTracker(uri, "overhead"), summary.records


def test_refit_order_does_not_change_the_refits_and_a_kept_refit_reads_back_the_same(searched):
    """The end refits the baseline first now (so a signal during the chosen plan's refit keeps it): the same
    figures and outputs as refitting it second; kept on its run, it reads back exactly, and the end then
    uses it (no training) with the same comparison."""
    from kreg.lab.search import answer as answering
    from kreg.lab.trial.refit import refit, refit_epochs

    search, tracker, (baseline, other) = searched
    chosen_first = refit(search, other.plan, refit_epochs(other))
    baseline_second = refit(search, baseline.plan, refit_epochs(baseline))
    lines = []
    series = answering.refit_and_compare(search, answering.Answer(other, "test"), baseline, echo=lines.append)
    assert "refit: the baseline for" in lines[0] and other.plan.describe() in lines[1]  # the baseline first
    for before, now in ((chosen_first, series.refit), (baseline_second, series.baseline_refit)):
        assert now.metrics == before.metrics
        np.testing.assert_array_equal(now.outputs, before.outputs)

    assert answering.known_refit(tracker, search, baseline) is None  # nothing kept yet
    assert answering.keep_refit(tracker, search, baseline, series.baseline_refit, by="the test")
    known = answering.known_refit(tracker, search, baseline)
    assert known.metrics == series.baseline_refit.metrics and known.epochs == refit_epochs(baseline)
    np.testing.assert_array_equal(known.outputs, series.baseline_refit.outputs)
    longer = {k: baseline.metrics[k] + 5 for k in ("kept_epoch", "cv_median_kept_epoch") if k in baseline.metrics}
    other_epochs = dataclasses.replace(baseline, metrics={**baseline.metrics, **longer})
    assert refit_epochs(other_epochs) == refit_epochs(baseline) + 5
    assert answering.known_refit(tracker, search, other_epochs) is None  # another refit: trained again

    lines = []
    reread = answering.refit_and_compare(search, answering.Answer(other, "test"), baseline, echo=lines.append,
                                         tracker=tracker)
    assert "read back from its run" in lines[0]
    assert reread.baseline_refit.model is None  # not trained here
    assert reread.comparison == series.comparison
