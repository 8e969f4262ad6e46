"""Techniques in the loss (classification): their ``loss`` hooks edit the cross-entropy the task makes
(``kreg.lab.task``)."""

from __future__ import annotations

from kreg.lab.techniques.base import Default
from kreg.lab.techniques.base import Technique
from kreg.lab.techniques.base import collect

_CLS = ("classification",)


class LabelSmoothing(Technique):
    name = "label_smoothing"
    position = 12
    defaults = (Default(80, {"min": 0.02, "max": 0.2}, tasks=("classification",),
            why="soft targets: fitting the training labels with ever larger logits stops paying",
            source="Szegedy et al. 2016 (0.1); Mueller et al. 2019; seed 004 ('typically 0.1'); kreg's MNIST-1D "
                   "searches chose 0.065 to 0.18"),)
    params = (("epsilon", "rate"),)
    acts_on = "loss"
    summary = "label smoothing in the cross-entropy"
    tasks = _CLS

    def loss(self, value, site):
        site.args["label_smoothing"] = value  # every classification cross-entropy takes it (binary heads too)


class ConfidencePenalty(Technique):
    name = "confidence_penalty"
    position = 13
    params = (("beta", "strength"),)
    acts_on = "loss"
    summary = "minus beta times the entropy of the prediction"
    tasks = _CLS
    soft_labels = True

    def loss(self, value, site):
        if site.head != "categorical":  # kreg's ConfidencePenalty is the entropy over the classes' softmax
            return
        from kreg.losses import ConfidencePenalty

        site.cls = ConfidencePenalty
        site.args["beta"] = value


TECHNIQUES = collect(globals())
