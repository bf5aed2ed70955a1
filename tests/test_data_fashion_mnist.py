"""data.fashion_mnist: the places it looks, and the download path against a local server (never the
internet)."""

import gzip
import sys

import attrs
import numpy as np
import pytest

import data_fixtures as fx

from lamina import data

sources = sys.modules["lamina.data.sources"]


FILES = fx.FILES
UNREACHABLE = "http://127.0.0.1:1/"


@pytest.fixture
def fake():
    """The fake set's {name: decompressed bytes}, {name: gzipped bytes} and arrays."""
    contents, arrays = fx.fake_set(seed=7)
    packed = {name: gzip.compress(content, mtime=0) for name, content in contents.items()}
    return contents, packed, arrays


@pytest.fixture
def home(tmp_path, monkeypatch, fake):
    """An isolated machine: no $LAMINA_DATA, the cache in tmp_path, a Debian folder in tmp_path, the fake
    set's hashes."""
    contents, _, _ = fake
    monkeypatch.delenv("LAMINA_DATA", raising=False)
    monkeypatch.delenv("LAMINA_FASHION_MNIST_URL", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setattr(sources, "FASHION_MNIST", attrs.evolve(
        sources.FASHION_MNIST, sha256=fx.table(contents), mirrors=(UNREACHABLE,),
        system_folder=str(tmp_path / "usr-share-datasets" / "fashion-mnist")))
    return tmp_path


def _cache(home):
    return home / "xdg-cache" / "lamina" / "fashion-mnist"


def _listing(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _expect(result, arrays, flatten=True):
    (x_train, y_train), (x_test, y_test) = result
    for x, y, images, labels in ((x_train, y_train, arrays[FILES[0]], arrays[FILES[1]]),
                                 (x_test, y_test, arrays[FILES[2]], arrays[FILES[3]])):
        want = images.reshape(len(images), -1) if flatten else images
        assert x.dtype == np.float32 and y.dtype == np.int64
        np.testing.assert_array_equal(x, want.astype(np.float32) / np.float32(255))
        np.testing.assert_array_equal(y, labels)


def test_download_moves_verified_files_into_the_cache(home, fake):
    _, packed, arrays = fake
    with fx.Server(packed) as server:
        _expect(data.fashion_mnist(base_url=server.url, progress=False), arrays)
        assert sorted(server.requests) == sorted(FILES)
        assert _listing(_cache(home)) == sorted(FILES)  # no temporary files left
        for name in FILES:
            assert (_cache(home) / name).read_bytes() == packed[name]
        # the second call reads the cache and asks the server for nothing
        _expect(data.fashion_mnist(base_url=server.url, flatten=False), arrays, flatten=False)
        assert len(server.requests) == 4


def test_download_shows_a_progress_bar(home, fake, capsys):
    _, packed, arrays = fake
    with fx.Server(packed) as server:
        _expect(data.fashion_mnist(base_url=server.url), arrays)
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err


def test_url_from_the_environment_and_download_into_lamina_data(home, fake, monkeypatch):
    _, packed, arrays = fake
    monkeypatch.setenv("LAMINA_DATA", str(home / "store"))
    with fx.Server(packed) as server:
        monkeypatch.setenv("LAMINA_FASHION_MNIST_URL", server.url)
        _expect(data.fashion_mnist(progress=False), arrays)
        assert len(server.requests) == 4
    assert _listing(home / "store" / "fashion-mnist") == sorted(FILES)
    assert _listing(_cache(home)) == []


def test_only_missing_files_are_downloaded(home, fake):
    contents, packed, arrays = fake
    fx.write_set(_cache(home), {name: contents[name] for name in FILES[:2]})
    with fx.Server(packed) as server:
        _expect(data.fashion_mnist(base_url=server.url, progress=False), arrays)
        assert sorted(server.requests) == sorted(FILES[2:])


def test_a_wrong_hash_is_rejected_and_leaves_nothing(home, fake):
    contents, packed, _ = fake
    other, _ = fx.fake_set(seed=8)  # a valid IDX file, but not the one in the table
    served = {**packed, FILES[0]: gzip.compress(other[FILES[0]], mtime=0)}
    with fx.Server(served) as server:
        with pytest.raises(data.DatasetNotFoundError) as caught:
            data.fashion_mnist(base_url=server.url, progress=False)
    message = str(caught.value)
    assert server.url + FILES[0] in message and "SHA-256" in message
    assert fx.sha256(contents[FILES[0]]) in message
    assert _listing(_cache(home)) == []


def test_a_wrong_hash_on_one_mirror_falls_through_to_the_next(home, fake):
    _, packed, arrays = fake
    other, _ = fx.fake_set(seed=8)
    bad = {**packed, FILES[0]: gzip.compress(other[FILES[0]], mtime=0)}
    with fx.Server(bad) as first, fx.Server(packed) as second:
        _expect(data.fashion_mnist(base_url=[first.url, second.url], progress=False), arrays)
        assert first.requests == list(FILES)  # tried first for every file; only the bad one fell through
        assert second.requests == [FILES[0]]
    assert _listing(_cache(home)) == sorted(FILES)


def test_a_cut_short_download_is_rejected_and_leaves_nothing(home, fake):
    _, packed, _ = fake
    with fx.Server(packed, cut={FILES[0]: len(packed[FILES[0]]) - 100}) as server:
        with pytest.raises(data.DatasetNotFoundError) as caught:
            data.fashion_mnist(base_url=server.url, progress=False)
    assert "cut short" in str(caught.value)
    assert _listing(_cache(home)) == []


def test_a_truncated_gzip_is_rejected_and_leaves_nothing(home, fake):
    _, packed, _ = fake
    served = {**packed, FILES[1]: packed[FILES[1]][:-20]}  # the server announces this shorter length
    with fx.Server(served) as server:
        with pytest.raises(data.DatasetNotFoundError) as caught:
            data.fashion_mnist(base_url=server.url, progress=False)
    assert "gzip" in str(caught.value) and server.url + FILES[1] in str(caught.value)
    # the first file was complete and verified, so it stays; the damaged one never lands
    assert _listing(_cache(home)) == [FILES[0]]


def test_a_missing_file_on_the_server(home, fake):
    _, packed, _ = fake
    with fx.Server({name: packed[name] for name in FILES[:3]}) as server:
        with pytest.raises(data.DatasetNotFoundError) as caught:
            data.fashion_mnist(base_url=server.url, progress=False)
    assert "404" in str(caught.value) and FILES[3] in str(caught.value)
    assert _listing(_cache(home)) == sorted(FILES[:3])


def test_offline_says_where_it_looked_and_how_to_fix_it(home):
    with pytest.raises(data.DatasetNotFoundError) as caught:
        data.fashion_mnist(base_url=UNREACHABLE, progress=False)
    error = caught.value
    assert isinstance(error, FileNotFoundError)
    message = str(error)
    for part in ("$LAMINA_DATA/fashion-mnist", str(_cache(home)),
                 str(home / "usr-share-datasets" / "fashion-mnist"), UNREACHABLE + FILES[0],
                 "apt-get install dataset-fashion-mnist", "path="):
        assert part in message, part
    assert _cache(home) in error.looked
    assert [url for url, _ in error.attempts] == [UNREACHABLE + FILES[0]]
    assert not _cache(home).exists()  # nothing was made before a server answered


def test_default_mirrors_come_from_the_source_table(home):
    # the fixture points the table's mirrors at an unreachable address: no internet in tests
    with pytest.raises(data.DatasetNotFoundError) as caught:
        data.fashion_mnist(progress=False)
    assert UNREACHABLE + FILES[0] in str(caught.value)


def test_published_mirrors():
    mirrors = sources.FASHION_MNIST.mirrors  # the real table (the fixture is not used here)
    assert any("zalandoresearch/fashion-mnist" in url and url.endswith("data/fashion/") for url in mirrors)
    assert "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/" in mirrors


def test_download_false_never_asks_the_network(home, fake):
    _, packed, _ = fake
    with fx.Server(packed) as server:
        with pytest.raises(data.DatasetNotFoundError) as caught:
            data.fashion_mnist(base_url=server.url, download=False)
        assert server.requests == []
    assert "download=False" in str(caught.value) and "dataset-fashion-mnist" in str(caught.value)


def test_found_in_the_debian_folder(home, fake):
    contents, _, arrays = fake
    fx.write_set(home / "usr-share-datasets" / "fashion-mnist", contents)
    _expect(data.fashion_mnist(base_url=UNREACHABLE), arrays)
    assert _listing(_cache(home)) == []


def test_found_in_lamina_data(home, fake, monkeypatch):
    contents, _, arrays = fake
    fx.write_set(home / "store" / "fashion-mnist", contents, gz=False)
    monkeypatch.setenv("LAMINA_DATA", str(home / "store"))
    _expect(data.fashion_mnist(base_url=UNREACHABLE), arrays)


def test_path_is_the_only_place_looked_when_given(home, fake):
    contents, _, arrays = fake
    fx.write_set(home / "mine" / "fashion-mnist", contents)
    _expect(data.fashion_mnist(home / "mine", base_url=UNREACHABLE), arrays)
    fx.write_set(_cache(home), contents)  # present in the cache, but path= wins
    with pytest.raises(data.DatasetNotFoundError) as caught:
        data.fashion_mnist(home / "elsewhere", base_url=UNREACHABLE)
    assert str(home / "elsewhere") in str(caught.value) and "path=" in str(caught.value)
    assert caught.value.attempts == ()


def test_a_damaged_cached_file_is_reported_with_the_fix(home, fake):
    contents, packed, _ = fake
    fx.write_set(_cache(home), contents)
    other, _ = fx.fake_set(seed=9)
    fx.write(_cache(home) / FILES[2], other[FILES[2]], gz=True)
    with pytest.raises(data.ChecksumError) as caught:
        data.fashion_mnist(base_url=UNREACHABLE)
    assert str(_cache(home) / FILES[2]) in str(caught.value) and "delete" in str(caught.value)
    arrays = fx.fake_set(seed=9)[1]
    (_, _), (x_test, _) = data.fashion_mnist(base_url=UNREACHABLE, verify=False)
    np.testing.assert_array_equal(x_test, arrays[FILES[2]].reshape(len(x_test), -1) / np.float32(255))


def test_cache_folder_follows_xdg_else_home(monkeypatch, tmp_path):
    cache = sys.modules["lamina.data.cache"]
    monkeypatch.delenv("LAMINA_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_folder() == tmp_path / "lamina" and cache.data_home() == tmp_path / "lamina"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # not absolute: ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_folder() == tmp_path / "home" / ".cache" / "lamina"
    monkeypatch.setenv("LAMINA_DATA", str(tmp_path / "store"))
    assert cache.data_home() == tmp_path / "store"


def test_bad_base_url(home):
    with pytest.raises(ValueError, match="base_url"):
        data.fashion_mnist(base_url=[])
