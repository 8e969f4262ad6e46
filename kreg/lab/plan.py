"""RegularizationPlan: plain data saying which techniques a model gets, and how strong.

The plan is built from the technique registry (``kreg.lab.techniques``): any
registered name is a keyword, checked by its parameter kinds. A technique
with one parameter takes a number (``l2=1e-4``); one with several takes a
mapping or its spec (``elastic_net={"alpha": 1e-3, "l1_ratio": 0.3}``,
``ElasticNetSpec(1e-3, 0.3)``; left-out parameters take their defaults); a
flag takes True (``batch_norm=True``). ``None``/``False`` means off, and the
empty plan is the unregularized baseline. Augmentations can be given as
``augment_shift=0.2`` or ``augmentation={"shift": 0.2}``.

The search space turns keras-tuner's ``hp`` into a plan; model builders and
the trainer read the plan and never see ``hp``. A plan serializes to JSON and
back, and flattens to MLflow params.
"""

from __future__ import annotations

import json
from typing import Any

from kreg import _validation as v
from kreg.lab import techniques as registry


class Params:
    """The parameters of one multi-parameter technique, e.g. ``plan.elastic_net.alpha``."""

    technique = ""

    def __init__(self, *args, **kwargs):
        tech = registry.get(self.technique)
        names = tech.param_names
        if len(args) > len(names):
            raise v.invalid(self.technique, f"at most {len(names)} values ({', '.join(names)})", args)
        given = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names or key in given:
                raise v.invalid(f"{self.technique}.{key}", f"one of the parameters {', '.join(names)}", key)
            given[key] = value
        values = {}
        for p in tech.params:
            if p.name not in given:
                if p.required:
                    raise v.invalid(f"{self.technique}.{p.name}", f"a value ({registry.KIND_EXPECTED[p.kind]})",
                                    None)
                given[p.name] = p.default
            problem = registry.kind_problem(p.kind, given[p.name])
            if problem:
                raise v.invalid(f"{self.technique}.{p.name}", problem, given[p.name])
            values[p.name] = registry.coerce(p.kind, given[p.name])
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name):
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(f"{self.technique} has no parameter {name!r}") from None

    def __setattr__(self, name, value):
        raise AttributeError("plans are immutable; use plan.replace(...)")

    def as_dict(self) -> dict:
        return dict(self._values)

    def __eq__(self, other):
        return isinstance(other, Params) and other.technique == self.technique and other._values == self._values

    def __hash__(self):
        return hash((self.technique, tuple(sorted(self._values.items()))))

    def __repr__(self):
        inner = ", ".join(f"{k}={val!r}" for k, val in self._values.items())
        return f"{type(self).__name__}({inner})"

    # Schedule's arguments for a training of ``epochs`` epochs (only meaningful on ``schedule``).
    def callback_args(self, epochs: int) -> dict:
        """``RegularizationSchedule`` arguments: the warm-up and switch-off fractions in epochs."""
        warmup = round(self._values["warmup"] * epochs)
        return {"schedule": {"name": "warmup", "warmup_epochs": warmup} if warmup else "constant",
                "off_last": min(epochs - 1, round(self._values["off_last"] * epochs))}


def _spec_class(technique: str, class_name: str) -> type:
    return type(class_name, (Params,), {"technique": technique, "__doc__": registry.get(technique).summary,
                                        "__module__": __name__})


# The specs of the techniques whose value is a spec (several parameters, or ``value_is_spec``), named after
# their technique's class: ``ElasticNetSpec``, ``DropBlockSpec``, ``EarlyStoppingSpec``, ``ScheduleSpec``,
# ``SWASpec``, ... (exported by ``kreg``).
_SPECS = {t.name: _spec_class(t.name, f"{type(t).__name__}Spec") for t in registry.REGISTRY.values()
          if t.value_is_spec}
globals().update({cls.__name__: cls for cls in _SPECS.values()})  # (a new technique's spec too)
_BY_NAME = {cls.__name__: cls for cls in _SPECS.values()}
ElasticNetSpec = _BY_NAME["ElasticNetSpec"]  # the public ones, written out for readers and static tools
DropBlockSpec = _BY_NAME["DropBlockSpec"]
EarlyStoppingSpec = _BY_NAME["EarlyStoppingSpec"]
ScheduleSpec = _BY_NAME["ScheduleSpec"]
SWASpec = _BY_NAME["SWASpec"]


def _normalize(name: str, value: Any):
    """A technique's value in its canonical form; None when it is off."""
    tech = registry.get(name)
    if value is None or value is False:
        return None
    if tech.is_flag:
        if value is not True:
            raise v.invalid(name, "a boolean", value)
        return True
    if not tech.value_is_spec:
        p = tech.params[0]
        problem = registry.kind_problem(p.kind, value)
        if problem:
            raise v.invalid(name, problem, value)
        if value == 0 and not tech.is_setting:
            return None  # a strength of 0 is the technique switched off (a range may start at 0)
        return registry.coerce(p.kind, value)
    spec = _SPECS.get(name) or _spec_class(name, "Params")
    if isinstance(value, Params):
        if value.technique != name:
            raise v.invalid(name, f"None or a {spec.__name__}", value)
        return value
    if value is True:
        return spec()
    if isinstance(value, dict):
        return spec(**value)
    if isinstance(value, (int, float)):
        return spec(value)  # the first parameter; the others take their defaults
    raise v.invalid(name, f"None or a {spec.__name__}", value)


def _is_off(name: str, value) -> bool:
    """Values that leave a technique without effect: a strength of 0, a one-member ensemble."""
    return registry.get(name).is_off(value)


class RegularizationPlan:
    """Which regularization techniques a model gets, and how strong.

    Every name of ``kreg.lab.techniques.REGISTRY`` is a keyword argument (see
    the module docstring for the value forms). Attributes read the same
    names: ``plan.l2`` (a float or None), ``plan.elastic_net.alpha``,
    ``plan.batch_norm`` (a bool), ``plan.augmentation`` (``{"shift": 0.2}``).

    Example:
        >>> plan = RegularizationPlan(l2=1e-4, dropout=0.2, augmentation={"shift": 0.1})
        >>> plan.describe()
        'l2=0.0001, dropout=0.2, augment_shift=0.1'
        >>> RegularizationPlan.from_json(plan.to_json()) == plan
        True
    """

    __slots__ = ("_values",)

    def __init__(self, augmentation: dict | None = None, **techniques):
        if augmentation is not None and not isinstance(augmentation, dict):
            raise v.invalid("augmentation", "a mapping of augmentation name to strength", augmentation)
        for name, strength in (augmentation or {}).items():
            v.check_choice("augmentation", name, registry.AUGMENTATIONS)
            techniques.setdefault(f"augment_{name}", strength)
        values = {}
        for name in registry.REGISTRY:  # registry order: descriptions and params stay stable
            if name in techniques:
                value = _normalize(name, techniques.pop(name))
                if value is not None:
                    values[name] = value
        if techniques:
            raise v.invalid("plan", "the name of a technique: " + ", ".join(sorted(registry.REGISTRY)),
                            sorted(techniques)[0])
        object.__setattr__(self, "_values", values)

    # ----------------------------------------------------------------- views
    def __getattr__(self, name):
        if name in registry.REGISTRY:
            value = self._values.get(name)
            return bool(value) if registry.REGISTRY[name].is_flag else value
        raise AttributeError(f"'RegularizationPlan' has no attribute {name!r}")

    def __setattr__(self, name, value):
        raise AttributeError("plans are immutable; use plan.replace(...)")

    @property
    def augmentation(self) -> dict:
        """``{"shift": 0.2, ...}``: the augmentations switched on, by short name."""
        return {registry.REGISTRY[n].augmentation: s for n, s in self._values.items()
                if registry.REGISTRY[n].augmentation and s}

    def get(self, name: str):
        """The value of technique ``name`` (None when off)."""
        registry.get(name)
        return self._values.get(name)

    def items(self):
        """``(name, value)`` for every technique and setting set in the plan, registry order."""
        return self._values.items()

    def replace(self, **changes) -> "RegularizationPlan":
        """A copy with some techniques changed (``None`` switches one off)."""
        values = {**self._values, **changes}
        return RegularizationPlan(**values)

    def active_techniques(self) -> list[str]:
        """Names of the techniques switched on (settings excluded), in registry order."""
        return [n for n, val in self._values.items()
                if not registry.REGISTRY[n].is_setting and not _is_off(n, val)]

    @property
    def is_baseline(self) -> bool:
        return not self.active_techniques()

    def describe(self) -> str:
        """Short human-readable summary, e.g. ``l2=1e-04, dropout=0.2``."""

        def fmt(value):
            return f"{value:.3g}" if isinstance(value, float) else str(value)

        parts = []
        for name in self.active_techniques():
            value = self._values[name]
            if value is True:
                parts.append(name)
            elif isinstance(value, Params):
                inner = []
                for key, item in value.as_dict().items():
                    if isinstance(item, bool):
                        if item:
                            inner.append(key.replace("_", " "))
                    else:
                        inner.append(f"{key}={fmt(item)}")
                parts.append(f"{name}({', '.join(inner)})")
            else:
                parts.append(f"{name}={fmt(value)}")
        return ", ".join(parts) or "baseline (no regularization)"

    # ------------------------------------------------------- model helpers
    # For builders that take the plan and place techniques themselves: each asks the plan's techniques
    # through their hooks (``kreg.lab.techniques.placing``), as kreg's own builders do.
    def kernel_regularizer(self, hidden: bool = True):
        """The plan's weight penalty for one kernel (None when it has none): its penalties summed, and
        wrapped in ``Schedulable`` when a schedule ramps them; group lasso on hidden layers only."""
        from kreg.lab.techniques import placing

        return placing.probe(self, hidden=hidden)[0].config.get("kernel_regularizer")

    def kernel_constraint(self):
        """The plan's kernel constraint (the proximal L1 step, a max-norm bound); None when it has none."""
        from kreg.lab.techniques import placing

        return placing.probe(self)[0].config.get("kernel_constraint")

    def dropout_layer(self, name: str | None = None, seed: int | None = None):
        """The plan's layer after a hidden dense block (dropout); None when the plan has none."""
        return self._after_block("dense", 1, name, seed)

    def spatial_dropout_layer(self, rank: int, name: str | None = None, seed: int | None = None):
        """The plan's layer after a ``rank``-D convolution block (spatial dropout or DropBlock, the first
        in registry order); None when the plan has neither."""
        return self._after_block("conv", rank, name, seed)

    def _after_block(self, kind, rank, name, seed):
        from kreg.lab.techniques import placing

        site, ctx = placing.probe(self, kind=kind, rank=rank, seed=seed, name=name)
        layers = [layer for _, layer in placing.after_block(site, ctx)]
        return layers[0] if layers else None

    def input_layers(self, modality: str, seed: int | None = None) -> list:
        """Training-only augmentation and input noise layers for the input."""
        from kreg.lab.techniques import placing
        from kreg.lab.techniques.base import MODALITY_RANK, Context, InputSite

        v.check_choice("modality", modality, tuple(MODALITY_RANK))
        site = InputSite("inputs", (None,) * MODALITY_RANK[modality])
        return [layer for _, layer in placing.at_input(site, Context(self, modality, seed or 0))]

    # --------------------------------------------------------- serialization
    def to_dict(self) -> dict[str, Any]:
        """Every technique name -> its value (None when off); specs as mappings."""
        return {name: (value.as_dict() if isinstance(value, Params) else value)
                for name, value in ((n, self._values.get(n)) for n in registry.REGISTRY)}

    def to_json(self) -> str:
        return json.dumps({k: val for k, val in self.to_dict().items() if val is not None}, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RegularizationPlan":
        if not isinstance(data, dict):
            raise v.invalid("plan", "a mapping", data)
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "RegularizationPlan":
        return cls.from_dict(json.loads(text))

    def flatten(self, prefix: str = "plan.") -> dict[str, Any]:
        """One level of ``key: scalar`` pairs for MLflow params, e.g. ``plan.elastic_net.alpha``.

        Every technique appears (None when off), so trials line up as columns.
        """
        flat: dict[str, Any] = {}
        for name, value in self.to_dict().items():
            tech = registry.REGISTRY[name]
            key = f"{prefix}augmentation.{tech.augmentation}" if tech.augmentation else f"{prefix}{name}"
            if isinstance(value, dict):
                for param, item in value.items():
                    flat[f"{key}.{param}"] = item
            else:
                flat[key] = value
        return flat

    def __eq__(self, other):
        return isinstance(other, RegularizationPlan) and self._values == other._values

    def __hash__(self):
        return hash(tuple(self._values.items()))

    def __repr__(self):
        inner = ", ".join(f"{k}={val!r}" for k, val in self._values.items())
        return f"RegularizationPlan({inner})"

    def __reduce__(self):  # pickling / deep copies (keras-tuner copies objects)
        return (_from_values, (self.to_dict(),))


def _from_values(values):
    return RegularizationPlan(**values)
