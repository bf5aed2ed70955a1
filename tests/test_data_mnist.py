"""data.mnist: the shipped files (shapes, dtypes, ranges, checksums) and user copies via path= and
$LAMINA_DATA."""

import importlib.resources
import importlib.util
import sys

import numpy as np
import pytest

import data_fixtures as fx

from lamina import data


# the published class counts of MNIST, digits 0..9
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def shipped():
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LAMINA_DATA", raising=False)
        return data.mnist()


@pytest.fixture
def no_user_data(monkeypatch):
    monkeypatch.delenv("LAMINA_DATA", raising=False)


def test_shipped_mnist_shapes_dtypes_ranges(shipped):
    (x_train, y_train), (x_test, y_test) = shipped
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    for x in (x_train, x_test):
        assert x.min() == 0.0 and x.max() == 1.0
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_COUNTS
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_images_are_the_bytes_over_255_in_float32(shipped):
    (x_train, _), _ = shipped
    raw = data.read_idx(importlib.resources.files("lamina.data") / "mnist-idx" / "train-images-idx3-ubyte.gz")
    assert raw.shape == (60000, 28, 28) and raw.dtype == np.uint8
    assert np.array_equal(x_train, raw.reshape(60000, 784).astype(np.float32) / np.float32(255))


def test_flatten_false_gives_28_by_28(shipped, no_user_data):
    (x_train, y_train), (x_test, y_test) = data.mnist(flatten=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.array_equal(x_test.reshape(10000, 784), shipped[1][0])
    assert np.array_equal(y_train, shipped[0][1])


def test_package_data_holds_the_files_and_their_credit():
    folder = importlib.resources.files("lamina.data") / "mnist-idx"
    for name in fx.FILES:
        assert (folder / name).is_file(), name
    readme = (folder / "README.md").read_text()
    assert "CC BY-SA 3.0" in readme or "Attribution-Share Alike 3.0" in readme


def test_shipped_table_matches_the_readme():
    sources = sys.modules["lamina.data.sources"]
    readme = (importlib.resources.files("lamina.data") / "mnist-idx" / "README.md").read_text()
    for name, sha in sources.MNIST.sha256:
        assert f"| {name} |" in readme and sha in readme


def _user_copy(folder, gz=True, **kwargs):
    contents, arrays = fx.fake_set(**kwargs)
    fx.write_set(folder, contents, gz=gz)
    return arrays


def _expect(result, arrays, flatten=True):
    (x_train, y_train), (x_test, y_test) = result
    for x, y, images, labels in ((x_train, y_train, arrays[fx.FILES[0]], arrays[fx.FILES[1]]),
                                 (x_test, y_test, arrays[fx.FILES[2]], arrays[fx.FILES[3]])):
        want = images.reshape(len(images), -1) if flatten else images
        np.testing.assert_array_equal(x, want.astype(np.float32) / np.float32(255))
        assert x.dtype == np.float32 and y.dtype == np.int64
        np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
def test_path_reads_a_user_copy_with_verify_off(tmp_path, no_user_data, gz):
    arrays = _user_copy(tmp_path / "mine", gz=gz)
    _expect(data.mnist(tmp_path / "mine", verify=False), arrays)
    _expect(data.mnist(str(tmp_path / "mine"), flatten=False, verify=False), arrays, flatten=False)


def test_path_subfolder_mnist(tmp_path, no_user_data):
    arrays = _user_copy(tmp_path / "datasets" / "mnist")
    _expect(data.mnist(tmp_path / "datasets", verify=False), arrays)


def test_user_copy_is_checked_against_the_official_hashes_by_default(tmp_path, no_user_data):
    _user_copy(tmp_path / "mine")
    with pytest.raises(data.ChecksumError) as caught:
        data.mnist(tmp_path / "mine")
    message = str(caught.value)
    assert "train-images-idx3-ubyte.gz" in message and "verify=False" in message
    assert sys.modules["lamina.data.sources"].MNIST.checksum("train-images-idx3-ubyte.gz") in message


@pytest.mark.parametrize("sub", ["", "mnist"])
def test_lamina_data_points_at_a_user_copy(tmp_path, monkeypatch, sub):
    arrays = _user_copy(tmp_path / "store" / sub, seed=3)
    monkeypatch.setenv("LAMINA_DATA", str(tmp_path / "store"))
    _expect(data.mnist(verify=False), arrays)


def test_lamina_data_without_mnist_falls_back_to_the_shipped_copy(tmp_path, monkeypatch):
    (tmp_path / "store" / "fashion-mnist").mkdir(parents=True)
    monkeypatch.setenv("LAMINA_DATA", str(tmp_path / "store"))
    (x_train, _), (x_test, _) = data.mnist(flatten=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)


def test_path_without_the_files_is_not_found(tmp_path, no_user_data):
    folder = tmp_path / "empty"
    folder.mkdir()
    _user_copy(tmp_path / "partial")
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    for where in (folder, tmp_path / "partial", tmp_path / "missing"):
        with pytest.raises(data.DatasetNotFoundError) as caught:
            data.mnist(where)
        assert isinstance(caught.value, FileNotFoundError)
        assert str(where) in str(caught.value) and "t10k-labels-idx1-ubyte.gz" in str(caught.value)


def test_labels_out_of_range_are_an_idx_error(tmp_path, no_user_data):
    contents, arrays = fx.fake_set()
    labels = arrays[fx.FILES[3]].copy()
    labels[2] = 10
    contents[fx.FILES[3]] = fx.idx_bytes(labels)
    fx.write_set(tmp_path, contents)
    with pytest.raises(data.IDXError) as caught:
        data.mnist(tmp_path, verify=False)
    assert caught.value.field == "data" and "labels[2] is 10" in str(caught.value)
    assert "t10k-labels-idx1-ubyte.gz" in str(caught.value)


def test_label_count_must_match_image_count(tmp_path, no_user_data):
    contents, arrays = fx.fake_set()
    contents[fx.FILES[1]] = fx.idx_bytes(arrays[fx.FILES[1]][:-1])
    fx.write_set(tmp_path, contents)
    with pytest.raises(data.IDXError) as caught:
        data.mnist(tmp_path, verify=False)
    message = str(caught.value)
    assert caught.value.field == "dims" and "11 labels" in message and "12 images" in message


def test_images_must_be_ubyte_rows_by_cols(tmp_path, no_user_data):
    contents, arrays = fx.fake_set()
    contents[fx.FILES[0]] = fx.idx_bytes(arrays[fx.FILES[0]].astype(np.int16))
    fx.write_set(tmp_path, contents)
    with pytest.raises(data.IDXError) as caught:
        data.mnist(tmp_path, verify=False)
    assert caught.value.field == "type code" and "train-images" in str(caught.value)

