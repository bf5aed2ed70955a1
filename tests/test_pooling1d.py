"""MaxPool1D, AvgPool1D, GlobalAvgPool1D, GlobalMaxPool1D: against NumPy by hand, ties to the first maximum,
shapes, bad settings; gradients over lengths, widths, windows and batch sizes, also in a Residual."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamina import layers
from sequence_checks import check_both_modes


def windows_by_hand(x, size, stride):
    length = (x.shape[1] - size) // stride + 1
    return np.stack([x[:, i * stride:i * stride + size] for i in range(length)], axis=1)   # (n, t', size, c)


@pytest.mark.parametrize("size, stride", [(2, None), (3, 1), (3, 2), (2, 3), (1, None)])
def test_windows_against_numpy(size, stride):
    x = np.random.default_rng(size).standard_normal((2, 9, 3))
    w = windows_by_hand(x, size, size if stride is None else stride)
    np.testing.assert_array_equal(layers.MaxPool1D(size, stride)(x), w.max(axis=2))
    np.testing.assert_allclose(layers.AvgPool1D(size, stride)(x), w.mean(axis=2), rtol=1e-14)
    assert layers.MaxPool1D(size, stride).output_shape((9, 3)) == w.shape[1:2] + (3,)


def test_globals_against_numpy_and_their_shapes():
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    np.testing.assert_array_equal(layers.GlobalMaxPool1D()(x), x.max(axis=1))
    np.testing.assert_allclose(layers.GlobalAvgPool1D()(x), x.mean(axis=1), rtol=1e-14)
    assert layers.GlobalAvgPool1D().output_shape((None, 3)) == (3,)
    assert layers.GlobalMaxPool1D().output_shape((5, 3)) == (3,)


def test_a_tie_sends_the_gradient_to_the_first_maximum_only():
    x = np.array([[[1.0], [3.0], [3.0], [0.0], [3.0]]])
    y, cache = layers.MaxPool1D(3, 1).forward(x, layers.EVAL)
    dx, _ = layers.MaxPool1D(3, 1).backward(cache, np.ones_like(y), layers.EVAL)
    np.testing.assert_array_equal(dx[0, :, 0], [0, 2, 1, 0, 0])   # windows 0, 1 pick step 1, window 2 step 2
    y, cache = layers.GlobalMaxPool1D().forward(x, layers.EVAL)
    dx, _ = layers.GlobalMaxPool1D().backward(cache, np.ones((1, 1)), layers.EVAL)
    np.testing.assert_array_equal(dx[0, :, 0], [0, 1, 0, 0, 0])


def test_averages_share_the_gradient_over_overlapping_windows():
    y, cache = layers.AvgPool1D(2, 1).forward(np.zeros((1, 4, 1)), layers.EVAL)
    dx, _ = layers.AvgPool1D(2, 1).backward(cache, np.ones_like(y), layers.EVAL)
    np.testing.assert_array_equal(dx[0, :, 0], [0.5, 1, 1, 0.5])
    assert repr(layers.AvgPool1D(2, 1)) == "AvgPool1D(2, stride 1)"
    assert repr(layers.MaxPool1D()) == "MaxPool1D(2)"


@pytest.mark.parametrize("pool", [layers.MaxPool1D(3), layers.AvgPool1D(3), layers.GlobalAvgPool1D(),
                                  layers.GlobalMaxPool1D()], ids=repr)
def test_a_flat_or_short_input_is_a_shape_error_with_the_path(pool):
    model = layers.Sequence([layers.ReLU(), pool])
    with pytest.raises(layers.ShapeError, match=r"^layers\[1\] .*Pool1D.* expects sequences \(n, t, c\) "
                                                r"with t >= "
                                                r"\d, but layers\[0\] ReLU\(\) gives \(n, 4\)"):
        model.forward(np.zeros((2, 4)), layers.EVAL)
    if "Global" not in repr(pool):
        with pytest.raises(layers.ShapeError, match=r"with t >= 3.*\(n, 2, 5\)"):
            model.forward(np.zeros((2, 2, 5)), layers.EVAL)


@pytest.mark.parametrize("make, match", [
    (lambda: layers.MaxPool1D(0), r"MaxPool1D: size must be a positive int, got 0"),
    (lambda: layers.AvgPool1D(2, 0), r"AvgPool1D: stride must be a positive int or None, got 0"),
    (lambda: layers.MaxPool1D((2, 2)), r"MaxPool1D: size must be a positive int, got \(2, 2\)"),
])
def test_bad_settings(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@given(n=st.integers(1, 3), t=st.integers(1, 8), c=st.integers(1, 3), size=st.integers(1, 3),
       stride=st.sampled_from([None, 1, 2, 3]), which=st.integers(0, 3), seed=st.integers(0, 2**16))
def test_gradients(gradient_record, n, t, c, size, stride, which, seed):
    pool = [layers.MaxPool1D(size, stride), layers.AvgPool1D(size, stride), layers.GlobalAvgPool1D(),
            layers.GlobalMaxPool1D()][which]
    x = np.random.default_rng(seed).standard_normal((n, max(t, size), c))   # no ties: max pooling is smooth
    check_both_modes(pool, x, gradient_record, repr(pool))


def test_a_text_cnn_builds_summarises_trains_and_is_saved(tmp_path):
    """Embedding -> Conv1D -> MaxPool1D -> Conv1D -> GlobalMaxPool1D -> Dense: a sequence classifier."""
    from lamina import losses, optim
    rng = np.random.default_rng(0)
    model = layers.Sequence([layers.Embedding.init(rng, 20, 8),
                             layers.Conv1D.init(rng, 8, 16, 3, padding="same"),
                             layers.ReLU(), layers.MaxPool1D(2),
                             layers.Conv1D.init(rng, 16, 16, 3, padding="causal"),
                             layers.GlobalMaxPool1D(), layers.Dense.init(rng, 16, 2)])
    rows = model.summary((12,)).splitlines()
    assert "(n, 12, 16)" in rows[2] and "(n, 6, 16)" in rows[4]
    assert "(n, 16)" in rows[6] and "(n, 2)" in rows[7]
    x = rng.integers(0, 20, (64, 12))
    y = (x == 7).any(axis=1).astype(np.int64)   # does token 7 occur?
    trained, history = optim.fit(model, losses.SoftmaxCrossEntropy(), optim.Adam(0.01), x, y, epochs=8,
                                 batch_size=16, rng=rng, progress=False)
    assert history["accuracy"][-1] > 0.8
    layers.save(tmp_path / "cnn.npz", trained)
    loaded = layers.load(tmp_path / "cnn.npz")
    assert loaded == trained
    np.testing.assert_array_equal(loaded(x), trained(x))
    for pool in (layers.MaxPool1D(3, 1), layers.AvgPool1D(2), layers.GlobalAvgPool1D(), layers.LastStep()):
        layers.save(tmp_path / "pool.npz", pool)
        assert layers.load(tmp_path / "pool.npz") == pool
