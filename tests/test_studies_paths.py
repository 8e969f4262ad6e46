"""Issue 14 (paths and minima): sparsity paths against scikit-learn, early stopping against the ridge path,
batch size against sharpness; each logged to MLflow and read back, with the helper math checked in NumPy."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from kreg.lab.studies.early_stopping_l2 import Spectrum, log_steps, loglog_slope
from kreg.lab.studies.flat_minima import FlatMinima, apart, extremes, summarize
from kreg.lab.studies.sparsity_paths import (alpha_grid, alpha_max, reference_path, relative_error,
                                             standardize_columns)

SMALL = {"model_args": {"width": 16, "depth": 1}, "verbose": 0}


def _children(client, parent_id):
    experiment = client.get_run(parent_id).info.experiment_id
    return client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent_id}'", max_results=500)


# ------------------------------------------------------------------ sparsity paths: the math


def _regression(seed=0, n=120, d=8):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) @ (np.eye(d) + 0.3 * rng.normal(size=(d, d)))  # correlated features
    w = np.array([2.0, -1.5, 0.0, 0.0, 1.0, 0.0, 0.5, 0.0])[:d]
    return x, x @ w + 3.0 + 0.5 * rng.normal(size=n)


def test_reference_paths_follow_scikit_learns_estimators_and_alpha_max_zeroes_the_lasso():
    from sklearn.linear_model import ElasticNet, Lasso, Ridge

    x, y = _regression()
    top = alpha_max(x, y)
    grid = alpha_grid(top, 1e-2, 4)
    assert grid[0] == pytest.approx(1.001 * top) and grid[-1] == pytest.approx(1e-2 * top)
    lasso = reference_path(x, y, grid, 1.0)
    assert not lasso[0].any() and np.count_nonzero(lasso[1]) > 0  # all zero from alpha_max on, not below
    assert np.count_nonzero(Lasso(alpha=0.98 * top).fit(x, y).coef_) > 0  # alpha_max is the smallest such alpha
    for i, alpha in enumerate(grid):  # the same objective as scikit-learn's estimators (intercept fitted there)
        assert lasso[i] == pytest.approx(Lasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(x, y).coef_, abs=1e-6)
    enet = reference_path(x, y, grid, 0.3)
    reference = ElasticNet(alpha=grid[2], l1_ratio=0.3, tol=1e-12, max_iter=100_000).fit(x, y).coef_
    assert enet[2] == pytest.approx(reference, abs=1e-6)
    ridge = reference_path(x, y, grid, 0.0)  # (alpha / 2) ||w||^2 on the 1/(2n) objective: Ridge(n * alpha)
    assert ridge[1] == pytest.approx(Ridge(alpha=len(y) * grid[1]).fit(x, y).coef_, rel=1e-9)
    assert np.all(ridge != 0)


def test_standardized_columns_and_relative_error():
    x = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 4.0], [5.0, 5.0, 9.0]])
    z, constant = standardize_columns(x)
    assert constant.tolist() == [False, True, False]
    assert z[:, 1].tolist() == [0.0, 0.0, 0.0]
    assert z[:, [0, 2]].mean(axis=0) == pytest.approx([0, 0], abs=1e-12)
    assert z[:, [0, 2]].std(axis=0) == pytest.approx([1, 1])
    assert relative_error(np.array([1.0, 1.0]), np.array([1.0, 0.0])) == pytest.approx(1.0)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.array([0.0, 1e-9]), np.zeros(2)) == float("inf")  # a zero the reference has, missed


def test_sparsity_judgement():
    from kreg.lab.studies.sparsity_paths import SparsityPaths

    def rows(penalty, zeros, norms, error=1e-5, agreement=1.0):
        return [{"penalty": penalty, "alpha": a, "zeros": z, "nonzero": 10 - z, "norm": n, "relative_error": error,
                 "support_agreement": agreement} for a, z, n in zip((1.0, 0.1, 0.01), zeros, norms)]

    good = rows("l1", (10, 4, 0), (0, .5, 1)) + rows("elastic_net", (10, 5, 1), (0, .4, 1)) \
        + rows("l2", (0, 0, 0), (.1, .5, 1))
    figures, held = SparsityPaths.judge(good, 10)
    assert held and figures["zeros_strongest_l1"] == 10 and figures["zeros_weakest_l1"] == 0
    assert figures["norm_strongest_l2"] == 0.1 and figures["nonzero_weakest_l1"] == 10
    l2_zero = good[:6] + rows("l2", (1, 0, 0), (.1, .5, 1))  # one exact zero under L2: not held
    assert not SparsityPaths.judge(l2_zero, 10)[1]
    off = rows("l1", (10, 4, 0), (0, .5, 1), error=0.05) + good[3:]  # 5% from lasso_path: not held
    assert not SparsityPaths.judge(off, 10)[1]
    no_zeros = rows("l1", (0, 0, 0), (.1, .5, 1)) + good[3:]  # L1 without zeros: not held
    assert not SparsityPaths.judge(no_zeros, 10)[1]


def test_proximal_sgd_in_keras_is_ista_and_lands_on_the_lasso_path():
    """Keras' SGD + SoftThreshold(lr * 2 alpha) on the mean loss: scikit-learn's lasso, exact zeros included."""
    from kreg.lab.studies.sparsity_paths import fit_proximal

    x, y = _regression(1)
    x, _ = standardize_columns(x)
    grid = alpha_grid(alpha_max(x, y), 1e-2, 4)
    keras_w = fit_proximal(x, y, grid, 1.0, steps=400)
    reference = reference_path(x, y, grid, 1.0)
    for w, ref in zip(keras_w, reference):
        assert relative_error(w, ref) < 1e-4
        assert ((w == 0) == (ref == 0)).all()  # the same exact zeros
    assert np.count_nonzero(keras_w[0]) == 0 and np.count_nonzero(keras_w[1]) < np.count_nonzero(keras_w[-1])


def test_sparsity_paths_on_wine(tmp_path, wine_splits):
    import kreg

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = kreg.study("sparsity_paths", "mlp", "wine", alphas=3, eps=0.01, steps=400, target=1, tracking_uri=uri,
                        **SMALL)
    assert result.held, result.verdict
    assert [p["penalty"] for p in result.points] == ["l1"] * 3 + ["elastic_net"] * 3 + ["l2"] * 3
    l1 = [p for p in result.points if p["penalty"] == "l1"]
    l2 = [p for p in result.points if p["penalty"] == "l2"]
    assert l1[0]["nonzero"] == 0 and l1[-1]["zeros"] < l1[1]["zeros"]  # zeros grow with the strength
    assert all(p["zeros"] == 0 for p in l2) and l2[0]["norm"] < l2[-1]["norm"]  # L2: shrinks, never zero
    assert all(p["relative_error"] < 1e-3 and p["support_agreement"] == 1.0 for p in l1)
    # an independent reference: scikit-learn's Lasso on wine's class-1 indicator, features standardized
    from sklearn.linear_model import Lasso

    x, _ = standardize_columns(np.asarray(wine_splits.x_train, np.float64))  # the study's split (seed 0)
    y = (np.asarray(wine_splits.y_train) == 1).astype(float)
    coef = Lasso(alpha=l1[1]["alpha"], tol=1e-12, max_iter=100_000).fit(x, y).coef_
    assert l1[1]["norm"] == pytest.approx(np.linalg.norm(coef), rel=1e-3)
    assert l1[1]["nonzero"] == np.count_nonzero(coef) > 0
    client = MlflowClient(uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["kreg.study"] == "sparsity_paths" and parent.data.tags["kreg.held"] == "true"
    assert "exactly zero" in parent.data.tags["kreg.verdict"]
    assert parent.data.metrics["max_zeros_l2"] == 0 and parent.data.metrics["max_relative_error_l1"] < 1e-3
    assert parent.data.params["steps"] == "400"
    points = sorted(r.data.tags["kreg.point"] for r in _children(client, result.parent_run_id))
    assert len(points) == 9 and sum(p.startswith("elastic_net-alpha") for p in points) == 3
    assert [a.path for a in client.list_artifacts(result.parent_run_id)] == ["sparsity_paths.png"]


# ------------------------------------------------------------------ early stopping as L2: the math


def test_gradient_descent_and_ridge_in_closed_form_against_direct_computation():
    from kreg.lab.studies.noise_as_l2 import ridge

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(80, 5)) * [3.0, 1.0, 0.5, 0.2, 0.05], rng.normal(size=(80, 2))
    spectrum = Spectrum.of(x, y)
    assert spectrum.ridge(0.3) == pytest.approx(ridge(x, y, 0.3), rel=1e-10)
    lr = 1.0 / (2.0 * spectrum.lam[-1])
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
    w = np.zeros((5, 2))
    for t in range(1, 41):  # gradient descent on mean ||y - x W||^2, step by step
        w -= lr * 2.0 * xc.T @ (xc @ w - yc) / len(x)
        if t in (1, 7, 40):
            assert spectrum.gradient_descent(lr, t) == pytest.approx(w, rel=1e-9, abs=1e-12)


def test_nearest_ridge_recovers_the_alpha_of_a_ridge_solution_and_the_slope_of_a_power_law():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(60, 6)), rng.normal(size=(60, 3))
    spectrum = Spectrum.of(x, y)
    alpha, distance = spectrum.nearest_ridge(spectrum.ridge(0.37))
    assert alpha == pytest.approx(0.37, rel=1e-4) and distance < 1e-6
    far = spectrum.ridge(0.37) + 0.1 * rng.normal(size=(6, 3))  # off the path: a positive distance
    assert spectrum.nearest_ridge(far)[1] > 0.01
    t = np.array(log_steps(1000, 8))
    assert t[0] == 1 and t[-1] == 1000 and len(t) == 8
    assert loglog_slope(t, 3.0 / t) == pytest.approx(-1.0)
    assert loglog_slope(t, 2.0 * t ** 0.5) == pytest.approx(0.5)


def test_early_stopping_l2_on_wine(tmp_path):
    """Wine's 13 features are well conditioned: gradient descent converges to least squares after about
    1/(2 eta lambda_min) = 50 steps; the checkpoints past that are reported and left out of the fit."""
    import kreg

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = kreg.study("early_stopping_l2", "mlp", "wine", steps=300, checkpoints=8, tracking_uri=uri, **SMALL)
    f = result.figures
    assert 30 < f["converged_after"] < 80
    assert [p["converged"] for p in result.points] == [p["step"] > f["converged_after"] for p in result.points]
    early = [p for p in result.points if not p["converged"]]
    assert f["checkpoints_before_convergence"] == len(early) >= 4 and result.points[-1]["converged"]
    assert -1.25 < f["slope"] < -0.75  # alpha*(t) falls as 1/t before convergence...
    assert loglog_slope([p["step"] for p in result.points], [p["alpha_star"] for p in result.points]) < -1.25
    # ...and collapses after it (the iterate stops moving): why those checkpoints are left out
    assert 0.15 < f["alpha_star_eta_t_median"] < 0.6  # alpha* ~ c / (eta t), c near 1/2 on the mean loss
    assert f["max_keras_vs_closed_form"] < 1e-4  # Keras ran plain full-batch gradient descent
    assert f["max_ridge_vs_ols"] < 0.25 and f["median_ridge_vs_norm"] < 0.15 and result.held
    alphas = [p["alpha_star"] for p in result.points]
    assert all(a > b for a, b in zip(alphas, alphas[1:]))  # longer training: weaker equivalent L2
    assert "left out" in result.verdict
    client = MlflowClient(uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags["kreg.study"] == "early_stopping_l2" and parent.data.tags["kreg.held"] == "true"
    assert parent.data.metrics["slope"] == pytest.approx(f["slope"])
    children = _children(client, result.parent_run_id)
    assert sorted(r.data.tags["kreg.point"] for r in children) == sorted(f"step-{p['step']}" for p in result.points)
    assert all(r.data.tags["kreg.plan"].startswith("l2=") for r in children)
    assert [a.path for a in client.list_artifacts(result.parent_run_id)] == ["early_stopping_l2.png"]


def test_early_stopping_judgement_needs_checkpoints_before_convergence():
    from kreg.lab.studies.early_stopping_l2 import EarlyStoppingL2

    points = [{"step": t, "converged": t > 2, "alpha_star": 1.0 / t, "alpha_star_eta_t": 0.5, "ridge_vs_ols": 0.01,
               "ridge_vs_norm": 0.05, "keras_vs_closed_form": 0.0} for t in (1, 2, 4, 8)]
    figures, held, verdict = EarlyStoppingL2.judge(points, 0.5, 8, 2.5)
    assert not held and "only 2 checkpoint(s)" in verdict and "2.5 steps" in verdict
    for p in points:
        p["converged"] = False
    figures, held, verdict = EarlyStoppingL2.judge(points, 0.5, 8, 100.0)
    assert held and figures["slope"] == pytest.approx(-1.0)
    points[-1]["ridge_vs_ols"] = 0.5  # one iterate nearer least squares than the ridge path: not held
    assert not EarlyStoppingL2.judge(points, 0.5, 8, 100.0)[1]


def test_early_stopping_l2_from_the_command_line(tmp_path, capsys, monkeypatch):
    """`kreg study early_stopping_l2` on its default data (digits), options through --set; the store read back.
    In this process: a fresh one costs 10 s of imports, and test_studies.py runs `kreg study` in one already."""
    from kreg.lab.cli import main

    monkeypatch.setenv("KREG_HOME", str(tmp_path))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["study", "early_stopping_l2", "--set", "steps=200", "--set", "checkpoints=5",
                 "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert "HELD: alpha*(t) from t=1 to 200 steps" in out, out
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("kreg-studies")
    (parent,) = client.search_runs([exp.experiment_id], "tags.`kreg.role` = 'study'")
    assert parent.data.params["checkpoints"] == "5" and parent.data.params["steps"] == "200"
    assert -1.25 < parent.data.metrics["slope"] < -0.75
    assert len(_children(client, parent.info.run_id)) == 5


# ------------------------------------------------------------------ flat minima


def _point(batch, seed, sharp, adv, gap, lr=1e-3, reached=True, diverged=False):
    return {"batch_size": batch, "learning_rate": lr, "seed": seed, "noise_scale": lr / batch, "diverged": diverged,
            "reached": reached, "sharpness": sharp, "sharpness_adversarial": adv, "gap": gap, "test_gap": gap,
            "gap_loss": gap, "test": 0.9, "epochs": 10, "train_loss": 0.01}


def test_flat_minima_summary_and_judgement():
    points = [_point(16, 0, 0.1, 1.0, 0.01), _point(16, 1, 0.3, 1.2, 0.03),
              _point(256, 0, 0.5, 2.0, 0.05), _point(256, 1, 0.7, 2.2, 0.07)]
    rows = summarize(points)
    small, large = rows
    assert small["sharpness"] == pytest.approx(0.2) and small["sharpness_std"] == pytest.approx(np.std([.1, .3],
                                                                                                       ddof=1))
    quiet, noisy = extremes(rows)
    assert quiet["batch_size"] == 256 and noisy["batch_size"] == 16
    assert apart(large, small, "sharpness")  # 0.6 vs 0.2, each +- 0.14
    figures, held, verdict = FlatMinima.judge(rows, points, "accuracy", 0.02)
    assert held and figures["sharpness_large_batch"] == pytest.approx(0.6) and "least noisy" in verdict
    # the same runs, one of them short of the target: not compared at the same loss, so not held
    points[3]["reached"] = False
    figures, held, verdict = FlatMinima.judge(summarize(points), points, "accuracy", 0.02)
    assert not held and "NOT reached by batch 256" in verdict
    # sharper but with the smaller gap: not held
    flipped = [_point(16, 0, 0.1, 1.0, 0.09), _point(256, 0, 0.5, 2.0, 0.01)]
    assert not FlatMinima.judge(summarize(flipped), flipped, "accuracy", 0.02)[1]
    # a higher rate is noisier: at the same batch size, the lower rate is the least noisy
    by_rate = [_point(64, 0, 0.1, 1.0, 0.01, lr=1e-2), _point(64, 0, 0.5, 2.0, 0.05, lr=1e-3)]
    quiet, noisy = extremes(summarize(by_rate))
    assert quiet["learning_rate"] == 1e-3 and noisy["learning_rate"] == 1e-2
    assert summarize([_point(16, 0, 1, 1, 1, diverged=True)]) == []


def test_flat_minima_on_wine(tmp_path):
    import kreg

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = kreg.study("flat_minima", "mlp", "wine", batch_sizes=(8, 64), seeds=1, target_loss=0.05,
                        max_epochs=150, learning_rate=0.01, tracking_uri=uri, **SMALL)
    small, large = result.points
    assert small["batch_size"] == 8 and large["batch_size"] == 64
    assert small["reached"] and large["reached"]  # both trained to the same loss...
    assert small["train_loss"] <= 0.05 and large["train_loss"] <= 0.05
    assert large["epochs"] > small["epochs"]  # ...the large batch, with 8x fewer steps per epoch, in more epochs
    # the gradient's direction is the worst: random ones of the same size barely move the loss (either way)
    assert small["sharpness_adversarial"] > max(abs(small["sharpness"]), 0.0)
    assert large["sharpness_adversarial"] > max(abs(large["sharpness"]), 0.0)
    f = result.figures
    expected = (f["sharpness_large_batch"] > f["sharpness_small_batch"]
                and f["sharpness_adversarial_large_batch"] > f["sharpness_adversarial_small_batch"]
                and f["gap_accuracy_large_batch"] > f["gap_accuracy_small_batch"])
    assert result.held == expected
    client = MlflowClient(uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags["kreg.study"] == "flat_minima"
    assert parent.data.tags["kreg.held"] == str(expected).lower()
    assert parent.data.metrics["all_reached_target"] == 1.0
    children = {r.data.tags["kreg.point"]: r for r in _children(client, result.parent_run_id)}
    assert sorted(children) == ["batch-64-lr-0.01-seed-0", "batch-8-lr-0.01-seed-0"]
    run = children["batch-64-lr-0.01-seed-0"]
    assert run.data.metrics["noise_scale"] == pytest.approx(0.01 / 64)  # the batch and rate it trained with
    assert run.data.metrics["sharpness"] == pytest.approx(large["sharpness"])
    assert run.data.metrics["epochs_run"] == large["epochs"]
    assert [a.path for a in client.list_artifacts(result.parent_run_id)] == ["flat_minima.png"]


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("args, expected", [
    (["study", "sparsity_paths", "--set", "l1_ratio=1"], "the elastic net's L1 share, a float in (0, 1)"),
    (["study", "sparsity_paths", "--set", "alphas=2"], "Received: study.alphas=2"),
    (["study", "sparsity_paths", "--set", "eps=0"], "Invalid value received for field `study.eps`"),
    (["study", "sparsity_paths", "--set", "steps=10"], "proximal steps per alpha"),
    (["study", "sparsity_paths", "--set", "target=-1"], "field `study.target`"),
    (["study", "early_stopping_l2", "--set", "steps=5"], "field `study.steps`"),
    (["study", "early_stopping_l2", "--set", "checkpoints=2"], "an integer from 3 to `steps`"),
    (["study", "early_stopping_l2", "--set", "eta=0.1"],
     "an option of the early_stopping_l2 study (checkpoints, steps)"),
    (["study", "flat_minima", "--set", "batch_sizes=32"], "two or more different positive integer batch sizes"),
    (["study", "flat_minima", "--set", "learning_rates=0.01,-1"], "field `study.learning_rates`"),
    (["study", "flat_minima", "--set", "target_loss=0"], "a positive training loss"),
    (["study", "flat_minima", "--set", "seeds=0"], "field `study.seeds`"),
    (["study", "flat_minima", "--set", "max_epochs=1.5"], "field `study.max_epochs`"),
    (["study", "nope"], "early_stopping_l2"),
    (["study", "nope"], "flat_minima"),
    (["study", "nope"], "sparsity_paths"),
])
def test_bad_options_of_these_studies_are_refused_naming_the_field(tmp_path, capsys, args, expected):
    from kreg.lab.cli import main

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main([*args, "--tracking-uri", uri, "--epochs", "1"]) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists()  # refused before the data loaded or any run was created


def test_a_target_class_the_data_lacks_is_refused_naming_the_field(tmp_path):
    import kreg
    from kreg.lab.errors import ConfigError

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(ConfigError, match="study.target.*a class index below 3"):
        kreg.study("sparsity_paths", "mlp", "wine", target=3, steps=50, alphas=3, tracking_uri=uri, **SMALL)
    # Refused once the data said how many classes there are: the study's runs are deleted, not left FAILED
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("kreg-studies")
    assert client.search_runs([experiment.experiment_id]) == []
    assert len(client.search_runs([experiment.experiment_id], run_view_type=ViewType.DELETED_ONLY)) == 1
