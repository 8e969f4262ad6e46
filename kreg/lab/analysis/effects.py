"""Which technique helped: per-technique effects over a search's trials, and the Pareto front.

For each technique that some completed trials used: how many trials had it
and how many did not, their mean objective and mean gap, and the difference
(positive = better with it). The difference of means mixes each technique
with the others the tuner paired it with, so beside it an importance is
fitted on all trials at once:

    objective ~ intercept + sum_t effect_t * [technique t on]           (least squares)

``effect_t`` is the technique's average change of the objective holding the
others' on/off state fixed, with its standard error. Limits: strengths are
ignored (a technique on at a bad strength looks harmful), interactions are
ignored, a Bayesian tuner samples techniques non-randomly (what it tried
more depends on what worked), and with fewer trials than techniques + 2 no
standard error can be estimated (reported as NaN). Read it as a summary of
what this search saw, not as a causal effect.

The Pareto front: trials not dominated on (validation score, gap): no other
trial is at least as good on both and better on one.
"""

from __future__ import annotations

import math

import numpy as np

METHOD = ("least squares of the objective on the techniques' on/off indicators with an intercept "
          "(strengths and interactions ignored)")


def _done(records):
    # "COMPLETED": kreg.lab.tracking.records.COMPLETED (analysis sits below tracking: no import up)
    return [r for r in records if r.status == "COMPLETED" and r.objective is not None and math.isfinite(r.objective)]


def technique_effects(records, direction: str, metric: str) -> list[dict]:
    """One row per technique: trials with/without it, mean objective and gap, difference, fitted effect (+-SE)."""
    done = _done(records)
    names = sorted({t for r in done for t in r.plan.active_techniques()})
    if not done or not names:
        return []
    sign = 1.0 if direction == "max" else -1.0
    y = np.array([r.objective for r in done], np.float64)
    gaps = np.array([r.metrics.get(f"gap_{metric}", np.nan) for r in done], np.float64)
    on = np.array([[t in r.plan.active_techniques() for t in names] for r in done], np.float64)
    effect, se = fit_effects(on, y)
    rows = []
    for j, name in enumerate(names):
        with_, without = on[:, j] == 1, on[:, j] == 0
        row = {"technique": name, "trials_with": int(with_.sum()), "trials_without": int(without.sum()),
               "objective_with": _mean(y[with_]), "objective_without": _mean(y[without]),
               "gap_with": _mean(gaps[with_]), "gap_without": _mean(gaps[without])}
        row["difference"] = sign * (row["objective_with"] - row["objective_without"])  # positive = better
        row["effect"], row["effect_se"] = sign * effect[j], se[j]
        rows.append(row)
    return sorted(rows, key=lambda r: -r["effect"] if math.isfinite(r["effect"]) else math.inf)


def fit_effects(indicators: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares coefficients of ``y`` on ``indicators`` (with an intercept) and their standard errors.

    Columns that are constant (a technique on in every trial or in none) or collinear get NaN.
    """
    n, k = indicators.shape
    x = np.column_stack([np.ones(n), indicators])
    effect, se = np.full(k, np.nan), np.full(k, np.nan)
    keep = [j for j in range(k) if 0 < indicators[:, j].sum() < n]
    if not keep:
        return effect, se
    xk = x[:, [0, *(j + 1 for j in keep)]]
    coef, _, rank, _ = np.linalg.lstsq(xk, y, rcond=None)
    if rank < xk.shape[1]:  # collinear: the effects are not identified
        return effect, se
    effect[keep] = coef[1:]
    dof = n - xk.shape[1]
    if dof > 0:
        sigma2 = float(np.sum((y - xk @ coef) ** 2) / dof)
        cov = sigma2 * np.linalg.inv(xk.T @ xk)
        se[keep] = np.sqrt(np.diag(cov)[1:])
    return effect, se


def pareto_front(records, metric: str, higher_is_better: bool = True) -> list:
    """Completed trials not dominated on (validation ``metric``, gap in ``metric``), best score first."""
    done = [r for r in _done(records) if f"val_{metric}" in r.metrics and f"gap_{metric}" in r.metrics]
    sign = 1.0 if higher_is_better else -1.0

    def key(r):
        return sign * r.metrics[f"val_{metric}"], -r.metrics[f"gap_{metric}"]  # both: larger is better

    front = [r for r in done if not any(_dominates(key(o), key(r)) for o in done if o is not r)]
    return sorted(front, key=lambda r: key(r), reverse=True)


def _dominates(a, b) -> bool:
    return a[0] >= b[0] and a[1] >= b[1] and (a[0] > b[0] or a[1] > b[1])


def _mean(values) -> float:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")
