"""Learning curve: train and validation figures against the training-set size, baseline and plan.

The claim (seeds): with more data the model fits the training set less
perfectly and the validation set better, so the generalization gap shrinks
as the training set grows. Train figures are measured in inference mode (no
dropout, no augmentation), on the subset the model trained on.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kreg.lab.studies.base import Study, save_figure


def subset(splits, size: int, seed: int):
    """The first ``size`` examples of a seeded permutation of the training split (every class kept)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(splits.y_train))
    if splits.spec.num_classes:  # one example of each class first, so a small subset has them all
        firsts = [int(np.flatnonzero(splits.y_train[order] == c)[0]) for c in np.unique(splits.y_train)]
        order = np.concatenate([order[firsts], np.delete(order, firsts)])
    keep = np.sort(order[:size])
    return dataclasses.replace(splits, x_train=splits.x_train[keep], y_train=splits.y_train[keep])


class LearningCurve(Study):
    kind = "learning_curve"
    claim = "the train/validation gap shrinks as the training set grows"
    options = {"fractions": (0.1, 0.25, 0.5, 1.0)}

    def check(self, fractions=(0.1, 0.25, 0.5, 1.0)):
        from kreg.lab.errors import ConfigError

        values = fractions if isinstance(fractions, (list, tuple)) else (fractions,)
        if len(values) < 2 or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f <= 1
                                      for f in values):
            raise ConfigError("study.fractions", fractions, "two or more fractions of the training set in (0, 1]")
        return {"fractions": tuple(sorted(float(f) for f in values))}

    def run(self, ctx, fractions=(0.1, 0.25, 0.5, 1.0)):
        splits, metric = ctx.search.splits, ctx.metric
        n = len(splits.y_train)
        plans = [("baseline", ctx.baseline)] + ([("plan", ctx.plan)] if ctx.plan.active_techniques() else [])
        points = []
        for fraction in fractions:
            size = max(int(round(fraction * n)), (splits.spec.num_classes or 1) * 2)
            part = subset(splits, size, ctx.search.seed)
            for label, plan in plans:
                m = ctx.train(plan, point=f"{label}-n{size}", splits=part)
                point = {"plan": label, "size": size, "train": m[f"train_{metric}"], "val": m[f"val_{metric}"],
                         "test": m[f"test_{metric}"], "gap": m[f"gap_{metric}"]}
                points.append(point)
                ctx.echo(f"  {label:8s} n={size:5d}  train {point['train']:.4f}  val {point['val']:.4f}  "
                         f"gap {point['gap']:+.4f}")
        base = [p for p in points if p["plan"] == "baseline"]
        first, last = base[0], base[-1]
        held = last["gap"] < first["gap"]
        figures = {"gap_smallest": first["gap"], "gap_largest": last["gap"], "size_smallest": first["size"],
                   "size_largest": last["size"]}
        with_plan = [p for p in points if p["plan"] == "plan"]
        if with_plan:
            figures["plan_gap_largest"] = with_plan[-1]["gap"]
        verdict = (f"baseline gap in {metric} {first['gap']:+.4f} at {first['size']} examples, "
                   f"{last['gap']:+.4f} at {last['size']}" + (" (shrank)" if held else " (did not shrink)"))
        return points, figures, held, verdict, [self.plot(points, metric, ctx.out_dir / "learning_curve.png")]

    @staticmethod
    def plot(points, metric, path):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 3.8))
        ax_value, ax_gap = fig.subplots(1, 2)
        for label, style in (("baseline", "-"), ("plan", "--")):
            rows = [p for p in points if p["plan"] == label]
            if not rows:
                continue
            sizes = [p["size"] for p in rows]
            ax_value.plot(sizes, [p["train"] for p in rows], style, marker="o", color="tab:blue",
                          label=f"train ({label})")
            ax_value.plot(sizes, [p["val"] for p in rows], style, marker="o", color="tab:orange",
                          label=f"validation ({label})")
            ax_gap.plot(sizes, [p["gap"] for p in rows], style, marker="o", color="tab:red", label=label)
        sizes = sorted({p["size"] for p in points})
        for ax, title in ((ax_value, metric), (ax_gap, f"gap in {metric} (positive = overfitting)")):
            ax.set_xscale("log")
            ax.minorticks_off()
            ax.set_xticks(sizes, [str(n) for n in sizes])
            ax.set_xlabel("training examples")
            ax.set_title(title)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        ax_gap.axhline(0.0, color="grey", lw=0.8)
        return save_figure(fig, path)
