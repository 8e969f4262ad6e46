"""Noise equals L2: for a linear model, Gaussian input noise of variance s^2 acts as the penalty s^2 * sum(w^2).

The seeds' derivation, with kreg's scaling convention (the loss is the *mean*
squared error over examples, Keras' ``L2(l)`` adds ``l * sum(w^2)`` to it):

    E_e[(y - w.(x + e) - b)^2] = (y - w.x - b)^2 + s^2 * ||w||^2      for e ~ N(0, s^2 I)

so training with ``GaussianNoise(s)`` on the inputs minimises, in
expectation, the mean squared error plus ``L2(s^2)``: ridge regression with
``alpha = s^2`` on the mean loss (scikit-learn's ``Ridge(alpha)`` uses the
*summed* loss: its alpha is ``n * s^2``). The study fits a linear model to
the training split of the data (targets: the one-hot classes, or the
standardized regression targets) three ways for each noise level s: the
ridge solution in closed form, a Keras linear layer trained with
``GaussianNoise(s)`` (weights averaged over the last epochs, since every
step sees new noise), and a Keras linear layer trained with ``L2(s^2)``.
"""

from __future__ import annotations

import numpy as np

from kreg.lab.studies.base import Study, save_figure


def ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """argmin_w mean ||y - x w - b||^2 + alpha ||w||^2 (x, y centred inside): the weights, (features, outputs)."""
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
    n, d = xc.shape
    return np.linalg.solve(xc.T @ xc / n + alpha * np.eye(d), xc.T @ yc / n)


def fit_linear(x: np.ndarray, y: np.ndarray, *, noise: float = 0.0, l2: float = 0.0, steps: int = 3000,
               seed: int = 0, copies: int = 8) -> np.ndarray:
    """A Keras linear layer trained on the mean over examples of the summed squared error; its kernel.

    Full batches of ``copies`` noisy copies of the training set (every step averages more noise draws),
    Adam with a cosine-decayed rate, and the kernel averaged over the last third of the steps (each step
    sees new noise, so the last iterate alone wanders around the minimum of the expected loss).
    """
    import keras

    keras.utils.set_random_seed(seed)
    k = y.shape[1]
    inputs = keras.Input((x.shape[1],))
    h = keras.layers.GaussianNoise(noise, seed=seed)(inputs) if noise > 0 else inputs
    # Keras' "mse" averages over the k outputs as well: targets scaled by sqrt(k) make it the summed error
    # for the kernel W' = sqrt(k) W, and L2(l) on W' is l * k * ||W||^2: hence l / k below.
    dense = keras.layers.Dense(k, kernel_regularizer=keras.regularizers.L2(l2 / k) if l2 > 0 else None,
                               kernel_initializer="zeros")
    model = keras.Model(inputs, dense(h))
    rounds = 10
    per_round = steps // rounds
    schedule = keras.optimizers.schedules.CosineDecay(0.05, decay_steps=steps, alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse", steps_per_execution=per_round)
    import tensorflow as tf  # the lab's input pipelines are tf.data, as a search's are

    full = (np.tile(x, (copies, 1)).astype(np.float32), np.tile(y * np.sqrt(k), (copies, 1)).astype(np.float32))
    batches = tf.data.Dataset.from_tensors(full).repeat(per_round)  # one round: `per_round` full-batch steps
    kernels = []
    for round_ in range(rounds):
        model.fit(batches, epochs=1, verbose=0, shuffle=False)
        if round_ >= rounds - rounds // 3:
            kernels.append(keras.ops.convert_to_numpy(dense.kernel))
    return np.mean(kernels, axis=0) / np.sqrt(k)


def targets(splits) -> np.ndarray:
    y = np.asarray(splits.y_train)
    if splits.spec.num_classes:
        return np.eye(splits.spec.num_classes)[y.astype(int).reshape(-1)]
    y = y.reshape(len(y), -1).astype(np.float64)
    return (y - y.mean(axis=0)) / np.maximum(y.std(axis=0), 1e-12)


class NoiseAsL2(Study):
    kind = "noise_as_l2"
    claim = "Gaussian input noise of variance s^2 gives a linear model the weights of the L2 penalty s^2 * sum(w^2)"
    options = {"noise": (0.3, 0.6, 1.0), "steps": 3000}

    def check(self, noise=(0.3, 0.6, 1.0), steps=3000):
        from kreg.lab.errors import ConfigError

        values = noise if isinstance(noise, (list, tuple)) else (noise,)
        if not values or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0 for s in values):
            raise ConfigError("study.noise", noise, "one or more positive noise standard deviations")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 300:
            raise ConfigError("study.steps", steps, "an integer of at least 300")
        return {"noise": tuple(float(s) for s in values), "steps": steps}

    def run(self, ctx, noise=(0.3, 0.6, 1.0), steps=3000):
        from kreg.lab.plan import RegularizationPlan

        splits = ctx.search.splits
        x = np.asarray(splits.x_train, np.float64).reshape(len(splits.x_train), -1)
        y = targets(splits)
        ols = ridge(x, y, 1e-8)
        points = []
        for s in noise:
            w_ridge = ridge(x, y, s ** 2)
            w_noise = fit_linear(x.astype(np.float32), y.astype(np.float32), noise=s, steps=steps,
                                 seed=ctx.search.seed)
            w_l2 = fit_linear(x.astype(np.float32), y.astype(np.float32), l2=s ** 2, steps=steps,
                              seed=ctx.search.seed)
            norm = np.linalg.norm(w_ridge)
            point = {"noise": s, "alpha": s ** 2, "norm_ridge": float(norm), "norm_ols": float(np.linalg.norm(ols)),
                     "norm_noise": float(np.linalg.norm(w_noise)),
                     "noise_vs_ridge": float(np.linalg.norm(w_noise - w_ridge) / norm),
                     "l2_vs_ridge": float(np.linalg.norm(w_l2 - w_ridge) / norm),
                     "ols_vs_ridge": float(np.linalg.norm(ols - w_ridge) / norm)}
            points.append(point)
            ctx.log_point(f"noise-{s:g}", RegularizationPlan(input_noise=s), point)
            ctx.echo(f"  s={s:g} (L2 {s ** 2:.3g}): |w| ridge {norm:.4f}, noise-trained {point['norm_noise']:.4f}, "
                     f"OLS {point['norm_ols']:.4f}; noise vs ridge {point['noise_vs_ridge']:.2%}, "
                     f"L2-trained vs ridge {point['l2_vs_ridge']:.2%}, OLS vs ridge {point['ols_vs_ridge']:.2%}")
        worst = max(p["noise_vs_ridge"] for p in points)
        held = all(p["noise_vs_ridge"] < 0.05 and p["noise_vs_ridge"] < p["ols_vs_ridge"] / 4 for p in points)
        figures = {"max_noise_vs_ridge": worst, "max_l2_vs_ridge": max(p["l2_vs_ridge"] for p in points),
                   "min_ols_vs_ridge": min(p["ols_vs_ridge"] for p in points)}
        verdict = (f"noise-trained weights within {worst:.1%} of ridge with alpha = s^2 at every s "
                   f"({', '.join(f'{s:g}' for s in noise)}); unregularized weights are "
                   f"{figures['min_ols_vs_ridge']:.0%} or more away")
        return points, figures, held, verdict, [self.plot(points, ctx.out_dir / "noise_as_l2.png")]

    @staticmethod
    def plot(points, path):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 3.8))
        ax = fig.subplots()
        s = [p["noise"] for p in points]
        ax.plot(s, [p["norm_ridge"] for p in points], "o-", label="ridge, alpha = s^2 (closed form)")
        ax.plot(s, [p["norm_noise"] for p in points], "x--", label="trained with GaussianNoise(s)")
        ax.axhline(points[0]["norm_ols"], color="grey", ls=":", label="no regularization")
        ax.set_xlabel("input noise standard deviation s")
        ax.set_ylabel("||w|| (log scale)")
        ax.set_yscale("log")
        ax.set_xticks(s)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return save_figure(fig, path)
