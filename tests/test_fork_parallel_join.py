"""Fork, Parallel and Join: several inputs and outputs (tuples), and Concat as Fork then Join("concat")."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import layers

rng = np.random.default_rng(0)
x4 = rng.standard_normal((6, 4))
x2 = rng.standard_normal((6, 2))


def dense(n_in, n_out, seed=0):
    return layers.Dense.init(np.random.default_rng(seed), n_in, n_out, dtype=np.float64)


def two_heads():
    return layers.Sequence([dense(4, 5), layers.ReLU(), layers.Fork([dense(5, 3, 1), dense(5, 1, 2)])])


def two_inputs():
    parallel = layers.Parallel([dense(4, 3, 1), dense(2, 3, 2)])
    return layers.Sequence([parallel, layers.Join("concat"), dense(6, 1)])


def test_fork_gives_the_tuple_of_its_branches_outputs():
    model = two_heads()
    y = model(x4)
    h = model.layers[1](model.layers[0](x4))
    assert type(y) is tuple and len(y) == 2
    np.testing.assert_array_equal(y[0], model.layers[2].branches[0](h))
    assert model.output_shape((4,)) == [(3,), (1,)]


def test_parallel_runs_branch_i_on_input_i_and_join_concatenates():
    model = two_inputs()
    p = model.layers[0]
    expected = model.layers[2](np.concatenate([p.branches[0](x4), p.branches[1](x2)], axis=-1))
    np.testing.assert_allclose(model((x4, x2)), expected, rtol=1e-13)
    assert model.output_shape([(4,), (2,)]) == (1,)


def test_join_sum_adds_and_concat_equals_fork_then_join():
    a, b = dense(4, 3, 1), dense(4, 3, 2)
    np.testing.assert_allclose(layers.Sequence([layers.Fork([a, b]), layers.Join("sum")])(x4), a(x4) + b(x4))
    fork_join = layers.Sequence([layers.Fork([a, b]), layers.Join("concat")])
    np.testing.assert_array_equal(layers.Concat([a, b])(x4), fork_join(x4))


@pytest.mark.parametrize("train", [False, True])
def test_gradients_of_tuple_inputs_and_outputs(train, gradient_record):
    mixed = layers.Sequence([layers.Fork([dense(4, 2), layers.Dropout(0.3)]),
                             layers.Parallel([layers.Tanh(), dense(4, 2, 3)]), layers.Join("sum")])
    for model, x in ((two_inputs(), (x4, x2)), (two_heads(), x4), (mixed, x4)):
        errors = layers.check_gradients(model, x, train=train)
        assert ("input[1]" in errors) == (type(x) is tuple)
        gradient_record.add(errors, f"tuples train={train}")


def test_input_grad_false_gives_a_tuple_of_nones_for_a_tuple_input():
    model = two_inputs()
    y, cache = model.forward((x4, x2), layers.TRAIN)
    dx, _ = model.backward(cache, np.ones_like(y), layers.Mode(train=True, input_grad=False))
    assert dx == (None, None)
    dx, _ = model.backward(cache, np.ones_like(y), layers.TRAIN)
    assert [d.shape for d in dx] == [(6, 4), (6, 2)]


def test_summary_has_a_row_per_branch_with_its_shape():
    text = two_heads().summary((4,))
    row = next(line for line in text.splitlines() if line.startswith("layers[2] "))
    assert row.split()[1:3] == ["Fork(2", "branches)"] and "[(n, 3), (n, 1)]" in row
    assert "  layers[2].branches[1]" in text and "(n, 1)" in text.splitlines()[-2]
    text = two_inputs().summary([(4,), (2,)])
    assert "  layers[0].branches[1]  Dense(2 -> 3, float64)  (n, 3)" in text


def test_bad_tuples_are_refused_naming_the_input_and_the_path():
    model = two_inputs()
    with pytest.raises(layers.ShapeError, match=r"^layers\[0\] Parallel\(2 branches\) expects a tuple of 2 "
                                                r"inputs \(x0, x1\), one per branch, but got a tuple of 3"):
        model((x4, x2, x2))
    with pytest.raises(layers.ShapeError, match="input 0's 6 samples, but got input 1 with 5"):
        model((x4, x2[:5]))
    with pytest.raises(TypeError, match=r"pass a tuple: \(x0, x1\)"):
        model([x4, x2])
    bad = x2.copy()
    bad[4, 1] = np.inf
    with pytest.raises(ValueError, match="model input 1 row 4 holds NaN or inf"):
        model((x4, bad))
    with pytest.raises(ValueError, match="model input 1 row 4 holds NaN or inf"):
        model.forward((x4, bad), layers.EVAL)
    with pytest.raises(layers.ShapeError) as caught:
        model((x4, x4))
    assert caught.value.path == "layers[0].branches[1]" and caught.value.source == "input 1 of layers[0]"
    with pytest.raises(layers.ShapeError) as caught:
        summed = layers.Sequence([layers.Parallel([dense(4, 3), dense(2, 2)]), layers.Join("sum")])
        summed.output_shape([(4,), (2,)])
    assert ("every input shaped like input 0's (n, 3), but input 1 of layers[1] gives (n, 2)"
            in str(caught.value))
    assert caught.value.path == "layers[1]"
    with pytest.raises(layers.ShapeError) as caught:
        layers.Sequence([layers.Sequence([layers.Parallel([dense(4, 3), dense(2, 2)])])])((x4, x4))
    assert caught.value.source == "input 1 of layers[0].layers[0]"
    with pytest.raises(layers.ShapeError, match="Join\\('concat'\\) expects a tuple of inputs"):
        layers.Join("concat").forward(x4, layers.EVAL)
    with pytest.raises(layers.LayerError, match="how must be 'concat'"):
        layers.Join("mean")


def test_a_large_tuple_input_runs_in_chunks_with_the_whole_batch_numbers():
    model = two_inputs()
    big = (rng.standard_normal((3000, 4)), rng.standard_normal((3000, 2)))
    np.testing.assert_allclose(model(big), model.forward(big, layers.EVAL)[0], rtol=1e-12)
    heads = two_heads()(big[0])
    assert [h.shape for h in heads] == [(3000, 3), (3000, 1)]


def test_observe_names_branches_and_files_keep_the_tuples(tmp_path):
    seen = []
    model = two_inputs()
    model.forward((x4, x2), layers.Mode(observe=lambda path, layer, y: seen.append(path)))
    assert seen[:3] == ["layers[0].branches[0]", "layers[0].branches[1]", "layers[0]"]
    layers.save(tmp_path / "t.npz", model)
    assert layers.load(tmp_path / "t.npz") == model
