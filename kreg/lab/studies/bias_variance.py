"""Bias-variance decomposition: bootstrap retrains of the baseline and the plan, their test predictions split.

The claim (seeds): regularization restricts the model, so it raises (or
keeps) the bias, and it stabilizes the predictions, so it lowers the
variance. The study trains each of the baseline and the plan ``rounds``
times, round r on the bootstrap resample r of the training split (the same
resamples for both, each round its own seed: the variance counts the
initialization as well as the data), and decomposes the test predictions.

Regression (squared loss, in the standardized targets the model trains on;
``y_r(x)`` the prediction of round r, ``m(x)`` their mean over rounds)::

    mean_r (y_r - y)^2  =  (m - y)^2  +  mean_r (y_r - m)^2
       expected error      bias^2+noise     variance

exactly, per example and so averaged over the test split (and over the
targets). One target per input cannot separate the noise from the bias:
``bias2_noise`` is their sum.

Classification (0-1 loss, Domingos 2000, noise-free form: the label is taken
as the optimal prediction). Main prediction ``m(x)``: the mode of the rounds'
predicted classes (ties: the lowest class). Per example: bias
``B = [m != y]``; variance ``V = mean_r [y_r != m]``; expected loss
``L = mean_r [y_r != y]``. Where ``B = 0``, ``L = V`` (unbiased variance adds
to the error); where ``B = 1``, ``L = 1 - mean_r [y_r = y]``: the rounds that
leave a wrong main prediction and land on the truth *lower* the error
(Domingos' ``c2 V`` with ``c2 = -P(y_r = y | y_r != m)``, ``= V`` for two
classes). Averaged over the test split::

    loss = bias + unbiased_variance - biased_variance = bias + net_variance

exactly, with ``unbiased_variance = mean (1 - B) V`` and
``biased_variance = mean B * mean_r [y_r = y]``. ``variance = mean V`` (the
disagreement with the main prediction, over all examples) is the stability
the claim is about; the net variance is reported beside it.
"""

from __future__ import annotations

import numpy as np

from kreg.lab.studies.base import Study, inference_outputs, probabilities, save_figure

# Compared with the baseline when the study has no plan (``kreg study bias_variance`` alone).
FALLBACK_PLAN = {"l2": 1e-2}


def main_prediction(predictions: np.ndarray, classes: int) -> np.ndarray:
    """The mode over rounds of ``predictions`` (rounds, n) class indices; ties go to the lowest class."""
    counts = np.stack([(predictions == c).sum(axis=0) for c in range(classes)], axis=1)
    return counts.argmax(axis=1)


def zero_one_decomposition(predictions: np.ndarray, y: np.ndarray, classes: int | None = None) -> dict:
    """Domingos' decomposition of the 0-1 loss of ``predictions`` (rounds, n) against labels ``y`` (n,)."""
    predictions = np.asarray(predictions).astype(int)
    y = np.asarray(y).reshape(-1).astype(int)
    classes = classes or int(max(predictions.max(), y.max())) + 1
    main = main_prediction(predictions, classes)
    bias = (main != y).astype(np.float64)
    variance = np.mean(predictions != main, axis=0)
    hits = np.mean(predictions == y, axis=0)
    loss = 1.0 - hits
    unbiased = float(np.mean((1.0 - bias) * variance))
    biased = float(np.mean(bias * hits))
    out = {"loss": float(loss.mean()), "bias": float(bias.mean()), "variance": float(variance.mean()),
           "unbiased_variance": unbiased, "biased_variance": biased, "net_variance": unbiased - biased,
           "main_error": float(bias.mean())}
    out["identity_error"] = abs(out["loss"] - (out["bias"] + out["net_variance"]))
    return out


def squared_decomposition(predictions: np.ndarray, y: np.ndarray) -> dict:
    """Expected squared error = bias^2 (+ noise) + variance: ``predictions`` (rounds, n, targets), ``y`` (n, targets)."""
    p = np.asarray(predictions, np.float64)
    p = p.reshape(p.shape[0], p.shape[1], -1)
    y = np.asarray(y, np.float64).reshape(p.shape[1], -1)
    main = p.mean(axis=0)
    out = {"loss": float(np.mean((p - y) ** 2)), "bias2_noise": float(np.mean((main - y) ** 2)),
           "variance": float(np.mean((p - main) ** 2)), "main_error": float(np.mean((main - y) ** 2))}
    out["identity_error"] = abs(out["loss"] - (out["bias2_noise"] + out["variance"]))
    return out


class BiasVariance(Study):
    kind = "bias_variance"
    claim = "regularization lowers the variance of the predictions and raises (or keeps) their bias"
    options = {"rounds": 8}

    def check(self, rounds=8):
        from kreg.lab.errors import ConfigError

        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 3:
            raise ConfigError("study.rounds", rounds, "an integer of at least 3 (bootstrap retrains per plan)")
        return {"rounds": rounds}

    def run(self, ctx, rounds=8):
        import keras

        from kreg.lab.plan import RegularizationPlan

        splits, search = ctx.search.splits, ctx.search
        classification = splits.spec.num_classes is not None
        plan = ctx.plan
        if not plan.active_techniques():
            plan = RegularizationPlan.from_dict({**ctx.baseline.to_dict(), **FALLBACK_PLAN})
            ctx.echo(f"  no plan given: the baseline is compared with {plan.describe()}")
        y = np.asarray(splits.y_test)
        points, results = [], {}
        for label, p in (("baseline", ctx.baseline), ("plan", plan)):
            predictions = []
            for r in range(rounds):
                seed = search.seed + 1000 * r
                resampled = splits.bootstrap(seed)  # the same resamples (and initial weights) for both plans
                m = ctx.train(p, point=f"{label}-round{r + 1}", splits=resampled, seed=seed, keep_model=True)
                outputs = inference_outputs(m["model"], splits.x_test)
                predictions.append(probabilities(outputs, m["activation"]).argmax(axis=1) if classification
                                   else np.asarray(outputs, np.float64).reshape(len(y), -1))
                keras.backend.clear_session()
                points.append({"plan": label, "round": r + 1, "test": m[f"test_{ctx.metric}"]})
                ctx.echo(f"  {label:8s} round {r + 1}/{rounds}: test {ctx.metric} {m[f'test_{ctx.metric}']:.4f}")
            predictions = np.stack(predictions)
            results[label] = (zero_one_decomposition(predictions, y, splits.spec.num_classes) if classification
                              else squared_decomposition(predictions, y))
            ctx.echo(f"  {label:8s} " + "  ".join(f"{k} {v:.4f}" for k, v in results[label].items()
                                                  if k != "identity_error"))
        base, reg = results["baseline"], results["plan"]
        bias_key = "bias" if classification else "bias2_noise"
        worst = max(base["identity_error"], reg["identity_error"])
        lowers = reg["variance"] < base["variance"]
        keeps = reg[bias_key] >= base[bias_key]
        held = lowers and keeps and worst <= 1e-9
        figures = {f"{k}_{label}": v for label, d in results.items() for k, v in d.items()}
        figures.update({"rounds": rounds, "max_identity_error": worst,
                        "variance_change": reg["variance"] - base["variance"],
                        "bias_change": reg[bias_key] - base[bias_key]})
        loss_name = "expected 0-1 loss" if classification else "expected squared error (standardized targets)"
        bias_name = "bias" if classification else "bias^2+noise"
        verdict = (f"{rounds} bootstrap rounds each, {plan.describe()} against the baseline: variance "
                   f"{base['variance']:.4f} -> {reg['variance']:.4f} ({'lower' if lowers else 'not lower'}), "
                   f"{bias_name} {base[bias_key]:.4f} -> {reg[bias_key]:.4f} "
                   f"({'raised or kept' if keeps else 'lowered'}); {loss_name} {base['loss']:.4f} -> "
                   f"{reg['loss']:.4f}")
        if classification:
            verdict += (f"; net variance {base['net_variance']:.4f} -> {reg['net_variance']:.4f}; loss = bias + "
                        f"net variance within {worst:.1e}")
        else:
            verdict += f"; error = bias^2+noise + variance within {worst:.1e}"
        plot = self.plot(results, classification, plan.describe(), ctx.out_dir / "bias_variance.png")
        return points, figures, held, verdict, [plot]

    @staticmethod
    def plot(results, classification, plan_name, path):
        from matplotlib.figure import Figure

        if classification:
            parts = (("loss", "expected\n0-1 loss"), ("bias", "bias\n(main prediction\nwrong)"),
                     ("variance", "variance\n(disagreement with\nthe main prediction)"),
                     ("unbiased_variance", "unbiased\nvariance (+)"), ("biased_variance", "biased\nvariance (-)"),
                     ("net_variance", "net variance\n(loss - bias)"))
            ylabel = "test, averaged over examples"
        else:
            parts = (("loss", "expected\nsquared error"), ("bias2_noise", "bias^2 + noise"), ("variance", "variance"))
            ylabel = "test, standardized targets"
        fig = Figure(figsize=(2.0 + 1.5 * len(parts), 4.4))
        ax = fig.subplots()
        x = np.arange(len(parts))
        for key_, label, color, offset in (("baseline", "baseline", "tab:blue", -0.2),
                                           ("plan", f"plan: {plan_name}", "tab:orange", 0.2)):
            values = [results[key_][key] for key, _ in parts]
            bars = ax.bar(x + offset, values, 0.4, color=color, label=label)
            ax.bar_label(bars, [f"{v:.4f}" for v in values], fontsize=7, padding=2)
        ax.set_xticks(x, [name for _, name in parts], fontsize=8)
        ax.set_ylabel(ylabel)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.margins(y=0.15)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
        ax.set_title("bias-variance decomposition over bootstrap retrains", fontsize=10)
        return save_figure(fig, path)
