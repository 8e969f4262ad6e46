"""The baseline against the chosen model on the same test examples: intervals, a paired test, one line.

Every test figure gets a percentile-bootstrap 95% interval (the test
examples resampled with replacement, the figure recomputed: accuracy, NLL
and ECE, or MSE/MAE/RMSE/R2). The two models are compared pair by pair on
the same resamples, so the interval of the difference is much narrower than
the two intervals side by side suggest. The test: exact McNemar for
accuracy (classification), a paired bootstrap of the RMSE difference
(regression). "Distinguishable" means p < 0.05.
"""

from __future__ import annotations

import numpy as np

from kreg.lab.analysis.stats import bootstrap_indices, mcnemar_exact, paired_bootstrap, percentile_interval

ROUNDS = 2000


def compare(task, baseline_outputs, chosen_outputs, y_test, *, rounds: int = ROUNDS, seed: int = 0) -> dict:
    """Intervals of both models' test figures, the paired difference and its test, and the verdict line.

    ``*_outputs``: class probabilities ``(n, classes)`` or standardized predictions ``(n, targets)`` (as
    the model outputs them); ``y_test``: the split's encoded labels.
    """
    index = bootstrap_indices(len(y_test), rounds, seed)
    out = {"rounds": rounds}
    for label, outputs in (("baseline", baseline_outputs), ("chosen", chosen_outputs)):
        point = task.figures(outputs, y_test)
        resampled = getattr(task, "resampled_figures", None)  # every resample at once (classification)
        if resampled is not None:
            draws = resampled(outputs, y_test, index)
        else:
            each = [task.figures(outputs[i], np.asarray(y_test)[i]) for i in index]
            draws = {key: [d[key] for d in each] for key in point}
        for key, value in point.items():
            low, high = percentile_interval(draws[key])
            out[f"{label}_test_{key}"] = value
            out[f"{label}_test_{key}_ci95_low"], out[f"{label}_test_{key}_ci95_high"] = low, high
    if task.kind == "classification":
        y = np.asarray(y_test).reshape(-1).astype(int)
        base_ok = baseline_outputs.argmax(-1) == y
        chosen_ok = chosen_outputs.argmax(-1) == y
        diff = paired_bootstrap(base_ok, chosen_ok, rounds=rounds, seed=seed)
        test = mcnemar_exact(base_ok, chosen_ok)
        out.update(metric="accuracy", gain=diff["difference"], gain_ci95_low=diff["ci95_low"],
                   gain_ci95_high=diff["ci95_high"], p_value=test["p_value"], test="exact McNemar",
                   only_chosen_right=test["b"], only_baseline_right=test["c"])
        scale, unit = 100.0, " points"
    else:
        units = np.array(task.scale) if task.scale is not None else 1.0  # standardized -> targets' units
        y = np.asarray(y_test, np.float64).reshape(baseline_outputs.shape)
        targets = baseline_outputs.shape[1] if baseline_outputs.ndim > 1 else 1

        def squared_errors(outputs):  # per example, in the targets' units, summed over targets
            e = ((outputs - y) * units) ** 2
            return e.sum(axis=-1) if e.ndim > 1 else e

        se_base, se_chosen = squared_errors(baseline_outputs), squared_errors(chosen_outputs)
        # gain = baseline RMSE - chosen RMSE: positive when the chosen model errs less
        diff = paired_bootstrap(se_chosen, se_base, statistic=lambda e: np.sqrt(np.mean(e) / targets),
                                rounds=rounds, seed=seed)
        out.update(metric="rmse", gain=diff["difference"], gain_ci95_low=diff["ci95_low"],
                   gain_ci95_high=diff["ci95_high"], p_value=diff["p_value"], test="paired bootstrap")
        scale, unit = 1.0, ""
    out["distinguishable"] = bool(out["p_value"] < 0.05)
    out["line"] = verdict_line(out, scale, unit)
    return out


def verdict_line(result: dict, scale: float, unit: str) -> str:
    """``test accuracy gain +0.8 points [95% CI +0.2, +1.4], p = 0.01 (exact McNemar)``, or the same figures
    after ``worse than the baseline:`` or ``not distinguishable from the baseline:``."""
    g, lo, hi = (result[k] * scale for k in ("gain", "gain_ci95_low", "gain_ci95_high"))
    what = "accuracy gain" if result["metric"] == "accuracy" else "RMSE gain (baseline's minus chosen's)"
    figures = (f"test {what} {g:+.2f}{unit} [95% CI {lo:+.2f}, {hi:+.2f}], p {_p(result['p_value'])} "
               f"({result['test']})")
    if not result["distinguishable"]:
        return f"not distinguishable from the baseline: {figures}"
    return figures if g > 0 else f"worse than the baseline: {figures}"


def _p(p: float) -> str:
    """``= 0.019`` or ``< 0.001`` (not ``= < 0.001``)."""
    return f"= {p:.2g}" if p >= 0.001 else "< 0.001"

