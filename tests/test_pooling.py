"""MaxPool2D, AvgPool2D and GlobalAvgPool2D: against direct loops, finite differences (hypothesis), ties,
dtypes, padding and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamina import layers
from lamina.layers import split_rows

TOL = 1e-6


# --- the reference: loops --------------------------------------------------------------------

def loop_pool(x, size, stride, kind):
    """(y, dx for dy = ones... by window): each output the max or mean of its window; max's gradient to the
    first maximum."""
    (kh, kw), (sh, sw) = size, stride
    n, h, w, c = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    y = np.zeros((n, oh, ow, c))
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for k in range(c):
                    window = x[b, i * sh:i * sh + kh, j * sw:j * sw + kw, k]
                    y[b, i, j, k] = window.max() if kind == "max" else window.mean()
    return y


def loop_pool_backward(x, size, stride, kind, dy):
    (kh, kw), (sh, sw) = size, stride
    dx = np.zeros(x.shape)
    for b in range(dy.shape[0]):
        for i in range(dy.shape[1]):
            for j in range(dy.shape[2]):
                for k in range(dy.shape[3]):
                    window = x[b, i * sh:i * sh + kh, j * sw:j * sw + kw, k]
                    if kind == "max":
                        # argmax: the first, row-major
                        p, q = np.unravel_index(np.argmax(window), window.shape)
                        dx[b, i * sh + p, j * sw + q, k] += dy[b, i, j, k]
                    else:
                        dx[b, i * sh:i * sh + kh, j * sw:j * sw + kw, k] += dy[b, i, j, k] / (kh * kw)
    return dx


POOLS = [
    # (size, stride, image (n, h, w, c))
    (2, None, (2, 6, 6, 3)),
    (2, None, (2, 7, 5, 2)),       # floor: the last row and column are left out
    (3, 2, (2, 9, 8, 2)),          # overlapping windows
    ((2, 3), 1, (1, 5, 6, 2)),
    (2, 3, (2, 8, 8, 1)),          # gaps between windows
    ((3, 1), (1, 2), (1, 6, 5, 3)),
    (1, None, (1, 3, 3, 2)),
]


@pytest.mark.parametrize("kind, cls", [("max", layers.MaxPool2D), ("avg", layers.AvgPool2D)])
@pytest.mark.parametrize("case", POOLS, ids=str)
@pytest.mark.parametrize("levels", [None, 3], ids=["distinct", "ties"])
def test_against_the_loop(kind, cls, case, levels):
    size, stride, shape = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) if levels is None else rng.integers(0, levels, shape).astype(np.float64)
    pool = cls(size, stride)
    for mode in (layers.TRAIN, layers.EVAL):
        y, cache = pool.forward(x, mode)
        np.testing.assert_allclose(y, loop_pool(x, pool.size, pool.step, kind), rtol=1e-14, atol=1e-14)
        assert y.shape[1:] == pool.output_shape(shape[1:])
        dy = rng.standard_normal(y.shape)
        dx, grads = pool.backward(cache, dy, mode)
        np.testing.assert_allclose(dx, loop_pool_backward(x, pool.size, pool.step, kind, dy), rtol=1e-14,
                                   atol=1e-14)
        assert grads == pool


def test_ties_go_to_the_first_maximum_in_row_major_order():
    x = np.zeros((1, 4, 4, 1))
    x[0, 0, 1] = x[0, 1, 0] = 5.0        # window (0, 0): the maximum at (0, 1) and (1, 0): (0, 1) comes first
    x[0, 3, 2] = x[0, 3, 3] = 1.0        # window (1, 1): (3, 2) and (3, 3): (3, 2)
    # windows (0, 1) and (1, 0) are all zeros: the top-left element
    pool = layers.MaxPool2D(2)
    y, cache = pool.forward(x, layers.TRAIN)
    dx, _ = pool.backward(cache, np.array([[[[1.0], [2.0]], [[3.0], [4.0]]]]), layers.TRAIN)
    expected = np.zeros((4, 4))
    expected[0, 1], expected[0, 2], expected[2, 0], expected[3, 2] = 1.0, 2.0, 3.0, 4.0
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


def test_overlapping_windows_add_up():
    """A constant image: every 2x2 window at stride 1 routes to its top-left element, which no other
    window's is."""
    pool = layers.MaxPool2D(2, stride=1)
    x = np.ones((1, 3, 3, 1))
    y, cache = pool.forward(x, layers.TRAIN)
    dx, _ = pool.backward(cache, np.ones(y.shape), layers.TRAIN)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    # a single maximum in the middle is the maximum of all four windows
    x[0, 1, 1] = 2.0
    y, cache = pool.forward(x, layers.TRAIN)
    dx, _ = pool.backward(cache, np.ones(y.shape), layers.TRAIN)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 0, 0], [0, 4, 0], [0, 0, 0]])


def test_max_pool_ties_on_mnist_like_images():
    """Mostly blank images after a ReLU: the gradient's total is dy's total, each window's to one element."""
    rng = np.random.default_rng(0)
    x = np.maximum(rng.standard_normal((4, 8, 8, 3)) - 1.5, 0)
    pool = layers.MaxPool2D()
    y, cache = pool.forward(x, layers.TRAIN)
    dy = rng.random(y.shape) + 1
    dx, _ = pool.backward(cache, dy, layers.TRAIN)
    assert np.count_nonzero(dx) == y.size
    np.testing.assert_allclose(dx.sum(), dy.sum())


# --- finite differences ------------------------------------------------------------------------

@st.composite
def pool_cases(draw, cls):
    size = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3)))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(size[0], 7)), draw(st.integers(size[1], 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    # distinct values 0.01 apart: no maximum is within a finite-difference step of another
    x = rng.permutation(n * h * w * c).reshape(n, h, w, c) * 0.01 - 1.0
    return cls(size, stride), x


@given(pool_cases(layers.MaxPool2D))
def test_max_pool_gradients(gradient_record, case):
    pool, x = case
    gradient_record.add(layers.check_gradients(pool, x, tol=TOL), f"{pool!r}")


@given(pool_cases(layers.AvgPool2D))
def test_avg_pool_gradients(gradient_record, case):
    pool, x = case
    gradient_record.add(layers.check_gradients(pool, x, tol=TOL), f"{pool!r}")


@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(1, 3), st.integers(0, 2**16))
def test_global_avg_pool(gradient_record, n, h, w, c, seed):
    x = np.random.default_rng(seed).standard_normal((n, h, w, c))
    pool = layers.GlobalAvgPool2D()
    y, cache = pool.forward(x, layers.TRAIN)
    np.testing.assert_allclose(y, x.reshape(n, h * w, c).mean(axis=1), rtol=1e-14)
    assert pool.output_shape((h, w, c)) == (c,)
    gradient_record.add(layers.check_gradients(pool, x, tol=TOL), "GlobalAvgPool2D")


# --- dtypes, modes ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pool", [layers.MaxPool2D(), layers.AvgPool2D(3, 2), layers.GlobalAvgPool2D()],
                         ids=repr)
def test_dtypes_carry_through(pool, dtype):
    x = np.random.default_rng(0).standard_normal((2, 7, 7, 3)).astype(dtype)
    y, cache = pool.forward(x, layers.TRAIN)
    dx, _ = pool.backward(cache, np.ones_like(y), layers.TRAIN)
    assert y.dtype == dx.dtype == dtype and dx.shape == x.shape
    assert pool.backward(cache, np.ones_like(y), layers.Mode(input_grad=False))[0] is None


def test_forward_and_backward_change_nothing():
    x = np.random.default_rng(0).integers(0, 2, (2, 4, 4, 2)).astype(np.float64)
    for pool in (layers.MaxPool2D(), layers.MaxPool2D(3, 1), layers.AvgPool2D(), layers.GlobalAvgPool2D()):
        x_copy = x.copy()
        y, cache = pool.forward(x, layers.TRAIN)
        dy = np.ones_like(y)
        first, _ = pool.backward(cache, dy, layers.TRAIN)
        second, _ = pool.backward(cache, dy, layers.TRAIN)
        np.testing.assert_array_equal(first, second)
        np.testing.assert_array_equal(x, x_copy)
        np.testing.assert_array_equal(dy, np.ones_like(y))


def test_settings_and_repr():
    assert layers.MaxPool2D() == layers.MaxPool2D(2) == layers.MaxPool2D((2, 2), None)
    assert layers.MaxPool2D().step == (2, 2) and layers.AvgPool2D(3, 1).step == (1, 1)
    assert repr(layers.MaxPool2D()) == "MaxPool2D(2x2)"
    assert repr(layers.MaxPool2D(3, 2)) == "MaxPool2D(3x3, stride 2)"
    assert repr(layers.AvgPool2D((2, 3), (1, 2))) == "AvgPool2D(2x3, stride (1, 2))"
    assert repr(layers.AvgPool2D(2, 2)) == "AvgPool2D(2x2)"
    assert repr(layers.GlobalAvgPool2D()) == "GlobalAvgPool2D()"


# --- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [layers.MaxPool2D, layers.AvgPool2D])
@pytest.mark.parametrize("kwargs, message", [
    (dict(size=0), "size must be at least 1"),
    (dict(size=(2, 0)), "size must be at least 1"),
    (dict(size=2, stride=0), "stride must be at least 1"),
    (dict(size=2.0), "size must be an int or a pair"),
    (dict(size=2, stride=(1, 2, 3)), "stride must be an int or a pair"),
])
def test_bad_settings(cls, kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        cls(**kwargs)
    assert cls.__name__ in str(error.value)


@pytest.mark.parametrize("pool", [layers.MaxPool2D(3), layers.AvgPool2D((2, 4))], ids=repr)
def test_a_window_larger_than_the_image(pool):
    with pytest.raises(layers.ShapeError, match=r"layers\[1\] \w+Pool2D\(.*\) expects images of at least "
                                                r".* but layers\[0\] Reshape\(\(2, 3, 1\)\) "
                                                r"gives \(n, 2, 3, 1\)"):
        layers.Sequence([layers.Reshape((2, 3, 1)), pool])
    with pytest.raises(layers.ShapeError, match="expects images of at least"):
        pool.forward(np.zeros((1, 2, 3, 1)), layers.EVAL)


@pytest.mark.parametrize("pool", [layers.MaxPool2D(), layers.AvgPool2D(), layers.GlobalAvgPool2D()], ids=repr)
def test_input_that_is_not_images(pool):
    with pytest.raises(layers.ShapeError, match=r"channels-last images \(n, height, width, c\).*\(n, 784\)"):
        pool(np.zeros((2, 784), np.float32))
    with pytest.raises(layers.ShapeError, match="channels-last"):
        layers.Sequence([layers.Dense.init(np.random.default_rng(0), 3, 4), pool])


# --- padding (torch's semantics: -inf for max, counted zeros for average) --------------------------------

def padded(x, padding, fill):
    (ph, pw) = padding
    return np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), constant_values=fill)


@pytest.mark.parametrize("size, stride, padding", [(3, 1, 1), (3, 2, 1), (2, 2, 1), ((3, 2), (1, 2), (1, 0)),
                                                   (4, 3, (2, 1))])
def test_padding_pools_the_padded_image_and_crops_the_gradient(size, stride, padding, gradient_record):
    x = np.random.default_rng(5).standard_normal((2, 6, 7, 3))
    for cls, kind, fill in ((layers.MaxPool2D, "max", -np.inf), (layers.AvgPool2D, "mean", 0.0)):
        pool = cls(size, stride, padding)
        s, t, p = layers.MaxPool2D(size).size, pool.step, pool.padding
        np.testing.assert_allclose(pool(x), loop_pool(padded(x, p, fill), s, t, kind), rtol=1e-12)
        assert pool.output_shape(x.shape[1:]) == pool(x).shape[1:]
        gradient_record.add(layers.check_gradients(pool, x, tol=TOL), repr(pool))


def test_padding_same_is_stride_one_with_an_odd_window():
    assert layers.MaxPool2D(3, 1, "same").padding == (1, 1)
    assert layers.AvgPool2D(2, padding="valid").padding == (0, 0)
    assert repr(layers.MaxPool2D(3, 1, 1)) == "MaxPool2D(3x3, stride 1, padding 1)"


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(size=3, stride=2, padding="same"),
     "only with stride 1 and an odd window, got window 3x3, stride (2, 2); padding=1 gives"),
    (dict(size=2, stride=1, padding="same"), "padding=0 gives"),
    (dict(size=2, padding=2),
     "padding (2, 2) is more than half the window 2x2 (torch refuses it too); at most padding=(1, 1)"),
    (dict(size=3, padding=-1), "padding must be at least 0"),
])
def test_a_refused_padding_suggests_the_padding_that_works(kwargs, fragment):
    for cls in (layers.MaxPool2D, layers.AvgPool2D):
        with pytest.raises(ValueError) as caught:
            cls(**kwargs)
        assert fragment in str(caught.value) and str(caught.value).startswith(cls.__name__)


def test_a_padded_pool_saves_and_loads(tmp_path):
    model = layers.Sequence([layers.MaxPool2D(3, 1, 1), layers.AvgPool2D(3, 2, (1, 0))])
    layers.save(tmp_path / "p.npz", model)
    assert layers.load(tmp_path / "p.npz") == model


@pytest.mark.parametrize("cls", [layers.MaxPool2D, layers.AvgPool2D])
@pytest.mark.parametrize("size, stride, padding", [(2, None, 0), (3, 2, 1), ((2, 3), 1, 0), (1, None, 0)])
def test_a_batch_cut_in_parts_gives_the_bits_of_the_whole(monkeypatch, cls, size, stride, padding):
    """On several cores the samples are shared out: y and dx are the same bits as on one, ties included."""
    monkeypatch.setattr(split_rows, "MIN_ELEMENTS", 0)
    pool = cls(size=size, stride=stride, padding=padding)
    rng = np.random.default_rng(2)
    x = rng.integers(0, 3, (7, 9, 8, 3)).astype(np.float32)     # few levels: many ties
    results = []
    for parts in (1, 2, 3):
        with split_rows.using(parts):
            y, cache = pool.forward(x, layers.TRAIN)
            dx, _ = pool.backward(cache, np.arange(y.size, dtype=np.float32).reshape(y.shape), layers.TRAIN)
        results.append((y, dx))
    for y, dx in results[1:]:
        assert np.array_equal(y, results[0][0]) and np.array_equal(dx, results[0][1])
    if padding == 0:
        kind = "max" if cls is layers.MaxPool2D else "avg"
        pair = pool.size, pool.step
        np.testing.assert_allclose(results[1][0], loop_pool(x, *pair, kind), rtol=1e-6)
        dy = np.arange(results[1][0].size, dtype=np.float32).reshape(results[1][0].shape)
        np.testing.assert_allclose(results[1][1], loop_pool_backward(x, *pair, kind, dy), rtol=1e-6)
