"""kreg's default search space: the techniques that fit the model, the data and the task, with ranges from the
literature and from kreg's own measurements.

``kreg.tune(model, data)`` without ``techniques`` (or ``techniques="auto"``)
searches this space; ``techniques={}`` searches nothing (the baseline alone).
The space is read off ``DEFAULTS``, the techniques' own rows (each class's
``defaults``, see ``kreg.lab.techniques.base.Default``) in order of priority:
each row is a technique, its range, the conditions it needs (the data's
modality, the task, a part of the model, a band of data sizes) and why, with
its source. The first rows that fit make the space, at most
``MAX_TECHNIQUES`` of them, one per ``group`` (the weight penalty: decoupled
weight decay where the model normalizes its hidden blocks, L2 elsewhere),
with at most ``MAX_ACTIVE`` on in one trial: a modest space that a search of
10 to 20 trials explores. What the model is made of comes from the baseline
model, built once before the search (``kreg.lab.apply.model_parts``).

``default_space(model, data)`` is the space, ``explain(model, data)`` the
space with its reasons; ``kreg techniques --for PIPELINE`` prints the space with each range, why and
its source; docs/guide/defaults.md ("The default search space") holds the same table.
"""

from __future__ import annotations

import dataclasses
import math

from kreg.lab import techniques as registry
from kreg.lab.search.space import SearchSpace
from kreg.lab.techniques.base import SMALL_VALIDATION  # noqa: F401  (public here: the size band's threshold)
from kreg.lab.techniques.base import Default

MAX_TECHNIQUES = 5  # techniques in the default space
MAX_ACTIVE = 3  # of them on in one trial


@dataclasses.dataclass(frozen=True)
class Row(Default):
    """One technique's default row (``kreg.lab.techniques.base.Default``: its range, why, source and when it
    fits), with the technique's registry ``name``."""

    name: str = ""


_WHY_PARTS = {
    "hidden_conv": "hidden convolution blocks", "hidden_dense": "hidden Dense blocks", "kernels": "kernel layers",
    "normalized": "normalization layers in its hidden blocks", "float_input": "a float input",
    "residual": "skip connections (an Add of a shortcut and a residual branch)",
}
_WHY_PRESENT = {"penalty": "kernel regularizers",
                **{t.name: t.present_as for t in registry.REGISTRY.values() if t.present_as}}

# The techniques' ``defaults`` rows (each technique's class holds its own), in order of priority: the first
# MAX_TECHNIQUES rows that fit make the space.
DEFAULTS = tuple(sorted(
    (Row(name=t.name, **{f.name: getattr(d, f.name) for f in dataclasses.fields(d)})
     for t in registry.REGISTRY.values() for d in t.defaults),
    key=lambda row: row.priority))


@dataclasses.dataclass(frozen=True)
class DefaultSpace:
    """The default space for one model and data, and the reasons: what is in, and what was left out and why."""

    space: SearchSpace
    chosen: tuple  # the Rows taken
    left_out: tuple  # (technique, why not), one per technique of the table that is not in the space
    context: str  # "built-in mlp on tabular classification data, 113 training / 29 validation examples"

    def lines(self) -> list[str]:
        """The space as ``kreg techniques --for`` prints it: each technique, its range, why and the source."""
        out = [f"default space for {self.context}: {len(self.chosen)} technique"
               f"{'' if len(self.chosen) == 1 else 's'}"
               + (f", at most {self.space.max_active} on in one trial" if self.space.max_active is not None else "")]
        specs = {c.name: c.spec_dict() for c in self.space.candidates}
        for row in self.chosen:
            out.append(f"  {row.name:<20} {_range_text(specs[row.name])}")
            out.append(f"  {'':<20} why: {row.why}")
            out.append(f"  {'':<20} source: {row.source}")
        if self.left_out:
            out.append("left out:")
            out += [f"  {name:<20} {why}" for name, why in self.left_out]
        return out


def _range_text(spec: dict) -> str:
    """``{"strength": {"min": 1e-06, "max": 0.01, "scale": "log"}}`` -> ``1e-06 to 0.01 (log)``."""
    parts = []
    for key, value in spec.items():
        if isinstance(value, dict) and "values" in value:
            text = "one of " + ", ".join(f"{v:g}" for v in value["values"])
        elif isinstance(value, dict):
            text = f"{value['min']:g} to {value['max']:g}" + (" (log)" if value.get("scale") == "log" else "")
        else:
            text = f"{value:g}" if isinstance(value, (int, float)) else str(value)
        parts.append(f"{key} {text}")
    return ", ".join(parts)


def _grid_values(raw: dict) -> dict:
    """A range as three values (the grid tuner needs a list): its ends and its middle (geometric on a log scale)."""
    if "values" in raw or "min" not in raw:
        return {k: _grid_values(v) if isinstance(v, dict) else v for k, v in raw.items()}
    lo, hi = raw["min"], raw["max"]
    mid = math.sqrt(lo * hi) if raw.get("scale") == "log" else (lo + hi) / 2
    return {"values": [lo, float(f"{mid:.3g}"), hi]}


def _why_not(row: Row, *, kind: str, parts, modality: str, task: str, builtin: str | None, own_loss: bool,
             head: str, validation: int | None) -> str | None:
    """None when ``row`` fits, else why it does not (one phrase)."""
    tech = registry.get(row.name)
    problem = registry.fits(row.name, modality=modality, task=task, builtin_model=builtin)
    if problem:
        return problem
    if row.modalities and modality not in row.modalities:
        return f"kreg's default for {' or '.join(row.modalities)} data only"
    if row.tasks and task not in row.tasks:
        return f"for {' or '.join(row.tasks)} only"
    if tech.acts_on == "model" and kind == "plan_builder":
        return "your builder places the plan's techniques itself: the default space keeps to techniques outside it"
    if tech.acts_on == "model" and not parts.graph:
        return "the model is not a Functional or Sequential model: kreg cannot place techniques inside it"
    if row.needs and not getattr(parts, row.needs):
        return f"the model has no {_WHY_PARTS[row.needs]}"
    if row.unless and row.unless in parts.present:
        return f"the model has {_WHY_PRESENT[row.unless]} already"
    if own_loss and tech.acts_on == "loss":
        return "you compile your own loss (kreg cannot smooth a loss it does not build)"
    if tech.soft_labels and head in ("sigmoid", "binary_logit"):
        return "the model ends in one sigmoid unit (soft labels need one output per class)"
    if validation is not None and validation < row.min_validation:
        return (f"{validation} validation examples are too few to stop on (it needs {row.min_validation}; "
                "each example moves the validation accuracy by more than 2 points)")
    return None


def choose(model, splits, *, parts, head: str = "linear", own_loss: bool = False, tuner: str = "bayesian",
           max_active: int | None = None) -> DefaultSpace:
    """The default space for ``model`` (a ``ModelSource``) on ``splits``, given what its baseline is made of.

    Args:
        model: The ``ModelSource`` (built-in, builder, plan builder or model).
        splits: The data's splits (their ``spec``: modality and task; their sizes).
        parts: ``kreg.lab.apply.model_parts`` of the baseline model.
        head: The output as the loss reads it (``softmax``, ``sigmoid``, ``binary_logit``, ``linear``).
        own_loss: The user compiles their own loss (no loss techniques).
        tuner: With ``"grid"`` each range becomes three values and ``max_active`` is not set.
        max_active: The user's limit on techniques per trial (default ``MAX_ACTIVE``).
    """
    spec = splits.spec
    sizes = splits.sizes()
    chosen, left_out, groups = [], {}, {}
    for row in DEFAULTS:
        if row.name in {r.name for r in chosen}:
            continue
        if row.group in groups:
            left_out.setdefault(row.name, f"one {row.group} per space: {groups[row.group]} is in")
            continue
        why = _why_not(row, kind=model.kind, parts=parts, modality=spec.modality, task=spec.task.kind,
                       builtin=model.builtin, own_loss=own_loss, head=head, validation=sizes.get("validation"))
        if why is None and len(chosen) >= MAX_TECHNIQUES:
            why = f"the default space keeps {MAX_TECHNIQUES} techniques, in the table's order of priority"
        if why is not None:
            left_out.setdefault(row.name, why)
            continue
        chosen.append(row)
        if row.group:
            groups[row.group] = row.name
    names = {r.name for r in chosen}
    left = tuple((name, why) for name, why in left_out.items() if name not in names)
    raw = {r.name: (_grid_values(r.params) if tuner == "grid" else r.params) for r in chosen}
    if tuner == "grid":
        limit = None
    else:
        limit = max_active if max_active is not None else (min(MAX_ACTIVE, len(chosen)) if chosen else None)
    what = f"built-in {model.builtin}" if model.builtin else f"your {model.short_name()}"
    known = ", ".join(f"{n} {k}" for k, n in (("training", sizes.get("train")), ("validation", sizes.get("validation")))
                      if n is not None)
    context = f"{what} on {spec.modality} {spec.task.kind} data" + (f" ({known} examples)" if known else "")
    space = SearchSpace.from_dict(raw, max_active=limit, field=None)
    summary = ", ".join(f"{c.name} {_range_text(c.spec_dict())}" for c in space.candidates) \
        or "nothing fits: the baseline alone"
    origin = f"{context}: {summary}" + (f"; at most {limit} per trial" if limit is not None else "")
    space = dataclasses.replace(space, origin=origin)
    space.check(tuner=tuner, modality=spec.modality, task=spec.task.kind, builtin_model=model.builtin, field=None)
    return DefaultSpace(space, tuple(chosen), left, context)


def for_search(search, built, *, max_active: int | None = None) -> SearchSpace:
    """The default space of a resolved search, from its built baseline (``kreg.lab.search.tune.prepare``)."""
    from kreg.lab.apply import model_parts

    return choose(search.model, search.splits, parts=model_parts(built.model), head=built.output_activation,
                  own_loss=search.loss is not None, tuner=search.settings.tuner, max_active=max_active).space


def default_space(model, data, **options) -> SearchSpace:
    """The space ``kreg.tune(model, data)`` would search (``explain(...).space``).

    Example:
        >>> default_space("mlp", "wine").names
        ('dropout', 'l2', 'label_smoothing', 'augment_mixup', 'input_noise')
    """
    return explain(model, data, **options).space


def explain(model, data, *, model_args: dict | None = None, task=None, loss=None, tuner: str = "bayesian",
            max_active: int | None = None, seed: int = 0, **data_options) -> DefaultSpace:
    """The space ``kreg.tune(model, data)`` would search, with the reasons, without searching.

    ``model`` and ``data`` are what ``kreg.tune`` takes; the data is resolved and the baseline model built
    once (and checked against the data and the task, as before a search).

    Example:
        >>> print("\\n".join(explain("mlp", "wine").lines()))
    """
    import keras

    from kreg.lab.apply import model_parts
    from kreg.lab.data import resolve_data
    from kreg.lab.models.source import ModelSource
    from kreg.lab.plan import RegularizationPlan

    source = ModelSource(model, model_args)
    if task is not None:
        data_options["task"] = task
    splits = resolve_data(data, seed=seed, **data_options)
    built = source.build(splits.spec, RegularizationPlan(), seed=seed)
    source.check_output(built, splits.spec.task, splits.spec)
    try:
        return choose(source, splits, parts=model_parts(built.model), head=built.output_activation,
                      own_loss=loss is not None, tuner=tuner, max_active=max_active)
    finally:
        keras.backend.clear_session()
