"""The search space: candidate techniques with ranges, as plain data, and as keras-tuner hyperparameters.

``SearchSpace.from_dict`` takes the same mapping in Python (``kreg.tune(...,
techniques={...})``) and in YAML (``search.techniques``) and checks it
against the technique registry, raising a ``ConfigError`` that names the
field. ``plan_from_hp(hp, space)`` both declares the hyperparameters (on a
fresh ``HyperParameters``) and reads their values (on a trial's), and
returns the ``RegularizationPlan`` they mean. Each optional technique is a
Boolean switch (default off) and its parameters are conditional
hyperparameters; an ``exclusive`` group becomes one Choice (``"none"`` or
one member). With every switch at its default the plan is the unregularized
baseline, which is how trial 0 is the baseline.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from kreg.lab import techniques as registry
from kreg.lab.errors import ConfigError
from kreg.lab.plan import RegularizationPlan

NONE = "none"
TUNERS = ("random", "bayesian", "hyperband", "grid")
_RANGE_KEYS = {"min", "max", "scale", "step"}


@dataclasses.dataclass(frozen=True)
class Range:
    """A numeric range: ``{min, max, scale: linear|log, step}``."""

    min: float
    max: float
    scale: str = "linear"
    step: float | None = None


@dataclasses.dataclass(frozen=True)
class Choice:
    """A list of values: ``{values: [...]}``."""

    values: tuple


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One technique of the space: switched on/off (``optional``) with its parameter specs.

    A parameter spec is a ``Range``, a ``Choice`` or a fixed value; parameters
    left out take the registry's default.
    """

    name: str
    optional: bool
    params: dict

    def spec_dict(self) -> dict:
        """The parameter specs as plain data (for display and logging)."""
        out = {}
        for key, spec in self.params.items():
            if isinstance(spec, Range):
                out[key] = {k: val for k, val in dataclasses.asdict(spec).items() if val is not None}
            elif isinstance(spec, Choice):
                out[key] = {"values": list(spec.values)}
            else:
                out[key] = spec
        return out

    def strongest(self) -> dict:
        """Each parameter at the value that regularizes most: the largest, or the smallest where the
        registry says smaller is stronger (early stopping's patience, SWA's start, the batch size)."""
        tech = registry.get(self.name)
        values = {}
        for i, p in enumerate(tech.params):
            spec = self.params.get(p.name, p.default)
            pick = min if i == 0 and tech.stronger < 0 else max
            if isinstance(spec, Range):
                values[p.name] = spec.min if pick is min else spec.max
            elif isinstance(spec, Choice):
                numbers = [x for x in spec.values if not isinstance(x, (bool, str))]
                values[p.name] = pick(numbers) if numbers else spec.values[0]
            else:
                values[p.name] = spec
        return values


def _problem(field: str, value: Any, expected: str, source):
    return ConfigError(field, value, expected, source)


def _param_spec(field: str, kind: str, raw: Any, source) -> Any:
    """A Range, a Choice or a fixed value, checked against the parameter's kind."""
    if isinstance(raw, dict):
        if "values" in raw:
            if set(raw) != {"values"} or not isinstance(raw["values"], list) or not raw["values"]:
                raise _problem(field, raw, "{values: [a non-empty list]}", source)
            for value in raw["values"]:
                problem = registry.kind_problem(kind, value)
                if problem:
                    raise _problem(field, value, problem, source)
            return Choice(tuple(registry.coerce(kind, x) for x in raw["values"]))
        unknown = sorted(set(raw) - _RANGE_KEYS)
        if unknown:
            raise _problem(f"{field}.{unknown[0]}", raw[unknown[0]], "no such field (unknown key)", source)
        if kind == "bool":
            raise _problem(field, raw, "true, false or {values: [...]}", source)
        for end in ("min", "max"):
            if end not in raw:
                raise _problem(f"{field}.{end}", None, "a value (the field is required)", source)
            problem = registry.kind_problem(kind, raw[end])
            if problem:
                raise _problem(f"{field}.{end}", raw[end], problem, source)
        lo, hi = float(raw["min"]), float(raw["max"])
        scale = raw.get("scale", "linear")
        if scale not in ("linear", "log"):
            raise _problem(f"{field}.scale", scale, "'linear' or 'log'", source)
        if lo > hi:
            raise _problem(field, raw, f"min <= max (min={raw['min']}, max={raw['max']})", source)
        if scale == "log" and lo <= 0:
            raise _problem(field, raw, f"min > 0 for a log-scale range (min={raw['min']})", source)
        step = raw.get("step")
        if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float))
                                 or not math.isfinite(step) or step <= 0):
            raise _problem(f"{field}.step", step, "a positive number", source)
        return Range(lo, hi, scale, None if step is None else float(step))
    problem = registry.kind_problem(kind, raw)
    if problem:
        raise _problem(field, raw, f"{problem}, a range {{min, max}} or {{values: [...]}}", source)
    return registry.coerce(kind, raw)


def candidate(name: str, raw: Any, *, field: str = "search.techniques", source=None) -> Candidate:
    """Reads one technique entry, accepting the shorthands.

    ``l2: {min: 1e-6, max: 1e-2, scale: log}`` is short for the single
    parameter (``strength``); ``l2: 1e-4`` fixes it; ``batch_norm: {}`` or
    ``batch_norm: true`` is an on/off technique with no parameters.
    """
    field = f"{field}.{name}"
    tech = registry.REGISTRY.get(name)
    if tech is None:
        raise _problem(field, name, "a known technique: " + ", ".join(sorted(registry.REGISTRY)), source)
    if raw is None or raw is True or raw == {}:
        raw = {}
    elif not isinstance(raw, dict):
        if len(tech.params) != 1:
            raise _problem(field, raw, "a mapping of parameter ranges", source)
        raw = {tech.params[0].name: raw}
    raw = dict(raw)
    optional = raw.pop("optional", not tech.is_setting)
    if not isinstance(optional, bool):
        raise _problem(f"{field}.optional", optional, "true or false", source)
    if tech.is_setting and optional:
        raise _problem(f"{field}.optional", True, "false: a setting is tuned, never switched off", source)
    if raw and (set(raw) <= _RANGE_KEYS | {"values"}):
        if len(tech.params) != 1:
            raise _problem(field, raw, f"one entry per parameter ({', '.join(tech.param_names)})", source)
        raw = {tech.params[0].name: raw}
    params = {}
    for key, spec in raw.items():
        if key not in tech.param_names:
            allowed = ", ".join(tech.param_names) or "no parameters"
            raise _problem(f"{field}.{key}", key, f"a parameter of {name}: {allowed}", source)
        params[key] = _param_spec(f"{field}.{key}", tech.param(key).kind, spec, source)
    for p in tech.params:
        if p.name not in params and p.required:
            raise _problem(f"{field}.{p.name}", None, "a range, a list of values or a fixed value", source)
    return Candidate(name, optional, params)


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The candidate techniques of a search and the limits on combining them."""

    candidates: tuple[Candidate, ...] = ()
    exclusive: tuple[tuple[str, ...], ...] = ()
    max_active: int | None = None
    # Where the space came from, shown on the console and in the parent run's description: kreg's default
    # space says so ("default space for ...: ..."); empty for a space the user wrote.
    origin: str = dataclasses.field(default="", compare=False)

    @classmethod
    def from_dict(cls, techniques: dict | None, *, exclusive=(), max_active=None, field: str | None = "search",
                  source: str | None = None) -> "SearchSpace":
        """The space from plain data; ``field`` prefixes the names in errors (None for Python arguments)."""
        base = f"{field}." if field else ""
        techniques = techniques or {}
        if not isinstance(techniques, dict):
            raise _problem(f"{base}techniques", techniques, "a mapping of technique name to ranges", source)
        cands = tuple(candidate(n, raw, field=f"{base}techniques", source=source) for n, raw in techniques.items())
        if max_active is not None and (isinstance(max_active, bool) or not isinstance(max_active, int)
                                       or max_active < 0):
            raise _problem(f"{base}max_active", max_active, "an integer >= 0", source)
        by_name = {c.name: c for c in cands}
        groups, seen = [], {}
        for i, group in enumerate(exclusive or ()):
            gfield = f"{base}exclusive[{i}]"
            if not isinstance(group, (list, tuple)) or len(group) < 2:
                raise _problem(gfield, group, "a list of at least two technique names", source)
            for name in group:
                if name not in by_name:
                    raise _problem(gfield, name, "a technique listed under techniques", source)
                if not by_name[name].optional:
                    raise _problem(gfield, name, "an optional technique (one that can be off)", source)
                if name in seen:
                    raise _problem(gfield, name, f"a technique in one group only (also in exclusive[{seen[name]}])",
                                   source)
                seen[name] = i
            groups.append(tuple(group))
        return cls(cands, tuple(groups), max_active)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.candidates)

    def to_dict(self) -> dict:
        return {"techniques": {c.name: {**c.spec_dict(), **({} if c.optional else {"optional": False})}
                               for c in self.candidates},
                "exclusive": [list(g) for g in self.exclusive], "max_active": self.max_active}

    def check(self, *, tuner: str = "bayesian", modality: str | None = None, task: str | None = None,
              builtin_model: str | None = None, field: str | None = "search", source: str | None = None) -> None:
        """Refuses techniques that do not fit the data, the task, the model or the tuner."""
        base = f"{field}." if field else ""
        if tuner == "grid" and self.max_active is not None:
            raise _problem(f"{base}max_active", self.max_active,
                           "no value with the grid tuner (it tries every combination)", source)
        for c in self.candidates:
            expected = registry.fits(c.name, modality=modality, task=task, builtin_model=builtin_model)
            if expected:
                raise _problem(f"{base}techniques.{c.name}", c.name, expected, source)
            if tuner == "grid":
                for key, spec in c.params.items():
                    if isinstance(spec, Range) and spec.step is None:
                        raise _problem(f"{base}techniques.{c.name}.{key}", c.spec_dict()[key],
                                       "a `step` or a list of `values` for the grid tuner", source)

    def largest_plan(self, settings: dict | None = None) -> RegularizationPlan:
        """Every technique on at its strongest: applied once before the search to catch misfits."""
        return plan_from_choices({c.name: c.strongest() for c in self.candidates}, settings)

    def active_count(self, values: dict) -> int:
        """How many optional techniques a set of hyperparameter values switches on."""
        count = sum(values.get(group_name(g), NONE) != NONE for g in self.exclusive)
        grouped = {n for g in self.exclusive for n in g}
        return count + sum(bool(values.get(c.name, False)) for c in self.candidates
                           if c.optional and c.name not in grouped)


def group_name(group) -> str:
    return "one_of_" + "_".join(group)


def _declare(hp, name: str, spec, kind: str, default=None):
    """Declares/reads one parameter; fixed values are returned as they are.

    ``default`` (a setting's training value) becomes the hyperparameter's
    default when it lies in the range, so the baseline trial trains with the
    search's own batch size and learning rate.
    """
    if isinstance(spec, Range):
        inside = default is not None and spec.min <= default <= spec.max
        sampling = "log" if spec.scale == "log" else "linear"
        if kind == "count":
            return hp.Int(name, int(spec.min), int(spec.max), step=int(spec.step) if spec.step else None,
                          sampling=sampling, default=int(default) if inside else None)
        return hp.Float(name, spec.min, spec.max, step=spec.step, sampling=sampling,
                        default=float(default) if inside else None)
    if isinstance(spec, Choice):
        return hp.Choice(name, list(spec.values), default=default if default in spec.values else None)
    return spec


def _params(hp, c: Candidate, settings: dict | None = None) -> dict:
    tech = registry.get(c.name)
    values = {}
    for p in tech.params:
        if p.name in c.params:
            values[p.name] = _declare(hp, f"{c.name}_{p.name}", c.params[p.name], p.kind,
                                      (settings or {}).get(c.name))
        else:
            values[p.name] = p.default
    return values


def plan_from_choices(chosen: dict[str, dict], settings: dict | None = None) -> RegularizationPlan:
    """``{technique: {param: value}}`` for the techniques switched on -> a plan.

    ``settings`` (``batch_size``, ``learning_rate``) fill the plan where the
    space does not tune them.
    """
    values = {}
    for name, params in chosen.items():
        tech = registry.get(name)
        if tech.is_flag:
            values[name] = True
        elif len(tech.params) == 1:
            values[name] = params[tech.params[0].name]
        else:
            values[name] = dict(params)
    for name, value in (settings or {}).items():
        values.setdefault(name, value)
    return RegularizationPlan(**values)


def plan_from_hp(hp, space: SearchSpace, settings: dict | None = None) -> RegularizationPlan:
    """Declares the space on ``hp`` (if new) and returns the plan its values mean.

    ``settings`` maps a setting (``batch_size``, ``learning_rate``) to the
    search's training value: the default of its hyperparameter, and its
    value in the plan when the space does not tune it.
    """
    scope = {}
    grouped = set()
    for group in space.exclusive:
        parent = group_name(group)
        hp.Choice(parent, [NONE, *group], default=NONE)
        for name in group:
            scope[name] = (parent, name)
            grouped.add(name)
    for c in space.candidates:
        if c.optional and c.name not in grouped:
            hp.Boolean(c.name, default=False)
            scope[c.name] = (c.name, True)
    chosen: dict[str, dict] = {}
    for c in space.candidates:
        if c.name in scope:
            parent, active_value = scope[c.name]
            with hp.conditional_scope(parent, [active_value]):
                params = _params(hp, c)
            if hp.get(parent) == active_value:
                chosen[c.name] = params
        else:
            chosen[c.name] = _params(hp, c, settings)
    return plan_from_choices(chosen, settings)
