"""The built-in builders' blocks: each places the plan's techniques through their hooks
(``kreg.lab.techniques.placing``), the same hooks ``kreg.regularize`` calls on a user's model."""

from __future__ import annotations

import keras

from kreg.lab.techniques import placing
from kreg.lab.techniques.base import Context
from kreg.lab.techniques.base import InputSite
from kreg.lab.techniques.base import Site


def context(plan, modality: str, seed: int) -> Context:
    """The hooks' context for one built model: its plan, its data's modality, seeds from ``seed``."""
    return Context(plan, modality, seed or 0)


def input_stack(spec, ctx: Context):
    """Input, then what the plan puts on an input (training-only augmentation, input noise)."""
    inputs = keras.Input(shape=spec.shape, name="inputs")
    x = inputs
    for _, layer in placing.at_input(InputSite("inputs", (None, *spec.shape)), ctx):
        x = layer(x)
    return inputs, x


def kernel_block(x, cls, config: dict, ctx: Context, *, kind: str, hidden: bool = True, rank: int = 1,
                 activation: str | None = "relu"):
    """A kernel layer made from ``config`` with the plan's changes, the layers placed after it, the
    activation (``{name}_relu``), then the layers placed after the block."""
    name = config["name"]
    site = Site(name, dict(config), cls, kind=kind, hidden=hidden, plain_dense=cls is keras.layers.Dense,
                rank=rank, kernel_rank=rank + 2 if kind == "conv" else 2, fresh=True)
    placing.kernel(site, ctx)
    x = placing.make(site)(x)
    for _, layer in placing.after_kernel(site, ctx):
        x = layer(x)
    if activation:
        x = keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
    site.shape = tuple(x.shape)
    for _, layer in placing.after_block(site, ctx):
        x = layer(x)
    return x


def features(x, ctx: Context, name: str):
    """What the plan puts after a hidden feature vector that has no kernel layer of its own (dropout)."""
    site = Site(name, {}, kind="features", shape=tuple(x.shape), fresh=True)
    for _, layer in placing.after_block(site, ctx):
        x = layer(x)
    return x


def dense_block(x, units: int, ctx: Context, name: str):
    return kernel_block(x, keras.layers.Dense, {"units": units, "name": name}, ctx, kind="dense")


def classifier_head(x, spec, ctx: Context):
    """The linear output layer: logits over the classes (the loss works from logits), or the regression targets."""
    return kernel_block(x, keras.layers.Dense, {"units": spec.output_units, "name": "logits"}, ctx, kind="dense",
                        hidden=False, activation=None)
