import keras_tuner as kt
import pytest

from kreg.lab.config import parse_pipeline
from kreg.lab.plan import RegularizationPlan
from kreg.lab.search.oracles import make_oracle
from kreg.lab.search.space import plan_from_hp
from kreg.lab.search.tune import resolve_objective
from kreg.lab.task import Classification

CFG = {
    "name": "t",
    "data": {"dataset": "mnist1d"},
    "model": {"type": "cnn1d"},
    "training": {"batch_size": 64, "learning_rate": 0.002},
    "search": {"cv": None,
        "tuner": "random",
        "max_trials": 30,
        "exclusive": [["l1", "l2", "elastic_net"]],
        "max_active": 2,
        "techniques": {
            "l1": {"min": 1e-6, "max": 1e-3, "scale": "log"},
            "l2": {"min": 1e-6, "max": 1e-3, "scale": "log"},
            "elastic_net": {"alpha": {"min": 1e-5, "max": 1e-3, "scale": "log"}, "l1_ratio": 0.3},
            "spatial_dropout": {"min": 0.05, "max": 0.3},
            "label_smoothing": {"values": [0.05, 0.1]},
            "augment_shift": {"min": 0.05, "max": 0.3},
            "early_stopping": {"patience": 5},
            "batch_size": {"values": [32, 64, 128]},
        },
    },
}


def declared(cfg):
    hp = kt.HyperParameters()
    plan = plan_from_hp(hp, cfg.search.space(), cfg.training.settings())
    return hp, plan


def test_defaults_are_the_baseline():
    cfg = parse_pipeline(CFG)
    hp, plan = declared(cfg)
    assert plan.is_baseline and plan.batch_size == 64  # the pipeline's own batch size
    names = {h.name for h in hp.space}
    assert {"one_of_l1_l2_elastic_net", "spatial_dropout", "spatial_dropout_rate", "batch_size_value"} <= names
    assert "l1" not in names  # grouped techniques are a Choice, not switches


def test_values_map_to_plan():
    cfg = parse_pipeline(CFG)
    hp, _ = declared(cfg)
    hp.values.update({
        "one_of_l1_l2_elastic_net": "elastic_net", "elastic_net_alpha": 1e-4,
        "spatial_dropout": True, "spatial_dropout_rate": 0.2,
        "augment_shift": True, "augment_shift_strength": 0.1,
        "early_stopping": True, "batch_size_value": 128,
    })
    plan = plan_from_hp(hp, cfg.search.space(), cfg.training.settings())
    assert plan.elastic_net.alpha == 1e-4 and plan.elastic_net.l1_ratio == 0.3
    assert plan.l1 is None and plan.l2 is None
    assert plan.spatial_dropout == 0.2 and plan.augmentation == {"shift": 0.1}
    assert plan.early_stopping.patience == 5 and plan.early_stopping.restore_best is True
    assert plan.batch_size == 128 and plan.label_smoothing is None
    assert RegularizationPlan.from_json(plan.to_json()) == plan


def run_oracle(cfg, n, directory):
    hp, _ = declared(cfg)
    objective = resolve_objective(cfg.search.objective, Classification(10))
    oracle = make_oracle(cfg.search.settings(), cfg.search.space(), objective, hp, seed=cfg.seed,
                         max_epochs=cfg.training.epochs)
    oracle._set_project_dir(str(directory), "search")
    plans, values = [], []
    for i in range(n):
        trial = oracle.create_trial("tuner0")
        if trial.status != "RUNNING":
            break
        values.append(dict(trial.hyperparameters.values))
        plans.append(plan_from_hp(trial.hyperparameters, cfg.search.space(), cfg.training.settings()))
        oracle.update_trial(trial.trial_id, {oracle.objective.name: 0.5 + 0.01 * i})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return plans, values


@pytest.mark.parametrize("tuner", ["random", "bayesian", "hyperband"])
def test_first_trial_is_baseline_and_max_active_holds(tuner, tmp_path):
    cfg = parse_pipeline({**CFG, "search": {**CFG["search"], "tuner": tuner, "initial_points": 4}})
    # Bayesian proposals optimize keras-tuner's acquisition from 50 L-BFGS starts each (about 5 CPU seconds a
    # proposal in this 10-dimensional space on 2 cores): 6 proposals, the last two the Gaussian process's (four
    # completed trials first), show the constraint holds for both kinds.
    plans, values = run_oracle(cfg, 6 if tuner == "bayesian" else 12, tmp_path)
    assert len(plans) >= 6
    assert plans[0].is_baseline and plans[0].batch_size == 64
    assert any(not p.is_baseline for p in plans[1:])
    for v in values:
        assert cfg.search.space().active_count(v) <= 2
    for p in plans:  # exclusive group: never two weight penalties
        assert sum(x is not None for x in (p.l1, p.l2, p.elastic_net)) <= 1


def test_grid_enumerates_from_baseline(tmp_path):
    grid = {
        "name": "g", "data": {"dataset": "wine"}, "model": {"type": "mlp"},
        "search": {"cv": None, "tuner": "grid", "max_trials": 50, "techniques": {
            "dropout": {"values": [0.1, 0.3]}, "batch_norm": {}}},
    }
    cfg = parse_pipeline(grid)
    plans, _ = run_oracle(cfg, 50, tmp_path)
    assert plans[0].is_baseline
    described = {p.describe() for p in plans}
    assert len(plans) == len(described) == 6  # (off, 0.1, 0.3) x (bn off, on)
