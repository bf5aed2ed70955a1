"""optim.train_step: pure, equal to the step written by hand, NonFiniteLossError before any update, its batch
checked and cast; and fit for one epoch equal bit for bit to a loop of train_step over the same batches."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from comparisons import same_bits

from lamina import layers, losses, optim


def model_(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return layers.Sequence([
        layers.Dense.init(rng, 6, 8, dtype=dtype), layers.BatchNorm.init(8, dtype=dtype), layers.ReLU(),
        layers.Dropout(0.25),
        layers.Residual(layers.Sequence([layers.Dense.init(rng, 8, 8, dtype=dtype), layers.Tanh()])),
        layers.Concat([layers.Dense.init(rng, 8, 2, dtype=dtype), layers.Sequence([
            layers.LayerNorm.init(8, dtype=dtype), layers.Dense.init(rng, 8, 2, dtype=dtype)])]),
        layers.Dense.init(rng, 4, 3, dtype=dtype),
    ])


N = 40
x = np.random.default_rng(1).normal(size=(N, 6)).astype(np.float32)
labels = np.random.default_rng(2).integers(0, 3, size=N)
xb, yb = x[:10], labels[:10]

OPTIMIZERS = {"SGD": lambda: optim.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
              "Adam": lambda: optim.Adam(1e-2, weight_decay=1e-4), "AdamW": lambda: optim.AdamW(1e-2),
              "RMSprop": lambda: optim.RMSprop(1e-3, momentum=0.5, clip_norm=0.5)}


def snapshot(*values):
    """The bytes of every array in the values (records, optimizer states, arrays)."""
    out = []
    for value in values:
        if isinstance(value, np.ndarray):
            out.append(value.tobytes())
        elif value is not None:
            named = (*layers.named_parameters(value), *layers.named_buffers(value))
            out.extend(a.tobytes() for _, a in named)
            out.extend(np.asarray(a).tobytes() for a in _state_arrays(value))
    return out


def _state_arrays(state):
    found = []

    def walk(v):
        if isinstance(v, np.ndarray):
            found.append(v)
        elif isinstance(v, (tuple, list)):
            for item in v:
                walk(item)
        elif attrs.has(type(v)):
            for f in attrs.fields(type(v)):
                walk(getattr(v, f.name))
    walk(state)
    return found


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_train_step_is_pure(name):
    model, opt, loss = model_(), OPTIMIZERS[name](), losses.SoftmaxCrossEntropy()
    state = opt.init(model)
    model, state, _, _ = optim.train_step(model, loss, opt, state, xb, yb,
                                          layers.Mode(train=True, rng=np.random.default_rng(0)))  # some state
    x_given, y_given = xb.copy(), yb.copy()                      # writable arrays the step could write to
    before = snapshot(model, state, x_given, y_given)
    for _ in range(2):
        optim.train_step(model, loss, opt, state, x_given, y_given,
                         layers.Mode(train=True, rng=np.random.default_rng(0)))
    assert snapshot(model, state, x_given, y_given) == before


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_train_step_equals_the_step_written_by_hand(name):
    model, opt, loss = model_(), OPTIMIZERS[name](), losses.SoftmaxCrossEntropy()
    state = opt.init(model)
    new, new_state, value, pred = optim.train_step(model, loss, opt, state, xb, yb,
                                                   layers.Mode(train=True, rng=np.random.default_rng(3)))
    mode = layers.Mode(train=True, rng=np.random.default_rng(3))
    logits, cache = model.forward(xb, mode)
    v, loss_cache = loss.forward(logits, yb)
    _, grads = model.backward(cache, loss.backward(loss_cache), mode)
    by_hand, hand_state = opt.update(model, grads, state)
    assert value == v and pred.tobytes() == logits.tobytes()
    assert same_bits(new, by_hand) and snapshot(new_state) == snapshot(hand_state)
    assert [b.tobytes() for b in layers.buffers(new)] == [b.tobytes() for b in layers.buffers(by_hand)]
    assert layers.buffers(new)[0].tobytes() != layers.buffers(model)[0].tobytes()      # running mean moved


# ---- non-finite: nothing is updated ----------------------------------------------------------------------

class Spy:
    """An optimizer around another that counts its updates."""

    def __init__(self, inner):
        self.inner, self.updates = inner, 0

    def init(self, model):
        return self.inner.init(model)

    def update(self, model, grads, state):
        self.updates += 1
        return self.inner.update(model, grads, state)


@attrs.frozen
class Poison(layers.Layer):
    """Identity forward; its parameter's gradient is NaN (finite loss, non-finite gradient)."""

    gain: np.ndarray = layers.param()

    def forward(self, x, mode):
        return x, None

    def backward(self, cache, dy, mode):
        return dy, Poison(gain=np.full_like(self.gain, np.nan))


def test_a_non_finite_loss_raises_before_the_update_naming_the_layer_whose_output_is_not_finite():
    big = layers.Dense(weight=np.full((6, 8), 3e38, np.float32), bias=np.zeros(8, np.float32))
    model = layers.Sequence([layers.Dense.init(np.random.default_rng(0), 6, 6), layers.ReLU(), big,
                             layers.Dense.init(np.random.default_rng(1), 8, 3)])
    spy = Spy(optim.SGD(0.1))
    with pytest.raises(optim.NonFiniteLossError) as caught, np.errstate(all="ignore"):
        optim.train_step(model, losses.SoftmaxCrossEntropy(), spy, spy.init(model), xb, yb, layers.TRAIN)
    assert spy.updates == 0 and caught.value.layer == "layers[2]" and caught.value.epoch is None
    assert isinstance(caught.value, FloatingPointError)


def test_a_non_finite_gradient_raises_before_the_update_naming_its_path():
    model = layers.Sequence([layers.Dense.init(np.random.default_rng(0), 6, 3), layers.Residual(
        Poison(gain=np.ones(3, np.float32)))])
    spy = Spy(optim.Adam())
    with pytest.raises(optim.NonFiniteLossError, match=r"layers\[1\]\.inner\.gain") as caught:
        optim.train_step(model, losses.SoftmaxCrossEntropy(), spy, spy.init(model), xb, yb, layers.TRAIN)
    assert spy.updates == 0 and caught.value.layer == "layers[1].inner.gain"
    assert np.isfinite(caught.value.loss)


def test_a_running_variance_that_becomes_inf_is_refused_by_path():
    model = layers.Sequence([layers.Dense.init(np.random.default_rng(0), 6, 4), layers.ReLU(),
                             layers.Residual(layers.BatchNorm.init(4)),
                             layers.Dense.init(np.random.default_rng(1), 4, 3)])
    xb_big = (xb * 1e20).astype(np.float32)   # squared deviations ~1e40: the variance is inf in float32
    # (the loss is finite)
    spy = Spy(optim.SGD(0.01))
    with pytest.raises(optim.NonFiniteLossError) as caught, np.errstate(all="ignore"):
        optim.train_step(model, losses.SoftmaxCrossEntropy(), spy, spy.init(model), xb_big, yb, layers.TRAIN)
    assert spy.updates == 0 and caught.value.layer == "layers[2].inner.running_var"
    assert np.isfinite(caught.value.loss)


# ---- the batch
# ----------------------------------------------------------------------------------------------

def test_the_batch_is_cast_to_the_models_dtype_and_checked():
    model, opt, loss = model_(), optim.SGD(0.1), losses.SoftmaxCrossEntropy()
    state = opt.init(model)

    def step(batch):
        return optim.train_step(model, loss, opt, state, batch, yb,
                                layers.Mode(train=True, rng=np.random.default_rng(0)))

    m32, _, v32, p32 = step(xb)
    m64, _, v64, p64 = step(xb.astype(np.float64))
    assert p64.dtype == np.float32 and v64 == v32 and same_bits(m64, m32)
    assert step(xb.tolist())[2] == v32                              # a list is taken as an array
    bad = xb.copy()
    bad[4, 2] = np.nan
    with pytest.raises(ValueError, match="row 4 holds NaN or inf"):
        step(bad)
    with pytest.raises(TypeError, match="float or integer array, got dtype <U"):
        step(xb.astype(str))
    with pytest.raises(TypeError, match="mode must be a layers.Mode"):
        optim.train_step(model, loss, opt, state, xb, yb, True)


# ---- fit is a loop of train_step
# -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", OPTIMIZERS)
def test_one_epoch_of_fit_equals_a_loop_of_train_step_bit_for_bit(name):
    batch_size = 8
    trained, history = optim.fit(model_(), losses.SoftmaxCrossEntropy(), OPTIMIZERS[name](), x, labels,
                                 epochs=1, batch_size=batch_size, rng=np.random.default_rng(11),
                                 progress=False, threads=1)
    rng = np.random.default_rng(11)
    order = rng.permutation(N)
    model, opt = model_(), OPTIMIZERS[name]()
    state, values = opt.init(model), []
    for b in range(N // batch_size):
        idx = order[b * batch_size:(b + 1) * batch_size]
        model, state, value, _ = optim.train_step(model, losses.SoftmaxCrossEntropy(), opt, state, x[idx],
                                                  labels[idx], layers.Mode(train=True, rng=rng))
        values.append(value)
    assert same_bits(trained, model)
    assert [b.tobytes() for b in layers.buffers(trained)] == [b.tobytes() for b in layers.buffers(model)]
    total = 0.0
    for value in values:
        total += value
    assert history["loss"] == [total / len(values)]


# ---- fit guards its steps as train_step does
# -------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: Spy(optim.Adam()), optim.Adam], ids=["own-update", "in-place"])
def test_fit_refuses_a_non_finite_gradient_before_the_update_as_train_step_does(make):
    model = layers.Sequence([layers.Dense.init(np.random.default_rng(0), 6, 3), layers.Residual(
        Poison(gain=np.ones(3, np.float32)))])
    opt = make()
    error = r"epoch 1, batch 1; .*layers\[1\]\.inner\.gain"
    with pytest.raises(optim.NonFiniteLossError, match=error) as caught:
        optim.fit(model, losses.SoftmaxCrossEntropy(), opt, x, labels, epochs=1, batch_size=8,
                  rng=np.random.default_rng(0), progress=False, threads=1)
    assert caught.value.layer == "layers[1].inner.gain" and np.isfinite(caught.value.loss)
    assert same_bits(caught.value.model, model)                 # the work so far: nothing was updated
    assert getattr(opt, "updates", 0) == 0
