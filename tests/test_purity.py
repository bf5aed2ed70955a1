"""Purity and immutability: public functions change none of their arguments; records are frozen for real."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from user_layers import Scale

from lamina import layers, losses, optim


def snapshot(value):
    """A deep copy of arrays inside tuples, lists, dicts and records (parameters by path)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (tuple, list)):
        return [snapshot(v) for v in value]
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if attrs.has(type(value)):
        return {path: array.copy() for path, array in layers.named_parameters(value)}
    return value


def same(a, b) -> bool:
    """Equal snapshots: same structure, every array bit-identical (dtype included)."""
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def model():
    rng = np.random.default_rng(0)
    return layers.Sequence([
        Scale(gain=np.linspace(0.5, 1.5, 4).astype(np.float32)),
        layers.Dense.init(rng, 4, 5), layers.ReLU(),
        layers.Sequence([layers.Dense.init(rng, 5, 5), layers.Sigmoid(), layers.Dense.init(rng, 5, 3),
                         layers.Tanh()]),
    ])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_and_backward_change_nothing(dtype):
    m = model()
    x = np.random.default_rng(1).standard_normal((6, 4)).astype(dtype)
    before_model, before_x = snapshot(m), snapshot(x)
    y, cache = m.forward(x, layers.EVAL)
    before_cache = snapshot(cache)
    dy = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
    before_dy = snapshot(dy)
    dx, grads = m.backward(cache, dy, layers.EVAL)
    again_dx, again = m.backward(cache, dy, layers.EVAL)  # the cache is not consumed
    m(x)
    assert same(snapshot(m), before_model) and same(snapshot(x), before_x)
    assert same(snapshot(cache), before_cache) and same(snapshot(dy), before_dy)
    assert np.array_equal(dx, again_dx) and again == grads


@pytest.mark.parametrize("loss, target", [
    (losses.SoftmaxCrossEntropy(), np.array([0, 2, 1, 2])),
    (losses.SoftmaxCrossEntropy(), np.full((4, 3), 1 / 3)),
    (losses.MSE(), np.array([0, 2, 1, 2])),
    (losses.MSE(), np.zeros((4, 3))),
], ids=["cross-entropy labels", "cross-entropy probabilities", "MSE labels", "MSE targets"])
def test_losses_change_nothing(loss, target):
    pred = np.random.default_rng(3).standard_normal((4, 3))
    before_pred, before_target = pred.copy(), target.copy()
    value, cache = loss.forward(pred, target)
    before_cache = snapshot(cache)
    grad = loss.backward(cache)
    assert np.array_equal(loss.backward(cache), grad)
    assert loss.forward(pred, target)[0] == value
    assert np.array_equal(pred, before_pred) and np.array_equal(target, before_target)
    assert same(snapshot(cache), before_cache)


@pytest.mark.parametrize("opt",
                         [optim.SGD(0.1), optim.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.01)])
def test_update_changes_nothing_and_gives_read_only_arrays(opt):
    m = model()
    grads = layers.map_parameters(lambda p: np.full_like(p, 0.5), m)
    state = opt.init(m)
    state = opt.update(m, grads, state)[1]  # a state with a non-zero velocity

    def velocity(state):
        return [v for arrays in state.states for v in arrays]  # the moments, as records

    before = snapshot(m), snapshot(grads), snapshot(velocity(state)), state.step
    new, new_state = opt.update(m, grads, state)
    assert same(snapshot(m), before[0]) and same(snapshot(grads), before[1])
    assert same(snapshot(velocity(state)), before[2]) and state.step == before[3]
    assert new != m and new_state.step == state.step + 1
    fresh = layers.parameters(new) + [a for v in velocity(new_state) for a in layers.parameters(v)]
    assert all(not a.flags.writeable for a in fresh)
    assert not any(np.shares_memory(a, b) for a in layers.parameters(new) for b in layers.parameters(m))


# --- read-only parameters --------------------------------------------------------------------

def test_writing_into_a_parameter_raises():
    m = model()
    dense = m.layers[1]
    with pytest.raises(ValueError, match="read-only"):
        dense.weight[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        dense.bias += 1
    with pytest.raises(ValueError, match="read-only"):
        np.multiply(m.layers[0].gain, 2, out=m.layers[0].gain)
    _, cache = m.forward(np.ones((2, 4)), layers.EVAL)
    _, grads = m.backward(cache, np.ones((2, 3), dtype=np.float32), layers.EVAL)
    with pytest.raises(ValueError, match="read-only"):
        grads.layers[1].weight[0, 0] = 1.0
    new, state = optim.SGD(0.1, momentum=0.9).update(m, grads, optim.SGD(0.1, momentum=0.9).init(m))
    with pytest.raises(ValueError, match="read-only"):
        new.layers[3].layers[0].weight[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        state.states[0][0].layers[1].bias[0] = 1.0  # the momentum of layers[1].bias


def test_a_writable_array_is_copied():
    weight, bias = np.ones((3, 2)), np.zeros(2)
    d = layers.Dense(weight=weight, bias=bias)
    weight[0, 0] = 5.0
    bias[:] = 7.0
    assert d.weight[0, 0] == 1.0 and not d.bias.any()
    assert not np.shares_memory(d.weight, weight)
    assert weight.flags.writeable  # the caller's array is left as it was
    lst = layers.Dense(weight=[[1.0, 2.0]], bias=[0.0, 0.0])  # lists are converted (float64) and frozen
    assert lst.weight.dtype == np.float64 and not lst.weight.flags.writeable


def test_a_read_only_array_is_taken_as_it_is():
    weight, bias = np.ones((3, 2), dtype=np.float32), np.zeros(2, dtype=np.float32)
    weight.flags.writeable = False
    bias.flags.writeable = False
    d = layers.Dense(weight=weight, bias=bias)
    assert d.weight is weight and d.bias is bias
    s = Scale(gain=d.bias)
    assert s.gain is d.bias


# --- frozen records --------------------------------------------------------------------------

@pytest.mark.parametrize("record, field", [
    (layers.Dense.init(np.random.default_rng(0), 2, 2), "weight"),
    (layers.ReLU(), "x"),
    (layers.Sequence([layers.ReLU()]), "layers"),
    (Scale(gain=np.ones(2)), "gain"),
    (losses.SoftmaxCrossEntropy(), "x"),
    (losses.MSE(), "x"),
    (optim.SGD(0.1), "learning_rate"),
    (optim.SGD(0.1, momentum=0.9).init(layers.Dense.init(np.random.default_rng(0), 2, 2)), "step"),
    (optim.StepDecay(0.1, 0.5, 2), "factor"),
], ids=lambda v: type(v).__name__ if not isinstance(v, str) else v)
def test_records_are_frozen(record, field):
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(record, field, None)


def test_array_fields_compare_by_value():
    w = np.arange(6, dtype=np.float64).reshape(3, 2)
    a = layers.Dense(weight=w, bias=np.zeros(2))
    b = layers.Dense(weight=w.copy(), bias=np.zeros(2))
    c = layers.Dense(weight=w + 1, bias=np.zeros(2))
    assert a == b and not a != b
    assert a != c and not a == c
    assert a != layers.Dense(weight=w[:2], bias=np.zeros(2))  # another shape: unequal, no broadcasting error
    assert layers.Sequence([a, layers.ReLU()]) == layers.Sequence([b, layers.ReLU()])
    assert layers.Sequence([a, layers.ReLU()]) != layers.Sequence([c, layers.ReLU()])
    assert layers.Sequence([a, layers.ReLU()]) != layers.Sequence([a, layers.Tanh()])
    assert Scale(gain=np.ones(3)) == Scale(gain=np.ones(3)) != Scale(gain=np.zeros(3))


def test_repr_shows_dtype_and_shape_not_values():
    s = Scale(gain=np.full(5, 123.456, dtype=np.float32))
    assert repr(s) == "Scale(gain=float32(5,))"
    m = layers.Sequence([layers.Dense.init(np.random.default_rng(0), 784, 128), layers.ReLU(), s])
    text = repr(m)
    assert "Dense(784 -> 128, float32)" in text and "ReLU()" in text and "float32(5,)" in text
    assert "123" not in text and "array" not in text


def test_param_refuses_non_float_arrays():
    with pytest.raises(TypeError, match=r"float32 or float64 array, got dtype int64"):
        Scale(gain=np.arange(3))
    with pytest.raises(TypeError, match=r"got dtype bool"):
        Scale(gain=np.ones(3, dtype=bool))


def random_data(n=64, d=5, k=3, seed=0):
    """x float32 (n, d) from a normal, y int labels (n,) in [0, k)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, k, size=n)


@attrs.frozen
class Pull:
    """A user layer whose gradient is its own parameter array (an L2 pull towards zero): y = x."""

    gain: np.ndarray = layers.param()

    def forward(self, x, mode):
        return x, None

    def backward(self, cache, dy, mode):
        return dy, Pull(gain=self.gain)


@pytest.mark.parametrize("block_bytes", [None, 8], ids=["default blocks", "blocks of 2 floats"])
def test_a_gradient_that_is_a_parameter_array_is_never_written_by_the_update(block_bytes, monkeypatch):
    from lamina.optim import executor
    if block_bytes is not None:
        monkeypatch.setattr(executor, "BLOCK_BYTES", block_bytes)
    x, y = random_data()
    model = layers.Sequence([layers.Dense.init(np.random.default_rng(0), 5, 3),
                             Pull(gain=np.ones(3, np.float32))])
    loss, opt = losses.SoftmaxCrossEntropy(), optim.SGD(0.1, momentum=0.5, weight_decay=0.01)
    fitted, _ = optim.fit(model, loss, opt, x, y, epochs=2, batch_size=16, rng=np.random.default_rng(3),
                          progress=False)
    hand, state, rng = model, opt.init(model), np.random.default_rng(3)
    for _ in range(2):
        order = rng.permutation(len(x))
        for start in range(0, len(x), 16):
            idx = order[start:start + 16]
            pred, cache = hand.forward(x[idx], layers.EVAL)
            _, lc = loss.forward(pred, y[idx])
            hand, state = opt.update(hand, hand.backward(cache, loss.backward(lc), layers.EVAL)[1], state)
    assert fitted == hand
    assert 0 < fitted.layers[1].gain[0] < 1
