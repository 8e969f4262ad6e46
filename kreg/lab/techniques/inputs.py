"""Techniques on a model's inputs: kreg's augmentations, Keras' RandomErasing and RandAugment, input noise.

They go right after every float input whose rank fits the data's modality (noise: every float input),
train only, in the order written here: geometric, then photometric augmentations, then noise. MixUp and
CutMix mix examples and labels, so they act on the data pipeline (their ``data`` hook), not on the model.
"""

from __future__ import annotations

from kreg.lab.techniques.base import MODALITIES
from kreg.lab.techniques.base import MODALITY_RANK
from kreg.lab.techniques.base import TASKS
from kreg.lab.techniques.base import Default
from kreg.lab.techniques.base import Default
from kreg.lab.techniques.base import Technique
from kreg.lab.techniques.base import collect

_SEQ, _TAB, _IMG = ("sequence",), ("tabular",), ("image",)
_CLS = ("classification",)
MIXING = ("mixup", "cutmix")


def _fits_input(site, ctx) -> bool:
    return site.is_float and len(site.shape) == MODALITY_RANK.get(ctx.modality)


def _input_problem(name, model) -> str | None:
    """None when ``model`` has a float input of its modality's rank, else the phrase."""
    from kreg import _validation as v

    if model.modality is None:
        raise v.invalid("modality", "'tabular', 'sequence' or 'image' (the input rank says none; pass modality=)",
                        model.modality)
    rank = MODALITY_RANK[model.modality]
    if not any(x.is_float and len(x.shape) == rank for x in model.inputs):
        shapes = [tuple(x.shape) for x in model.inputs]
        return (f"a float input of rank {rank} ({model.modality} data); model '{model.name}' has inputs of "
                f"shapes {shapes}")
    return None


class Augment(Technique):
    """One of kreg's augmentations (``kreg.augment``), by its short name; strength 0 is off."""

    short = ""
    position = 18
    needs = "input"
    stronger = 1

    @property
    def augmentation(self):
        return self.short

    def is_off(self, value):
        return not value

    def shown(self, plan):
        return plan.augmentation

    def check(self, value, model):
        from kreg.augment import augmentation_layers

        if model.modality is not None:
            augmentation_layers(model.modality, {self.short: value})  # refuses an augmentation of other data
        return _input_problem(self.name, model)

    def at_input(self, value, site, ctx):
        if not _fits_input(site, ctx):
            return []
        from kreg.augment import augmentation_layers

        layers = augmentation_layers(ctx.modality, {self.short: value}, seed=ctx.seed(16))
        for layer in layers:
            layer.name = ctx.name(f"{site.prefix}augment_{self.short}")  # (not built yet: free to change)
        return layers


class Mixing(Augment):
    """MixUp / CutMix: examples and labels mixed in the data pipeline (the model is left alone)."""
    soft_labels = True

    acts_on = "data"
    needs = None
    tasks = _CLS

    def check(self, value, model):
        return None

    def at_input(self, value, site, ctx):
        return []

    def data(self, value, site):
        if not site.num_classes:  # nothing to mix labels of (regression)
            return []
        from kreg.augment import mixing_layers

        # mixing_layers seeds MixUp with site.seed and CutMix with site.seed + 1, on together or alone.
        return mixing_layers(site.modality, {self.short: value}, site.num_classes, seed=site.seed)


def _augment(short, kind, modalities, tasks, summary, base=Augment):
    name = "".join(part.title() for part in short.split("_"))
    return type(f"Augment{name}", (base,), {
        "name": f"augment_{short}", "short": short, "params": (("strength", kind),), "modalities": modalities,
        "tasks": tasks, "summary": summary, "__module__": __name__})


AugmentShift = _augment("shift", "rate", _SEQ, TASKS, "circular shift by up to this fraction of the length")
AugmentTimeScale = _augment("time_scale", "rate", _SEQ, TASKS, "stretch or squeeze time by up to this fraction")
AugmentTimeWarp = _augment("time_warp", "strength", _SEQ, TASKS, "smooth random time warp (std of the local speed)")
AugmentJitter = _augment("jitter", "strength", _SEQ + _TAB, TASKS, "Gaussian jitter of the (standardized) values")
AugmentMagnitudeScale = _augment("magnitude_scale", "strength", _SEQ + _TAB, TASKS,
                                 "random scale of the values (std of the factor)")
AugmentFeatureDropout = _augment("feature_dropout", "rate", _TAB, TASKS, "zero whole features with this probability")
AugmentSwapNoise = _augment("swap_noise", "rate", _TAB, TASKS, "swap a value with another row's, with this probability")
AugmentFlip = _augment("flip", "strength", _IMG, TASKS, "horizontal flips (any strength > 0)")
AugmentRotation = _augment("rotation", "strength", _IMG, TASKS, "random rotation (fraction of a full turn)")
AugmentZoom = _augment("zoom", "strength", _IMG, TASKS, "random zoom")
AugmentTranslation = _augment("translation", "strength", _IMG, TASKS, "random translation (fraction of the size)")
AugmentContrast = _augment("contrast", "strength", _IMG, TASKS, "random contrast")
AugmentBrightness = _augment("brightness", "strength", _IMG, TASKS, "random brightness")
AugmentMixup = _augment("mixup", "strength", MODALITIES, _CLS,
                        "MixUp of examples and labels (Beta alpha), in the data pipeline", base=Mixing)
AugmentCutmix = _augment("cutmix", "strength", _IMG, _CLS,
                         "CutMix of image patches and labels (Beta alpha), in the data pipeline", base=Mixing)

# Their rows in kreg's default search space.
AugmentShift.defaults = (Default(10, {"min": 0.02, "max": 0.3}, modalities=("sequence",), needs="float_input",
        why="a pattern means the same wherever it sits in a signal: shift it circularly by up to this fraction "
            "of the length",
        source="Greydanus 2020 (MNIST-1D: the digits sit at random offsets); Le Guennec et al. 2016 (a shifted "
               "window of a series keeps its label); kreg's docs, Measured figures: shift/scale augmentation with "
               "spatial dropout and label smoothing take the flatten CNN on MNIST-1D from 0.92 to 0.978"),)
AugmentTranslation.defaults = (Default(20, {"min": 0.05, "max": 0.15}, modalities=("image",), needs="float_input",
        why="a small translation keeps an image's label (no flips: they change digits and text)",
        source="Simard et al. 2003 (small shifts and distortions of digits); Krizhevsky et al. 2012; "
               "pipelines/digits_cnn.yaml"),)
AugmentMixup.defaults = (Default(90, {"min": 0.1, "max": 0.4}, tasks=("classification",),
        why="trains on mixtures of pairs of examples and of their labels (Beta(alpha) weights): new examples "
            "between the few there are",
        source="Zhang et al. 2018 (alpha 0.1 to 0.4 improves ImageNet; larger alphas underfit)"),)


class _KerasImageAugmentation(Technique):
    """A Keras image augmentation layer on the (standardized) image input."""

    needs = "input"
    modalities = _IMG
    value_range = (-3, 3)  # kreg's data pipeline standardizes pixels

    def check(self, value, model):
        if model.modality != "image":
            return f"image data ({self.name} is an image augmentation); model '{model.name}' has {model.modality} inputs"
        return _input_problem(self.name, model)

    def at_input(self, value, site, ctx):
        if not _fits_input(site, ctx):
            return []
        return [self.layer(value, ctx.seed(), ctx.name(f"{site.prefix}{self.name}"))]


class RandomErasing(_KerasImageAugmentation):
    name = "random_erasing"
    position = 18.5
    params = (("rate", "rate"),)
    summary = "Keras' RandomErasing: erase a random rectangle of an image, with this probability"
    defaults = (Default(115, {"min": 0.1, "max": 0.5}, modalities=("image",), needs="float_input",
                        why="erases a random rectangle of an image: the label must survive an occluded part",
                        source="Zhong et al. 2020 (Random Erasing; probability 0.5 on CIFAR and Fashion-MNIST)"),)

    def layer(self, value, seed, name):
        import keras

        return keras.layers.RandomErasing(factor=value, value_range=self.value_range, seed=seed, name=name)

    def detect(self, layer):
        import keras

        return isinstance(layer, keras.layers.RandomErasing)


class RandAugment(_KerasImageAugmentation):
    name = "rand_augment"
    position = 18.6
    params = (("magnitude", "ratio"), ("num_ops", "count", 2))
    summary = "Keras' RandAugment: num_ops random image operations of this magnitude (0 to 1)"
    defaults = (Default(120, {"magnitude": {"min": 0.1, "max": 0.5}}, modalities=("image",), needs="float_input",
                        why="random image operations of one magnitude: a whole augmentation policy with one strength",
                        source="Cubuk et al. 2020 (RandAugment: two operations, magnitude 9 to 15 of 30 for "
                               "ImageNet ResNets, about 0.3 to 0.5 here)"),)

    def layer(self, value, seed, name):
        import keras

        return keras.layers.RandAugment(value_range=self.value_range, num_ops=value.num_ops, factor=value.magnitude,
                                        seed=seed, name=name)

    def detect(self, layer):
        import keras

        return isinstance(layer, keras.layers.RandAugment)


class InputNoise(Technique):
    name = "input_noise"
    position = 10
    defaults = (Default(100, {"min": 0.02, "max": 0.3, "scale": "log"}, needs="float_input", unless="input_noise",
            why="Gaussian noise on the standardized inputs: for a linear model, the L2 penalty sigma^2",
            source="Bishop 1995; kreg's noise_as_l2 study (noise-trained weights within 2.9% of ridge's); kreg's "
                   "MNIST-1D searches chose 0.03 to 0.043"),)
    params = (("stddev", "strength"),)
    summary = "Gaussian noise on the (standardized) input"
    needs = "input"
    present_as = "a GaussianNoise layer"

    def check(self, value, model):
        if not any(x.is_float for x in model.inputs):
            return "a model with a float input (noise is added to it); " + model.none
        return None

    def at_input(self, value, site, ctx):
        if not site.is_float:
            return []
        import keras

        from kreg.layers import ScheduledGaussianNoise

        cls = ScheduledGaussianNoise if ctx.scheduled else keras.layers.GaussianNoise
        return [cls(value, seed=ctx.seed(), name=ctx.name(f"{site.prefix}input_noise"))]

    def detect(self, layer):
        import keras

        return isinstance(layer, keras.layers.GaussianNoise)


TECHNIQUES = collect(globals())
