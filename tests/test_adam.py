"""Adam and AdamW: two steps worked by hand from torch's formulas, float32 kept, hyper-parameters checked."""

from __future__ import annotations

import math

import attrs
import numpy as np
import pytest

from lamina import layers, optim


@attrs.frozen
class Gain(layers.Layer):
    """A one-number model: y = x * gain."""

    gain: np.ndarray = layers.param()

    def forward(self, x, mode):
        return x * self.gain, x

    def backward(self, x, dy, mode):
        return dy * self.gain, Gain(gain=(dy * x).sum(axis=0))


def two_steps(opt, p0=1.0, g0=0.5, g1=-0.25):
    model = Gain(gain=np.array([p0]))
    state = opt.init(model)
    model, state = opt.update(model, Gain(gain=np.array([g0])), state)
    p1 = float(model.gain[0])
    model, state = opt.update(model, Gain(gain=np.array([g1])), state)
    assert state.step == 2
    return p1, float(model.gain[0]), state


# p0 = 1, g0 = 0.5, g1 = -0.25, lr = 0.1, betas (0.9, 0.999), eps 1e-8:
# step 1: m = 0.1 * 0.5 = 0.05, v = 0.001 * 0.25 = 0.00025; m̂ = 0.05 / 0.1 = 0.5, v̂ = 0.00025 / 0.001 = 0.25
# step 2: m = 0.9 * 0.05 - 0.1 * 0.25 = 0.02, v = 0.999 * 0.00025 + 0.001 * 0.0625 = 0.00031225;
#         c1 = 1 - 0.9² = 0.19, c2 = 1 - 0.999² = 0.001999
ADAM_1 = 0.1 * 0.5 / (math.sqrt(0.25) + 1e-8)
ADAM_2 = 0.1 * (0.02 / 0.19) / (math.sqrt(0.00031225 / 0.001999) + 1e-8)


def test_adam_by_hand():
    p1, p2, state = two_steps(optim.Adam(0.1))
    assert p1 == pytest.approx(1 - ADAM_1, rel=1e-14, abs=0)
    assert p2 == pytest.approx(1 - ADAM_1 - ADAM_2, rel=1e-14, abs=0)
    mu, nu = state.states[0]
    assert (float(mu.gain[0]), float(nu.gain[0])) == pytest.approx((0.02, 0.00031225), rel=1e-14, abs=0)


def test_adam_l2_decay_is_added_to_the_gradient():
    # g0' = 0.5 + 0.1 * 1 = 0.6: m = 0.06, v = 0.00036; m̂ = 0.6, v̂ = 0.36
    p1, p2, _ = two_steps(optim.Adam(0.1, weight_decay=0.1))
    assert p1 == pytest.approx(1 - 0.1 * 0.6 / (0.6 + 1e-8), rel=1e-14, abs=0)
    g1 = -0.25 + 0.1 * p1
    m, v = 0.9 * 0.06 + 0.1 * g1, 0.999 * 0.00036 + 0.001 * g1 ** 2
    assert p2 == pytest.approx(p1 - 0.1 * (m / 0.19) / (math.sqrt(v / 0.001999) + 1e-8), rel=1e-13, abs=0)


def test_adamw_decay_is_decoupled():
    # p <- p (1 - lr wd) first; the moments are Adam's on the raw gradients
    p1, p2, _ = two_steps(optim.AdamW(0.1, weight_decay=0.1))
    assert p1 == pytest.approx(0.99 - ADAM_1, rel=1e-14, abs=0)
    assert p2 == pytest.approx(p1 * 0.99 - ADAM_2, rel=1e-14, abs=0)


def test_betas_and_eps_are_used():
    # betas (0.5, 0.75), eps 0.1: m = 0.25, v = 0.0625; m̂ = 0.5, v̂ = 0.25 -> step 0.1 * 0.5 / (0.5 + 0.1)
    p1, _, _ = two_steps(optim.Adam(0.1, betas=(0.5, 0.75), eps=0.1))
    assert p1 == pytest.approx(1 - 0.1 * 0.5 / 0.6, rel=1e-14, abs=0)


def test_a_schedule_gives_the_rate_of_each_step():
    # lr(0) = 0.1, lr(1) = 0.05
    p1, p2, _ = two_steps(optim.Adam(optim.StepDecay(initial=0.1, factor=0.5, every=1)))
    assert p2 == pytest.approx(1 - ADAM_1 - ADAM_2 / 2, rel=1e-14, abs=0)


@pytest.mark.parametrize("make", [optim.Adam, optim.AdamW])
def test_float32_stays_float32(make):
    rng = np.random.default_rng(0)
    model = layers.mlp(rng, [3, 4, 2])
    opt = make()
    new, state = opt.update(model, layers.map_parameters(np.ones_like, model), opt.init(model))
    arrays = layers.parameters(new) + [a for record in state.states[0] for a in layers.parameters(record)]
    assert {a.dtype for a in arrays} == {np.dtype(np.float32)}


@pytest.mark.parametrize("make", [optim.Adam, optim.AdamW])
@pytest.mark.parametrize("kwargs, match", [
    (dict(learning_rate=-1e-3), r"learning_rate must be a positive finite number"),
    (dict(learning_rate=0.0), r"learning_rate must be a positive"),
    (dict(betas=(1.0, 0.999)), r"betas\[0\] must be a number in \[0, 1\), got 1\.0"),
    (dict(betas=(0.9, -0.1)), r"betas\[1\] must be a number in \[0, 1\), got -0\.1"),
    (dict(betas=(0.9,)), r"betas must be a pair"),
    (dict(eps=0.0), r"eps must be a positive finite number, got 0\.0"),
    (dict(eps=-1e-8), r"eps must be a positive"),
    (dict(weight_decay=-0.1), r"weight_decay must be a finite number >= 0"),
    (dict(clip_norm=0.0), r"clip_norm must be a positive finite number or None"),
    (dict(clip_norm=-1.0), r"clip_norm must be a positive"),
])
def test_hyper_parameters_are_checked_at_construction(make, kwargs, match):
    with pytest.raises(ValueError, match=rf"^{make.__name__}: {match}"):
        make(**kwargs)


def test_reprs_are_readable():
    assert repr(optim.Adam()) == ("Adam(learning_rate=0.001, betas=(0.9, 0.999), eps=1e-08, "
                                  "weight_decay=0.0, clip_norm=None)")
    assert repr(optim.AdamW(betas=[0.8, 0.9])) == \
        "AdamW(learning_rate=0.001, betas=(0.8, 0.9), eps=1e-08, weight_decay=0.01, clip_norm=None)"
