"""clip_by_global_norm and every optimizer's clip_norm: torch's clip_grad_norm_, on the raw gradients, before
decay."""

from __future__ import annotations

import math

import numpy as np
import pytest

from test_adam import Gain

from lamina import layers, optim


def two_gains(a, b):
    """A model of two one-number layers, so that the norm is global: gradients 3 and 4 have norm 5."""
    return layers.Sequence([Gain(gain=np.array([a])), Gain(gain=np.array([b]))])


def gains(model):
    return [float(layer.gain[0]) for layer in model.layers]


def step(opt, grads=(3.0, 4.0), params=(1.0, 1.0)):
    model = two_gains(*params)
    new, _ = opt.update(model, two_gains(*grads), opt.init(model))
    return gains(new)


def test_above_the_threshold_the_gradients_are_scaled_to_the_norm():
    # norm 5 > 1: g *= 1 / (5 + 1e-6); p = 1 - 0.1 g
    c = 1 / (5 + 1e-6)
    assert step(optim.SGD(0.1, clip_norm=1.0)) == pytest.approx([1 - 0.3 * c, 1 - 0.4 * c], rel=1e-15, abs=0)


def test_below_the_threshold_nothing_changes():
    assert step(optim.SGD(0.1, clip_norm=10.0)) == [1 - 0.1 * 3.0, 1 - 0.1 * 4.0]


def test_at_the_threshold_the_epsilon_still_scales_as_torch_does():
    c = 5 / (5 + 1e-6)
    assert step(optim.SGD(0.1, clip_norm=5.0)) == pytest.approx([1 - 0.3 * c, 1 - 0.4 * c], rel=1e-15, abs=0)


def test_the_norm_is_of_the_raw_gradients_before_weight_decay():
    # weight decay 0.5 on p = 2: g' = g c + 0.5 * 2, with c from the raw norm 5
    c = 1 / (5 + 1e-6)
    got = step(optim.SGD(0.1, weight_decay=0.5, clip_norm=1.0), params=(2.0, 2.0))
    assert got == pytest.approx([2 - 0.1 * (3 * c + 1), 2 - 0.1 * (4 * c + 1)], rel=1e-15, abs=0)


@pytest.mark.parametrize("make", [lambda c: optim.Adam(0.1, clip_norm=c),
                                  lambda c: optim.AdamW(0.1, clip_norm=c),
                                  lambda c: optim.RMSprop(0.1, clip_norm=c)],
                         ids=["Adam", "AdamW", "RMSprop"])
def test_every_optimizer_clips(make):
    """Clipped at 1, the first update equals the unclipped update of the gradients divided by (5 + 1e-6)."""
    c = 1 / (5 + 1e-6)
    assert step(make(1.0)) == pytest.approx(step(make(None), grads=(3 * c, 4 * c)), rel=1e-15, abs=0)
    assert step(make(1.0)) != step(make(None))


def test_global_norm_of_float32_that_overflows_a_float32_sum():
    big = np.full(4, 3e19, np.float32)          # Σ g² = 3.6e39 > float32's largest
    assert optim.global_norm([big]) == pytest.approx(6e19, rel=1e-6)
    assert optim.global_norm([np.array([3.0]), np.array([[4.0]])]) == 5.0


def test_masked_clip_sees_only_the_chosen_parameters():
    # only layers[0] (gradient 3) is clipped, by its own norm 3
    opt = optim.chain(optim.masked(optim.clip_by_global_norm(1.0), lambda path: path.startswith("layers[0]")),
                      optim.scale_by_learning_rate(0.1))
    assert step(opt) == pytest.approx([1 - 0.3 / (3 + 1e-6), 1 - 0.4], rel=1e-15, abs=0)


def test_clipping_must_come_first_in_a_chain():
    with pytest.raises(ValueError, match=r"whole-tree transform clip_by_global_norm.*comes after.*put them "
                                         r"first"):
        optim.chain(optim.scale_by_learning_rate(0.1), optim.clip_by_global_norm(1.0))


def test_clip_norm_must_be_positive():
    with pytest.raises(ValueError, match=r"^clip_by_global_norm: max_norm must be a positive finite number"):
        optim.clip_by_global_norm(0.0)
    with pytest.raises(ValueError, match=r"^SGD: clip_norm must be a positive finite number or None, got -1"):
        optim.SGD(0.1, clip_norm=-1)
    assert math.isfinite(optim.SGD(0.1, clip_norm=2).clip_norm)
