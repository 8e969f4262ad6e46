"""Label smoothing and calibration: the expected calibration error (ECE) against the smoothing strength.

A network trained to zero training loss on hard labels grows over-confident:
its predicted probabilities run ahead of its accuracy. Label smoothing (the
target puts 1 - eps on the class and eps spread over all classes) caps how
confident the fitted outputs can be. The study trains the model at each
strength (0 = the baseline, with the plan's other techniques), measures the
test ECE (15 equal-width confidence bins, as ``kreg.metrics`` computes it),
accuracy and NLL, and draws the reliability diagram of each strength. The
claim held when some strength above 0 calibrates better than none.
"""

from __future__ import annotations

import numpy as np

from kreg.lab.studies.base import Study, inference_outputs, probabilities, save_figure


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per confidence bin: mean confidence, accuracy, count; and the ECE (count-weighted |accuracy - confidence|)."""
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    correct = predicted == y
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    conf, acc, count = np.zeros(bins), np.zeros(bins), np.zeros(bins)
    for b in range(bins):
        mask = index == b
        count[b] = mask.sum()
        if count[b]:
            conf[b], acc[b] = confidence[mask].mean(), correct[mask].mean()
    ece = float(np.sum(count * np.abs(acc - conf)) / len(y))
    return conf, acc, count, ece


class LabelSmoothing(Study):
    kind = "label_smoothing"
    claim = "label smoothing lowers the expected calibration error of an over-confident model"
    options = {"strengths": (0.0, 0.05, 0.1, 0.2, 0.3)}

    def check(self, strengths=(0.0, 0.05, 0.1, 0.2, 0.3)):
        from kreg.lab.errors import ConfigError

        values = strengths if isinstance(strengths, (list, tuple)) else (strengths,)
        if len(values) < 2 or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and 0 <= s < 1
                                      for s in values) or 0 not in [float(s) for s in values]:
            raise ConfigError("study.strengths", strengths, "two or more strengths in [0, 1), 0 among them")
        return {"strengths": tuple(sorted(float(s) for s in values))}

    def run(self, ctx, strengths=(0.0, 0.05, 0.1, 0.2, 0.3)):
        import keras

        from kreg.lab.errors import ConfigError
        from kreg.lab.plan import RegularizationPlan

        splits = ctx.search.splits
        if not splits.spec.num_classes:
            raise ConfigError("study", self.kind, "a classification task")
        y = np.asarray(splits.y_test).astype(int).reshape(-1)
        base = ctx.plan.to_dict()
        points, curves = [], {}
        for eps in strengths:
            plan = RegularizationPlan.from_dict({**base, "label_smoothing": eps or None})
            m = ctx.train(plan, point=f"smoothing-{eps:g}", keep_model=True)
            probs = probabilities(inference_outputs(m["model"], splits.x_test), m["activation"])
            conf, acc, count, ece = reliability(probs, y)
            curves[eps] = (conf, acc, count)
            nll = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0))))
            point = {"strength": eps, "ece": ece, "accuracy": float((probs.argmax(axis=1) == y).mean()),
                     "nll": nll, "mean_confidence": float(probs.max(axis=1).mean())}
            points.append(point)
            ctx.echo(f"  smoothing {eps:<5g} test ECE {ece:.4f}  accuracy {point['accuracy']:.4f}  "
                     f"NLL {nll:.4f}  mean confidence {point['mean_confidence']:.4f}")
            keras.backend.clear_session()
        zero = next(p for p in points if p["strength"] == 0.0)
        best = min((p for p in points if p["strength"] > 0), key=lambda p: p["ece"])
        held = best["ece"] < zero["ece"]
        figures = {"ece_baseline": zero["ece"], "ece_best": best["ece"], "best_strength": best["strength"],
                   "accuracy_baseline": zero["accuracy"], "accuracy_at_best": best["accuracy"],
                   "confidence_minus_accuracy_baseline": zero["mean_confidence"] - zero["accuracy"]}
        verdict = (f"test ECE {zero['ece']:.4f} without smoothing (confidence {zero['mean_confidence']:.3f} for "
                   f"accuracy {zero['accuracy']:.3f}), {best['ece']:.4f} at {best['strength']:g}")
        return points, figures, held, verdict, [self.plot(points, curves, ctx.out_dir / "label_smoothing.png")]

    @staticmethod
    def plot(points, curves, path):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 3.8))
        ax_ece, ax_rel = fig.subplots(1, 2)
        ax_ece.plot([p["strength"] for p in points], [p["ece"] for p in points], "o-")
        ax_ece.set_xlabel("label smoothing")
        ax_ece.set_ylabel("test ECE (15 bins)")
        ax_ece.grid(alpha=0.3)
        ax_rel.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":", label="perfect calibration")
        for eps, (conf, acc, count) in curves.items():
            used = count > 0
            ax_rel.plot(conf[used], acc[used], "o-", ms=3, label=f"smoothing {eps:g}")
        ax_rel.set_xlabel("confidence (mean, per bin)")
        ax_rel.set_ylabel("accuracy (per bin)")
        ax_rel.set_title("reliability diagram (test)")
        ax_rel.grid(alpha=0.3)
        ax_rel.legend(fontsize=7)
        return save_figure(fig, path)
