"""Conv1D: against a hand-written NumPy loop, padding int/"valid"/"same"/"causal", stride, dilation;
causality; shapes and bad settings; gradients over lengths, widths and batch sizes, also in a Residual."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamina import layers
from sequence_checks import check_both_modes, check_saved_and_loaded


def by_hand(conv, x):
    """The convolution as its definition: y[b, i] = sum_p x_padded[b, i*stride + p*dilation] @ weight[p]
    + bias."""
    start, end = conv.pads
    xp = np.pad(x, ((0, 0), (start, end), (0, 0)))
    span = (conv.kernel_size - 1) * conv.dilation
    length = (xp.shape[1] - span - 1) // conv.stride + 1
    y = np.zeros((len(x), length, conv.out_channels))
    for i in range(length):
        for p in range(conv.kernel_size):
            y[:, i] += xp[:, i * conv.stride + p * conv.dilation] @ conv.weight[p]
    return y + conv.bias


SETTINGS = [dict(), dict(stride=2), dict(padding=2), dict(padding="valid"), dict(padding="same"),
            dict(padding="causal"), dict(padding="same", dilation=2), dict(padding="causal", dilation=3),
            dict(stride=3, padding=1, dilation=2)]


@pytest.mark.parametrize("kernel_size", [1, 2, 3])
@pytest.mark.parametrize("settings", SETTINGS, ids=str)
def test_against_numpy_by_hand(kernel_size, settings):
    rng = np.random.default_rng(kernel_size)
    conv = layers.Conv1D.init(rng, 3, 4, kernel_size, dtype=np.float64, **settings)
    conv = layers.Conv1D(weight=conv.weight, bias=rng.standard_normal(4), stride=conv.stride,
                         padding=conv.padding,
                         dilation=conv.dilation)
    x = rng.standard_normal((2, 10, 3))
    y = conv(x)
    np.testing.assert_allclose(y, by_hand(conv, x), rtol=1e-12, atol=1e-12)
    assert conv.output_shape((10, 3)) == y.shape[1:]
    if settings.get("padding") in ("same", "causal"):
        assert y.shape[1] == 10


def test_same_puts_an_even_kernels_extra_step_at_the_end_and_causal_all_at_the_start():
    rng = np.random.default_rng(0)
    assert layers.Conv1D.init(rng, 1, 1, 4, padding="same").pads == (1, 2)
    assert layers.Conv1D.init(rng, 1, 1, 3, padding="same", dilation=2).pads == (2, 2)
    assert layers.Conv1D.init(rng, 1, 1, 3, padding="causal", dilation=2).pads == (4, 0)


def test_causal_step_t_sees_no_later_step():
    rng = np.random.default_rng(0)
    conv = layers.Conv1D.init(rng, 2, 3, 3, padding="causal", dilation=2, dtype=np.float64)
    x = rng.standard_normal((1, 12, 2))
    later = x.copy()
    later[:, 7:] = rng.standard_normal((1, 5, 2))
    np.testing.assert_array_equal(conv(x)[:, :7], conv(later)[:, :7])


def test_repr_and_fields():
    conv = layers.Conv1D.init(np.random.default_rng(0), 3, 8, 5, stride=2, padding="valid")
    assert conv.weight.shape == (5, 3, 8) and conv.bias.shape == (8,) and not conv.bias.any()
    assert repr(conv) == "Conv1D(3 -> 8, kernel 5, stride 2, float32)"
    assert repr(layers.Conv1D.init(np.random.default_rng(0), 3, 8, 5, padding="causal", dilation=2)) == \
        "Conv1D(3 -> 8, kernel 5, padding causal, dilation 2, float32)"


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(stride=2, padding="causal"), ValueError, r'Conv1D: padding="causal" needs stride 1, got stride 2'),
    (dict(stride=2, padding="same"), ValueError, r'padding="same" needs stride 1'),
    (dict(padding="full"), ValueError,
     r'padding must be an int >= 0, "valid", "same" or "causal", got \'full\''),
    (dict(padding=-1), ValueError, r"padding must be an int >= 0"),
    (dict(dilation=0), ValueError, r"Conv1D: dilation must be a positive int, got 0"),
    (dict(stride=1.5), ValueError, r"Conv1D: stride must be a positive int, got 1.5"),
    (dict(kernel_size=0), ValueError, r"Conv1D.init: kernel_size must be a positive int, got 0"),
])
def test_bad_settings(kwargs, error, match):
    args = dict(rng=np.random.default_rng(0), in_channels=3, out_channels=4, kernel_size=3) | kwargs
    with pytest.raises(error, match=match):
        layers.Conv1D.init(**args)


def test_shape_errors_name_the_layer_and_the_shapes():
    conv = layers.Conv1D.init(np.random.default_rng(0), 3, 4, 5)
    with pytest.raises(layers.ShapeError, match=r"^layers\[1\] Conv1D\(3 -> 4, kernel 5, float32\) expects "
                                                r"sequences "
                                                r"\(n, t, 3\) of at least 5 steps.*gives \(n, 4, 3\)"):
        layers.Sequence([layers.ReLU(), conv]).forward(np.zeros((2, 4, 3), np.float32), layers.EVAL)
    with pytest.raises(layers.ShapeError,
                       match=r"expects sequences \(n, t, c\) with t >= 1, but the input is \(n, 3\)"):
        conv.output_shape((3,))
    with pytest.raises(layers.ShapeError, match=r"expects sequences \(n, t, 3\).*\(n, 9, 2\)"):
        conv(np.zeros((2, 9, 2), np.float32))


def test_saved_and_loaded(tmp_path):
    conv = layers.Conv1D.init(np.random.default_rng(0), 2, 3, 3, padding="causal", dilation=2)
    check_saved_and_loaded(conv, np.ones((1, 6, 2), np.float32), tmp_path)


@given(n=st.integers(1, 3), t=st.integers(1, 9), c_in=st.integers(1, 3), c_out=st.integers(1, 3),
       kernel=st.integers(1, 4), stride=st.integers(1, 3), dilation=st.integers(1, 3),
       padding=st.sampled_from([0, 1, "same", "causal"]), seed=st.integers(0, 2**16))
def test_gradients(gradient_record, n, t, c_in, c_out, kernel, stride, dilation, padding, seed):
    rng = np.random.default_rng(seed)
    stride = 1 if isinstance(padding, str) else stride
    conv = layers.Conv1D.init(rng, c_in, c_out, kernel, stride=stride, padding=padding, dilation=dilation,
                              dtype=np.float64)
    t = max(t, (kernel - 1) * dilation + 1 - 2 * (padding if isinstance(padding, int) else 0))
    check_both_modes(conv, rng.standard_normal((n, t, c_in)), gradient_record, repr(conv))
