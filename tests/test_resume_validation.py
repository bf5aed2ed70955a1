"""Every key a resume reads is validated at load, naming the file; a damaged newest checkpoint falls back,
saying so; a model file with NaN, inf or a negative running variance is refused."""

from __future__ import annotations

import numpy as np
import pytest

from comparisons import same_bits
from test_files_faults import edit_manifest, members_of, replace_member
from test_signals import worker

from lamina import layers, optim
from lamina.layers.errors import ModelFileError
from lamina.layers.files.stored_zip import npy_header


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A folder of checkpoints: every 5 batches of 2 epochs (the last kept 4); the trained model."""
    folder = tmp_path_factory.mktemp("run")
    model, history = worker.train(folder, epochs=2, every=5)
    return folder, model


def newest(folder):
    return sorted(folder.glob("checkpoint-*.npz"))[-1]


def extra(change):
    return lambda manifest: change(manifest["extra"])


CRAFTED = {
    "history lacks loss": (extra(lambda e: e["history"].pop("loss")), "history lacks 'loss'"),
    "history lacks seconds": (extra(lambda e: e["history"].pop("seconds")), "history lacks 'seconds'"),
    "history too short": (extra(lambda e: e["history"]["threads"].pop()), "history['threads']"),
    "history holds a str": (extra(lambda e: e["history"]["loss"].__setitem__(0, "x")), "history['loss']"),
    "best epoch beyond": (extra(lambda e: e["history"].__setitem__("best_epoch", 9)), "best_epoch"),
    "running batches 3": (extra(lambda e: e["running"].__setitem__("batches", 3)), "running sums"),
    "running negative": (extra(lambda e: e["running"].__setitem__("batches", -1)), "running sums"),
    "more right than seen": (extra(lambda e: e["running"].__setitem__("correct", 10 ** 6)), "running sums"),
    "empty bit generator": (extra(lambda e: e["rng_state"].update(bit_generator={})), "bit generator"),
    "bit generator a list": (extra(lambda e: e["rng_state"].update(bit_generator=[])), "bit generator"),
    "no rng state": (extra(lambda e: e.__setitem__("rng_state", {})), "bit generator"),
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_a_crafted_checkpoint_is_refused_at_load_naming_the_file(run, tmp_path, name):
    change, message = CRAFTED[name]
    folder, _ = run
    path = edit_manifest(newest(folder), tmp_path / "checkpoint-00009-0000003.npz", change)
    with pytest.raises(ModelFileError) as refused:
        optim.load_checkpoint(path)
    assert str(path) in str(refused.value) and message in str(refused.value)


def test_a_damaged_newest_checkpoint_falls_back_to_the_newest_valid_one_saying_so(run, tmp_path):
    folder, model = run
    files = sorted(folder.glob("checkpoint-*.npz"))
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for path in files[:-1]:
        (resumed / path.name).write_bytes(path.read_bytes())
    damaged = resumed / files[-1].name
    damaged.write_bytes(files[-1].read_bytes()[:-100])
    with pytest.warns(optim.TrainingWarning, match=f"damaged; using {files[-2].name}"):
        assert optim.load_checkpoint(resumed).path.name == files[-2].name
    with pytest.warns(optim.TrainingWarning, match="damaged"):
        again, _ = worker.train(resumed, epochs=2, every=5, resume=True)
    assert same_bits(again, model)


def test_resuming_without_the_validation_the_run_had_is_refused(tmp_path):
    m, loss, opt, x, y = worker.problem()
    settings = dict(batch_size=16, progress=False, checkpoint=tmp_path)
    optim.fit(m, loss, opt, x, y, epochs=1, rng=np.random.default_rng(0), validation=(x, y), **settings)
    with pytest.raises(ValueError, match="history: the checkpoint's has 'val_loss'"):
        optim.fit(m, loss, opt, x, y, epochs=2, rng=np.random.default_rng(0), resume=tmp_path, **settings)


def array_member(path, name):
    return dict(members_of(path))[name]


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_a_model_file_holding_nan_or_inf_is_refused_naming_the_array(tmp_path, value):
    path = tmp_path / "m.npz"
    layers.save(path, worker.problem()[0])
    name = "model.layers[2].bias.npy"
    data = bytearray(array_member(path, name))
    header = len(npy_header(np.dtype("<f4"), (4,)))
    data[header:header + 4] = np.float32(value).tobytes()
    bad = replace_member(path, tmp_path / "bad.npz", name, bytes(data))
    for load in (layers.load, optim.load_checkpoint):
        with pytest.raises(ModelFileError, match=r"model\.layers\[2\]\.bias holds 1 NaN or infinite"):
            load(bad)
    with pytest.raises(ModelFileError, match=r"cannot save: the array model\.bias holds 1 NaN"):
        layers.save(tmp_path / "new.npz", layers.Dense(weight=np.ones((2, 2)), bias=np.array([0.0, value])))
    assert not (tmp_path / "new.npz").exists()


def test_a_negative_running_variance_is_refused_naming_it(tmp_path):
    path = tmp_path / "m.npz"
    layers.save(path, layers.Sequence([layers.BatchNorm.init(3)]))
    name = "model.layers[0].running_var.npy"
    data = bytearray(array_member(path, name))
    data[-4:] = np.float32(-1.0).tobytes()
    with pytest.raises(ModelFileError, match=r"model\.layers\[0\].*running_var holds 1 negative"):
        layers.load(replace_member(path, tmp_path / "bad.npz", name, bytes(data)))
