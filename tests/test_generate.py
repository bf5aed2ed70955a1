"""layers.generate: the prompt first, greedy at temperature 0, top-k, the context window, draws from rng,
bad settings."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from lamina import layers


@attrs.frozen
class NextOf(layers.Layer):
    """A fixed language model over 5 ids: at each position the logit of j is -3 ((j - id - 1) % 5), so
    (id + 1) % 5 is the most likely, then (id + 2) % 5, and so on."""

    takes_ids = True

    def forward(self, ids, mode):
        return -3.0 * ((np.arange(5) - ids[..., None] - 1) % 5), None

    def backward(self, cache, dy, mode):
        return None, self


@attrs.frozen
class Seen(layers.Layer):
    """Remembers nothing: its output says how long the input was, at the last position (id = length % 5)."""

    takes_ids = True

    def forward(self, ids, mode):
        logits = np.zeros((*ids.shape, 5))
        logits[:, -1, ids.shape[1] % 5] = 100.0
        return logits, None

    def backward(self, cache, dy, mode):
        return None, self


def test_greedy_appends_the_argmax_after_the_prompt():
    prompt = np.array([[0, 1], [3, 3]])
    out = layers.generate(NextOf(), prompt, 4, np.random.default_rng(0), temperature=0)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [[0, 1, 2, 3, 4, 0], [3, 3, 4, 0, 1, 2]])


def test_sampling_follows_the_softmax_and_the_rng():
    prompt = np.zeros((2000, 1), np.int64)
    first = layers.generate(NextOf(), prompt, 1, np.random.default_rng(0))[:, 1]
    p = 1 / np.exp(-3.0 * np.arange(5)).sum()
    assert abs((first == 1).mean() - p) < 0.02
    again = layers.generate(NextOf(), prompt, 1, np.random.default_rng(0))[:, 1]
    np.testing.assert_array_equal(first, again)
    hot = layers.generate(NextOf(), prompt, 1, np.random.default_rng(0), temperature=10.0)[:, 1]
    assert (hot != 1).mean() > 0.5   # a high temperature flattens the distribution
    top1 = layers.generate(NextOf(), prompt, 1, np.random.default_rng(0), temperature=10.0, top_k=1)[:, 1]
    assert (top1 == 1).all()
    top2 = layers.generate(NextOf(), prompt, 1, np.random.default_rng(0), temperature=100.0, top_k=2)[:, 1]
    assert set(np.unique(top2)) == {1, 2}   # only the two most likely


def test_the_model_sees_at_most_the_context_and_by_default_the_positional_embeddings_length():
    out = layers.generate(Seen(), np.zeros((1, 1), np.int64), 6, np.random.default_rng(0), temperature=0,
                          context=3)
    np.testing.assert_array_equal(out[0], [0, 1, 2, 3, 3, 3, 3])   # the input grows to 3 steps, then stays
    rng = np.random.default_rng(0)
    gpt_like = layers.Sequence([layers.Embedding.init(rng, 5, 4), layers.PositionalEmbedding.init(rng, 4, 4),
                                layers.Dense.init(rng, 4, 5)])
    out = layers.generate(gpt_like, np.zeros((2, 3), np.int64), 10, rng, top_k=3)   # t = 13 > max_length 4
    assert out.shape == (2, 13) and ((out >= 0) & (out < 5)).all()


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(temperature=-1.0), ValueError, r"temperature must be a finite number >= 0 \(0: greedy\), got -1.0"),
    (dict(temperature=float("nan")), ValueError, r"temperature must be a finite number"),
    (dict(top_k=0), ValueError, r"top_k must be a positive int or None, got 0"),
    (dict(context=0), ValueError, r"context must be a positive int or None, got 0"),
    (dict(steps=-1), ValueError, r"steps must be an int >= 0, got -1"),
    (dict(ids=np.zeros((2, 3))), ValueError, r"ids must be a non-empty int array \(n, t0\), got dtype float"),
    (dict(ids=np.zeros(3, np.int64)), ValueError, r"got dtype int64 and shape \(3,\)"),
    (dict(rng=0), TypeError, r"rng must be a numpy.random.Generator, got int"),
])
def test_bad_settings(kwargs, error, match):
    args = dict(ids=np.zeros((1, 2), np.int64), steps=3, rng=np.random.default_rng(0)) | kwargs
    with pytest.raises(error, match=match):
        layers.generate(NextOf(), **args)
