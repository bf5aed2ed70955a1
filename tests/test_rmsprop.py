"""RMSprop: two steps worked by hand from torch's formulas (plain, centered, momentum, decay), checks."""

from __future__ import annotations

import math

import pytest

from test_adam import two_steps

from lamina import optim

# p0 = 3, g0 = 0.5, g1 = -0.25, lr = 0.1, alpha = 0.99, eps = 1e-8 (the first step is about -1)
# v1 = 0.01 * 0.25 = 0.0025; v2 = 0.99 * 0.0025 + 0.01 * 0.0625 = 0.0031
V1, V2 = 0.0025, 0.0031


def test_plain_by_hand():
    p1, p2, state = two_steps(p0=3.0, opt=optim.RMSprop(0.1))
    assert p1 == pytest.approx(3 - 0.1 * 0.5 / (math.sqrt(V1) + 1e-8), rel=1e-14, abs=0)
    assert p2 == pytest.approx(p1 + 0.1 * 0.25 / (math.sqrt(V2) + 1e-8), rel=1e-14, abs=0)
    assert float(state.states[0][0].gain[0]) == pytest.approx(V2, rel=1e-14, abs=0)


def test_centered_by_hand():
    # mean1 = 0.01 * 0.5 = 0.005; mean2 = 0.99 * 0.005 - 0.01 * 0.25 = 0.00245
    p1, p2, state = two_steps(p0=3.0, opt=optim.RMSprop(0.1, centered=True))
    assert p1 == pytest.approx(3 - 0.1 * 0.5 / (math.sqrt(V1 - 0.005 ** 2) + 1e-8), rel=1e-14, abs=0)
    assert p2 == pytest.approx(p1 + 0.1 * 0.25 / (math.sqrt(V2 - 0.00245 ** 2) + 1e-8), rel=1e-13, abs=0)
    assert float(state.states[0][1].gain[0]) == pytest.approx(0.00245, rel=1e-14, abs=0)


def test_momentum_accumulates_the_scaled_gradient():
    # b1 = g0 / (√v1 + eps); b2 = 0.9 b1 + g1 / (√v2 + eps); p -= lr b
    b1 = 0.5 / (math.sqrt(V1) + 1e-8)
    b2 = 0.9 * b1 - 0.25 / (math.sqrt(V2) + 1e-8)
    p1, p2, _ = two_steps(p0=3.0, opt=optim.RMSprop(0.1, momentum=0.9))
    assert p1 == pytest.approx(3 - 0.1 * b1, rel=1e-14, abs=0)
    assert p2 == pytest.approx(3 - 0.1 * b1 - 0.1 * b2, rel=1e-12, abs=0)


def test_weight_decay_is_added_to_the_gradient():
    # g0' = 0.5 + 0.1 * 3 = 0.8: v1 = 0.01 * 0.64 = 0.0064
    p1, p2, _ = two_steps(p0=3.0, opt=optim.RMSprop(0.1, weight_decay=0.1))
    assert p1 == pytest.approx(3 - 0.1 * 0.8 / (0.08 + 1e-8), rel=1e-13, abs=0)
    g1 = -0.25 + 0.1 * p1
    v2 = 0.99 * 0.0064 + 0.01 * g1 ** 2
    assert p2 == pytest.approx(p1 - 0.1 * g1 / (math.sqrt(v2) + 1e-8), rel=1e-12, abs=0)


def test_no_bias_correction_and_eps_outside_the_root():
    # alpha 0.5, eps 0.5: v1 = 0.5 * 0.25 = 0.125; step 0.1 * 0.5 / (√0.125 + 0.5)
    p1, _, _ = two_steps(p0=3.0, opt=optim.RMSprop(0.1, alpha=0.5, eps=0.5))
    assert p1 == pytest.approx(3 - 0.1 * 0.5 / (math.sqrt(0.125) + 0.5), rel=1e-14, abs=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(learning_rate=-0.01), r"learning_rate must be a positive finite number"),
    (dict(alpha=1.0), r"alpha must be a number in \[0, 1\), got 1\.0"),
    (dict(alpha=-0.1), r"alpha must be a number in \[0, 1\)"),
    (dict(eps=0), r"eps must be a positive finite number, got 0"),
    (dict(momentum=1.5), r"momentum must be a number in \[0, 1\)"),
    (dict(weight_decay=-1.0), r"weight_decay must be a finite number >= 0"),
    (dict(clip_norm=float("inf")), r"clip_norm must be a positive finite number or None"),
])
def test_hyper_parameters_are_checked_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=rf"^RMSprop: {match}"):
        optim.RMSprop(**kwargs)


def test_centered_must_be_a_bool():
    with pytest.raises(TypeError, match=r"RMSprop: centered must be True or False"):
        optim.RMSprop(centered=1)


def test_repr_is_readable():
    assert repr(optim.RMSprop(momentum=0.9, centered=True)) == (
        "RMSprop(learning_rate=0.01, alpha=0.99, eps=1e-08, weight_decay=0.0, momentum=0.9, centered=True, "
        "clip_norm=None)")
