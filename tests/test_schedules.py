"""Learning-rate schedules: values worked by hand, composition with warm-up, checks, and their use by the
optimizers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lamina import layers, optim


def test_exponential():
    assert [optim.Exponential(initial=0.1, factor=0.5)(t) for t in range(4)] == \
        pytest.approx([0.1, 0.05, 0.025, 0.0125], rel=1e-15, abs=0)


def test_linear_then_flat():
    line = optim.Linear(initial=1.0, final=0.0, total=4)
    assert [line(t) for t in (0, 1, 2, 4, 9)] == [1.0, 0.75, 0.5, 0.0, 0.0]


def test_warmup_then_any_schedule():
    warm = optim.Warmup(optim.StepDecay(initial=0.4, factor=0.5, every=2), steps=4)
    # 0.4 (t + 1) / 4 for t < 4; then StepDecay(t - 4)
    assert [warm(t) for t in range(8)] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.4, 0.2, 0.2], rel=1e-15,
                                                        abs=0)
    assert [optim.Warmup(0.3, steps=3)(t) for t in range(5)] == pytest.approx([0.1, 0.2, 0.3, 0.3, 0.3],
                                                                              rel=1e-15)


def test_cosine_with_warmup_is_warmup_of_a_cosine():
    a = optim.Cosine(initial=0.4, total=10, final=0.01, warmup=5)
    b = optim.Warmup(optim.Cosine(initial=0.4, total=10, final=0.01), steps=5)
    assert [a(t) for t in range(20)] == [b(t) for t in range(20)]
    assert a(10) == pytest.approx(0.01 + 0.39 * (1 + math.cos(math.pi / 2)) / 2, rel=1e-15)


@pytest.mark.parametrize("make, match", [
    (lambda: optim.Exponential(initial=0.1, factor=1.5), r"Exponential: factor must be a number in \(0, 1\]"),
    (lambda: optim.Linear(initial=-1.0, final=0.0, total=3), r"Linear: initial must be a finite number >= 0"),
    (lambda: optim.Linear(initial=1.0, final=0.0, total=0), r"Linear: total must be a positive"),
    (lambda: optim.Warmup(optim.Constant(0.1), steps=0), r"Warmup: steps must be a positive"),
    (lambda: optim.Warmup(-0.1, steps=3), r"Warmup: then must be a positive"),
])
def test_schedules_check_their_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("make", [optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop])
def test_every_optimizer_takes_the_rate_of_the_state_s_step(make):
    """lr(t) = 0.1 for t < 2, then 0: from a state at step 2 nothing moves (AdamW's decay is lr-scaled
    too)."""
    opt = make(lambda step: 0.1 if step < 2 else 0.0)
    model = layers.mlp(np.random.default_rng(0), [3, 2])
    grads = layers.map_parameters(np.ones_like, model)
    state = opt.init(model)
    for _ in range(2):
        model, state = opt.update(model, grads, state)
    moved, _ = opt.update(model, grads, state)
    assert state.step == 2 and all(np.array_equal(a, b) for a, b in zip(layers.parameters(moved),
                                                                        layers.parameters(model)))
    assert opt.rate(1) == 0.1 and opt.rate(2) == 0.0


def test_reprs_print_the_schedule():
    opt = optim.Adam(optim.Warmup(optim.Cosine(1e-3, total=100), steps=10), clip_norm=1.0)
    assert repr(opt).startswith("Adam(learning_rate=Warmup(then=Cosine(initial=0.001, total=100, final=0.0, "
                                "warmup=0), steps=10), betas=(0.9, 0.999)")
