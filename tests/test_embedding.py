"""Embedding: lookup by hand, gradients summed per id, padding_idx, ids kept integer from fit down to it,
bad ids."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamina import layers, losses, optim
from sequence_checks import check_both_modes, check_saved_and_loaded


def embedding(n_tokens=6, dim=3, **kwargs):
    return layers.Embedding.init(np.random.default_rng(0), n_tokens, dim, dtype=np.float64, **kwargs)


def test_lookup_and_gradient_by_hand():
    emb = embedding()
    ids = np.array([[1, 4, 1], [0, 5, 1]])
    y, cache = emb.forward(ids, layers.EVAL)
    np.testing.assert_array_equal(y, emb.weight[ids])
    dy = np.arange(18.0).reshape(2, 3, 3)
    dx, grads = emb.backward(cache, dy, layers.EVAL)
    assert dx is None and isinstance(grads, layers.Embedding)
    expected = np.zeros((6, 3))
    expected[1] = dy[0, 0] + dy[0, 2] + dy[1, 2]   # id 1 three times: the sum
    expected[4], expected[0], expected[5] = dy[0, 1], dy[1, 0], dy[1, 1]
    np.testing.assert_array_equal(grads.weight, expected)


def test_any_rank_of_ids_and_the_output_shape():
    emb = embedding()
    assert emb(np.array([3, 1])).shape == (2, 3)
    assert emb(np.zeros((2, 4, 5), np.int32)).shape == (2, 4, 5, 3)
    assert emb.output_shape((7,)) == (7, 3) and emb.output_shape(None) == (None, 3)
    assert repr(emb) == "Embedding(6 -> 3, float64)"
    assert repr(embedding(padding_idx=2)) == "Embedding(6 -> 3, padding_idx=2, float64)"


def test_padding_idx_starts_at_zero_and_gets_no_gradient():
    emb = embedding(padding_idx=2)
    assert not emb.weight[2].any() and emb.weight[3].any()
    ids = np.array([[2, 2, 3]])
    y, cache = emb.forward(ids, layers.EVAL)
    _, grads = emb.backward(cache, np.ones((1, 3, 3)), layers.EVAL)
    assert not grads.weight[2].any() and (grads.weight[3] == 1).all()


def test_input_grad_true_still_gives_no_input_gradient_and_a_sequence_passes_none_on():
    dense = layers.Dense.init(np.random.default_rng(1), 3, 2, dtype=np.float64)
    model = layers.Sequence([embedding(), dense])
    ids = np.array([[1, 2], [3, 4]])
    for input_grad in (True, False):
        mode = layers.Mode(input_grad=input_grad)
        y, cache = model.forward(ids, mode)
        dx, grads = model.backward(cache, np.ones_like(y), mode)
        assert dx is None and grads.layers[0].weight[1:5].any()


@pytest.mark.parametrize("ids, match", [
    (np.array([[0, 6, 7]]), r"ids must be in \[0, 6\), but ids\[0, 1\] is 6 \(the first out of range\)"),
    (np.array([[0, 1], [2, -1]]), r"ids must be in \[0, 6\), but ids\[1, 1\] is -1"),
    (np.array([9]), r"ids must be in \[0, 6\), but ids\[0\] is 9"),
])
def test_an_out_of_range_or_negative_id_is_named_with_its_position(ids, match):
    model = layers.Sequence([layers.Sequence([embedding()]), layers.ReLU()])
    path = r"^layers\[0\]\.layers\[0\] Embedding\(6 -> 3, float64\): "
    with pytest.raises(layers.LayerError, match=path + match):
        model.forward(ids, layers.EVAL)


def test_float_ids_are_refused_never_rounded():
    with pytest.raises(layers.LayerError, match=r"Embedding\(6 -> 3, float64\): takes integer token ids .* "
                                                r"got dtype "
                                                r"float64.*never rounded"):
        layers.Sequence([embedding()])(np.array([[1.0, 2.0]]))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(padding_idx=6), ValueError, r"padding_idx must be None or an id in \[0, 6\), got 6"),
    (dict(padding_idx=-1), ValueError, r"padding_idx must be None or an id in \[0, 6\), got -1"),
    (dict(n_tokens=0), ValueError, r"Embedding.init: n_tokens must be a positive int, got 0"),
    (dict(rng=None), TypeError, r"Embedding.init needs a numpy.random.Generator first"),
])
def test_bad_settings(kwargs, error, match):
    args = dict(rng=np.random.default_rng(0), n_tokens=6, dim=3) | kwargs
    with pytest.raises(error, match=match):
        layers.Embedding.init(**args)


def test_takes_ids_is_the_class_attribute_and_a_combinators_first_child():
    emb = embedding()
    assert layers.takes_ids(emb) and not layers.takes_ids(layers.Dense.init(np.random.default_rng(0), 2, 2))
    assert layers.takes_ids(layers.Sequence([layers.Sequence([emb]), layers.ReLU()]))
    assert not layers.takes_ids(layers.Sequence([layers.ReLU(), emb]))


def test_fit_and_evaluate_keep_the_ids_integer_and_never_warn_about_their_size(recwarn):
    rng = np.random.default_rng(0)
    model = layers.Sequence([layers.Embedding.init(rng, 500, 8), layers.Dense.init(rng, 8, 500)])
    x = rng.integers(0, 500, (64, 5))
    y = (x + 1) % 500
    trained, history = optim.fit(model, losses.SoftmaxCrossEntropy(), optim.Adam(0.05), x, y, epochs=3,
                                 batch_size=16, rng=rng, progress=False)
    assert history["loss"][-1] < history["loss"][0]
    assert not [w for w in recwarn if issubclass(w.category, optim.TrainingWarning)]
    assert 0 <= optim.evaluate(trained, losses.SoftmaxCrossEntropy(), x, y)["accuracy"] <= 1
    assert trained(x).shape == (64, 5, 500)


def test_saved_and_loaded(tmp_path):
    check_saved_and_loaded(embedding(padding_idx=1), np.array([[1, 2, 5]]), tmp_path)


@given(n=st.integers(1, 3), t=st.integers(1, 5), n_tokens=st.integers(1, 6), dim=st.integers(1, 4),
       seed=st.integers(0, 2**16), padding=st.booleans())
def test_gradients(gradient_record, n, t, n_tokens, dim, seed, padding):
    """(The padding row's gradient is zero on purpose, as torch's: the ids checked avoid it.)"""
    rng = np.random.default_rng(seed)
    padding = padding and n_tokens > 1
    emb = layers.Embedding.init(rng, n_tokens, dim, padding_idx=0 if padding else None, dtype=np.float64)
    check_both_modes(emb, rng.integers(int(padding), n_tokens, (n, t)), gradient_record, repr(emb))


def test_a_language_model_resumes_bit_for_bit(tmp_path):
    """Two epochs, or one, a checkpoint and a resumed second: the same bits (the ids stay ints)."""
    data_rng = np.random.default_rng(0)
    x = data_rng.integers(0, 12, (48, 6))
    y = np.roll(x, -1, axis=1)

    def model():
        rng = np.random.default_rng(1)
        return layers.Sequence([layers.Embedding.init(rng, 12, 8, padding_idx=0),
                                layers.PositionalEmbedding.init(rng, 6, 8, init=0.02),
                                layers.Conv1D.init(rng, 8, 8, 3, padding="causal"), layers.GELU(),
                                layers.LayerNorm.init(8), layers.Dense.init(rng, 8, 12, init=0.02)])

    loss, opt = losses.SoftmaxCrossEntropy(ignore_index=0), optim.AdamW(1e-2)
    settings = dict(batch_size=16, progress=False, threads=1)
    full, history = optim.fit(model(), loss, opt, x, y, epochs=2, rng=np.random.default_rng(2), **settings)
    optim.fit(model(), loss, opt, x, y, epochs=1, rng=np.random.default_rng(2), checkpoint=tmp_path / "run",
              **settings)
    resumed, _ = optim.fit(model(), loss, opt, x, y, epochs=2, rng=np.random.default_rng(9),
                           resume=tmp_path / "run", **settings)
    assert history["loss"][1] < history["loss"][0]
    for (path, a), (_, b) in zip(layers.named_parameters(full), layers.named_parameters(resumed)):
        np.testing.assert_array_equal(a, b, err_msg=path)
