"""Ensemble size: the error of an average of k members against the seeds' V/k + (k-1)C/k.

For members with prediction errors e_i (prediction minus target: class
probabilities minus the one-hot label, or the regression output minus the
target, per test example), the squared error of their average is exactly
V/k + (k-1)C/k, where V is the members' mean squared error and C the mean
of e_i . e_j over pairs of different members. Errors that are independent
(C near 0) fall as 1/k; perfectly correlated ones (C = V) do not fall at all.
The study trains K members that differ by their seed only and measures both
sides for k = 1..K on the test split.
"""

from __future__ import annotations

import numpy as np

from kreg.lab.studies.base import Study, inference_outputs, probabilities, save_figure


def decomposition(errors: np.ndarray) -> dict:
    """For errors of shape (k, n, d): the averaged prediction's MSE, V, C and V/k + (k-1)C/k."""
    k = errors.shape[0]
    mean_error = errors.mean(axis=0)
    measured = float(np.mean(np.sum(mean_error ** 2, axis=-1)))
    gram = np.einsum("ind,jnd->ij", errors, errors) / errors.shape[1]  # mean over examples of e_i . e_j
    v = float(np.trace(gram) / k)
    c = float((gram.sum() - np.trace(gram)) / (k * (k - 1))) if k > 1 else 0.0
    return {"measured": measured, "V": v, "C": c, "predicted": v / k + (k - 1) * c / k}


class EnsembleSize(Study):
    kind = "ensemble_size"
    claim = "an average of k members has squared error V/k + (k-1)C/k"
    options = {"members": 5}

    def check(self, members=5):
        from kreg.lab.errors import ConfigError

        if isinstance(members, bool) or not isinstance(members, int) or members < 2:
            raise ConfigError("study.members", members, "an integer of at least 2")
        return {"members": members}

    def run(self, ctx, members=5):
        splits, task = ctx.search.splits, ctx.search.task
        plan = ctx.plan if ctx.plan.active_techniques() else ctx.baseline
        classification = splits.spec.num_classes is not None
        errors, hits = [], []
        for i in range(members):
            m = ctx.train(plan, point=f"member-{i + 1}", seed=ctx.search.seed + 1000 * i, keep_model=True)
            outputs = inference_outputs(m["model"], splits.x_test)
            if classification:
                p = probabilities(outputs, m["activation"])
                target = np.eye(p.shape[1])[np.asarray(splits.y_test).astype(int).reshape(-1)]
                errors.append(p - target)
                hits.append(p)
            else:
                errors.append(np.asarray(outputs, np.float64).reshape(len(splits.y_test), -1)
                              - np.asarray(splits.y_test, np.float64).reshape(len(splits.y_test), -1))
            ctx.echo(f"  member {i + 1}/{members}: test {ctx.metric} {m[f'test_{ctx.metric}']:.4f}")
            import keras

            keras.backend.clear_session()
        errors = np.stack(errors)
        points = []
        for k in range(1, members + 1):
            d = decomposition(errors[:k])
            point = {"k": k, **d}
            if classification:
                y = np.asarray(splits.y_test).astype(int).reshape(-1)
                point["accuracy"] = float(np.mean(np.mean(hits[:k], axis=0).argmax(axis=1) == y))
            points.append(point)
            ctx.echo(f"  k={k}: measured {d['measured']:.6f}  V/k+(k-1)C/k {d['predicted']:.6f}"
                     + (f"  accuracy {point['accuracy']:.4f}" if classification else ""))
        worst = max(abs(p["measured"] - p["predicted"]) for p in points)
        last = points[-1]
        # The claim is the formula; and since C <= V, the average never does worse than the members do on average.
        held = worst <= 1e-9 * max(1.0, last["V"]) and last["measured"] <= last["V"] + 1e-12
        figures = {"V": last["V"], "C": last["C"], "error_k1": points[0]["measured"], "error_kmax": last["measured"],
                   "max_abs_difference": worst, "members": members}
        figures["correlation"] = last["C"] / last["V"] if last["V"] > 0 else float("nan")
        verdict = (f"{members} members: V {last['V']:.5f}, C {last['C']:.5f} (C/V {figures['correlation']:.2f}); "
                   f"squared error of the average {last['measured']:.5f} against {last['V']:.5f} for one member "
                   f"on average; V/k + (k-1)C/k matches for every k within {worst:.1e}")
        return points, figures, held, verdict, [self.plot(points, ctx.out_dir / "ensemble_size.png")]

    @staticmethod
    def plot(points, path):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 3.8))
        ax = fig.subplots()
        ks = [p["k"] for p in points]
        ax.plot(ks, [p["measured"] for p in points], "o-", label="measured (squared error of the average)")
        ax.plot(ks, [p["predicted"] for p in points], "x--", label="V/k + (k-1)C/k")
        ax.axhline(points[-1]["C"], color="grey", lw=0.8, ls=":", label="C (the floor as k grows)")
        ax.set_xticks(ks)
        ax.set_xlabel("members k")
        ax.set_ylabel("squared error (test)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return save_figure(fig, path)
