"""Checkpoints and resume, in-process: what is written and kept, what a checkpoint holds, exact resume,
refusals.

The subprocess tests (SIGKILL, SIGINT, SIGTERM) are in test_signals.py.
"""

from __future__ import annotations

import math
import shutil

import attrs
import numpy as np
import pytest

from comparisons import same_bits, without_seconds

from lamina import layers, losses, optim
from lamina.layers.files.model_file import read_records, write_records

N, D, K, BATCH = 96, 6, 3, 16           # 6 batches per epoch
N_BATCHES = math.ceil(N / BATCH)
LOSS = losses.SoftmaxCrossEntropy()


def blobs(n=N, seed=0):
    """k Gaussian blobs in d dimensions: (x float32 (n, d), labels int64 (n,))."""
    centers = np.random.default_rng(99).normal(0, 3, size=(K, D))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, size=n)
    return (centers[y] + rng.normal(0, 1, size=(n, D))).astype(np.float32), y.astype(np.int64)


X, Y = blobs()
VALIDATION = blobs(40, seed=1)


def new_model(hidden=12):
    return layers.mlp(np.random.default_rng(0), [D, hidden, K])


OPTIMIZERS = {
    "plain": optim.SGD(0.1),
    "momentum+cosine": optim.SGD(optim.Cosine(0.1, total=20, warmup=2), momentum=0.9),
    "nesterov+decay": optim.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
}


def fit(opt=OPTIMIZERS["plain"], *, epochs, seed=5, rng=None, model=None, x=X, y=Y, loss=LOSS, **kwargs):
    kwargs = {"batch_size": BATCH, "progress": False, "validation": VALIDATION, **kwargs}
    rng = np.random.default_rng(seed) if rng is None else rng
    return optim.fit(new_model() if model is None else model, loss, opt, x, y, epochs=epochs, rng=rng,
                     **kwargs)


def files(folder):
    return sorted(folder.glob("checkpoint-*.npz"))


def where(path):
    ckpt = optim.load_checkpoint(path)
    return ckpt.epoch, ckpt.position


# ---- what is written, and what is kept --------------------------------------------------------------

def test_a_checkpoint_after_every_epoch_and_every_k_batches_and_names_sort_in_training_order(tmp_path):
    """12 batches per epoch, every 5: positions 5 and 10 (two digits) in each of 11 epochs (two digits)."""
    x, y = blobs(48)
    fit(epochs=11, x=x, y=y, batch_size=4, checkpoint=tmp_path, checkpoint_every=5, keep=1000,
        validation=None)
    expected = [(e, p) for e in range(11) for p in (5, 10)] + [(e, 0) for e in range(1, 12)]
    assert [where(path) for path in files(tmp_path)] == sorted(expected)


def test_only_the_last_keep_are_kept(tmp_path):
    fit(epochs=3, checkpoint=tmp_path, checkpoint_every=4, keep=2)
    assert [where(path) for path in files(tmp_path)] == [(2, 4), (3, 0)]


def test_the_checkpoint_resumed_from_is_never_deleted_even_when_it_is_the_oldest(tmp_path):
    fit(epochs=2, checkpoint=tmp_path, checkpoint_every=2, keep=2)
    oldest = files(tmp_path)[0]
    assert where(oldest) == (1, 4)
    fit(epochs=4, checkpoint=tmp_path, checkpoint_every=2, keep=2, resume=oldest)
    assert [where(path) for path in files(tmp_path)] == [(1, 4), (3, 4), (4, 0)]


def test_a_resumed_run_behind_newer_checkpoints_keeps_what_it_writes(tmp_path):
    """Resuming from an early checkpoint with keep=1 while later ones of the first run are still there."""
    fit(epochs=3, checkpoint=tmp_path, keep=10)
    start = tmp_path / "checkpoint-00001-0000000.npz"
    model, _ = fit(epochs=2, checkpoint=tmp_path, checkpoint_every=2, keep=1, resume=start)
    written = optim.load_checkpoint(tmp_path / "checkpoint-00002-0000000.npz")
    assert same_bits(written.model, model)
    assert start.exists()


def test_load_checkpoint_returns_everything_it_holds(tmp_path):
    opt = OPTIMIZERS["momentum+cosine"]
    rng = np.random.default_rng(5)
    model, history = fit(opt, epochs=2, rng=rng, checkpoint=tmp_path, checkpoint_every=4, keep=10)
    end = optim.load_checkpoint(tmp_path / "checkpoint-00002-0000000.npz")
    assert (end.epoch, end.position) == (2, 0)
    assert same_bits(end.model, model)
    assert end.history == history
    assert end.rng_state == rng.bit_generator.state
    assert isinstance(end.state, optim.ChainState) and end.state.step == 2 * N_BATCHES
    # SGD with momentum: one transform with state (trace), one array per parameter
    (velocity,), = end.state.states
    assert [v.shape for v in layers.parameters(velocity)] == [p.shape for p in layers.parameters(model)]
    assert history["learning_rate"][-1] == opt.learning_rate(end.state.step - 1)
    assert same_bits(layers.load(end.path), model)

    middle = optim.load_checkpoint(tmp_path / "checkpoint-00001-0000004.npz")
    assert (middle.epoch, middle.position) == (1, 4)
    assert middle.state.step == N_BATCHES + 4
    assert middle.running["batches"] == 4 and middle.running["seen"] == 4 * BATCH
    assert len(middle.history["loss"]) == 1 and middle.history["loss"][0] == history["loss"][0]
    assert middle.epoch_rng_state is not None and middle.epoch_rng_state != middle.rng_state
    assert same_bits(layers.load(middle.path), middle.model)


def test_load_checkpoint_of_a_folder_picks_the_newest_valid_one(tmp_path):
    fit(epochs=2, checkpoint=tmp_path, keep=10)
    older, newest = files(tmp_path)
    assert optim.load_checkpoint(tmp_path).path == newest == optim.latest_checkpoint(tmp_path)

    # what is not a checkpoint is passed over: a stray temporary file (hidden), a plain model file
    shutil.copy(newest, tmp_path / ".checkpoint-00009-0000000.npz.0123456789abcdef.tmp")
    layers.save(tmp_path / "checkpoint-00008-0000000.npz", new_model())
    with pytest.raises(layers.ModelFileError, match="not a checkpoint"):
        optim.load_checkpoint(tmp_path / "checkpoint-00008-0000000.npz")
    with pytest.warns(optim.TrainingWarning, match="1 newer checkpoint"):
        assert optim.load_checkpoint(tmp_path).path == newest

    # a damaged newest file is skipped by the folder, refused by name
    data = newest.read_bytes()
    newest.write_bytes(data[:len(data) // 2])
    with pytest.raises(layers.ModelFileError, match=newest.name):
        optim.load_checkpoint(newest)
    with pytest.warns(optim.TrainingWarning, match="2 newer checkpoint"):
        assert optim.load_checkpoint(tmp_path).path == older == optim.latest_checkpoint(tmp_path)

    older.write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="no valid checkpoint"):
        optim.load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError):
        optim.load_checkpoint(tmp_path / "missing")


def good_extra(tmp_path):
    fit(epochs=1, checkpoint=tmp_path, checkpoint_every=4, keep=10)
    path = tmp_path / "checkpoint-00000-0000004.npz"
    records, extra, _ = read_records(path)
    return records, extra


@pytest.mark.parametrize("change, match", [
    ({"epoch": -1}, r"epoch is -1; expected an int >= 0"),
    ({"position": 2.5}, r"position is 2.5"),
    ({"rng_state": {"bit_generator": "os.system"}}, r"names the bit generator 'os.system'"),
    ({"rng_state": {"bit_generator": "PCG64", "state": {"state": 1}}}, r"not a valid PCG64 state"),
    ({"epoch_rng_state": None}, r"middle of an epoch but lacks the epoch's rng state"),
    ({"running": {"loss_sum": 1.0}}, r"running sums"),
    ({"history": [1, 2]}, r"history is not a dict"),
])
def test_a_checkpoint_with_bad_fields_is_refused_with_a_model_file_error(tmp_path, change, match):
    records, extra = good_extra(tmp_path)
    bad = tmp_path / "bad.npz"
    write_records(bad, records, {**extra, **change}, kind="checkpoint")
    with pytest.raises(layers.ModelFileError, match=match):
        optim.load_checkpoint(bad)


def test_a_checkpoint_missing_a_field_or_the_state_is_refused(tmp_path):
    records, extra = good_extra(tmp_path)
    write_records(tmp_path / "a.npz", records, {k: v for k, v in extra.items() if k != "settings"},
                  kind="checkpoint")
    with pytest.raises(layers.ModelFileError, match=r"lacks \['settings'\]"):
        optim.load_checkpoint(tmp_path / "a.npz")
    write_records(tmp_path / "b.npz", {"model": records["model"]}, extra, kind="checkpoint")
    with pytest.raises(layers.ModelFileError, match="not a checkpoint"):
        optim.load_checkpoint(tmp_path / "b.npz")


# ---- resume: bit-identical --------------------------------------------------------------------------

@pytest.mark.parametrize("name", OPTIMIZERS)
def test_resume_after_fewer_epochs_or_mid_epoch_is_bit_identical(tmp_path, name):
    opt = OPTIMIZERS[name]
    reference_rng = np.random.default_rng(5)
    reference, history = fit(opt, epochs=4, rng=reference_rng)

    # with checkpoints, uninterrupted: the same run
    model, h = fit(opt, epochs=4, checkpoint=tmp_path / "all", checkpoint_every=4, keep=100)
    assert same_bits(model, reference) and without_seconds(h) == without_seconds(history)

    # stopped after 2 of 4 epochs, resumed from the folder with a Generator in another state
    fit(opt, epochs=2, checkpoint=tmp_path / "short")
    rng = np.random.default_rng(12345)
    model, h = fit(opt, epochs=4, rng=rng, checkpoint=tmp_path / "short", resume=tmp_path / "short")
    assert same_bits(model, reference)
    assert without_seconds(h) == without_seconds(history) and len(h["seconds"]) == 4
    assert rng.bit_generator.state == reference_rng.bit_generator.state

    # resumed from mid-epoch checkpoint files (epoch 0 and epoch 2, after 4 of 6 batches)
    for start in ("checkpoint-00000-0000004.npz", "checkpoint-00002-0000004.npz"):
        rng = np.random.default_rng(777)
        model, h = fit(opt, epochs=4, rng=rng, resume=tmp_path / "all" / start, checkpoint=tmp_path / start)
        assert same_bits(model, reference), start
        assert without_seconds(h) == without_seconds(history), start
        assert rng.bit_generator.state == reference_rng.bit_generator.state, start


@pytest.mark.parametrize("start", ["checkpoint-00001-0000004.npz", "checkpoint-00002-0000000.npz"])
def test_a_checkpoint_of_0_2_without_the_orders_offset_resumes_bit_for_bit(tmp_path, start):
    """lamina 0.2 stored no offset: the order stood ``position`` full batches into the epoch's permutation."""
    reference_rng = np.random.default_rng(5)
    reference, history = fit(epochs=3, rng=reference_rng)
    fit(epochs=3, checkpoint=tmp_path / "all", checkpoint_every=4, keep=100)
    records, extra, _ = read_records(tmp_path / "all" / start)
    assert "offset" in extra
    old = tmp_path / "old.npz"
    write_records(old, records, {k: v for k, v in extra.items() if k != "offset"}, kind="checkpoint")
    rng = np.random.default_rng(1)
    model, h = fit(epochs=3, rng=rng, resume=old)
    assert same_bits(model, reference) and without_seconds(h) == without_seconds(history)
    assert rng.bit_generator.state == reference_rng.bit_generator.state


@pytest.mark.parametrize("bit_generator",
                         [np.random.MT19937, np.random.Philox, np.random.SFC64, np.random.PCG64DXSM])
def test_resume_with_any_numpy_bit_generator(tmp_path, bit_generator):
    """Their states hold arrays (not JSON as they stand); a checkpoint stores and restores them exactly."""
    reference_rng = np.random.Generator(bit_generator(3))
    reference, _ = fit(epochs=2, rng=reference_rng)
    fit(epochs=2, rng=np.random.Generator(bit_generator(3)), checkpoint=tmp_path, checkpoint_every=4,
        keep=100)
    rng = np.random.Generator(bit_generator(4))
    model, _ = fit(epochs=2, rng=rng, resume=tmp_path / "checkpoint-00001-0000004.npz")
    assert same_bits(model, reference)
    state, expected = rng.bit_generator.state, reference_rng.bit_generator.state
    assert repr(state) == repr(expected)


def test_resume_with_a_function_as_schedule_in_another_function_object(tmp_path):
    """A schedule that is a plain function: its repr holds an address, which differs between processes."""
    def schedule_factory():
        def halving(step):
            return 0.1 * 0.5 ** (step // 10)
        return halving

    first, second = schedule_factory(), schedule_factory()
    assert repr(first) != repr(second)     # as another process would see it
    reference, _ = fit(optim.SGD(first), epochs=3)
    fit(optim.SGD(first), epochs=1, checkpoint=tmp_path)
    model, _ = fit(optim.SGD(second), epochs=3, resume=tmp_path)
    assert same_bits(model, reference)


# ---- resume: different settings are refused ---------------------------------------------------------

@pytest.mark.parametrize("change, names", [
    ({"batch_size": 8}, ["batch_size"]),
    ({"opt": optim.SGD(0.1, momentum=0.5)}, ["optimizer"]),
    ({"loss": losses.MSE()}, ["loss"]),
    ({"model": new_model(hidden=10)}, ["model"]),
    ({"x": X[:80], "y": Y[:80]}, ["data"]),
    ({"rng": np.random.Generator(np.random.Philox(5))}, ["rng"]),
    ({"batch_size": 8, "opt": optim.SGD(0.2), "loss": losses.MSE(), "model": new_model(hidden=10),
      "x": X[:80], "y": Y[:80]}, ["batch_size", "optimizer", "loss", "model", "data"]),
])
def test_resuming_with_different_settings_lists_what_differs(tmp_path, change, names):
    fit(epochs=1, checkpoint=tmp_path)
    with pytest.raises(ValueError, match="settings differ") as info:
        fit(**{**{"epochs": 2}, **change}, resume=tmp_path)
    message = str(info.value)
    for name in names:
        assert f"\n  {name}: checkpoint has" in message
    assert message.count("checkpoint has") == len(names)
    assert str(tmp_path) in message


# ---- non-finite -------------------------------------------------------------------------------------

@attrs.frozen
class Blowup:
    """lr(t) = rate before step ``at``, then ``then``: training diverges at a known step."""

    at: int
    then: float
    rate: float = 0.1

    def __call__(self, step):
        return self.rate if step < self.at else self.then


@pytest.mark.parametrize("then, at, every, kind", [
    (1e300, N_BATCHES + 3, 1,
     "parameter"),          # overflows the update of epoch 1, batch 3; checkpoint due
    (1e300, 2 * N_BATCHES - 1, None,
     "parameter"),   # the last batch of epoch 1; the epoch's checkpoint is due
    (1e300, N_BATCHES + 3, None, "loss"),            # no checkpoint due: the next batch's loss is NaN
    (1e30, N_BATCHES + 3, 1, "loss"),                # huge but finite parameters; a later loss overflows
    (1e30, N_BATCHES + 3, None, "loss"),
])
def test_no_checkpoint_with_non_finite_parameters_and_the_last_good_one_stays(tmp_path, then, at, every,
                                                                              kind):
    """From step ``at`` on the rate is ``then``: 1e300 overflows float32 parameters although the loss was
    finite."""
    with pytest.raises(optim.NonFiniteLossError) as info, np.errstate(all="ignore"):
        fit(optim.SGD(Blowup(at, then)), epochs=4, checkpoint=tmp_path, checkpoint_every=every, keep=100)
    error = info.value
    failed = (error.epoch - 1) * N_BATCHES + error.batch - 1  # the failing batch, counted from 0 at the start
    assert isinstance(error, FloatingPointError)
    assert f"epoch {error.epoch}, batch {error.batch}" in str(error)
    if kind == "parameter":       # the update after batch `at` overflowed; its loss was finite
        assert error.layer in [path for path, _ in layers.named_parameters(new_model())]
        assert failed == at and math.isfinite(error.loss) and "made the parameter" in str(error)
    else:                         # a later batch's prediction is not finite: the first layer whose output is
        assert failed > at and not math.isfinite(error.loss)
        assert error.layer in ("layers[0]", "layers[1]", "layers[2]")
        assert f"first layer whose output is NaN or inf: {error.layer}" in str(error)
    saved = files(tmp_path)
    assert saved
    for path in saved:
        ckpt = optim.load_checkpoint(path)
        assert all(np.isfinite(p).all() for p in layers.parameters(ckpt.model)), path.name
    newest = optim.load_checkpoint(saved[-1])
    # the last good checkpoint stays: the boundary just before the failing batch (or update), or the
    # end of the last epoch that finished
    last_good = failed if kind == "loss" else failed + 1
    if every == 1:
        assert (newest.epoch, newest.position) == divmod(failed, N_BATCHES)
    else:
        assert (newest.epoch, newest.position) == (failed // N_BATCHES, 0)
    assert newest.state.step == newest.epoch * N_BATCHES + newest.position <= last_good


def test_an_overflow_in_the_very_last_update_is_an_error_not_a_returned_model():
    """Without validation or checkpoints nothing else would look at the parameters after the last update."""
    last = 2 * N_BATCHES - 1
    with (pytest.raises(optim.NonFiniteLossError, match="made the parameter") as info,
          np.errstate(all="ignore")):
        fit(optim.SGD(Blowup(last, 1e300)), epochs=2, validation=None)
    assert (info.value.epoch - 1, info.value.batch - 1) == divmod(last, N_BATCHES)


# ---- keep_best, early stopping and stale files across a resume ---------------------------------------

def test_keep_best_and_early_stopping_resume_to_the_uninterrupted_result(tmp_path):
    """Validation labels that disagree with training make val_loss rise: keep_best and patience act."""
    x_val, y_val = VALIDATION[0], (VALIDATION[1] + 1) % K
    kwargs = dict(validation=(x_val, y_val), keep_best=True, patience=2)
    full, full_history = fit(epochs=12, **kwargs)
    assert full_history["stopped_early"] is True
    fit(epochs=12, checkpoint=tmp_path, keep=1000, **kwargs)
    stop_epoch = len(full_history["loss"])
    for resume_at in range(1, stop_epoch + 1):  # every epoch boundary, the last (stopped) one included
        path = tmp_path / f"checkpoint-{resume_at:05d}-0000000.npz"
        model, history = fit(epochs=12, resume=path, checkpoint=tmp_path / "again", **kwargs)
        assert same_bits(model, full), resume_at
        assert without_seconds(history) == without_seconds(full_history)


def test_a_keep_best_checkpoint_holds_the_best_model(tmp_path):
    x_val, y_val = VALIDATION[0], (VALIDATION[1] + 1) % K
    best, history = fit(epochs=4, validation=(x_val, y_val), keep_best=True, checkpoint=tmp_path)
    ckpt = optim.load_checkpoint(tmp_path)
    assert same_bits(ckpt.best, best)
    assert history["best_epoch"] == int(np.argmin(history["val_loss"])) + 1  # counted from 1
    assert not same_bits(ckpt.model, best) or history["best_epoch"] == 4


def test_validation_of_the_wrong_width_fails_before_training(tmp_path):
    with pytest.raises(layers.ShapeError, match=r"validation x gives \(40, 5\)"):
        fit(epochs=3, validation=(VALIDATION[0][:, :5], VALIDATION[1]), checkpoint=tmp_path)
    assert files(tmp_path) == []


def test_temporaries_left_by_a_killed_writer_are_removed(tmp_path):
    stale = tmp_path / ".checkpoint-00001-0000000.npz.0123456789abcdef.tmp"
    other = tmp_path / "notes.txt"
    stale.write_bytes(b"half a checkpoint")
    other.write_text("mine")
    fit(epochs=1, checkpoint=tmp_path)
    assert not stale.exists() and other.read_text() == "mine"
    assert len(files(tmp_path)) == 1


def test_evaluate_names_itself_in_label_errors():
    with pytest.raises(ValueError, match=r"^evaluate: labels must be in \[0, 3\), but labels\[2\] is 7"):
        optim.evaluate(new_model(), LOSS, X[:4], np.array([0, 1, 7, 2]))
