"""A RegularizationPlan onto any Keras model: ``regularize(model, plan)``.

The plan goes where a practitioner would put it. Weight penalties and the
proximal L1 constraint go on every kernel (Dense, EinsumDense, Conv1D/2D/3D,
their transposes, separable and depthwise convolutions); group lasso on hidden
layers only. Dropout goes after hidden dense blocks, spatial dropout or
DropBlock after hidden convolution blocks, batch normalization between a
hidden block's linear part and its activation, and input noise and
augmentation right after the inputs. Nested Functional and Sequential models
are rewritten too; branches and skip connections keep their wiring.

A *block* is a kernel layer followed by at most one chain of normalization
layers and one activation layer (``Conv2D -> BatchNormalization -> ReLU``),
each the only consumer of the previous one; its *end* is where dropout goes,
so on a residual branch it lands before the merge, on that branch only. An
*output layer* is a kernel layer whose output reaches a model output without
passing another kernel layer: it gets the penalty, never group lasso, and
nothing after it.

The graph is read from the Functional model's nodes (``_nodes_by_depth`` and
the tensors' ``_keras_history``, the structures ``keras.models.clone_model``
itself walks); the rewrite is ``clone_model`` with a ``clone_function`` (new
configs) and a ``call_function`` (layers inserted after a call). A Sequential
model is rebuilt as a Sequential list.
"""

from __future__ import annotations

import collections
import dataclasses

import keras
from keras.src.models.functional import Functional  # what keras.Model(inputs, outputs) builds

from kreg import _validation as v
from kreg import regularizers as kreg_regularizers
from kreg.augment import augmentation_layers
from kreg.layers import DropBlock1D
from kreg.layers import DropBlock2D
from kreg.layers import DropConnect
from kreg.layers import ScheduledGaussianNoise
from kreg.layers import ScheduledSpatialDropout1D
from kreg.layers import ScheduledSpatialDropout2D
from kreg.lab.models.blocks import dropout as dropout_layer
from kreg.lab.models.blocks import kernel_constraint
from kreg.lab.models.blocks import kernel_regularizer
from kreg.lab.techniques import AUGMENTATIONS
from kreg.lab.techniques import MIXING as MIXING_AUGMENTATIONS
from kreg.lab.techniques import for_modality

_PENALTIES = ("l1", "l2", "elastic_net", "group_lasso", "proximal_l1")
STRUCTURAL = _PENALTIES + (
    "dropout", "spatial_dropout", "drop_block", "drop_connect", "input_noise", "batch_norm",
) + tuple(f"augment_{name}" for name in AUGMENTATIONS if name not in MIXING_AUGMENTATIONS)

_MODALITY_RANK = {"tabular": 2, "sequence": 3, "image": 4}
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
    split: bool = False  # that activation moved out, after an inserted batch norm

    @property
    def is_conv(self):
        return isinstance(self.kernel, _CONV)


@dataclasses.dataclass
class _Graph:
    """One (sub)model: its layers in call order, who consumes what, its blocks, its nested models."""

    model: keras.Model
    prefix: str
    layers: list
    consumers: dict
    shapes: dict
    outputs: set
    blocks: list = dataclasses.field(default_factory=list)
    children: dict = dataclasses.field(default_factory=dict)
    unique: object = None  # name -> a layer name free in this model (set by _Rewriter.prepare)

    def walk(self):
        yield self
        for child in self.children.values():
            yield from child.walk()


def _is_graph_model(model) -> bool:
    return isinstance(model, (keras.Sequential, Functional))


def _wiring(model):
    """(layers, consumers, output shapes, ids of layers producing an output) of one model."""
    consumers, shapes = collections.defaultdict(list), {}
    if isinstance(model, keras.Sequential):
        layers = list(model.layers)
        for a, b in zip(layers, layers[1:]):
            consumers[id(a)].append(b)
        for layer in layers:
            shapes[id(layer)] = _output_shape(layer)
        return layers, consumers, shapes, {id(layers[-1])}
    layers = []
    for depth in sorted(model._nodes_by_depth, reverse=True):  # inputs first
        for node in model._nodes_by_depth[depth]:
            if node.operation is None or node.is_input:
                continue
            if id(node.operation) not in shapes:
                layers.append(node.operation)
                shapes[id(node.operation)] = node.outputs[0].shape
            for tensor in node.input_tensors:
                consumers[id(tensor._keras_history.operation)].append(node.operation)
    outputs = {id(t._keras_history.operation) for t in model.outputs}
    return layers, consumers, shapes, outputs


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


def _analyze(model, prefix: str = "", is_output_context: bool = True) -> _Graph:
    layers, consumers, shapes, outputs = _wiring(model)
    graph = _Graph(model, prefix, layers, consumers, shapes, outputs)
    reach = _reaches_output(graph, is_output_context)
    for layer in layers:
        if _is_graph_model(layer):
            graph.children[id(layer)] = _analyze(layer, f"{prefix}{layer.name}/", id(layer) in reach)
        elif isinstance(layer, _KERNEL):
            graph.blocks.append(_block(layer, graph, hidden=id(layer) not in reach))
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


def _refuse(technique, plan, expected):
    value = getattr(plan, technique, None) if not technique.startswith("augment_") else plan.augmentation
    return v.invalid(f"plan.{technique}", expected, value)


def check_structural(model, plan, *, modality=None) -> None:
    """Raises the clear error when a plan's structural techniques have no place in ``model``.

    Reads the model's graph and layer shapes only; builds nothing.

    Args:
        model: A Keras model.
        plan: A ``RegularizationPlan``.
        modality: As in ``apply_plan``. Default None (from the input rank).

    Raises:
        ValueError: A subclassed model with any technique of ``STRUCTURAL``;
            spatial dropout or DropBlock without hidden convolution blocks,
            a DropBlock larger than a feature map or on 3D convolutions;
            dropout or DropConnect without hidden Dense layers; batch norm
            where every hidden block has a normalization; a penalty with no
            kernel; the proximal step on a kernel with a constraint of its
            own; an augmentation that does not fit the inputs.

    Example:
        >>> check_structural(mlp, RegularizationPlan(spatial_dropout=0.1))
        Traceback (most recent call last):
        ValueError: Invalid value received for argument `plan.spatial_dropout`. ...
    """
    techniques = _structural(plan)
    if not techniques:
        return
    if not _is_graph_model(model):
        raise _refuse(techniques[0], plan, _WHY_SUBCLASSED)
    _check(model, plan, _analyze(_built(model)), _resolve_modality(model, modality))


def _built(model):
    if not model.built or not model.inputs:
        raise v.invalid("model", "a built model with known inputs (give it an Input or call it once)", model.name)
    return model


def _check(model, plan, graph, modality) -> None:
    blocks = [b for g in graph.walk() for b in g.blocks]
    none = f"model '{model.name}' has none"
    _check_penalties(plan, blocks, none)
    _check_dropouts(plan, [b for b in blocks if b.hidden], none)
    if plan.drop_block is not None:
        _check_drop_block(plan, graph)
    _check_inputs(model, plan, modality)


def _check_penalties(plan, blocks, none):
    active = [t for t in _PENALTIES if getattr(plan, t, None)]
    if active and not blocks:
        raise _refuse(active[0], plan, f"a model with kernel layers (weight penalties go on kernels); {none}")
    if plan.group_lasso and not any(b.hidden for b in blocks):
        raise _refuse("group_lasso", plan, f"a model with hidden kernel layers (group lasso spares outputs); {none}")
    if plan.proximal_l1:
        _check_constraints(plan, blocks)


def _check_dropouts(plan, hidden, none):
    dense = [b for b in hidden if isinstance(b.kernel, _DENSE)]
    if (plan.spatial_dropout or plan.drop_block is not None) and not any(b.is_conv for b in hidden):
        raise _refuse("spatial_dropout" if plan.spatial_dropout else "drop_block", plan,
                      "a model with hidden convolution layers (spatial dropout and DropBlock go after "
                      f"convolution blocks); {none}")
    if plan.dropout and not dense:
        raise _refuse("dropout", plan,
                      f"a model with hidden Dense layers (dropout goes after hidden dense blocks); {none}")
    if plan.drop_connect and not any(type(b.kernel) is keras.layers.Dense for b in dense):
        raise _refuse("drop_connect", plan, f"a model with hidden Dense layers (DropConnect replaces them); {none}")
    if plan.batch_norm and all(b.has_norm for b in hidden):
        raise _refuse("batch_norm", plan, "a model with hidden blocks without a normalization layer (batch norm "
                      f"goes between a block's linear part and its activation); {none}")


def _check_constraints(plan, blocks):
    for block in blocks:
        for key in _kernel_keys(block.kernel):
            if block.kernel.get_config().get(f"{key}_constraint") is not None:
                raise _refuse("proximal_l1", plan, "kernels without a constraint of their own (the proximal step is "
                              f"the kernel's constraint); layer '{block.kernel.name}' has one")


def _check_drop_block(plan, root):
    size = plan.drop_block.block_size
    for graph in root.walk():
        for block in graph.blocks:
            if not (block.hidden and block.is_conv):
                continue
            shape = graph.shapes.get(id(block.end))
            where = f"layer '{graph.prefix}{block.end.name}'"
            channels_last = getattr(block.kernel, "data_format", "channels_last") == "channels_last"
            if shape is None or len(shape) not in (3, 4) or not channels_last:
                raise _refuse("drop_block", plan, "1D or 2D channels-last convolution blocks (DropBlock1D/2D); "
                              f"{where} outputs {shape}")
            spatial = shape[1:-1]
            if any(d is None or d < size for d in spatial):
                raise _refuse("drop_block", plan, f"a block_size no larger than every feature map it drops from; "
                              f"{where} outputs {'x'.join(str(d) for d in spatial)} maps")


def _check_inputs(model, plan, modality):
    if not (plan.input_noise or _augments(plan)):
        return
    floats = [x for x in model.inputs if _is_float(x)]
    if plan.input_noise and not floats:
        raise _refuse("input_noise", plan, "a model with a float input (noise is added to it); "
                      f"model '{model.name}' has none")
    if not _augments(plan):
        return
    if modality is None:
        raise v.invalid("modality", "'tabular', 'sequence' or 'image' (the input rank says none; pass modality=)",
                        modality)
    augmentation_layers(modality, plan.augmentation)  # raises when an augmentation does not fit the modality
    if not any(len(x.shape) == _MODALITY_RANK[modality] for x in floats):
        shapes = [tuple(x.shape) for x in model.inputs]
        raise _refuse(_augments(plan)[0], plan, f"a float input of rank {_MODALITY_RANK[modality]} "
                      f"({modality} data); model '{model.name}' has inputs of shapes {shapes}")


def _augments(plan) -> list:
    return [t for t in _structural(plan) if t.startswith("augment_")]


def _is_float(tensor) -> bool:
    return "float" in str(tensor.dtype)


# ------------------------------------------------------------- the rewrite
def _kernel_keys(layer) -> tuple:
    if isinstance(layer, _SEPARABLE):
        return ("depthwise", "pointwise")
    if isinstance(layer, _DEPTHWISE):
        return ("depthwise",)
    return ("kernel",)


class _Rewriter:
    """Clones a model layer by layer with the plan's changes, recording where each went."""

    def __init__(self, plan, modality, seed):
        self.plan, self.modality, self._seed = plan, modality, seed
        self.placements = collections.defaultdict(list)
        self.pairs = []  # (original, clone) of every leaf layer: their weights are copied
        self.after = {}  # id(original layer) -> layers called on its output, in order
        self.blocks = {}  # id(kernel layer) -> its _Block

    def seed(self, span=1) -> int:
        seed, self._seed = self._seed, self._seed + span
        return seed

    # ------------------------------------------------------------- planning
    def prepare(self, graph):
        """Makes the layers to insert after each block of ``graph`` (and nested graphs)."""
        names = {layer.name for layer in graph.model.layers} | {x.name for x in graph.model.inputs}

        def unique(base):
            name, i = base, 1
            while name in names:
                name, i = f"{base}_{i}", i + 1
            names.add(name)
            return name

        for block in graph.blocks:
            self.blocks[id(block.kernel)] = block
            if block.hidden:
                self._prepare_block(block, graph, unique)
        for layer in graph.layers:
            if id(layer) in graph.children:
                self.prepare(graph.children[id(layer)])
        graph.unique = unique

    def _insert(self, layer, new, technique, prefix):
        self.after.setdefault(id(layer), []).append(new)
        if technique:
            self.placements[technique].append(prefix + new.name)

    def _prepare_block(self, block, graph, unique):
        plan, k, p = self.plan, block.kernel, graph.prefix
        block.split = block.inside and plan.batch_norm and not block.has_norm
        shape = graph.shapes[id(block.end)]
        if plan.batch_norm and not block.has_norm:
            axis = 1 if getattr(k, "data_format", None) == "channels_first" else -1
            self._insert(k, keras.layers.BatchNormalization(axis=axis, name=unique(f"{k.name}_bn")), "batch_norm", p)
            if block.split:  # the activation moves out of the kernel layer, after the norm
                activation = keras.layers.Activation(k.get_config()["activation"], name=unique(f"{k.name}_act"))
                self._insert(k, activation, None, p)
        if isinstance(k, _DENSE) and plan.dropout:
            self._insert(block.end, dropout_layer(plan, self.seed(), unique(f"{k.name}_dropout")), "dropout", p)
        if block.is_conv and plan.drop_block is not None:
            cls = DropBlock1D if len(shape) == 3 else DropBlock2D
            layer = cls(plan.drop_block.rate, plan.drop_block.block_size, seed=self.seed(),
                        name=unique(f"{k.name}_dropblock"))
            self._insert(block.end, layer, "drop_block", p)
        if block.is_conv and plan.spatial_dropout:
            self._insert(block.end, self._spatial_dropout(k, shape, unique), "spatial_dropout", p)

    def _spatial_dropout(self, conv, shape, unique):
        rank = len(shape) - 2 if shape is not None else len(conv.kernel_size)
        scheduled = self.plan.schedule is not None
        # Keras has no variable-rate SpatialDropout3D: a schedule leaves the 3D rate constant.
        cls = {1: (keras.layers.SpatialDropout1D, ScheduledSpatialDropout1D),
               2: (keras.layers.SpatialDropout2D, ScheduledSpatialDropout2D),
               3: (keras.layers.SpatialDropout3D, keras.layers.SpatialDropout3D)}[rank][scheduled and rank < 3]
        kwargs = {} if rank == 1 else {"data_format": conv.data_format}
        return cls(self.plan.spatial_dropout, seed=self.seed(), name=unique(f"{conv.name}_sdrop"), **kwargs)

    def input_layers(self, tensor, name, several: bool, unique) -> list:
        """Augmentation, then Gaussian noise, for one input (float inputs only)."""
        if not _is_float(tensor):
            return []
        prefix, layers = (f"{name}_" if several else ""), []
        if _augments(self.plan) and len(tensor.shape) == _MODALITY_RANK.get(self.modality):
            spec = self.plan.augmentation
            for aug in for_modality(self.modality):  # kreg's order: geometric, then photometric
                for layer in augmentation_layers(self.modality, {aug: spec.get(aug, 0)}, seed=self.seed(16)):
                    layer.name = unique(f"{prefix}augment_{aug}")  # (not built yet: the name is free to change)
                    self.placements[f"augment_{aug}"].append(layer.name)
                    layers.append(layer)
        if self.plan.input_noise:
            cls = ScheduledGaussianNoise if self.plan.schedule is not None else keras.layers.GaussianNoise
            layers.append(cls(self.plan.input_noise, seed=self.seed(), name=unique(f"{prefix}input_noise")))
            self.placements["input_noise"].append(layers[-1].name)
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
        new_input = _input_like(model.inputs[0], model._layers[0].name)
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
        block = self.blocks.get(id(layer))
        if block is not None:
            new = self._clone_kernel(layer, block, graph.prefix)
        else:
            new = layer.__class__.from_config(layer.get_config())
        self.pairs.append((layer, new))
        return new

    def _clone_kernel(self, layer, block, prefix):
        config, plan = layer.get_config(), self.plan
        for key in _kernel_keys(layer):  # a separable convolution has two kernels, each gets its own objects
            ours = kernel_regularizer(plan, hidden=block.hidden)
            theirs = config.get(f"{key}_regularizer")
            if ours is not None:  # the user's penalty stays, kreg's adds to it
                config[f"{key}_regularizer"] = kreg_regularizers.Sum([theirs, ours]) if theirs else ours
            if plan.proximal_l1:  # (check_structural refused kernels with a constraint of their own)
                config[f"{key}_constraint"] = kernel_constraint(plan)
        for technique in _PENALTIES:
            if getattr(plan, technique, None) and (technique != "group_lasso" or block.hidden):
                self.placements[technique].append(prefix + layer.name)
        if block.split:
            config["activation"] = "linear"
        if block.hidden and plan.drop_connect and type(layer) is keras.layers.Dense:
            self.placements["drop_connect"].append(prefix + layer.name)
            return _drop_connect(config, plan.drop_connect, self.seed())
        return layer.__class__.from_config(config)

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


def _drop_connect(config, rate, seed):
    """A Dense layer's config as a DropConnect layer (same weights, same call)."""
    keys = ("units", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer",
            "bias_regularizer", "kernel_constraint", "bias_constraint", "activity_regularizer", "name",
            "trainable", "dtype")
    return DropConnect(rate=rate, seed=seed, **{k: config[k] for k in keys if k in config})


# ------------------------------------------------------------------ public
def apply_plan(model, plan, *, modality=None, seed=0) -> Applied:
    """A new model with ``model``'s weights and the plan's structural techniques in place.

    Weight penalties (``l1``, ``l2``, ``elastic_net``, ``group_lasso`` on
    hidden layers only) and the proximal L1 constraint go on every kernel.
    A regularizer the user put on a kernel stays: kreg's penalty is added to
    it with ``kreg.regularizers.Sum``. A kernel with a constraint of its own
    refuses ``proximal_l1`` (one constraint per kernel). ``dropout`` goes
    after each hidden Dense/EinsumDense block's activation,
    ``spatial_dropout`` and ``drop_block`` after each hidden convolution
    block's (SpatialDropout1D/2D/3D, DropBlock1D/2D), ``drop_connect`` turns
    hidden ``Dense`` layers into ``kreg.layers.DropConnect`` with the same
    weights. ``batch_norm`` puts BatchNormalization after the linear part of
    each hidden block that has no normalization; an activation inside the
    kernel layer (``Dense(64, activation="relu")``) is split out into an
    ``Activation`` layer after the norm, since batch norm standardizes the
    pre-activations (Ioffe and Szegedy; kreg's builders do the same).
    Augmentation, then input noise, go right after every float input whose
    rank fits the modality (noise on every float input), so a multi-input
    model gets them on each input that fits. With a ``plan.schedule`` the
    variable-rate layers and ``Schedulable`` penalties are used, so
    ``kreg.callbacks.RegularizationSchedule`` can ramp them (3D spatial
    dropout keeps a constant rate: Keras has no variable-rate one).

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
        _check(model, plan, graph, modality)
    rewriter = _Rewriter(plan, modality, seed)
    rewriter.prepare(graph)
    new = rewriter.clone(graph, top=True)
    rewriter.copy_weights()
    return Applied(new, dict(rewriter.placements), output_activation(model), modality)


def regularize(model, plan, *, modality=None, seed=0) -> keras.Model:
    """``apply_plan(model, plan, ...).model``: the model with the plan applied.

    Example:
        >>> model = kreg.regularize(model, kreg.RegularizationPlan(spatial_dropout=0.1, l2=1e-4))
    """
    return apply_plan(model, plan, modality=modality, seed=seed).model


@dataclasses.dataclass(frozen=True)
class Parts:
    """What a model offers the structural techniques (``model_parts``), read from its graph.

    Attributes:
        graph: A Functional or Sequential model: structural techniques can be placed in it.
        kernels: It has kernel layers (weight penalties have somewhere to go).
        hidden_conv: Hidden convolution blocks (spatial dropout, DropBlock).
        hidden_dense: Hidden Dense blocks (dropout, DropConnect).
        unnormalized: A hidden block without a normalization layer (batch norm has a place).
        normalized: A hidden block with a normalization layer.
        float_input: A float input (input noise, augmentation).
        present: Regularization the model carries already: ``"dropout"``, ``"spatial_dropout"``,
            ``"input_noise"``, ``"penalty"`` (a kernel regularizer).
    """

    graph: bool
    kernels: bool = False
    hidden_conv: bool = False
    hidden_dense: bool = False
    unnormalized: bool = False
    normalized: bool = False
    float_input: bool = False
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
    kinds = {"spatial_dropout": (keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D,
                                 keras.layers.SpatialDropout3D),
             "dropout": (keras.layers.Dropout, keras.layers.AlphaDropout, keras.layers.GaussianDropout),
             "input_noise": (keras.layers.GaussianNoise,)}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for name, types in kinds.items():
            if isinstance(layer, types) and not (name == "dropout" and isinstance(layer, kinds["spatial_dropout"])):
                present.add(name)
        if any(getattr(layer, f"{key}_regularizer", None) is not None for key in ("kernel", "depthwise", "pointwise")):
            present.add("penalty")
    return Parts(
        graph=True, kernels=bool(blocks), hidden_conv=any(b.is_conv for b in hidden),
        hidden_dense=any(isinstance(b.kernel, _DENSE) for b in hidden),
        unnormalized=any(not b.has_norm for b in hidden), normalized=any(b.has_norm for b in hidden),
        float_input=any(_is_float(x) for x in model.inputs), present=frozenset(present),
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
        layers = [layer for layer in model._flatten_layers(include_self=False) if hasattr(layer, "activation")]
        return _activation_name(layers[-1]) if layers else "linear"
    layer = model.layers[-1] if isinstance(model, keras.Sequential) else model.outputs[0]._keras_history.operation
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
    tensor = layer._inbound_nodes[0].input_tensors[0]
    producer = tensor._keras_history.operation
    return None if isinstance(producer, keras.layers.InputLayer) else producer


def _kind(name: str) -> str:
    return name if name in ("softmax", "sigmoid") else "linear"
