"""Weight penalties and constraints on kernels: each goes on every kernel of the model it fits.

A penalty adds its regularizer to ``site.penalties`` (summed with the others, and with a penalty the
user put there, by ``kreg.lab.techniques.placing``); a constraint sets the kernel's constraint; a
wrapper wraps the layer.
"""

from __future__ import annotations

from kreg.lab.techniques.base import Default
from kreg.lab.techniques.base import Technique
from kreg.lab.techniques.base import collect
from kreg.lab.techniques.base import kernel_terms

_NO_KERNELS = "a model with kernel layers (weight penalties go on kernels); "


class Penalty(Technique):
    """A penalty on every kernel (hidden ones only when ``hidden_only``)."""

    needs = "kernel"
    hidden_only = False
    dense_only = False  # rank-2 kernels of Dense layers only
    penalty_class = None  # the regularizer class detect() looks for

    def fits_site(self, site) -> bool:
        return (site.hidden or not self.hidden_only) and (not self.dense_only or site.plain_dense)

    def check(self, value, model):
        if not model.blocks:
            return _NO_KERNELS + model.none
        return None

    def penalty(self, value, site, ctx):
        raise NotImplementedError

    def on_kernel(self, value, site, ctx):
        if not self.fits_site(site):
            return False
        site.penalties.append(self.penalty(value, site, ctx))
        return True

    def detect(self, layer):
        cls = self.penalty_class()
        return any(isinstance(t, cls) and self.matches(t) for t in kernel_terms(layer))

    def matches(self, term) -> bool:
        return True


class L1(Penalty):
    name = "l1"
    position = 1
    params = (("strength", "strength"),)
    summary = "L1 penalty on every kernel"

    def penalty(self, value, site, ctx):
        import keras

        return keras.regularizers.L1(value)

    def penalty_class(self):
        import keras

        return (keras.regularizers.L1, keras.regularizers.L1L2)

    def matches(self, term):
        return bool(getattr(term, "l1", 0))


class L2(Penalty):
    name = "l2"
    position = 2
    defaults = (Default(60, {"min": 1e-6, "max": 1e-2, "scale": "log"}, needs="kernels", unless="penalty", group="weight penalty",
            why="shrinks every weight towards zero, smoothly (no exact zeros)",
            source="seed 003 ('start by adding L2 regularization with a moderate penalty'); kreg's validation_curve "
                   "study: digits MLP best at 1e-3, underfitting at 1e-1 (validation error 0.263)"),)
    params = (("strength", "strength"),)
    summary = "L2 penalty on every kernel"

    def penalty(self, value, site, ctx):
        import keras

        return keras.regularizers.L2(value)

    def penalty_class(self):
        import keras

        return (keras.regularizers.L2, keras.regularizers.L1L2)

    def matches(self, term):
        return bool(getattr(term, "l2", 0))


class ElasticNet(Penalty):
    name = "elastic_net"
    position = 3
    params = (("alpha", "strength"), ("l1_ratio", "ratio", 0.5))
    summary = "elastic net on every kernel, scikit-learn's alpha and l1_ratio"

    def penalty(self, value, site, ctx):
        from kreg import regularizers as kr

        return kr.ElasticNet(value.alpha, value.l1_ratio)

    def penalty_class(self):
        from kreg import regularizers as kr

        return kr.ElasticNet


class GroupLasso(Penalty):
    name = "group_lasso"
    position = 4
    params = (("strength", "strength"),)
    summary = "group lasso on hidden kernels (zeroes whole units / filters)"
    hidden_only = True  # zeroing a class's logit row would remove the class

    def check(self, value, model):
        if model.blocks and not model.hidden:
            return "a model with hidden kernel layers (group lasso spares outputs); " + model.none
        return super().check(value, model)

    def penalty(self, value, site, ctx):
        from kreg import regularizers as kr

        return kr.GroupLasso(value)

    def penalty_class(self):
        from kreg import regularizers as kr

        return kr.GroupLasso


class Orthogonal(Penalty):
    name = "orthogonal"
    position = 4.5
    params = (("strength", "strength"),)
    summary = "Keras' OrthogonalRegularizer on hidden Dense kernels (units kept apart)"
    needs = "hidden_dense"
    builtin_models = ("mlp", "cnn2d")  # (cnn1d has no hidden Dense layer by default)
    hidden_only = True
    dense_only = True  # Keras' regularizer takes rank-2 kernels only

    def check(self, value, model):
        if not any(b.plain_dense for b in model.hidden):
            return ("a model with hidden Dense layers (the orthogonal penalty takes their rank-2 kernels); "
                    + model.none)
        return None

    def penalty(self, value, site, ctx):
        import keras

        return keras.regularizers.OrthogonalRegularizer(factor=value, mode="columns")

    def penalty_class(self):
        import keras

        return keras.regularizers.OrthogonalRegularizer


class _Constraint(Technique):
    """A kernel constraint: one per kernel, so a kernel with a constraint of its own refuses it."""

    needs = "kernel"
    stronger = 1

    def check(self, value, model):
        if not model.blocks:
            return _NO_KERNELS + model.none
        for other in ("proximal_l1", "max_norm"):  # the two constraints of this family
            if other != self.name and model.plan.get(other) is not None:
                return f"one kernel constraint per plan ({self.name} and {other} both set the kernels' constraint)"
        for block in model.blocks:
            if block.own_constraint:
                return (f"kernels without a constraint of their own (the {self.what} is the kernel's constraint); "
                        f"layer '{block.kernel}' has one")
        return None

    def on_kernel(self, value, site, ctx):
        for key in site.keys:
            site.config[f"{key}_constraint"] = self.constraint(value, site, ctx)
        return True


class ProximalL1(_Constraint):
    name = "proximal_l1"
    position = 5
    params = (("alpha", "strength"),)
    summary = "L1 by a proximal step after each update (exact zeros)"
    what = "proximal step"

    def constraint(self, value, site, ctx):
        from kreg.constraints import SoftThreshold

        return SoftThreshold((ctx.plan.get("learning_rate") or 1e-3) * value)

    def detect(self, layer):
        from kreg.constraints import SoftThreshold

        return isinstance(getattr(layer, "kernel_constraint", None), SoftThreshold)


class MaxNorm(_Constraint):
    name = "max_norm"
    position = 5.5
    params = (("max_value", "positive"),)
    summary = "Keras' MaxNorm constraint on every kernel (each unit's incoming weights)"
    stronger = -1  # a smaller bound constrains more
    what = "max-norm bound"

    def constraint(self, value, site, ctx):
        import keras

        return keras.constraints.MaxNorm(max_value=value, axis=list(range(site.kernel_rank - 1)) or 0)

    def detect(self, layer):
        import keras

        return isinstance(getattr(layer, "kernel_constraint", None), keras.constraints.MaxNorm)


class SpectralNorm(Technique):
    name = "spectral_norm"
    position = 5.7
    params = ()
    summary = "Keras' SpectralNormalization around hidden Dense and convolution layers"
    needs = "kernel"
    stronger = 0

    def check(self, value, model):
        if not any(b.kind in ("dense", "conv") and b.plain_kernel for b in model.hidden):
            return ("a model with hidden Dense or convolution layers (spectral normalization wraps a layer with "
                    "one kernel); " + model.none)
        return None

    def on_kernel(self, value, site, ctx):
        if not (site.hidden and site.keys == ("kernel",) and site.kind in ("dense", "conv")):
            return False
        name = ctx.name(f"{site.name}_sn")

        def wrap(layer):
            import keras

            return keras.layers.SpectralNormalization(layer, name=name)

        site.wrappers.append(wrap)
        return True

    def detect(self, layer):
        import keras

        return isinstance(layer, keras.layers.SpectralNormalization)


TECHNIQUES = collect(globals())
