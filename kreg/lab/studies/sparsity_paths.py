"""Sparsity paths: L1 sets coefficients to exactly zero, L2 only shrinks them; elastic net does both.

The study fits a linear model along a grid of strengths three ways, with
scikit-learn's elastic-net parametrization on scikit-learn's objective

    (1 / (2n)) ||y - X w - b||^2 + alpha * r * ||w||_1 + (alpha / 2) * (1 - r) * ||w||^2

(r = 1: the lasso, L1; 0 < r < 1: elastic net; r = 0: ridge, L2). Keras' loss
is the *mean* squared error, twice scikit-learn's data term, so the same
minimiser is Keras' ``mse`` plus ``L2(alpha * (1 - r))`` on the kernel plus
``2 * alpha * r * ||w||_1``; that ridge is ``ridge(x, y, alpha)`` of
``noise_as_l2`` (its alpha is on the mean loss). The L1 term is not added
to the loss (a subgradient never lands on zero): it is the proximal step
``kreg.constraints.SoftThreshold(lr * 2 * alpha * r)`` after every update.
Full batches and plain SGD at ``lr = 1 / L`` (L: the Lipschitz constant of
the smooth part's gradient) make the training exactly ISTA, which converges
to the minimiser and reaches exact zeros. The Keras model (a ``Dense(1)``
with an unpenalized bias) is warm-started from the previous, stronger alpha,
as scikit-learn's coordinate descent is.

References: the L1 and elastic-net paths are scikit-learn's ``lasso_path``
and ``enet_path`` on the centred data at the same alphas (tolerance 1e-10),
the L2 path the closed-form ridge. Target: a one-vs-rest indicator of class
``target`` for classification, the standardized target column ``target``
for regression. Features: the flattened inputs, standardized per column on
the training split (a penalty treats coefficients alike only when the
features share a scale; constant columns stay constant, and their
coefficients are zero under every penalty: they are left out of the zero
counts). The alphas run from just above ``alpha_max`` (the smallest alpha
whose lasso is all zero) down to ``eps * alpha_max``; the L2 grid runs
from ``lambda_max`` (the largest eigenvalue of the features' covariance,
where even the leading direction is halved) down by the same factor.
"""

from __future__ import annotations

import numpy as np

from kreg.lab.studies.base import Study, save_figure
from kreg.lab.studies.noise_as_l2 import ridge
from kreg.training.ensemble import _quiet_retracing

PENALTIES = ("l1", "elastic_net", "l2")


def flat_train(splits, kind: str) -> np.ndarray:
    """The training inputs as a float64 (examples, features) matrix; a ``ConfigError`` for streamed data."""
    from kreg.lab.errors import ConfigError

    if not getattr(splits, "in_memory", True):
        raise ConfigError("data", splits.spec.dataset or "tf.data",
                          f"data held in memory (arrays, a packaged dataset, a CSV): the {kind} study solves "
                          "for the weights of a linear model in closed form")
    x = np.asarray(splits.x_train, np.float64)
    return x.reshape(len(x), -1)


def standardize_columns(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(z, constant)``: x standardized per column (constant columns become 0) and the constant columns' mask."""
    sd = x.std(axis=0)
    constant = sd <= 1e-8 * max(float(np.abs(x).max()), 1.0)
    return (x - x.mean(axis=0)) / np.where(constant, 1.0, sd) * ~constant, constant


def path_target(splits, target: int) -> np.ndarray:
    """The one-vs-rest indicator of class ``target``, or the standardized regression target column ``target``."""
    from kreg.lab.errors import ConfigError

    y = np.asarray(splits.y_train)
    if splits.spec.num_classes:
        if target >= splits.spec.num_classes:
            raise ConfigError("study.target", target, f"a class index below {splits.spec.num_classes}")
        return (y.astype(int).reshape(-1) == target).astype(np.float64)
    y = y.reshape(len(y), -1).astype(np.float64)
    if target >= y.shape[1]:
        raise ConfigError("study.target", target, f"a target column below {y.shape[1]}")
    column = y[:, target]
    return (column - column.mean()) / max(column.std(), 1e-12)


def alpha_max(x: np.ndarray, y: np.ndarray) -> float:
    """The smallest lasso alpha (scikit-learn's objective) whose solution is all zero: max |x_c' y_c| / n."""
    xc, yc = x - x.mean(axis=0), y - y.mean()
    return float(np.max(np.abs(xc.T @ yc)) / len(y))


def alpha_grid(top: float, eps: float, count: int) -> np.ndarray:
    """``count`` alphas from ``top`` down to ``eps * top``, evenly spaced in log; the first nudged 0.1% above top
    (at exactly ``alpha_max`` the all-zero lasso is a tie that float32 rounding can break either way)."""
    grid = top * np.geomspace(1.0, eps, count)
    grid[0] *= 1.001
    return grid


def lipschitz(x: np.ndarray, l2: float) -> float:
    """The Lipschitz constant of the gradient of mean (y - x w - b)^2 + l2 ||w||^2 in (w, b), x centred."""
    xc = x - x.mean(axis=0)
    top = float(np.linalg.eigvalsh(xc.T @ xc / len(x))[-1])
    return 2.0 * max(top, 1.0) + 2.0 * l2  # 2 * 1: the bias's own curvature (centred x: it decouples)


def reference_path(x: np.ndarray, y: np.ndarray, alphas: np.ndarray, l1_ratio: float) -> np.ndarray:
    """Coefficients (alphas, features) at each alpha: scikit-learn's ``enet_path`` (``lasso_path`` at
    l1_ratio 1), or for l1_ratio 0 the closed-form ridge with the same alpha (penalty (alpha/2)||w||^2 on
    scikit-learn's objective: ``ridge(x, y, alpha)`` on the mean loss)."""
    if l1_ratio == 0:
        return np.stack([ridge(x, y[:, None], a)[:, 0] for a in alphas])
    from sklearn.linear_model import enet_path, lasso_path

    xc, yc = x - x.mean(axis=0), y - y.mean()  # the paths fit no intercept: centre, as Keras' bias does
    order = np.argsort(alphas)[::-1]  # the paths want decreasing alphas (they warm-start down the grid)
    if l1_ratio == 1:
        _, coefs, _ = lasso_path(xc, yc, alphas=alphas[order], tol=1e-10, max_iter=100_000)
    else:
        _, coefs, _ = enet_path(xc, yc, l1_ratio=l1_ratio, alphas=alphas[order], tol=1e-10, max_iter=100_000)
    out = np.empty((len(alphas), x.shape[1]))
    out[order] = coefs.T
    return out


def relative_error(w: np.ndarray, reference: np.ndarray) -> float:
    """||w - reference|| / ||reference||; 0 when both are all zero, inf when only the reference is."""
    norm = float(np.linalg.norm(reference))
    if norm == 0.0:
        return 0.0 if not np.any(w) else float("inf")
    return float(np.linalg.norm(w - reference) / norm)


def fit_proximal(x: np.ndarray, y: np.ndarray, alphas: np.ndarray, l1_ratio: float, *, steps: int = 1000,
                 seed: int = 0) -> np.ndarray:
    """A Keras ``Dense(1)`` trained by ISTA along ``alphas`` (in order, warm-started); its kernels (alphas, features).

    Full-batch plain SGD on ``mse`` + ``L2(alpha * (1 - l1_ratio))`` at rate ``1 / L``, then
    ``SoftThreshold(lr * 2 * alpha * l1_ratio)`` after every step: the proximal gradient method for the
    objective in the module docstring.
    """
    import keras
    import tensorflow as tf  # the lab's input pipelines are tf.data, as a search's are

    from kreg.constraints import SoftThreshold

    keras.utils.set_random_seed(seed)
    full = tf.data.Dataset.from_tensors((x.astype(np.float32), y.astype(np.float32)[:, None]))
    kernel, bias = np.zeros((x.shape[1], 1), np.float32), np.zeros(1, np.float32)
    out = []
    with _quiet_retracing():  # a fresh model per alpha must trace its own functions
        for alpha in alphas:
            l2 = alpha * (1.0 - l1_ratio)
            lr = 1.0 / lipschitz(x, l2)
            threshold = SoftThreshold(lr * 2.0 * alpha * l1_ratio) if l1_ratio else None
            dense = keras.layers.Dense(1, kernel_regularizer=keras.regularizers.L2(l2) if l2 > 0 else None,
                                       kernel_constraint=threshold)
            inputs = keras.Input((x.shape[1],))
            model = keras.Model(inputs, dense(inputs))
            model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse", steps_per_execution=steps)
            dense.set_weights([kernel, bias])  # warm start from the stronger alpha
            model.fit(full.repeat(steps), epochs=1, verbose=0, shuffle=False)
            kernel, bias = (keras.ops.convert_to_numpy(v) for v in (dense.kernel, dense.bias))
            out.append(kernel[:, 0].astype(np.float64))
    # no keras.backend.clear_session(): these one-layer models are tiny, and each call's garbage collection
    # costs more (about half a second) than an alpha's training
    return np.stack(out)


class SparsityPaths(Study):
    kind = "sparsity_paths"
    claim = "L1 sets coefficients exactly to zero as its strength grows, L2 shrinks them without zeros"
    options = {"alphas": 12, "eps": 1e-3, "l1_ratio": 0.5, "steps": 1000, "target": 0}

    def check(self, alphas=12, eps=1e-3, l1_ratio=0.5, steps=1000, target=0):
        from kreg.lab.errors import ConfigError

        def integer(value):
            return isinstance(value, int) and not isinstance(value, bool)

        if not integer(alphas) or alphas < 3:
            raise ConfigError("study.alphas", alphas, "an integer of at least 3 (the number of strengths)")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
            raise ConfigError("study.eps", eps, "a float in (0, 1): the weakest alpha over the strongest")
        if isinstance(l1_ratio, bool) or not isinstance(l1_ratio, (int, float)) or not 0 < l1_ratio < 1:
            raise ConfigError("study.l1_ratio", l1_ratio, "the elastic net's L1 share, a float in (0, 1)")
        if not integer(steps) or steps < 50:
            raise ConfigError("study.steps", steps, "an integer of at least 50 (proximal steps per alpha)")
        if not integer(target) or target < 0:
            raise ConfigError("study.target", target, "a non-negative integer (a class, or a target column)")
        return {"alphas": alphas, "eps": float(eps), "l1_ratio": float(l1_ratio), "steps": steps, "target": target}

    def run(self, ctx, alphas=12, eps=1e-3, l1_ratio=0.5, steps=1000, target=0):
        from kreg.lab.plan import RegularizationPlan

        splits = ctx.search.splits
        x, constant = standardize_columns(flat_train(splits, self.kind))
        y = path_target(splits, target)
        xc = x - x.mean(axis=0)
        top_l2 = float(np.linalg.eigvalsh(xc.T @ xc / len(x))[-1])
        grids = {"l1": alpha_grid(alpha_max(x, y), eps, alphas),
                 "elastic_net": alpha_grid(alpha_max(x, y) / l1_ratio, eps, alphas),  # enet's all-zero alpha
                 "l2": top_l2 * np.geomspace(1.0, eps, alphas)}
        ratios = {"l1": 1.0, "elastic_net": l1_ratio, "l2": 0.0}
        what = ("one-vs-rest class " if splits.spec.num_classes else "target column ") + str(target)
        ctx.echo(f"  linear model on {what}: {x.shape[1]} features ({int(constant.sum())} constant), "
                 f"{len(y)} training examples, {alphas} alphas per penalty, {steps} ISTA steps each")
        points, paths = [], {}
        for penalty in PENALTIES:
            grid, r = grids[penalty], ratios[penalty]
            keras_w = fit_proximal(x, y, grid, r, steps=steps, seed=ctx.search.seed)
            reference = reference_path(x, y, grid, r)
            fine = np.geomspace(grid[0], grid[-1], 60)
            paths[penalty] = (grid, keras_w, fine, reference_path(x, y, fine, r))
            for alpha, w, ref in zip(grid, keras_w, reference):
                point = {"penalty": penalty, "alpha": float(alpha), "l1_ratio": r,
                         "nonzero": int(np.count_nonzero(w)), "nonzero_reference": int(np.count_nonzero(ref)),
                         "zeros": int(np.sum((w == 0) & ~constant)),  # exact zeros among the varying features
                         "norm": float(np.linalg.norm(w)), "norm_reference": float(np.linalg.norm(ref)),
                         "relative_error": relative_error(w, ref),
                         "support_agreement": float(np.mean((w == 0) == (ref == 0)))}
                points.append(point)
                plan = {"l1": RegularizationPlan(proximal_l1=2 * alpha),
                        "elastic_net": RegularizationPlan(proximal_l1=2 * alpha * r, l2=alpha * (1 - r)),
                        "l2": RegularizationPlan(l2=alpha)}[penalty]  # the strengths on Keras' mean loss
                ctx.log_point(f"{penalty}-alpha{alpha:.3g}", plan, point)
            rows = [p for p in points if p["penalty"] == penalty]
            ctx.echo(f"  {penalty:11s} alpha {grid[0]:.3g} -> {grid[-1]:.3g}: nonzero "
                     f"{rows[0]['nonzero']} -> {rows[-1]['nonzero']} (reference {rows[0]['nonzero_reference']} -> "
                     f"{rows[-1]['nonzero_reference']}), |w| {rows[0]['norm']:.4f} -> {rows[-1]['norm']:.4f}; "
                     f"max relative error {max(p['relative_error'] for p in rows):.2e}, support agreement "
                     f"{min(p['support_agreement'] for p in rows):.3f}")
        figures, held = self.judge(points, int((~constant).sum()))
        l1, l2 = [p for p in points if p["penalty"] == "l1"], [p for p in points if p["penalty"] == "l2"]
        verdict = (f"L1 by proximal steps: {l1[0]['zeros']} of {figures['varying_features']:g} varying coefficients "
                   f"exactly zero at the strongest alpha, {l1[-1]['zeros']} at the weakest; lasso_path and "
                   f"enet_path (l1_ratio {l1_ratio:g}) matched to a relative error of "
                   f"{figures['max_relative_error_l1']:.1e} and {figures['max_relative_error_elastic_net']:.1e}, "
                   f"the zero pattern agreeing on "
                   f"{min(figures['support_agreement_l1'], figures['support_agreement_elastic_net']):.1%} of "
                   f"coefficients; L2 shrank |w| from {l2[-1]['norm']:.3g} to {l2[0]['norm']:.3g} with "
                   f"{figures['max_zeros_l2']:g} exact zeros, "
                   f"{figures['max_relative_error_l2']:.1e} from the closed-form ridge")
        return points, figures, held, verdict, [self.plot(paths, constant, l1_ratio,
                                                          ctx.out_dir / "sparsity_paths.png")]

    @staticmethod
    def judge(points, varying: int, tolerance: float = 0.02) -> tuple[dict, bool]:
        """Figures and whether the claim held: L1 and elastic net zero coefficients (more as alpha grows)
        where their references do, L2 none, each penalty within ``tolerance`` of its reference."""
        figures, by = {"varying_features": varying}, {}
        for penalty in PENALTIES:
            rows = sorted((p for p in points if p["penalty"] == penalty), key=lambda p: p["alpha"])
            by[penalty] = rows
            figures[f"max_relative_error_{penalty}"] = max(p["relative_error"] for p in rows)
            figures[f"support_agreement_{penalty}"] = float(np.mean([p["support_agreement"] for p in rows]))
            figures[f"max_zeros_{penalty}"] = max(p["zeros"] for p in rows)
            figures[f"zeros_strongest_{penalty}"] = rows[-1]["zeros"]
            figures[f"zeros_weakest_{penalty}"] = rows[0]["zeros"]
        l1, l2 = by["l1"], by["l2"]
        sparse = all(by[p][-1]["zeros"] > by[p][0]["zeros"] and figures[f"support_agreement_{p}"] >= 0.99
                     for p in ("l1", "elastic_net"))
        # L2 shrinks every coefficient towards zero (its norm falls as alpha grows) and zeroes none
        shrinks = figures["max_zeros_l2"] == 0 and all(a["norm"] > b["norm"] for a, b in zip(l2, l2[1:]))
        close = all(figures[f"max_relative_error_{p}"] < tolerance for p in PENALTIES)
        figures["norm_weakest_l2"], figures["norm_strongest_l2"] = l2[0]["norm"], l2[-1]["norm"]
        figures["nonzero_weakest_l1"], figures["nonzero_strongest_l1"] = l1[0]["nonzero"], l1[-1]["nonzero"]
        return figures, bool(sparse and shrinks and close)

    @staticmethod
    def plot(paths, constant, l1_ratio, path):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(12, 8))
        axes = fig.subplots(2, 2).ravel()
        titles = {"l1": "L1 (lasso): scikit-learn lasso_path",
                  "elastic_net": f"elastic net (l1_ratio {l1_ratio:g}): enet_path",
                  "l2": "L2 (ridge): closed form"}
        varying = np.flatnonzero(~constant)
        for ax, penalty in zip(axes, PENALTIES):
            grid, keras_w, fine, reference = paths[penalty]
            for i, j in enumerate(varying):
                ax.plot(fine, reference[:, j], color=f"C{i % 10}", lw=0.8, alpha=0.7)
                ax.plot(grid, keras_w[:, j], "o", color=f"C{i % 10}", ms=2.5, alpha=0.9)
            ax.set_xscale("log")
            ax.axhline(0.0, color="black", lw=0.6)
            ax.set_xlabel("alpha (scikit-learn's objective; log scale)")
            ax.set_ylabel("coefficient")
            ax.set_title(f"{titles[penalty]} (lines), Keras (markers)", fontsize=10)
            ax.grid(alpha=0.3)
        ax = axes[3]  # the claim in one panel: exact zeros against strength
        for color, penalty in zip(("tab:red", "tab:purple", "tab:blue"), PENALTIES):
            grid, keras_w, fine, reference = paths[penalty]
            ax.plot(fine, [np.sum((w == 0) & ~constant) for w in reference], color=color, lw=1,
                    label=f"{penalty} reference")
            ax.plot(grid, [np.sum((w == 0) & ~constant) for w in keras_w], "o", color=color, ms=4,
                    label=f"{penalty} Keras ({'plain SGD' if penalty == 'l2' else 'SGD + proximal step'})")
        ax.set_xscale("log")
        ax.set_xlabel("alpha (log scale; each penalty on its own grid)")
        ax.set_ylabel(f"exactly zero coefficients (of {len(varying)} varying)")
        ax.set_title("exact zeros: L1 and elastic net reach them, L2 never does", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return save_figure(fig, path)
