"""optim.chain: composition, masked, buffers, purity, in place (bit for bit the pure update), saved states."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from lamina import layers, optim
from lamina.layers.files.model_file import read_records, write_records
from lamina.layers.records.parameter import owned_buffer
from lamina.optim import executor
from lamina.optim.in_place import owned

OPTIMIZERS = {
    "SGD": optim.SGD(0.1),
    "SGD momentum": optim.SGD(0.05, momentum=0.9, weight_decay=1e-2),
    "SGD nesterov clip": optim.SGD(optim.Cosine(0.1, total=50, warmup=5), momentum=0.9, nesterov=True,
                                   clip_norm=0.5),
    "Adam": optim.Adam(1e-2, weight_decay=1e-3),
    "Adam clip schedule": optim.Adam(optim.StepDecay(1e-2, 0.5, 10), clip_norm=1.0),
    "AdamW": optim.AdamW(1e-2),
    "RMSprop": optim.RMSprop(1e-2),
    "RMSprop centered momentum": optim.RMSprop(1e-2, centered=True, momentum=0.9, weight_decay=1e-3,
                                               clip_norm=2.0),
    "user chain": optim.chain(optim.clip_by_global_norm(1.0),
                              optim.masked(optim.add_decayed_weights(0.1),
                                           lambda path: not path.endswith("bias")),
                              optim.scale_by_adam(), optim.scale_by_learning_rate(1e-2)),
}


@layers.register
@attrs.frozen
class Counted(layers.Layer):
    """y = x * weight; ``seen`` counts the samples it trained on (a buffer, as batch norm's running stats)."""

    weight: np.ndarray = layers.param()
    seen: np.ndarray = layers.buffer()

    def forward(self, x, mode):
        return x * self.weight, x

    def backward(self, x, dy, mode):
        seen = self.seen + len(x) if mode.train else self.seen
        return dy * self.weight, Counted(weight=(dy * x).sum(axis=0), seen=seen)


def mlp(seed=0, sizes=(6, 5, 3)):
    return layers.mlp(np.random.default_rng(seed), list(sizes))


def gradient_stream(model, n, seed=1, tiny_after=None):
    """``n`` gradient records of random normals.

    With ``tiny_after``: every other entry gets 1e-36 times its normal up to that step and 0 after
    it, so its moments decay into the subnormals (float32) before the flush of update 64.
    """
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n):
        def draw(p):
            g = rng.standard_normal(p.shape)
            if tiny_after is not None:
                g.reshape(-1)[::2] *= 1e-36 if t < tiny_after else 0.0
            return g.astype(p.dtype)
        out.append(layers.map_parameters(draw, model))
    return out


def arrays_of(model, state):
    return layers.parameters(model) + [a for records in state.states for r in records
                                       for a in layers.parameters(r)]


def assert_bits_equal(xs, ys):
    assert len(xs) == len(ys)
    for x, y in zip(xs, ys):
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


# --- the chain -------------------------------------------------------------------------------

def test_the_named_optimizers_are_chains_of_optax_transforms():
    assert repr(optim.AdamW(clip_norm=1.0).chain) == (
        "chain(clip_by_global_norm(max_norm=1.0), scale_by_adam(b1=0.9, b2=0.999, eps=1e-08), "
        "add_decayed_weights(weight_decay=0.01), scale_by_learning_rate(learning_rate=0.001))")
    assert repr(optim.SGD(0.1, momentum=0.9).chain) == \
        "chain(trace(decay=0.9, nesterov=False), scale_by_learning_rate(learning_rate=0.1))"


def test_a_user_chain_equals_the_named_optimizer_it_spells():
    model, grads = mlp(), gradient_stream(mlp(), 5)
    mine = optim.chain(optim.add_decayed_weights(1e-2), optim.trace(0.9), optim.scale_by_learning_rate(0.05))
    named = optim.SGD(0.05, momentum=0.9, weight_decay=1e-2)
    runs = []
    for opt in (mine, named):
        m, s = model, opt.init(model)
        for g in grads:
            m, s = opt.update(m, g, s)
        runs.append(arrays_of(m, s))
    assert_bits_equal(*runs)


def test_chains_nest_and_print_as_written():
    inner = optim.chain(optim.scale_by_adam(), optim.scale_by_learning_rate(1e-3))
    outer = optim.chain(optim.clip_by_global_norm(1.0), inner)
    assert outer.transforms == (optim.clip_by_global_norm(1.0), *inner.transforms)
    assert repr(optim.masked(optim.add_decayed_weights(0.1), mlp)) == \
        "masked(add_decayed_weights(weight_decay=0.1), where=mlp)"


def test_something_else_is_not_a_transform():
    with pytest.raises(TypeError, match=r"chain: 0\.1 is not a transform"):
        optim.chain(0.1)


def test_the_rate_is_the_learning_rate_transform_s():
    assert optim.SGD(optim.StepDecay(1.0, 0.5, 1)).rate(2) == 0.25
    assert optim.chain(optim.scale_by_adam()).rate(0) is None


def test_a_schedule_that_gives_a_bad_rate_is_refused_at_that_step():
    opt = optim.Adam(lambda step: 1e-3 if step == 0 else -1.0)
    model, grads = mlp(), gradient_stream(mlp(), 2)
    model, state = opt.update(model, grads[0], opt.init(model))
    with pytest.raises(ValueError, match=r"schedule gave -1\.0 at step 1"):
        opt.update(model, grads[1], state)


# --- masked -----------------------------------------------------------------------------------

def test_a_frozen_layer_stays_bit_for_bit():
    model, grads = mlp(), gradient_stream(mlp(), 4)
    opt = optim.chain(optim.scale_by_adam(), optim.scale_by_learning_rate(0.1),
                      optim.masked(optim.set_to_zero(), lambda path: path.startswith("layers[0]")))
    new, state = model, opt.init(model)
    for g in grads:
        new, state = opt.update(new, g, state)
    for (path, before), after in zip(layers.named_parameters(model), layers.parameters(new)):
        if path.startswith("layers[0]"):
            assert after.tobytes() == before.tobytes(), path
        else:
            assert not np.array_equal(after, before), path


def test_no_decay_on_biases():
    # lr 0.1, weight decay 0.5 on weights only, zero gradients: a weight w becomes w (1 - 0.05), a bias stays
    rng = np.random.default_rng(0)
    model = layers.Sequence([layers.Dense(weight=rng.standard_normal((3, 2)), bias=np.array([1.0, -2.0]))])
    opt = optim.chain(optim.masked(optim.add_decayed_weights(0.5), lambda path: not path.endswith("bias")),
                      optim.scale_by_learning_rate(0.1))
    new, _ = opt.update(model, layers.map_parameters(np.zeros_like, model), opt.init(model))
    np.testing.assert_array_equal(new.layers[0].bias, [1.0, -2.0])
    np.testing.assert_allclose(new.layers[0].weight, model.layers[0].weight * 0.95, rtol=1e-15)


def test_a_masked_state_is_left_alone_where_the_mask_is_false():
    model, grads = mlp(), gradient_stream(mlp(), 2)
    opt = optim.chain(optim.masked(optim.trace(0.9), lambda path: path.endswith("weight")),
                      optim.scale_by_learning_rate(0.1))
    state = opt.init(model)
    _, state = opt.update(model, grads[0], state)
    velocity = dict(layers.named_parameters(state.states[0][0]))
    assert not velocity["layers[0].bias"].any() and velocity["layers[0].weight"].any()


# --- buffers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_buffers_are_taken_from_the_gradients_never_stepped_or_decayed(name):
    opt = OPTIMIZERS[name]
    model = layers.Sequence([Counted(weight=np.array([1.0, 2.0]), seen=np.array([0.0, 0.0])), layers.Tanh()])
    x = np.ones((3, 2))
    mode = layers.Mode(train=True, input_grad=False)
    _, cache = model.forward(x, mode)
    _, grads = model.backward(cache, np.ones((3, 2)), mode)
    new, state = opt.update(model, grads, opt.init(model))
    np.testing.assert_array_equal(new.layers[0].seen, [3.0, 3.0])        # the new value, as it is
    assert not np.array_equal(new.layers[0].weight, model.layers[0].weight)
    # in place: the model's own buffer takes the new value
    mine, state = owned(model), owned(opt.init(model))
    same, state = opt.update_in_place(mine, owned(grads), state)
    assert same is mine
    np.testing.assert_array_equal(mine.layers[0].seen, [3.0, 3.0])
    assert_bits_equal(layers.parameters(mine), layers.parameters(new))


# --- purity -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_update_changes_nothing_it_is_given(name):
    opt = OPTIMIZERS[name]
    model = mlp()
    grads = gradient_stream(model, 1)[0]
    state = opt.init(model)
    model, state = opt.update(model, grads, state)   # a state with values in it
    before = [a.copy() for a in arrays_of(model, state) + layers.parameters(grads)]
    new, new_state = opt.update(model, grads, state)
    assert_bits_equal(arrays_of(model, state) + layers.parameters(grads), before)
    assert new_state.step == state.step + 1 and new is not model
    for a in arrays_of(new, new_state):
        assert not a.flags.writeable and owned_buffer(a) is None  # nobody can write them, not even the loop


# --- the in-place path ------------------------------------------------------------------------

def run_pure(opt, model, grads):
    state = opt.init(model)
    for g in grads:
        model, state = opt.update(model, g, state)
    return model, state


def run_in_place(opt, model, grads):
    model, state = owned(model), owned(opt.init(model))
    for g in grads:
        same, state = opt.update_in_place(model, owned(g), state)
        assert same is model
    return model, state


@pytest.mark.parametrize("blocked", [False, True], ids=["whole", "blocks"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_in_place_is_bit_for_bit_the_pure_update(name, blocked, monkeypatch):
    """70 steps in which half the moments decay into the subnormals: the flush after update 64 zeroes them."""
    if blocked:
        monkeypatch.setattr(executor, "BLOCK_BYTES", 40)  # 10 float32: the (6, 5) weight goes in 3 blocks
    opt = OPTIMIZERS[name]
    model = mlp()
    grads = gradient_stream(model, optim.FLUSH_EVERY + 6, tiny_after=20)
    pure, pure_state = run_pure(opt, model, grads)
    mine, state = run_in_place(opt, model, grads)
    assert state.step == pure_state.step == len(grads)
    assert_bits_equal(arrays_of(mine, state), arrays_of(pure, pure_state))
    pieces = [len(param.pieces) for param in state.plan.slots]
    assert (max(pieces) > 1) == blocked


def test_the_flush_zeroes_subnormal_moments_in_both_paths():
    opt = optim.Adam(1e-3)
    model = mlp()
    tiny = np.finfo(np.float32).tiny
    # m = 0.1 * 20 tiny = 2 tiny after the first update, then 0.9 m a step: subnormal from update 8 on
    grads = [layers.map_parameters(lambda p: np.full_like(p, 20 * tiny), model)]
    grads += [layers.map_parameters(np.zeros_like, model)] * (optim.FLUSH_EVERY - 1)
    for state in (run_pure(opt, model, grads[:-1])[1], run_pure(opt, model, grads)[1]):
        mu = np.concatenate([a.ravel() for a in layers.parameters(state.states[0][0])])
        subnormal = (mu != 0) & (np.abs(mu) < tiny)
        assert subnormal.any() == (state.step < optim.FLUSH_EVERY)
    assert_bits_equal(arrays_of(*run_in_place(opt, model, grads)), arrays_of(*run_pure(opt, model, grads)))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_in_place_never_writes_the_gradients(name, monkeypatch):
    """Callbacks read the gradients after the step: the in-place path reads them only (blocked or not)."""
    monkeypatch.setattr(executor, "BLOCK_BYTES", 40)
    opt = OPTIMIZERS[name]
    model, state = owned(mlp()), owned(opt.init(mlp()))
    for g in gradient_stream(mlp(), 3):
        mine = owned(g)
        _, state = opt.update_in_place(model, mine, state)
        assert_bits_equal(layers.parameters(mine), layers.parameters(g))


def test_a_not_elementwise_transform_is_never_blocked(monkeypatch):
    @attrs.frozen(repr=False)
    class ScaleToUnitNorm(optim.Transform):
        """u = g / ||g||: the whole array's norm."""
        name = "scale_to_unit_norm"

        def update(self, g, state, p, step):
            g /= np.linalg.norm(g)
            return g, state

    monkeypatch.setattr(executor, "BLOCK_BYTES", 40)
    opt = optim.chain(ScaleToUnitNorm(), optim.scale_by_learning_rate(0.1))
    model, grads = mlp(), gradient_stream(mlp(), 3)
    mine, state = run_in_place(opt, model, grads)
    assert all(len(param.pieces) == 1 for param in state.plan.slots)
    assert_bits_equal(arrays_of(mine, state), arrays_of(*run_pure(opt, model, grads)))


def test_the_plan_is_made_once_and_kept_while_the_same_records_come_back():
    opt = optim.Adam()
    model, state = owned(mlp()), owned(opt.init(mlp()))
    plans = []
    for g in gradient_stream(mlp(), 3):
        _, state = opt.update_in_place(model, owned(g), state)
        plans.append(state.plan)
    assert plans[0] is plans[1] is plans[2]


def test_not_owned_falls_back_to_the_pure_update():
    opt = optim.SGD(0.1, momentum=0.9)
    model, grads = mlp(), gradient_stream(mlp(), 2)
    new, state = opt.update_in_place(model, grads[0], opt.init(model))
    pure, pure_state = opt.update(model, grads[0], opt.init(model))
    assert new is not model and state.plan.model is None   # not bound to any buffers
    assert_bits_equal(arrays_of(new, state), arrays_of(pure, pure_state))
    np.testing.assert_array_equal(layers.parameters(model)[0], layers.parameters(mlp())[0])  # untouched


def test_a_gradient_sharing_a_parameter_s_buffer_is_not_used_as_scratch():
    """A user layer may hand back its own parameter array as gradient: the update still reads it as it was."""
    opt = optim.SGD(0.1, momentum=0.9)
    model = owned(mlp())
    grads = layers.map_parameters(lambda p: p, model)       # the very same arrays
    expected, _ = opt.update(owned(mlp()), mlp(), opt.init(mlp()))
    new, _ = opt.update_in_place(model, grads, owned(opt.init(model)))
    assert_bits_equal(layers.parameters(new), layers.parameters(expected))


def test_mismatched_gradients_are_refused_in_place_too():
    opt = optim.SGD(0.1)
    model, state = owned(mlp()), owned(opt.init(mlp()))
    with pytest.raises(layers.StructureError, match=r"layers\[2\]\.weight"):
        opt.update_in_place(model, mlp(sizes=(6, 5, 4)), state)


def test_a_wrong_state_is_named():
    model = mlp()
    with pytest.raises(ValueError, match=r"opt\.init\(model\)"):
        optim.Adam().update(model, model, optim.SGD(0.1).init(model))
    with pytest.raises(layers.StructureError, match=r"optimizer state"):
        optim.Adam().update(model, model, optim.Adam().init(mlp(sizes=(6, 4, 3))))


# --- states are data ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_saved_state_resumes_bit_for_bit(name, tmp_path):
    opt = OPTIMIZERS[name]
    model = mlp()
    grads = gradient_stream(model, 12)
    straight, straight_state = run_pure(opt, model, grads)
    half, half_state = run_pure(opt, model, grads[:5])
    write_records(tmp_path / "state.npz", {"model": half, "state": half_state}, kind="checkpoint")
    records, _, _ = read_records(tmp_path / "state.npz")
    assert records["state"] == half_state and isinstance(records["state"], optim.ChainState)
    resumed, state = records["model"], records["state"]
    for g in grads[5:]:
        resumed, state = opt.update(resumed, g, state)
    assert_bits_equal(arrays_of(resumed, state), arrays_of(straight, straight_state))
