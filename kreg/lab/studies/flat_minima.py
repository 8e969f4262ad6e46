"""Batch size, learning rate and flat minima: large batches reach sharper minima that generalize worse.

The claim (Keskar et al., ICLR 2017, and the seeds' "SGD noise helps escape
sharp minima"): trained to the *same* training loss, small-batch SGD ends in
a flat minimum and large-batch SGD in a sharp one, with a larger
generalization gap. The noise of a step grows with learning rate / batch
size, so a higher rate plays the part of a smaller batch.

The study trains the model (the plan's techniques, on the search's
optimizer) for every batch size and learning rate, ``seeds`` times (seeds
differ in the initial weights and the batch order), each until its training
loss, measured in inference mode on the fixed training sample (the trial's
``train_loss``), reaches ``target_loss``, or until ``max_epochs`` (then it
says the target was not reached, and the configurations are not compared at
the same loss). At the end point it measures sharpness with
``kreg.callbacks.sharpness.measure_sharpness`` on the same sample: the rise
of the data loss when every weight tensor moves by ``rho`` times its own
norm, the mean over random directions (``sharpness``) and along the
gradient (``sharpness_adversarial``, the one-step worst case, closer to
Keskar's maximum over a neighbourhood), and the trial's gaps (validation
minus train loss, and the task's metric). Figures are means over the seeds,
with their standard deviation. The claim held when the least noisy
configuration (smallest learning rate / batch size) is, on average over the
seeds, sharper by both measures and has the larger gap in the task's metric
than the noisiest, every run at the target loss; the verdict also says
whether the differences exceed the seeds' spread.
"""

from __future__ import annotations

import math

import numpy as np

from kreg.lab.studies.base import Study, save_figure


def stop_at_loss(target: float, name: str = "train_loss"):
    """A Keras callback that stops training at the end of the first epoch whose ``name`` (the trial's
    inference-mode training loss) is at most ``target``; its ``epoch`` is that epoch (1-based), else None."""
    import keras

    class StopAtLoss(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.target, self.name, self.epoch = target, name, None

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(self.name)
            if self.epoch is None and value is not None and value <= self.target:
                self.epoch = epoch + 1
                self.model.stop_training = True

    return StopAtLoss()


def noise_scale(batch_size: int, learning_rate: float) -> float:
    """Learning rate / batch size: the scale of SGD's gradient noise (higher: noisier steps)."""
    return learning_rate / batch_size


MEASURES = ("sharpness", "sharpness_adversarial", "gap", "test_gap", "gap_loss", "test", "epochs", "train_loss")


def summarize(points: list[dict]) -> list[dict]:
    """One row per (batch size, learning rate) over its seeds' runs that did not diverge: the mean and the
    standard deviation (``<measure>_std``, 0 for one run) of every measure, ``runs``, ``reached`` (all of them)."""
    rows = []
    for key in sorted({(p["batch_size"], p["learning_rate"]) for p in points}):
        runs = [p for p in points if (p["batch_size"], p["learning_rate"]) == key and not p["diverged"]]
        if not runs:
            continue
        row = {"batch_size": key[0], "learning_rate": key[1], "noise_scale": noise_scale(*key), "runs": len(runs),
               "reached": all(p["reached"] for p in runs)}
        for name in MEASURES:
            values = np.array([p[name] for p in runs], dtype=np.float64)
            row[name], row[f"{name}_std"] = float(values.mean()), float(values.std(ddof=1) if len(values) > 1 else 0)
        rows.append(row)
    return rows


def extremes(rows: list[dict]) -> tuple[dict, dict]:
    """``(least noisy, noisiest)`` rows: the smallest and largest rate / batch size (ties: the larger batch is
    the less noisy)."""
    order = sorted(rows, key=lambda r: (r["noise_scale"], -r["batch_size"]))
    return order[0], order[-1]


def apart(a: dict, b: dict, name: str) -> bool:
    """Whether the means of ``name`` differ by more than the two standard deviations added."""
    return abs(a[name] - b[name]) > a[f"{name}_std"] + b[f"{name}_std"]


class FlatMinima(Study):
    kind = "flat_minima"
    claim = "trained to the same training loss, large batches reach sharper minima with a larger generalization gap"
    options = {"batch_sizes": (16, 64, 256), "learning_rates": None, "target_loss": 0.02, "max_epochs": 200,
               "seeds": 3, "rho": 0.05, "samples": 5}

    def check(self, batch_sizes=(16, 64, 256), learning_rates=None, target_loss=0.02, max_epochs=200, seeds=3,
              rho=0.05, samples=5):
        from kreg.lab.errors import ConfigError

        def integer(value):
            return isinstance(value, int) and not isinstance(value, bool)

        def number(value):
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        sizes = batch_sizes if isinstance(batch_sizes, (list, tuple)) else (batch_sizes,)
        if len(set(sizes)) < 2 or not all(integer(b) and b >= 1 for b in sizes):
            raise ConfigError("study.batch_sizes", batch_sizes, "two or more different positive integer batch sizes")
        rates = None
        if learning_rates is not None:
            rates = learning_rates if isinstance(learning_rates, (list, tuple)) else (learning_rates,)
            if not rates or not all(number(r) and r > 0 for r in rates):
                raise ConfigError("study.learning_rates", learning_rates,
                                  "None (the search's rate) or one or more positive learning rates")
            rates = tuple(sorted({float(r) for r in rates}))
        if not number(target_loss) or target_loss <= 0:
            raise ConfigError("study.target_loss", target_loss, "a positive training loss to train every run to")
        if not integer(max_epochs) or max_epochs < 1:
            raise ConfigError("study.max_epochs", max_epochs, "a positive integer (the epoch budget of each run)")
        if not integer(seeds) or seeds < 1:
            raise ConfigError("study.seeds", seeds, "a positive integer (runs per batch size and learning rate)")
        if not number(rho) or rho <= 0:
            raise ConfigError("study.rho", rho, "a positive relative perturbation radius")
        if not integer(samples) or samples < 1:
            raise ConfigError("study.samples", samples, "a positive integer (random directions)")
        return {"batch_sizes": tuple(sorted(set(sizes))), "learning_rates": rates, "target_loss": float(target_loss),
                "max_epochs": max_epochs, "seeds": seeds, "rho": float(rho), "samples": samples}

    def run(self, ctx, batch_sizes=(16, 64, 256), learning_rates=None, target_loss=0.02, max_epochs=200, seeds=3,
            rho=0.05, samples=5):
        search, metric = ctx.search, ctx.metric
        base = ctx.plan if ctx.plan.active_techniques() else ctx.baseline
        rates = learning_rates or (base.learning_rate or search.training.learning_rate,)
        ctx.echo(f"  {len(batch_sizes) * len(rates)} configurations x {seeds} seeds, each trained until its "
                 f"training loss is <= {target_loss:g} (at most {max_epochs} epochs)")
        points, curves = [], {}
        for lr in rates:
            for batch in batch_sizes:
                for i in range(seeds):
                    point, curve = self.train_one(ctx, base.replace(batch_size=batch, learning_rate=lr), batch, lr,
                                                  search.seed + 1000 * i, target_loss, max_epochs, rho, samples)
                    points.append(point)
                    curves.setdefault((batch, lr), []).append(curve)
        rows = summarize(points)
        figures, held, verdict = self.judge(rows, points, metric, target_loss)
        return points, figures, held, verdict, [self.plot(rows, points, curves, metric, target_loss,
                                                          ctx.out_dir / "flat_minima.png")]

    @staticmethod
    def train_one(ctx, plan, batch, lr, seed, target_loss, max_epochs, rho, samples) -> tuple[dict, list]:
        """Trains one run to the target loss, measures its sharpness, logs its nested run: (point, loss curve).

        ``ctx.train``'s recipe (``fit_plan``, ``final_metrics``, a nested run), with the stop at the target
        loss as the last callback.
        """
        import time

        import keras

        from kreg.callbacks.sharpness import measure_sharpness
        from kreg.lab.trial.fit import Diverged, fit_plan
        from kreg.lab.trial.measure import final_metrics

        search, metric = ctx.search, ctx.metric
        label = f"batch-{batch}-lr-{lr:g}-seed-{seed}"
        point = {"batch_size": batch, "learning_rate": lr, "seed": seed, "noise_scale": noise_scale(batch, lr),
                 "diverged": False}
        stop = stop_at_loss(target_loss)
        start = time.perf_counter()
        keras.utils.set_random_seed(seed)  # as the search's runner does before a trial: the run repeats
        try:
            fitted = fit_plan(search, plan, max_epochs, ctx.train_sample, seed=seed, last_callbacks=[stop])
        except Diverged as exc:  # a rate too high for this batch: a finding, not an error
            point.update(diverged=True, reached=False)
            ctx.log_point(label, plan, {"diverged": 1.0, "duration_s": time.perf_counter() - start})
            ctx.echo(f"  batch {batch:5d} lr {lr:g} seed {seed}: {exc}")
            keras.backend.clear_session()
            return point, []
        m = final_metrics(fitted, search)
        sharp = measure_sharpness(fitted.model, *ctx.train_sample, rho=rho, samples=samples, seed=search.seed)
        m["duration_s"] = time.perf_counter() - start
        point.update(reached=stop.epoch is not None, epochs=m["epochs_run"], train_loss=m["train_loss"],
                     gap_loss=m["gap_loss"], train=m[f"train_{metric}"], val=m[f"val_{metric}"],
                     test=m[f"test_{metric}"], gap=m[f"gap_{metric}"], test_gap=m[f"test_gap_{metric}"],
                     sharpness=sharp["sharpness"], sharpness_adversarial=sharp["sharpness_adversarial"],
                     duration_s=m["duration_s"])
        ctx.log_point(label, plan, {**m, **sharp, "reached_target": float(point["reached"]),
                                    "noise_scale": point["noise_scale"]})
        ctx.echo(f"  batch {batch:5d} lr {lr:g} seed {seed}: train loss {point['train_loss']:.4f} after "
                 f"{point['epochs']} epochs{'' if point['reached'] else ' (target NOT reached)'}; sharpness "
                 f"{point['sharpness']:.3g}, adversarial {point['sharpness_adversarial']:.3g}; gap in {metric} "
                 f"{point['gap']:+.4f} (test {point['test_gap']:+.4f}), in loss {point['gap_loss']:+.4f}; "
                 f"{point['duration_s']:.1f} s")
        curve = fitted.history.get("train_loss", [])
        keras.backend.clear_session()
        return point, curve

    @staticmethod
    def judge(rows: list[dict], points: list[dict], metric: str, target_loss: float) -> tuple[dict, bool, str]:
        """Figures, whether the claim held, and the verdict: the least noisy configuration against the noisiest."""
        diverged = sum(p["diverged"] for p in points)
        if len(rows) < 2:
            return ({"diverged": float(diverged)}, False,
                    f"{diverged} of {len(points)} runs diverged: fewer than two configurations to compare")
        quiet, noisy = extremes(rows)
        same_loss = all(r["reached"] for r in rows)
        sharper = (quiet["sharpness"] > noisy["sharpness"]
                   and quiet["sharpness_adversarial"] > noisy["sharpness_adversarial"])
        wider = quiet["gap"] > noisy["gap"]
        figures = {"all_reached_target": float(same_loss), "diverged": float(diverged)}
        renamed = {"gap": f"gap_{metric}", "test_gap": f"test_gap_{metric}", "test": f"test_{metric}"}
        for side, row in (("large_batch", quiet), ("small_batch", noisy)):
            for name in ("sharpness", "sharpness_adversarial", "gap", "test_gap", "gap_loss", "test", "epochs"):
                key = renamed.get(name, name)
                figures[f"{key}_{side}"] = row[name]
                if name in ("sharpness", "sharpness_adversarial", "gap"):
                    figures[f"{key}_{side}_std"] = row[f"{name}_std"]

        def name(r):
            return f"batch {r['batch_size']} at lr {r['learning_rate']:g}"

        def pm(r, key, fmt):
            return f"{format(r[key], fmt)} +- {format(r[key + '_std'], fmt.lstrip('+'))}"

        spread = [n for n in ("sharpness", "sharpness_adversarial", "gap") if not apart(quiet, noisy, n)]
        verdict = (f"{name(quiet)} (least noisy) against {name(noisy)} (noisiest), mean +- sd over "
                   f"{quiet['runs']} seed(s): sharpness {pm(quiet, 'sharpness', '.3g')} vs "
                   f"{pm(noisy, 'sharpness', '.3g')}, adversarial {pm(quiet, 'sharpness_adversarial', '.3g')} vs "
                   f"{pm(noisy, 'sharpness_adversarial', '.3g')} "
                   f"({'sharper by both' if sharper else 'not sharper by both measures'}); gap in {metric} "
                   f"{pm(quiet, 'gap', '+.4f')} vs {pm(noisy, 'gap', '+.4f')} "
                   f"({'larger' if wider else 'not larger'}); test {metric} {quiet['test']:.4f} vs "
                   f"{noisy['test']:.4f}; ")
        if spread:
            verdict += f"within the seeds' spread: {', '.join(spread)}; "
        if same_loss:
            verdict += (f"every run at training loss <= {target_loss:g} (in {quiet['epochs']:.0f} and "
                        f"{noisy['epochs']:.0f} epochs on average)")
        else:
            missed = ", ".join(name(r) for r in rows if not r["reached"])
            verdict += (f"the target training loss {target_loss:g} was NOT reached by {missed} within the epoch "
                        "budget: not compared at the same loss (raise max_epochs or target_loss)")
        return figures, bool(same_loss and sharper and wider), verdict

    @staticmethod
    def plot(rows, points, curves, metric, target_loss, path):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(15, 4.3))
        ax_loss, ax_sharp, ax_gap = fig.subplots(1, 3)
        for i, ((batch, lr), runs) in enumerate(sorted(curves.items())):
            for j, curve in enumerate(runs):
                ax_loss.plot(range(1, len(curve) + 1), curve, color=f"C{i}", lw=0.9, alpha=0.8,
                             label=f"batch {batch}, lr={lr:g}" if j == 0 else None)
        ax_loss.axhline(target_loss, color="grey", ls=":", label=f"target {target_loss:g}")
        ax_loss.set_yscale("log")
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("training loss (inference mode, log scale)")
        ax_loss.set_title("every run trained to the target loss (one line per seed)", fontsize=10)
        ax_loss.legend(fontsize=7)
        for i, lr in enumerate(sorted({r["learning_rate"] for r in rows})):
            mine = [r for r in rows if r["learning_rate"] == lr]
            sizes = [r["batch_size"] for r in mine]
            runs = [p for p in points if p["learning_rate"] == lr and not p["diverged"]]
            for ax, key, style, text in ((ax_sharp, "sharpness", "o-", "random"),
                                         (ax_sharp, "sharpness_adversarial", "s--", "adversarial"),
                                         (ax_gap, "gap", "o-", "validation"), (ax_gap, "test_gap", "s--", "test")):
                ax.errorbar(sizes, [r[key] for r in mine], yerr=[r[f"{key}_std"] for r in mine], fmt=style,
                            color=f"C{i}" if key in ("sharpness", "gap") else f"C{i + 3}", capsize=3,
                            label=f"{text}, lr={lr:g} (mean +- sd)")
                ax.plot([p["batch_size"] for p in runs], [p[key] for p in runs], ".", color="grey", ms=3)
            for r in mine:
                if not r["reached"]:
                    ax_gap.annotate("target not reached", (r["batch_size"], r["gap"]), fontsize=7,
                                    xytext=(4, 4), textcoords="offset points")
        sizes = sorted({r["batch_size"] for r in rows})
        if all(p["sharpness"] > 0 and p["sharpness_adversarial"] > 0 for p in points if not p["diverged"]):
            ax_sharp.set_yscale("log")  # random directions barely move the loss; the gradient's does, a lot
        for ax, title, ylabel in ((ax_sharp, "sharpness at the end point (grey: each seed)",
                                   "training loss rise under a perturbation"),
                                  (ax_gap, f"generalization gap in {metric} (grey: each seed)",
                                   "gap (positive = overfitting)")):
            ax.set_xscale("log", base=2)
            ax.minorticks_off()
            ax.set_xticks(sizes, [str(b) for b in sizes])
            ax.set_xlabel("batch size")
            ax.set_ylabel(ylabel)
            ax.set_title(title, fontsize=10)
            ax.legend(fontsize=7)
        for ax in (ax_loss, ax_sharp, ax_gap):
            ax.grid(alpha=0.3)
        return save_figure(fig, path)
