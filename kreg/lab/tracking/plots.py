"""Plots people would rather look at than read: learning curves and the search map."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

# Figures are built with the object API, never pyplot: no global state, so
# plots can be drawn on a worker thread while the next trial trains.


def learning_curves(history: dict, path: Path, *, metric: str = "accuracy", kept_epoch: int | None = None,
                    title: str = "") -> Path:
    """Train (inference mode), validation and gap per epoch, for loss and ``metric``.

    Keras' running training figures (dropout and augmentation on) are drawn
    dotted, so the difference between them and the honest ones is visible.
    """
    epochs = list(range(1, len(history.get("loss", [])) + 1))
    fig = Figure(figsize=(13, 3.6))
    axes = fig.subplots(1, 3)
    for ax, name in zip(axes[:2], ("loss", metric)):
        if history.get(f"train_{name}"):
            ax.plot(epochs, history[f"train_{name}"], label="train (inference)", color="tab:blue")
        if history.get(name):
            ax.plot(epochs, history[name], ":", label="train (fit, running)", color="tab:blue", alpha=0.6)
        if history.get(f"val_{name}"):
            ax.plot(epochs, history[f"val_{name}"], label="validation", color="tab:orange")
        ax.set_title(name)
        ax.set_xlabel("epoch")
    gap_ax = axes[2]
    for name, color in (("loss", "tab:red"), (metric, "tab:purple")):
        if history.get(f"gap_{name}"):
            gap_ax.plot(epochs, history[f"gap_{name}"], label=f"gap_{name}", color=color)
    gap_ax.axhline(0.0, color="gray", linewidth=0.8)
    gap_ax.set_title("generalization gap (positive = overfitting)")
    gap_ax.set_xlabel("epoch")
    for ax in axes:
        if kept_epoch:
            ax.axvline(kept_epoch, color="green", linestyle="--", linewidth=0.8, label="kept weights")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def search_map(records, path: Path, *, metric: str = "accuracy", best_id: str | None = None,
               baseline_id: str | None = None, front=()) -> Path:
    """Validation ``metric`` against its gap for every completed trial; ``front``: the Pareto front's trials."""
    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
    done = [r for r in records if r.status == "COMPLETED" and f"val_{metric}" in r.metrics]
    xs = [r.metrics.get(f"gap_{metric}", 0.0) for r in done]
    ys = [r.metrics[f"val_{metric}"] for r in done]
    ax.scatter(xs, ys, color="tab:blue", alpha=0.7, label="trial")
    for r, x, y in zip(done, xs, ys):
        ax.annotate(r.trial_id, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        if r.trial_id == baseline_id:
            ax.scatter([x], [y], s=120, facecolors="none", edgecolors="black", label="baseline")
        if r.trial_id == best_id:
            ax.scatter([x], [y], s=200, marker="*", color="gold", edgecolors="black", label="best")
    if len(front) > 1:
        line = sorted(front, key=lambda r: r.metrics[f"gap_{metric}"])
        ax.plot([r.metrics[f"gap_{metric}"] for r in line], [r.metrics[f"val_{metric}"] for r in line], "--",
                color="tab:green", linewidth=1, label="Pareto front (score vs gap)")
    ax.axvline(0.0, color="gray", linewidth=0.8)
    ax.set_xlabel(f"gap_{metric} (positive = overfitting, inference mode)")
    ax.set_ylabel(f"val_{metric}")
    ax.set_title("trials: validation score against generalization gap")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def technique_effects(rows: list[dict], path: Path, *, objective: str) -> Path:
    """Per technique: the fitted effect on the objective (+- 1 SE) and the with/without difference of means."""
    fig = Figure(figsize=(7, 0.45 * max(len(rows), 2) + 1.6))
    ax = fig.subplots()
    names = [r["technique"] for r in rows][::-1]
    ys = list(range(len(names)))
    effects = [r["effect"] for r in rows][::-1]
    errors = [r["effect_se"] if r["effect_se"] == r["effect_se"] else 0.0 for r in rows][::-1]
    colors = ["tab:green" if e > 0 else "tab:red" for e in effects]
    ax.barh(ys, [e if e == e else 0.0 for e in effects], xerr=errors, color=colors, alpha=0.6,
            label="fitted effect (+- 1 SE)")
    ax.scatter([r["difference"] for r in rows][::-1], ys, color="black", marker="|", s=200,
               label="mean with - mean without")
    ax.set_yticks(ys, [f"{n} ({r['trials_with']}/{r['trials_with'] + r['trials_without']})"
                       for n, r in zip(names, rows[::-1])])
    ax.axvline(0.0, color="gray", linewidth=0.8)
    ax.set_xlabel(f"change in {objective} (positive = better)")
    ax.set_title("which technique helped (trials with it / all)")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=8)
    return _save(fig, path)


def overlaid_curves(curves: dict, path: Path, *, metric: str = "accuracy") -> Path:
    """Learning curves of several trials overlaid (``{"baseline": history, "chosen": history}``)."""
    fig = Figure(figsize=(11, 3.6))
    axes = fig.subplots(1, 2)
    colors = ("tab:gray", "tab:blue", "tab:orange", "tab:green")
    for (label, history), color in zip(curves.items(), colors):
        epochs = list(range(1, len(history.get("loss", [])) + 1))
        for ax, name in zip(axes, (metric, f"gap_{metric}")):
            if name.startswith("gap_"):
                if history.get(name):
                    ax.plot(epochs, history[name], color=color, label=label)
                continue
            if history.get(f"train_{name}"):
                ax.plot(epochs, history[f"train_{name}"], ":", color=color, label=f"{label}: train (inference)")
            if history.get(f"val_{name}"):
                ax.plot(epochs, history[f"val_{name}"], color=color, label=f"{label}: validation")
    axes[0].set_title(metric)
    axes[1].set_title(f"gap in {metric} (positive = overfitting)")
    axes[1].axhline(0.0, color="gray", linewidth=0.8)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path
