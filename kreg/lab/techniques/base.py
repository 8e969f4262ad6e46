"""What a technique is: its parameters, as data, and the hooks through which it acts.

A technique is one class over ``Technique``. Its class attributes are the
registry's data (name, parameters with kinds and defaults, what it acts on,
which data, tasks and built-in models it fits, which direction regularizes
more); its methods are the hooks the lab calls, each a no-op by default:

- ``check(value, model)``: what it refuses in a model (a ``ModelView``): the
  "Expected ..." phrase of the house sentence, naming the model; None when
  the model has a place for it.
- ``on_kernel(value, site, ctx)``: edits a kernel layer's config before the
  layer is made (a penalty, a constraint, a replacement class, a wrapper);
  True when it placed something there.
- ``after_kernel`` / ``after_block`` (layers after a block's linear part, or
  after its activation), ``at_input`` (layers right after a model input),
  ``at_merge`` (a layer on the residual branch of a skip connection's merge):
  each returns the layers to insert.
- ``detect(layer)``: the layer carries this technique (reading a model back).
- ``optimizer(value)``: keyword arguments for the optimizer.
- ``loss(value, site)``: edits the loss a task is about to make (a ``LossSite``: its class and keyword
  arguments), as label smoothing and the confidence penalty do; asked only for the tasks it fits.
- ``data(value, site)``: layers that map a training batch ``(x, y)`` to a new one (a ``DataSite``), as
  MixUp and CutMix do; several take turns batch by batch.
- ``wrap_model(value, model)``: the model that trains, ``model`` itself or a wrapper with its own train
  step (SAM).
- ``callbacks(value, site)``: Keras callbacks for the training (a ``TrainingSite``: the model, the
  epochs, the data's batch maps), as the strength schedule and SWA are.

The last four run in registry order for every technique the plan switches on
(``kreg.lab.techniques.placing``); ``kreg.lab.task`` and ``kreg.lab.trial.procedures`` ask them and
name no technique.

The same hooks place a technique into a user's model (``kreg.lab.apply``
walks and clones the graph) and into kreg's built-in builders
(``kreg.lab.models.blocks``): a technique is written once. Sites and the
context are plain objects: a hook reads booleans and names, and imports
Keras or kreg's layers inside its body, so the registry stays importable
without Keras (config validation reads it).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

REQUIRED = object()  # a parameter with no default

# Parameter kinds: how a value is checked.
#   strength: float >= 0     rate: float in [0, 1)     ratio: float in [0, 1]
#   count: integer >= 1      positive: float > 0       bool: True / False
KIND_EXPECTED = {
    "strength": "a non-negative float",
    "rate": "a float between 0 and 1 (exclusive)",
    "ratio": "a float between 0 and 1",
    "count": "a positive integer",
    "positive": "a positive float",
    "bool": "a boolean",
}

# What a technique acts on.
ACTS_ON = ("model", "loss", "optimizer", "data", "training", "setting")
MODALITIES = ("tabular", "sequence", "image")
TASKS = ("classification", "regression")
SMALL_VALIDATION = 50  # below this many validation examples, a validation curve is too coarse to stop on
MODALITY_RANK = {"tabular": 2, "sequence": 3, "image": 4}  # the rank of a batch of inputs


def kind_problem(kind: str, value: Any) -> str | None:
    """None when ``value`` is valid for the parameter kind, else what is expected."""
    if kind == "bool":
        return None if isinstance(value, bool) else KIND_EXPECTED[kind]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return KIND_EXPECTED[kind]
    ok = {
        "count": lambda x: float(x).is_integer() and x >= 1,
        "strength": lambda x: x >= 0,
        "positive": lambda x: x > 0,
        "rate": lambda x: 0 <= x < 1,
        "ratio": lambda x: 0 <= x <= 1,
    }[kind](value)
    return None if ok else KIND_EXPECTED[kind]


def coerce(kind: str, value: Any):
    """A checked value in its canonical Python type (int for counts)."""
    if kind == "count":
        return int(value)
    if kind == "bool":
        return bool(value)
    return float(value)


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    kind: str
    default: Any = REQUIRED

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclasses.dataclass(frozen=True)
class Default:
    """A technique's row in kreg's default search space (``kreg.lab.search.default_space``).

    Attributes:
        priority: Rows are taken in increasing priority until the space is full.
        params: Its range, as ``search.techniques`` takes it.
        why: What it does for this kind of model and data, in one line.
        source: Where the range comes from.
        modalities, tasks: The data and tasks it is for (None: whatever the technique allows).
        needs: A ``model_parts`` attribute the model must have (``hidden_conv``, ``residual``, ...).
        unless: Regularization which, already in the model, rules the row out (a technique's name
            or ``"penalty"``: see ``model_parts(...).present``).
        group: Rows of one group are alternatives: the first that fits is taken.
        min_validation: Validation examples the technique needs.
    """

    priority: float
    params: dict
    why: str
    source: str
    modalities: tuple | None = None
    tasks: tuple | None = None
    needs: str | None = None
    unless: str | None = None
    group: str | None = None
    min_validation: int = 0


# ------------------------------------------------------------------ sites
@dataclasses.dataclass
class Site:
    """A block: a kernel layer (about to be made from ``config``), and what follows it.

    Hooks read and edit it. ``kind`` is ``"dense"``, ``"conv"`` or ``"features"`` (a flattened
    feature vector with no kernel layer of its own, as in a built-in CNN without dense units).
    """

    name: str  # the kernel layer's name (unprefixed)
    config: dict  # the kernel layer's config: hooks edit it
    cls: Any = None  # the class the layer is made from (a hook may replace it)
    kind: str = "dense"
    keys: tuple = ("kernel",)  # the kernels ("depthwise", "pointwise" for a separable convolution)
    hidden: bool = True
    plain_dense: bool = False  # a keras Dense (DropConnect can replace it)
    rank: int = 1  # spatial rank of a convolution (1, 2, 3)
    kernel_rank: int = 2  # rank of its kernel tensor
    has_norm: bool = False  # a normalization layer follows it already
    inside: bool = False  # the layer applies its own activation
    data_format: str = "channels_last"
    shape: tuple | None = None  # the output shape of the block's end
    fresh: bool = False  # kreg makes this layer (a built-in builder), not a user's model
    penalties: list = dataclasses.field(default_factory=list)  # kreg's penalties for its kernels (summed)
    make: Any = None  # config -> layer, when a hook replaces how the layer is made (default cls.from_config)
    wrappers: list = dataclasses.field(default_factory=list)  # callables layer -> layer (e.g. a wrapper)
    moved_activation: Any = None  # the layer's own activation, moved out after the layers inserted after it

    @property
    def channels_last(self) -> bool:
        return self.data_format != "channels_first"


@dataclasses.dataclass
class InputSite:
    """A model input: its name, its shape and whether it holds floats."""

    name: str
    shape: tuple
    is_float: bool = True
    prefix: str = ""  # prepended to the names of the layers placed on it (several inputs)


@dataclasses.dataclass
class MergeSite:
    """A skip connection's merge (``Add`` of a shortcut and a residual branch)."""

    name: str


@dataclasses.dataclass
class Context:
    """What a hook needs besides its site: the plan, the data's modality, seeds and free layer names."""

    plan: Any
    modality: str | None = None
    next_seed: int = 0
    namer: Any = None  # base -> a layer name free in the model (default: free among the names given so far)
    used: set = dataclasses.field(default_factory=set)

    def seed(self, span: int = 1) -> int:
        seed, self.next_seed = self.next_seed, self.next_seed + span
        return seed

    def name(self, base: str) -> str:
        if self.namer:
            return self.namer(base)
        name, i = base, 1
        while name in self.used:
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name

    @property
    def scheduled(self) -> bool:
        """A strength schedule ramps the plan's rates and penalties: use the variable-rate layers."""
        return self.plan.get("schedule") is not None


@dataclasses.dataclass
class LossSite:
    """The loss a task is about to make, ``cls(**args)``: hooks edit it.

    ``head`` is what the model's output holds: ``"categorical"`` (one output per class), ``"binary"`` (one
    unit for two classes) or ``"regression"``. A classification loss starts as a cross-entropy (kreg's
    sparse one, or a binary one for a one-unit head) with ``from_logits`` in its arguments; both take a
    ``label_smoothing`` keyword.
    """

    task: str  # "classification" or "regression"
    head: str
    cls: Any  # the loss class (a hook may replace it)
    args: dict  # its keyword arguments


@dataclasses.dataclass
class DataSite:
    """The training data pipeline, for hooks that return batch maps (layers ``(x, y) -> (x, y)``)."""

    modality: str | None
    num_classes: int | None  # None for regression
    seed: int  # the pipeline's seed for batch-level randomness


@dataclasses.dataclass
class TrainingSite:
    """A training about to run, for ``callbacks`` hooks; they record what the trial reads back."""

    model: Any  # the compiled model (or its wrapper)
    epochs: int
    bn_data: Any  # the training inputs a callback may recompute batch statistics on
    batch_maps: tuple = ()  # the data hooks' layers (a schedule ramps their strength too)
    scheduled: int = 0  # objects a strength schedule ramps (set by its hook)
    averager: Any = None  # a callback averaging weights over epochs (SWA), whose weights the trial keeps


@dataclasses.dataclass
class BlockView:
    """One block of a model, as checks read it."""

    kernel: str  # the kernel layer's name, prefixed by its nested models
    end: str  # the name of the layer the block ends with
    kind: str
    hidden: bool
    plain_dense: bool
    has_norm: bool
    shape: tuple | None
    channels_last: bool
    own_constraint: bool  # a kernel of the layer has a constraint of its own
    plain_kernel: bool = True  # one kernel named ``kernel`` (not a separable or depthwise convolution)


@dataclasses.dataclass
class ModelView:
    """What a model offers the techniques, read off its graph (checks read it, ``kreg.lab.apply`` makes it)."""

    name: str
    blocks: list  # BlockView, nested models' too
    inputs: list  # InputSite
    merges: list  # MergeSite
    modality: str | None
    plan: Any

    @property
    def hidden(self) -> list:
        return [b for b in self.blocks if b.hidden]

    @property
    def none(self) -> str:
        return f"model '{self.name}' has none"


# -------------------------------------------------------------- technique
class Technique:
    """One searchable technique: its data (class attributes) and its hooks (methods).

    Attributes:
        name: The name in plans, YAML and hyperparameters (``l2``, ``augment_shift``).
        params: Its parameters; the first is the "strength" a shorthand range sets. Given as
            ``(name, kind)`` or ``(name, kind, default)`` tuples or ``Param``s.
        acts_on: ``model``, ``loss``, ``optimizer``, ``data``, ``training`` or ``setting``.
        summary: One line for docs and ``kreg validate``.
        needs: The part of a model it goes into (``"conv"``, ``"hidden_dense"``, ``"kernel"``,
            ``"input"``, ``"residual"``), shown by ``kreg techniques``; ``check`` enforces it.
        builtin_models: The built-in model types that have that part (None: all).
        modalities: Data modalities it fits (None: all).
        tasks: Tasks it fits.
        stronger: ``+1`` when a larger first parameter regularizes more, ``-1`` when a smaller one
            does (patience), ``0`` when it has no such order.
        present_as: For ``model_parts``: how a model that carries it already is described
            (``"Dropout layers"``); None when ``detect`` is not used for that.
        defaults: Its rows in kreg's default search space.
        position: Its place in the registry's order, which is the order of a plan's description and
            parameters (kept stable across releases: a new technique takes a free number).
    """

    name: str = ""
    params: tuple = ()
    acts_on: str = "model"
    summary: str = ""
    needs: str | None = None
    builtin_models: tuple | None = None
    modalities: tuple | None = None
    tasks: tuple = TASKS
    stronger: int = 1
    present_as: str | None = None
    defaults: tuple = ()
    position: float = 100.0
    soft_labels: bool = False  # it trains on soft labels (one output per class needed)
    changes_inference: bool = False  # placed in a model, it changes the model's inference outputs

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.params = tuple(p if isinstance(p, Param) else Param(*p) for p in cls.params)

    # ------------------------------------------------------------- data
    @property
    def is_setting(self) -> bool:
        return self.acts_on == "setting"

    @property
    def is_flag(self) -> bool:
        return not self.params

    @property
    def value_is_spec(self) -> bool:
        """Its value in a plan is a spec with named parameters (``plan.elastic_net.l1_ratio``)."""
        return len(self.params) > 1

    @property
    def structural(self) -> bool:
        """It goes into the model's layers (``kreg.regularize`` places it)."""
        return self.acts_on == "model"

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def augmentation(self) -> str | None:
        """``"shift"`` for ``augment_shift``; None for other techniques."""
        return None

    def is_off(self, value) -> bool:
        """The value leaves the technique without effect (a strength of 0, a one-member ensemble)."""
        return value is None

    def shown(self, plan):
        """The value a refusal quotes."""
        return plan.get(self.name)

    # ------------------------------------------------------------ hooks
    def check(self, value, model: ModelView) -> str | None:
        """None when ``model`` has a place for the technique, else what it would need (naming the model)."""
        return None

    def on_kernel(self, value, site: Site, ctx: Context) -> bool:
        """Edits ``site.config`` (or ``site.cls``, ``site.wrappers``); True when it placed something."""
        return False

    def after_kernel(self, value, site: Site, ctx: Context) -> list:
        """Layers right after the kernel layer, before the block's activation."""
        return []

    def after_block(self, value, site: Site, ctx: Context) -> list:
        """Layers after the block's end (its activation)."""
        return []

    def at_input(self, value, site: InputSite, ctx: Context) -> list:
        """Layers right after a model input."""
        return []

    def at_merge(self, value, site: MergeSite, ctx: Context):
        """A layer called on the residual branch before a skip connection's merge, or None."""
        return None

    def detect(self, layer) -> bool:
        """The (built) layer carries this technique."""
        return False

    def optimizer(self, value) -> dict:
        """Keyword arguments the technique adds to the optimizer."""
        return {}

    def loss(self, value, site: LossSite) -> None:
        """Edits ``site.cls`` / ``site.args``: what the technique does to the task's loss."""
        return None

    def data(self, value, site: DataSite) -> list:
        """Layers mapping a training batch ``(x, y)`` to a new one (labels may come out soft)."""
        return []

    def wrap_model(self, value, model):
        """The model that trains: ``model``, or a wrapper around it with its own train step."""
        return model

    def callbacks(self, value, site: TrainingSite) -> list:
        """Keras callbacks the training runs (after the trial's own); may set ``site.scheduled`` /
        ``site.averager``."""
        return []

    def __repr__(self):
        return f"<technique {self.name}>"


def collect(namespace: dict) -> tuple:
    """The techniques a family module defines, in the order they are written: one instance per class
    with a ``name``."""
    module = namespace["__name__"]
    return tuple(obj() for obj in namespace.values()
                 if isinstance(obj, type) and issubclass(obj, Technique) and obj.__module__ == module and obj.name)


# ------------------------------------------------------- hook helpers
def terms(regularizer) -> list:
    """The leaf penalties of a kernel regularizer (through kreg's ``Sum`` and ``Schedulable``)."""
    if regularizer is None:
        return []
    inner = getattr(regularizer, "regularizers", None)
    if inner is not None:
        return [t for r in inner for t in terms(r)]
    wrapped = getattr(regularizer, "regularizer", None)
    if wrapped is not None:
        return terms(wrapped)
    return [regularizer]


def kernel_terms(layer) -> list:
    """The leaf penalties on every kernel of ``layer``."""
    return [t for key in ("kernel", "depthwise", "pointwise") for t in terms(getattr(layer, f"{key}_regularizer", None))]
