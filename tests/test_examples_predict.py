"""examples/predict.py: only the misclassified digits (--wrong), a model that takes images, and a one-line
error for a model file that is missing, damaged or not a model of digits."""

from __future__ import annotations

import re

import attrs
import numpy as np
import pytest
from test_examples import example

from lamina import data, layers

predict = example("predict")


@layers.register(name="ExamplesTestImagesToRows")
@attrs.frozen
class ImagesToRows(layers.Layer):
    """(n, 28, 28, 1) images -> (n, 784) rows; refuses anything else (as a CNN's first Conv2D would)."""

    def forward(self, x, mode):
        if x.shape[1:] != (28, 28, 1):
            raise layers.ShapeError("ImagesToRows", "input (n, 28, 28, 1)", f"{x.shape}")
        return x.reshape(len(x), -1), None

    def backward(self, cache, dy, mode):
        return dy.reshape(len(dy), 28, 28, 1), self


@pytest.fixture(scope="module")
def mlp_file(tmp_path_factory):
    """A small MLP trained for one epoch on 2000 digits: it gets some test digits wrong."""
    from lamina import losses, optim
    (x, y), _ = data.mnist()
    rng = np.random.default_rng(0)
    model = layers.mlp(rng, [784, 16, 10])
    model, _ = optim.fit(model, losses.SoftmaxCrossEntropy(), optim.SGD(0.1, momentum=0.9), x[:2000],
                         y[:2000],
                         epochs=1, batch_size=64, rng=rng, progress=False)
    path = tmp_path_factory.mktemp("predict") / "mlp.npz"
    layers.save(path, model)
    return path


def test_wrong_shows_only_misclassified_digits(mlp_file, capsys):
    accuracy = predict.main([str(mlp_file), "--wrong", "4"])
    shown = capsys.readouterr().out
    verdicts = re.findall(r"test\[(\d+)\]: predicted (\d), true (\d) \((\w+)\)", shown)
    assert len(verdicts) == 4 and all(v[3] == "WRONG" and v[1] != v[2] for v in verdicts)
    n_wrong = int(re.search(r"(\d+) of 10000 test images are misclassified", shown).group(1))
    assert n_wrong == round((1 - accuracy) * 10000)
    model = layers.load(mlp_file)
    (_, _), (x_test, y_test) = data.mnist()
    first = np.flatnonzero(model(x_test).argmax(1) != y_test)[:4]
    assert [int(v[0]) for v in verdicts] == first.tolist()          # the first ones, in test-set order
    assert shown.strip().splitlines()[-1] == f"test accuracy: {accuracy:.4f}"


def test_a_model_that_takes_images_is_shown_the_same(mlp_file, tmp_path, capsys):
    flat = layers.load(mlp_file)
    images = layers.Sequence([ImagesToRows(), *flat.layers])
    path = tmp_path / "cnn-like.npz"
    layers.save(path, images)
    assert predict.input_shape(flat) == (784,) and predict.input_shape(images) == (28, 28, 1)
    on_images = predict.main([str(path), "--wrong", "2", "--index", "5"])
    shown_images = capsys.readouterr().out
    on_rows = predict.main([str(mlp_file), "--wrong", "2"])
    assert on_images == on_rows and shown_images == capsys.readouterr().out


@pytest.mark.parametrize("what", ["missing", "damaged", "not digits"])
def test_a_bad_model_file_is_one_line_not_a_traceback(what, tmp_path, capsys):
    path = tmp_path / "model.npz"
    if what == "damaged":
        path.write_bytes(b"PK\x03\x04 this is no model")
    elif what == "not digits":
        layers.save(path, layers.mlp(np.random.default_rng(0), [5, 3]))
    with pytest.raises(SystemExit) as exit_:
        predict.main([str(path)])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and str(path) in err
    expected = {"missing": "cannot load the model .*No such file", "damaged": "cannot load the model",
                "not digits": r"takes no 28 x 28 image with 10 outputs"}[what]
    assert re.search(expected, err)


def test_wrong_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exit_:
        predict.parse_args(["m.npz", "--wrong", "0"])
    assert exit_.value.code == 2 and "--wrong must be at least 1" in capsys.readouterr().err
