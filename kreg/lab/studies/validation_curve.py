"""Validation curve: train and validation error against the strength of one technique, cross-validated.

The claim (seeds): too little regularization lets the model overfit, too
much makes it underfit, so the validation error is U-shaped in the strength
while the training error only rises with it; cross-validation finds the
strength to use. The study trains the plan (``--plan``: the other techniques
stay fixed) with ``technique`` at each of ``strengths`` (its first parameter,
in place of the plan's own value; a technique's other parameters keep the
plan's or their default values).

Folds (``folds``): ``k`` folds of the pooled training + validation data
(``kreg.lab.data.folds``: stratified for classification; each fold validates
on its part and trains on the rest; the test split stays apart), or the
holdout validation split. ``"auto"`` takes 5 folds when the pool has fewer
than 2000 examples and the holdout otherwise. Conventions:

- error is ``1 - accuracy`` for classification and the task's headline
  figure (RMSE, in the targets' units) for regression; train figures are
  measured in inference mode;
- with folds, each strength's figure is the mean over the folds and its
  standard error ``SE = std(ddof=1) / sqrt(k)``; with the holdout, the SE of
  the one validation figure (a proportion's ``sqrt(e (1 - e) / n)``, or the
  RMSE's from the per-example squared errors);
- the best strength has the lowest mean validation error; the one-standard-
  error choice is the most regularizing strength (the largest, or the
  smallest for a technique where smaller regularizes more, such as a
  patience) whose mean is within one SE of the best's (Hastie, Tibshirani &
  Friedman, The Elements of Statistical Learning, 7.10);
- the claim held when the curve is a U in the order of regularization (both
  the weakest and the strongest strengths above the best by more than twice
  the difference's standard error, about a 95% normal interval: with folds, of the fold-by-fold differences,
  since every strength sees the same folds; with the holdout, both SEs
  combined) and the training error at the strongest is above the one at the
  weakest. Test figures are reported (mean over the
  folds' models) and never choose anything.
"""

from __future__ import annotations

import numpy as np

from kreg.lab.studies.base import Study, inference_outputs, save_figure
from kreg.lab.studies.capacity_curve import curve_shape, error_of, proportion_se, rmse_se, squared_errors

AUTO_FOLDS, AUTO_LIMIT = 5, 2000  # "auto": 5 folds below 2000 pooled examples, else the holdout


def mean_and_se(values) -> tuple[float, float]:
    """The mean of ``values`` and its standard error (``std(ddof=1) / sqrt(n)``; NaN for one value)."""
    v = np.asarray(values, np.float64)
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), se


def choose(strengths, errors, se, stronger: int = 1) -> tuple[int, int]:
    """``(best, one_se)``: the index of the lowest mean error, and of the most regularizing strength within
    one standard error of it (``stronger``: +1 when a larger strength regularizes more, -1 when a smaller
    one does). An SE that is NaN (a single measurement) makes the one-SE choice the best itself."""
    errors, se = np.asarray(errors, np.float64), np.asarray(se, np.float64)
    best = int(np.argmin(errors))
    if not np.isfinite(se[best]):
        return best, best
    within = [i for i in range(len(errors)) if errors[i] <= errors[best] + se[best]]
    pick = max if stronger > 0 else min
    return best, pick(within, key=lambda i: strengths[i])


def paired_shape(fold_errors, z: float = 2.0) -> str:
    """``curve_shape`` for errors measured on the same folds, ``(strengths, folds)`` in regularization order.

    An end counts as above the best only when its fold-by-fold differences from the best have a mean above
    ``z`` times their standard error: the folds are shared, so their difficulty cancels in the differences.
    """
    e = np.asarray(fold_errors, np.float64)
    best = int(np.argmin(e.mean(axis=1)))

    def above(i):
        mean, se = mean_and_se(e[i] - e[best])
        return i != best and mean > z * se

    left, right = above(0), above(len(e) - 1)
    return "U" if left and right else "falling" if left else "rising" if right else "flat"


def plan_with(base, technique: str, strength):
    """``base`` (a ``RegularizationPlan``) with ``technique``'s first parameter at ``strength``."""
    from kreg.lab import techniques as registry
    from kreg.lab.plan import Params, RegularizationPlan

    tech = registry.get(technique)
    values = base.to_dict()
    current = base.get(technique)
    if len(tech.params) > 1 or isinstance(current, Params):
        kept = current.as_dict() if isinstance(current, Params) else {}
        values[technique] = {**kept, tech.params[0].name: strength}
    else:
        values[technique] = strength
    return RegularizationPlan.from_dict(values)


def _number(value):
    """A strength as given: a number, or a string such as ``1e-4`` (YAML 1.1 reads that as a string)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


class ValidationCurve(Study):
    kind = "validation_curve"
    claim = ("too little regularization overfits and too much underfits: the validation error is U-shaped in the "
             "strength")
    options = {"technique": "l2", "strengths": (1e-5, 1e-4, 1e-3, 1e-2, 1e-1), "folds": "auto"}

    def check(self, technique="l2", strengths=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1), folds="auto"):
        from kreg.lab import techniques as registry
        from kreg.lab.errors import ConfigError

        if not isinstance(technique, str) or technique not in registry.REGISTRY:
            raise ConfigError("study.technique", technique, "one of " + ", ".join(sorted(registry.REGISTRY)))
        tech = registry.REGISTRY[technique]
        if tech.is_flag or tech.stronger == 0:
            ordered = sorted(n for n, t in registry.REGISTRY.items() if not t.is_flag and t.stronger != 0)
            raise ConfigError("study.technique", technique, "a technique whose strength orders its regularization "
                              f"(not a flag, not learning_rate or schedule): one of {', '.join(ordered)}")
        param = tech.params[0]
        values = tuple(_number(s) for s in (strengths if isinstance(strengths, (list, tuple)) else (strengths,)))
        if len(set(values)) < 3 or any(registry.kind_problem(param.kind, s) or s <= 0 for s in values):
            raise ConfigError("study.strengths", strengths, f"three or more different values of {technique}'s "
                              f"{param.name}, each {registry.KIND_EXPECTED[param.kind]} above 0")
        if not (folds in ("auto", "holdout") or (isinstance(folds, int) and not isinstance(folds, bool)
                                                 and folds >= 2)):
            raise ConfigError("study.folds", folds, "'auto', 'holdout' or a number of folds of at least 2")
        return {"technique": technique, "strengths": tuple(sorted(registry.coerce(param.kind, s) for s in set(values))),
                "folds": folds}

    def run(self, ctx, technique="l2", strengths=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1), folds="auto"):
        import keras

        from kreg.lab import techniques as registry
        from kreg.lab.errors import ConfigError
        from kreg.lab.trial.procedures import build_for_plan

        search, metric = ctx.search, ctx.metric
        splits, tech = search.splits, registry.get(technique)
        problem = registry.fits(technique, modality=splits.spec.modality, task=search.task.kind,
                                builtin_model=search.model.builtin)
        if problem is None and search.loss is not None and tech.acts_on == "loss":
            problem = "a technique that does not change the loss (kreg cannot change a loss it does not build)"
        if problem:
            raise ConfigError("study.technique", technique, problem)
        plans = {s: plan_with(ctx.plan, technique, s) for s in strengths}
        try:  # the strongest plan builds and compiles before anything trains: a technique the model lacks fails here
            build_for_plan(search, plans[strengths[-1 if tech.stronger > 0 else 0]], seed=search.seed)
        except (ValueError, TypeError) as exc:
            raise ConfigError("study.technique", technique, f"a technique that applies to this model ({exc})") from None
        keras.backend.clear_session()
        pool = len(splits.y_train) + len(splits.y_val)
        k = (AUTO_FOLDS if pool < AUTO_LIMIT and splits.in_memory else 1) if folds == "auto" else \
            1 if folds == "holdout" else folds
        higher = search.task.higher_is_better(metric)
        classification = splits.spec.num_classes is not None
        if k > 1:
            from kreg.lab.data.folds import cross_validation_splits

            parts = [(f"f{f.index + 1}", f.splits) for f in cross_validation_splits(splits, k, seed=search.seed)]
            how = f"{k}-fold cross-validation of the {pool} pooled training + validation examples"
        else:
            parts = [("", splits)]
            how = f"the holdout validation split ({len(splits.y_val)} examples)"
        ctx.echo(f"  {technique} at {', '.join(f'{s:g}' for s in strengths)}; {how}")
        points = []
        for s in strengths:
            runs = []
            for name, part in parts:
                m = ctx.train(plans[s], point=f"{technique}-{s:g}" + (f"-{name}" if name else ""), splits=part,
                              keep_model=k == 1 and not classification)
                run = {key: error_of(m[f"{key}_{metric}"], higher) for key in ("train", "val", "test")}
                if k == 1 and classification:  # one validation figure: its own standard error
                    run["se"] = proportion_se(run["val"], len(part.y_val))
                elif k == 1:  # a regression's needs the model's outputs
                    run["se"] = rmse_se(squared_errors(inference_outputs(m.pop("model"), part.x_val), part.y_val),
                                        run["val"])
                    keras.backend.clear_session()
                runs.append(run)
            point = {"strength": s, "folds": len(runs), "fold_val": [r["val"] for r in runs]}
            for key in ("train", "val", "test"):
                point[key], point[f"{key}_se"] = mean_and_se([r[key] for r in runs])
            if k == 1:
                point["val_se"] = runs[0]["se"]
            point["gap"] = point["val"] - point["train"]
            points.append(point)
            ctx.echo(f"  {technique}={s:<8g} train error {point['train']:.4f}  val {point['val']:.4f} "
                     f"(+-{point['val_se']:.4f})  test {point['test']:.4f}  gap {point['gap']:+.4f}")
        errors, ses = [p["val"] for p in points], [p["val_se"] for p in points]
        best, one_se = choose(strengths, errors, ses, tech.stronger)
        order = points if tech.stronger > 0 else points[::-1]  # weakest to strongest regularization
        shape = (paired_shape([p["fold_val"] for p in order]) if k > 1
                 else curve_shape([p["val"] for p in order], [p["val_se"] for p in order]))
        weakest, strongest = order[0], order[-1]
        train_rises = strongest["train"] > weakest["train"]
        held = shape == "U" and train_rises
        b, o = points[best], points[one_se]
        figures = {"best_strength": b["strength"], "one_se_strength": o["strength"], "folds": k,
                   "val_error_best": b["val"], "val_se_best": b["val_se"], "val_error_one_se": o["val"],
                   "test_error_best": b["test"], "test_error_one_se": o["test"],
                   "val_error_weakest": weakest["val"], "val_error_strongest": strongest["val"],
                   "train_error_weakest": weakest["train"], "train_error_strongest": strongest["train"],
                   "gap_weakest": weakest["gap"], "gap_strongest": strongest["gap"],
                   "u_shape": float(shape == "U")}
        seen = {"U": "a U (both ends above the best by more than twice the standard error)",
                "falling": "no U: the strongest was as good as any within twice the standard error (more "
                           "regularization kept helping: extend the grid)",
                "rising": "no U: the weakest was as good as any within twice the standard error (too little "
                          "regularization did not overfit here)",
                "flat": "no U: flat within twice the standard error"}[shape]
        verdict = (f"{technique} by {how}: validation error {weakest['val']:.4f} at {weakest['strength']:g}, "
                   f"best {b['val']:.4f} (+-{b['val_se']:.4f}) at {b['strength']:g}, {strongest['val']:.4f} at "
                   f"{strongest['strength']:g}: {seen}; train error {weakest['train']:.4f} -> {strongest['train']:.4f}"
                   f" ({'rose' if train_rises else 'did not rise'}); chosen: {b['strength']:g} (best), "
                   f"{o['strength']:g} (one standard error); test error there {b['test']:.4f}, {o['test']:.4f}")
        plot = self.plot(points, technique, tech.params[0].name, best, one_se, how, metric, classification,
                         ctx.out_dir / "validation_curve.png")
        return points, figures, held, verdict, [plot]

    @staticmethod
    def plot(points, technique, param, best, one_se, how, metric, classification, path):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7.5, 4.4))
        ax = fig.subplots()
        s = np.array([p["strength"] for p in points], np.float64)
        for key, color, label in (("train", "tab:blue", "train (inference mode)"), ("val", "tab:orange", "validation")):
            mean = np.array([p[key] for p in points])
            se = np.nan_to_num(np.array([p[f"{key}_se"] for p in points]))
            ax.plot(s, mean, "o-", color=color, label=f"{label}, mean +- SE")
            ax.fill_between(s, np.maximum(mean - se, 0.0), mean + se, color=color, alpha=0.2, lw=0)
        if points[0]["folds"] > 1:
            for p in points:
                ax.plot([p["strength"]] * len(p["fold_val"]), p["fold_val"], ".", color="tab:orange", alpha=0.35,
                        ms=4)
        ax.axvline(points[best]["strength"], color="tab:red", lw=1.2,
                   label=f"best: {points[best]['strength']:g}")
        ax.axvline(points[one_se]["strength"], color="tab:purple", lw=1.2, ls="--",
                   label=f"one-SE choice: {points[one_se]['strength']:g}")
        ax.set_xscale("log")
        ax.set_xticks(s, [f"{v:g}" for v in s])
        ax.minorticks_off()
        ax.set_xlabel(f"{technique} ({param}), log axis")
        ax.set_ylabel("error (1 - accuracy)" if classification else metric)
        ax.set_title(f"validation curve: {how}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return save_figure(fig, path)
