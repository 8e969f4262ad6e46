"""Every read of Keras' private model graph the lab makes, in one place.

Checked on Keras 3.15.1 (the version ``pyproject.toml`` requires, ``keras>=3.15``), TensorFlow and JAX
backends. Keras has no public API for a Functional model's call graph; ``keras.models.clone_model``
itself walks these same structures, so they are the least likely to move. If a Keras release changes
them, this module is the one to fix. What is read, and why:

- ``keras.src.models.functional.Functional``: what ``keras.Model(inputs, outputs)`` builds. Keras exports
  no public class to tell a graph model from a subclassed one (a subclassed model is a ``keras.Model``
  too), and only a graph model can be rewired.
- ``model._nodes_by_depth``: the model's call nodes, by depth (``clone_model`` walks them the same way):
  which layer consumes which tensor, so blocks (kernel, norm, activation) and skip connections are found.
- ``tensor._keras_history.operation``: the layer that produced a symbolic tensor (an output, a node's
  input): the only link from a tensor back to its producer.
- ``layer._inbound_nodes``: the call of a layer (to follow an output back through reshapes to its
  activation).
- ``model._layers``: a Sequential model's layers including its ``InputLayer`` (its name is the input's).
- ``model._flatten_layers(...)``: every layer, nested models' and wrappers' too, in one pass.
- The module name ``keras.src.layers.preprocessing``: Keras' preprocessing (augmentation) layers have no
  common public base class.
"""

from __future__ import annotations

import keras
from keras.src.models.functional import Functional


def is_graph_model(model) -> bool:
    """A Functional or Sequential model (its layers can be rewired); not a subclassed one."""
    return isinstance(model, (keras.Sequential, Functional))


def producer(tensor):
    """The layer (or operation) that produced a symbolic tensor."""
    return tensor._keras_history.operation


def call_nodes(model):
    """``(operation, input tensors, output tensors)`` of every call in a Functional model, inputs first."""
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.operation is None or node.is_input:
                continue
            yield node.operation, list(node.input_tensors), list(node.outputs)


def first_input_producer(layer):
    """The producer of the first input of ``layer``'s first call."""
    return producer(layer._inbound_nodes[0].input_tensors[0])


def sequential_input_name(model) -> str:
    """The name of a Sequential model's input layer."""
    return model._layers[0].name


def all_layers(model) -> list:
    """Every layer of ``model``, nested models' and wrapped layers too."""
    return list(model._flatten_layers(include_self=False, recursive=True))


def own_layers(model) -> list:
    """The layers ``model`` tracks itself (a subclassed model's attributes), not recursing."""
    return list(model._flatten_layers(include_self=False))


def is_preprocessing(layer) -> bool:
    """One of Keras' preprocessing (augmentation) layers."""
    return type(layer).__module__.startswith("keras.src.layers.preprocessing")
