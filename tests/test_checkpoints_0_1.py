"""A lamina 0.1 checkpoint (SGDState(step, velocity)) is converted on loading: the velocity is SGD's trace
state."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from lamina import layers, optim
from lamina.optim.in_place import owned

# 6-5-3 mlp, one epoch of SGD(0.1, momentum=0.9)
FIXTURE = Path(__file__).parent / "fixtures" / "checkpoint-0.1.npz"


def stored(name: str) -> np.ndarray:
    """An array member of the fixture, read with NumPy alone."""
    with zipfile.ZipFile(FIXTURE) as archive, archive.open(name + ".npy") as member:
        return np.lib.format.read_array(member)


def test_the_state_becomes_the_chain_state_of_sgd():
    checkpoint = optim.load_checkpoint(FIXTURE)
    state = checkpoint.state
    assert isinstance(state, optim.ChainState) and state.step == 5
    (velocity,), = state.states
    for path, v in layers.named_parameters(velocity):
        np.testing.assert_array_equal(v, stored(f"state.velocity.{path}"))
    # the settings a resumed run compares: the 0.1 repr gains the clip_norm 0.1 never had
    assert checkpoint.settings["optimizer"] == repr(optim.SGD(0.1, momentum=0.9))


def test_resuming_continues_the_momentum_bit_for_bit():
    """One more update from the checkpoint, against 0.1's rule in float32: v = 0.9 v + g; p = p - 0.1 v."""
    checkpoint = optim.load_checkpoint(FIXTURE)
    model, state = checkpoint.model, checkpoint.state
    rng = np.random.default_rng(0)
    grads = layers.map_parameters(lambda p: rng.standard_normal(p.shape).astype(np.float32), model)
    opt = optim.SGD(0.1, momentum=0.9)
    new, new_state = opt.update(model, grads, state)
    mine, mine_state = opt.update_in_place(owned(model), owned(grads), owned(state))
    for path, p in layers.named_parameters(model):
        v = np.float32(0.9) * stored(f"state.velocity.{path}") + dict(layers.named_parameters(grads))[path]
        expected = p - np.float32(0.1) * v
        for result in (new, mine):
            assert dict(layers.named_parameters(result))[path].tobytes() == expected.tobytes(), path
        for result in (new_state, mine_state):
            assert dict(layers.named_parameters(result.states[0][0]))[path].tobytes() == v.tobytes(), path
    assert new_state.step == mine_state.step == 6


def test_other_optimizers_refuse_the_converted_state_with_a_message():
    checkpoint = optim.load_checkpoint(FIXTURE)
    try:
        optim.Adam().update(checkpoint.model, checkpoint.model, checkpoint.state)
    except ValueError as error:
        assert "make the state with opt.init(model)" in str(error)
    else:
        raise AssertionError("Adam took SGD's state")


def test_a_state_without_velocity_becomes_an_empty_chain_state():
    from lamina.optim.checkpoints import converted_state
    assert converted_state(optim.SGDState(step=3, velocity=None)) == optim.ChainState(step=3, states=())
    plain = optim.SGD(0.1)
    model = layers.mlp(np.random.default_rng(0), [2, 2])
    assert converted_state(optim.SGDState(step=0)) == plain.init(model)
