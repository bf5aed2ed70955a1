"""NetClassifier: a lamina network as a scikit-learn classifier (softmax over one output per class)."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets

from lamina import losses
from lamina.estimators.base import NetEstimator, keep_settings


class NetClassifier(ClassifierMixin, NetEstimator):
    """A lamina network trained with softmax cross-entropy, as a scikit-learn classifier.

    Every setting is a flat value, so a search can try any of them:

    - ``hidden``: widths of the hidden Dense layers, e.g. ``(100,)`` or ``(128, 64)``; ``()`` is a
      linear model. ``activation``: "relu", "leaky_relu", "tanh", "sigmoid", "gelu", "identity".
    - ``model``: instead of ``hidden`` and ``activation``, a callable ``(rng, n_features,
      n_outputs) -> layer`` building any lamina architecture (search over it with
      ``functools.partial``); it must give ``n_outputs`` = number of classes outputs (logits).
    - ``optimizer``: "sgd", "adam", "adamw" or "rmsprop" (``optim.SGD``, ``Adam``, ``AdamW``,
      ``RMSprop``) with ``learning_rate`` and ``weight_decay``. ``momentum`` is handed to "sgd" and
      "rmsprop" only; "adam" and "adamw" ignore it (their betas play its part), so a search over
      momentum runs with every optimizer.
    - ``epochs`` (per ``fit``), ``batch_size`` (the last batch of an epoch may be smaller).
    - ``validation_fraction`` > 0 holds out that fraction of ``fit``'s data (drawn from the
      Generator) and records ``val_loss`` / ``val_accuracy``; with ``patience``, training stops after
      that many epochs without a lower ``val_loss`` and keeps the best model. ``patience`` without a
      validation split watches the training loss (and keeps the last model).
    - ``class_weight``: None, "balanced" (n_samples / (n_classes * count), from the ``y`` of each
      fit) or a dict {label: weight}; the loss is torch's weighted mean.
    - ``random_state``: None, an int, a RandomState or a Generator; the one numpy Generator made
      from it draws the initial weights, the validation split, every epoch's shuffle and dropout.
    - ``dtype``: np.float64 or np.float32 for the default model's parameters.
    - ``threads``: BLAS threads while training and predicting (1: a search runs one fit per core
      and the same seed gives the same bits; None leaves the BLAS setting alone).
    - ``warm_start``: ``fit`` continues the model, the optimizer's state and the Generator, adding
      ``epochs`` more (settings of the optimizer are those of the first fit).
    - ``verbose``: one line per epoch.

    ``partial_fit(X, y, classes=None)`` trains one epoch, continuing the optimizer state and the
    Generator: without a validation split, k calls give bit for bit the model of ``fit`` with
    ``epochs=k``. ``classes`` (on the first call; default: the labels in that ``y``) fixes ``classes_``.

    Fitted: ``classes_`` (labels of any type), ``model_`` (the lamina model; ``layers.save`` it),
    ``history_`` (per-epoch lists: loss, accuracy, val_loss, val_accuracy, seconds; best_epoch and
    stopped_early with ``patience``), ``n_iter_`` (epochs trained), ``n_features_in_``,
    ``feature_names_in_`` (for DataFrames).

    ``sklearn.utils.estimator_checks.check_estimator`` passes in full; checks declared expected
    failures are listed with their reasons in ``lamina.estimators.EXPECTED_FAILED_CHECKS``
    (currently {}).
    """

    _classify = True

    def __init__(self, hidden=(100,), activation="relu", *, optimizer="adam", learning_rate=1e-3,
                 momentum=0.9, weight_decay=0.0, epochs=20, batch_size=32, validation_fraction=0.0,
                 patience=None, class_weight=None, model=None, random_state=None, dtype=np.float64, threads=1,
                 warm_start=False, verbose=False):
        keep_settings(self, locals())

    def partial_fit(self, X, y, classes=None):
        """One more epoch on (X, y), keeping the optimizer state and the Generator -> self."""
        return self._partial_fit(X, y, classes)

    def _targets(self, y, reset: bool, classes=None) -> np.ndarray:
        """y as int64 indices into classes_ (set on a fresh start from ``classes`` or y)."""
        check_classification_targets(y)
        if reset:
            self.classes_ = np.unique(y if classes is None else np.asarray(classes))
            if len(self.classes_) < 2:
                raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes, got 1 class: "
                                 f"{self.classes_[0]!r}")
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(f"{type(self).__name__}: classes={classes!r} differs from classes_ "
                             f"{self.classes_!r} of the first fit")
        index = np.searchsorted(self.classes_, y)
        index[index == len(self.classes_)] = 0
        unseen = self.classes_[index] != y
        if unseen.any():
            raise ValueError(f"{type(self).__name__}: y holds labels that are not in classes_ "
                             f"{self.classes_!r}, e.g. {y[np.flatnonzero(unseen)[0]]!r}; pass every class to "
                             "the first partial_fit (classes=...) or fit afresh")
        return index.astype(np.int64)

    def _n_outputs(self) -> int:
        return len(self.classes_)

    def _loss(self, y) -> losses.SoftmaxCrossEntropy:
        """Softmax cross-entropy with the class weights of ``class_weight`` for this y (encoded)."""
        weight, k = self.class_weight, len(self.classes_)
        if weight is None:
            return losses.SoftmaxCrossEntropy()
        if isinstance(weight, str) and weight == "balanced":
            counts = np.bincount(y, minlength=k)
            weights = np.where(counts > 0, len(y) / (k * np.maximum(counts, 1)), 1.0)
        elif isinstance(weight, dict):
            unknown = [label for label in weight if label not in set(self.classes_.tolist())]
            if unknown:
                raise ValueError(f"{type(self).__name__}: class_weight names labels that are not classes: "
                                 f"{unknown!r}; classes are {self.classes_.tolist()!r}")
            weights = np.array([float(weight.get(label, 1.0)) for label in self.classes_.tolist()])
        else:
            raise ValueError(f"{type(self).__name__}: class_weight must be None, 'balanced' or a dict "
                             f"{{label: weight}}, got {weight!r}")
        return losses.SoftmaxCrossEntropy(class_weights=weights)

    def predict(self, X) -> np.ndarray:
        """The most probable class of each sample, (n,), from classes_."""
        index = self._outputs(X).argmax(axis=1)
        return self.classes_[index]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, n_classes), columns in the order of classes_: softmax of the logits."""
        return losses.softmax(self._outputs(X))

    def predict_log_proba(self, X) -> np.ndarray:
        """log predict_proba, computed stably: logits - logsumexp(logits), (n, n_classes)."""
        z = self._outputs(X)
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
