"""Capacity curve: train, validation and test error against the model's size, baseline and plan.

The claim (seeds): as capacity grows the training error falls, while the
error on new data first falls (a larger model finds the real regularities)
and then rises (it memorizes the accidental ones): a U whose bottom is the
size to use. Regularization restrains a large model, so it may move the
bottom or lower the right arm. Networks trained well on small data often show
no rising arm at all (double descent, benign overfitting): the verdict says
which shape was seen, and the claim held only when a U was.

Capacity is one integer argument of the model builder (option ``capacity``,
default ``width``): kreg's built-in ``mlp``, ``cnn1d`` and ``cnn2d`` take
``width`` and ``depth`` (and the CNNs ``kernel_size``, ``dense_units``);
a user's builder any integer argument it declares. A ``keras.Model`` has a
fixed size and is refused. Every other argument keeps its ``model_args``
value. Conventions:

- error is ``1 - accuracy`` for classification and the task's headline
  figure (RMSE, in the targets' units) for regression; train figures are
  measured in inference mode;
- the gap is validation error minus train error (positive: overfitting);
- the shape is read off the validation curve (selection uses validation
  only); the test curve's shape is reported beside it. A difference counts
  only beyond its standard error (each figure's: a proportion's
  ``sqrt(e (1 - e) / n)``, or the RMSE's from the per-example squared errors;
  the difference's: both combined): ``U`` needs both ends above the bottom
  by more than twice that (about a 95% normal interval), so a validation
  example or two more or less is no U;
- whether the gap grows: the rank correlation of gap and capacity is
  positive and the gap at the largest size exceeds the one at the smallest.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect

import numpy as np

from kreg.lab.studies.base import Study, inference_outputs, save_figure

DEFAULT_VALUES = {"width": (4, 16, 64, 256, 1024), "depth": (1, 2, 4, 8)}
_NOT_CAPACITY = ("spec", "plan", "seed")


def error_of(value: float, higher_is_better: bool) -> float:
    """The figure as an error (lower is better): ``1 - accuracy``, or the loss itself."""
    return 1.0 - value if higher_is_better else value


def curve_shape(errors, se=None, z: float = 2.0) -> str:
    """``U`` (falls then rises), ``falling``, ``rising`` or ``flat``, for errors in capacity order.

    The smallest and largest capacities are compared with the bottom: an end counts as above it only by more
    than ``z`` standard errors of the difference, ``sqrt(se_end^2 + se_bottom^2)`` (``se``: one per error;
    None: any difference counts).
    """
    e = np.asarray(errors, np.float64)
    s = np.zeros_like(e) if se is None else np.asarray(se, np.float64)
    b = int(np.argmin(e))
    left = e[0] - e[b] > z * np.hypot(s[0], s[b])
    right = e[-1] - e[b] > z * np.hypot(s[-1], s[b])
    return "U" if left and right else "falling" if left else "rising" if right else "flat"


def rank_correlation(x, y) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when either is constant."""
    def ranks(a):
        a = np.asarray(a, np.float64)
        order = np.argsort(a, kind="mergesort")
        r = np.empty(len(a))
        r[order] = np.arange(len(a), dtype=np.float64)
        for value in np.unique(a):  # ties share their mean rank
            tied = a == value
            r[tied] = r[tied].mean()
        return r

    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def proportion_se(error: float, n: int) -> float:
    """The standard error of an error rate measured on ``n`` examples."""
    return float(np.sqrt(max(error * (1.0 - error), 0.0) / max(n, 1)))


def rmse_se(squared_errors: np.ndarray, rmse: float) -> float:
    """The standard error of an RMSE, from the per-example squared errors (delta method: SE(mse) / (2 mse))."""
    sq = np.asarray(squared_errors, np.float64).reshape(-1)
    mse = sq.mean()
    if len(sq) < 2 or mse <= 0:
        return 0.0
    return float(rmse * sq.std(ddof=1) / np.sqrt(len(sq)) / (2.0 * mse))


def squared_errors(outputs, y) -> np.ndarray:
    """Per example: the squared error averaged over the targets (standardized units, as the model trains)."""
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    return np.mean((np.asarray(outputs, np.float64).reshape(len(y), -1) - y) ** 2, axis=1)


def builder_of(source):
    """The function whose signature says which capacity arguments ``source`` (a ``ModelSource``) takes."""
    if source.kind == "builtin":
        from kreg.lab.models.cnn import build_cnn1d, build_cnn2d
        from kreg.lab.models.mlp import build_mlp

        return {"mlp": build_mlp, "cnn1d": build_cnn1d, "cnn2d": build_cnn2d}[source.target]
    return source.target if source.kind in ("builder", "plan_builder") else None


def capacity_problem(source, name: str) -> str | None:
    """None when the model builder takes an integer argument ``name``; else what is expected."""
    fn = builder_of(source)
    expected = f"a model builder that takes an integer `{name}` argument"
    if fn is None:
        return f"{expected} (a keras.Model has a fixed size: give the function that builds it)"
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return f"{expected} (the builder's signature cannot be read)"
    param = params.get(name)
    if param is None or name in _NOT_CAPACITY:
        if param is None and any(p.kind is p.VAR_KEYWORD for p in params.values()) and name not in _NOT_CAPACITY:
            return None  # **kwargs: the builder may take it; building each size below finds out
        ints = [p.name for p in params.values() if p.name not in _NOT_CAPACITY and isinstance(p.default, int)
                and not isinstance(p.default, bool)]
        return f"{expected} ({source.short_name()} takes {', '.join(ints) or 'no integer argument'})"
    if param.default is not param.empty and (isinstance(param.default, bool) or not isinstance(param.default, int)):
        return f"{expected} ({source.short_name()}'s `{name}` defaults to {param.default!r})"
    return None


def sized(ctx, name: str, value: int):
    """A copy of the study's context whose search builds the model with ``name=value``."""
    from kreg.lab.models.source import ModelSource

    source = ctx.search.model
    resized = ModelSource(source.target, {**source.args, name: value})
    resized.spec, resized.activation = source.spec, source.activation  # what the search's check found out
    view = copy.copy(ctx)
    view.search = dataclasses.replace(ctx.search, model=resized)
    return view


class CapacityCurve(Study):
    kind = "capacity_curve"
    claim = "as capacity grows the training error falls and the validation error falls then rises (a U)"
    options = {"capacity": "width", "values": None}

    def check(self, capacity="width", values=None):
        from kreg.lab.errors import ConfigError

        if not isinstance(capacity, str) or not capacity.isidentifier():
            raise ConfigError("study.capacity", capacity, "the name of an integer argument of the model builder "
                              "(width, depth, ...)")
        if values is None:
            if capacity not in DEFAULT_VALUES:
                raise ConfigError("study.values", values, f"the sizes to try for `{capacity}` (e.g. values=8,32,128):"
                                  f" defaults exist for {' and '.join(DEFAULT_VALUES)} only")
            values = DEFAULT_VALUES[capacity]
        items = values if isinstance(values, (list, tuple)) else (values,)
        if len(set(items)) < 3 or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c >= 0
                                          for c in items):
            raise ConfigError("study.values", values, "three or more different non-negative integer sizes")
        return {"capacity": capacity, "values": tuple(sorted(int(c) for c in set(items)))}

    def run(self, ctx, capacity="width", values=DEFAULT_VALUES["width"]):
        import keras

        from kreg.lab.errors import ConfigError

        problem = capacity_problem(ctx.search.model, capacity)
        if problem:
            raise ConfigError("study.capacity", capacity, problem)
        search, metric = ctx.search, ctx.metric
        higher = search.task.higher_is_better(metric)
        classification = search.splits.spec.num_classes is not None
        sizes = {}
        for c in values:  # every size builds before anything trains: a size the builder refuses fails here
            try:
                built = sized(ctx, capacity, c).search.model.build(search.splits.spec, ctx.baseline, seed=search.seed)
                sizes[c] = int(built.model.count_params())
            except (ValueError, TypeError) as exc:
                raise ConfigError("study.values", values, f"sizes the model builder accepts for `{capacity}` "
                                  f"({capacity}={c}: {exc})") from None
        keras.backend.clear_session()  # once: each call collects garbage (about 0.4 s)
        plans = [("baseline", ctx.baseline)] + ([("plan", ctx.plan)] if ctx.plan.active_techniques() else [])
        points = []
        for c in values:
            view = sized(ctx, capacity, c)
            for label, plan in plans:
                # a regression's standard errors need the model's outputs; a proportion's only its count
                m = view.train(plan, point=f"{label}-{capacity}{c}", keep_model=not classification)
                point = {"plan": label, "capacity": c, "parameters": sizes[c],
                         "train": error_of(m[f"train_{metric}"], higher)}
                for split, x, y in (("val", search.splits.x_val, search.splits.y_val),
                                    ("test", search.splits.x_test, search.splits.y_test)):
                    point[split] = e = error_of(m[f"{split}_{metric}"], higher)
                    point[f"{split}_se"] = (proportion_se(e, len(y)) if classification
                                            else rmse_se(squared_errors(inference_outputs(m["model"], x), y), e))
                if not classification:
                    m.pop("model")
                    keras.backend.clear_session()
                point["gap"] = point["val"] - point["train"]
                points.append(point)
                ctx.echo(f"  {label:8s} {capacity}={c:<5d} ({sizes[c]:>8,d} parameters)  train error "
                         f"{point['train']:.4f}  val {point['val']:.4f} (+-{point['val_se']:.4f})  "
                         f"test {point['test']:.4f}  "
                         f"gap {point['gap']:+.4f}")
        figures, summaries = {}, {}
        for label, _ in plans:
            rows = [p for p in points if p["plan"] == label]
            summaries[label] = info = self.summarize(rows)
            prefix = "" if label == "baseline" else "plan_"
            figures.update({f"{prefix}bottom_{capacity}": info["bottom"]["capacity"],
                            f"{prefix}bottom_val_error": info["bottom"]["val"],
                            f"{prefix}bottom_test_error": info["bottom"]["test"],
                            f"{prefix}val_error_smallest": rows[0]["val"],
                            f"{prefix}val_error_largest": rows[-1]["val"],
                            f"{prefix}test_error_smallest": rows[0]["test"],
                            f"{prefix}test_error_largest": rows[-1]["test"],
                            f"{prefix}train_error_smallest": rows[0]["train"],
                            f"{prefix}train_error_largest": rows[-1]["train"],
                            f"{prefix}gap_smallest": rows[0]["gap"], f"{prefix}gap_largest": rows[-1]["gap"],
                            f"{prefix}gap_rank_correlation": info["gap_trend"],
                            f"{prefix}u_shape": float(info["shape"] == "U"),
                            f"{prefix}test_u_shape": float(info["test_shape"] == "U")})
        base = summaries["baseline"]
        rows = [p for p in points if p["plan"] == "baseline"]
        train_falls = rows[-1]["train"] < rows[0]["train"]
        held = base["shape"] == "U" and train_falls
        seen = {"U": "a U (it rose again past the bottom by more than twice the standard error)",
                "falling": "no U (it fell to the bottom and did not rise again by more than twice the standard "
                           "error: the larger models did not overfit here)",
                "rising": "no U (the smallest size was as good as any, within twice the standard error)",
                "flat": "no U (flat within twice the standard error)"}
        b = base["bottom"]
        last = "" if b is rows[-1] else f", {rows[-1]['val']:.4f} at {rows[-1]['capacity']}"
        verdict = (f"baseline validation error {rows[0]['val']:.4f} at {capacity} {rows[0]['capacity']}, lowest "
                   f"{b['val']:.4f} at {b['capacity']}{last}: {seen[base['shape']]}; test error "
                   f"{rows[0]['test']:.4f} -> {rows[-1]['test']:.4f}: {seen[base['test_shape']].split(' (')[0]}; "
                   f"train error {rows[0]['train']:.4f} -> {rows[-1]['train']:.4f}"
                   f"{'' if train_falls else ' (did not fall)'}; gap {rows[0]['gap']:+.4f} -> {rows[-1]['gap']:+.4f} "
                   f"(rank correlation with {capacity} {base['gap_trend']:+.2f}: "
                   f"{'grew' if base['gap_grows'] else 'did not grow'})")
        if "plan" in summaries:
            p, prow = summaries["plan"]["bottom"], [q for q in points if q["plan"] == "plan"]
            moved = ("the same bottom" if p["capacity"] == b["capacity"] else
                     f"the bottom moved {'up' if p['capacity'] > b['capacity'] else 'down'}")
            verdict += (f"; with the plan ({ctx.plan.describe()}): lowest {p['val']:.4f} at {p['capacity']} "
                        f"({moved}), {prow[-1]['val']:.4f} at the largest size (baseline {rows[-1]['val']:.4f}), "
                        f"gap {prow[-1]['gap']:+.4f} there")
        plot = self.plot(points, capacity, metric, classification, ctx.out_dir / "capacity_curve.png")
        return points, figures, held, verdict, [plot]

    @staticmethod
    def summarize(rows: list[dict]) -> dict:
        """The bottom of the validation curve, the shapes of the validation and test curves, the gap's trend."""
        errors = [r["val"] for r in rows]
        bottom = rows[int(np.argmin(errors))]
        trend = rank_correlation([r["capacity"] for r in rows], [r["gap"] for r in rows])
        return {"bottom": bottom, "shape": curve_shape(errors, [r["val_se"] for r in rows]),
                "test_shape": curve_shape([r["test"] for r in rows], [r["test_se"] for r in rows]),
                "gap_trend": trend, "gap_grows": bool(trend > 0 and rows[-1]["gap"] > rows[0]["gap"])}

    @staticmethod
    def plot(points, capacity, metric, classification, path):
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D

        name = "error (1 - accuracy)" if classification else metric
        fig = Figure(figsize=(11, 4.4))
        ax_err, ax_gap = fig.subplots(1, 2)
        caps = sorted({p["capacity"] for p in points})
        log = caps[0] > 0 and caps[-1] / caps[0] >= 8
        labels = [p for p in ("baseline", "plan") if any(q["plan"] == p for q in points)]
        for label, style in zip(labels, ("-", "--")):
            rows = [p for p in points if p["plan"] == label]
            c = [p["capacity"] for p in rows]
            val, se = np.array([p["val"] for p in rows]), np.array([p["val_se"] for p in rows])
            ax_err.plot(c, [p["train"] for p in rows], style, marker="o", ms=4, color="tab:blue")
            ax_err.plot(c, val, style, marker="o", ms=4, color="tab:orange")
            ax_err.fill_between(c, np.maximum(val - se, 0.0), val + se, color="tab:orange", alpha=0.15, lw=0)
            ax_err.plot(c, [p["test"] for p in rows], style, marker=".", color="tab:green", alpha=0.8)
            bottom = rows[int(np.argmin(val))]
            ax_err.plot([bottom["capacity"]], [bottom["val"]], marker="*", ms=14, color="tab:red", ls="none")
            ax_gap.plot(c, [p["gap"] for p in rows], style, marker="o", ms=4, color="tab:red", label=label)
        key = [Line2D([], [], color=color, label=text) for color, text in
               (("tab:blue", "train (inference mode)"), ("tab:orange", "validation (+- 1 SE)"),
                ("tab:green", "test"))]
        key.append(Line2D([], [], color="tab:red", marker="*", ms=10, ls="none", label="validation bottom"))
        key += [Line2D([], [], color="black", ls=style, label=label) for label, style in zip(labels, ("-", "--"))]
        ax_err.legend(handles=key, fontsize=7)
        # Errors span from underfitting (tenths) to nearly nothing: linear near 0, logarithmic above.
        low = min([p[k] for p in points for k in ("val", "test") if p[k] > 0] or [0.01])
        ax_err.set_yscale("symlog", linthresh=max(low, 1e-4), linscale=0.5)
        ax_gap.legend(fontsize=7)
        params = {p["capacity"]: p["parameters"] for p in points}
        ticks = [f"{c}\n{params[c]:,} p." for c in caps]
        for ax, title in ((ax_err, f"{name} (symlog axis)"),
                          (ax_gap, "gap: validation - train error (positive = overfitting)")):
            if log:
                ax.set_xscale("log")
                ax.minorticks_off()
            ax.set_xticks(caps, ticks, fontsize=8)
            ax.set_xlabel(f"{capacity} (and parameters)")
            ax.set_title(title, fontsize=10)
            ax.grid(alpha=0.3)
        ax_gap.axhline(0.0, color="grey", lw=0.8)
        return save_figure(fig, path)
