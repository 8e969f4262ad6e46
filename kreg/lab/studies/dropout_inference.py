"""Dropout at inference: the expected activation is kept by scaling, and MC dropout's spread flags errors.

Keras' ``Dropout`` is inverted dropout: in training it zeroes a unit with
probability p and multiplies the survivors by 1/(1-p), so the *expected*
training-time activation equals the inference-time one and nothing needs
rescaling at inference (the seeds' "weight scaling" rule, moved into
training). The study trains the model with dropout at rate p (the plan's, or
``rate``), then (1) feeds the test inputs through the first ``Dropout`` layer
``samples`` times in training mode and compares the mean activation with the
inference activation (and with (1-p) times it, what dropout without the
scaling would give); (2) runs the whole model ``samples`` times with dropout
on (MC dropout) and checks that test examples whose predicted probabilities
spread more (the standard deviations over the passes, summed over classes)
are misclassified more often. (The spread of the predicted class's
probability alone is a poorer signal: an undertrained model's wrong guesses
are often uniformly unsure, with little spread in that one class.)
"""

from __future__ import annotations

import warnings

import numpy as np

from kreg.lab.studies.base import Study, probabilities, save_figure


def spread_auroc(spread: np.ndarray, wrong: np.ndarray) -> float:
    """P(spread of a misclassified example > spread of a correct one), ties counting half (the AUROC)."""
    bad, good = spread[wrong], spread[~wrong]
    if len(bad) == 0 or len(good) == 0:
        return float("nan")
    greater = (bad[:, None] > good[None, :]).mean()
    ties = (bad[:, None] == good[None, :]).mean()
    return float(greater + 0.5 * ties)


class DropoutInference(Study):
    kind = "dropout_inference"
    claim = "inverted dropout keeps the expected activation at inference, and MC dropout's spread flags errors"
    options = {"rate": 0.3, "samples": 100}

    def check(self, rate=0.3, samples=100):
        from kreg.lab.errors import ConfigError

        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < 1:
            raise ConfigError("study.rate", rate, "a dropout rate in (0, 1)")
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 10:
            raise ConfigError("study.samples", samples, "an integer of at least 10")
        return {"rate": float(rate), "samples": samples}

    def run(self, ctx, rate=0.3, samples=100):
        import keras

        from kreg.lab.errors import ConfigError
        from kreg.lab.plan import RegularizationPlan

        splits = ctx.search.splits
        if not splits.spec.num_classes:
            raise ConfigError("study", self.kind, "a classification task (the spread is that of class probabilities)")
        values = ctx.plan.to_dict()
        values["dropout"] = values.get("dropout") or rate
        plan = RegularizationPlan.from_dict(values)
        m = ctx.train(plan, point=f"dropout-{values['dropout']:g}", keep_model=True)
        model, p = m["model"], float(values["dropout"])
        layer = next((l for l in model.layers if isinstance(l, keras.layers.Dropout)), None)
        if layer is None:
            raise ConfigError("plan.dropout", p, "a model the plan puts a Dropout layer into (dense hidden layers)")
        x = splits.x_test
        inputs = keras.Model(model.inputs[0], layer.input)
        h = keras.ops.convert_to_numpy(inputs(x, training=False))
        mean = np.mean([keras.ops.convert_to_numpy(layer(h, training=True)) for _ in range(samples)], axis=0)
        inference = keras.ops.convert_to_numpy(layer(h, training=False))
        total = float(np.abs(inference).sum())
        ratio = float(mean.sum() / inference.sum()) if inference.sum() else float("nan")
        deviation = float(np.abs(mean - inference).sum() / total)
        unscaled = float(np.abs((1 - p) * mean - inference).sum() / total)  # dropout without the 1/(1-p)
        with warnings.catch_warnings():  # Keras: a list of one input expected, an array given (same thing)
            warnings.filterwarnings("ignore", message="The structure of `inputs`")
            outputs = np.stack([probabilities(keras.ops.convert_to_numpy(model(x, training=True)),
                                              m["activation"]) for _ in range(samples)])
        mc_mean, mc_std = outputs.mean(axis=0), outputs.std(axis=0)
        predicted = mc_mean.argmax(axis=1)
        y = np.asarray(splits.y_test).astype(int).reshape(-1)
        wrong = predicted != y
        spread = mc_std.sum(axis=1)
        auroc = spread_auroc(spread, wrong)
        order = np.argsort(spread)
        half = len(order) // 2
        error_low, error_high = float(wrong[order[:half]].mean()), float(wrong[order[half:]].mean())
        keras.backend.clear_session()
        figures = {"rate": p, "mean_to_inference_ratio": ratio, "relative_deviation": deviation,
                   "relative_deviation_unscaled": unscaled, "mc_accuracy": float(1 - wrong.mean()),
                   "spread_auroc": auroc, "error_low_spread": error_low, "error_high_spread": error_high}
        ctx.echo(f"  dropout {p:g}: mean training-mode activation / inference activation {ratio:.4f} "
                 f"(deviation {deviation:.2%}; without the 1/(1-p) scaling {unscaled:.2%})")
        ctx.echo(f"  MC dropout ({samples} passes): accuracy {1 - wrong.mean():.4f}; error rate {error_low:.3f} in the "
                 f"less uncertain half, {error_high:.3f} in the more uncertain half; spread AUROC {auroc:.3f}")
        held = abs(ratio - 1) < 0.02 and deviation < unscaled / 2 and (wrong.sum() == 0 or auroc > 0.5)
        verdict = (f"activation kept: mean/inference {ratio:.3f} (unscaled dropout would give {1 - p:.2f}); "
                   f"errors {error_high:.3f} among the more uncertain half against {error_low:.3f} "
                   f"(spread AUROC {auroc:.2f})")
        points = [{"spread": float(s), "wrong": bool(w)} for s, w in zip(spread, wrong)]
        return points, figures, held, verdict, [self.plot(spread, wrong, ctx.out_dir / "dropout_inference.png")]

    @staticmethod
    def plot(spread, wrong, path):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 3.8))
        ax = fig.subplots()
        bins = np.linspace(0, max(float(spread.max()), 1e-6), 25)
        ax.hist(spread[~wrong], bins=bins, alpha=0.6, density=True, label="correct")
        if wrong.any():
            ax.hist(spread[wrong], bins=bins, alpha=0.6, density=True, label="misclassified")
        ax.set_xlabel("MC dropout spread: std of the class probabilities over the passes, summed")
        ax.set_ylabel("density (test examples)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return save_figure(fig, path)
