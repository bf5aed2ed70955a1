"""Text data: the shipped Tiny Shakespeare, Vocabulary (characters, tokens, unknown, JSON), windows."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from lamina import data, layers


@pytest.fixture(scope="module")
def shakespeare():
    return data.tiny_shakespeare()


def test_tiny_shakespeare_is_the_corpus_with_its_checksum(shakespeare):
    assert len(shakespeare) == 1_115_394 and shakespeare.startswith("First Citizen:\n")
    assert hashlib.sha256(shakespeare.encode()).hexdigest().startswith("86c4e6aa")
    assert len(set(shakespeare)) == 65


def test_a_character_vocabulary_round_trips_the_corpus(shakespeare):
    vocab = data.Vocabulary.from_text(shakespeare)
    assert len(vocab) == 65 and list(vocab.symbols) == sorted(vocab.symbols) and vocab.symbols[0] == "\n"
    ids = vocab.encode(shakespeare)
    assert ids.dtype == np.int64 and ids.shape == (1_115_394,)
    assert vocab.decode(ids[:1000]) == shakespeare[:1000]
    assert vocab.decode(ids[:6].reshape(2, 3)) == shakespeare[:6]
    assert repr(vocab).startswith("Vocabulary(65 symbols: '\\n', ' ', '!'")


def test_a_symbol_outside_the_vocabulary_is_named_with_its_position():
    vocab = data.Vocabulary.from_text("abc")
    with pytest.raises(ValueError,
                       match=r"Vocabulary.encode: 'z' at position 3 is not in the vocabulary \(3 symbols\)"):
        vocab.encode("abcza")


def test_tokens_with_an_unknown_symbol():
    vocab = data.Vocabulary.from_tokens("to be or not to be".split(), unknown="<unk>")
    assert vocab.symbols == ("<unk>", "be", "not", "or", "to") and vocab.unknown == "<unk>"
    np.testing.assert_array_equal(vocab.encode(["to", "die", "be"]), [4, 0, 1])
    assert vocab.decode([4, 1]) == "tobe"
    assert data.Vocabulary.from_json(vocab.to_json()) == vocab
    assert vocab.to_json() == {"symbols": ["<unk>", "be", "not", "or", "to"], "unknown": "<unk>"}


def test_the_vocabulary_travels_in_a_model_files_extra(tmp_path):
    vocab = data.Vocabulary.from_text("hello world")
    model = layers.Embedding.init(np.random.default_rng(0), len(vocab), 2)
    layers.save(tmp_path / "m.npz", model, vocabulary=vocab.to_json())
    assert data.Vocabulary.from_json(layers.load_extra(tmp_path / "m.npz")["vocabulary"]) == vocab


@pytest.mark.parametrize("make, error, match", [
    (lambda: data.Vocabulary(("a", "b", "a")), ValueError, r"must be unique, but 'a' is there twice"),
    (lambda: data.Vocabulary(("a", 1)), TypeError, r"symbols must be strings, but symbols\[1\] is 1"),
    (lambda: data.Vocabulary(()), ValueError, r"needs at least one symbol"),
    (lambda: data.Vocabulary(("a",), unknown="?"), ValueError, r"unknown must be one of the symbols"),
    (lambda: data.Vocabulary(("a",)).decode([0, 1]), ValueError, r"in \[0, 1\), but ids\[1\] is 1"),
    (lambda: data.Vocabulary(("a",)).decode([0.0]), TypeError, r"ids must be integers, got dtype float64"),
    (lambda: data.Vocabulary.from_json([]), ValueError, r"expected a dict with 'symbols', got list"),
])
def test_bad_vocabularies(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_windows_are_read_only_views_of_next_token_pairs():
    ids = np.arange(10, dtype=np.int64)
    x, y = data.windows(ids, 4)
    assert x.shape == y.shape == (6, 4)
    np.testing.assert_array_equal(x[2], [2, 3, 4, 5])
    np.testing.assert_array_equal(y[2], [3, 4, 5, 6])
    np.testing.assert_array_equal(y[-1], [6, 7, 8, 9])
    assert np.shares_memory(x, ids) and np.shares_memory(y, ids)
    assert not x.flags.writeable and not y.flags.writeable
    with pytest.raises(ValueError):
        x[0, 0] = 5


def test_windows_of_the_whole_corpus_copy_nothing(shakespeare):
    ids = data.Vocabulary.from_text(shakespeare).encode(shakespeare)
    x, y = data.windows(ids, 64)
    assert x.shape == (len(ids) - 64, 64) and x.base is not None and np.shares_memory(x, ids)
    np.testing.assert_array_equal(x[123456, 1:], y[123456, :-1])


def test_fit_checks_the_targets_of_the_whole_corpus_without_copying_them(shakespeare):
    import tracemalloc

    from lamina import losses
    from lamina.optim.checks import check_targets
    vocab = data.Vocabulary.from_text(shakespeare)
    _, y = data.windows(vocab.encode(shakespeare), 64)   # a view of 570 MB as an array
    tracemalloc.start()
    try:
        checked = check_targets(y, len(y), len(vocab), losses.SoftmaxCrossEntropy())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.shares_memory(checked, y) and peak < 2**20, f"checking the targets allocated {peak} bytes"


@pytest.mark.parametrize("ids, length, match", [
    (np.arange(5), 5, r"5 ids make no window of 5 .* at least 6"),
    (np.zeros((2, 3), np.int64), 1, r"ids must be 1-D"),
    (np.arange(5), 0, r"length must be a positive int, got 0"),
])
def test_bad_windows(ids, length, match):
    with pytest.raises(ValueError, match=match):
        data.windows(ids, length)
