"""Ensembles: combine members, bag them, and decompose the ensemble's error."""

from __future__ import annotations

import contextlib
import logging

import keras
import numpy as np

from kreg import _validation as v

TASKS = ("classification", "regression")
COMBINE = ("mean", "vote")


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def error_decomposition(member_predictions, targets) -> dict:
    """The seeds' ensemble decomposition for squared error, from member predictions.

    With member errors ``e_i = f_i - y`` over ``k`` members (averaged over
    examples, and summed over outputs such as class probabilities):

    * ``mean_member_error`` ``V = mean_i E[e_i^2]``
    * ``covariance`` ``C = mean_{i != j} E[e_i e_j]``
    * ``ensemble_error`` ``E[(mean_i e_i)^2] = V / k + (k - 1) / k * C``
    * ``diversity`` ``mean_i E[(f_i - f_mean)^2]``, so that
      ``mean_member_error = ensemble_error + diversity`` (Krogh and Vedelsby).

    Both identities hold exactly (up to float rounding) on any data.

    Args:
        member_predictions: Array ``(k, n, ...)``.
        targets: Array ``(n, ...)`` broadcastable to one member's predictions.

    Returns:
        A dict of the terms above, plus ``members`` (k) and
        ``ensemble_error_from_terms`` (``V / k + (k - 1) / k * C``).
    """
    preds = np.asarray(member_predictions, "float64")
    k = preds.shape[0]
    errors = (preds - np.asarray(targets, "float64")[None]).reshape(k, preds.shape[1], -1)
    gram = np.einsum("ind,jnd->ij", errors, errors) / errors.shape[1]  # E[e_i . e_j]
    variance = float(np.mean(np.diag(gram)))
    covariance = float((gram.sum() - np.trace(gram)) / (k * (k - 1))) if k > 1 else variance
    mean_error = errors.mean(axis=0)
    ensemble_error = float(np.mean(np.sum(mean_error ** 2, axis=-1)))
    spread = preds.reshape(k, preds.shape[1], -1) - preds.reshape(k, preds.shape[1], -1).mean(axis=0)
    diversity = float(np.mean(np.sum(spread ** 2, axis=-1)))
    return {
        "members": k,
        "mean_member_error": variance,
        "covariance": covariance,
        "ensemble_error": ensemble_error,
        "ensemble_error_from_terms": variance / k + (k - 1) / k * covariance,
        "diversity": diversity,
    }


@contextlib.contextmanager
def _quiet_retracing():
    """Each member is a new model with its own predict function, so TensorFlow's
    "excessive retracing" heuristic fires on a routine ensemble prediction."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class Ensemble:
    """Members' predictions combined: averaged (regression), or probabilities
    averaged / majority vote (classification).

    Args:
        members: Keras models (or callables ``x -> predictions``).
        task: ``"classification"`` or ``"regression"``. Default classification.
        combine: ``"mean"`` (probability averaging) or ``"vote"`` (each member
            votes for its top class; the result is the vote share per class).
            Default ``"mean"``.
        from_logits: Members output logits; a softmax turns them into
            probabilities first. Default False.
        feature_masks: Optional per-member 0/1 masks over the last input
            axis (random subspaces, as ``Bagging(feature_fraction=...)``).

    Example:
        >>> ensemble = kreg.training.Ensemble([m1, m2, m3], from_logits=True)
        >>> ensemble.evaluate(x_test, y_test)["accuracy"]

    References:
        Breiman, "Bagging predictors", Machine Learning 1996; Krogh and
        Vedelsby, "Neural network ensembles, cross validation, and active
        learning", NeurIPS 1994.
    """

    def __init__(self, members, task="classification", combine="mean", from_logits=False, feature_masks=None):
        self.members = list(members)
        if not self.members:
            raise v.invalid("members", "a non-empty list of models", members)
        self.task = v.check_choice("task", task, TASKS)
        self.combine = v.check_choice("combine", combine, COMBINE)
        if task == "regression" and combine == "vote":
            raise v.invalid("combine", "'mean' for regression", combine)
        self.from_logits = bool(from_logits)
        self.feature_masks = feature_masks

    def _member_input(self, i, x):
        if self.feature_masks is None:
            return x
        return np.asarray(x) * self.feature_masks[i]

    def member_predictions(self, x, batch_size=256) -> np.ndarray:
        """``(k, n, ...)``: each member's predictions (probabilities for classification)."""
        outputs = []
        with _quiet_retracing():
            for i, member in enumerate(self.members):
                outputs.append(self._predict_member(i, member, x, batch_size))
        return np.stack(outputs)

    def _predict_member(self, i, member, x, batch_size):
        xi = self._member_input(i, x)
        if isinstance(member, keras.Model):
            out = member.predict(xi, batch_size=batch_size, verbose=0)
        else:
            out = keras.ops.convert_to_numpy(member(xi))
        out = np.asarray(out, "float64")
        if self.task == "classification" and self.from_logits:
            out = _softmax(out)
        return out

    def combine_predictions(self, preds) -> np.ndarray:
        """Combines ``member_predictions`` output as the ensemble predicts."""
        if self.combine == "vote":
            votes = np.eye(preds.shape[-1])[preds.argmax(axis=-1)]
            return votes.mean(axis=0)
        return preds.mean(axis=0)

    def predict(self, x, batch_size=256) -> np.ndarray:
        """Combined predictions: class probabilities / vote shares, or values."""
        return self.combine_predictions(self.member_predictions(x, batch_size))

    def evaluate(self, x, y, batch_size=256) -> dict:
        """Ensemble and member figures plus ``error_decomposition`` on ``(x, y)``.

        Classification: ``accuracy`` (ensemble), ``mean_member_accuracy`` and
        the decomposition of the squared error of the probabilities (Brier
        score) against one-hot labels; ``y`` holds integer labels.
        Regression: ``mse`` and the decomposition of the squared error.
        """
        return self.evaluate_predictions(self.member_predictions(x, batch_size), y)

    def evaluate_predictions(self, preds, y) -> dict:
        """``evaluate`` from member predictions already made (``member_predictions``)."""
        combined = self.combine_predictions(preds)
        y = np.asarray(y)
        if self.task == "classification":
            labels = y.reshape(-1).astype(int)
            onehot = np.eye(preds.shape[-1])[labels]
            result = error_decomposition(preds, onehot)
            result["accuracy"] = float(np.mean(combined.argmax(-1) == labels))
            result["mean_member_accuracy"] = float(np.mean(preds.argmax(-1) == labels[None]))
        else:
            result = error_decomposition(preds, y.reshape(combined.shape))
            result["mse"] = float(np.mean((combined - y.reshape(combined.shape)) ** 2))
        return result


class Bagging(Ensemble):
    """Bootstrap aggregating: ``members`` models, each fit on its own resample.

    Every member is built by ``build_fn()`` (a new compiled model) and fit on
    a bootstrap resample of the training data (``n`` draws with replacement;
    about 63% of the examples, some repeated) and, with
    ``feature_fraction < 1``, on a random subset of the input features (the
    others set to 0, i.e. the mean of standardized data: random subspaces).
    Members differ, their errors partly cancel, and the ensemble's variance
    falls: ``evaluate`` reports by how much.

    Args:
        build_fn: Callable returning a new compiled Keras model.
        members: Number of members, an integer >= 1. Default 5.
        bootstrap: Resample with replacement (False: every member sees all
            the data, and only the initialization and feature subsets differ).
            Default True.
        feature_fraction: Share of input features (last axis of 2-D inputs)
            each member sees, in (0, 1]. Default 1.
        task, combine, from_logits: As in ``Ensemble``.
        seed: Seed of the resamples, subsets and member initializations.

    Example:
        >>> bag = kreg.training.Bagging(make_model, members=5, from_logits=True)
        >>> bag.fit(x_train, y_train, epochs=20, verbose=0)
        >>> bag.evaluate(x_test, y_test)

    References:
        Breiman, "Bagging predictors", 1996; Ho, "The random subspace
        method", IEEE TPAMI 1998.
    """

    def __init__(self, build_fn, members=5, bootstrap=True, feature_fraction=1.0, task="classification",
                 combine="mean", from_logits=False, seed=0):
        if not callable(build_fn):
            raise v.invalid("build_fn", "a callable returning a compiled model", build_fn)
        self.build_fn = build_fn
        self.n_members = v.check_positive_int("members", members)
        if not isinstance(bootstrap, bool):
            raise v.invalid("bootstrap", "a boolean", bootstrap)
        self.bootstrap = bootstrap
        if not (isinstance(feature_fraction, (int, float)) and 0 < feature_fraction <= 1):
            raise v.invalid("feature_fraction", "a float in (0, 1]", feature_fraction)
        self.feature_fraction = float(feature_fraction)
        self.seed = v.check_non_negative_int("seed", seed)
        super().__init__([None], task=task, combine=combine, from_logits=from_logits)
        self.members = []
        self.histories = []

    def fit(self, x, y, **fit_kwargs):
        """Builds and fits every member; returns the list of their histories."""
        x, y = np.asarray(x), np.asarray(y)
        if self.feature_fraction < 1 and x.ndim != 2:
            raise v.invalid("feature_fraction", "1.0 for inputs that are not 2-D (features on the last axis)",
                            self.feature_fraction)
        rng = np.random.default_rng(self.seed)
        n, masks = len(x), []
        self.members, self.histories = [], []
        for i in range(self.n_members):
            index = rng.integers(0, n, n) if self.bootstrap else np.arange(n)
            mask = None
            if self.feature_fraction < 1:
                d = x.shape[-1]
                keep = rng.choice(d, max(1, int(round(self.feature_fraction * d))), replace=False)
                mask = np.zeros(d, x.dtype)
                mask[keep] = 1
                masks.append(mask)
            keras.utils.set_random_seed(self.seed + i)
            model = self.build_fn()
            xi = x[index] if mask is None else x[index] * mask
            self.histories.append(model.fit(xi, y[index], **fit_kwargs))
            self.members.append(model)
        self.feature_masks = masks or None
        return self.histories
