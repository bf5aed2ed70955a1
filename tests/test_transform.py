"""What a transform is: optax's two functions are enough (run on copies, state saved); Needs; clear errors."""

from __future__ import annotations

import collections

import attrs
import numpy as np
import pytest

from lamina import layers, losses, optim
from lamina.layers.files.model_file import read_records, write_records
from lamina.optim.in_place import owned


def mlp(seed=0, sizes=(6, 5, 3)):
    return layers.mlp(np.random.default_rng(seed), list(sizes))


def gradient_stream(model, n, seed=1):
    rng = np.random.default_rng(seed)
    return [layers.map_parameters(lambda p: rng.standard_normal(p.shape).astype(p.dtype), model)
            for _ in range(n)]


def run(opt, model, grads, state=None):
    state = opt.init(model) if state is None else state
    for g in grads:
        model, state = opt.update(model, g, state)
    return model, state


def assert_bits_equal(xs, ys):
    assert len(xs) == len(ys)
    for x, y in zip(xs, ys):
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


class OptaxMomentum:
    """Momentum as optax would write it: no base class, no declaration, a fresh state each update."""

    def __init__(self, decay):
        self.decay = decay

    def init(self, param):
        return {"trace": np.zeros_like(param), "count": np.zeros((), np.int32), "seen": 0, "note": None}

    def __repr__(self):
        return f"OptaxMomentum({self.decay})"

    def update(self, grad, state, param, step):
        trace = self.decay * state["trace"] + grad
        return trace, {"trace": trace, "count": state["count"] + 1, "seen": state["seen"] + 1, "note": None}


class OptaxTuple:
    """An undeclared transform keeping a tuple of an array and a float, and one keeping nothing."""

    def init(self, param):
        return (np.ones_like(param), 0.5)

    def update(self, grad, state, param, step):
        scale, half = state
        scale *= 2.0            # its own copy: the chain hands it copies
        return grad * half, (scale, half)


class Stateless:
    def init(self, param):
        return None

    def update(self, grad, state, param, step):
        return grad, None


def test_an_optax_transform_equals_the_declared_one_bit_for_bit():
    model, grads = mlp(), gradient_stream(mlp(), 6)
    theirs = optim.chain(OptaxMomentum(0.9), Stateless(), optim.scale_by_learning_rate(0.05))
    mine = optim.SGD(0.05, momentum=0.9)
    a, state = run(theirs, model, grads)
    b, _ = run(mine, model, grads)
    assert_bits_equal(layers.parameters(a), layers.parameters(b))
    first = state.states[0][0].values[0]          # the state as kept: data a model file holds
    assert isinstance(state.states[0][0], optim.chain_state.FreeStates)
    assert first.keys == ("trace", "count", "seen", "note") and first.values[2] == 6


def test_an_optax_state_is_saved_and_resumes_bit_for_bit(tmp_path):
    opt = optim.chain(OptaxMomentum(0.9), OptaxTuple(), optim.scale_by_learning_rate(0.05))
    model, grads = mlp(), gradient_stream(mlp(), 8)
    straight, straight_state = run(opt, model, grads)
    half, half_state = run(opt, model, grads[:3])
    write_records(tmp_path / "state.npz", {"model": half, "state": half_state}, kind="checkpoint")
    records, _, _ = read_records(tmp_path / "state.npz")
    assert records["state"] == half_state
    resumed, state = run(opt, records["model"], grads[3:], records["state"])
    assert_bits_equal(layers.parameters(resumed), layers.parameters(straight))
    assert state == straight_state
    count = optim.chain_state.restored(state.states[0][0].values[1])["count"]
    assert count.dtype == np.int32 and count == 8


def test_an_optax_transform_changes_nothing_it_is_given_and_trains_in_fit():
    opt = optim.chain(OptaxMomentum(0.9), OptaxTuple(), optim.scale_by_learning_rate(0.05))
    model, grads = mlp(), gradient_stream(mlp(), 2)
    _, state = opt.update(model, grads[0], opt.init(model))
    kept = optim.chain_state.restored(state.states[1][0].values[0])[0].copy()
    before = [g.copy() for g in layers.parameters(grads[1])]
    opt.update(model, grads[1], state)
    assert_bits_equal(layers.parameters(grads[1]), before)
    assert_bits_equal([optim.chain_state.restored(state.states[1][0].values[0])[0]], [kept])
    # the training loop's in-place call runs it on copies
    new, _ = opt.update_in_place(owned(model), owned(grads[0]), owned(opt.init(model)))
    pure, _ = opt.update(model, grads[0], opt.init(model))
    assert_bits_equal(layers.parameters(new), layers.parameters(pure))
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 6)).astype(np.float32), rng.integers(0, 3, 40)
    _, history = optim.fit(model, losses.SoftmaxCrossEntropy(), opt, x, y, epochs=2, batch_size=8,
                           rng=np.random.default_rng(1), progress=False)
    assert history["loss"][1] < history["loss"][0]


def test_a_pair_of_functions_is_a_transform_too():
    """optax's own shape: a named tuple (init, update) of plain functions."""
    pair = collections.namedtuple("GradientTransformation", "init update")
    halve = pair(init=lambda p: None, update=lambda g, state, p, step: (g * 0.5, state))
    model, grads = mlp(), gradient_stream(mlp(), 2)
    mine, _ = run(optim.chain(halve, optim.scale_by_learning_rate(0.2)), model, grads)
    plain, _ = run(optim.SGD(0.1), model, grads)
    assert_bits_equal(layers.parameters(mine), layers.parameters(plain))


def test_a_state_of_another_form_later_is_named():
    bad = OptaxTuple()
    bad.update = lambda g, state, p, step: (g, {1: 2})
    with pytest.raises(TypeError, match=r"the state .*OptaxTuple.* returned for layers\[0\]\.weight is a "
                                        r"dict"):
        optim.chain(bad).update(mlp(), mlp(), optim.chain(bad).init(mlp()))


def test_an_update_that_is_no_pair_is_named():
    class Forgot:
        def init(self, param):
            return None

        def update(self, grad, state, param, step):
            return grad * 0.5

    opt = optim.chain(Forgot())
    with pytest.raises(TypeError, match=r"Forgot.*\.update gave ndarray for layers\[0\]\.weight; it returns "
                                        r"the pair \(update, state\)"):
        opt.update(mlp(), mlp(), opt.init(mlp()))


def test_fit_resumes_an_optax_state_from_its_checkpoint_bit_for_bit(tmp_path):
    opt = optim.chain(OptaxMomentum(0.9), OptaxTuple(), optim.scale_by_learning_rate(0.05))
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 6)).astype(np.float32), rng.integers(0, 3, 40)

    def fit(epochs, **kwargs):
        return optim.fit(mlp(), losses.SoftmaxCrossEntropy(), opt, x, y, epochs=epochs, batch_size=8,
                         rng=np.random.default_rng(1), progress=False, **kwargs)[0]

    straight = fit(3)
    fit(1, checkpoint=tmp_path)
    resumed = fit(3, checkpoint=tmp_path, resume=tmp_path)
    assert_bits_equal(layers.parameters(resumed), layers.parameters(straight))
    state = optim.load_checkpoint(optim.latest_checkpoint(tmp_path)).state
    assert state.step == 15 and isinstance(state.states[0][0], optim.chain_state.FreeStates)


class NoInit:
    def update(self, grad, state, param, step):
        return grad, state


class OldFlags(optim.Transform):
    state_names = ("trace",)
    elementwise = True

    def update(self, grad, state, param, step):
        return grad, state


class NotNeeds(optim.Transform):
    needs = {"state": ("trace",)}

    def update(self, grad, state, param, step):
        return grad, state


class ScalesWithoutFactor(optim.Transform):
    needs = optim.Needs(scales=True)

    def update(self, grad, state, param, step):
        return grad, state


class OwnInitNoState(optim.Transform):
    def init(self, param):
        return (np.zeros_like(param),)

    def update(self, grad, state, param, step):
        return grad, state


@pytest.mark.parametrize("transform, message", [
    (0.1, r"0\.1 is not a transform: it needs update\(grad, state, param, step\)"),
    (NoInit(), r"declares no needs and has no init of its own; add init\(param\) -> state"),
    (OldFlags(), r"sets state_names, elementwise, which lamina no longer reads; .*needs = optim\.Needs\("),
    (NotNeeds(), r"needs must be an optim\.Needs, got \{'state'"),
    (ScalesWithoutFactor(), r"declares scales=True but has no factor; add factor\(step\) -> float"),
    (OwnInitNoState(), r"has an init of its own but its needs declare no state; declare needs = "
                       r"optim\.Needs"),
], ids=["number", "no init", "0.2 flags", "not Needs", "scales", "own init"])
def test_a_broken_transform_is_told_what_to_add_when_the_chain_is_built(transform, message):
    with pytest.raises(TypeError, match=message):
        optim.chain(transform, optim.scale_by_learning_rate(0.1))
    with pytest.raises(TypeError, match=r"masked: .*" + message):
        optim.masked(transform, lambda path: True)


def test_needs_is_checked_when_made():
    with pytest.raises(TypeError, match=r"state must be a tuple of distinct names"):
        optim.Needs(state=("mu", "mu"))
    with pytest.raises(TypeError, match=r"elementwise must be True or False"):
        optim.Needs(elementwise=1)
    with pytest.raises(TypeError, match=r"whole-tree transform keeps no state"):
        optim.Needs(state=("x",), whole_tree=True)


def test_a_state_no_file_can_hold_is_named():
    class Odd:
        def init(self, param):
            return {1: param}

        def update(self, grad, state, param, step):
            return grad, state

    with pytest.raises(TypeError, match=r"init of layers\[0\]\.weight is a dict.*tuple, list or dict "
                                        r"\(str keys\)"):
        optim.chain(Odd()).init(mlp())


@attrs.frozen(repr=False)
class Halve(optim.Transform):
    """A declared user transform: u = g / 2 (element-wise, a scaling)."""

    name = "halve"
    needs = optim.Needs(elementwise=True, scales=True)

    def factor(self, step):
        return 0.5

    def update(self, grad, state, param, step):
        grad *= 0.5
        return grad, state


def test_a_declared_user_transform_runs_in_place_bit_for_bit():
    opt = optim.chain(optim.trace(0.9), Halve(), optim.scale_by_learning_rate(0.1))
    model, grads = mlp(), gradient_stream(mlp(), 4)
    pure, _ = run(opt, model, grads)
    mine, state = owned(model), owned(opt.init(model))
    for g in grads:
        same, state = opt.update_in_place(mine, owned(g), state)
        assert same is mine
    assert state.plan.model is mine
    assert_bits_equal(layers.parameters(mine), layers.parameters(pure))


# --- masked: where(path, param), asked once ---------------------------------------------------------

def test_where_takes_the_parameter_and_is_asked_once_per_parameter():
    asked = []

    def matrices(path, p):
        asked.append(path)
        return p.ndim >= 2

    opt = optim.chain(optim.masked(optim.add_decayed_weights(0.5), matrices),
                      optim.scale_by_learning_rate(0.1))
    model = mlp()
    zeros = layers.map_parameters(np.zeros_like, model)
    state = opt.init(model)
    assert asked == [path for path, _ in layers.named_parameters(model)]
    new, state = opt.update(model, zeros, state)
    new, state = opt.update(new, zeros, state)
    mine, mine_state = owned(model), owned(opt.init(model))
    for _ in range(2):
        mine, mine_state = opt.update_in_place(mine, owned(zeros), mine_state)
    assert len(asked) == 2 * len(layers.parameters(model))     # the two inits, nothing per update
    for (path, before), after in zip(layers.named_parameters(model), layers.parameters(new)):
        np.testing.assert_allclose(after, before * 0.95 ** 2 if before.ndim == 2 else before, rtol=1e-6)
    assert_bits_equal(layers.parameters(mine), layers.parameters(new))


def test_a_state_made_by_another_chain_is_scheduled_for_this_one():
    model, grads = mlp(), gradient_stream(mlp(), 2)
    weights_only = optim.chain(optim.masked(optim.trace(0.9), lambda path: path.endswith("weight")),
                               optim.scale_by_learning_rate(0.1))
    every = optim.chain(optim.trace(0.9), optim.scale_by_learning_rate(0.1))
    expected, _ = run(every, model, grads)
    mine, _ = run(every, model, grads, weights_only.init(model))
    assert_bits_equal(layers.parameters(mine), layers.parameters(expected))
    owned_model, state = owned(model), owned(weights_only.init(model))
    for g in grads:
        owned_model, state = every.update_in_place(owned_model, owned(g), state)
    assert_bits_equal(layers.parameters(owned_model), layers.parameters(expected))


def test_a_state_from_a_file_asks_where_at_its_first_update(tmp_path):
    asked = []
    opt = optim.chain(optim.masked(optim.trace(0.9),
                                   lambda path: asked.append(path) or path.endswith("weight")),
                      optim.scale_by_learning_rate(0.1))
    model, grads = mlp(), gradient_stream(mlp(), 3)
    straight, _ = run(opt, model, grads)
    write_records(tmp_path / "s.npz", {"state": opt.init(model)}, kind="checkpoint")
    asked.clear()
    resumed, _ = run(opt, model, grads, read_records(tmp_path / "s.npz")[0]["state"])
    assert len(asked) == len(layers.parameters(model))
    assert_bits_equal(layers.parameters(resumed), layers.parameters(straight))
