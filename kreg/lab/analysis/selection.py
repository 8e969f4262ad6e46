"""Choosing the answer from the trials: the best objective, or the one-standard-error rule.

``one_se`` (Breiman et al. 1984; glmnet's ``lambda.1se``, scikit-learn's
refit callables): among the completed trials whose cross-validated objective
is within one standard error of the best trial's, pick the most regularized.
Simpler models within the noise of the best one generalize at least as well
and are less likely to have won by chance. Only trials that scored at least
as well as the baseline (no regularization) are candidates: a plan that did
worse than none has no evidence of helping, and when the baseline is the
best, it is the answer.

Which standard error: every trial of a search sees the same folds, so a
trial is compared with the best fold by fold: it is within when its mean
shortfall is at most the standard error of its fold-by-fold shortfalls. The
folds' own difficulty cancels in the differences (as in ``kreg study
validation_curve``). The best trial's own SE across folds (glmnet's) mixes
that difficulty in: with 3 folds of a small pool it was about 2 points, and
let in plans that lost a point on every fold and tested significantly worse
than the baseline they displaced. Records without per-fold figures (older
states) fall back to the best trial's SE.

"Most regularized" across plans that mix techniques, from the technique
registry (``Technique.stronger``) and the search space:

    regularization(plan) = sum over its techniques t with an order (stronger != 0) of
                           [1 if t is a technique, 0 if a setting] + position of t's strength in its range

where the position is 0 at the weakest end of the searched range and 1 at the
strongest (log scale for log ranges; rank for lists of values; 1 for a fixed
value), reversed for techniques where smaller is stronger (early stopping's
patience, SWA's start, the batch size). Techniques with no order
(batch norm, the learning rate, the schedule) count 0. So one technique at
its strongest (2) counts as much as two at their weakest (1 + 1). Ties go to
the better objective. Under ``best``, trials tied on the objective go to the
most regularized (``pick_best``), never to the earlier one.
"""

from __future__ import annotations

import math

from kreg.lab import techniques as registry

RULES = ("best", "one_se")


def _first_value(value):
    if hasattr(value, "as_dict"):  # a multi-parameter technique's Params
        return next(iter(value.as_dict().values()), None)
    return value


def _position(value, spec) -> float:
    """Where ``value`` lies in a searched range (``min``/``max``/``scale``) or list of ``values``
    (0 weakest end .. 1); 1 for a fixed value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 1.0
    if hasattr(spec, "min") and hasattr(spec, "max"):  # a search-space Range
        lo, hi = spec.min, spec.max
        if hi <= lo:
            return 1.0
        if spec.scale == "log" and lo > 0 and value > 0:
            lo, hi, value = math.log(lo), math.log(hi), math.log(value)
        return min(1.0, max(0.0, (value - lo) / (hi - lo)))
    if hasattr(spec, "values") and isinstance(spec.values, tuple):  # a search-space Choice
        numbers = sorted(x for x in spec.values if isinstance(x, (int, float)) and not isinstance(x, bool))
        if len(numbers) < 2:
            return 1.0
        below = sum(x < value for x in numbers)
        return min(1.0, below / (len(numbers) - 1))
    return 1.0


def regularization(plan, space) -> float:
    """How strongly ``plan`` regularizes relative to ``space`` (see the module's docstring)."""
    specs = {c.name: c for c in space.candidates}
    total = 0.0
    for name, value in plan.items():
        tech = registry.get(name)
        if tech.stronger == 0 or tech.is_flag or value is None or value is False:
            continue
        if not tech.is_setting and name not in plan.active_techniques():
            continue
        cand = specs.get(name)
        spec = cand.params.get(tech.params[0].name) if cand is not None else None
        if tech.is_setting and cand is None:
            continue  # a setting the search does not tune says nothing about this plan
        position = _position(_first_value(value), spec)
        if tech.stronger < 0:
            position = 1.0 - position
        total += (0.0 if tech.is_setting else 1.0) + position
    return total


def sem_of(record, objective_name: str) -> float | None:
    value = record.metrics.get(f"cv_sem_kept_{objective_name}")
    return value if value is not None and math.isfinite(value) else None


def pick_best(records, objective, space=None):
    """Best completed trial by the validation objective (``.name``, ``.direction``; never by test).

    Trials tied on the objective (a small validation split ties many: 7 of 10 at 12/14 correct) go to the
    more regularized plan over ``space`` (``regularization``), never to the earlier trial: a tie says the
    data cannot tell them apart, and then the simpler-in-effect model is the safer bet (the one-SE
    rule's reasoning, at zero standard error).
    """
    done = [r for r in records if r.status == "COMPLETED" and r.objective is not None and math.isfinite(r.objective)]
    if not done:
        return None
    sign = 1 if objective.direction == "max" else -1
    if space is None:
        return max(done, key=lambda r: sign * r.objective)
    return max(done, key=lambda r: (sign * r.objective, regularization(r.plan, space)))


def select(records, objective, space, rule: str = "best"):
    """``(chosen record, why)``: the best by the objective, or by ``rule="one_se"`` (records need CV figures)."""
    best = pick_best(records, objective, space)
    if best is None or rule == "best":
        tied = [r for r in records if r is not best and r.status == "COMPLETED" and best is not None
                and r.objective == best.objective]
        if tied:
            return best, (f"best validation objective, tied with {len(tied)} other trial{'s' if len(tied) > 1 else ''}"
                          f" ({best.objective:.4f}): the most regularized of them")
        return best, "best validation objective"
    sem = sem_of(best, objective.name)
    if sem is None:
        return best, "best validation objective (no standard error across folds to apply one_se)"
    sign = 1 if objective.direction == "max" else -1
    threshold = best.objective - sign * sem
    done = [r for r in records if r.status == "COMPLETED" and r.objective is not None and math.isfinite(r.objective)]
    # Only plans that scored at least as well as the baseline on validation: regularization is the intervention
    # the search tests, and a plan that did worse than none has no evidence of helping (on MNIST-1D's 150 pooled
    # examples the one-SE rule alone took augment_shift=0.29 over a baseline that had the best score, and it
    # tested 3.2 points worse).
    base = next((r for r in done if r.plan is not None and r.plan.is_baseline), None)
    if base is not None:
        done = [r for r in done if r is base or sign * (r.objective - base.objective) >= 0]
    key = f"kept_{objective.name}"
    scores = {id(r): _fold_scores(r, key) for r in done}
    if scores.get(id(best)) is not None and all(v is not None for v in scores.values()):
        # Every trial saw the same folds: judge each against the best fold by fold, so the folds' own difficulty
        # cancels (the best trial's SE across folds mixes it in: with 3 folds about 2 points on small data, wide
        # enough to let in plans that lose a point on every fold). Within: the mean paired shortfall is at most
        # its own standard error.
        within = [r for r in done if _paired_within(scores[id(best)], scores[id(r)], sign)]
        chosen = max(within, key=lambda r: (regularization(r.plan, space), sign * r.objective))
        if chosen is best:
            return best, (f"one_se: the best trial is also the most regularized of the {len(within)} within one "
                          "standard error of it, fold by fold")
        return chosen, (f"one_se: the most regularized of {len(within)} trials within one standard error of the "
                        f"best (trial {best.trial_id}: {best.objective:.4f}), fold by fold on the same folds")
    within = [r for r in done if sign * (r.objective - threshold) >= 0]
    chosen = max(within, key=lambda r: (regularization(r.plan, space), sign * r.objective))
    if chosen is best:
        return best, (f"one_se: the best trial is also the most regularized within one SE "
                      f"({best.objective:.4f} +- {sem:.4f})")
    return chosen, (f"one_se: the most regularized of {len(within)} trials within one SE of the best "
                    f"(trial {best.trial_id}: {best.objective:.4f}, SE {sem:.4f}; threshold {threshold:.4f})")


def _fold_scores(record, key: str) -> list[float] | None:
    """A trial's objective on each fold (in fold order), or None when it has no complete, finite set."""
    folds = getattr(record, "folds", None) or []
    values = [f.get(key) for f in folds]
    if len(values) < 2 or any(v is None or not math.isfinite(v) for v in values):
        return None
    return [float(v) for v in values]


def _paired_within(best: list[float], other: list[float], sign: int) -> bool:
    """Whether ``other``'s mean shortfall against ``best`` on the same folds is at most its standard error."""
    if len(other) != len(best):
        return False
    from kreg.lab.analysis.stats import fold_summary

    shortfall = fold_summary([sign * (b - o) for b, o in zip(best, other)])
    return shortfall["mean"] <= shortfall["sem"] + 1e-12
