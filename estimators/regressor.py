"""NetRegressor: a lamina network as a scikit-learn regressor (one output per target; multi-output too)."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin

from lamina.estimators import settings
from lamina.estimators.base import NetEstimator, keep_settings


class NetRegressor(RegressorMixin, NetEstimator):
    """A lamina network trained on a regression loss, as a scikit-learn regressor.

    The settings are NetClassifier's (see there: hidden, activation, model, optimizer,
    learning_rate, momentum — only for "sgd" and "rmsprop" —, weight_decay, epochs, batch_size,
    validation_fraction, patience, random_state, dtype, threads, warm_start, verbose), with
    ``loss``: "mse" (``losses.MSE``), "huber" (``losses.Huber()``, delta 1) or "l1" (``losses.L1``)
    instead of ``class_weight``. ``model(rng, n_features, n_outputs)`` must give one output per
    target. A 1-d ``y`` gives 1-d predictions, a 2-d ``y`` (n, k) predictions (n, k).

    ``partial_fit(X, y)`` trains one epoch, continuing the optimizer state and the Generator:
    without a validation split, k calls give bit for bit the model of ``fit`` with ``epochs=k``.

    Fitted: ``model_``, ``history_`` (loss, val_loss, seconds; best_epoch and stopped_early with
    ``patience``), ``n_iter_``, ``n_outputs_``, ``n_features_in_``, ``feature_names_in_``.

    ``sklearn.utils.estimator_checks.check_estimator`` passes in full; checks declared expected
    failures are listed with their reasons in ``lamina.estimators.EXPECTED_FAILED_CHECKS``
    (currently {}).
    """

    _classify = False

    def __init__(self, hidden=(100,), activation="relu", *, loss="mse", optimizer="adam", learning_rate=1e-3,
                 momentum=0.9, weight_decay=0.0, epochs=20, batch_size=32, validation_fraction=0.0,
                 patience=None, model=None, random_state=None, dtype=np.float64, threads=1, warm_start=False,
                 verbose=False):
        keep_settings(self, locals())

    def partial_fit(self, X, y):
        """One more epoch on (X, y), keeping the optimizer state and the Generator -> self."""
        return self._partial_fit(X, y)

    def _check_settings(self) -> None:
        super()._check_settings()
        settings.regression_loss(type(self).__name__, self.loss)

    def _targets(self, y, reset: bool, classes=None) -> np.ndarray:
        """y as a float array (n, k); on a fresh start k is kept in n_outputs_ and the 1-d-ness of y."""
        y = np.asarray(y, dtype=np.float64)
        columns = y.reshape(len(y), -1)
        if reset:
            self._one_target = y.ndim == 1
            self.n_outputs_ = columns.shape[1]
        elif columns.shape[1] != self.n_outputs_:
            raise ValueError(f"{type(self).__name__}: y has {columns.shape[1]} targets, but "
                             f"{type(self).__name__} was fitted with {self.n_outputs_}")
        return columns

    def _n_outputs(self) -> int:
        return self.n_outputs_

    def _loss(self, y):
        return settings.regression_loss(type(self).__name__, self.loss)

    def predict(self, X) -> np.ndarray:
        """The predicted targets: (n,) when fitted on a 1-d y, else (n, n_outputs)."""
        pred = self._outputs(X)
        return pred[:, 0] if self._one_target else pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
