"""read_idx: round trips, every header and data fault, gzip damage, checksums."""

import ast
import gzip
from pathlib import Path

import numpy as np
import pytest

import data_fixtures as fx

from lamina import data


ARRAYS = {
    "ubyte": np.arange(24, dtype=np.uint8).reshape(2, 3, 4) * 10,
    "byte": np.array([-128, -1, 0, 1, 127], dtype=np.int8),
    "short": np.array([[0x0102, -2], [32767, -32768]], dtype=np.int16),
    "int": np.array([0x01020304, -5, 2**31 - 1], dtype=np.int32),
    "float": np.array([[1.5, -0.25, np.pi]], dtype=np.float32),
    "double": np.array([np.e, -1e300, 0.0, 1 / 3], dtype=np.float64),
}


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("kind", list(ARRAYS))
def test_round_trip_every_type(tmp_path, kind, gz):
    array = ARRAYS[kind]
    # a name without .gz on purpose: gzip is told by the first bytes, not the name
    path = fx.write(tmp_path / "file.idx", fx.idx_bytes(array), gz=gz)
    back = data.read_idx(path)
    assert back.dtype == array.dtype and back.dtype.isnative
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_accepts_str_path_and_returns_a_writable_array(tmp_path):
    array = np.arange(6, dtype=np.int16).reshape(3, 2)
    path = fx.write(tmp_path / "a.idx.gz", fx.idx_bytes(array), gz=True)
    back = data.read_idx(str(path))
    np.testing.assert_array_equal(back, array)
    back[0, 0] = 7  # the caller owns the result
    assert back[0, 0] == 7


def test_empty_dims_give_an_empty_array(tmp_path):
    path = fx.write(tmp_path / "empty.idx", fx.idx_bytes(np.zeros((0, 28, 28), np.uint8)))
    assert data.read_idx(path).shape == (0, 28, 28)


GOOD = fx.idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))  # header 4 + 8 bytes, data 12 bytes

FAULTS = {
    "wrong magic": (b"\x01\x00" + GOOD[2:], False, "magic"),
    "text file": (b"hello, this is not an IDX file\n", False, "magic"),
    "empty file": (b"", False, "magic"),
    "short magic": (b"\x00\x00", False, "magic"),
    "bad type code": (GOOD[:2] + b"\x0a" + GOOD[3:], False, "type code"),
    "ndim zero": (GOOD[:3] + b"\x00", False, "ndim"),
    "dims cut short": (GOOD[:4] + GOOD[4:10], False, "dims"),
    "ndim larger than the dims": (GOOD[:3] + b"\x05" + GOOD[4:12], False, "dims"),
    "dims too large to hold": (b"\x00\x00\x08\x03" + b"\xff" * 12 + b"\x00", False, "dims"),
    "truncated data": (GOOD[:-1], False, "data"),
    "trailing bytes": (GOOD + b"\x00\x01", False, "data"),
    "truncated data in gzip": (GOOD[:-3], True, "data"),
    "trailing bytes in gzip": (GOOD + b"\x07", True, "data"),
}


@pytest.mark.parametrize("case", list(FAULTS))
def test_faults_name_the_file_and_the_field(tmp_path, case):
    content, gz, field = FAULTS[case]
    path = fx.write(tmp_path / "bad.idx", content, gz=gz)
    with pytest.raises(data.IDXError) as caught:
        data.read_idx(path)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.field == field
    assert str(path) in str(error) and f": {field}:" in str(error)


def test_truncated_gzip_is_an_idx_error(tmp_path):
    packed = gzip.compress(fx.idx_bytes(np.arange(5000, dtype=np.int32)), mtime=0)
    path = tmp_path / "cut.idx.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(data.IDXError) as caught:
        data.read_idx(path)
    assert caught.value.field == "gzip" and str(path) in str(caught.value)


def test_gzip_with_a_wrong_crc_is_an_idx_error(tmp_path):
    packed = bytearray(gzip.compress(GOOD, mtime=0))
    packed[-8] ^= 0xFF  # the CRC-32 of the decompressed content
    path = tmp_path / "crc.idx.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(data.IDXError) as caught:
        data.read_idx(path)
    assert caught.value.field == "gzip"


def test_gzip_header_only_is_an_idx_error(tmp_path):
    path = tmp_path / "stub.gz"
    path.write_bytes(gzip.compress(GOOD, mtime=0)[:5])
    with pytest.raises(data.IDXError) as caught:
        data.read_idx(path)
    assert caught.value.field == "gzip"


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_checksum_of_the_decompressed_content(tmp_path, gz):
    path = fx.write(tmp_path / "a.idx", GOOD, gz=gz)
    right = fx.sha256(GOOD)
    np.testing.assert_array_equal(data.read_idx(path, expected_sha256=right), np.arange(12).reshape(3, 4))
    np.testing.assert_array_equal(data.read_idx(path, expected_sha256=right.upper()),
                                  np.arange(12).reshape(3, 4))
    wrong = fx.sha256(GOOD + b"x")
    with pytest.raises(data.ChecksumError) as caught:
        data.read_idx(path, expected_sha256=wrong)
    error = caught.value
    assert isinstance(error, data.IDXError) and error.field == "sha256"
    assert error.expected == wrong and error.actual == right
    assert wrong in str(error) and right in str(error) and str(path) in str(error)


def test_structural_fault_wins_over_checksum(tmp_path):
    path = fx.write(tmp_path / "a.idx", GOOD + b"\x00")
    with pytest.raises(data.IDXError) as caught:
        data.read_idx(path, expected_sha256=fx.sha256(GOOD + b"\x00"))
    assert caught.value.field == "data" and not isinstance(caught.value, data.ChecksumError)


@pytest.mark.parametrize("bad", ["abc", "z" * 64, 123])
def test_expected_sha256_must_be_hex(tmp_path, bad):
    path = fx.write(tmp_path / "a.idx", GOOD)
    with pytest.raises(ValueError, match="64 hex digits"):
        data.read_idx(path, expected_sha256=bad)


def test_errors_survive_pickling():
    import pickle
    for error in (data.IDXError("f.idx", "magic", "bad"),
                  data.ChecksumError("f.idx", "a" * 64, "b" * 64, "hint"),
                  data.DatasetNotFoundError("not here", looked=["/x"])):
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error)


def test_no_assert_statements_in_lamina_data():
    # checks must hold under python -O, so lamina.data validates with if/raise only
    folder = Path(data.__file__).parent
    sources = sorted(folder.glob("*.py"))
    assert len(sources) >= 5
    for source in sources:
        tree = ast.parse(source.read_text(), filename=str(source))
        asserts = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)]
        assert asserts == [], f"{source.name} uses assert on lines {asserts}"
