"""Pruning: stop a trial whose validation curve says it will not win, at the epoch it says so.

A trial's curve is its objective (``val_accuracy``, ``val_mse``, ...) after
every epoch: Keras' validation pass, in inference mode on the validation
split, so it is an honest figure (no dropout, noise or augmentation active,
no penalty added). It is compared with the curves of the trials that have
ended (completed or pruned), never with trials still running, so a decision
never waits for another trial (with ``--workers``, a worker reads the ended
trials of the others from the store when its trial starts).

Two rules, as Optuna and Ray Tune define them:

- ``median`` (Optuna's ``MedianPruner``; Golovin et al., "Google Vizier",
  2017): after ``warmup_epochs`` epochs, once ``warmup_trials`` trials have
  completed, a trial stops when the best value of its curve so far is worse
  than the median of the completed trials' values at the same epoch.
- ``asha`` (asynchronous successive halving, Li et al., "A System for
  Massively Parallel Hyperparameter Tuning", MLSys 2020; Ray Tune's
  ``ASHAScheduler``): rungs at ``min_epochs * eta**k`` epochs; at a rung a
  trial goes on only if its value is within the best ``1/eta`` of the values
  every ended trial had at that rung (its own included). With fewer than
  ``eta`` values at a rung there is nothing to halve yet and it goes on.

A cross-validated trial is judged twice. Within each fold, by the same
epoch rule, its curve against the curves the ended trials had on that same
fold (fold k of every trial holds the same examples, so its curves compare;
a trial stopped there is pruned whole: its later folds are not trained).
And across folds (``FoldRule``): after each fold from the second on, a one-sided paired t-test of its fold
scores against the incumbent's on the same folds (the best trial that has
ended) stops it when it is significantly worse (``alpha`` 0.05). Why a
t-test and not Wilcoxon's signed-rank test (Optuna's ``WilcoxonPruner``):
with k folds the smallest one-sided p-value Wilcoxon can reach is 1/2^k
(0.125 with 3 folds, 0.0625 with 4), so it could never stop a 3-fold or
4-fold trial before its last fold; the t-test uses the size of the
differences, and scores of one model on folds of the same data are close
enough to normal for a decision that only saves time. Under ``select:
one_se`` the bar is the incumbent's mean minus one standard error (a trial
within one SE of the best may be the answer), so only trials that cannot
reach the one-SE band stop.

The baseline (trial 0) is never pruned: every gain is measured against it.
Pure functions over lists of floats: ``tests/test_pruning.py`` checks them
on known curves, without training.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from kreg.lab.tracking.records import ENDED, PRUNED

PRUNE_RULES = ("median", "asha", "none")


def _better(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "max" else a < b


def best_so_far(curve: list[float], direction: str) -> float:
    values = [v for v in curve if v is not None and math.isfinite(v)]
    if not values:
        return math.nan
    return max(values) if direction == "max" else min(values)


@dataclasses.dataclass(frozen=True)
class MedianRule:
    """Stop when the best value so far is worse than the completed trials' median at this epoch."""

    warmup_trials: int = 5
    warmup_epochs: int = 5

    def should_stop(self, curve: list[float], ended: list[list[float]], direction: str) -> bool:
        epoch = len(curve)
        if epoch <= self.warmup_epochs:
            return False
        at_epoch = [c[epoch - 1] for c in ended if len(c) >= epoch and math.isfinite(c[epoch - 1])]
        if len(at_epoch) < self.warmup_trials:
            return False
        best = best_so_far(curve, direction)
        if not math.isfinite(best):
            return True  # a curve of NaNs beats nothing
        median = float(np.median(at_epoch))
        return _better(median, best, direction)


@dataclasses.dataclass(frozen=True)
class AshaRule:
    """Asynchronous successive halving: at each rung, go on only within the best ``1/eta``."""

    min_epochs: int = 2
    eta: int = 3

    def rungs(self, max_epochs: int) -> list[int]:
        """Epochs at which a trial is judged: ``min_epochs * eta**k`` below ``max_epochs``."""
        out, rung = [], self.min_epochs
        while rung < max_epochs:
            out.append(rung)
            rung *= self.eta
        return out

    def should_stop(self, curve: list[float], ended: list[list[float]], direction: str,
                    max_epochs: int) -> bool:
        epoch = len(curve)
        if epoch not in self.rungs(max_epochs):
            return False
        mine = curve[epoch - 1]
        if not math.isfinite(mine):
            return True
        values = [c[epoch - 1] for c in ended if len(c) >= epoch and math.isfinite(c[epoch - 1])] + [mine]
        if len(values) < self.eta:
            return False
        keep = max(1, len(values) // self.eta)  # the best 1/eta go on
        ranked = sorted(values, reverse=direction == "max")
        return _better(ranked[keep - 1], mine, direction)


@dataclasses.dataclass(frozen=True)
class FoldRule:
    """Stop a cross-validated trial when its folds so far are significantly worse than the incumbent's."""

    alpha: float = 0.05
    min_folds: int = 2

    def test(self, mine: list[float], incumbent: list[float], direction: str, margin: float = 0.0) -> float:
        """One-sided p-value of "this trial is at least as good as the incumbent minus ``margin``" on the
        folds done (paired t-test; nan when it cannot be computed yet)."""
        n = len(mine)
        if n < self.min_folds or len(incumbent) < n:
            return math.nan
        mine_, bar = np.asarray(mine, np.float64), np.asarray(incumbent[:n], np.float64)
        diff = mine_ - (bar - margin) if direction == "max" else (bar + margin) - mine_  # > 0: mine is better
        if np.allclose(diff, diff[0]):  # no spread: the sign says it all (SciPy would give nan)
            return 0.0 if diff[0] < 0 else 1.0
        from scipy import stats

        return float(stats.ttest_1samp(diff, 0.0, alternative="less").pvalue)

    def should_stop(self, mine, incumbent, direction: str, margin: float = 0.0) -> bool:
        p = self.test(mine, incumbent, direction, margin)
        return math.isfinite(p) and p < self.alpha


def one_se_margin(values: list[float]) -> float:
    """The standard error of the mean of a trial's fold scores (the one-SE rule's band)."""
    values = [v for v in values if math.isfinite(v)]
    return float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0


@dataclasses.dataclass(frozen=True)
class Pruner:
    """The search's pruning rule and objective direction; ``should_stop`` after every epoch."""

    rule: str = "median"
    direction: str = "max"
    max_epochs: int = 30
    median: MedianRule = MedianRule()
    asha: AshaRule = AshaRule()
    folds: int = 0  # cross-validation: the folds of a trial (judged by ``fold``, not by epoch)
    fold: FoldRule = FoldRule()
    one_se: bool = False  # select: one_se (the fold test's bar is the incumbent minus one SE)

    @property
    def active(self) -> bool:
        return self.rule != "none"

    @property
    def by_fold(self) -> bool:
        return self.active and self.folds > 1

    def should_stop_folds(self, mine: list[float], completed: list[list[float]]) -> bool:
        """After a fold: is this trial significantly worse than the incumbent, the completed trial with every
        fold and the best mean?"""
        full = [c for c in completed if len(c) >= self.folds and all(math.isfinite(v) for v in c[:self.folds])]
        if not full or len(mine) >= self.folds:
            return False
        pick = max if self.direction == "max" else min
        incumbent = pick(full, key=lambda c: float(np.mean(c[:self.folds])))[:self.folds]
        margin = one_se_margin(incumbent) if self.one_se else 0.0
        return self.fold.should_stop(mine, incumbent, self.direction, margin)

    def should_stop(self, curve: list[float], completed: list[list[float]], pruned: list[list[float]] = ()) -> bool:
        """``curve``: this trial's values so far; ``completed``/``pruned``: the ended trials' curves (the median
        rule compares with completed trials, as Optuna's does; a rung of ASHA with every trial that reached it)."""
        if self.rule == "median":
            return self.median.should_stop(curve, list(completed), self.direction)
        if self.rule == "asha":
            return self.asha.should_stop(curve, [*completed, *pruned], self.direction, self.max_epochs)
        return False

    def describe(self) -> str:
        if self.by_fold:
            return f"{self.describe_epochs()} on each fold's curve and {self.describe_fold_test()}"
        return self.describe_epochs()

    def describe_fold_test(self) -> str:
        bar = "the incumbent minus one SE" if self.one_se else "the incumbent"
        return f"a paired t-test across folds against {bar}, alpha {self.fold.alpha}"

    def describe_epochs(self) -> str:
        if self.rule == "median":
            w = self.median.warmup_epochs
            return f"the median rule (after {w} epoch{'' if w == 1 else 's'}, once {self.median.warmup_trials} " \
                   "trials completed)"
        if self.rule == "asha":
            return f"ASHA (rungs at {self.asha.rungs(self.max_epochs)} epochs, eta {self.asha.eta})"
        return "no pruning"


def default_warmup_epochs(epochs: int) -> int:
    """The median rule's default warm-up: a third of the epochs (regularized trials learn slower at first),
    and at least one epoch."""
    return max(1, epochs // 3)


def epochs_saved(records, max_epochs: int, folds: int = 0) -> tuple[int, float]:
    """``(pruned trials, fraction of the planned epochs the pruned trials did not train)``; with ``folds``,
    a trial plans ``folds * max_epochs`` and a pruned one saved the folds it did not train."""
    pruned = [r for r in records if r.status == PRUNED]
    per_trial = max_epochs * max(1, folds)
    planned = per_trial * sum(r.status in ENDED for r in records)
    if folds:  # the folds it did not train, and the rest of the fold the epoch rule stopped
        saved = sum((folds - int(r.metrics.get("pruned_at_fold", folds))) * max_epochs
                    + (max_epochs - int(r.metrics.get("pruned_at_epoch", max_epochs))) for r in pruned)
    else:
        saved = sum(max_epochs - int(r.metrics.get("epochs_run", max_epochs)) for r in pruned)
    return len(pruned), (saved / planned if planned else 0.0)
