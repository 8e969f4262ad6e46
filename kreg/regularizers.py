"""Weight regularizers Keras 3 lacks, and ``get`` to resolve them from data.

Keras already ships L1, L2, L1L2 and OrthogonalRegularizer; ``get`` resolves
their names too, so a YAML file or an ``hp.Choice`` string can name any of them.
"""

from __future__ import annotations

import keras
from keras import ops

from kreg import _validation as v
from kreg._variables import variable_property


@keras.saving.register_keras_serializable(package="kreg")
class ElasticNet(keras.regularizers.Regularizer):
    """Elastic-net penalty with scikit-learn's parametrization.

    ``penalty = alpha * l1_ratio * sum|w| + 0.5 * alpha * (1 - l1_ratio) * sum w^2``

    The same ``alpha`` and ``l1_ratio`` as ``sklearn.linear_model.ElasticNet``,
    and the same penalty. ``l1_ratio=1`` is Keras' ``L1(alpha)``;
    ``l1_ratio=0`` is Keras' ``L2(alpha / 2)``. Mind the data term:
    scikit-learn minimizes ``1/(2n) * ||y - Xw||^2`` plus this penalty, half of
    Keras' ``"mse"`` loss, so a linear model trained on ``"mse"`` with
    ``ElasticNet(alpha)`` lands on scikit-learn's solution for ``alpha / 2``
    (``ElasticNet(2 * alpha)`` reproduces scikit-learn's ``alpha``; the
    ``sparsity_paths`` study checks this against ``enet_path``).

    Args:
        alpha: Overall strength, a non-negative float. Default 0.01.
        l1_ratio: Share of the L1 term, a float in [0, 1]. Default 0.5.

    Example:
        >>> layer = keras.layers.Dense(
        ...     8, kernel_regularizer=kreg.regularizers.ElasticNet(1e-3, 0.5))

    References:
        Zou and Hastie, "Regularization and variable selection via the
        elastic net", JRSS-B 2005.
    """

    def __init__(self, alpha=0.01, l1_ratio=0.5):
        self.alpha = v.check_non_negative("alpha", alpha)
        self.l1_ratio = v.check_rate("l1_ratio", l1_ratio, allow_one=True)

    def __call__(self, x):
        l1 = self.alpha * self.l1_ratio
        l2 = 0.5 * self.alpha * (1.0 - self.l1_ratio)
        return l1 * ops.sum(ops.abs(x)) + l2 * ops.sum(ops.square(x))

    def get_config(self):
        return {"alpha": self.alpha, "l1_ratio": self.l1_ratio}


@keras.saving.register_keras_serializable(package="kreg")
class GroupLasso(keras.regularizers.Regularizer):
    """Group lasso: ``factor * sum_g sqrt(|g|) * ||w_g||_2`` over units or filters.

    A group is every weight of one output unit (a Dense neuron, a conv
    filter): the slice at one index of ``axis``. The penalty is not
    differentiable at ``w_g = 0`` and pushes whole groups to zero together,
    which prunes units rather than single weights. ``sqrt(|g|)`` (the group
    size) keeps large groups from being penalized less per weight.

    Args:
        factor: Strength, a non-negative float. Default 0.01.
        axis: Axis that indexes the groups. Default -1 (output units /
            filters of Dense and Conv kernels).

    Example:
        >>> layer = keras.layers.Dense(
        ...     64, kernel_regularizer=kreg.regularizers.GroupLasso(1e-3))

    References:
        Yuan and Lin, "Model selection and estimation in regression with
        grouped variables", JRSS-B 2006; Scardapane et al., "Group sparse
        regularization for deep neural networks", Neurocomputing 2017.
    """

    def __init__(self, factor=0.01, axis=-1):
        self.factor = v.check_non_negative("factor", factor)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise v.invalid("axis", "an integer axis", axis)
        self.axis = axis

    def __call__(self, x):
        rank = len(x.shape)
        axis = self.axis % rank
        others = tuple(i for i in range(rank) if i != axis)
        group_size = 1
        for i in others:
            group_size *= x.shape[i]
        norms = ops.sqrt(ops.sum(ops.square(x), axis=others) + 1e-12)
        return self.factor * (group_size ** 0.5) * ops.sum(norms)

    def get_config(self):
        return {"factor": self.factor, "axis": self.axis}


@keras.saving.register_keras_serializable(package="kreg")
class Sum(keras.regularizers.Regularizer):
    """The sum of several regularizers (e.g. group lasso plus L2)."""

    def __init__(self, regularizers):
        self.regularizers = [get(r) for r in regularizers]

    def __call__(self, x):
        return sum(r(x) for r in self.regularizers)

    def get_config(self):
        return {"regularizers": [keras.saving.serialize_keras_object(r) for r in self.regularizers]}

    @classmethod
    def from_config(cls, config):
        return cls([keras.saving.deserialize_keras_object(r) for r in config["regularizers"]])


@keras.saving.register_keras_serializable(package="kreg")
class Schedulable(keras.regularizers.Regularizer):
    """Any regularizer times a ``scale`` held in a variable, so a schedule can ramp it.

    Keras' ``L1``/``L2`` (and kreg's regularizers) keep their factor as a
    Python float, which the compiled train step bakes in. Wrapping one here
    makes ``penalty = scale * regularizer(w)`` with ``scale`` a scalar
    variable that ``kreg.callbacks.RegularizationSchedule`` (or any code)
    changes between epochs. Under TensorFlow the compiled step reads the new
    value; JAX's compiled step takes only the model's own variables as
    inputs, so there ``RegularizationSchedule`` retraces the step once per
    change (the cost of one compilation).

    Args:
        regularizer: Anything ``kreg.regularizers.get`` resolves.
        scale: Initial multiplier, a float >= 0. Default 1.0.

    Example:
        >>> reg = kreg.regularizers.Schedulable(keras.regularizers.L2(1e-4))
        >>> layer = keras.layers.Dense(8, kernel_regularizer=reg)
        >>> reg.scale = 0.0  # switched off from the next step on

    References:
        Goodfellow, Bengio and Courville, "Deep Learning", ch. 7.1.
    """

    schedule_kind = "regularizer"
    schedule_attr = "scale"
    scale = variable_property("scale", v.check_non_negative)

    def __init__(self, regularizer, scale=1.0):
        self.regularizer = get(regularizer)
        if self.regularizer is None:
            raise v.invalid("regularizer", "a regularizer", regularizer)
        self.scale = scale

    def __call__(self, x):
        return ops.cast(self._scale, x.dtype) * self.regularizer(x)

    def get_config(self):
        return {"regularizer": keras.saving.serialize_keras_object(self.regularizer), "scale": self.scale}

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["regularizer"]), config.get("scale", 1.0))


def schedulable_terms(regularizer):
    """The ``Schedulable`` regularizers inside ``regularizer`` (itself, or in a ``Sum``)."""
    if isinstance(regularizer, Schedulable):
        return [regularizer]
    if isinstance(regularizer, Sum):
        return [t for r in regularizer.regularizers for t in schedulable_terms(r)]
    return []


_ALIASES = {
    "elastic_net": ElasticNet,
    "elasticnet": ElasticNet,
    "ElasticNet": ElasticNet,
    "group_lasso": GroupLasso,
    "GroupLasso": GroupLasso,
}


def get(identifier):
    """Resolves a regularizer from None, a name, a config dict or an instance.

    Args:
        identifier: ``None``; a name such as ``"l2"`` or ``"elastic_net"``;
            a dict ``{"class_name": ..., "config": {...}}`` or the shorthand
            ``{"l2": 1e-4}`` / ``{"elastic_net": {"alpha": ..., "l1_ratio": ...}}``;
            or a regularizer instance.

    Returns:
        A ``keras.regularizers.Regularizer`` or None.
    """
    if identifier is None or isinstance(identifier, keras.regularizers.Regularizer):
        return identifier
    if isinstance(identifier, str):
        if identifier in _ALIASES:
            return _ALIASES[identifier]()
        return keras.regularizers.get(identifier)
    if isinstance(identifier, dict):
        if "class_name" in identifier:
            name = identifier["class_name"]
            if name in _ALIASES:
                return _ALIASES[name](**identifier.get("config", {}))
            return keras.regularizers.get(identifier)
        if len(identifier) == 1:
            (name, arg), = identifier.items()
            if name in _ALIASES:
                return _ALIASES[name](**arg) if isinstance(arg, dict) else _ALIASES[name](arg)
            cls = type(keras.regularizers.get(name))
            return cls(**arg) if isinstance(arg, dict) else cls(arg)
    if callable(identifier):
        return identifier
    raise v.invalid("identifier", "None, a regularizer name, a dict or a Regularizer", identifier)
