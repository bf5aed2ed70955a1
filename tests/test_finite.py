"""The one NaN/inf scan (layers/records/finite.py): the first bad row of an array, the first bad array of a
record."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import layers
from lamina.layers.records import finite


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_the_first_row_holding_nan_or_inf_is_found(dtype, bad):
    x = np.zeros((9, 2, 3), dtype)
    assert finite.first_nonfinite_row(x) is None
    x[6, 1, 2], x[4, 0, 0] = bad, bad
    assert finite.first_nonfinite_row(x) == 4


def test_rows_past_the_first_chunk_are_found(monkeypatch):
    monkeypatch.setattr(finite, "ROWS_PER_SCAN", 4)
    x = np.ones((11, 3), np.float32)
    x[9, 2] = np.nan
    assert finite.first_nonfinite_row(x) == 9


def test_finite_rows_whose_sums_overflow_are_finite():
    x = np.full((4, 2), np.finfo(np.float32).max, np.float32)   # the column sums overflow to inf
    assert finite.first_nonfinite_row(x) is None


def test_integers_and_a_one_dimensional_array_are_scanned_as_rows():
    assert finite.first_nonfinite_row(np.arange(6).reshape(3, 2)) is None
    assert finite.first_nonfinite_row(np.array([1.0, 2.0, np.nan])) == 2


def test_the_old_places_give_the_same_functions():
    from lamina.data.checks import first_nonfinite_row as from_data
    from lamina.layers.layer import first_nonfinite_row as from_layer
    from lamina.optim.step import first_nonfinite as from_step
    assert from_data is from_layer is finite.first_nonfinite_row and from_step is finite.first_nonfinite


def test_the_first_record_array_holding_nan_or_inf_is_named_params_before_buffers():
    rng = np.random.default_rng(0)
    model = layers.Sequence([layers.Dense.init(rng, 3, 4, dtype=np.float64),
                             layers.BatchNorm.init(4, dtype=np.float64),
                             layers.Dense.init(rng, 4, 2, dtype=np.float64)])
    assert finite.first_nonfinite(model) is None
    norm = model.layers[1]
    with_bad_buffer = layers.Sequence([model.layers[0], layers.BatchNorm(
        weight=norm.weight, bias=norm.bias, running_mean=np.array([0, np.inf, 0, 0]),
        running_var=norm.running_var), model.layers[2]])
    assert finite.first_nonfinite(with_bad_buffer) == "layers[1].running_mean"
    weight = np.array(model.layers[2].weight)
    weight[3, 1] = np.nan
    bad_dense = layers.Dense(weight=weight, bias=model.layers[2].bias)
    both = layers.Sequence([*with_bad_buffer.layers[:2], bad_dense])
    assert finite.first_nonfinite(both) == "layers[2].weight"
