"""NetEstimator: what NetClassifier and NetRegressor share: settings, fit / partial_fit / warm start, early
stopping."""

from __future__ import annotations

import contextlib

import numpy as np
from lamina.estimators import settings
from lamina.estimators.training import held_out, train
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from lamina import layers


def keep_settings(estimator, arguments: dict) -> None:
    """Each ``__init__`` argument (``locals()`` on entry) as an attribute of its name, unchanged: the
    convention of scikit-learn, which reads the settings back through the signature of each ``__init__``."""
    for name, value in arguments.items():
        if name != "self":
            setattr(estimator, name, value)


class NetEstimator(BaseEstimator):
    """The shared part of the estimators; a subclass gives the targets, the loss and the predictions.

    Subclasses define ``_classify`` (bool), ``_targets(y, reset, classes) -> encoded y``,
    ``_n_outputs()`` and ``_loss(y) -> loss record``.
    """

    # ---- fitting -----------------------------------------------------------------------------
    def fit(self, X, y):
        """Train for ``epochs`` epochs (early stopping with validation_fraction and patience) -> self.

        Without ``warm_start`` (or before the first fit) the model, the optimizer state and the
        Generator start afresh from ``random_state``; with it, training continues from them.
        """
        fresh = not (self.warm_start and self._fitted())
        who = type(self).__name__
        settings.positive_int(who, "epochs", self.epochs)
        x, y = self._data(X, y, reset=fresh)
        if fresh:
            self._start(x)
        self._train(x, y, self.epochs, split=True)
        return self

    def _partial_fit(self, X, y, classes=None):
        """One more epoch on (X, y), continuing the model, the optimizer state and the Generator -> self."""
        fresh = not self._fitted()
        x, y = self._data(X, y, reset=fresh, classes=classes)
        if fresh:
            self._start(x)
        self._train(x, y, 1, split=False)
        return self

    def _fitted(self) -> bool:
        return hasattr(self, "model_")

    def __sklearn_is_fitted__(self) -> bool:
        return self._fitted()

    def _data(self, X, y, reset: bool, classes=None):
        """X as a float array checked by scikit-learn (n_features_in_, feature_names_in_), y encoded by the
        subclass."""
        if reset:
            self._check_settings()
        x, y = validate_data(self, X, y, reset=reset, dtype=(np.float64, np.float32),
                             multi_output=not self._classify, y_numeric=not self._classify)
        return x, self._targets(y, reset, classes)

    def _check_settings(self) -> None:
        """Every setting, checked when a fresh fit starts (scikit-learn's constructors only store them)."""
        who = type(self).__name__
        self._hidden = settings.hidden_sizes(who, self.hidden)
        self._activation = settings.activation(who, self.activation)
        self._optimizer = settings.optimizer(who, self.optimizer, self.learning_rate, self.momentum,
                                             self.weight_decay)
        settings.positive_int(who, "epochs", self.epochs)
        settings.positive_int(who, "batch_size", self.batch_size)
        settings.positive_int(who, "patience", self.patience, allow_none=True)
        settings.positive_int(who, "threads", self.threads, allow_none=True)
        settings.fraction_right_open(who, "validation_fraction", self.validation_fraction)
        self._dtype = settings.float_dtype(who, self.dtype)
        if self.model is not None and not callable(self.model):
            raise TypeError(f"{who}: model must be None or a callable (rng, n_features, n_outputs) -> layer, "
                            f"such as functools.partial(my_builder, width=64); got {self.model!r}")

    def _start(self, x) -> None:
        """A new model, optimizer state and Generator, from ``random_state``."""
        self._rng = settings.generator(self.random_state)
        self.model_ = self._build(self._rng, x.shape[1], self._n_outputs())
        self._optimizer_state = self._optimizer.init(self.model_)
        self.history_ = {}
        self.n_iter_ = 0

    def _build(self, rng, n_features: int, n_outputs: int):
        """The default MLP, or ``model(rng, n_features, n_outputs)``, checked to give ``n_outputs``
        outputs."""
        if self.model is None:
            return layers.mlp(rng, [n_features, *self._hidden, n_outputs], activation=self._activation,
                              dtype=self._dtype)
        net = self.model(rng, n_features, n_outputs)
        if not (callable(getattr(net, "forward", None)) and callable(getattr(net, "backward", None))):
            raise TypeError(f"{type(self).__name__}: model(rng, n_features, n_outputs) must return a lamina "
                            f"layer "
                            f"(with forward and backward), got {type(net).__name__}")
        probe = net(np.zeros((1, n_features), dtype=self._model_dtype(net)))
        if probe.shape != (1, n_outputs):
            raise ValueError(f"{type(self).__name__}: the model built by model(rng, n_features={n_features}, "
                             f"n_outputs={n_outputs}) gives outputs of shape "
                             f"(n, {', '.join(map(str, probe.shape[1:]))})"
                             f"; expected (n, {n_outputs})")
        return net

    def _model_dtype(self, model) -> np.dtype:
        params = layers.parameters(model)
        return params[0].dtype if params else self._dtype

    def _limits(self):
        """The BLAS thread limit of the run (``threads=None``: the setting is left alone)."""
        if self.threads is None:
            return contextlib.nullcontext()
        return threadpool_limits(limits=self.threads, user_api="blas")

    def _train(self, x, y, epochs: int, split: bool) -> None:
        """``epochs`` epochs on (x, y), continuing model_, the optimizer state and the Generator; the history
        grows."""
        who = type(self).__name__
        dtype = self._model_dtype(self.model_)
        x = x.astype(dtype, copy=False)
        if y.dtype.kind == "f":
            y = y.astype(dtype, copy=False)
        loss, validation = self._loss(y), None
        if split and self.validation_fraction > 0:
            (x, y), validation = held_out(x, y, self.validation_fraction, self._rng, who)
        self.model_, self._optimizer_state = train(
            self.model_, self._optimizer_state, loss, self._optimizer, x, y, epochs=epochs,
            batch_size=min(self.batch_size, len(x)), rng=self._rng, history=self.history_,
            classify=self._classify, validation=validation, patience=self.patience, threads=self.threads,
            verbose=self.verbose, who=who)
        self.n_iter_ = len(self.history_["loss"])

    # ---- predicting --------------------------------------------------------------------------
    def _outputs(self, X) -> np.ndarray:
        """The model's outputs (n, n_outputs) for X, checked against what fit saw."""
        check_is_fitted(self)
        x = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        with self._limits():
            return self.model_(x.astype(self._model_dtype(self.model_), copy=False))

    # ---- pickling ----------------------------------------------------------------------------
    def __setstate__(self, state):
        super().__setstate__(state)
        model = state.get("model_")
        if model is not None:  # pickle hands arrays back writable; lamina's records keep theirs read-only
            for array in (*layers.parameters(model), *layers.buffers(model)):
                array.flags.writeable = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
