"""Layers inserted in a model's blocks: dropouts, DropBlock, DropConnect, stochastic depth, batch norm.

Dropout-type layers go after a hidden block's end (its activation), so on a residual branch they land
before the merge, on that branch only; batch normalization goes between the block's linear part and
its activation; DropConnect replaces a hidden Dense layer; stochastic depth drops a residual branch.
"""

from __future__ import annotations

from kreg.lab.techniques.base import Default
from kreg.lab.techniques.base import Technique
from kreg.lab.techniques.base import collect

_CONV_MODELS = ("cnn1d", "cnn2d")


class Dropout(Technique):
    name = "dropout"
    position = 6
    defaults = (Default(40, {"min": 0.1, "max": 0.5}, needs="hidden_dense", unless="dropout",
            why="drops hidden units at random: no unit can rely on another being there",
            source="Srivastava et al. 2014 (0.5 for hidden units); seed 003 ('a typical dropout rate is between 20% "
                   "and 50%')"),)
    params = (("rate", "rate"),)
    summary = "dropout after hidden dense blocks"
    needs = "hidden_dense"
    present_as = "Dropout layers"

    def check(self, value, model):
        if not any(b.kind == "dense" for b in model.hidden):
            return "a model with hidden Dense layers (dropout goes after hidden dense blocks); " + model.none
        return None

    def after_block(self, value, site, ctx):
        if site.kind not in ("dense", "features"):
            return []
        import keras

        from kreg.layers import ScheduledDropout

        cls = ScheduledDropout if ctx.scheduled else keras.layers.Dropout
        return [cls(value, seed=ctx.seed(), name=ctx.name(f"{site.name}_dropout"))]

    def detect(self, layer):
        import keras

        spatial = (keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D, keras.layers.SpatialDropout3D)
        return isinstance(layer, (keras.layers.Dropout, keras.layers.AlphaDropout, keras.layers.GaussianDropout)) \
            and not isinstance(layer, spatial)


def _no_conv(model) -> bool:
    return not any(b.kind == "conv" for b in model.hidden)


_NO_CONV = ("a model with hidden convolution layers (spatial dropout and DropBlock go after convolution blocks); ")


class SpatialDropout(Technique):
    name = "spatial_dropout"
    position = 7
    defaults = (Default(30, {"min": 0.05, "max": 0.3}, needs="hidden_conv", unless="spatial_dropout",
            why="drops whole feature maps: neighbouring activations of a map are correlated, so unit dropout "
                "hardly regularizes a convolution",
            source="Tompson et al. 2015; kreg's MNIST-1D searches chose 0.085 to 0.19 (kreg's docs, Measured figures)"),)
    params = (("rate", "rate"),)
    summary = "spatial dropout after convolution blocks"
    needs = "conv"
    builtin_models = _CONV_MODELS
    present_as = "spatial dropout layers"

    def check(self, value, model):
        return _NO_CONV + model.none if _no_conv(model) else None

    def after_block(self, value, site, ctx):
        if site.kind != "conv":
            return []
        import keras

        from kreg.layers import ScheduledSpatialDropout1D, ScheduledSpatialDropout2D

        rank = len(site.shape) - 2 if site.shape is not None else site.rank
        # Keras has no variable-rate SpatialDropout3D: a schedule leaves the 3D rate constant.
        cls = {1: (keras.layers.SpatialDropout1D, ScheduledSpatialDropout1D),
               2: (keras.layers.SpatialDropout2D, ScheduledSpatialDropout2D),
               3: (keras.layers.SpatialDropout3D, keras.layers.SpatialDropout3D)}[rank][ctx.scheduled and rank < 3]
        kwargs = {} if rank == 1 else {"data_format": site.data_format}
        return [cls(value, seed=ctx.seed(), name=ctx.name(f"{site.name}_sdrop"), **kwargs)]

    def detect(self, layer):
        import keras

        return isinstance(layer, (keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D,
                                  keras.layers.SpatialDropout3D))


class DropBlock(Technique):
    name = "drop_block"
    position = 8
    params = (("rate", "rate"), ("block_size", "count", 3))
    summary = "DropBlock after convolution blocks"
    needs = "conv"
    builtin_models = _CONV_MODELS

    def check(self, value, model):
        if _no_conv(model):
            return _NO_CONV + model.none
        for block in model.hidden:
            if block.kind != "conv":
                continue
            shape, where = block.shape, f"layer '{block.end}'"
            if shape is None or len(shape) not in (3, 4) or not block.channels_last:
                return f"1D or 2D channels-last convolution blocks (DropBlock1D/2D); {where} outputs {shape}"
            spatial = shape[1:-1]
            if any(d is None or d < value.block_size for d in spatial):
                return (f"a block_size no larger than every feature map it drops from; "
                        f"{where} outputs {'x'.join(str(d) for d in spatial)} maps")
        return None

    def after_block(self, value, site, ctx):
        if site.kind != "conv":
            return []
        from kreg.layers import DropBlock1D, DropBlock2D

        rank = len(site.shape) - 2 if site.shape is not None else site.rank
        cls = DropBlock1D if rank == 1 else DropBlock2D
        return [cls(value.rate, value.block_size, seed=ctx.seed(), name=ctx.name(f"{site.name}_dropblock"))]

    def detect(self, layer):
        from kreg.layers import DropBlock1D, DropBlock2D

        return isinstance(layer, (DropBlock1D, DropBlock2D))


class DropConnect(Technique):
    name = "drop_connect"
    position = 9
    params = (("rate", "rate"),)
    summary = "DropConnect (dropout on weights) of hidden dense layers"
    needs = "hidden_dense"
    builtin_models = ("mlp",)

    _KEYS = ("units", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer",
             "bias_regularizer", "kernel_constraint", "bias_constraint", "activity_regularizer", "name",
             "trainable", "dtype")

    def check(self, value, model):
        if not any(b.plain_dense for b in model.hidden):
            return "a model with hidden Dense layers (DropConnect replaces them); " + model.none
        return None

    def on_kernel(self, value, site, ctx):
        if not (site.hidden and site.plain_dense):
            return False
        seed = ctx.seed()

        def make(config):  # a Dense layer's config as a DropConnect layer (same weights, same call)
            from kreg.layers import DropConnect as Layer

            return Layer(rate=value, seed=seed, **{k: config[k] for k in self._KEYS if k in config})

        site.make = make
        return True

    def detect(self, layer):
        from kreg.layers import DropConnect as Layer

        return isinstance(layer, Layer)


class BatchNorm(Technique):
    name = "batch_norm"
    position = 14
    params = ()
    summary = "batch normalization in every hidden block"
    stronger = 0
    changes_inference = True  # the inserted layers normalize at inference too

    def check(self, value, model):
        if all(b.has_norm for b in model.hidden):
            return ("a model with hidden blocks without a normalization layer (batch norm goes between a block's "
                    "linear part and its activation); " + model.none)
        return None

    def on_kernel(self, value, site, ctx):
        if not site.hidden or site.has_norm or site.kind == "features":
            return False
        if site.fresh:
            site.config["use_bias"] = False  # batch norm's beta replaces the bias
        if site.inside:  # batch norm standardizes the pre-activations: the activation moves after it
            site.moved_activation = site.config["activation"]
            site.config["activation"] = "linear"
        return False  # placed after the kernel (after_kernel records it)

    def after_kernel(self, value, site, ctx):
        if site.has_norm or site.kind == "features":
            return []
        import keras

        axis = 1 if site.data_format == "channels_first" else -1
        return [keras.layers.BatchNormalization(axis=axis, name=ctx.name(f"{site.name}_bn"))]

    def detect(self, layer):
        import keras

        return isinstance(layer, keras.layers.BatchNormalization)


class StochasticDepth(Technique):
    name = "stochastic_depth"
    position = 9.5
    params = (("rate", "rate"),)
    summary = "stochastic depth: drops the residual branch of each skip connection, per example"
    needs = "residual"
    builtin_models = ()  # kreg's built-in models have no skip connections
    present_as = "StochasticDepth layers"
    defaults = (Default(35, {"min": 0.05, "max": 0.3}, needs="residual", unless="stochastic_depth",
                        why="drops a residual branch for whole examples: the network trains as an ensemble of "
                            "shallower ones",
                        source="Huang et al. 2016 (stochastic depth, up to 0.5 at the last block of a 110-layer "
                               "ResNet); timm's ResNet recipes use drop-path 0.05 to 0.2"),)

    def check(self, value, model):
        if not model.merges:
            return ("a model with residual merges (an Add of a skip connection and a branch with kernel layers); "
                    + model.none)
        return None

    def at_merge(self, value, site, ctx):
        from kreg.layers import StochasticDepth as Layer

        return Layer(value, seed=ctx.seed(), name=ctx.name(f"{site.name}_sdepth"))

    def detect(self, layer):
        from kreg.layers import StochasticDepth as Layer

        return isinstance(layer, Layer)


TECHNIQUES = collect(globals())
