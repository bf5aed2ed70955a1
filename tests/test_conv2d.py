"""Conv2D: against a direct loop, against finite differences (hypothesis), its blocks of work, dtypes, bad
input, CNN files and summaries.

The reference convolution is the definition written as loops over samples, output pixels and the
kernel, in float64: y[b, i, j, o] = sum_{p, q, c} x_padded[b, i*sh + p, j*sw + q, c] w[p, q, c, o] + bias[o].
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamina import layers
from lamina.layers import conv2d as conv_module
from lamina.layers import im2col as im2col_module
from lamina.layers import split_rows

TOL = 1e-6


# --- the reference: loops --------------------------------------------------------------------

def padded(x, pads):
    top, bottom, left, right = pads
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))


def loop_conv(x, weight, bias, stride, pads):
    """y by the definition, one output pixel at a time."""
    xp = padded(np.asarray(x, np.float64), pads)
    kh, kw, _, c_out = weight.shape
    sh, sw = stride
    oh, ow = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
    y = np.zeros((len(x), oh, ow, c_out))
    for b in range(len(x)):
        for i in range(oh):
            for j in range(ow):
                window = xp[b, i * sh:i * sh + kh, j * sw:j * sw + kw, :]
                for o in range(c_out):
                    y[b, i, j, o] = np.sum(window * weight[..., o]) + bias[o]
    return y


def loop_conv_backward(x, weight, stride, pads, dy):
    """(dx, dweight, dbias) by the definition: each output pixel's dy spread over its window."""
    xp = padded(np.asarray(x, np.float64), pads)
    kh, kw, _, c_out = weight.shape
    sh, sw = stride
    dxp, dweight = np.zeros_like(xp), np.zeros(weight.shape)
    for b in range(dy.shape[0]):
        for i in range(dy.shape[1]):
            for j in range(dy.shape[2]):
                for o in range(c_out):
                    g = dy[b, i, j, o]
                    dxp[b, i * sh:i * sh + kh, j * sw:j * sw + kw, :] += g * weight[..., o]
                    dweight[..., o] += g * xp[b, i * sh:i * sh + kh, j * sw:j * sw + kw, :]
    top, _, left, _ = pads
    dx = dxp[:, top:top + x.shape[1], left:left + x.shape[2]]
    return dx, dweight, dy.sum(axis=(0, 1, 2))


def random_conv(rng, c_in, c_out, kernel, stride=1, padding=0, dtype=np.float64):
    conv = layers.Conv2D.init(rng, c_in, c_out, kernel, stride=stride, padding=padding, dtype=dtype)
    return layers.Conv2D(weight=conv.weight, bias=rng.standard_normal(c_out).astype(dtype),
                         stride=stride, padding=padding)


CASES = [
    # (n, h, w, c_in, c_out, kernel, stride, padding)
    (2, 5, 6, 1, 3, 3, 1, 0),
    (2, 6, 5, 5, 3, 3, 1, 0),
    (2, 7, 6, 4, 2, (2, 3), (1, 2), (2, 1)),
    (3, 7, 5, 2, 4, (3, 2), (2, 1), (1, 2)),
    (1, 8, 8, 3, 2, 5, 3, 2),
    (2, 6, 7, 2, 3, 4, 1, "same"),
    (2, 5, 5, 2, 2, (2, 3), 1, "same"),
    (2, 4, 4, 3, 2, 1, 2, "valid"),
    (1, 3, 3, 2, 1, 3, 1, 0),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_against_the_loop(case):
    n, h, w, c_in, c_out, kernel, stride, padding = case
    rng = np.random.default_rng(1)
    conv = random_conv(rng, c_in, c_out, kernel, stride, padding)
    x = rng.standard_normal((n, h, w, c_in))
    for mode in (layers.TRAIN, layers.EVAL):
        y, cache = conv.forward(x, mode)
        np.testing.assert_allclose(y, loop_conv(x, conv.weight, conv.bias, conv.stride, conv.pads),
                                   rtol=1e-12, atol=1e-12)
        dy = rng.standard_normal(y.shape)
        dx, grads = conv.backward(cache, dy, mode)
        ref_dx, ref_dw, ref_db = loop_conv_backward(x, conv.weight, conv.stride, conv.pads, dy)
        np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grads.weight, ref_dw, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grads.bias, ref_db, rtol=1e-12, atol=1e-12)
        assert isinstance(grads, layers.Conv2D)
        assert grads.stride == conv.stride and grads.padding == conv.padding


def test_a_hand_computed_convolution():
    """A 3x3 image, a 2x2 kernel, stride 1, no padding: four sums written out."""
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)          # 1 2 3 / 4 5 6 / 7 8 9
    weight = np.array([[1.0, 0.0], [0.0, -1.0]]).reshape(2, 2, 1, 1)
    conv = layers.Conv2D(weight=weight, bias=np.array([0.5]))
    y = conv(x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[1 - 5 + 0.5, 2 - 6 + 0.5], [4 - 8 + 0.5, 5 - 9 + 0.5]])


def test_same_padding_puts_an_even_kernels_extra_row_and_column_bottom_and_right():
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    picks = {}
    for p in range(2):
        for q in range(2):
            weight = np.zeros((2, 2, 1, 1))
            weight[p, q] = 1.0
            picks[p, q] = layers.Conv2D(weight=weight, bias=np.zeros(1), padding="same")(x)[0, :, :, 0]
    image = x[0, :, :, 0]
    np.testing.assert_array_equal(picks[0, 0], image)                   # no padding above or left
    shifted = np.zeros((4, 4))
    shifted[:3, :3] = image[1:, 1:]
    # a zero row below, a zero column right
    np.testing.assert_array_equal(picks[1, 1], shifted)
    assert layers.Conv2D.init(np.random.default_rng(0), 1, 1, 4, padding="same").pads == (1, 2, 1, 2)
    assert layers.Conv2D.init(np.random.default_rng(0), 1, 1, (3, 2), padding="same").pads == (1, 1, 0, 1)


# --- finite differences ------------------------------------------------------------------------

@st.composite
def conv_cases(draw):
    """(conv, x): odd and even sizes, kernels, strides, paddings, channel counts and batch sizes."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    kind = draw(st.sampled_from(["ints", "same", "valid"]))
    if kind == "same":
        stride, padding = (1, 1), "same"
    else:
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2))) if kind == "ints" else "valid"
    pads = (0, 0) if kind != "ints" else padding
    h = draw(st.integers(max(1, kernel[0] - 2 * pads[0]), 7))
    w = draw(st.integers(max(1, kernel[1] - 2 * pads[1]), 7))
    if kind == "valid":
        h, w = max(h, kernel[0]), max(w, kernel[1])
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    conv = random_conv(rng, c_in, c_out, kernel, stride, padding)
    return conv, rng.standard_normal((n, h, w, c_in))


@given(conv_cases(), st.booleans())
def test_gradients(gradient_record, case, train):
    conv, x = case
    errors = layers.check_gradients(conv, x, train=train, tol=TOL)
    gradient_record.add(errors, f"Conv2D {conv!r}")
    assert set(errors) == {"input", "weight", "bias"}


@given(conv_cases(), st.booleans())
def test_blocks_of_any_size_and_either_layout_give_the_same_numbers(case, transposed):
    """Tiny blocks (bands of rows inside a sample), im2col transposed or not: the same numbers."""
    conv, x = case
    mode = layers.TRAIN
    y, cache = conv.forward(x, mode)
    dy = np.random.default_rng(0).standard_normal(y.shape)
    dx, grads = conv.backward(cache, dy, mode)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(im2col_module, "BLOCK_BYTES", 1)
        patch.setattr(conv_module, "TRANSPOSED_MAX_CHANNELS", 1000 if transposed else 0)
        y2, cache2 = conv.forward(x, mode)
        dx2, grads2 = conv.backward(cache2, dy, mode)
    np.testing.assert_allclose(y2, y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx2, dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads2.weight, grads.weight, rtol=1e-12, atol=1e-12)


def test_the_cache_holds_no_im2col_matrix():
    """Memory: the cache is the (padded) input; backward makes each block's im2col again."""
    rng = np.random.default_rng(0)
    conv = random_conv(rng, 2, 3, 3, padding=1)
    x = rng.standard_normal((4, 6, 6, 2))
    for mode in (layers.TRAIN, layers.EVAL):
        xp, shape = conv.forward(x, mode)[1]
        assert xp.shape == (4, 8, 8, 2) and shape == x.shape


@pytest.mark.parametrize("transposed", [True, False])
def test_many_blocks_against_the_loop(monkeypatch, transposed):
    """Blocks of a few rows of one sample (a band), in both layouts: still the definition."""
    monkeypatch.setattr(im2col_module, "BLOCK_BYTES", 200)
    monkeypatch.setattr(conv_module, "TRANSPOSED_MAX_CHANNELS", 1000 if transposed else 0)
    rng = np.random.default_rng(3)
    conv = random_conv(rng, 2, 3, 3, stride=(2, 1), padding=1)
    x = rng.standard_normal((3, 9, 7, 2))
    y, cache = conv.forward(x, layers.TRAIN)
    np.testing.assert_allclose(y, loop_conv(x, conv.weight, conv.bias, conv.stride, conv.pads), rtol=1e-12,
                               atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx, grads = conv.backward(cache, dy, layers.TRAIN)
    ref_dx, ref_dw, _ = loop_conv_backward(x, conv.weight, conv.stride, conv.pads, dy)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads.weight, ref_dw, rtol=1e-12, atol=1e-12)


def cnn_block(rng, c, width, dtype=np.float64):
    return layers.Sequence([random_conv(rng, c, width, 3, padding="same", dtype=dtype), layers.Tanh(),
                            random_conv(rng, width, c, 3, padding=1, dtype=dtype)])


@given(st.integers(1, 3), st.integers(3, 6), st.integers(1, 3), st.integers(0, 2**16), st.booleans())
def test_gradients_inside_residual_blocks(gradient_record, n, size, c, seed, shortcut):
    """A ResNet block of convolutions, with the identity shortcut or a 1x1 Conv2D one to another width."""
    rng = np.random.default_rng(seed)
    if shortcut:
        inner = layers.Sequence([random_conv(rng, c, 2, 3, padding="same"), layers.Tanh(),
                                 random_conv(rng, 2, c + 1, (2, 3), padding="same")])
        block = layers.Residual(inner, shortcut=random_conv(rng, c, c + 1, 1))
    else:
        block = layers.Residual(cnn_block(rng, c, 2))
    model = layers.Sequence([block, layers.Tanh(), layers.AvgPool2D(2, 1), layers.Flatten()])
    errors = layers.check_gradients(model, rng.standard_normal((n, size, size, c)), tol=TOL, eps=1e-5)
    gradient_record.add(errors, "Residual of Conv2D")


# --- modes, dtypes, purity ----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_carry_through(dtype):
    rng = np.random.default_rng(0)
    conv = layers.Conv2D.init(rng, 3, 4, 3, padding=1, dtype=dtype)
    x = rng.standard_normal((2, 5, 5, 3)).astype(dtype)
    y, cache = conv.forward(x, layers.TRAIN)
    dx, grads = conv.backward(cache, np.ones_like(y), layers.TRAIN)
    assert y.dtype == dx.dtype == grads.weight.dtype == grads.bias.dtype == dtype
    assert conv.weight.dtype == dtype and conv.weight.shape == (3, 3, 3, 4) and conv.bias.shape == (4,)
    reference = loop_conv(x.astype(np.float64), conv.weight.astype(np.float64), conv.bias, (1, 1), conv.pads)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, reference, rtol=tolerance, atol=tolerance)


def test_no_input_gradient_when_the_mode_needs_none():
    rng = np.random.default_rng(0)
    conv = random_conv(rng, 1, 4, 3)
    x = rng.standard_normal((3, 6, 6, 1))
    y, cache = conv.forward(x, layers.TRAIN)
    dy = rng.standard_normal(y.shape)
    dx, grads = conv.backward(cache, dy, layers.Mode(train=True, input_grad=False))
    full_dx, full_grads = conv.backward(cache, dy, layers.TRAIN)
    assert dx is None and full_dx is not None
    np.testing.assert_array_equal(grads.weight, full_grads.weight)
    np.testing.assert_array_equal(grads.bias, full_grads.bias)


def test_inference_is_forward_in_eval_bit_for_bit_and_training_computes_the_same():
    rng = np.random.default_rng(0)
    model = layers.Sequence([layers.Reshape((12, 12, 1)), layers.Conv2D.init(rng, 1, 4, 3), layers.ReLU(),
                             layers.MaxPool2D(), layers.Conv2D.init(rng, 4, 8, 3, padding="same"),
                             layers.Flatten()])
    x = rng.random((2100, 144), dtype=np.float32)          # more than one chunk of inference
    y = model(x)
    np.testing.assert_array_equal(y, model.forward(x, layers.EVAL)[0])
    np.testing.assert_array_equal(model.forward(x[:50], layers.TRAIN)[0],
                                  model.forward(x[:50], layers.EVAL)[0])


def test_forward_and_backward_change_nothing():
    rng = np.random.default_rng(0)
    conv = random_conv(rng, 2, 3, 3, padding=1)
    x = rng.standard_normal((2, 5, 5, 2))
    x_copy = x.copy()
    y, cache = conv.forward(x, layers.TRAIN)
    dy = rng.standard_normal(y.shape)
    dy_copy, weight_copy = dy.copy(), conv.weight.copy()
    conv.backward(cache, dy, layers.TRAIN)
    conv.backward(cache, dy, layers.TRAIN)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(dy, dy_copy)
    np.testing.assert_array_equal(conv.weight, weight_copy)
    assert not conv.weight.flags.writeable and not conv.bias.flags.writeable


def test_init_draws_he_or_glorot_weights_zero_bias_and_takes_kernel_stride_padding():
    rng = np.random.default_rng(0)
    conv = layers.Conv2D.init(rng, 16, 64, 3)
    assert conv.weight.shape == (3, 3, 16, 64) and conv.weight.dtype == np.float32
    np.testing.assert_array_equal(conv.bias, np.zeros(64, np.float32))
    assert abs(conv.weight.std() - np.sqrt(2 / (9 * 16))) < 0.05 * np.sqrt(2 / (9 * 16))
    glorot = layers.Conv2D.init(rng, 16, 64, 3, init="glorot")
    assert abs(glorot.weight.std() - np.sqrt(2 / (9 * 16 + 9 * 64))) < 0.05 * np.sqrt(2 / (9 * 16 + 9 * 64))
    assert layers.Conv2D.init(rng, 1, 1, (2, 5)).kernel_size == (2, 5)
    assert layers.Conv2D.init(rng, 1, 1, 3, stride=2, padding="valid").padding == (0, 0)


def test_repr_names_channels_kernel_stride_padding_and_dtype():
    rng = np.random.default_rng(0)
    assert repr(layers.Conv2D.init(rng, 1, 32, 3)) == "Conv2D(1 -> 32, 3x3, float32)"
    assert (repr(layers.Conv2D.init(rng, 32, 64, (3, 5), stride=2, padding=(1, 2), dtype=np.float64))
            == "Conv2D(32 -> 64, 3x5, stride 2, padding (1, 2), float64)")
    same = layers.Conv2D.init(rng, 3, 8, 4, padding="same")
    assert repr(same) == "Conv2D(3 -> 8, 4x4, padding same, float32)"


# --- bad input ----------------------------------------------------------------------------------

def test_channels_first_input_is_named_as_such():
    rng = np.random.default_rng(0)
    model = layers.Sequence([layers.Conv2D.init(rng, 1, 4, 3), layers.ReLU()])
    with pytest.raises(layers.ShapeError) as error:
        model(np.zeros((2, 1, 28, 28), np.float32))
    message = str(error.value)
    assert "layers[0] Conv2D(1 -> 4, 3x3, float32)" in message
    assert "channels-last" in message and "channels-first" in message and "(n, 1, 28, 28)" in message
    with pytest.raises(layers.ShapeError, match=r"layers\[0\] Conv2D.*channels-first"):
        model.output_shape((1, 28, 28))


def test_flat_images_are_told_to_reshape():
    conv = layers.Conv2D.init(np.random.default_rng(0), 1, 4, 3)
    with pytest.raises(layers.ShapeError, match=r"channels-last.*\(n, 784\).*Reshape\(\(28, 28, 1\)\)"):
        conv(np.zeros((2, 784), np.float32))
    with pytest.raises(layers.ShapeError, match=r"expects channels-last images \(n, height, width, 1\).*\(n, "
                                                r"5, 5, 3\)"):
        conv(np.zeros((2, 5, 5, 3), np.float32))


def test_a_kernel_larger_than_the_padded_input():
    rng = np.random.default_rng(0)
    with pytest.raises(layers.ShapeError, match=r"layers\[1\] Conv2D\(4 -> 4, 5x5, float32\) expects images "
                                                r"of at least 5x5 after padding.*layers\[0\] "
                                                r"MaxPool2D\(2x2\) gives \(n, 3, 3, 4\)"):
        layers.Sequence([layers.MaxPool2D(), layers.Conv2D.init(rng, 4, 4, 5)]).output_shape((6, 7, 4))
    conv = layers.Conv2D.init(rng, 1, 1, 5, padding=1)
    with pytest.raises(layers.ShapeError, match="at least 5x5 after padding"):
        conv.forward(np.zeros((1, 2, 9, 1)), layers.EVAL)
    assert conv.output_shape((3, 3, 1)) == (1, 1, 1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(kernel_size=0), "kernel_size must be at least 1"),
    (dict(kernel_size=(3, 0)), "kernel_size must be at least 1"),
    (dict(kernel_size=3, stride=0), "stride must be at least 1"),
    (dict(kernel_size=3, stride=(1, 0)), "stride must be at least 1"),
    (dict(kernel_size=3, padding=-1), "padding must be at least 0"),
    (dict(kernel_size=3, padding=(0, -2)), "padding must be at least 0"),
    (dict(kernel_size=3, padding="full"), 'padding must be an int, a pair of ints, "same" or "valid"'),
    (dict(kernel_size=3, padding="same", stride=2), 'padding="same" needs stride 1'),
    (dict(kernel_size=2.5), "kernel_size must be an int or a pair"),
    (dict(kernel_size=(1, 2, 3)), "kernel_size must be an int or a pair"),
])
def test_bad_init_settings_are_refused_naming_conv2d(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        layers.Conv2D.init(np.random.default_rng(0), 2, 3, **kwargs)
    assert "Conv2D" in str(error.value)


def test_records_with_wrong_weight_or_bias_shapes_or_dtypes_are_refused():
    with pytest.raises(ValueError, match=r"Conv2D: the weight must be 4-D"):
        layers.Conv2D(weight=np.zeros((3, 3, 2)), bias=np.zeros(2))
    with pytest.raises(ValueError, match=r"Conv2D: the weight must be 4-D.*each at least 1"):
        layers.Conv2D(weight=np.zeros((0, 3, 2, 2)), bias=np.zeros(2))
    with pytest.raises(layers.ShapeError, match="bias of shape"):
        layers.Conv2D(weight=np.zeros((3, 3, 2, 4)), bias=np.zeros(3))
    with pytest.raises(TypeError, match="share a dtype"):
        layers.Conv2D(weight=np.zeros((3, 3, 2, 4)), bias=np.zeros(4, np.float32))
    with pytest.raises(ValueError, match=r"Conv2D\.init: in_channels must be a positive int"):
        layers.Conv2D.init(np.random.default_rng(0), 0, 3, 3)


def test_a_wrong_output_gradient():
    conv = random_conv(np.random.default_rng(0), 1, 2, 3)
    y, cache = conv.forward(np.zeros((2, 5, 5, 1)), layers.TRAIN)
    with pytest.raises(layers.ShapeError, match="output gradient of shape"):
        conv.backward(cache, np.zeros((2, 3, 3, 3)), layers.TRAIN)


# --- a CNN: summary, files ----------------------------------------------------------------------

def cnn(rng, dtype=np.float32):
    return layers.Sequence([
        layers.Reshape((28, 28, 1)),
        layers.Conv2D.init(rng, 1, 8, 3, dtype=dtype), layers.ReLU(), layers.MaxPool2D(),
        layers.Residual(layers.Sequence([layers.Conv2D.init(rng, 8, 8, 3, padding="same", dtype=dtype),
                                         layers.ReLU()])),
        layers.Conv2D.init(rng, 8, 16, 4, stride=2, padding=(1, 0), dtype=dtype), layers.ReLU(),
        layers.AvgPool2D(2), layers.Flatten(), layers.Dense.init(rng, 3 * 2 * 16, 10, dtype=dtype),
    ])


def test_summary_shows_every_image_shape():
    summary = cnn(np.random.default_rng(0)).summary()
    lines = summary.splitlines()
    expected = [
        ("layers[0]", "Reshape((28, 28, 1))", "(n, 28, 28, 1)", "0"),
        ("layers[1]", "Conv2D(1 -> 8, 3x3, float32)", "(n, 26, 26, 8)", "80"),
        ("layers[3]", "MaxPool2D(2x2)", "(n, 13, 13, 8)", "0"),
        ("layers[4]", "Residual", "(n, 13, 13, 8)", "584"),
        ("layers[4].inner.layers[0]", "Conv2D(8 -> 8, 3x3, padding same, float32)", "(n, 13, 13, 8)", "584"),
        ("layers[5]", "Conv2D(8 -> 16, 4x4, stride 2, padding (1, 0), float32)", "(n, 6, 5, 16)", "2,064"),
        ("layers[7]", "AvgPool2D(2x2)", "(n, 3, 2, 16)", "0"),
        ("layers[8]", "Flatten()", "(n, 96)", "0"),
        ("layers[9]", "Dense(96 -> 10, float32)", "(n, 10)", "970"),
    ]
    for path, layer, shape, count in expected:
        row = next(line for line in lines if line.strip().startswith(path + " "))
        assert layer in row and shape in row and row.rstrip().endswith(" " + count), (row, layer, shape,
                                                                                      count)
    assert lines[-1] == "total: 3,698 parameters (float32)"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_cnn_saves_and_loads(tmp_path, dtype):
    rng = np.random.default_rng(0)
    model = cnn(rng, dtype)
    layers.save(tmp_path / "cnn.npz", model, note="cnn")
    loaded = layers.load(tmp_path / "cnn.npz")
    assert loaded == model and repr(loaded) == repr(model)
    assert loaded.layers[5].stride == (2, 2) and loaded.layers[5].padding == (1, 0)
    assert loaded.layers[4].inner.layers[0].padding == "same"
    x = rng.random((3, 784)).astype(dtype)
    np.testing.assert_array_equal(loaded(x), model(x))
    assert layers.load_extra(tmp_path / "cnn.npz") == {"note": "cnn"}


def test_flatten_into_a_dense_of_the_wrong_width_fails_when_built():
    rng = np.random.default_rng(0)
    with pytest.raises(layers.ShapeError) as error:
        layers.Sequence([layers.Reshape((28, 28, 1)), layers.Conv2D.init(rng, 1, 4, 3), layers.MaxPool2D(),
                         layers.Flatten(), layers.Dense.init(rng, 26 * 26 * 4, 10)])
    assert str(error.value) == ("layers[4] Dense(2704 -> 10, float32) expects input (n, 2704), "
                                "but layers[3] Flatten() gives (n, 676)")


def test_a_cnn_trains_and_resumes_bit_for_bit(tmp_path):
    """Two epochs in one go, or one epoch, a checkpoint, and a resumed second: the same bits."""
    from lamina import losses, optim
    data_rng = np.random.default_rng(0)
    x, y = data_rng.random((96, 8, 8, 1), dtype=np.float32), data_rng.integers(0, 3, 96)

    def model():
        rng = np.random.default_rng(1)
        return layers.Sequence([layers.Conv2D.init(rng, 1, 4, 3, padding="same"), layers.MaxPool2D(),
                                layers.ReLU(),
                                layers.Conv2D.init(rng, 4, 6, 3, padding=1), layers.AvgPool2D(2),
                                layers.ReLU(),
                                layers.Flatten(), layers.Dense.init(rng, 24, 3)])

    loss, opt = losses.SoftmaxCrossEntropy(), optim.SGD(learning_rate=0.1, momentum=0.9)
    settings = dict(batch_size=32, progress=False, threads=1)
    full, history = optim.fit(model(), loss, opt, x, y, epochs=2, rng=np.random.default_rng(2), **settings)
    optim.fit(model(), loss, opt, x, y, epochs=1, rng=np.random.default_rng(2), checkpoint=tmp_path / "run",
              **settings)
    resumed, _ = optim.fit(model(), loss, opt, x, y, epochs=2, rng=np.random.default_rng(99),
                           resume=tmp_path / "run",
                           **settings)
    assert history["loss"][1] < history["loss"][0]
    for (path, a), (_, b) in zip(layers.named_parameters(full), layers.named_parameters(resumed)):
        np.testing.assert_array_equal(a, b, err_msg=path)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c_in", [1, 5])
def test_blocks_shared_out_to_several_cores_give_the_same_bits(monkeypatch, dtype, c_in):
    """Each core makes its own blocks (BLAS at one thread in each): y, dx and the gradients are the bits of
    one core, whatever the part count."""
    one_sample = 6 * 5 * (9 * c_in + 1) * np.dtype(dtype).itemsize       # im2col bytes of one sample
    monkeypatch.setattr(im2col_module, "BLOCK_BYTES", one_sample)
    monkeypatch.setattr(split_rows, "MIN_ELEMENTS", 0)
    rng = np.random.default_rng(5)
    conv = random_conv(rng, c_in, 4, 3, padding=1, dtype=dtype)
    x = rng.standard_normal((13, 6, 5, c_in)).astype(dtype)
    dy = rng.standard_normal((13, 6, 5, 4)).astype(dtype)
    results = []
    for parts in (1, 2, 3):
        with split_rows.using(parts):
            y, cache = conv.forward(x, layers.TRAIN)
            dx, grads = conv.backward(cache, dy, layers.TRAIN)
        results.append((y, dx, grads.weight, grads.bias))
    assert len(conv._blocks(padded(x, conv.pads), 6, 5)) == 13 > conv_module.SUMS   # several per partial sum
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b)
    np.testing.assert_allclose(results[0][0], loop_conv(x, conv.weight, conv.bias, conv.stride, conv.pads),
                               rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-4)


def test_bands_of_one_sample_with_an_input_gradient_run_on_one_core(monkeypatch):
    """Bands of rows of one sample overlap in dx: with several parts they still add up as the definition."""
    monkeypatch.setattr(im2col_module, "BLOCK_BYTES", 200)
    monkeypatch.setattr(split_rows, "MIN_ELEMENTS", 0)
    rng = np.random.default_rng(4)
    conv = random_conv(rng, 2, 3, 3, padding=1)
    x = rng.standard_normal((2, 9, 7, 2))
    with split_rows.using(2):
        y, cache = conv.forward(x, layers.TRAIN)
        dy = rng.standard_normal(y.shape)
        dx, grads = conv.backward(cache, dy, layers.TRAIN)
    ref_dx, ref_dw, _ = loop_conv_backward(x, conv.weight, conv.stride, conv.pads, dy)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads.weight, ref_dw, rtol=1e-12, atol=1e-12)


def test_an_empty_batch_gives_zero_gradients():
    rng = np.random.default_rng(0)
    conv = random_conv(rng, 2, 3, 3)
    y, cache = conv.forward(np.zeros((0, 5, 5, 2)), layers.TRAIN)
    dx, grads = conv.backward(cache, np.zeros(y.shape), layers.TRAIN)
    assert y.shape == (0, 3, 3, 3) and dx.shape == (0, 5, 5, 2)
    assert not grads.weight.any() and not grads.bias.any()
