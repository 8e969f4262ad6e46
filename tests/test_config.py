import copy
from pathlib import Path

import pytest
import yaml

from kreg.lab.cli import main
from kreg.lab.config import load_pipeline, parse_pipeline
from kreg.lab.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = sorted((ROOT / "pipelines").glob("*.yaml"))
BASE = {
    "name": "t",
    "data": {"dataset": "wine"},
    "model": {"type": "mlp"},
    "search": {"techniques": {"l2": {"min": 1e-5, "max": 1e-2, "scale": "log"}, "dropout": {"min": 0.1, "max": 0.5}}},
}


def with_(path, value, base=BASE):
    data = copy.deepcopy(base)
    node = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return data


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_shipped_pipelines_are_valid(path):
    cfg = load_pipeline(path)
    assert cfg.search.techniques and cfg.search.max_trials >= 1


def test_shorthand_and_defaults():
    cfg = parse_pipeline(with_("search.techniques.early_stopping", {"patience": {"values": [5, 10]}}))
    tech = {c.name: c for c in cfg.search.space().candidates}
    assert set(tech["l2"].params) == {"strength"} and tech["l2"].optional
    assert "restore_best" not in tech["early_stopping"].params  # the registry's default fills it later
    assert cfg.training.epochs == 30 and cfg.search.tuner == "bayesian"


@pytest.mark.parametrize(
    "data, field, value",
    [
        (with_("data.colour", "red"), "data.colour", "red"),
        (with_("search.max_trials", "many"), "search.max_trials", "many"),
        (with_("search.max_trials", 0), "search.max_trials", 0),
        (with_("search.techniques.l2", {"min": 1e-2, "max": 1e-5}), "search.techniques.l2.strength", None),
        (with_("search.techniques.l2", {"min": 0.0, "max": 1e-2, "scale": "log"}), "search.techniques.l2.strength", None),
        (with_("data.dataset", "imagenet"), "data.dataset", "imagenet"),
        (with_("search.techniques.dropconnect", {"min": 0.1, "max": 0.2}), "search.techniques.dropconnect", "dropconnect"),
        (with_("search.techniques.dropout", {"min": 0.1, "max": 1.5}), "search.techniques.dropout.rate.max", 1.5),
        (with_("search.techniques.augment_rotation", {"min": 0.1, "max": 0.2}), "search.techniques.augment_rotation", "augment_rotation"),
        (with_("search.techniques.spatial_dropout", {"min": 0.1, "max": 0.2}), "search.techniques.spatial_dropout", "spatial_dropout"),
        (with_("search.techniques.augment_cutmix", {"min": 0.5, "max": 1.0}), "search.techniques.augment_cutmix", "augment_cutmix"),
        (with_("search.techniques.augment_time_warp", {"min": 0.1, "max": 0.2}), "search.techniques.augment_time_warp", "augment_time_warp"),
        (with_("search.techniques.augment_shift", {"min": 0.1, "max": 1.5}, base=with_("data.dataset", "mnist1d")), "search.techniques.augment_shift.strength.max", 1.5),
        (with_("search.techniques.augment_colour", {"min": 0.1, "max": 0.2}), "search.techniques.augment_colour", "augment_colour"),
        (with_("search.exclusive", [["l2", "l1"]]), "search.exclusive[0]", "l1"),
        (with_("search.tuner", "grid"), "search.techniques.l2.strength", None),
        (with_("model.kernel_size", 3), "model.kernel_size", 3),
        (with_("search.techniques.drop_block", {"rate": {"min": 0.05, "max": 0.2}}), "search.techniques.drop_block", "drop_block"),
        (with_("search.techniques.group_lasso", {"min": -1.0, "max": 0.1}), "search.techniques.group_lasso.strength.min", -1.0),
        (with_("search.techniques.batch_size", {"values": [16, 0]}), "search.techniques.batch_size.value", 0),
        (with_("search.techniques.sam", {"min": 0.0, "max": 0.1}), "search.techniques.sam.rho.min", 0.0),
        (with_("search.techniques.swa", {"start": 1.0}), "search.techniques.swa.start", 1.0),
        (with_("search.techniques.ensemble", {"members": 2.5}), "search.techniques.ensemble.members", 2.5),
        (with_("search.techniques.schedule", {"warmup": 1.5}), "search.techniques.schedule.warmup", 1.5),
        (with_("monitor.sharpness", {"rho": -0.1}), "monitor.sharpness.rho", -0.1),
        (with_("monitor.weights", "yes"), "monitor.weights", "yes"),
        (with_("data.csv", "train.csv"), "data", ["dataset", "csv"]),
        (with_("data", {"csv": "train.csv"}), "data.target", None),
        (with_("data.target", "price"), "data.target", "price"),
        (with_("data", {"loader": "no colon here"}), "data.loader", "no colon here"),
        (with_("data.task", "ranking"), "data.task", "ranking"),
        (with_("data.modality", "video"), "data.modality", "video"),
        (with_("model.builder", "pkg.models:build"), "model", {"type": "mlp", "builder": "pkg.models:build"}),
        (with_("model", {"builder": "pkg.models:build", "width": 3}), "model.width", 3),
        (with_("model.args", {"width": 3}), "model.args", {"width": 3}),
        (with_("model", {}), "model", {}),
        (with_("search.objective", "accuracy"), "search.objective", "accuracy"),
        (with_("data", {"arrays": "d.npz", "task": "regression"},
               base=with_("search.techniques.label_smoothing", {"min": 0.0, "max": 0.1})),
         "search.techniques.label_smoothing", "label_smoothing"),
    ],
)
def test_invalid_config_names_field_and_value(data, field, value):
    with pytest.raises(ConfigError) as info:
        parse_pipeline(data)
    err = info.value
    assert err.field == field
    assert f"Invalid value received for field `{field}`" in str(err)
    if value is not None:
        assert err.value == value
        assert f"Received: {field}={value!r}" in str(err)


def test_range_order_message():
    with pytest.raises(ConfigError, match=r"min <= max \(min=0.01, max=1e-05\)"):
        parse_pipeline(with_("search.techniques.l2", {"min": 1e-2, "max": 1e-5}))


def test_overrides_are_validated():
    cfg = parse_pipeline(BASE)
    assert cfg.with_overrides(max_trials=3, epochs=2, seed=5).search.max_trials == 3
    with pytest.raises(ConfigError, match="search.max_trials"):
        cfg.with_overrides(max_trials=0)


def test_cli_exit_code_2_and_no_run(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(with_("search.techniques.l2", {"min": 1.0, "max": 0.1})))
    store = tmp_path / "store"
    code = main(["tune", str(bad), "--tracking-uri", f"sqlite:///{store}/mlflow.db"])
    assert code == 2
    err = capsys.readouterr().err
    assert "search.techniques.l2.strength" in err and err.count("\n") == 1
    assert not store.exists()  # nothing was created


def test_cli_validate(capsys):
    assert main(["validate", str(ROOT / "pipelines" / "mnist1d_cnn.yaml")]) == 0
    out = capsys.readouterr().out
    assert "valid pipeline 'mnist1d_cnn'" in out and "spatial_dropout" in out


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="an existing YAML file"):
        load_pipeline(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed")
    with pytest.raises(ConfigError, match=r"bad.yaml line 1, column 16: expected ',' or ']'"):
        load_pipeline(tmp_path / "bad.yaml")


def test_yaml_syntax_error_is_one_line_with_line_and_column(tmp_path, capsys):
    """PyYAML's 7-line report becomes `kreg: error: FILE line L, column C: PROBLEM (context)`, exit 2."""
    bad = tmp_path / "x.yaml"
    bad.write_text("name: x\ndata:\n  dataset: digits\n    model: mlp\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == f"kreg: error: {bad} line 4, column 10: mapping values are not allowed here\n"
    bad.write_text("name: x\ndata:\n  dataset: [digits\nmodel: {type: mlp}\n")
    assert main(["tune", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == (f"kreg: error: {bad} line 4, column 6: expected ',' or ']', but got ':' "
                   "(while parsing a flow sequence at line 3, column 12)\n")


def test_monitor_and_procedure_defaults():
    cfg = parse_pipeline(with_("search.techniques.swa", {}, base=with_("monitor.sharpness", True)))
    assert cfg.monitor.weights is True
    assert (cfg.monitor.sharpness.rho, cfg.monitor.sharpness.samples, cfg.monitor.sharpness.every) == (0.05, 3, 5)
    assert {c.name: c for c in cfg.search.space().candidates}["swa"].params == {}  # start: 0.75 in the plan
    assert parse_pipeline(BASE).monitor.sharpness is None


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_shipped_pipelines_build_their_baseline_and_largest_plan(path, tmp_path):
    """What `kreg tune` checks before its first trial (the baseline and the largest plan of the space, built on
    the real data): a technique combination a shipped pipeline offers must build. (A penalty summed with
    another once broke breast_cancer_mlp.yaml here, and only `kreg tune` showed it.)"""
    from kreg.lab.search.tune import prepare, request

    kwargs = load_pipeline(path).tune_kwargs()
    kwargs = {k: v for k, v in kwargs.items() if k not in ("workers", "chief", "worker_timeout", "resume")}
    prepared = prepare(request(**{**kwargs, "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}))
    assert prepared.structure
