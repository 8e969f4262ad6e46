import json

import pytest

from kreg.lab.plan import EarlyStoppingSpec, ElasticNetSpec, RegularizationPlan


def full_plan():
    return RegularizationPlan(
        l2=1e-4, elastic_net=ElasticNetSpec(1e-3, 0.3), dropout=0.2, spatial_dropout=0.1,
        input_noise=0.05, weight_decay=1e-3, label_smoothing=0.1, batch_norm=True,
        early_stopping=EarlyStoppingSpec(7, False), batch_size=32, learning_rate=3e-3,
        augmentation={"shift": 0.2, "time_scale": 0.1},
    )


def test_json_round_trip():
    plan = full_plan()
    text = plan.to_json()
    assert json.loads(text)["elastic_net"] == {"alpha": 1e-3, "l1_ratio": 0.3}
    assert RegularizationPlan.from_json(text) == plan
    assert RegularizationPlan.from_json(RegularizationPlan().to_json()) == RegularizationPlan()


def test_baseline_and_active_techniques():
    assert RegularizationPlan().is_baseline
    assert RegularizationPlan(batch_size=32, learning_rate=0.1).is_baseline  # settings, not techniques
    assert RegularizationPlan().describe() == "baseline (no regularization)"
    active = full_plan().active_techniques()
    assert active == ["l2", "elastic_net", "dropout", "spatial_dropout", "input_noise", "weight_decay",
                      "label_smoothing", "batch_norm", "early_stopping", "augment_shift", "augment_time_scale"]


def test_flatten_for_mlflow_params():
    flat = full_plan().flatten()
    assert flat["plan.elastic_net.alpha"] == 1e-3
    assert flat["plan.early_stopping.patience"] == 7
    assert flat["plan.augmentation.shift"] == 0.2
    assert flat["plan.l1"] is None
    assert all(not isinstance(v, dict) for v in flat.values())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dropout": 1.5}, "Invalid value received for argument `dropout`. Expected a float between 0 and 1 (exclusive). Received: dropout=1.5"),
        ({"l2": -1.0}, "argument `l2`. Expected a non-negative float. Received: l2=-1.0"),
        ({"batch_size": 0}, "argument `batch_size`. Expected a positive integer. Received: batch_size=0"),
        ({"augmentation": {"warp": 0.1}}, "argument `augmentation`. Expected one of"),
        ({"batch_norm": "yes"}, "argument `batch_norm`. Expected a boolean. Received: batch_norm='yes'"),
    ],
)
def test_invalid_values_named(kwargs, message):
    with pytest.raises(ValueError) as info:
        RegularizationPlan(**kwargs)
    assert message in str(info.value)


def test_nested_specs_validate():
    with pytest.raises(ValueError, match="elastic_net.l1_ratio"):
        ElasticNetSpec(0.1, 1.5)
    with pytest.raises(ValueError, match="early_stopping.patience"):
        RegularizationPlan.from_dict({"early_stopping": {"patience": 0}})
    with pytest.raises(ValueError, match="Received: plan='dropuot'"):
        RegularizationPlan.from_dict({"dropuot": 0.1})


def test_training_procedures_in_the_plan():
    from kreg.lab.plan import ScheduleSpec, SWASpec

    plan = RegularizationPlan(dropout=0.2, schedule=ScheduleSpec(0.25, 0.1), swa=SWASpec(0.6), sam=0.05, ensemble=3)
    assert RegularizationPlan.from_json(plan.to_json()) == plan
    assert plan.active_techniques() == ["dropout", "schedule", "swa", "sam", "ensemble"]
    assert "schedule(warmup=0.25, off_last=0.1)" in plan.describe() and "swa(start=0.6)" in plan.describe()
    assert RegularizationPlan(ensemble=1).is_baseline  # one member is a single model
    assert plan.flatten()["plan.swa.start"] == 0.6
    assert ScheduleSpec(0.25, 0.1).callback_args(20) == {
        "schedule": {"name": "warmup", "warmup_epochs": 5}, "off_last": 2}
    assert ScheduleSpec(0.0, 0.0).callback_args(20) == {"schedule": "constant", "off_last": 0}
    with pytest.raises(ValueError, match=r"argument `sam`.*Received: sam=0"):
        RegularizationPlan(sam=0)
    with pytest.raises(ValueError, match=r"argument `swa.start`.*Received: swa.start=1.0"):
        SWASpec(1.0)
    with pytest.raises(ValueError, match=r"argument `ensemble`"):
        RegularizationPlan(ensemble=0)
