"""Every failure inside fit reaches the caller as itself, carrying the model; a full disk loses nothing."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

from comparisons import same_bits, without_seconds

from lamina import layers, optim
from lamina.layers.files import model_file
from test_signals import worker


def full_disk_after(monkeypatch, writes: int) -> list:
    """model files fail with ENOSPC from the write after ``writes`` successful ones -> the list of calls."""
    real, calls = model_file.write_archive, []

    def write(file, members):
        calls.append(file.name)
        if len(calls) > writes:
            file.write(b"PK\x03\x04 half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(file, members)

    monkeypatch.setattr(model_file, "write_archive", write)
    return calls


def test_a_full_disk_during_a_checkpoint_keeps_the_model_and_the_previous_checkpoint_resumes(tmp_path,
                                                                                           monkeypatch):
    reference, reference_history = worker.train(tmp_path / "reference", epochs=3, every=5)
    full_disk_after(monkeypatch, 4)
    folder = tmp_path / "run"
    with pytest.raises(OSError) as caught:
        worker.train(folder, epochs=3, every=5)
    error = caught.value
    assert type(error) is OSError and error.errno == errno.ENOSPC
    assert Path(error.filename).parent == folder and Path(error.filename).name.startswith("checkpoint-")
    assert str(error.filename) in str(error)
    assert error.checkpoint is not None and Path(error.checkpoint).exists()
    assert len(error.history["loss"]) == 1
    assert not any(p.flags.writeable for p in layers.parameters(error.model))
    assert sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) == []   # nothing half-written
    monkeypatch.undo()
    model, history = worker.train(folder, epochs=3, every=5, resume=True)
    assert same_bits(model, reference) and without_seconds(history) == without_seconds(reference_history)


def test_a_full_disk_in_save_names_the_path_and_keeps_the_old_file(tmp_path, monkeypatch):
    model, *_ = worker.problem()
    path = tmp_path / "model.npz"
    layers.save(path, model, note="old")
    full_disk_after(monkeypatch, 0)
    with pytest.raises(OSError) as caught:
        layers.save(path, model, note="new")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    assert layers.load_extra(path) == {"note": "old"} and sorted(tmp_path.iterdir()) == [path]


def test_save_into_a_missing_folder_names_the_users_path(tmp_path):
    model, *_ = worker.problem()
    path = tmp_path / "missing" / "model.npz"
    with pytest.raises(FileNotFoundError) as caught:
        layers.save(path, model)
    assert caught.value.filename == str(path) and ".tmp" not in str(caught.value)


class Fails:
    def __init__(self, error):
        self.error = error

    def on_epoch_end(self, run):
        if run.epoch == 2:
            raise self.error


@pytest.mark.parametrize("error", [PermissionError(errno.EACCES, "Permission denied", "/x/log.txt"),
                                   LookupError("a user's bug")], ids=["permission", "lookup"])
def test_an_error_from_a_callback_keeps_its_type_and_carries_the_work(tmp_path, error):
    model, loss, opt, x, y = worker.problem()
    with pytest.raises(type(error)) as caught:
        optim.fit(model, loss, opt, x, y, epochs=3, batch_size=16, rng=np.random.default_rng(0),
                  progress=False, checkpoint=tmp_path, callbacks=[Fails(error)])
    assert caught.value is error and len(error.history["loss"]) == 2
    assert Path(error.checkpoint).name == "checkpoint-00001-0000000.npz"    # callbacks run before the save
    assert not same_bits(layers.load(error.checkpoint), error.model)        # the model has epoch 2 in it


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::lamina.optim.errors.TrainingWarning")
def test_a_non_finite_loss_carries_the_model_of_the_last_good_batch(tmp_path):  # (diverges on purpose)
    model, loss, _, x, y = worker.problem()
    with pytest.raises(optim.NonFiniteLossError) as caught:
        optim.fit(model, loss, optim.SGD(1e6), x * 1e3, y, epochs=3, batch_size=16,
                  rng=np.random.default_rng(0), progress=False, checkpoint=tmp_path, checkpoint_every=1)
    error = caught.value
    assert error.model is not None and all(np.isfinite(p).all() for p in layers.parameters(error.model))
    assert error.history is not None and (error.checkpoint is None or Path(error.checkpoint).exists())
