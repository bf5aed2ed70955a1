"""Model files that are damaged, foreign or hostile: each gives a ModelFileError naming the file and the
fault.

One test per row of the fault table in issue 3, then a fuzz test of random mutations. Nothing a
file holds is ever run: pickle payloads here would create a file if they were, and the tests
check that it never appears.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import struct
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lamina import layers
from lamina.layers.files import stored_zip

MANIFEST = "lamina.json"


# ---- helpers -------------------------------------------------------------------------------------

def model():
    return layers.mlp(np.random.default_rng(0), [4, 3, 2])


@pytest.fixture
def valid(tmp_path) -> Path:
    path = tmp_path / "valid.npz"
    layers.save(path, model(), history={"loss": [1.0, 0.5]})
    return path


def members_of(path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def write_members(path, members) -> Path:
    """A stored ZIP laid out exactly as lamina lays it out, holding whatever ``members`` says."""
    with open(path, "wb") as file:
        stored_zip.write_archive(file, [(name, [data]) for name, data in members])
    return Path(path)


def edit_manifest(valid, path, change) -> Path:
    """``valid`` with ``change(manifest)`` applied to its manifest (members unchanged)."""
    members = members_of(valid)
    manifest = json.loads(members[0][1])
    change(manifest)
    return write_members(path, [(MANIFEST, json.dumps(manifest).encode())] + members[1:])


def replace_member(valid, path, name, data) -> Path:
    return write_members(path, [(n, data if n == name else d) for n, d in members_of(valid)])


class Scratch:
    """One file rewritten in place again and again (quicker than re-creating it: no truncation to zero)."""

    def __init__(self, path):
        self.path = path
        self.file = open(path, "w+b")

    def put(self, data: bytes) -> Path:
        self.file.seek(0)
        self.file.write(data)
        self.file.truncate()
        self.file.flush()
        return self.path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def refused(path, *fragments) -> str:
    """Load ``path``, expect a ModelFileError naming it and containing each fragment; return the message."""
    with pytest.raises(layers.ModelFileError) as error:
        layers.load(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and error.value.path == os.fspath(path)
    for fragment in fragments:
        assert fragment in message, message
    return message


class Payload:
    """Unpickling this creates the file ``target``: the proof that something ran."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return open, (self.target, "w")


@pytest.fixture
def no_unpickling(monkeypatch):
    """Any unpickling during the test fails it."""
    def forbidden(*args, **kwargs):
        raise AssertionError("something was unpickled")
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)


def peak_bytes(fn) -> int:
    """The peak of Python-tracked memory (numpy's buffers included) while ``fn`` runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def npy_with_header(header_dict: str, data: bytes, *, version=(1, 0)) -> bytes:
    text = header_dict + " " * (-(10 + len(header_dict) + 1) % 64) + "\n"
    length = struct.pack("<H", len(text)) if version == (1, 0) else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes(version) + length + text.encode("latin-1") + data


# ---- the table, row by row -----------------------------------------------------------------------

def test_a_pickle_renamed_npz_is_refused_and_never_runs(tmp_path, monkeypatch):
    target = tmp_path / "pwned"
    payload = pickle.dumps(Payload(target))
    # the payload is live: unpickling creates the file
    pickle.loads(payload)
    assert target.exists()
    target.unlink()
    path = tmp_path / "model.npz"
    path.write_bytes(payload)
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    refused(path, "a Python pickle, which lamina never loads")
    with pytest.raises(layers.ModelFileError):
        layers.load_extra(path)
    assert not target.exists()


def test_an_object_dtype_member_is_refused_before_any_unpickling(valid, tmp_path, no_unpickling):
    target = tmp_path / "pwned"
    buffer = io.BytesIO()
    np.save(buffer, np.array([Payload(target)] * 3, dtype=object), allow_pickle=True)
    name = "model.layers[0].bias.npy"
    size = dict(members_of(valid))[name].__len__()
    hostile = buffer.getvalue().ljust(size, b"\x00")[:size]          # even with the size the manifest expects
    path = replace_member(valid, tmp_path / "object.npz", name, hostile)
    refused(path, f"the member {name!r} has a .npy 1.0 header", "'descr': '|O'",
            "the manifest says float32 (3,)")
    path = edit_manifest(path, tmp_path / "object2.npz",
                         lambda m: m["records"]["model"]["fields"]["layers"]["tuple"][0]["fields"]["bias"]
                         .update(array={"dtype": "object", "shape": [3]}))
    refused(path, "model.layers[0].bias has dtype 'object'; only float32 and float64")
    assert not target.exists()


@pytest.mark.parametrize("kind, message", [
    ("os.system", "names the kind 'os.system', which is not a registered class name; lamina never imports"),
    ("this.s", "names the kind 'this.s'"),
    ("builtins.eval", "never imports or calls what a file names"),
    ("Conv2d", "model.layers[0] is a Conv2d, which is not registered; if it is your own layer, decorate"),
    ("__import__", "is a __import__, which is not registered"),
])
def test_an_unknown_or_dotted_layer_kind_is_refused_and_nothing_imported(valid, tmp_path, kind, message):
    modules = set(sys.modules)
    path = edit_manifest(valid, tmp_path / "kind.npz",
                         lambda m: m["records"]["model"]["fields"]["layers"]["tuple"][0].update(record=kind))
    refused(path, message)
    assert set(sys.modules) == modules and "this" not in sys.modules


def test_truncated_at_any_byte_is_refused(valid):
    data = valid.read_bytes()
    messages = set()
    with Scratch(valid.with_name("cut.npz")) as cut:
        for n in range(len(data)):
            messages.add(refused(cut.put(data[:n])).split(": ", 1)[1][:30])
    assert "the file is empty; expected a " in messages and len(messages) >= 3


def test_one_flipped_byte_anywhere_is_refused_or_loads_identical(valid):
    data = valid.read_bytes()
    original = model()
    outcomes = {"refused": 0, "identical": 0}
    with Scratch(valid.with_name("flipped.npz")) as flipped:
        for i in range(len(data)):
            for mask in (0x01, 0x80):
                changed = bytearray(data)
                changed[i] ^= mask
                try:
                    loaded = layers.load(flipped.put(bytes(changed)))
                except layers.ModelFileError:
                    outcomes["refused"] += 1
                else:
                    assert loaded == original and all(a.tobytes() == b.tobytes() for a, b in
                                                      zip(layers.parameters(loaded),
                                                          layers.parameters(original)))
                    outcomes["identical"] += 1
    assert outcomes["refused"] + outcomes["identical"] == 2 * len(data)
    assert outcomes["identical"] == 0           # in fact every byte is checked (headers exactly, data by CRC)


def test_trailing_and_prepended_bytes_are_refused(valid, tmp_path):
    data = valid.read_bytes()
    (tmp_path / "t.npz").write_bytes(data + b"\x00" * 7)
    refused(tmp_path / "t.npz", "7 bytes follow the end of the ZIP archive")
    (tmp_path / "p.npz").write_bytes(b"#!/bin/sh\n" + data)
    refused(tmp_path / "p.npz", "10 bytes come before the ZIP archive")
    (tmp_path / "c.npz").write_bytes(data[:-2] + struct.pack("<H", 5) + b"hello")   # a ZIP comment
    refused(tmp_path / "c.npz", "5-byte comment")


def test_extra_missing_duplicate_and_escaping_members_are_refused(valid, tmp_path):
    members = members_of(valid)
    write_members(tmp_path / "extra.npz", members + [("notes.txt", b"hello")])
    refused(tmp_path / "extra.npz", "has unexpected member(s) ['notes.txt']")
    write_members(tmp_path / "missing.npz", members[:2] + members[3:])
    refused(tmp_path / "missing.npz", f"lacks the member(s) [{members[2][0]!r}]")
    write_members(tmp_path / "dup.npz", members + [members[1]])
    refused(tmp_path / "dup.npz", f"the member {members[1][0]!r} appears twice")
    write_members(tmp_path / "dup2.npz", [members[0]] + members)
    refused(tmp_path / "dup2.npz", "'lamina.json' appears twice")
    write_members(tmp_path / "escape.npz", members[:1] + [("../x.npy", members[1][1])] + members[2:])
    refused(tmp_path / "escape.npz", "has unexpected member(s) ['../x.npy']")
    write_members(tmp_path / "abs.npz", members + [("/etc/x", b"")])
    refused(tmp_path / "abs.npz", "unexpected member(s) ['/etc/x']")
    write_members(tmp_path / "order.npz", [members[0], members[2], members[1], *members[3:]])
    refused(tmp_path / "order.npz", "not in the order the manifest gives")
    write_members(tmp_path / "first.npz", members[1:] + members[:1])
    refused(tmp_path / "first.npz", "'lamina.json' is not the first member")
    assert not (tmp_path.parent / "x.npy").exists()


def test_a_member_inflating_to_200_mb_is_refused_before_inflating(valid, tmp_path):
    members = members_of(valid)
    path = tmp_path / "bomb.npz"
    zeros = bytes(1 << 20)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(MANIFEST, members[0][1])
        info = zipfile.ZipInfo(members[1][0])
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w") as member:
            for _ in range(200):
                member.write(zeros)
        for name, data in members[2:]:
            archive.writestr(name, data)
    assert path.stat().st_size < 2 << 20
    peak = peak_bytes(lambda: refused(path, f"the member {members[1][0]!r} is compressed (deflate)",
                                      "refuses compressed ones without inflating"))
    assert peak < 4 << 20, f"{peak:,} bytes"
    # a stored member whose directory entry claims 200 MB (the file is small): the layout gives it away
    data = bytearray(valid.read_bytes())
    entry = data.rfind(b"PK\x01\x02" + struct.pack("<HH", stored_zip.MADE_BY, 20))
    struct.pack_into("<II", data, entry + 20, 200 << 20, 200 << 20)
    (tmp_path / "lies.npz").write_bytes(bytes(data))
    assert peak_bytes(lambda: refused(tmp_path / "lies.npz", "sizes do not add up")) < 4 << 20


def first_weight(m):
    """The manifest entry of the first layer's weight array (a dict to edit)."""
    return m["records"]["model"]["fields"]["layers"]["tuple"][0]["fields"]["weight"]["array"]


def test_a_manifest_claiming_a_huge_array_is_refused_before_allocating(valid, tmp_path):
    def huge(m):
        first_weight(m)["shape"] = [4, 50_000_000]
    path = edit_manifest(valid, tmp_path / "huge.npz", huge)
    peak = peak_bytes(lambda: refused(path, "'model.layers[0].weight.npy' holds 176 bytes, but the "
                                            "manifest's float32 (4, 50000000) takes 800,000,128"))
    assert peak < 4 << 20, f"{peak:,} bytes"


@pytest.mark.parametrize("header, what", [
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 1000000000000), }", "absurd"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }", "negative"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (True, 3), }", "bool"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551616, 18446744073709551616), "
     "}", "overflow"),
    ("{'descr': '<f4', 'fortran_order': True, 'shape': (4, 3), }", "fortran"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), '__class__': 1}", "extra key"),
    ("(" * 5000 + ")" * 5000, "deep"),
])
def test_npy_headers_with_bad_shapes_are_refused_before_allocating(valid, tmp_path, header, what):
    name = "model.layers[0].weight.npy"
    good = dict(members_of(valid))[name]
    member = npy_with_header(header, good[-48:]).ljust(len(good), b"\x00")[:len(good)]   # the expected size
    path = replace_member(valid, tmp_path / f"{what}.npz", name, member)
    peak = peak_bytes(lambda: refused(path, f"the member {name!r} has a .npy",
                                      "the manifest says float32 (4, 3)"))
    assert peak < 1 << 20, f"{what}: {peak:,} bytes"


@pytest.mark.parametrize("version, length", [((1, 0), 65535), ((2, 0), 2 ** 31), ((3, 0), 2 ** 32 - 1)])
def test_oversized_npy_headers_are_refused_before_allocating(valid, tmp_path, version, length):
    name = "model.layers[0].weight.npy"
    good = dict(members_of(valid))[name]
    size = struct.pack("<H", length) if version == (1, 0) else struct.pack("<I", length)
    member = (b"\x93NUMPY" + bytes(version) + size + b"{'descr': '<f4', ").ljust(len(good), b" ")
    path = replace_member(valid, tmp_path / "big.npz", name, member)
    peak = peak_bytes(lambda: refused(path, f"the member {name!r} has a .npy {version[0]}.0 header"))
    assert peak < 1 << 20


@pytest.mark.parametrize("dtype", ["int64", "float16", ">f4", "<f4", "float128", "complex64", "bool"])
def test_arrays_of_other_dtypes_in_the_manifest_are_refused(valid, tmp_path, dtype):
    path = edit_manifest(valid, tmp_path / "dtype.npz",
                         lambda m: m["records"]["model"]["fields"]["layers"]["tuple"][0]
                         ["fields"]["bias"]["array"].update(dtype=dtype))
    refused(path, f"model.layers[0].bias has dtype {dtype!r}; only float32 and float64 parameters "
                  "(little-endian)")


@pytest.mark.parametrize("descr", ["<i8", ">f4", "<f2", "<i4", "|u1"])
def test_arrays_of_other_dtypes_in_the_npy_header_are_refused(valid, tmp_path, descr):
    """The manifest says float32, the member says otherwise (its size made to fit)."""
    name = "model.layers[0].bias.npy"
    good = dict(members_of(valid))[name]
    member = npy_with_header(f"{{'descr': '{descr}', 'fortran_order': False, 'shape': (3,), }}", good[-12:])
    path = replace_member(valid, tmp_path / "descr.npz", name, member.ljust(len(good), b"\x00")[:len(good)])
    refused(path, f"'descr': '{descr}'", "the manifest says float32 (3,)")


def test_a_shape_that_contradicts_the_manifest_is_refused(valid, tmp_path):
    name = "model.layers[0].weight.npy"
    good = dict(members_of(valid))[name]
    swapped = good.replace(b"'shape': (4, 3)", b"'shape': (3, 4)")
    assert swapped != good
    refused(replace_member(valid, tmp_path / "swap.npz", name, swapped), "'shape': (3, 4)",
            "manifest says float32 (4, 3)")

    def both(m):        # manifest and member agree with each other, but not with the layer: Dense refuses
        first_weight(m)["shape"] = [3, 4]
    path = replace_member(edit_manifest(valid, tmp_path / "both.npz", both), tmp_path / "both.npz", name,
                          swapped)
    refused(path, "model.layers[0]: Dense refuses the stored values (ShapeError")


def test_a_plain_np_savez_file_is_refused_saying_so(tmp_path):
    np.savez(tmp_path / "plain.npz", weight=np.ones((4, 3), np.float32), bias=np.zeros(3, np.float32))
    refused(tmp_path / "plain.npz", "a plain NumPy .npz archive (np.savez) without lamina's manifest "
                                    "'lamina.json'")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "hello")
    refused(tmp_path / "other.zip", "a ZIP archive without lamina's manifest")


def test_an_empty_file_is_refused_saying_so(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    refused(tmp_path / "empty.npz", "the file is empty")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w"):
        pass
    refused(tmp_path / "empty.zip", "an empty ZIP archive")


def test_a_newer_format_version_is_refused_saying_which(valid, tmp_path):
    path = edit_manifest(valid, tmp_path / "v4.npz", lambda m: m.update(version=4, layout="new"))
    refused(path, "format version 4, newer than this lamina reads (version 3); upgrade lamina")
    path = edit_manifest(valid, tmp_path / "other.npz", lambda m: m.update(format="keras"))
    refused(path, "not a lamina model file: the manifest's format is 'keras'")


def test_a_missing_path_stays_file_not_found(tmp_path):
    for fn in (layers.load, layers.load_extra):
        with pytest.raises(FileNotFoundError):
            fn(tmp_path / "nope.npz")


# ---- more of the manifest: each part is checked before it is used --------------------------------

@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("extra"), "the manifest lacks ['extra']"),
    (lambda m: m.update(code="import os"), "has unexpected ['code']"),
    (lambda m: m["records"]["model"].update(record=["Sequence"]), "unknown node"),
    (lambda m: m["records"]["model"]["fields"].update(layers=[1, 2]), "holds a JSON list"),
    (lambda m: m["records"]["model"]["fields"].update(dtype={"float": "nan"}), "has unexpected ['dtype']"),
    (lambda m: m["records"]["model"]["fields"]["layers"]["tuple"][1]["fields"].update(x=1),
     "the ReLU in the file has unexpected ['x']"),
    (lambda m: first_weight(m).update(shape=[4, -3]),
     "has shape [4, -3]"),
    (lambda m: first_weight(m).update(shape=[4, True]),
     "has shape [4, True]"),
    (lambda m: first_weight(m).update(shape=[2 ** 64, 2 ** 64]),
     "has shape [18446744073709551616"),
    (lambda m: first_weight(m).update(shape=[2 ** 31, 2 ** 31]),
     "more than a model file holds"),
    (lambda m: m["records"].update({"../x": {"record": "ReLU", "fields": {}}}),
     "the record name '../x' is not an identifier"),
    (lambda m: m["records"]["model"]["fields"]["layers"]["tuple"][0]["fields"].update({"../w": 1}),
     "has a field named '../w'"),
    (lambda m: m.update(kind="../../etc"), "the manifest's kind is '../../etc'"),
])
def test_a_manifest_that_breaks_the_format_is_refused(valid, tmp_path, change, message):
    refused(edit_manifest(valid, tmp_path / "m.npz", change), message)


@pytest.mark.parametrize("value, message", [
    (..., "the Dense in the file lacks ['bias']"),
    (None, "model.layers[0].bias is a parameter or buffer of Dense, but the file holds no array there"),
    ({"tuple": []}, "model.layers[0].bias is a parameter or buffer of Dense, but the file holds no array "
                    "there"),
])
def test_a_parameter_without_an_array_is_refused(valid, tmp_path, value, message):
    def change(m):
        fields = m["records"]["model"]["fields"]["layers"]["tuple"][0]["fields"]
        fields.pop("bias") if value is ... else fields.update(bias=value)
    path = edit_manifest(valid, tmp_path / "m.npz", change)
    write_members(path, [(n, d) for n, d in members_of(path) if n != "model.layers[0].bias.npy"])
    refused(path, message)


def test_an_array_outside_a_parameter_field_is_refused(valid, tmp_path):
    def change(m):
        m["records"]["model"]["fields"]["layers"]["tuple"][1] = {"array": {"dtype": "float32", "shape": [3]}}
    path = edit_manifest(valid, tmp_path / "m.npz", change)
    members = members_of(path)
    members.insert(3, ("model.layers[1].npy", dict(members)["model.layers[0].bias.npy"]))
    write_members(path, members)
    refused(path, "model.layers[1] holds an array, but only a parameter or buffer field (layers.param(), "
                  "layers.buffer()) may")


@pytest.mark.parametrize("text, message", [
    (b'{"format": "lamina.model_file", "format": "x"}', "the key 'format' appears twice"),
    (b'{"a": NaN}', "NaN is not JSON"),
    (b'{"a": 1e999}', "the number 1e999 is not finite"),
    (b"[" * 100000 + b"]" * 100000, "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[]", "not a JSON object"),
])
def test_a_manifest_that_is_not_strict_json_is_refused(valid, tmp_path, text, message):
    refused(replace_member(valid, tmp_path / "m.npz", MANIFEST, text), message)


def test_a_deeply_nested_manifest_is_refused(valid, tmp_path):
    def deep(m):
        node = {"record": "ReLU", "fields": {}}
        for _ in range(200):
            node = {"tuple": [node]}
        m["records"]["model"]["fields"]["layers"]["tuple"][1] = node
    refused(edit_manifest(valid, tmp_path / "deep.npz", deep), "nested more than 64 deep")


def test_an_oversized_manifest_is_refused_before_reading(valid, tmp_path, monkeypatch):
    from lamina.layers.files import model_file as files
    monkeypatch.setattr(files, "MAX_MANIFEST_BYTES", 100)
    refused(valid, "the manifest takes", "at most 100 are read")


# ---- fuzz ----------------------------------------------------------------------------------------

def mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    n = len(data)
    op = rng.randrange(7)
    i = rng.randrange(n)
    if op == 0:                                             # flip one bit
        data[i] ^= 1 << rng.randrange(8)
    elif op == 1:                                           # overwrite a few bytes
        for k in range(i, min(n, i + rng.randint(1, 8))):
            data[k] = rng.randrange(256)
    elif op == 2:                                           # insert bytes
        data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif op == 3:                                           # delete bytes
        del data[i:i + rng.randint(1, 16)]
    elif op == 4:                                           # truncate
        del data[i:]
    elif op == 5:                                           # copy a run of bytes elsewhere
        j, k = rng.randrange(n), rng.randint(1, 64)
        data[i:i + k] = data[j:j + k]
    else:                                                   # a small integer in a header field
        struct.pack_into("<H", data, min(i, n - 2), rng.choice([0, 1, 0xFFFF, rng.randrange(65536)]))
    return bytes(data)


def test_fuzz_random_mutations_are_refused_or_load_identical(valid):
    data = valid.read_bytes()
    original = model()
    rng = random.Random(20260529)
    outcomes = {"refused": 0, "identical": 0}
    with Scratch(valid.with_name("mutated.npz")) as scratch:
        for _ in range(4000):
            mutated = scratch.put(mutate(data, rng))
            try:
                loaded = layers.load(mutated)
            except layers.ModelFileError as error:
                assert str(error).startswith(str(mutated))
                outcomes["refused"] += 1
            else:
                assert type(loaded) is type(original) and loaded == original
                assert all(a.tobytes() == b.tobytes() and a.dtype == b.dtype
                           for a, b in zip(layers.parameters(loaded), layers.parameters(original)))
                assert layers.load_extra(mutated) == {"history": {"loss": [1.0, 0.5]}}
                outcomes["identical"] += 1
    assert outcomes["refused"] > 3500, outcomes
