"""Early stopping is like L2: gradient descent stopped after t steps lands near ridge with alpha ~ 1/(eta t).

For a linear model on the mean over examples of the summed squared error,
L(W) = mean ||y - x W||^2 (x and y centred on the training split, so the
bias, unpenalized in ridge, drops out), with C = x'x / n = V diag(lambda) V'
and B = x'y / n, gradient descent from W = 0 at rate eta has the closed form

    W_t = V diag((1 - (1 - 2 eta lambda)^t) / lambda) V' B

and ridge, argmin L(W) + alpha ||W||^2 (``ridge()`` of ``noise_as_l2``), is

    W(alpha) = V diag(1 / (lambda + alpha)) V' B.

Both damp the directions of small curvature: for lambda << 1 / (eta t) the
gradient-descent filter is about 2 eta t, the ridge one 1 / alpha, so the
iterate at step t sits near the ridge solution with alpha ~ 1 / (2 eta t)
(the seeds' 1 / (eta t) is the same statement on scikit-learn's halved
loss). The study trains a Keras linear layer (no bias, zero kernel, full
batch, plain SGD at ``eta = 1 / (2 lambda_max)``, the largest rate that
overshoots no direction) on the training split, records the kernel at
log-spaced steps t, and for each t finds alpha*(t), the alpha whose ridge
solution is closest. It reports the distance to that solution relative to
the distance to the unregularized (least-squares) solution and to the
iterate's own norm, and the log-log slope of alpha*(t) against t (-1 when
alpha* is proportional to 1 / (eta t)), over the steps before gradient
descent has converged to least squares (t < 1 / (2 eta lambda_min): later,
the iterate stops moving while 1 / (eta t) keeps falling; those checkpoints
are shown but left out). Targets: the one-hot classes, or the
standardized regression targets (as ``noise_as_l2``); inputs: the training
split as the search sees it, flattened.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kreg.lab.studies.base import Study, save_figure
from kreg.lab.studies.noise_as_l2 import targets
from kreg.lab.studies.sparsity_paths import flat_train


@dataclasses.dataclass
class Spectrum:
    """The centred problem in the eigenbasis of C = x'x / n: eigenvalues, eigenvectors, V'B."""

    lam: np.ndarray
    vectors: np.ndarray
    projected: np.ndarray  # V' B, (features, outputs)

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray) -> "Spectrum":
        xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
        lam, vectors = np.linalg.eigh(xc.T @ xc / len(x))
        return cls(np.clip(lam, 0.0, None), vectors, vectors.T @ (xc.T @ yc / len(x)))

    def ridge(self, alpha: float) -> np.ndarray:
        """argmin mean ||y - x W||^2 + alpha ||W||^2: ``noise_as_l2.ridge`` through the eigenbasis."""
        return self.vectors @ (self.projected / (self.lam + alpha)[:, None])

    def gradient_descent(self, lr: float, t: int) -> np.ndarray:
        """W_t of gradient descent from zero at rate ``lr`` on mean ||y - x W||^2, in closed form."""
        flat = self.lam <= 1e-12 * max(float(self.lam[-1]), 1e-300)
        safe = np.where(flat, 1.0, self.lam)
        factor = np.where(flat, 2.0 * lr * t, (1.0 - (1.0 - 2.0 * lr * self.lam) ** t) / safe)
        return self.vectors @ (self.projected * factor[:, None])

    def converged_after(self, lr: float) -> float:
        """1 / (2 lr lambda_min): the step count past which gradient descent has converged to least squares in
        every direction (lambda_min: the smallest eigenvalue above 1e-10 lambda_max; flatter ones carry nothing)."""
        lam = self.lam[self.lam > 1e-10 * self.lam[-1]]
        return 1.0 / (2.0 * lr * float(lam.min()))

    def nearest_ridge(self, w: np.ndarray) -> tuple[float, float]:
        """``(alpha*, distance)``: the ridge solution closest to ``w`` (a log grid, then a bounded refinement)."""
        from scipy.optimize import minimize_scalar

        wp = self.vectors.T @ w  # distances are the same in the eigenbasis

        def distance(log_alpha):
            return float(np.linalg.norm(self.projected / (self.lam + np.exp(log_alpha))[:, None] - wp))

        top = max(float(self.lam[-1]), 1e-12)
        grid = np.log(top) + np.linspace(np.log(1e-9), np.log(1e5), 281)
        i = int(np.argmin([distance(a) for a in grid]))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        best = minimize_scalar(distance, bounds=(lo, hi), method="bounded", options={"xatol": 1e-8})
        log_alpha = best.x if best.fun <= distance(grid[i]) else grid[i]
        return float(np.exp(log_alpha)), distance(log_alpha)


def log_steps(steps: int, count: int) -> list[int]:
    """About ``count`` distinct steps from 1 to ``steps``, evenly spaced in log."""
    return sorted({int(round(t)) for t in np.geomspace(1, steps, count)})


def loglog_slope(x, y) -> float:
    """The least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def fit_gd(x: np.ndarray, y: np.ndarray, lr: float, at: list[int], seed: int = 0) -> dict[int, np.ndarray]:
    """A Keras ``Dense(outputs, use_bias=False)`` from a zero kernel, full-batch plain SGD at ``lr`` on the
    centred data and the mean over examples of the summed squared error; its kernel after each step in ``at``."""
    import keras
    import tensorflow as tf  # the lab's input pipelines are tf.data, as a search's are

    keras.utils.set_random_seed(seed)
    xc, yc = (x - x.mean(axis=0)).astype(np.float32), (y - y.mean(axis=0)).astype(np.float32)
    dense = keras.layers.Dense(y.shape[1], use_bias=False, kernel_initializer="zeros")
    inputs = keras.Input((x.shape[1],))
    model = keras.Model(inputs, dense(inputs))

    def summed_squared_error(target, prediction):  # per example; Keras averages over the batch
        return keras.ops.sum(keras.ops.square(target - prediction), axis=-1)

    model.compile(optimizer=keras.optimizers.SGD(lr), loss=summed_squared_error)
    kernels, wanted = {}, set(at)

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 in wanted:
                kernels[batch + 1] = keras.ops.convert_to_numpy(dense.kernel).astype(np.float64)

    steps = max(at)
    data = tf.data.Dataset.from_tensors((xc, yc)).repeat(steps)  # one full batch per step
    model.fit(data, epochs=1, verbose=0, shuffle=False, callbacks=[Record()])
    return kernels


class EarlyStoppingL2(Study):
    kind = "early_stopping_l2"
    claim = "gradient descent stopped after t steps at rate eta lands near the L2 solution with alpha ~ 1/(eta t)"
    options = {"steps": 3000, "checkpoints": 14}

    def check(self, steps=3000, checkpoints=14):
        from kreg.lab.errors import ConfigError

        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 10:
            raise ConfigError("study.steps", steps, "an integer of at least 10 (gradient-descent steps)")
        if isinstance(checkpoints, bool) or not isinstance(checkpoints, int) or not 3 <= checkpoints <= steps:
            raise ConfigError("study.checkpoints", checkpoints, "an integer from 3 to `steps` (log-spaced stops)")
        return {"steps": steps, "checkpoints": checkpoints}

    def run(self, ctx, steps=3000, checkpoints=14):
        from kreg.lab.plan import RegularizationPlan

        splits = ctx.search.splits
        x, y = flat_train(splits, self.kind), targets(splits)
        spectrum = Spectrum.of(x, y)
        lr = 1.0 / (2.0 * float(spectrum.lam[-1]))
        ols = spectrum.ridge(1e-8)
        at = log_steps(steps, checkpoints)
        ctx.echo(f"  linear model, {x.shape[1]} features -> {y.shape[1]} outputs, {len(y)} training examples; "
                 f"plain full-batch gradient descent at eta = 1/(2 lambda_max) = {lr:.4g}, {steps} steps")
        kernels = fit_gd(x, y, lr, at, seed=ctx.search.seed)
        points = []
        for t in at:
            w = kernels[t]
            alpha, d_ridge = spectrum.nearest_ridge(w)
            closed = spectrum.gradient_descent(lr, t)
            norm = float(np.linalg.norm(w))
            point = {"step": t, "converged": t > spectrum.converged_after(lr), "inverse_eta_t": 1.0 / (lr * t),
                     "alpha_star": alpha, "alpha_star_eta_t": alpha * lr * t, "norm": norm,
                     "norm_ridge": float(np.linalg.norm(spectrum.ridge(alpha))),
                     "ridge_vs_ols": d_ridge / float(np.linalg.norm(w - ols)), "ridge_vs_norm": d_ridge / norm,
                     "keras_vs_closed_form": float(np.linalg.norm(w - closed) / np.linalg.norm(closed))}
            points.append(point)
            ctx.log_point(f"step-{t}", RegularizationPlan(l2=alpha), {**point, "converged": float(point["converged"])})
            ctx.echo(f"  t={t:5d}  alpha*={alpha:.4g}  alpha* eta t={point['alpha_star_eta_t']:.3f}  |W_t| {norm:.4f}  "
                     f"to ridge(alpha*) {point['ridge_vs_norm']:.1%} of |W_t|, {point['ridge_vs_ols']:.2%} of "
                     f"the distance to least squares" + ("  (converged: excluded)" if point["converged"] else ""))
        figures, held, verdict = self.judge(points, lr, steps, spectrum.converged_after(lr))
        path = self.plot(spectrum, points, lr, ctx.out_dir / "early_stopping_l2.png", kernels)
        return points, figures, held, verdict, [path]

    @staticmethod
    def judge(points: list[dict], lr: float, steps: int, converged_after: float) -> tuple[dict, bool, str]:
        """Figures, whether the claim held, and the verdict, over the checkpoints before convergence.

        Past ``t = 1 / (2 eta lambda_min)`` gradient descent has converged to least squares in every direction:
        W_t stops moving while 1/(eta t) keeps falling, alpha*(t) collapses towards 0, and both distances
        vanish. The claim is about the steps before that (early stopping), so those checkpoints are reported but
        left out of the fit and of the verdict.
        """
        early = [p for p in points if not p["converged"]]
        figures = {"eta": lr, "steps": steps, "converged_after": converged_after,
                   "checkpoints_before_convergence": len(early),
                   "max_keras_vs_closed_form": max(p["keras_vs_closed_form"] for p in points)}
        if len(early) < 3:
            return figures, False, (f"only {len(early)} checkpoint(s) before gradient descent reached least "
                                    f"squares, after t = 1/(2 eta lambda_min) = {converged_after:.3g} steps (at "
                                    "eta = 1/(2 lambda_max), the features' condition number): too few to fit "
                                    "alpha*(t); well-conditioned features leave early stopping little to do")
        # the exponent of alpha* in t: -1 when alpha* is proportional to 1/(eta t)
        slope = loglog_slope([p["step"] for p in early], [p["alpha_star"] for p in early])
        figures.update({"slope": slope,
                        "alpha_star_eta_t_median": float(np.median([p["alpha_star_eta_t"] for p in early])),
                        "max_ridge_vs_ols": max(p["ridge_vs_ols"] for p in early),
                        "max_ridge_vs_norm": max(p["ridge_vs_norm"] for p in early),
                        "median_ridge_vs_norm": float(np.median([p["ridge_vs_norm"] for p in early]))})
        # alpha* proportional to 1/(eta t), and every iterate far nearer the ridge path than least squares
        held = -1.25 <= slope <= -0.75 and figures["max_ridge_vs_ols"] < 0.25
        last = early[-1]["step"]
        verdict = (f"alpha*(t) from t=1 to {last} steps goes as t^{slope:.3f} (1/(eta t) is t^-1), alpha* eta t "
                   f"{figures['alpha_star_eta_t_median']:.3f} (median; about 0.5 where lambda << 1/(eta t)); each "
                   f"iterate's distance to the nearest ridge solution at most {figures['max_ridge_vs_ols']:.1%} of "
                   f"its distance to least squares ({figures['median_ridge_vs_norm']:.1%} of its norm, median; at "
                   f"most {figures['max_ridge_vs_norm']:.1%})")
        if len(early) < len(points):
            verdict += (f"; {len(points) - len(early)} later checkpoint(s) left out: past t = "
                        f"{converged_after:.3g} gradient descent has converged to least squares")
        return figures, held, verdict

    @staticmethod
    def plot(spectrum, points, lr, path, kernels):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(15, 4.3))
        ax_norm, ax_plane, ax_alpha = fig.subplots(1, 3)
        inverse = np.array([p["inverse_eta_t"] for p in points])
        alphas = np.geomspace(min(inverse.min(), min(p["alpha_star"] for p in points)) / 3,
                              max(inverse.max(), max(p["alpha_star"] for p in points)) * 3, 200)
        ridge_path = [spectrum.ridge(a) for a in alphas]
        ax_norm.plot(alphas, [np.linalg.norm(w) for w in ridge_path], "-", color="tab:blue",
                     label="ridge ||W(alpha)||, against alpha")
        ax_norm.plot(inverse / 2, [p["norm"] for p in points], "o", color="tab:orange",
                     label="gradient descent ||W_t||, against 1/(2 eta t)")
        ax_norm.plot([p["alpha_star"] for p in points], [p["norm"] for p in points], "x", color="tab:red",
                     label="gradient descent ||W_t||, against alpha*(t)")
        ax_norm.set_xscale("log")
        ax_norm.set_xlabel("alpha (log scale)")
        ax_norm.set_ylabel("||W||")
        ax_norm.set_title("weight norm along both paths", fontsize=10)
        ax_norm.legend(fontsize=7)
        # the two paths in the plane of the ridge path's two leading principal directions
        stacked = np.stack([w.ravel() for w in ridge_path])
        _, _, vt = np.linalg.svd(stacked - stacked.mean(axis=0), full_matrices=False)
        plane = vt[:2].T
        ridge_xy = (stacked - stacked.mean(axis=0)) @ plane
        gd_xy = (np.stack([kernels[p["step"]].ravel() for p in points]) - stacked.mean(axis=0)) @ plane
        ax_plane.plot(ridge_xy[:, 0], ridge_xy[:, 1], "-", color="tab:blue", label="ridge path W(alpha)")
        ax_plane.plot(gd_xy[:, 0], gd_xy[:, 1], "o--", color="tab:orange", ms=4, lw=0.8,
                      label="gradient descent iterates W_t")
        for (px, py), text, color in ((ridge_xy[0], f"alpha {alphas[0]:.2g}", "tab:blue"),
                                      (ridge_xy[-1], f"alpha {alphas[-1]:.2g}", "tab:blue"),
                                      (gd_xy[0], f"t={points[0]['step']}", "tab:orange"),
                                      (gd_xy[-1], f"t={points[-1]['step']}", "tab:orange")):
            ax_plane.annotate(text, (px, py), fontsize=7, color=color, xytext=(4, 4), textcoords="offset points")
        ax_plane.set_xlabel("principal direction 1 of the ridge path")
        ax_plane.set_ylabel("principal direction 2")
        ax_plane.set_title("the two paths, projected", fontsize=10)
        ax_plane.legend(fontsize=7)
        early = [p for p in points if not p["converged"]]
        ax_alpha.loglog([p["inverse_eta_t"] for p in early], [p["alpha_star"] for p in early], "o", color="tab:red",
                        label="alpha*(t), measured")
        late = [p for p in points if p["converged"]]
        if late:
            ax_alpha.loglog([p["inverse_eta_t"] for p in late], [p["alpha_star"] for p in late], "o", mfc="none",
                            color="grey", label="alpha*(t) after convergence (left out)")
        ax_alpha.loglog(inverse, inverse / 2, "--", color="grey", label="1/(2 eta t) (slope -1 in t)")
        ax_alpha.set_xlabel("1/(eta t) (log scale)")
        ax_alpha.set_ylabel("alpha*(t): the nearest ridge solution's alpha")
        if len(early) >= 2:
            slope = loglog_slope([p["step"] for p in early], [p["alpha_star"] for p in early])
            ax_alpha.set_title(f"alpha*(t) goes as t^{slope:.3f} (1/(eta t): t^-1)", fontsize=10)
        ax_alpha.legend(fontsize=7)
        for ax in (ax_norm, ax_plane, ax_alpha):
            ax.grid(alpha=0.3)
        return save_figure(fig, path)
