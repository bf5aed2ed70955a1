"""SoftmaxCrossEntropy over sequences: (n, ..., k) logits with (n, ...) labels or probabilities, ignore_index,
the all-ignored batch, label errors with their position, and accuracy over the counted positions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamina import layers, losses, optim
from lamina.optim.metrics import accuracy_rule


def flat_reference(loss, z, labels):
    """The same loss on (n*t, k) rows, the counted positions only: what a sequence loss must equal."""
    z, labels = z.reshape(-1, z.shape[-1]), labels.reshape(-1)
    counted = labels != loss.ignore_index if loss.ignore_index is not None else np.ones(len(labels), bool)
    plain = losses.SoftmaxCrossEntropy(label_smoothing=loss.label_smoothing, class_weights=loss.class_weights)
    return plain.forward(z[counted], labels[counted])[0]


@pytest.mark.parametrize("loss", [losses.SoftmaxCrossEntropy(),
                                  losses.SoftmaxCrossEntropy(label_smoothing=0.1),
                                  losses.SoftmaxCrossEntropy(class_weights=[1, 2, 0.5, 1]),
                                  losses.SoftmaxCrossEntropy(ignore_index=-1),
                                  losses.SoftmaxCrossEntropy(ignore_index=2, class_weights=[1, 2, 0.5, 1])],
                         ids=repr)
def test_the_mean_over_every_counted_position(loss):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((3, 5, 4))
    labels = rng.integers(0, 4, (3, 5))
    if loss.ignore_index == -1:
        labels[0, 1:3] = -1
    value, cache = loss.forward(z, labels)
    assert value == pytest.approx(flat_reference(loss, z, labels), rel=1e-12)
    grad = loss.backward(cache)
    assert grad.shape == z.shape
    if loss.ignore_index is not None:
        assert not grad[labels == loss.ignore_index].any()


def test_probability_targets_over_sequences_average_over_positions():
    rng = np.random.default_rng(1)
    z, t = rng.standard_normal((2, 3, 4)), rng.dirichlet(np.ones(4), (2, 3))
    value, _ = losses.SoftmaxCrossEntropy().forward(z, t)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    assert value == pytest.approx(-(t * log_p).sum() / 6, rel=1e-12)


def test_a_batch_of_only_ignored_positions_has_loss_zero_and_a_zero_gradient():
    loss = losses.SoftmaxCrossEntropy(ignore_index=0)
    z = np.ones((2, 3, 4), np.float32)
    value, cache = loss.forward(z, np.zeros((2, 3), np.int64))
    grad = loss.backward(cache)
    assert value == 0.0 and grad.shape == z.shape and grad.dtype == np.float32 and not grad.any()


@pytest.mark.parametrize("labels, loss, match", [
    (np.array([[0, 1, 4]]), losses.SoftmaxCrossEntropy(), r"in \[0, 4\), but labels\[0, 2\] is 4"),
    (np.array([[0, -100, -1]]), losses.SoftmaxCrossEntropy(ignore_index=-100),
     r"labels must be in \[0, 4\) or ignore_index -100, but labels\[0, 2\] is -1"),
    (np.array([[0, 1]]), losses.SoftmaxCrossEntropy(), r"expected 3 labels of shape \(1, 3\)"),
    (np.array([[0.0, 1.0, 2.0]]), losses.SoftmaxCrossEntropy(), r"labels must be integers .* got float64"),
])
def test_bad_labels_are_named_with_their_position(labels, loss, match):
    with pytest.raises(ValueError, match=match):
        loss.forward(np.zeros((1, 3, 4)), labels)


@pytest.mark.parametrize("value", [1.5, True, "pad"])
def test_a_bad_ignore_index_is_refused(value):
    with pytest.raises(ValueError, match="ignore_index must be None or an int"):
        losses.SoftmaxCrossEntropy(ignore_index=value)


def test_accuracy_counts_the_counted_positions_only():
    pred = np.zeros((1, 4, 3))
    pred[0, :, 1] = 1   # predicts 1 everywhere
    labels = np.array([[1, 1, 2, -1]])
    assert accuracy_rule(losses.SoftmaxCrossEntropy(ignore_index=-1), labels)(pred, labels) == (2, 3)
    assert accuracy_rule(losses.SoftmaxCrossEntropy(), labels[:, :3])(pred[:, :3], labels[:, :3]) == (2, 3)


def test_fit_and_evaluate_take_sequence_labels_with_ignore_index():
    rng = np.random.default_rng(0)
    model = layers.Sequence([layers.Embedding.init(rng, 5, 4), layers.Dense.init(rng, 4, 5)])
    x = rng.integers(0, 5, (20, 6))
    y = np.where(x == 0, -1, x)
    loss = losses.SoftmaxCrossEntropy(ignore_index=-1)
    _, history = optim.fit(model, loss, optim.Adam(0.1), x, y, epochs=4, batch_size=5, rng=rng,
                           progress=False)
    assert history["accuracy"][-1] > history["accuracy"][0]
    result = optim.evaluate(model, loss, x, y)
    assert set(result) == {"loss", "accuracy"}
    with pytest.raises(ValueError,
                       match=r"fit: labels must be in \[0, 5\) or ignore_index -1, but labels\[0, 0\] is 7"):
        optim.fit(model, loss, optim.Adam(0.1), x, np.full((20, 6), 7), epochs=1, batch_size=5, rng=rng,
                  progress=False)


@given(n=st.integers(1, 3), t=st.integers(1, 4), k=st.integers(2, 5), seed=st.integers(0, 2**16),
       smoothing=st.sampled_from([0.0, 0.2]), ignore=st.booleans(), probabilities=st.booleans())
def test_gradient(gradient_record, n, t, k, seed, smoothing, ignore, probabilities):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, t, k)) * 2
    if probabilities:
        target = rng.dirichlet(np.ones(k), (n, t))
    else:
        target = rng.integers(0, k, (n, t))
        if ignore:
            target[rng.random((n, t)) < 0.4] = -100
    loss = losses.SoftmaxCrossEntropy(label_smoothing=smoothing, ignore_index=-100 if ignore else None)
    gradient_record.add(layers.check_loss_gradient(loss, z, target), repr(loss))
