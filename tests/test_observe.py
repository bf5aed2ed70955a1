"""Mode.observe: called after each child's forward with its full path, the child and its output, through
nested combinators; observing never changes a run's numbers and never draws from the rng."""

from __future__ import annotations

import numpy as np
import pytest

from comparisons import same_bits

from lamina import layers, losses, optim


def dense(n_in, n_out, seed=0, dtype=np.float32):
    return layers.Dense.init(np.random.default_rng(seed), n_in, n_out, dtype=dtype)


def model_():
    return layers.Sequence([
        dense(4, 6, 1), layers.BatchNorm.init(6), layers.ReLU(),
        layers.Residual(layers.Sequence([dense(6, 6, 2), layers.Dropout(0.3), layers.Tanh()]),
                        shortcut=dense(6, 6, 3)),
        layers.Concat([dense(6, 2, 4), layers.Sequence([layers.LayerNorm.init(6), dense(6, 1, 5)])]),
        dense(3, 3, 6),
    ])


ORDER = ["layers[0]", "layers[1]", "layers[2]",
         "layers[3].inner.layers[0]", "layers[3].inner.layers[1]", "layers[3].inner.layers[2]",
         "layers[3].inner",
         "layers[3].shortcut", "layers[3]",
         "layers[4].branches[0]", "layers[4].branches[1].layers[0]", "layers[4].branches[1].layers[1]",
         "layers[4].branches[1]", "layers[4]", "layers[5]"]

x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
y = np.random.default_rng(1).integers(0, 3, size=16)


def reach(model, path):
    """The record at ``path`` ('layers[3].inner.layers[1]')."""
    record = model
    for part in path.split("."):
        name, _, index = part.partition("[")
        record = getattr(record, name)
        if index:
            record = record[int(index[:-1])]
    return record


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_observe_is_called_after_each_child_with_its_full_path_the_child_and_its_output(train):
    model = model_()
    calls = []
    mode = layers.Mode(train=train, rng=np.random.default_rng(0),
                       observe=lambda path, layer, out: calls.append((path, layer, out.copy())))
    out, _ = model.forward(x, mode)
    assert [path for path, _, _ in calls] == ORDER
    for path, layer, seen in calls:
        assert layer is reach(model, path)
    outputs = {path: seen for path, _, seen in calls}
    np.testing.assert_array_equal(outputs["layers[5]"], out)
    # each output is what the child gives for its input (inference: no randomness to replay)
    if not train:
        np.testing.assert_array_equal(outputs["layers[3].inner.layers[0]"],
                                      model.layers[3].inner.layers[0](outputs["layers[2]"]))
        np.testing.assert_array_equal(outputs["layers[3]"],
                                      outputs["layers[3].inner"] + outputs["layers[3].shortcut"])
        np.testing.assert_array_equal(outputs["layers[4]"], np.concatenate(
            [outputs["layers[4].branches[0]"], outputs["layers[4].branches[1]"]], axis=1))
    assert outputs["layers[3].inner.layers[0]"].shape == (16, 6) and outputs["layers[4]"].shape == (16, 3)


def test_observe_on_a_lone_combinator_uses_paths_relative_to_it():
    block = layers.Residual(layers.Sequence([dense(4, 4), layers.ReLU()]))
    calls = []
    block.forward(x, layers.Mode(observe=lambda path, layer, out: calls.append(path)))
    assert calls == ["inner.layers[0]", "inner.layers[1]", "inner"]


def test_observing_gives_the_same_bits_and_draws_nothing_from_the_rng():
    model = model_()
    results = []
    for observe in (None, lambda path, layer, out: float(np.abs(out).mean())):
        rng = np.random.default_rng(7)
        mode = layers.Mode(train=True, rng=rng, observe=observe)
        out, cache = model.forward(x, mode)
        dx, grads = model.backward(cache, np.ones_like(out), mode)
        results.append((out, dx, grads, rng.bit_generator.state))
    (o1, d1, g1, s1), (o2, d2, g2, s2) = results
    assert o1.tobytes() == o2.tobytes() and d1.tobytes() == d2.tobytes() and same_bits(g1, g2) and s1 == s2


class Observer:
    """A callback that turns observation on from the first batch and keeps a statistic per layer."""

    def __init__(self):
        self.stats, self.paths = {}, set()

    def on_train_begin(self, run):
        run.observe = self.observe

    def observe(self, path, layer, out):
        self.paths.add(path)
        self.stats.setdefault(path, []).append(float(out.std()))


class Peek:
    """A callback that observes every other batch only (run.observe set and cleared)."""

    def on_batch_end(self, run):
        run.observe = (lambda path, layer, out: None) if run.batch % 2 else None


@pytest.mark.parametrize("callback", [Observer, Peek])
def test_fit_with_an_observing_callback_gives_bit_for_bit_the_same_model(callback):
    results = []
    for callbacks in ((), (callback(),)):
        rng = np.random.default_rng(3)
        trained, history = optim.fit(model_(), losses.SoftmaxCrossEntropy(), optim.Adam(1e-2), x, y, epochs=3,
                                     batch_size=4, rng=rng, progress=False, threads=1, callbacks=callbacks)
        results.append((trained, history["loss"], rng.bit_generator.state, callbacks))
    (m1, l1, s1, _), (m2, l2, s2, cbs) = results
    assert same_bits(m1, m2)
    assert [b.tobytes() for b in layers.buffers(m1)] == [b.tobytes() for b in layers.buffers(m2)]
    assert l1 == l2 and s1 == s2
    if callback is Observer:
        assert cbs[0].paths == set(ORDER) and len(cbs[0].stats["layers[3].inner.layers[1]"]) == 3 * 4


def test_train_step_with_an_observer_gives_the_same_step():
    model, loss, opt = model_(), losses.SoftmaxCrossEntropy(), optim.SGD(0.1, momentum=0.9)
    steps = []
    for observe in (None, lambda path, layer, out: None):
        rng = np.random.default_rng(0)
        mode = layers.Mode(train=True, rng=rng, observe=observe)
        step = optim.train_step(model, loss, opt, opt.init(model), x, y, mode)
        steps.append(step + (rng.bit_generator.state,))
    (m1, _, v1, p1, s1), (m2, _, v2, p2, s2) = steps
    assert same_bits(m1, m2) and v1 == v2 and p1.tobytes() == p2.tobytes() and s1 == s2
