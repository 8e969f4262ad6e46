"""The plan's techniques through their hooks: one loop per kind of site.

The structural loops (``check`` to ``probe``) are shared by ``kreg.lab.apply`` (a user's model) and
``kreg.lab.models.blocks`` (kreg's builders): each asks every structural technique the plan switches
on, in placement order, and returns what they placed as ``(technique name, layer)`` pairs, so the
caller records where each went. The training loops (``loss`` to ``callbacks``) ask every technique the
plan switches on, in registry order: ``kreg.lab.task`` makes its loss through them and
``kreg.lab.trial.procedures`` its data pipeline, model wrapper and callbacks.
"""

from __future__ import annotations

from kreg.lab.techniques.base import Context
from kreg.lab.techniques.base import DataSite
from kreg.lab.techniques.base import InputSite
from kreg.lab.techniques.base import LossSite
from kreg.lab.techniques.base import MergeSite
from kreg.lab.techniques.base import ModelView
from kreg.lab.techniques.base import Site
from kreg.lab.techniques.base import TrainingSite


def active(plan) -> list:
    """``(technique, value)`` for every structural technique the plan switches on, in placement order
    (as the family modules write them)."""
    from kreg.lab.techniques import PLACEMENT, REGISTRY

    names = sorted((n for n in plan.active_techniques() if REGISTRY[n].structural), key=PLACEMENT.__getitem__)
    return [(REGISTRY[name], plan.get(name)) for name in names]


def check(view: ModelView) -> None:
    """Raises the house sentence for the first technique ``view``'s model has no place for."""
    from kreg import _validation as v

    for tech, value in active(view.plan):
        expected = tech.check(value, view)
        if expected:
            raise v.invalid(f"plan.{tech.name}", expected, tech.shown(view.plan))


def kernel(site: Site, ctx: Context) -> list:
    """Runs the kernel hooks on ``site`` and sums kreg's penalties into its config; the names that placed
    something there."""
    placed = [tech.name for tech, value in active(ctx.plan) if tech.on_kernel(value, site, ctx)]
    if site.penalties:
        from kreg import regularizers as kr

        ours = kr.Sum(site.penalties) if len(site.penalties) > 1 else site.penalties[0]
        for key in site.keys:  # a separable convolution has two kernels: each gets its own objects
            mine = ours if key == site.keys[0] else ours.__class__.from_config(ours.get_config())
            if ctx.scheduled:
                mine = kr.Schedulable(mine)
            theirs = site.config.get(f"{key}_regularizer")
            site.config[f"{key}_regularizer"] = kr.Sum([theirs, mine]) if theirs else mine  # the user's stays
    return placed


def make(site: Site):
    """The kernel layer from its edited config, wrapped by what the hooks asked for."""
    layer = site.make(site.config) if site.make else site.cls.from_config(site.config)
    for wrap in site.wrappers:
        layer = wrap(layer)
    return layer


def after_kernel(site: Site, ctx: Context) -> list:
    """Layers after a hidden block's linear part; then its own activation, when a hook moved it out."""
    if not site.hidden:
        return []
    out = [(tech.name, layer) for tech, value in active(ctx.plan) for layer in tech.after_kernel(value, site, ctx)]
    if site.moved_activation is not None:
        import keras

        out.append((None, keras.layers.Activation(site.moved_activation, name=ctx.name(f"{site.name}_act"))))
    return out


def after_block(site: Site, ctx: Context) -> list:
    """Layers after a hidden block's end (nothing goes after an output layer)."""
    if not site.hidden:
        return []
    return [(tech.name, layer) for tech, value in active(ctx.plan) for layer in tech.after_block(value, site, ctx)]


def at_input(site: InputSite, ctx: Context) -> list:
    """Layers after a model input, in registry order (augmentations, then noise)."""
    return [(tech.name, layer) for tech, value in active(ctx.plan) for layer in tech.at_input(value, site, ctx)]


def at_merge(site: MergeSite, ctx: Context) -> list:
    """Layers on the residual branch of a skip connection's merge."""
    out = []
    for tech, value in active(ctx.plan):
        layer = tech.at_merge(value, site, ctx)
        if layer is not None:
            out.append((tech.name, layer))
    return out


def probe(plan, *, hidden: bool = True, kind: str = "any", rank: int = 1, modality: str | None = None,
          seed: int | None = 0, name: str | None = None) -> tuple:
    """``(site, ctx)`` with the kernel hooks run on an empty config: what the plan would give a layer a
    user's builder makes (the plan's helpers read it)."""
    ctx = Context(plan, modality, seed or 0, lambda base: name)  # no name given: Keras names the layer
    site = Site(name or "", {}, kind=kind, hidden=hidden, rank=rank, kernel_rank=rank + 2 if kind == "conv" else 2,
                fresh=True, plain_dense=kind == "dense")
    kernel(site, ctx)
    return site, ctx


# ------------------------------------------------------------ training
def switched_on(plan) -> list:
    """``(technique, value)`` for every technique the plan switches on (settings excluded), registry order."""
    from kreg.lab.techniques import REGISTRY

    return [(REGISTRY[name], plan.get(name)) for name in plan.active_techniques()]


def loss(plan, site: LossSite):
    """The loss ``site`` describes once the plan's techniques that fit its task edited it."""
    for tech, value in switched_on(plan):
        if site.task in tech.tasks:
            tech.loss(value, site)
    return site.cls(**site.args)


def data(plan, site: DataSite) -> list:
    """The batch maps (layers on ``(x, y)`` batches) the plan's techniques ask for, registry order."""
    return [layer for tech, value in switched_on(plan) for layer in tech.data(value, site)]


def wrap_model(plan, model):
    """The model that trains: ``model`` wrapped by each technique that asks (registry order)."""
    for tech, value in switched_on(plan):
        model = tech.wrap_model(value, model)
    return model


def callbacks(plan, site: TrainingSite) -> list:
    """The callbacks the plan's techniques ask for, registry order; they may record into ``site``."""
    return [cb for tech, value in switched_on(plan) for cb in tech.callbacks(value, site)]
