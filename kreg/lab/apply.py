"""A RegularizationPlan onto any Keras model: ``regularize(model, plan)``: graph walking and cloning.

This module reads a model's graph (its blocks, inputs and skip connections), builds the ``ModelView``
the techniques' ``check`` hooks read, and clones the model with ``keras.models.clone_model``, asking
each technique of the plan, through its hooks (``kreg.lab.techniques``), what goes on each kernel,
after each block, on each input and on each residual branch. What a technique does lives in its class;
nothing here names one.

A *block* is a kernel layer followed by at most one chain of normalization
layers and one activation layer (``Conv2D -> BatchNormalization -> ReLU``),
each the only consumer of the previous one; its *end* is where dropout goes,
so on a residual branch it lands before the merge, on that branch only. An
*output layer* is a kernel layer whose output reaches a model output without
passing another kernel layer: it gets the penalty, never group lasso, and
nothing after it. A *merge* is an ``Add`` of two tensors, one of which (the
shortcut) the other (the residual branch, with a kernel layer on it) was
computed from.

The graph is read through ``kreg.lab._keras_graph`` (every read of Keras'
private graph is there); the rewrite is ``clone_model`` with a
``clone_function`` (new configs) and a ``call_function`` (layers inserted
after a call). A Sequential model is rebuilt as a Sequential list.
"""

from __future__ import annotations

import collections
import dataclasses

import keras

from kreg import _validation as v
from kreg.lab import _keras_graph as kg
from kreg.lab import techniques as registry
from kreg.lab.techniques import placing
from kreg.lab.techniques.base import MODALITY_RANK as _MODALITY_RANK
from kreg.lab.techniques.base import BlockView
from kreg.lab.techniques.base import Context
from kreg.lab.techniques.base import InputSite
from kreg.lab.techniques.base import MergeSite
from kreg.lab.techniques.base import ModelView
from kreg.lab.techniques.base import Site

# The techniques that go into a model's layers (the rest act on the loss, the optimizer, the data, the training).
STRUCTURAL = tuple(name for name, t in registry.REGISTRY.items() if t.structural)

_DENSE = (keras.layers.Dense, keras.layers.EinsumDense)
_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_CONV = (
    keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose,
) + _SEPARABLE + _DEPTHWISE
_KERNEL = _DENSE + _CONV
_NORMS = (keras.layers.BatchNormalization, keras.layers.LayerNormalization, keras.layers.GroupNormalization)
_ACTIVATIONS = (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.PReLU,
                keras.layers.ELU, keras.layers.Softmax)
# Layers an output passes unchanged in kind (probabilities stay probabilities).
_PASSTHROUGH = (keras.layers.Reshape, keras.layers.Flatten, keras.layers.Permute, keras.layers.Identity,
                keras.layers.Dropout, keras.layers.GaussianNoise, keras.layers.GaussianDropout,
                keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D, keras.layers.SpatialDropout3D)
_WHY_SUBCLASSED = ("a Functional or Sequential model: a subclassed model's layers cannot be rewired "
                   "(use a builder that takes the plan, or model-agnostic techniques only)")


@dataclasses.dataclass
class Applied:
    """The result of ``apply_plan``.

    Attributes:
        model: The new model, with the input model's weights.
        placements: Technique name -> names of the layers it went to: the
            layers that got a penalty, the layers inserted for dropout-type
            techniques. Layers inside nested models are named
            ``"block/conv"``. Empty when nothing structural was applied.
        output_activation: ``"softmax"``, ``"sigmoid"`` or ``"linear"``
            (logits or a regression) of the model's (first) output.
        modality: ``"tabular"``, ``"sequence"`` or ``"image"``; None when the
            input rank says none of them and none was given.
    """

    model: keras.Model
    placements: dict
    output_activation: str
    modality: str | None


# ---------------------------------------------------------------- the graph
@dataclasses.dataclass
class _Block:
    """A kernel layer, the layer dropout goes after, and what the block has."""

    kernel: object
    end: object
    hidden: bool
    has_norm: bool
    inside: bool  # the kernel layer applies its own activation

    @property
    def is_conv(self):
        return isinstance(self.kernel, _CONV)

    @property
    def kind(self):
        return "conv" if self.is_conv else "dense"


@dataclasses.dataclass
class _Graph:
    """One (sub)model: its layers in call order, who consumes what, its blocks, merges and nested models."""

    model: keras.Model
    prefix: str
    layers: list
    consumers: dict
    shapes: dict
    outputs: set
    producers: dict = dataclasses.field(default_factory=dict)  # id(layer) -> producers of its first call's inputs
    blocks: list = dataclasses.field(default_factory=list)
    merges: dict = dataclasses.field(default_factory=dict)  # id(Add layer) -> index of its residual branch
    children: dict = dataclasses.field(default_factory=dict)
    unique: object = None  # name -> a layer name free in this model (set by _Rewriter.prepare)

    def walk(self):
        yield self
        for child in self.children.values():
            yield from child.walk()


_is_graph_model = kg.is_graph_model


def _wiring(model):
    """(layers, consumers, output shapes, ids of layers producing an output, producers) of one model."""
    consumers, shapes, producers = collections.defaultdict(list), {}, {}
    if isinstance(model, keras.Sequential):
        layers = list(model.layers)
        for a, b in zip(layers, layers[1:]):
            consumers[id(a)].append(b)
            producers[id(b)] = [a]
        for layer in layers:
            shapes[id(layer)] = _output_shape(layer)
        return layers, consumers, shapes, {id(layers[-1])}, producers
    layers = []
    for operation, inputs, outputs in kg.call_nodes(model):
        if id(operation) not in shapes:
            layers.append(operation)
            shapes[id(operation)] = outputs[0].shape
            producers[id(operation)] = [kg.producer(t) for t in inputs]
        for tensor in inputs:
            consumers[id(kg.producer(tensor))].append(operation)
    outputs = {id(kg.producer(t)) for t in model.outputs}
    return layers, consumers, shapes, outputs, producers


def _output_shape(layer):
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError):  # a layer called twice has no single output
        return None


def _has_kernel(layer) -> bool:
    if _is_graph_model(layer):
        return any(_has_kernel(inner) for inner in layer.layers)
    return isinstance(layer, _KERNEL)


def _reaches_output(graph, is_output_context: bool) -> set:
    """Ids of layers whose output reaches a model output without another kernel layer."""
    reach = {i for i in graph.outputs} if is_output_context else set()
    changed = True
    while changed:  # one pass in reverse call order settles all but shared layers
        changed = False
        for layer in reversed(graph.layers):
            if id(layer) not in reach and any(
                    id(c) in reach and not _has_kernel(c) for c in graph.consumers[id(layer)]):
                reach.add(id(layer))
                changed = True
    return reach


def _activation_name(layer) -> str:
    activation = getattr(layer, "activation", None)
    if activation is None:
        return "linear"
    name = keras.activations.serialize(activation)
    return name if isinstance(name, str) else "custom"


def _block(layer, graph, hidden: bool) -> _Block:
    """Follows the kernel layer's only consumer through norms up to one activation."""
    end, has_norm = layer, False
    inside = _activation_name(layer) != "linear"
    while True:
        nxt = graph.consumers[id(end)]
        if len(nxt) != 1:
            break
        if isinstance(nxt[0], _NORMS):
            has_norm = True
            if inside:  # Dense(relu) -> BN: the block's activation is done already
                break
            end = nxt[0]
        elif isinstance(nxt[0], _ACTIVATIONS) and not inside:
            end = nxt[0]
            break
        else:
            break
    return _Block(layer, end, hidden, has_norm, inside)


def _ancestors(graph, layer) -> set:
    """Ids of the layers (and inputs) ``layer``'s output is computed from, ``layer`` included."""
    seen, stack = set(), [layer]
    while stack:
        current = stack.pop()
        if id(current) not in seen:
            seen.add(id(current))
            stack += graph.producers.get(id(current), [])
    return seen


def _residual_branch(layer, graph):
    """For an ``Add`` of a shortcut and a residual branch with a kernel layer: the branch's index; else None."""
    if not isinstance(layer, keras.layers.Add):
        return None
    inputs = graph.producers.get(id(layer), [])
    if len(inputs) != 2:
        return None
    for branch in (0, 1):
        shortcut, residual = inputs[1 - branch], inputs[branch]
        above = _ancestors(graph, residual)
        if id(shortcut) in above:
            between = above - _ancestors(graph, shortcut)
            if any(isinstance(x, _KERNEL) or _is_graph_model(x) and _has_kernel(x)
                   for x in graph.layers if id(x) in between):
                return branch
    return None


def _analyze(model, prefix: str = "", is_output_context: bool = True) -> _Graph:
    layers, consumers, shapes, outputs, producers = _wiring(model)
    graph = _Graph(model, prefix, layers, consumers, shapes, outputs, producers)
    reach = _reaches_output(graph, is_output_context)
    for layer in layers:
        if _is_graph_model(layer):
            graph.children[id(layer)] = _analyze(layer, f"{prefix}{layer.name}/", id(layer) in reach)
        elif isinstance(layer, _KERNEL):
            graph.blocks.append(_block(layer, graph, hidden=id(layer) not in reach))
        else:
            branch = _residual_branch(layer, graph)
            if branch is not None:
                graph.merges[id(layer)] = branch
    return graph


# ------------------------------------------------------------------ checks
def _structural(plan) -> list:
    return [name for name in plan.active_techniques() if name in STRUCTURAL]


def _resolve_modality(model, modality):
    if modality is not None:
        return v.check_choice("modality", modality, tuple(_MODALITY_RANK))
    inputs = getattr(model, "inputs", None) if _is_graph_model(model) else None
    if not inputs:
        return None
    rank = len(inputs[0].shape)
    return {r: m for m, r in _MODALITY_RANK.items()}.get(rank)


def _view(model, plan, graph, modality) -> ModelView:
    """What the model offers the techniques' checks."""
    blocks = []
    for g in graph.walk():
        for b in g.blocks:
            blocks.append(BlockView(
                kernel=g.prefix + b.kernel.name, end=g.prefix + b.end.name, kind=b.kind, hidden=b.hidden,
                plain_dense=type(b.kernel) is keras.layers.Dense, has_norm=b.has_norm, shape=g.shapes.get(id(b.end)),
                channels_last=getattr(b.kernel, "data_format", "channels_last") == "channels_last",
                own_constraint=any(b.kernel.get_config().get(f"{key}_constraint") is not None
                                   for key in _kernel_keys(b.kernel)),
                plain_kernel=_kernel_keys(b.kernel) == ("kernel",)))
    merges = [MergeSite(g.prefix + layer.name) for g in graph.walk() for layer in g.layers if id(layer) in g.merges]
    inputs = [InputSite(x.name, tuple(x.shape), _is_float(x)) for x in model.inputs]
    return ModelView(model.name, blocks, inputs, merges, modality, plan)


def check_structural(model, plan, *, modality=None) -> None:
    """Raises the clear error when a plan's structural techniques have no place in ``model``.

    Reads the model's graph and layer shapes only; builds nothing. Each
    technique's ``check`` hook says what it needs (see its class in
    ``kreg.lab.techniques``); the error names the technique (``plan.NAME``)
    and the model.

    Args:
        model: A Keras model.
        plan: A ``RegularizationPlan``.
        modality: As in ``apply_plan``. Default None (from the input rank).

    Raises:
        ValueError: A subclassed model with any technique of ``STRUCTURAL``,
            or a technique the model has no place for (spatial dropout
            without hidden convolution blocks, dropout without hidden Dense
            layers, a penalty with no kernel, ...).

    Example:
        >>> check_structural(conv_only, RegularizationPlan(dropout=0.1))
        Traceback (most recent call last):
        ValueError: Invalid value received for argument `plan.dropout`. ...
    """
    techniques = _structural(plan)
    if not techniques:
        return
    if not _is_graph_model(model):
        tech = registry.get(techniques[0])
        raise v.invalid(f"plan.{tech.name}", _WHY_SUBCLASSED, tech.shown(plan))
    placing.check(_view(model, plan, _analyze(_built(model)), _resolve_modality(model, modality)))


def _built(model):
    if not model.built or not model.inputs:
        raise v.invalid("model", "a built model with known inputs (give it an Input or call it once)", model.name)
    return model


def _is_float(tensor) -> bool:
    return "float" in str(tensor.dtype)


# ------------------------------------------------------------- the rewrite
def _kernel_keys(layer) -> tuple:
    if isinstance(layer, _SEPARABLE):
        return ("depthwise", "pointwise")
    if isinstance(layer, _DEPTHWISE):
        return ("depthwise",)
    return ("kernel",)


def _site(block, graph) -> Site:
    """The hooks' site for one block of a user's model."""
    k = block.kernel
    rank = len(getattr(k, "kernel_size", ())) or 1
    return Site(k.name, k.get_config(), k.__class__, kind=block.kind, keys=_kernel_keys(k), hidden=block.hidden,
                plain_dense=type(k) is keras.layers.Dense, rank=rank,
                kernel_rank=rank + 2 if block.is_conv else 2, has_norm=block.has_norm, inside=block.inside,
                data_format=getattr(k, "data_format", None) or "channels_last", shape=graph.shapes.get(id(block.end)))


class _Rewriter:
    """Clones a model layer by layer with the plan's changes, recording where each went."""

    def __init__(self, plan, modality, seed):
        self.plan, self.modality = plan, modality
        self.ctx = Context(plan, modality, seed)
        self.placements = collections.defaultdict(list)
        self.pairs = []  # (original, clone) of every leaf layer: their weights are copied
        self.after = {}  # id(original layer) -> layers called on its output, in order
        self.sites = {}  # id(kernel layer) -> its Site (the config its clone is made from)
        self.merges = {}  # id(Add layer) -> (index of the residual branch, layers called on it)

    # ------------------------------------------------------------- planning
    def prepare(self, graph):
        """Asks the techniques what goes on each kernel and after each block of ``graph`` (and nested graphs)."""
        names = {layer.name for layer in graph.model.layers} | {x.name for x in graph.model.inputs}

        def unique(base):
            name, i = base, 1
            while name in names:
                name, i = f"{base}_{i}", i + 1
            names.add(name)
            return name

        graph.unique = unique
        p = graph.prefix
        blocks = {id(block.kernel): block for block in graph.blocks}
        for layer in graph.layers:  # in call order: placements list layers as the model calls them
            self.ctx.namer = unique
            if id(layer) in graph.children:
                self.prepare(graph.children[id(layer)])
            elif id(layer) in blocks:
                block = blocks[id(layer)]
                site = self.sites[id(layer)] = _site(block, graph)
                for name in placing.kernel(site, self.ctx):
                    self.placements[name].append(p + layer.name)
                for name, inserted in placing.after_kernel(site, self.ctx):
                    self._insert(layer, inserted, name, p)
                for name, inserted in placing.after_block(site, self.ctx):
                    self._insert(block.end, inserted, name, p)
            elif id(layer) in graph.merges:
                placed = placing.at_merge(MergeSite(layer.name), self.ctx)
                self.merges[id(layer)] = (graph.merges[id(layer)], [inserted for _, inserted in placed])
                for name, inserted in placed:
                    self.placements[name].append(p + inserted.name)

    def _insert(self, layer, new, technique, prefix):
        self.after.setdefault(id(layer), []).append(new)
        if technique:
            self.placements[technique].append(prefix + new.name)

    def input_layers(self, tensor, name, several: bool, unique) -> list:
        """What the techniques put on one input (augmentation, then Gaussian noise)."""
        self.ctx.namer = unique
        site = InputSite(name, tuple(tensor.shape), _is_float(tensor), f"{name}_" if several else "")
        layers = []
        for technique, layer in placing.at_input(site, self.ctx):
            self.placements[technique].append(layer.name)
            layers.append(layer)
        return layers

    # -------------------------------------------------------------- cloning
    def clone(self, graph, top: bool):
        if isinstance(graph.model, keras.Sequential):
            return self._clone_sequential(graph, top)
        return self._clone_functional(graph, top)

    def _clone_functional(self, graph, top):
        model = graph.model
        inputs = keras.tree.map_structure(lambda x: _input_like(x, x.name), model.input)
        flat = keras.tree.flatten(inputs)
        swap = {}
        for x in flat if top else ():
            out = x
            for layer in self.input_layers(x, x.name, len(flat) > 1, graph.unique):
                out = layer(out)
            swap[id(x)] = out

        def call_function(layer, *args, **kwargs):
            if swap:  # the first layers on an input read its augmented, noisy version
                args, kwargs = keras.tree.map_structure(lambda t: swap.get(id(t), t), (args, kwargs))
            merge = self.merges.get(id(origin[id(layer)]))
            if merge and merge[1]:  # the residual branch passes the inserted layers before the merge
                branch, inserted = merge
                pair = list(args[0])
                for new in inserted:
                    pair[branch] = new(pair[branch])
                args = (pair, *args[1:])
            out = layer(*args, **kwargs)
            for inserted in self.after.get(id(origin[id(layer)]), ()):
                out = inserted(out)
            return out

        origin = {}

        def clone_function(layer):
            new = self._clone_layer(layer, graph)
            origin[id(new)] = layer
            return new

        return keras.models.clone_model(model, input_tensors=inputs, clone_function=clone_function,
                                        call_function=call_function)

    def _clone_sequential(self, graph, top):
        model = graph.model
        new_input = _input_like(model.inputs[0], kg.sequential_input_name(model))
        layers = self.input_layers(new_input, new_input.name, False, graph.unique) if top else []
        for layer in model.layers:
            layers.append(self._clone_layer(layer, graph))
            layers += self.after.get(id(layer), [])
        new = keras.Sequential([new_input] + layers, name=model.name, trainable=model.trainable)
        if model.compiled:
            new.compile_from_config(model.get_compile_config())
        return new

    def _clone_layer(self, layer, graph):
        if id(layer) in graph.children:
            return self.clone(graph.children[id(layer)], top=False)
        if not isinstance(layer, keras.layers.Layer):
            return layer  # a stateless keras.ops operation
        site = self.sites.get(id(layer))
        new = placing.make(site) if site is not None else layer.__class__.from_config(layer.get_config())
        self.pairs.append((layer, new))
        return new

    def copy_weights(self):
        for old, new in self.pairs:
            for source, target in _matching_weights(old, new):
                # A copy, not the same buffer: JAX's compiled steps donate (and delete) their inputs.
                target.assign(keras.ops.copy(source.value))


def _matching_weights(old, new) -> list:
    """(old, new) variable pairs: by name (a DropConnect has a ``rate`` variable a Dense lacks), else in order."""
    by_name = {w.name: w for w in new.weights}
    if len(by_name) == len(new.weights) and all(w.name in by_name for w in old.weights):
        return [(w, by_name[w.name]) for w in old.weights]
    if len(old.weights) != len(new.weights):
        raise RuntimeError(f"Layer '{old.name}' has {len(old.weights)} weights, its clone {len(new.weights)}.")
    return list(zip(old.weights, new.weights))


def _input_like(tensor, name):
    """A new Input like ``tensor``, with a free batch size (a Sequential called once on data fixed it)."""
    return keras.Input(batch_shape=(None,) + tuple(tensor.shape[1:]), dtype=tensor.dtype, name=name)


# ------------------------------------------------------------------ public
def apply_plan(model, plan, *, modality=None, seed=0) -> Applied:
    """A new model with ``model``'s weights and the plan's structural techniques in place.

    Each structural technique of the plan goes where its class in
    ``kreg.lab.techniques`` places it (``kreg techniques`` lists them):
    weight penalties and constraints on every kernel (some on hidden layers
    only), a user's own penalty kept and kreg's added to it with
    ``kreg.regularizers.Sum``; dropout-type layers after each hidden
    block's activation (dense blocks or convolution blocks, as the
    technique says); batch normalization after the linear part of each
    hidden block that has no normalization, an activation inside the kernel
    layer (``Dense(64, activation="relu")``) split out into an
    ``Activation`` layer after the norm (batch norm standardizes the
    pre-activations); augmentation, then input noise, right after every
    float input whose rank fits the modality (noise on every float input);
    stochastic depth on the residual branch of each skip connection's
    ``Add``. With a ``plan.schedule`` the variable-rate layers and
    ``Schedulable`` penalties are used, so
    ``kreg.callbacks.RegularizationSchedule`` can ramp them.

    Model-agnostic techniques (label smoothing, SAM, weight decay, MixUp, ...)
    leave the model alone. Layers inside a custom layer (a user's Layer
    subclass, MultiHeadAttention) are cloned as they are. A block that
    spans a nested model's boundary ends at the boundary. The new model's
    inputs take any batch size, and it is compiled like the input model
    when that one was compiled.

    Args:
        model: A built Functional or Sequential Keras model (nested models
            inside it are rewritten too), or a subclassed one when the plan
            has no structural technique: that model is then returned itself,
            since a subclassed model cannot be cloned reliably.
        plan: A ``RegularizationPlan``.
        modality: ``"tabular"``, ``"sequence"`` or ``"image"``; default None
            reads it from the first input's rank (2, 3 or 4).
        seed: Seed of the inserted random layers, each of which gets a
            distinct seed derived from it. Default 0.

    Returns:
        An ``Applied``: the new model, the placements, the output activation
        and the modality. The input model is not modified.

    Raises:
        ValueError: See ``check_structural``.

    Example:
        >>> applied = apply_plan(model, RegularizationPlan(l2=1e-4, dropout=0.2))
        >>> applied.placements["dropout"]
        ['dense_dropout']
    """
    v.check_non_negative_int("seed", seed)
    modality = _resolve_modality(model, modality)
    if not _is_graph_model(model):
        check_structural(model, plan)
        return Applied(model, {}, output_activation(model), modality)
    graph = _analyze(_built(model))
    if _structural(plan):
        placing.check(_view(model, plan, graph, modality))
    rewriter = _Rewriter(plan, modality, seed)
    rewriter.prepare(graph)
    new = rewriter.clone(graph, top=True)
    rewriter.copy_weights()
    return Applied(new, dict(rewriter.placements), output_activation(model), modality)


def regularize(model, plan, *, modality=None, seed=0) -> keras.Model:
    """``apply_plan(model, plan, ...).model``: the model with the plan applied.

    Example:
        >>> model = kreg.regularize(model, kreg.RegularizationPlan(dropout=0.1, l2=1e-4))
    """
    return apply_plan(model, plan, modality=modality, seed=seed).model


@dataclasses.dataclass(frozen=True)
class Parts:
    """What a model offers the structural techniques (``model_parts``), read from its graph.

    Attributes:
        graph: A Functional or Sequential model: structural techniques can be placed in it.
        kernels: It has kernel layers (weight penalties have somewhere to go).
        hidden_conv: Hidden convolution blocks.
        hidden_dense: Hidden Dense blocks.
        unnormalized: A hidden block without a normalization layer (batch norm has a place).
        normalized: A hidden block with a normalization layer.
        float_input: A float input (input noise, augmentation).
        residual: A skip connection's merge with a residual branch.
        present: Regularization the model carries already: the names of the techniques with a
            ``present_as`` whose ``detect`` finds a layer, and ``"penalty"`` (a kernel regularizer).
    """

    graph: bool
    kernels: bool = False
    hidden_conv: bool = False
    hidden_dense: bool = False
    unnormalized: bool = False
    normalized: bool = False
    float_input: bool = False
    residual: bool = False
    present: frozenset = frozenset()


def model_parts(model) -> Parts:
    """What ``model`` offers the structural techniques (reads the graph as ``check_structural`` does).

    Example:
        >>> model_parts(mlp).hidden_dense
        True
    """
    if not _is_graph_model(model) or not getattr(model, "inputs", None):
        return Parts(graph=False)
    graph = _analyze(model)
    blocks = [b for g in graph.walk() for b in g.blocks]
    hidden = [b for b in blocks if b.hidden]
    present = set()
    telling = [t for t in registry.REGISTRY.values() if t.present_as]
    for layer in kg.all_layers(model):
        present |= {t.name for t in telling if t.detect(layer)}
        if any(getattr(layer, f"{key}_regularizer", None) is not None for key in ("kernel", "depthwise", "pointwise")):
            present.add("penalty")
    return Parts(
        graph=True, kernels=bool(blocks), hidden_conv=any(b.is_conv for b in hidden),
        hidden_dense=any(isinstance(b.kernel, _DENSE) for b in hidden),
        unnormalized=any(not b.has_norm for b in hidden), normalized=any(b.has_norm for b in hidden),
        float_input=any(_is_float(x) for x in model.inputs), residual=any(g.merges for g in graph.walk()),
        present=frozenset(present),
    )


def output_activation(model) -> str:
    """``"softmax"``, ``"sigmoid"`` or ``"linear"``: what the model's (first) output is.

    Follows the output back through reshapes and dropout-type layers to an
    activation layer or a layer with an ``activation`` (into nested models).
    For a subclassed model, whose graph is unknown, the last layer it tracks
    with an activation decides. Anything else (ReLU, tanh, no activation)
    counts as ``"linear"``: not probabilities (``output_activation_name``
    tells which).

    Example:
        >>> output_activation(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")]))
        'softmax'
    """
    return _kind(output_activation_name(model))


def output_activation_name(model) -> str:
    """The name of the activation that produces the model's (first) output (``"relu"``, ``"linear"``, ...)."""
    if not _is_graph_model(model):
        layers = [layer for layer in kg.own_layers(model) if hasattr(layer, "activation")]
        return _activation_name(layers[-1]) if layers else "linear"
    layer = model.layers[-1] if isinstance(model, keras.Sequential) else kg.producer(model.outputs[0])
    while True:
        if _is_graph_model(layer):
            return output_activation_name(layer)
        if isinstance(layer, keras.layers.Softmax):
            return "softmax"
        linear = isinstance(layer, keras.layers.Activation) and _activation_name(layer) == "linear"
        if isinstance(layer, _PASSTHROUGH) or linear:
            layer = _producer(model, layer)
            if layer is None:
                return "linear"
            continue
        return _activation_name(layer)

def _producer(model, layer):
    if isinstance(model, keras.Sequential):
        index = model.layers.index(layer)
        return model.layers[index - 1] if index else None
    producer = kg.first_input_producer(layer)
    return None if isinstance(producer, keras.layers.InputLayer) else producer


def _kind(name: str) -> str:
    return name if name in ("softmax", "sigmoid") else "linear"
