"""Where a search's models come from: a built-in builder, the user's builder, or the user's model.

``ModelSource(model)`` accepts what ``kreg.tune``'s ``model`` argument does
and, for every trial, returns a fresh Keras model with the plan's
structural techniques in place (``build``), together with where each
technique went and what the output layer is. The rest of the plan (loss,
optimizer, data, training) is added by the trial.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect

from kreg.lab.errors import BuilderError, ConfigError
from kreg.lab.models.builtin import MODEL_TYPES

_EXPECTED = ("a built-in model (" + ", ".join(MODEL_TYPES) + "), a function returning a keras.Model, "
             "a function taking the RegularizationPlan, a keras.Model, or 'module:function'")


@dataclasses.dataclass
class Built:
    """A trial's model before compilation, and what the plan did to it."""

    model: object
    placements: dict  # technique -> names of the layers it went into (or after)
    output_activation: str  # "linear" (logits / regression), "softmax" or "sigmoid"


def import_callable(spec: str, field: str = "model"):
    """``"package.module:function"`` -> the function (imports the module)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(field, spec, "'module:function' (e.g. mypackage.models:build)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(field, spec, f"an importable module ({exc})") from None
    try:
        fn = getattr(module, attr)
    except AttributeError:
        raise ConfigError(field, spec, f"a function `{attr}` in module {module_name}") from None
    if not callable(fn):
        raise ConfigError(field, spec, "a callable")
    return fn


def _traceback_log(builder: str, args: dict, plan: tuple, exc: BaseException) -> str | None:
    """Writes the builder's traceback to a new file in the temporary directory; returns its path (None if it
    cannot be written: the one line still names the exception)."""
    import tempfile
    import time
    import traceback

    header = [f"kreg: the model builder {builder} raised {type(exc).__name__} ({time.strftime('%Y-%m-%d %H:%M:%S')})",
              f"arguments: {args!r}"] + ([f"plan: {plan[0].describe()}"] if plan else [])
    try:
        handle, path = tempfile.mkstemp(prefix="kreg-builder-", suffix=".log")
        with open(handle, "w") as log:
            log.write("\n".join(header) + "\n\n" + "".join(traceback.format_exception(exc)))
    except OSError:
        return None
    return path


def _takes_plan(fn) -> bool:
    """A builder takes the plan when it has a parameter named ``plan`` or exactly one required positional one."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    if any(p.name == "plan" for p in params):
        return True
    required = [p for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(required) == 1


def _is_keras_model(obj) -> bool:
    import keras

    return isinstance(obj, keras.Model)


class ModelSource:
    """What the user gave as ``model``, and how to build a regularized Keras model from it.

    Kinds: ``builtin`` (kreg's ``mlp``/``cnn1d``/``cnn2d``, sized by ``args``),
    ``builder`` (a function returning a plain model: the plan is applied with
    ``kreg.regularize``), ``plan_builder`` (a function taking the plan: it
    places the techniques itself), ``model`` (a ``keras.Model``, cloned per
    trial with fresh weights, then the plan applied).
    """

    def __init__(self, model, args: dict | None = None):
        self.activation = None  # how the output is read, when check_output had to find it out
        if args is not None and not isinstance(args, dict):
            raise ConfigError("model_args", args, "a mapping of keyword arguments")
        self.args = dict(args or {})
        self.spec = model if isinstance(model, str) else None
        if isinstance(model, str) and ":" in model:
            model = import_callable(model)
        if isinstance(model, str):
            if model not in MODEL_TYPES:
                raise ConfigError("model", model, _EXPECTED)
            self.kind, self.target = "builtin", model
        elif _is_keras_model(model):
            self.kind, self.target = "model", model
        elif callable(model):
            self.kind, self.target = ("plan_builder" if _takes_plan(model) else "builder"), model
        else:
            raise ConfigError("model", model, _EXPECTED)
        if self.args and self.kind == "model":
            raise ConfigError("model_args", self.args, "no arguments with a keras.Model (they are for builders)")

    @property
    def builtin(self) -> str | None:
        return self.target if self.kind == "builtin" else None

    def short_name(self) -> str:
        if self.kind == "builtin":
            return self.target
        if self.kind == "model":
            return self.target.name
        return getattr(self.target, "__name__", "builder")

    def describe(self) -> str:
        args = f" {self.args}" if self.args else ""
        if self.kind == "builtin":
            return f"built-in {self.target}{args}"
        if self.kind == "model":
            return f"your model '{self.target.name}' ({type(self.target).__name__}, cloned per trial)"
        where = self.spec or f"{getattr(self.target, '__module__', '?')}.{self.short_name()}"
        how = "places the plan itself" if self.kind == "plan_builder" else "plan applied by kreg.regularize"
        return f"your builder {where}{args} ({how})"

    # ----------------------------------------------------------------- build
    def build(self, spec, plan, seed: int = 0) -> Built:
        """A fresh model for one trial with ``plan``'s structural techniques in place."""
        from kreg.lab.apply import apply_plan, output_activation

        if self.kind == "builtin":
            from kreg.lab.models.builtin import build_model

            model = build_model(self.target, spec, plan, seed=seed, **self.args)
            return Built(model, placements_of(model, plan), self.activation or "linear")
        if self.kind == "plan_builder":
            model = self._check_model(self._call(plan))
            return Built(model, placements_of(model, plan), self.activation or output_activation(model))
        if self.kind == "builder":
            model = self._check_model(self._call())
        else:
            model = self._clone(self.target)
        applied = apply_plan(model, plan, modality=spec.modality, seed=seed)
        return Built(applied.model, applied.placements, self.activation or applied.output_activation)

    def builder_name(self) -> str:
        """``module:function`` of the user's builder, as given or as found."""
        return self.spec or f"{getattr(self.target, '__module__', '?')}:{getattr(self.target, '__qualname__', self.short_name())}"

    def _call(self, *plan):
        """The user's builder called; what it raises becomes one ``BuilderError`` line, its traceback a log file."""
        try:
            return self.target(*plan, **self.args)
        except ConfigError:  # kreg's own refusal (a plan helper's): already one line naming the field
            raise
        except Exception as exc:
            raise BuilderError(self.builder_name(), exc, _traceback_log(self.builder_name(), self.args, plan, exc)) \
                from exc

    def _check_model(self, model):
        if not _is_keras_model(model):
            raise ConfigError("model", f"{self.short_name()} returned {type(model).__name__}",
                              "a builder that returns a keras.Model")
        return model

    @staticmethod
    def _clone(model):
        """A copy of the user's model with fresh weights (its layers' initializers run again)."""
        import keras

        try:
            return keras.models.clone_model(model)
        except Exception as exc:  # subclassed models without get_config cannot be cloned
            raise ConfigError("model", type(model).__name__,
                              f"a model Keras can clone (give a builder function instead: {exc})") from None

    def check_output(self, built: Built, task, spec) -> None:
        """The model fits the data and the task: input shape, output units, an activation the loss can use.

        Run once before the search. It also settles how the output is read
        when the layers do not say it: a softmax written as a bare op
        (``keras.ops.softmax``) is recognized by its outputs (rows of
        non-negative numbers summing to 1), and one linear unit for two
        classes is a binary logit; later builds use what was found.
        """
        import numpy as np

        from kreg.lab.apply import output_activation_name

        model, activation = built.model, built.output_activation
        inputs = getattr(model, "inputs", None)
        if inputs:
            expected = tuple(spec.shape)
            got = tuple(inputs[0].shape[1:])
            if len(got) != len(expected) or any(g is not None and g != e for g, e in zip(got, expected)):
                raise ConfigError("model", f"input shape {got}", f"a model whose input takes the data's examples of "
                                  f"shape {expected} ({spec.modality} data)")
        probe = np.random.default_rng(0).normal(size=(4, *spec.shape)).astype("float32")
        try:
            shape = model.output_shape
        except AttributeError:  # a subclassed model knows its output only once called
            shape = None
        if shape is None or (activation == "linear" and task.kind == "classification"):
            out = model(probe)
            if isinstance(out, (list, tuple)):
                raise ConfigError("model", f"{len(out)} outputs", "a model with one output")
            values = np.asarray(out)
            shape = tuple(values.shape)
            if activation == "linear" and values.ndim == 2 and values.shape[-1] > 1 and np.all(values >= 0) \
                    and np.allclose(values.sum(axis=-1), 1.0, atol=1e-4):
                activation = "softmax"  # probabilities made by an op kreg cannot see in the graph
        if isinstance(shape, list):
            raise ConfigError("model", f"{len(shape)} outputs", "a model with one output")
        units = shape[-1]
        if task.kind == "regression":
            name = output_activation_name(model)
            if name != "linear":
                raise ConfigError("model", f"output activation {name}", "a linear output layer for regression "
                                  "(kreg trains on standardized targets, which a bounded output cannot reach)")
            if units != task.targets:
                raise ConfigError("model", f"{units} output units",
                                  f"{task.targets} output unit(s), one per regression target")
            return
        if activation == "linear" and units == 1 and task.num_classes == 2:
            activation = "binary_logit"
        expected = task.output_units(activation)
        if activation == "sigmoid" and task.num_classes != 2:
            raise ConfigError("model", "a sigmoid output",
                              f"a softmax or linear (logits) output with {task.num_classes} units: "
                              "a sigmoid output is for binary classification")
        if units != expected:
            raise ConfigError("model", f"{units} output units",
                              f"{expected} output units for {task.describe()} ({activation} output)")
        if activation != built.output_activation:
            self.activation = activation
            built.output_activation = activation

def placements_of(model, plan) -> dict:
    """Where a model built with ``plan`` carries each structural technique (by layer name).

    For built-in builders and plan-taking builders, which place techniques
    themselves: read back from the layers by each technique's ``detect`` hook
    (penalties and constraints on kernels, dropout-type and noise layers,
    batch normalization, wrappers); augmentation layers under ``"augmentation"``.
    """
    from kreg.augment._base import Augmentation
    from kreg.lab._keras_graph import all_layers, is_preprocessing
    from kreg.lab.techniques import placing

    found: dict[str, list] = {}
    active = [tech for tech, _ in placing.active(plan)]
    for layer in all_layers(model):
        for tech in active:
            if tech.detect(layer):
                found.setdefault(tech.name, []).append(layer.name)
        if isinstance(layer, Augmentation) or is_preprocessing(layer):
            found.setdefault("augmentation", []).append(layer.name)
    return found
