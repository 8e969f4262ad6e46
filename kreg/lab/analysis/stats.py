"""Statistics of a trial's folds, and of the answer on the test split (bootstrap intervals, paired tests).

Fold statistics: ``mean``, ``std`` (ddof 1), ``sem`` and a 95% Student-t
interval of the mean. Folds share training examples, so their figures are
not independent and the ``sem`` understates the true uncertainty of a CV
estimate (Bengio & Grandvalet, 2004: no unbiased estimator of its variance
exists); it is what the one-standard-error rule uses, as in glmnet and
scikit-learn, and is reported as such.

On the test split, the baseline and the chosen model are compared on the
same examples: the exact McNemar test for accuracy (the discordant pairs
against a fair coin), a paired bootstrap of the per-example loss difference
for regression, and percentile-bootstrap 95% intervals of every figure.
"""

from __future__ import annotations

import math

import numpy as np


def fold_summary(values) -> dict:
    """``mean``, ``std``, ``sem``, ``ci95_low``, ``ci95_high`` and ``n`` of per-fold figures."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": float("nan"), "std": float("nan"), "sem": float("nan"),
                "ci95_low": float("nan"), "ci95_high": float("nan")}
    mean = float(x.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "std": float("nan"), "sem": float("nan"), "ci95_low": float("nan"),
                "ci95_high": float("nan")}
    from scipy import stats

    std = float(x.std(ddof=1))
    sem = std / math.sqrt(n)
    half = float(stats.t.ppf(0.975, n - 1)) * sem
    return {"n": n, "mean": mean, "std": std, "sem": sem, "ci95_low": mean - half, "ci95_high": mean + half}


def fold_metrics(per_fold: list[dict], spread_of: list[str]) -> dict:
    """A cross-validated trial's figures: the mean over folds of every figure all folds have, and for
    each key of ``spread_of`` (the kept objective, the headline metric's train/val/gap/test) its
    ``cv_std_``, ``cv_sem_``, ``cv_ci95_low_`` and ``cv_ci95_high_``; ``cv_folds``: how many.

    ``kept_epoch`` stays the mean; ``cv_median_kept_epoch`` is what the refit trains for.
    """
    keys = [k for k in per_fold[0] if all(_number(m.get(k)) for m in per_fold)]
    out = {k: float(np.mean([m[k] for m in per_fold])) for k in keys}
    for key in spread_of:
        if key in out:
            s = fold_summary([m[key] for m in per_fold])
            for stat in ("std", "sem", "ci95_low", "ci95_high"):
                out[f"cv_{stat}_{key}"] = s[stat]
    out["cv_folds"] = len(per_fold)
    if "kept_epoch" in out:
        out["cv_median_kept_epoch"] = float(np.median([m["kept_epoch"] for m in per_fold]))
    out["epochs_run"] = int(max(m.get("epochs_run", 0) for m in per_fold))
    return out


def mean_curves(histories: list[dict]) -> dict:
    """Per-epoch mean over the folds still training at that epoch (early stopping ends folds apart)."""
    out = {}
    for key in histories[0]:
        curves = [h[key] for h in histories if key in h]
        length = max(len(c) for c in curves)
        out[key] = [float(np.mean([c[e] for c in curves if e < len(c)])) for e in range(length)]
    return out


def _number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def mcnemar_exact(baseline_correct, chosen_correct) -> dict:
    """Exact (binomial) McNemar test of two classifiers on the same examples.

    ``b``: examples only the chosen model gets right; ``c``: only the baseline.
    Under the null both kinds are equally likely, so ``b ~ Binomial(b + c, 1/2)``;
    the two-sided p-value is ``min(1, 2 * P(X <= min(b, c)))`` (scipy's
    ``binomtest`` gives the same for p = 1/2).
    """
    base = np.asarray(baseline_correct, bool)
    chosen = np.asarray(chosen_correct, bool)
    if base.shape != chosen.shape:
        raise ValueError(f"Both classifiers must be scored on the same examples. Received: {base.shape} and "
                         f"{chosen.shape}")
    b = int(np.sum(chosen & ~base))
    c = int(np.sum(base & ~chosen))
    n = b + c
    if n == 0:
        return {"b": 0, "c": 0, "p_value": 1.0}
    k = min(b, c)
    # log-space sum of C(n, i) / 2^n for i <= k: exact, and no overflow for large n
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2) for i in range(k + 1)]
    top = max(logs)
    tail = math.exp(top) * sum(math.exp(v - top) for v in logs)
    return {"b": b, "c": c, "p_value": min(1.0, 2.0 * tail)}


def bootstrap_indices(n: int, rounds: int, seed: int) -> np.ndarray:
    """``rounds`` resamples (with replacement) of ``n`` example positions."""
    return np.random.default_rng(seed).integers(0, n, size=(rounds, n))


def percentile_interval(values, level: float = 0.95) -> tuple[float, float]:
    lo, hi = np.quantile(np.asarray(values, np.float64), [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def bootstrap_interval(per_example, statistic=np.mean, rounds: int = 2000, seed: int = 0, index=None):
    """Percentile bootstrap 95% interval of ``statistic`` over per-example values (``index``: resamples)."""
    x = np.asarray(per_example, np.float64)
    index = bootstrap_indices(len(x), rounds, seed) if index is None else index
    return percentile_interval([statistic(x[i]) for i in index])


def paired_bootstrap(baseline, chosen, statistic=np.mean, rounds: int = 2000, seed: int = 0) -> dict:
    """The difference ``statistic(chosen) - statistic(baseline)`` over the same resampled examples.

    Returns the observed difference, its percentile 95% interval and a
    two-sided bootstrap p-value: twice the share of resampled differences on
    the far side of zero (at least 1 / rounds, the test's resolution).
    """
    a = np.asarray(baseline, np.float64)
    b = np.asarray(chosen, np.float64)
    index = bootstrap_indices(len(a), rounds, seed)
    diffs = np.array([statistic(b[i]) - statistic(a[i]) for i in index])
    observed = float(statistic(b) - statistic(a))
    low, high = percentile_interval(diffs)
    far = np.mean(diffs <= 0) if observed > 0 else np.mean(diffs >= 0)
    p = min(1.0, max(2.0 * float(far), 1.0 / rounds)) if observed != 0 else 1.0
    return {"difference": observed, "ci95_low": low, "ci95_high": high, "p_value": p}
