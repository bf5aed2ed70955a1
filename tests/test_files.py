"""Model files: round trips, the manifest, byte-identical saves, atomic writes, the registry, what the writer
refuses.

The faults a reader must survive are in test_files_faults.py.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
from pathlib import Path
import math
import os
import stat
import struct
import tempfile
import zipfile

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamina import layers
from lamina.layers.files import model_file as files, stored_zip
from lamina.layers.records import registry
from lamina.layers.files.model_file import read_records, write_records


# ---- helpers -------------------------------------------------------------------------------------

def same(a, b, where="") -> None:
    """Assert a and b are the same tree, bit for bit: types, dtypes, shapes, array bytes, float bits."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        assert a.tobytes() == b.tobytes(), where
        assert not b.flags.writeable, f"{where}: a loaded array must be read-only"
    elif attrs.has(type(a)):
        for field in attrs.fields(type(a)):
            if field.init:
                same(getattr(a, field.name), getattr(b, field.name), f"{where}.{field.name}")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b) or sorted(a) == sorted(b), where
        for key in a:
            same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b)), where
    else:
        assert a == b, where


@contextlib.contextmanager
def own_registry():
    """Registrations made inside are forgotten afterwards (the registry is global and only grows)."""
    saved = dict(registry._classes), dict(registry._names)
    try:
        yield
    finally:
        registry._classes.clear(), registry._classes.update(saved[0])
        registry._names.clear(), registry._names.update(saved[1])


def small_model(dtype=np.float32, seed=0):
    return layers.mlp(np.random.default_rng(seed), [4, 3, 2], dtype=dtype)


@attrs.frozen
class Scale:
    """y = x * gain, one gain per feature (DESIGN.md's user layer), plus plain hyper-parameters."""

    gain: np.ndarray = layers.param()
    note: str = "scale"
    clip: float = math.inf
    axes: tuple = (1, 2)
    _shift: int = 0

    def forward(self, x, mode):
        return x * self.gain, x

    def backward(self, x, dy, mode):
        return dy * self.gain, Scale(gain=(dy * x).sum(axis=0))


@attrs.frozen
class State:
    """Shaped like optim.SGDState: an int and a record-or-None."""

    step: int = 0
    velocity: object = None


# ---- round trips ---------------------------------------------------------------------------------

def test_round_trip_is_bit_identical_with_extra(tmp_path):
    model = small_model()
    history = {"loss": [2.5, 1.25, -0.0], "accuracy": [0.5, 0.75, 1.0], "note": "é", "done": True,
               "best": None}
    path = tmp_path / "m.npz"
    layers.save(path, model, history=history, epochs=3)
    loaded = layers.load(path)
    same(model, loaded)
    assert loaded == model and loaded.dtype == np.float32
    same({"history": history, "epochs": 3}, layers.load_extra(path))
    np.testing.assert_array_equal(loaded(np.ones((2, 4), np.float32)), model(np.ones((2, 4), np.float32)))


def test_the_file_is_a_plain_npz_with_a_readable_manifest(tmp_path):
    model = small_model(np.float64)
    path = tmp_path / "m.npz"
    layers.save(path, model, lr=0.1)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        infos = archive.infolist()
        assert [i.filename for i in infos] == ["lamina.json", "model.layers[0].bias.npy",
                                               "model.layers[0].weight.npy",
                                               "model.layers[2].bias.npy", "model.layers[2].weight.npy"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
        manifest = json.loads(archive.read("lamina.json"))
    assert manifest["format"] == "lamina.model_file" and manifest["version"] == 3
    assert manifest["kind"] == "model"
    assert manifest["extra"] == {"lr": 0.1}
    top = manifest["records"]["model"]
    assert top["record"] == "Sequence"
    kinds = [node["record"] for node in top["fields"]["layers"]["tuple"]]
    assert kinds == ["Dense", "ReLU", "Dense"]
    assert top["fields"]["layers"]["tuple"][0]["fields"]["weight"] == {"array": {"dtype": "float64",
                                                                                 "shape": [4, 3]}}
    assert "dtype" not in top["fields"]                     # init=False fields are derived, not stored
    with np.load(path) as npz:                              # numpy reads it without pickle
        np.testing.assert_array_equal(npz["model.layers[2].weight"], model.layers[2].weight)


def test_npy_headers_are_the_ones_numpy_writes():
    import io
    for dtype in (np.float32, np.float64):
        for shape in [(), (0,), (7,), (3, 4), (2, 0, 5), (1,) * 12]:
            buffer = io.BytesIO()
            np.save(buffer, np.zeros(shape, dtype))
            header = stored_zip.npy_header(np.dtype(dtype).newbyteorder("<"), shape)
            assert buffer.getvalue()[:len(header)] == header


def raw_floats(draw, shape, dtype):
    """An array whose bit patterns are drawn freely among finite floats (files refuse NaN and inf), with -0.0,
    the largest and subnormals likely."""
    bits = {np.float32: 32, np.float64: 64}[dtype]
    special = {32: [0x7F7FFFFF, 0xFF7FFFFF, 0x80000001, 0x80000000, 1],
               64: [0x7FEFFFFFFFFFFFFF, 0x800FFFFFFFFFFABC, 0x8000000000000000, 1]}[bits]
    n = math.prod(shape)
    values = draw(st.lists(st.sampled_from(special) | st.integers(0, 2 ** bits - 1), min_size=n, max_size=n))
    shift, ones = (23, 0xFF) if bits == 32 else (52, 0x7FF)
    values = [v ^ (1 << shift) if (v >> shift) & ones == ones else v for v in values]   # inf, NaN -> finite
    return np.array(values, dtype=f"<u{bits // 8}").view(dtype).reshape(shape)


@st.composite
def models(draw):
    """Random MLPs, float32 or float64, with random runs of layers wrapped in nested Sequences."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    sizes = draw(st.lists(st.integers(1, 4), min_size=2, max_size=5))
    items = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        if i:
            items.append(draw(st.sampled_from([layers.ReLU, layers.Sigmoid, layers.Tanh]))())
        items.append(layers.Dense(weight=raw_floats(draw, (n_in, n_out), dtype),
                                  bias=raw_floats(draw, (n_out,), dtype)))
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(items) - 1))
        j = draw(st.integers(i + 1, len(items)))
        items[i:j] = [layers.Sequence(items[i:j])]
    return layers.Sequence(items)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=60)
@given(model=models(), extra=st.dictionaries(st.text(max_size=6), json_values, max_size=4))
def test_property_round_trip_is_bit_identical(model, extra):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "m.npz")
        write_records(path, {"model": model}, extra)
        first = open(path, "rb").read()
        records, loaded_extra, kind = read_records(path)
        same(model, records["model"])
        same(extra, loaded_extra)
        assert kind == "model"
        write_records(path, {"model": records["model"]}, loaded_extra)    # saving what was loaded: same bytes
        assert open(path, "rb").read() == first


def test_saving_twice_gives_identical_bytes(tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    layers.save(a, small_model(), history={"loss": [1.0]})
    os.utime(tmp_path, (0, 0))
    layers.save(b, small_model(), history={"loss": [1.0]})       # built again, saved at another moment
    assert a.read_bytes() == b.read_bytes()
    layers.save(b, small_model(seed=1), history={"loss": [1.0]})
    assert a.read_bytes() != b.read_bytes()


def test_the_format_is_stable(tmp_path):
    """A fixed model gives a fixed file: changing the format must be deliberate (and bump its version)."""
    model = layers.Sequence([layers.Dense(weight=np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
                                          bias=np.array([-0.0, 1e-45, 3e38], np.float32)), layers.Tanh()])
    path = tmp_path / "m.npz"
    layers.save(path, model, note="golden")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == GOLDEN


GOLDEN = "90cbb7c95856fe720ced94ce78786fae6a8ee1b8e3dbcd002650af4f582ae958"  # version 3 (lamina 0.3): sharing


FIXTURES = Path(__file__).parent / "fixtures"


def test_a_model_file_written_by_lamina_0_1_still_loads():
    """tests/fixtures/model-0.1.npz was saved by lamina 0.1 (format version 1) with its inputs and outputs
    beside it."""
    model = layers.load(FIXTURES / "model-0.1.npz")
    assert layers.load_extra(FIXTURES / "model-0.1.npz") == {"note": "written by lamina 0.1"}
    x = np.load(FIXTURES / "model-0.1-input.npy")
    np.testing.assert_array_equal(model(x), np.load(FIXTURES / "model-0.1-output.npy"))
    with zipfile.ZipFile(FIXTURES / "model-0.1.npz") as archive:
        assert json.loads(archive.read("lamina.json"))["version"] == 1


# ---- user layers and the registry ----------------------------------------------------------------

def test_a_registered_user_layer_round_trips(tmp_path):
    with own_registry():
        layers.register(Scale)
        model = layers.Sequence([layers.Dense.init(np.random.default_rng(0), 3, 2),
                                 Scale(gain=np.array([2.0, -0.0], np.float32), note="two", clip=-math.inf,
                                       axes=(0, (1, None), "x"), shift=-7)])
        layers.save(tmp_path / "s.npz", model)
        loaded = layers.load(tmp_path / "s.npz")
        same(model, loaded)
        assert loaded.layers[1]._shift == -7 and loaded.layers[1].axes == (0, (1, None), "x")
        x = np.ones((2, 3), np.float32)
        np.testing.assert_array_equal(loaded(x), model(x))


def test_an_unregistered_layer_is_refused_at_save_and_nothing_is_written(tmp_path):
    path = tmp_path / "s.npz"
    layers.save(path, small_model())
    before = path.read_bytes()
    model = layers.Sequence([layers.Dense.init(np.random.default_rng(0), 3, 2),
                             Scale(gain=np.ones(2, np.float32))])
    with pytest.raises(layers.ModelFileError) as error:
        layers.save(path, model)
    assert "model.layers[1]" in str(error.value) and "@layers.register" in str(error.value)
    assert str(path) in str(error.value)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["s.npz"]


def test_register_names_and_collisions():
    with own_registry():
        assert layers.register(Scale) is Scale and layers.register(Scale) is Scale     # again: a no-op
        assert registry.registered_class("Scale") is Scale and registry.registered_name(Scale) == "Scale"
        with pytest.raises(ValueError, match="already registered as 'Scale'"):
            layers.register(name="OtherScale")(Scale)

        @attrs.frozen
        class Scale2:
            gain: np.ndarray = layers.param()

        with pytest.raises(ValueError, match="taken by .*Scale"):
            layers.register(name="Scale")(Scale2)
        assert layers.register(name="MyScale")(Scale2) is Scale2
        assert registry.registered_class("MyScale") is Scale2
        with pytest.raises(ValueError, match="taken by lamina.layers.dense.Dense"):
            layers.register(attrs.frozen(type("Dense", (), {})))
        with pytest.raises(ValueError, match="identifier"):
            layers.register(name="os.system")(attrs.frozen(type("X", (), {})))
        with pytest.raises(TypeError, match="above @attrs.frozen"):
            layers.register(type("Plain", (), {}))


def test_a_class_redefined_in_the_same_place_replaces_the_old_one(tmp_path):
    """Re-running a notebook cell defines a new class object under the same module and name."""
    def define():
        @attrs.frozen
        class Gain:
            gain: np.ndarray = layers.param()

            def forward(self, x, mode):
                return x * self.gain, x

            def backward(self, x, dy, mode):
                return dy * self.gain, Gain(gain=(dy * x).sum(axis=0))
        return Gain

    with own_registry():
        old, new = layers.register(define()), layers.register(define())
        assert old is not new and registry.registered_class("Gain") is new
        assert registry.registered_name(old) is None
        layers.save(tmp_path / "g.npz", layers.Sequence([new(gain=np.ones(2))]))
        assert type(layers.load(tmp_path / "g.npz").layers[0]) is new


def test_the_builtins_are_registered():
    for cls in (layers.Dense, layers.ReLU, layers.Sigmoid, layers.Tanh, layers.Sequence):
        assert registry.registered_class(cls.__name__) is cls


# ---- several records in one file (checkpoints) --------------------------------------------------

def test_write_records_holds_a_model_and_an_optimizer_state(tmp_path):
    model = small_model(np.float64)
    velocity = layers.map_parameters(lambda p: np.full_like(p, -0.0), model)
    path = tmp_path / "c.npz"
    with own_registry():
        layers.register(State)
        write_records(path, {"model": model, "state": State(step=3, velocity=velocity)},
                      {"epoch": 2, "rng": {"state": 2 ** 127 + 1}}, kind="checkpoint")
        records, extra, kind = read_records(path)
        assert kind == "checkpoint" and extra == {"epoch": 2, "rng": {"state": 2 ** 127 + 1}}
        same(model, records["model"])
        same(State(step=3, velocity=velocity), records["state"])
        write_records(tmp_path / "plain.npz", {"model": model, "state": State(step=0, velocity=None)})
        assert read_records(tmp_path / "plain.npz")[0]["state"] == State(step=0, velocity=None)
    # without State registered, layers.load still gives the model; reading the state is refused
    same(model, layers.load(path))
    with pytest.raises(layers.ModelFileError, match="state is a State, which is not registered"):
        read_records(path)


def test_with_the_real_sgd_state(tmp_path):
    from lamina import optim
    if registry.registered_name(optim.SGDState) is None:
        layers.register(optim.SGDState)
    model = small_model()
    opt = optim.SGD(learning_rate=0.1, momentum=0.9)
    x, y = np.ones((3, 4), np.float32), np.zeros((3, 2), np.float32)
    _, cache = model.forward(x, layers.EVAL)
    _, grads = model.backward(cache, y - 1, layers.EVAL)
    model, state = opt.update(model, grads, opt.init(model))
    write_records(tmp_path / "c.npz", {"model": model, "state": state}, kind="checkpoint")
    records, _, _ = read_records(tmp_path / "c.npz")
    same(state, records["state"])
    assert records["state"].step == 1
    same(model, layers.load(tmp_path / "c.npz"))


def test_load_extra_reads_no_array(tmp_path):
    path = tmp_path / "m.npz"
    layers.save(path, small_model(), note="kept")
    with zipfile.ZipFile(path) as archive:
        last = archive.infolist()[-1]
    data = bytearray(path.read_bytes())
    # the last array's last byte
    data[last.header_offset + 30 + len(last.filename) + last.file_size - 1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert layers.load_extra(path) == {"note": "kept"}
    with pytest.raises(layers.ModelFileError, match="CRC"):
        layers.load(path)


def test_load_of_a_file_without_a_model(tmp_path):
    with own_registry():
        layers.register(State)
        write_records(tmp_path / "s.npz", {"state": State(step=1)}, kind="state")
        with pytest.raises(layers.ModelFileError, match="holds no 'model' record"):
            layers.load(tmp_path / "s.npz")


# ---- the writer refuses what the reader would refuse ---------------------------------------------

@pytest.mark.parametrize("extra, message", [
    ({"loss": [1.0, math.nan]}, r"extra\['loss'\]\[1\] is nan; .*no NaN or infinity"),
    ({"best": math.inf}, "no NaN or infinity"),
    ({"sizes": (784, 10)}, r"extra\['sizes'\] is a tuple \(use a list\)"),
    ({"loss": np.float64(1.0)}, r"numpy.float64 \(convert it with int\(\), float\(\) or .tolist\(\)\)"),
    ({"weights": np.ones(3)}, "numpy.ndarray"),
    ({"by_epoch": {1: 0.5}}, "has the key 1; JSON keys are strings"),
    ({"fn": print}, "builtin_function_or_method"),
    ({"big": 10 ** 5000}, "cannot be written as JSON"),
])
def test_the_writer_refuses_extra_that_is_not_json(tmp_path, extra, message):
    path = tmp_path / "m.npz"
    with pytest.raises(layers.ModelFileError, match=message):
        layers.save(path, small_model(), **extra)
    assert os.listdir(tmp_path) == []


def test_the_writer_refuses_circular_extra(tmp_path):
    loop = []
    loop.append(loop)
    with pytest.raises(layers.ModelFileError, match="nested more than"):
        layers.save(tmp_path / "m.npz", small_model(), loop=loop)
    assert os.listdir(tmp_path) == []


def test_the_writer_refuses_what_it_cannot_describe(tmp_path):
    model = small_model()
    float16 = layers.Sequence([layers.Dense.init(np.random.default_rng(0), 2, 2)])
    object.__setattr__(float16.layers[0], "bias", np.zeros(2, np.float16))      # past the constructor's check
    cases = [
        ({"model": float16}, r"model.layers\[0\].bias is a parameter or buffer holding numpy.ndarray "
                             r"float16"),
        ({"model": model, "bad name": model}, "must be a Python identifier"),
        ({"model": [model]}, "holds a list"),
    ]
    with own_registry():
        layers.register(Scale)
        cases.append(({"model": layers.Sequence([Scale(gain=np.ones(2), note=lambda: 0)])},
                      r"model.layers\[0\].note holds a function"))
        cases.append(({"model": layers.Sequence([Scale(gain=np.ones(2), note=np.ones(2))])}, "neither a "
                                                                                             "parameter nor "
                                                                                             "a buffer; "
                                                                                             "declare the "
                                                                                             "field with "
                                                                                             "layers.param"))
        for records, message in cases:
            with pytest.raises(layers.ModelFileError, match=message):
                write_records(tmp_path / "m.npz", records)
        with pytest.raises(layers.ModelFileError, match="kind must be"):
            write_records(tmp_path / "m.npz", {"model": model}, kind="Check Point")
        with pytest.raises(layers.ModelFileError, match="must be a layer record"):
            layers.save(tmp_path / "m.npz", [model])
    assert os.listdir(tmp_path) == []


def test_the_writer_refuses_a_record_its_constructor_would_refuse(tmp_path):
    dense = layers.Dense.init(np.random.default_rng(0), 3, 2)
    object.__setattr__(dense, "bias", np.zeros(5, np.float32).copy())    # bias no longer fits weight
    with pytest.raises(layers.ModelFileError, match=r"cannot save: model: Dense refuses the stored values"):
        layers.save(tmp_path / "m.npz", dense)
    assert os.listdir(tmp_path) == []


def test_the_writer_refuses_files_of_4_gib_or_more(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_ARCHIVE_BYTES", 1700)     # the 1,600-byte weight fits, the file does not
    with pytest.raises(layers.ModelFileError, match="less than 4 GiB"):
        layers.save(tmp_path / "m.npz", layers.mlp(np.random.default_rng(0), [20, 20]))
    assert os.listdir(tmp_path) == []


# ---- atomic writes -------------------------------------------------------------------------------

class FullDisk:
    """A file that takes ``room`` bytes and then fails as a full disk does."""

    def __init__(self, file, room):
        self.file, self.room = file, room

    def write(self, data):
        data = memoryview(data).cast("B")
        if len(data) > self.room:
            self.file.write(data[:self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def fail_mid_write(exception, folder):
    def write_archive(file, members):
        file.write(b"PK\x03\x04 half a file")
        assert any(name.endswith(".tmp") for name in os.listdir(folder))   # the temporary file exists now
        raise exception
    return write_archive


@pytest.mark.parametrize("failure",
                         ["disk full", "interrupt mid-write", "fsync", "interrupt at replace", "replace"])
@pytest.mark.parametrize("existing", [True, False])
def test_a_failed_save_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch, failure, existing):
    path = tmp_path / "m.npz"
    if existing:
        layers.save(path, small_model(seed=1), note="old")
    before = path.read_bytes() if existing else None
    real_fdopen = os.fdopen
    if failure == "disk full":
        monkeypatch.setattr(os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode), 300))
        expected = OSError
    elif failure == "interrupt mid-write":
        monkeypatch.setattr(files, "write_archive", fail_mid_write(KeyboardInterrupt(), tmp_path))
        expected = KeyboardInterrupt
    elif failure == "fsync":
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
        expected = OSError
    else:
        error = KeyboardInterrupt() if failure == "interrupt at replace" else OSError(errno.ENOSPC, "full")
        monkeypatch.setattr(os, "replace", lambda a, b: (_ for _ in ()).throw(error))
        expected = type(error)
    with pytest.raises(expected):
        layers.save(path, small_model(seed=2), note="new")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == (["m.npz"] if existing else [])
    if existing:
        assert path.read_bytes() == before
        assert layers.load_extra(path) == {"note": "old"}


def test_a_save_replaces_atomically_and_syncs(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    layers.save(path, small_model(seed=1))
    os.chmod(path, 0o640)
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync",
                        lambda fd: (calls.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode))),
                                    real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace",
                        lambda a, b: (calls.append(("replace", os.path.dirname(a) == str(tmp_path))),
                                      real_replace(a, b))[1])
    layers.save(path, small_model(seed=2))
    assert calls == [("fsync", False), ("replace", True),
                     ("fsync", True)]  # file, rename in its folder, folder
    assert os.stat(path).st_mode & 0o777 == 0o640
    same(small_model(seed=2), layers.load(path))
