"""Protocol v2: old-protocol layers refused with advice, layers.Layer's __call__ and output_shape, a user
layer everywhere without changes to lamina, Mode and its ready-made values, a missing rng named by path, a
record placed twice, read-only parameters, and a float64 batch into a float32 model computing in float32
throughout."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
from user_layers import Scale

from lamina import layers, losses, optim

ADVICE = r"forward\(self, x, mode\) -> \(y, cache\) and backward\(self, cache, dy, mode\)"


@attrs.frozen
class OldScale:
    """The same layer written for the old protocol (no mode)."""

    gain: np.ndarray = layers.param()

    def forward(self, x):
        return x * self.gain, x

    def backward(self, x, dy):
        return dy * self.gain, OldScale(gain=(dy * x).sum(axis=0))


@attrs.frozen
class HalfOld:
    """Forward moved to v2, backward forgotten."""

    gain: np.ndarray = layers.param()

    def forward(self, x, mode):
        return x * self.gain, x

    def backward(self, x, dy):
        return dy * self.gain, HalfOld(gain=(dy * x).sum(axis=0))


def dense(n_in, n_out, seed=0, dtype=np.float32):
    return layers.Dense.init(np.random.default_rng(seed), n_in, n_out, dtype=dtype)


def gain(n=3, dtype=np.float32):
    return np.linspace(0.5, 1.5, n).astype(dtype)


x3 = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
y3 = np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32)


# ---- the old protocol ---------------------------------------------------------------------------------

OLD_PLACES = {
    "Sequence": lambda old: layers.Sequence([dense(3, 3), old]),
    "Residual": lambda old: layers.Residual(old),
    "Concat": lambda old: layers.Concat([layers.ReLU(), old]),
    "fit": lambda old: optim.fit(old, losses.MSE(), optim.SGD(0.1), x3, y3, epochs=1, batch_size=4,
                                 rng=np.random.default_rng(0), progress=False),
    "train_step": lambda old: optim.train_step(old, losses.MSE(), optim.SGD(0.1), None, x3, y3, layers.TRAIN),
    "check_gradients": lambda old: layers.check_gradients(old, x3.astype(np.float64)),
    "evaluate": lambda old: optim.evaluate(old, losses.MSE(), x3, y3),
}
PREFIX = {"Sequence": r"Sequence: layers\[1\] ", "Residual": "Residual: inner ",
          "Concat": r"Concat: branches\[1\] ",
          "fit": "fit: the model ", "train_step": "train_step: the model ", "check_gradients": "",
          "evaluate": "evaluate: the model "}


@pytest.mark.parametrize("place", OLD_PLACES)
def test_an_old_protocol_layer_gets_a_type_error_at_build_saying_what_to_change(place):
    with pytest.raises(TypeError, match=rf"^{PREFIX[place]}OldScale: its forward does not take \(x, "
                                        rf"mode\).*{ADVICE}"):
        OLD_PLACES[place](OldScale(gain=gain()))


def test_a_layer_with_only_its_backward_left_on_the_old_protocol_is_named_too():
    with pytest.raises(TypeError, match=r"layers\[0\] HalfOld: its backward does not take \(cache, dy, "
                                        rf"mode\).*{ADVICE}"):
        layers.Sequence([HalfOld(gain=gain()), layers.ReLU()])


def test_something_that_is_not_a_record_is_refused():
    with pytest.raises(TypeError, match=r"layers\[1\] must be a layer record .* got ufunc"):
        layers.Sequence([dense(3, 3), np.tanh])


# ---- layers.Layer -----------------------------------------------------------------------------------------

def test_layer_base_gives_call_as_eval_forward_bit_for_bit_and_unknown_output_shape():
    s = Scale(gain=gain())
    assert s.output_shape((3,)) is None and s.output_shape(None) is None
    x = np.random.default_rng(2).normal(size=(3000, 3)).astype(np.float32)   # more than one chunk
    y = s(x)
    assert y.dtype == np.float32
    assert y.tobytes() == s.forward(x, layers.EVAL)[0].tobytes()


def test_call_of_a_model_is_its_eval_forward_bit_for_bit_over_chunks():
    model = layers.Sequence([dense(3, 16), layers.ReLU(), layers.Dropout(0.5),
                             layers.Residual(layers.Sequence([layers.BatchNorm.init(16), dense(16, 16, 1)])),
                             layers.Concat([dense(16, 2, 2), Scale(gain=gain(16))])])
    x = np.random.default_rng(3).normal(size=(2600, 3)).astype(np.float32)
    assert model(x).tobytes() == model.forward(x, layers.EVAL)[0].tobytes()


def test_a_model_of_user_layers_in_a_sequence_has_unknown_shapes_in_its_summary():
    model = layers.Sequence([Scale(gain=gain()), dense(3, 2)])
    assert model.output_shape((3,)) == (2,)
    assert "?" in model.summary((3,)).splitlines()[1]


# ---- a user layer works everywhere
# --------------------------------------------------------------------------

COMBINED = {
    "alone": lambda: Scale(gain=gain()),
    "Sequence": lambda: layers.Sequence([Scale(gain=gain()), dense(3, 3), layers.Tanh(), Scale(gain=gain())]),
    "Residual": lambda: layers.Residual(layers.Sequence([dense(3, 3), Scale(gain=gain())]),
                                        shortcut=Scale(gain=gain())),
    "Concat": lambda: layers.Sequence([layers.Concat([Scale(gain=gain()), dense(3, 2)]), dense(5, 3, 1)]),
    "nested": lambda: layers.Sequence([layers.Residual(layers.Concat([Scale(gain=gain(3)), layers.Sequence([
        dense(3, 1), Scale(gain=gain(1))])]), shortcut=dense(3, 4, 2)), layers.Tanh(),
        layers.BatchNorm.init(4), dense(4, 3, 3)]),
}


@pytest.mark.parametrize("where", COMBINED)
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_a_user_layer_passes_the_gradient_checks_in_every_combinator(where, train, gradient_record):
    errors = layers.check_gradients(COMBINED[where](), x3[:5], train=train)
    gradient_record.add(errors, f"user Scale {where}")


OPTIMIZERS = {"SGD": lambda: optim.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
              "Adam": lambda: optim.Adam(1e-2, weight_decay=1e-3), "AdamW": lambda: optim.AdamW(1e-2),
              "RMSprop": lambda: optim.RMSprop(1e-2, momentum=0.5, centered=True, clip_norm=1.0)}


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("where", COMBINED)
def test_a_user_layer_trains_with_every_optimizer_in_fit_and_in_train_step(name, where):
    model = COMBINED[where]()
    loss = losses.MSE()
    before = optim.evaluate(model, loss, x3, y3)["loss"]
    trained, history = optim.fit(model, loss, OPTIMIZERS[name](), x3, y3, epochs=15, batch_size=4,
                                 rng=np.random.default_rng(0), progress=False, threads=1)
    assert history["loss"][-1] < history["loss"][0] and optim.evaluate(trained, loss, x3, y3)["loss"] < before
    assert type(trained) is type(model) and layers.parameters(trained)[0].dtype == np.float32
    opt = OPTIMIZERS[name]()
    stepped, state, value, pred = optim.train_step(model, loss, opt, opt.init(model), x3, y3,
                                                   layers.Mode(train=True, rng=np.random.default_rng(0)))
    assert stepped != model and np.isfinite(value) and pred.shape == y3.shape


def test_a_user_layer_saves_once_registered(tmp_path):
    @layers.register
    @attrs.frozen
    class SavedScale(Scale):
        pass

    model = layers.Sequence([SavedScale(gain=gain()), dense(3, 2)])
    layers.save(tmp_path / "s.npz", model)
    assert layers.load(tmp_path / "s.npz") == model


# ---- Mode --------------------------------------------------------------------------------------------------

def test_mode_fields_defaults_and_ready_made_values():
    mode = layers.Mode()
    assert (mode.train, mode.rng, mode.input_grad, mode.observe) == (False, None, True, None)
    assert layers.EVAL == layers.Mode() and layers.TRAIN == layers.Mode(train=True)
    assert layers.TRAIN.rng is None and layers.EVAL.rng is None and layers.TRAIN.observe is None
    with pytest.raises(TypeError):
        layers.Mode(True)                        # keyword-only
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        layers.TRAIN.train = False
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        layers.Mode(train=True, rng=0)
    rng = np.random.default_rng(0)
    seen = []
    mode = layers.Mode(train=True, rng=rng, input_grad=False, observe=lambda *a: seen.append(a))
    assert mode.rng is rng and mode.input_grad is False and callable(mode.observe)


def test_a_training_forward_without_rng_names_the_layer_by_path():
    model = layers.Sequence([dense(3, 3), layers.Residual(layers.Concat([layers.Identity(), layers.Sequence([
        layers.ReLU(), layers.Dropout(0.5)])]), shortcut=dense(3, 6))])
    with pytest.raises(layers.LayerError) as caught:
        model.forward(x3, layers.TRAIN)
    assert caught.value.path == "layers[1].inner.branches[1].layers[1]"
    assert str(caught.value).startswith("layers[1].inner.branches[1].layers[1] Dropout(rate=0.5): ")
    assert "layers.Mode(train=True, rng=np.random.default_rng(seed))" in str(caught.value)
    assert model.forward(x3, layers.EVAL)[0].shape == (8, 6)      # inference draws nothing


def test_eval_draws_nothing_from_the_rng():
    model = layers.Sequence([dense(3, 3), layers.Dropout(0.5)])
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    model.forward(x3, layers.Mode(rng=rng))
    assert rng.bit_generator.state == state


# ---- records are values
# --------------------------------------------------------------------------------------

def test_a_record_placed_twice_is_shared_and_stays_one_record_after_an_update():
    d = dense(3, 3)
    model = layers.Sequence([d, layers.Tanh(), d])
    opt = optim.SGD(0.1)
    new, _, _, _ = optim.train_step(model, losses.MSE(), opt, opt.init(model), x3, y3, layers.TRAIN)
    assert new.layers[0] is new.layers[2] and new.layers[0] != d
    assert model.layers[0] is d and model.layers[2] is d            # nothing given changed


def test_parameters_are_read_only_copied_when_writable_and_taken_when_read_only():
    w, b = np.ones((2, 2), np.float32), np.zeros(2, np.float32)
    d = layers.Dense(weight=w, bias=b)
    assert not d.weight.flags.writeable and not np.shares_memory(d.weight, w)
    w[0, 0] = 5
    assert d.weight[0, 0] == 1
    with pytest.raises(ValueError, match="read-only"):
        d.weight[0, 0] = 2
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        d.weight = w
    frozen = np.ones((2, 2), np.float32)
    frozen.setflags(write=False)
    assert layers.Dense(weight=frozen, bias=b).weight is frozen
    with pytest.raises(TypeError, match="float32 or float64"):
        layers.Dense(weight=np.ones((2, 2), np.int64), bias=np.zeros(2, np.int64))


def test_every_record_leaving_fit_or_a_step_is_read_only():
    model = layers.Sequence([dense(3, 3), layers.BatchNorm.init(3), Scale(gain=gain())])
    trained, _ = optim.fit(model, losses.MSE(), optim.Adam(1e-2), x3, y3, epochs=2, batch_size=4,
                           rng=np.random.default_rng(0), progress=False, threads=1)
    opt = optim.SGD(0.1, momentum=0.9)
    stepped, state, _, _ = optim.train_step(model, losses.MSE(), opt, opt.init(model), x3, y3, layers.TRAIN)
    for record in (trained, stepped):
        for _, array in (*layers.named_parameters(record), *layers.named_buffers(record)):
            assert not array.flags.writeable


# ---- dtype: a float64 batch into a float32 model
# ------------------------------------------------------------------

def float32_model():
    return layers.Sequence([dense(3, 8), layers.BatchNorm.init(8), layers.ReLU(), layers.Dropout(0.3),
                            layers.Residual(layers.Sequence([dense(8, 8, 1), layers.GELU(),
                                                             layers.LayerNorm.init(8)])),
                            layers.Concat([dense(8, 2, 2),
                                           layers.Sequence([layers.Sigmoid(), dense(8, 1, 3)]),
                                           Scale(gain=gain(8))]),
                            dense(11, 3, 4)])


def test_a_float64_batch_into_a_float32_model_computes_in_float32_in_every_layer():
    model = float32_model()
    x = x3.astype(np.float64)
    seen = {}

    def observe(path, layer, y):
        seen[path] = y.dtype

    mode = layers.Mode(train=True, rng=np.random.default_rng(0), observe=observe)
    y, cache = model.forward(x, mode)
    assert y.dtype == np.float32
    assert len(seen) == 16 and set(seen.values()) == {np.dtype(np.float32)}, seen
    dx, grads = model.backward(cache, np.ones_like(y), mode)
    assert dx.dtype == np.float32
    arrays = (*layers.named_parameters(grads), *layers.named_buffers(grads))
    assert {a.dtype for _, a in arrays} == {np.dtype(np.float32)}
    assert model(x).dtype == np.float32
    assert model(x).tobytes() == model(x.astype(np.float32)).tobytes()


def test_train_step_and_fit_with_float64_data_keep_a_float32_model():
    model, x, y = float32_model(), x3.astype(np.float64), y3.astype(np.float64)
    opt = optim.Adam(1e-2)
    mode = layers.Mode(train=True, rng=np.random.default_rng(0))
    stepped, state, value, pred = optim.train_step(model, losses.MSE(), opt, opt.init(model), x, y, mode)
    assert pred.dtype == np.float32
    assert {a.dtype for a in layers.parameters(stepped) + layers.buffers(stepped)} == {np.dtype(np.float32)}
    same, _, value32, pred32 = optim.train_step(model, losses.MSE(), opt, opt.init(model), x3, y3,
                                                layers.Mode(train=True, rng=np.random.default_rng(0)))
    assert pred.tobytes() == pred32.tobytes() and value == value32
    trained, _ = optim.fit(model, losses.MSE(), opt, x, y, epochs=1, batch_size=4,
                           rng=np.random.default_rng(0),
                           progress=False, threads=1)
    assert {a.dtype for a in layers.parameters(trained) + layers.buffers(trained)} == {np.dtype(np.float32)}
