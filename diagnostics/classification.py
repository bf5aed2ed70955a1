"""What a classifier gets right and wrong: checked data, predictions, the confusion matrix, the most confident
mistakes."""

from __future__ import annotations

import attrs
import numpy as np

from lamina import layers
from lamina.layers.layer import model_dtype
from lamina.layers.settings import positive_int


def check_data(model, x, y=None, who: str = "diagnostics") -> tuple[np.ndarray, np.ndarray | None]:
    """(x, y) as arrays, x in the model's dtype; a ValueError that says what does not fit: the samples' shape,
    the labels."""
    x = np.asarray(x)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"{who}: x must be a batch of samples (n, ...) with n >= 1, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{who}: x must hold real numbers, got dtype {x.dtype}")
    dtype = model_dtype(model)
    if dtype is not None:
        x = x.astype(dtype, copy=False)
    try:
        if hasattr(model, "output_shape"):
            model.output_shape(x.shape[1:])
        model(x[:1])
    except layers.ShapeError as error:
        raise ValueError(f"{who}: the data does not fit the model: its samples are shaped {x.shape[1:]}, and "
                         f"{error}") from None
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(x):
            raise ValueError(f"{who}: y must be one int label per sample, shape ({len(x)},), got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{who}: y must be int class labels, got dtype {y.dtype}")
        n_classes = n_outputs_as_classes(model, x)
        bad = np.flatnonzero((y < 0) | (y >= n_classes))
        if bad.size:
            raise ValueError(f"{who}: label y[{bad[0]}] = {y[bad[0]]} is not a class of this model "
                             f"(0 to {n_classes - 1})")
    return x, y


def n_outputs_as_classes(model, x) -> int:
    """How many classes the model's outputs mean: one per output, two for a single (sigmoid) output."""
    k = model(x[:1]).shape[-1]
    return 2 if k == 1 else k


def probabilities(model, x) -> np.ndarray:
    """(n, classes) class probabilities: softmax of the outputs, or [1 - p, p] for a single sigmoid output."""
    logits = model(x).astype(np.float64)
    if logits.ndim != 2:
        raise ValueError("diagnostics: a classifier gives (n, classes) outputs, this model gives "
                         f"{logits.shape}")
    if logits.shape[1] == 1:
        p = 1 / (1 + np.exp(-logits[:, 0]))
        return np.stack([1 - p, p], axis=1)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def count_confusions(true, predicted, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) int64: entry [i, j] counts the samples of class i predicted as j."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true), np.asarray(predicted)), 1)
    return matrix


def confusion_matrix(model, x, y) -> np.ndarray:
    """(classes, classes) int64 counts of the model on (x, y): row = true class, column = predicted class."""
    x, y = check_data(model, x, y, who="confusion_matrix")
    p = probabilities(model, x)
    return count_confusions(y, p.argmax(axis=1), p.shape[1])


@attrs.frozen
class Mistakes:
    """The most confident mistakes, most confident first: sample ``index`` in x, its ``true`` and
    ``predicted`` class, and ``confidence``, the probability the model gave its (wrong) prediction."""

    index: np.ndarray
    true: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray

    def __len__(self) -> int:
        return len(self.index)


def confident_mistakes(model, x, y, k: int = 16) -> Mistakes:
    """The (up to) ``k`` wrongly classified samples of (x, y) the model was surest of, surest first."""
    positive_int("confident_mistakes", "k", k)
    x, y = check_data(model, x, y, who="confident_mistakes")
    p = probabilities(model, x)
    predicted = p.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y)
    confidence = p[wrong, predicted[wrong]]
    order = np.argsort(-confidence, kind="stable")[:k]
    index = wrong[order]
    return Mistakes(index=index, true=y[index], predicted=predicted[index], confidence=confidence[order])
