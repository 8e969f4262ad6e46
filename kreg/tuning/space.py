"""The search space: a pipeline's candidate techniques as keras-tuner hyperparameters.

``plan_from_hp(hp, search)`` both declares the hyperparameters (on a fresh
``HyperParameters``) and reads their values (on a trial's), and returns the
``RegularizationPlan`` they mean. Each optional technique is a Boolean switch
(default off) and its strengths are conditional hyperparameters; an
``exclusive`` group becomes one Choice (``"none"`` or one member). With every
switch at its default the plan is the unregularized baseline, which is how
trial 0 is the baseline.
"""

from __future__ import annotations

from kreg.config import ChoiceSpec, RangeSpec, SearchConfig
from kreg.plan import (DropBlockSpec, EarlyStoppingSpec, ElasticNetSpec, RegularizationPlan, ScheduleSpec,
                       SWASpec)
from kreg.techniques import PARAM_DEFAULTS, SETTINGS, TECHNIQUES

NONE = "none"


def group_name(group) -> str:
    return "one_of_" + "_".join(group)


def _param(hp, name: str, spec, kind: str, default=None):
    """Declares/reads one parameter; fixed values are returned as they are.

    ``default`` (a setting's pipeline value) becomes the hyperparameter's
    default when it lies in the range, so the baseline trial trains with the
    pipeline's own batch size and learning rate.
    """
    if isinstance(spec, RangeSpec):
        inside = default is not None and spec.min <= default <= spec.max
        sampling = "log" if spec.scale == "log" else "linear"
        if kind == "count":
            return hp.Int(name, int(spec.min), int(spec.max), step=int(spec.step) if spec.step else None,
                          sampling=sampling, default=int(default) if inside else None)
        return hp.Float(name, spec.min, spec.max, step=spec.step, sampling=sampling,
                        default=float(default) if inside else None)
    if isinstance(spec, ChoiceSpec):
        values = [int(x) if kind == "count" else x for x in spec.values]
        return hp.Choice(name, values, default=default if default in values else None)
    return int(spec) if kind == "count" else spec


def _technique_params(hp, name: str, tech, setting_defaults=None) -> dict:
    values = {}
    for param, kind in TECHNIQUES[name].items():
        if param in tech.params:
            default = (setting_defaults or {}).get(name)
            values[param] = _param(hp, f"{name}_{param}", tech.params[param], kind, default)
        else:
            values[param] = PARAM_DEFAULTS[(name, param)]
    return values


def _switches(hp, search: SearchConfig) -> dict:
    """Declares the on/off structure; returns ``{technique: (parent, active_value)}``."""
    scope = {}
    grouped = set()
    for group in search.exclusive:
        parent = group_name(group)
        hp.Choice(parent, [NONE, *group], default=NONE)
        for name in group:
            scope[name] = (parent, name)
            grouped.add(name)
    for name, tech in search.techniques.items():
        if name in grouped or not tech.optional:
            continue
        hp.Boolean(name, default=False)
        scope[name] = (name, True)
    return scope


def plan_from_hp(hp, search: SearchConfig, setting_defaults: dict | None = None) -> RegularizationPlan:
    """Declares the space on ``hp`` (if new) and returns the plan its values mean.

    ``setting_defaults`` maps a setting (``batch_size``, ``learning_rate``) to
    the pipeline's training value, used as that hyperparameter's default.
    """
    scope = _switches(hp, search)
    chosen: dict[str, dict] = {}
    for name, tech in search.techniques.items():
        if name in scope:
            parent, active_value = scope[name]
            with hp.conditional_scope(parent, [active_value]):
                params = _technique_params(hp, name, tech)
            if hp.get(parent) == active_value:
                chosen[name] = params
        else:
            chosen[name] = _technique_params(hp, name, tech, setting_defaults)
    return plan_from_choices(chosen)


def plan_from_choices(chosen: dict[str, dict]) -> RegularizationPlan:
    """``{technique: {param: value}}`` for the techniques switched on -> a plan."""
    fields: dict = {"augmentation": {}}
    for name, params in chosen.items():
        if name.startswith("augment_"):
            fields["augmentation"][name[len("augment_"):]] = float(params["strength"])
        elif name == "elastic_net":
            fields[name] = ElasticNetSpec(float(params["alpha"]), float(params["l1_ratio"]))
        elif name == "early_stopping":
            fields[name] = EarlyStoppingSpec(int(params["patience"]), bool(params["restore_best"]))
        elif name == "drop_block":
            fields[name] = DropBlockSpec(float(params["rate"]), int(params["block_size"]))
        elif name == "batch_norm":
            fields[name] = True
        elif name == "schedule":
            fields[name] = ScheduleSpec(float(params["warmup"]), float(params["off_last"]))
        elif name == "swa":
            fields[name] = SWASpec(float(params["start"]))
        elif name == "ensemble":
            fields[name] = int(params["members"])
        elif name in SETTINGS:
            value = params["value"]
            fields[name] = int(value) if name == "batch_size" else float(value)
        else:
            (value,) = params.values()
            fields[name] = float(value)
    return RegularizationPlan(**fields)


def active_count(values: dict, search: SearchConfig) -> int:
    """How many optional techniques a set of hyperparameter values switches on."""
    count = 0
    for group in search.exclusive:
        count += values.get(group_name(group), NONE) != NONE
    grouped = {n for g in search.exclusive for n in g}
    for name, tech in search.techniques.items():
        if tech.optional and name not in grouped:
            count += bool(values.get(name, False))
    return count


def setting_defaults(cfg) -> dict:
    """A pipeline's training values for the tunable settings."""
    return {"batch_size": cfg.training.batch_size, "learning_rate": cfg.training.learning_rate}
