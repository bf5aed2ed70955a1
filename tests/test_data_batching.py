"""data.batches, data.Rescale, data.one_hot, data.split: properties and errors."""

import math

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamina import data


def _dataset(n):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)  # row i holds 3i, 3i+1, 3i+2
    y = np.arange(n, dtype=np.int64)
    return x, y


@settings(deadline=None)
@given(n=st.integers(1, 300), batch_size=st.integers(1, 350), shuffle=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_every_sample_exactly_once(n, batch_size, shuffle, seed):
    x, y = _dataset(n)
    rng = np.random.default_rng(seed) if shuffle else None
    got = list(data.batches(x, y, batch_size, rng))
    assert len(got) == math.ceil(n / batch_size)
    sizes = [len(yb) for _, yb in got]
    assert all(size == batch_size for size in sizes[:-1]) and 1 <= sizes[-1] <= batch_size
    order = np.concatenate([yb for _, yb in got])
    assert sorted(order.tolist()) == list(range(n))
    for xb, yb in got:  # rows stay with their labels
        np.testing.assert_array_equal(xb, x[yb])
    if not shuffle:
        assert order.tolist() == list(range(n))


def test_one_permutation_from_the_rng():
    n, seed = 50, 11
    rng = np.random.default_rng(seed)
    order = np.concatenate([yb for _, yb in data.batches(*_dataset(n), 7, rng)])
    reference = np.random.default_rng(seed)
    np.testing.assert_array_equal(order, reference.permutation(n))
    # the Generator advanced by exactly that one draw
    assert rng.integers(0, 2**62) == reference.integers(0, 2**62)


def test_reproducible_for_a_seed_and_different_between_epochs():
    x, y = _dataset(100)
    first = [yb for _, yb in data.batches(x, y, 16, np.random.default_rng(5))]
    again = [yb for _, yb in data.batches(x, y, 16, np.random.default_rng(5))]
    assert all(np.array_equal(a, b) for a, b in zip(first, again)) and len(first) == len(again)
    rng = np.random.default_rng(5)
    epoch1 = np.concatenate([yb for _, yb in data.batches(x, y, 16, rng)])
    epoch2 = np.concatenate([yb for _, yb in data.batches(x, y, 16, rng)])
    assert not np.array_equal(epoch1, epoch2)
    assert sorted(epoch1.tolist()) == sorted(epoch2.tolist()) == list(range(100))


def test_the_rng_advances_when_batches_is_called():
    x, y = _dataset(10)
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    data.batches(x, y, 3, rng)  # drawn at the call, not at the first batch
    assert rng.bit_generator.state != before


def test_in_order_batches_are_views_and_arguments_are_untouched():
    x, y = _dataset(10)
    x_copy, y_copy = x.copy(), y.copy()
    for xb, yb in data.batches(x, y, 4):
        assert np.shares_memory(xb, x) and np.shares_memory(yb, y)
    list(data.batches(x, y, 4, np.random.default_rng(0)))
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(y, y_copy)


def test_lists_are_taken_as_arrays():
    got = list(data.batches([[1, 2], [3, 4], [5, 6]], [0, 1, 2], 2))
    assert [yb.tolist() for _, yb in got] == [[0, 1], [2]]


def test_batches_errors_are_raised_at_the_call():
    x, y = _dataset(10)
    with pytest.raises(ValueError, match="x has 10 samples but y has 9"):
        data.batches(x, y[:9], 4)
    for bad in (0, -1, 2.5, True, "4", None):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            data.batches(x, y, bad)
    with pytest.raises(ValueError, match="no samples"):
        data.batches(x[:0], y[:0], 4)
    with pytest.raises(ValueError, match="scalar"):
        data.batches(np.float32(1), y, 4)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        data.batches(x, y, 4, 42)
    with pytest.raises(TypeError, match="transform must be callable"):
        data.batches(x, y, 4, transform=np.float32(2))
    assert data.batches(x, y, np.int64(4)) is not None  # numpy ints are fine


def test_rescale_on_a_uint8_memmap(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(257, 28, 28), dtype=np.uint8)
    images[0, 0, :2] = 0, 255
    path = tmp_path / "images.u8"
    images.tofile(path)
    x = np.memmap(path, dtype=np.uint8, mode="r", shape=(257, 28, 28))
    y = np.arange(257)
    seen = []
    for xb, yb in data.batches(x, y, 64, np.random.default_rng(1),
                               transform=data.Rescale(dtype=np.float32, scale=1 / 255)):
        assert type(xb) is np.ndarray and xb.dtype == np.float32 and xb.shape[1:] == (28, 28)
        assert xb.min() >= 0 and xb.max() <= 1
        np.testing.assert_array_equal(xb, images[yb].astype(np.float32) / np.float32(255))
        seen.extend(yb.tolist())
    assert sorted(seen) == list(range(257))
    np.testing.assert_array_equal(np.asarray(x), images)  # the memmap is read, never written


def test_rescale_values_and_validation():
    x = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(data.Rescale(np.float32, 1 / 255)(x),
                                  x.astype(np.float32) / np.float32(255))
    half = data.Rescale(np.float64, 0.5)(x)
    assert half.dtype == np.float64 and half[255] == 127.5
    assert data.Rescale()(x).dtype == np.float32 and data.Rescale()(x)[7] == 7.0
    tenth = data.Rescale(np.float32, 0.1)(x)  # 1/k is applied as a division by k
    np.testing.assert_array_equal(tenth, x.astype(np.float32) / np.float32(10))
    scaled = data.Rescale(np.float32, 0.3)(x)
    assert scaled.dtype == np.float32
    np.testing.assert_array_equal(scaled, x.astype(np.float32) * np.float32(0.3))
    with pytest.raises(TypeError, match="float dtype"):
        data.Rescale(np.int32, 1.0)
    for bad in (0, -1.0, float("inf"), float("nan"), True, "1"):
        with pytest.raises(ValueError, match="positive finite"):
            data.Rescale(np.float32, bad)
    rescale = data.Rescale(np.float32, 1 / 255)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        rescale.scale = 2.0
    assert rescale == data.Rescale(dtype="float32", scale=1 / 255)


@settings(deadline=None)
@given(n_classes=st.integers(1, 12), data_=st.data())
def test_one_hot_property(n_classes, data_):
    labels = np.array(data_.draw(st.lists(st.integers(0, n_classes - 1), max_size=40)), dtype=np.int64)
    encoded = data.one_hot(labels, n_classes)
    assert encoded.dtype == np.float32 and encoded.shape == (len(labels), n_classes)
    assert set(np.unique(encoded).tolist()) <= {0.0, 1.0}
    np.testing.assert_array_equal(encoded.sum(axis=1), np.ones(len(labels)))
    np.testing.assert_array_equal(encoded.argmax(axis=1) if len(labels) else labels, labels)


def test_one_hot_errors_name_the_first_bad_label():
    with pytest.raises(ValueError, match=r"labels\[2\] is -1"):
        data.one_hot(np.array([0, 1, -1, -2]), 3)
    with pytest.raises(ValueError, match=r"labels\[1\] is 3"):
        data.one_hot(np.array([0, 3, 5]), 3)
    with pytest.raises(ValueError, match=r"labels\[2\] is 1\.5"):
        data.one_hot(np.array([0.0, 1.0, 1.5, 2.5]), 3)
    with pytest.raises(ValueError, match=r"float64 \(labels\[0\] is 0\.0\)"):
        data.one_hot(np.array([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match="bool"):
        data.one_hot(np.array([True, False]), 3)
    with pytest.raises(ValueError, match=r"1-D"):
        data.one_hot(np.zeros((2, 2), dtype=np.int64), 3)
    for bad in (0, -3, 2.0, True):
        with pytest.raises(ValueError, match="n_classes must be a positive int"):
            data.one_hot(np.array([0]), bad)


@settings(deadline=None)
@given(n=st.integers(2, 200), fraction=st.floats(0.01, 0.99), seed=st.integers(0, 2**32 - 1))
def test_split_property(n, fraction, seed):
    x, y = _dataset(n)
    n_a = round(fraction * n)
    if not 0 < n_a < n:
        with pytest.raises(ValueError, match="at least one sample in each"):
            data.split(x, y, fraction, np.random.default_rng(seed))
        return
    (x_b, y_b), (x_a, y_a) = data.split(x, y, fraction, np.random.default_rng(seed))  # training part first
    assert len(y_a) == n_a and len(y_b) == n - n_a
    assert sorted(np.concatenate([y_a, y_b]).tolist()) == list(range(n))  # disjoint and complete
    np.testing.assert_array_equal(x_a, x[y_a])
    np.testing.assert_array_equal(x_b, x[y_b])
    assert np.all(np.diff(y_a) > 0) and np.all(np.diff(y_b) > 0)  # each part keeps the original order


def test_split_is_random_reproducible_and_advances_the_rng():
    x, y = _dataset(100)
    rng = np.random.default_rng(3)
    _, (_, y_a1) = data.split(x, y, 0.2, rng)
    _, (_, y_a2) = data.split(x, y, 0.2, rng)
    assert not np.array_equal(y_a1, y_a2) and len(y_a1) == 20  # the held-out fifth comes second
    _, (_, y_again) = data.split(x, y, 0.2, np.random.default_rng(3))
    np.testing.assert_array_equal(y_a1, y_again)
    assert not np.array_equal(y_a1, np.arange(20))


def test_split_errors():
    x, y = _dataset(10)
    for bad in (0, 1, 0.0, 1.0, -0.5, 1.5, True, "0.5", float("nan")):
        with pytest.raises(ValueError, match=r"fraction must be a number in \(0, 1\)"):
            data.split(x, y, bad, np.random.default_rng(0))
    with pytest.raises(ValueError, match="x has 10 samples but y has 8"):
        data.split(x, y[:8], 0.5, np.random.default_rng(0))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        data.split(x, y, 0.5, None)
    with pytest.raises(ValueError, match="holds out 0"):
        data.split(x, y, 0.01, np.random.default_rng(0))


# ---- tuples: several inputs, several targets ---------------------------------------------------------------

def test_tuples_are_shuffled_and_sliced_alike():
    n = 11
    x = (np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n * 3, dtype=np.float64).reshape(n, 3))
    y = (np.arange(n), np.arange(n, dtype=np.float32)[:, None] * 10)
    seen = []
    for (x0, x1), (y0, y1) in data.batches(x, y, 4, rng=np.random.default_rng(1)):
        rows = y0
        np.testing.assert_array_equal(x0[:, 0], rows * 2)
        np.testing.assert_array_equal(x1[:, 0], rows * 3)
        np.testing.assert_array_equal(y1[:, 0], rows * 10)
        seen.extend(rows)
    assert sorted(seen) == list(range(n)) and seen != list(range(n))
    (train_x, train_y), (held_x, held_y) = data.split(x, y, 0.25, np.random.default_rng(0))
    assert len(held_x[1]) == len(held_y[0]) == 3 and len(train_x[0]) == 8
    np.testing.assert_array_equal(held_x[0][:, 0], held_y[0] * 2)


def test_tuple_parts_of_different_lengths_or_a_list_are_refused_naming_the_part():
    x = (np.zeros((5, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"x\[1\] has 4 samples but x\[0\] has 5"):
        data.batches(x, np.zeros(5), 2)
    with pytest.raises(TypeError, match=r"pass a tuple: \(x0, x1\)"):
        data.batches([np.zeros((5, 2)), np.zeros((5, 2))], np.zeros(5), 2)
    bad = np.zeros((5, 2))
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"x\[1\] row 3 holds NaN"):
        data.batches((np.zeros((5, 2)), bad), np.zeros(5), 2)
