"""Sharing by identity: one record object at several paths is one set of parameters (DESIGN, "Sharing")."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamina import layers, losses, optim
from lamina.layers.layer import infer
from user_layers import GatedSum

rng = np.random.default_rng(0)
x3 = rng.standard_normal((8, 3))
y3 = rng.standard_normal((8, 3))


def dense(n_in=3, n_out=3, seed=0):
    return layers.Dense.init(np.random.default_rng(seed), n_in, n_out, dtype=np.float64)


def twice():
    d = dense()
    return layers.Sequence([d, layers.Tanh(), d]), d


# ---- the walks
# -----------------------------------------------------------------------------------------------

def test_a_shared_record_is_visited_once_under_its_first_path():
    model, d = twice()
    assert [path for path, _ in layers.named_parameters(model)] == ["layers[0].weight", "layers[0].bias"]
    assert len(layers.parameters(model)) == 2


def test_map_parameters_calls_fn_once_per_shared_record_and_keeps_the_sharing():
    model, _ = twice()
    calls = []
    new = layers.map_parameters(lambda p: calls.append(p) or p * 2, model)
    assert len(calls) == 2 and new.layers[0] is new.layers[2]
    np.testing.assert_array_equal(new.layers[2].weight, 2 * model.layers[0].weight)


def test_two_independent_records_are_two_sets_of_parameters():
    model = layers.Sequence([dense(), layers.Tanh(), dense()])
    assert len(layers.parameters(model)) == 4 and "shared" not in model.summary((3,))


def test_a_record_without_parameters_placed_twice_is_never_reported_as_shared():
    relu = layers.ReLU()
    model = layers.Sequence([dense(), relu, dense(seed=1), relu])
    assert "shared" not in model.summary((3,))


# ---- gradients
# -----------------------------------------------------------------------------------------------

def test_fold_gradients_sums_the_uses_and_places_one_record_at_every_path():
    model, d = twice()
    y, cache = model.forward(x3, layers.EVAL)
    _, grads = model.backward(cache, np.ones_like(y), layers.EVAL)
    assert grads.layers[0] is not grads.layers[2]
    folded = layers.fold_gradients(model, grads)
    assert folded.layers[0] is folded.layers[2]
    np.testing.assert_allclose(folded.layers[0].weight, grads.layers[0].weight + grads.layers[2].weight)
    assert layers.fold_gradients(model, folded) is folded                      # idempotent
    plain = layers.Sequence([dense(), layers.Tanh()])
    _, g = plain.backward(plain.forward(x3, layers.EVAL)[1], np.ones((8, 3)), layers.EVAL)
    assert layers.fold_gradients(plain, g) is g                                # nothing shared: as given


def test_check_gradients_checks_the_summed_gradient(gradient_record):
    model, _ = twice()
    errors = layers.check_gradients(model, x3)
    assert set(errors) == {"input", "layers[0].weight", "layers[0].bias"}
    gradient_record.add(errors, "Dense used twice")


@pytest.mark.parametrize("make", [lambda: optim.SGD(0.1, momentum=0.9), lambda: optim.Adam(1e-2)],
                         ids=["sgd-momentum", "adam"])
def test_an_optimizer_steps_a_shared_record_once_with_the_summed_gradient(make):
    model, d = twice()
    opt = make()
    state = opt.init(model)
    y, cache = model.forward(x3, layers.TRAIN)
    _, grads = model.backward(cache, y - y3, layers.TRAIN)
    new, state = opt.update(model, grads, state)
    assert new.layers[0] is new.layers[2]
    # the same step on the model with the two uses' gradients summed by hand, unshared
    single = layers.Sequence([d])
    total = attrs.evolve(d, weight=grads.layers[0].weight + grads.layers[2].weight,
                         bias=grads.layers[0].bias + grads.layers[2].bias)
    expected, _ = opt.update(single, layers.Sequence([total]), opt.init(single))
    np.testing.assert_array_equal(new.layers[0].weight, expected.layers[0].weight)
    new2, _ = opt.update(new, grads, state)
    assert new2.layers[0] is new2.layers[2]


def test_train_step_keeps_one_record_at_every_path():
    model, d = twice()
    opt = optim.SGD(0.1)
    new, _, _, _ = optim.train_step(model, losses.MSE(), opt, opt.init(model), x3, y3, layers.TRAIN)
    assert new.layers[0] is new.layers[2] and model.layers[0] is d


# ---- summary, buffers, files
# ---------------------------------------------------------------------------------

def test_summary_marks_a_later_use_and_counts_it_once():
    model, _ = twice()
    rows = model.summary((3,)).splitlines()
    assert "shared with layers[0]" in rows[3] and rows[3].endswith(" 0")
    assert rows[1].endswith(" 12") and rows[-1] == "total: 12 parameters (float64)"


def test_a_record_with_buffers_cannot_be_shared():
    norm = layers.BatchNorm.init(3)
    with pytest.raises(ValueError, match=r"BatchNorm record is at layers\[0\] and at layers\[2\].*buffers"):
        layers.Sequence([norm, layers.ReLU(), norm])
    with pytest.raises(ValueError, match="cannot be shared"):
        layers.Residual(layers.Sequence([norm]), shortcut=norm)


def test_a_file_stores_a_shared_record_once_and_loads_one_object_at_every_path(tmp_path):
    d = dense()
    inner = layers.Sequence([d, layers.Tanh()])
    model = layers.Sequence([inner, layers.Residual(inner, shortcut=d), layers.Transposed.init(d, bias=True)])
    layers.save(tmp_path / "m.npz", model)
    back = layers.load(tmp_path / "m.npz")
    assert back == model and back.layers[0] is back.layers[1].inner
    assert back.layers[0].layers[0] is back.layers[1].shortcut is back.layers[2].layer
    import zipfile
    names = zipfile.ZipFile(tmp_path / "m.npz").namelist()
    assert len(names) == 1 + 3                                  # d's weight and bias, the decoder's bias


def test_files_of_format_2_still_load():
    """tests/fixtures/model-0.2.npz: a model saved by lamina 0.2 (format 2), and its output on linspace(-1,
    1)."""
    model = layers.load("tests/fixtures/model-0.2.npz")
    x = np.linspace(-1, 1, 12).reshape(4, 3)
    np.testing.assert_array_equal(model(x), np.load("tests/fixtures/model-0.2-output.npy"))


# ---- random trees with shared records and tuples
# -------------------------------------------------------------

WIDTH = 3


@st.composite
def trees(draw, pool, depth):
    """A random layer (n, 3) -> (n, 3) whose Dense records come from ``pool`` (so some are shared)."""
    kinds = ["dense", "transposed", "tanh"] + (["sequence", "residual", "fork", "parallel", "gated"] * 2
                                                if depth > 0 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "dense":
        return draw(st.sampled_from(pool))
    if kind == "transposed":
        d = draw(st.sampled_from(pool))
        return layers.Transposed(d, rng.normal(size=WIDTH) if draw(st.booleans()) else None)
    if kind == "tanh":
        return layers.Tanh()
    sub = trees(pool, depth - 1)
    if kind == "sequence":
        return layers.Sequence(draw(st.lists(sub, min_size=1, max_size=3)))
    if kind == "residual":
        return layers.Residual(draw(sub), shortcut=draw(st.one_of(st.none(), sub)))
    if kind == "gated":
        return GatedSum(draw(sub), draw(sub))
    fork = layers.Fork(draw(st.lists(sub, min_size=1, max_size=3)))
    if kind == "fork":
        return layers.Sequence([fork, layers.Join("sum")])
    parallel = layers.Parallel([draw(sub) for _ in fork.branches])
    if draw(st.booleans()):
        return layers.Sequence([fork, parallel, layers.Join("sum")])
    back = dense(WIDTH * len(fork.branches), WIDTH, seed=draw(st.integers(0, 2**16)))
    return layers.Sequence([fork, parallel, layers.Join("concat"), back])


@st.composite
def models(draw):
    seed = draw(st.integers(0, 2**16))
    pool = []
    for k in range(draw(st.integers(1, 3))):
        d = dense(seed=seed + k)
        pool.append(attrs.evolve(d, bias=np.random.default_rng(seed + k).normal(size=WIDTH) * 0.5))
    tree = draw(trees(pool, depth=3))
    if draw(st.booleans()):  # a tuple input
        tree = layers.Sequence([layers.Parallel([tree, draw(trees(pool, depth=1))]), layers.Join("sum")])
        x = tuple(np.random.default_rng(seed + i).normal(size=(4, WIDTH)) for i in range(2))
    else:
        x = np.random.default_rng(seed).normal(size=(4, WIDTH))
    return tree, x


@settings(max_examples=30)
@given(case=models())
def test_random_trees_with_shared_records_and_tuples_pass_the_gradient_check(case, gradient_record):
    tree, x = case
    # wiring mistakes give errors of order 1; deep trees lose digits to rounding (see test_nested_gradients)
    errors = layers.check_gradients(tree, x, tol=1e-3)
    n_inputs = len(x) if type(x) is tuple else 1
    assert len(errors) == n_inputs + len(layers.parameters(tree))
    gradient_record.add(errors, "random tree with sharing")


def test_a_user_record_holding_a_shared_batch_norm_is_refused_at_the_outermost_call():
    @attrs.frozen
    class Twice:
        inner: object

        def forward(self, x, mode):
            return x, None

        def backward(self, cache, dy, mode):
            return dy, self

    @attrs.frozen
    class Pair:
        a: object
        b: object

        def forward(self, x, mode):
            return x, None

        def backward(self, cache, dy, mode):
            return dy, self

    norm = layers.BatchNorm.init(3)
    with pytest.raises(ValueError, match=r"the same BatchNorm record is at a and at b"):
        infer(Pair(norm, norm), x3)
    assert infer(Twice(norm), x3).shape == x3.shape


def test_two_models_that_share_differently_are_told_apart_by_path():
    from lamina.layers.records.tree import check_same_sharing
    model, d = twice()
    check_same_sharing(model, layers.map_parameters(lambda p: p + 1, model))
    untied = layers.Sequence([d, layers.Tanh(), dense()])
    with pytest.raises(ValueError, match=r"at layers\[2\]: the model shares it with layers\[0\], but the "
                                         r"checkpoint does not share it"):
        check_same_sharing(model, untied)
