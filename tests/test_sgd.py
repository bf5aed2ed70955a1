"""SGD: hand-computed steps, torch's update rule, schedules, convergence, validation, structure errors.

Ported to the chain (optim.chain) and the layer protocol v2: the numbers are those of lamina 0.1's SGD.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
import pytest

from lamina import layers, losses, optim


@attrs.frozen
class Scale(layers.Layer):
    """DESIGN.md's user layer (protocol v2): y = x * gain, one gain per feature."""

    gain: np.ndarray = layers.param()

    def forward(self, x, mode):
        return x * self.gain, x

    def backward(self, x, dy, mode):
        return dy * self.gain, Scale(gain=(dy * x).sum(axis=0))


def one_number(value: float) -> Scale:
    return Scale(gain=np.array([value]))


def two_steps(opt, p0: float, g0: float, g1: float) -> tuple[float, float]:
    """The parameter after one and after two updates of a one-number model with gradients g0, g1."""
    model, state = one_number(p0), opt.init(one_number(p0))
    model, state = opt.update(model, one_number(g0), state)
    p1 = float(model.gain[0])
    model, state = opt.update(model, one_number(g1), state)
    assert state.step == 2
    return p1, float(model.gain[0])


# --- two steps by hand: p0 = 1, g0 = 0.5, g1 = -0.25, lr = 0.1 ---------------------------------

@pytest.mark.parametrize("opt, expected", [
    # plain: p1 = 1 - 0.1 * 0.5 = 0.95; p2 = 0.95 + 0.1 * 0.25 = 0.975
    (optim.SGD(0.1), (0.95, 0.975)),
    # momentum 0.9: v1 = 0.5, p1 = 0.95; v2 = 0.9 * 0.5 - 0.25 = 0.2, p2 = 0.95 - 0.02 = 0.93
    (optim.SGD(0.1, momentum=0.9), (0.95, 0.93)),
    # Nesterov: v1 = 0.5, d1 = 0.5 + 0.45 = 0.95, p1 = 0.905; v2 = 0.2, d2 = -0.25 + 0.18 = -0.07, p2 = 0.912
    (optim.SGD(0.1, momentum=0.9, nesterov=True), (0.905, 0.912)),
    # weight decay 0.1: g0' = 0.5 + 0.1 = 0.6, p1 = 0.94; g1' = -0.25 + 0.094 = -0.156, p2 = 0.9556
    (optim.SGD(0.1, weight_decay=0.1), (0.94, 0.9556)),
    # decay and momentum: g0' = 0.6, v1 = 0.6, p1 = 0.94; g1' = -0.156, v2 = 0.54 - 0.156 = 0.384, p2 = 0.9016
    (optim.SGD(0.1, momentum=0.9, weight_decay=0.1), (0.94, 0.9016)),
    # a schedule halving every step: p1 = 1 - 0.1 * 0.5 = 0.95, p2 = 0.95 + 0.05 * 0.25 = 0.9625
    (optim.SGD(optim.StepDecay(initial=0.1, factor=0.5, every=1)), (0.95, 0.9625)),
], ids=["plain", "momentum", "nesterov", "weight decay", "decay and momentum", "schedule"])
def test_two_steps_by_hand(opt, expected):
    p1, p2 = two_steps(opt, 1.0, 0.5, -0.25)
    assert (p1, p2) == pytest.approx(expected, rel=1e-14, abs=0)


def torch_sgd(params, grads, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    """torch.optim.SGD's documented algorithm (dampening 0), element by element in Python floats."""
    out = []
    for p, gs in zip(params, zip(*grads)):
        buf = None
        for t, g in enumerate(gs):
            g = g + weight_decay * p
            if momentum:
                buf = g if t == 0 else momentum * buf + g
                g = g + momentum * buf if nesterov else buf
            p = p - lr * g
        out.append(p)
    return out


@pytest.mark.parametrize("momentum, nesterov, weight_decay", [
    (0.0, False, 0.0), (0.9, False, 0.0), (0.5, True, 0.0), (0.9, True, 1e-2), (0.0, False, 0.3),
])
def test_matches_torch_algorithm_on_a_model(momentum, nesterov, weight_decay):
    """Three updates of a whole Sequence (with a user layer) against torch's pseudo-code, float64."""
    rng = np.random.default_rng(0)
    model = layers.Sequence([Scale(gain=rng.standard_normal(3)),
                             layers.Dense.init(rng, 3, 2, dtype=np.float64),
                             layers.Tanh(), layers.Dense.init(rng, 2, 2, dtype=np.float64)])
    grads = [layers.map_parameters(lambda p: rng.standard_normal(p.shape), model) for _ in range(3)]
    opt = optim.SGD(0.05, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    new, state = model, opt.init(model)
    for g in grads:
        new, state = opt.update(new, g, state)
    for (path, p0), p in zip(layers.named_parameters(model), layers.parameters(new)):
        gs = [dict(layers.named_parameters(g))[path].ravel().tolist() for g in grads]
        expected = torch_sgd(p0.ravel().tolist(), gs, 0.05, momentum, weight_decay, nesterov)
        np.testing.assert_allclose(p.ravel(), expected, rtol=1e-13, atol=1e-15, err_msg=path)


def test_float32_model_stays_float32():
    rng = np.random.default_rng(1)
    model = layers.mlp(rng, [3, 4, 2])
    grads = layers.map_parameters(lambda p: np.ones_like(p), model)
    opt = optim.SGD(0.1, momentum=0.9, weight_decay=1e-4)
    new, state = opt.update(model, grads, opt.init(model))
    assert {p.dtype for p in layers.parameters(new)} == {np.dtype(np.float32)}
    (velocity,), = state.states  # the trace's one state array
    assert {v.dtype for v in layers.parameters(velocity)} == {np.dtype(np.float32)}


# --- schedules -------------------------------------------------------------------------------

def test_schedule_values():
    assert [optim.Constant(0.3)(t) for t in (0, 1, 1000)] == [0.3, 0.3, 0.3]
    step = optim.StepDecay(initial=0.1, factor=0.5, every=2)
    assert [step(t) for t in range(6)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025], rel=1e-15,
                                                        abs=0)
    cosine = optim.Cosine(initial=1.0, total=4)
    # 1/2 (1 + cos(pi t / 4)) at t = 0..4, then flat at the end value
    assert [cosine(t) for t in (0, 1, 2, 3, 4, 10)] == pytest.approx(
        [1.0, (1 + math.sqrt(0.5)) / 2, 0.5, (1 - math.sqrt(0.5)) / 2, 0.0, 0.0], abs=1e-15)
    floor = optim.Cosine(initial=1.0, total=2, final=0.1)
    assert [floor(t) for t in (0, 1, 2, 5)] == pytest.approx([1.0, 0.55, 0.1, 0.1], rel=1e-14, abs=0)
    warm = optim.Cosine(initial=0.4, total=2, warmup=4)
    assert [warm(t) for t in range(7)] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.2, 0.0], abs=1e-15)


def test_the_step_lives_in_the_state():
    """The rate comes from state.step: a state restored at step 4 uses lr(4), whatever came before."""
    opt = optim.SGD(optim.StepDecay(initial=1.0, factor=0.1, every=2))
    model = one_number(1.0)
    state = attrs.evolve(opt.init(model), step=4)       # lr(4) = 1.0 * 0.1 ** 2 = 0.01
    new, state = opt.update(model, one_number(2.0), state)
    assert float(new.gain[0]) == pytest.approx(1.0 - 0.01 * 2.0, rel=1e-15, abs=0)
    assert state.step == 5
    assert opt.rate(4) == pytest.approx(0.01) and opt.rate(0) == 1.0


def test_a_schedule_giving_a_bad_rate_is_refused_at_that_step():
    opt = optim.SGD(lambda step: 0.1 if step < 1 else float("nan"))
    model = one_number(1.0)
    model, state = opt.update(model, one_number(1.0), opt.init(model))
    with pytest.raises(ValueError, match=r"schedule gave nan at step 1"):
        opt.update(model, one_number(1.0), state)


@pytest.mark.parametrize("make, match", [
    (lambda: optim.StepDecay(initial=0.1, factor=0.0, every=1),
     r"StepDecay: factor must be a number in \(0, 1\]"),
    (lambda: optim.StepDecay(initial=-0.1, factor=0.5, every=1), r"StepDecay: initial must be a positive"),
    (lambda: optim.Cosine(initial=0.1, total=0), r"Cosine: total must be a positive"),
    (lambda: optim.Constant(float("nan")), r"Constant: value must be a positive finite"),
])
def test_schedule_validation(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# --- convergence -----------------------------------------------------------------------------

def test_converges_to_the_least_squares_solution():
    """One Dense with MSE, full batch, float64: SGD with momentum reaches numpy's lstsq solution."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 3))
    y = x @ np.array([[1.5], [-2.0], [0.5]]) + 0.3 + 0.1 * rng.standard_normal((64, 1))
    solution = np.linalg.lstsq(np.column_stack([x, np.ones(64)]), y, rcond=None)[0].ravel()

    model = layers.Sequence([layers.Dense.init(rng, 3, 1, dtype=np.float64)])
    loss, opt = losses.MSE(), optim.SGD(0.1, momentum=0.5)
    state = opt.init(model)
    for _ in range(300):
        out, cache = model.forward(x, layers.TRAIN)
        _, loss_cache = loss.forward(out, y)
        _, grads = model.backward(cache, loss.backward(loss_cache), layers.Mode(train=True, input_grad=False))
        model, state = opt.update(model, grads, state)
    dense = model.layers[0]
    np.testing.assert_allclose(np.append(dense.weight.ravel(), dense.bias), solution, rtol=0, atol=1e-6)


# --- hyper-parameters ------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    (dict(learning_rate=-0.1), ValueError, r"learning_rate must be a positive finite number.*-0\.1"),
    (dict(learning_rate=0.0), ValueError, r"learning_rate must be a positive"),
    (dict(learning_rate=float("nan")), ValueError, r"learning_rate must be a positive finite number.*nan"),
    (dict(learning_rate=float("inf")), ValueError, r"learning_rate .*inf"),
    (dict(learning_rate="0.1"), ValueError, r"learning_rate"),
    (dict(learning_rate=0.1, momentum=1.0), ValueError, r"momentum must be a number in \[0, 1\), got 1\.0"),
    (dict(learning_rate=0.1, momentum=-0.5), ValueError, r"momentum must be a number in \[0, 1\)"),
    (dict(learning_rate=0.1, momentum=float("nan")), ValueError, r"momentum must be a number in \[0, 1\)"),
    (dict(learning_rate=0.1, nesterov=True), ValueError, r"nesterov=True needs momentum > 0"),
    (dict(learning_rate=0.1, momentum=0.9, nesterov=1), TypeError, r"nesterov must be True or False"),
    (dict(learning_rate=0.1, weight_decay=-1e-4), ValueError, r"weight_decay must be a finite number >= 0"),
    (dict(learning_rate=0.1, weight_decay=float("nan")), ValueError, r"weight_decay .*nan"),
])
def test_hyper_parameters_are_validated(kwargs, error, match):
    with pytest.raises(error, match=match):
        optim.SGD(**kwargs)


def test_hyper_parameters_are_readable():
    opt = optim.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    assert repr(opt) == ("SGD(learning_rate=0.1, momentum=0.9, nesterov=True, weight_decay=0.0001, "
                         "clip_norm=None)")
    assert "StepDecay(initial=0.1, factor=0.5, every=3)" in repr(optim.SGD(optim.StepDecay(0.1, 0.5, 3)))


# --- structure -------------------------------------------------------------------------------

def model_and_grads():
    rng = np.random.default_rng(3)
    model = layers.mlp(rng, [4, 5, 3])
    return rng, model, layers.map_parameters(np.ones_like, model)


def test_mismatched_gradient_shape_is_named_by_path():
    rng, model, grads = model_and_grads()
    bad = layers.Sequence([grads.layers[0], grads.layers[1], layers.Dense.init(rng, 5, 2)])
    with pytest.raises(layers.StructureError, match=r"layers\[2\]\.weight.*\(5, 3\).*\(5, 2\)"):
        optim.SGD(0.1).update(model, bad, optim.SGD(0.1).init(model))


def test_mismatched_gradient_dtype_is_named_by_path():
    _, model, grads = model_and_grads()
    bad = layers.map_parameters(lambda g: g.astype(np.float64), grads)
    with pytest.raises(layers.StructureError, match=r"layers\[0\]\.weight.*float32.*float64"):
        optim.SGD(0.1).update(model, bad, optim.SGD(0.1).init(model))


def test_mismatched_layer_count_and_class_are_named():
    rng, model, grads = model_and_grads()
    opt = optim.SGD(0.1)
    with pytest.raises(layers.StructureError, match=r"at layers: .*3 layers.*2 layers"):
        opt.update(model, layers.Sequence(grads.layers[:2]), opt.init(model))
    swapped = layers.Sequence([grads.layers[0], layers.Tanh(), grads.layers[2]])
    with pytest.raises(layers.StructureError, match=r"at layers\[1\].*ReLU.*Tanh"):
        opt.update(model, swapped, opt.init(model))
    with pytest.raises(ValueError, match=r"at the top"):  # StructureError is a ValueError
        opt.update(model, grads.layers[0], opt.init(model))


def test_mismatched_state_is_named():
    rng, model, grads = model_and_grads()
    opt = optim.SGD(0.1, momentum=0.9)
    other = layers.mlp(rng, [4, 6, 3])
    with pytest.raises(layers.StructureError, match=r"layers\[0\]\.weight.*optimizer state"):
        opt.update(model, grads, opt.init(other))
    with pytest.raises(ValueError, match=r"opt\.init\(model\)"):
        opt.update(model, grads, optim.SGD(0.1).init(model))  # a state without velocity


# --- subnormal velocities -------------------------------------------------------------------

@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("in_place", [False, True], ids=["pure", "in place"])
def test_subnormal_velocities_are_flushed_and_the_weights_are_the_textbook_ones(nesterov, in_place):
    """A velocity decaying with no gradient reaches the subnormals (slow on CPUs); every FLUSH_EVERY
    updates those entries become 0, and the weights stay bit for bit what the unflushed rule gives."""
    from lamina.optim import FLUSH_EVERY
    from lamina.optim.in_place import owned
    tiny = np.finfo(np.float32).tiny
    opt = optim.SGD(0.1, momentum=0.9, nesterov=nesterov)
    # entry 0 decays from just above the smallest normal (0.9 a step: ~150 steps among the
    # subnormals); entry 1 keeps a normal gradient; entry 2 never has one
    p0 = np.array([1.0, 1.0, 1.0], np.float32)
    first = np.array([2 * tiny, 0.25, 0.0], np.float32)
    later = np.array([0.0, 0.25, 0.0], np.float32)
    model = Scale(gain=p0)
    model, state = opt.update(model, Scale(gain=first), opt.init(model))
    if in_place:  # the training loop's way: its own copies, updated in their buffers
        model, state = owned(model), owned(state)
    p, v = p0.copy(), first.copy()  # the unflushed rule in NumPy float32
    p -= np.float32(0.1) * ((first + np.float32(0.9) * v) if nesterov else v)
    for step in range(1, FLUSH_EVERY):  # updates 1 .. FLUSH_EVERY - 1 (0-based): the flush follows the last
        if step == FLUSH_EVERY - 1:
            assert 0 < state.states[0][0].gain[0] < tiny  # subnormal, not yet flushed
        if in_place:
            same, state = opt.update_in_place(model, owned(Scale(gain=later)), state)
            assert same is model
        else:
            model, state = opt.update(model, Scale(gain=later), state)
        v = np.float32(0.9) * v + later
        p -= np.float32(0.1) * ((later + np.float32(0.9) * v) if nesterov else v)
    velocity = state.states[0][0].gain
    assert 0 < v[0] < tiny and velocity[0] == 0  # the rule alone: still subnormal; lamina: flushed
    np.testing.assert_array_equal(velocity[1:], v[1:])  # normal (and zero) entries untouched
    np.testing.assert_array_equal(model.gain, p)  # the weights: bit for bit


def test_flushing_keeps_nan_and_inf():
    from lamina.optim.chain import flush_subnormals
    tiny = np.finfo(np.float32).tiny
    v = np.array([np.nan, np.inf, -np.inf, tiny / 2, -tiny / 4, tiny, -1.0, 0.0], np.float32)
    flush_subnormals(v)
    np.testing.assert_array_equal(v, np.array([np.nan, np.inf, -np.inf, 0, 0, tiny, -1.0, 0.0], np.float32))
