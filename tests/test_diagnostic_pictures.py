"""The functions on a trained model: filters, confusion matrix, confident mistakes, saliency, weight
histograms, pictures."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from lamina import diagnostics, layers
from lamina.diagnostics import pictures

PNG = b"\x89PNG\r\n\x1a\n"


def dense(weight, bias=None, dtype=np.float64):
    weight = np.array(weight, dtype=dtype)
    return layers.Dense(weight=weight,
                        bias=np.zeros(weight.shape[1], dtype) if bias is None else np.array(bias, dtype))


# ---- filters --------------------------------------------------------------------------------------


def test_dense_filters_are_weight_columns_shaped_as_images():
    weight = np.arange(12.0).reshape(4, 3)        # 4 inputs = a 2x2 image, 3 units
    model = layers.Sequence([layers.Dropout(0.5), dense(weight), layers.ReLU(), dense(np.ones((3, 2)))])
    images = diagnostics.filters(model)
    assert images.shape == (3, 2, 2)
    assert np.array_equal(images[1], [[1.0, 4.0], [7.0, 10.0]])   # column 1: weight[:, 1] row-major
    wide = diagnostics.filters(layers.Sequence([dense(np.ones((6, 2))), layers.ReLU()]), image_shape=(2, 3))
    assert wide.shape == (2, 2, 3)
    colour = diagnostics.filters(layers.Sequence([dense(np.arange(12.0).reshape(12, 1))]),
                                 image_shape=(2, 2, 3))
    assert colour.shape == (1, 2, 2, 3) and colour[0, 1, 0, 2] == 8.0


def test_filters_refuse_what_is_not_an_image_layer():
    with pytest.raises(ValueError, match="reads 6 inputs, not a square image; give image_shape"):
        diagnostics.filters(layers.Sequence([dense(np.ones((6, 2)))]))
    with pytest.raises(ValueError, match=r"image_shape \(3, 3\) does not fit layers\[0\] Dense's 6 inputs"):
        diagnostics.filters(layers.Sequence([dense(np.ones((6, 2)))]), image_shape=(3, 3))
    with pytest.raises(ValueError, match=r"layers\[0\] LayerNorm, is not a Dense or Conv2D"):
        diagnostics.filters(layers.Sequence([layers.LayerNorm.init(4, dtype=np.float64),
                                             dense(np.ones((4, 2)))]))


@attrs.frozen
class Conv2D(layers.Layer):
    """A stand-in with Conv2D's name and weight layout (kh, kw, in_channels, out_channels), until the real one
    lands."""

    weight: np.ndarray = layers.param()

    def forward(self, x, mode):
        return x, None

    def backward(self, cache, dy, mode):
        return dy, Conv2D(weight=np.zeros_like(self.weight))


def test_conv_filters_are_kernels_one_per_output_channel():
    weight = np.arange(2 * 3 * 1 * 4, dtype=float).reshape(2, 3, 1, 4)
    images = diagnostics.filters(layers.Sequence([Conv2D(weight=weight), layers.ReLU()]))
    assert images.shape == (4, 2, 3)
    assert np.array_equal(images[2], weight[:, :, 0, 2])
    rgb = diagnostics.filters(layers.Sequence([Conv2D(weight=np.ones((3, 3, 3, 5)))]))
    assert rgb.shape == (5, 3, 3, 3)


# ---- classification -------------------------------------------------------------------------------


def identity_classifier():
    """Three classes; the output is the input, so the predicted class is the largest input."""
    return layers.Sequence([dense(np.eye(3))])


def test_confusion_matrix_against_a_hand_count():
    # predicted 0 1 2 1 2 0
    x = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0], [0, 0, 2], [3, 0, 0]], dtype=float)
    y = np.array([0, 1, 1, 0, 2, 2])
    expected = np.array([[1, 1, 0],     # class 0: once right, once taken for 1
                         [0, 1, 1],     # class 1: once right, once taken for 2
                         [1, 0, 1]])    # class 2: once right, once taken for 0
    matrix = diagnostics.confusion_matrix(identity_classifier(), x, y)
    assert matrix.dtype == np.int64 and np.array_equal(matrix, expected)


def test_confident_mistakes_surest_first_with_their_probability():
    x = np.array([[0, 1, 0], [0, 0, 5], [2, 0, 0], [0, 3, 0], [1, 0, 0]], dtype=float)
    y = np.array([1, 0, 1, 0, 0])                  # wrong: sample 1 (said 2), 2 (said 0), 3 (said 1)
    mistakes = diagnostics.confident_mistakes(identity_classifier(), x, y)
    assert list(mistakes.index) == [1, 3, 2] and list(mistakes.predicted) == [2, 1, 0]
    assert list(mistakes.true) == [0, 0, 1]
    assert mistakes.confidence[0] == pytest.approx(np.exp(5) / (np.exp(5) + 2))
    assert len(diagnostics.confident_mistakes(identity_classifier(), x, y, k=2)) == 2


def test_a_single_output_is_a_binary_classifier():
    model = layers.Sequence([dense([[1.0]])])
    matrix = diagnostics.confusion_matrix(model, np.array([[-1.0], [2.0], [3.0]]), np.array([0, 0, 1]))
    assert np.array_equal(matrix, [[1, 1], [0, 1]])


def test_data_that_does_not_fit_the_model_is_a_clear_error():
    with pytest.raises(ValueError, match=r"confusion_matrix: the data does not fit the model: its samples "
                                         r"are shaped \(5,\).*expects input \(n, 3\)"):
        diagnostics.confusion_matrix(identity_classifier(), np.ones((4, 5)), np.zeros(4, int))
    with pytest.raises(ValueError, match=r"label y\[2\] = 3 is not a class of this model \(0 to 2\)"):
        diagnostics.confusion_matrix(identity_classifier(), np.ones((4, 3)), np.array([0, 1, 3, 0]))
    with pytest.raises(ValueError, match=r"y must be one int label per sample, shape \(4,\)"):
        diagnostics.confident_mistakes(identity_classifier(), np.ones((4, 3)), np.zeros(3, int))
    with pytest.raises(ValueError, match="y must be int class labels"):
        diagnostics.confident_mistakes(identity_classifier(), np.ones((4, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="k must be a positive int"):
        diagnostics.confident_mistakes(identity_classifier(), np.ones((4, 3)), np.zeros(4, int), k=0)


# ---- saliency -------------------------------------------------------------------------------------


def small_net():
    rng = np.random.default_rng(0)
    return layers.Sequence([layers.Dense.init(rng, 5, 7, dtype=np.float64), layers.Tanh(),
                            layers.Residual(layers.Sequence([layers.Dense.init(rng, 7, 7, dtype=np.float64),
                                                             layers.GELU()])),
                            layers.Dense.init(rng, 7, 3, dtype=np.float64)])


def test_saliency_equals_a_finite_difference_input_gradient():
    model = small_net()
    x = np.random.default_rng(1).normal(size=(4, 5))
    classes = np.array([0, 2, 1, 2])
    maps = diagnostics.saliency(model, x, classes)
    h = 1e-6
    numeric = np.zeros_like(x)
    for i in range(len(x)):
        for j in range(x.shape[1]):
            up, down = x[i:i + 1].copy(), x[i:i + 1].copy()
            up[0, j] += h
            down[0, j] -= h
            numeric[i, j] = (model(up)[0, classes[i]] - model(down)[0, classes[i]]) / (2 * h)
    assert maps.shape == x.shape
    np.testing.assert_allclose(maps, numeric, rtol=1e-6, atol=1e-9)


def test_saliency_by_default_explains_the_predicted_class():
    model = small_net()
    x = np.random.default_rng(2).normal(size=(6, 5))
    predicted = model(x).argmax(axis=1)
    assert np.array_equal(diagnostics.saliency(model, x), diagnostics.saliency(model, x, predicted))
    assert np.array_equal(diagnostics.saliency(model, x, 1), diagnostics.saliency(model, x, np.ones(6, int)))


def test_saliency_refuses_bad_classes_and_bad_data():
    model, x = small_net(), np.ones((2, 5))
    with pytest.raises(ValueError, match="classes must be ints from 0 to 2"):
        diagnostics.saliency(model, x, 3)
    with pytest.raises(ValueError, match=r"classes must be one int or one per sample \(2,\)"):
        diagnostics.saliency(model, x, [0, 1, 2])
    with pytest.raises(ValueError, match=r"saliency: the data does not fit the model"):
        diagnostics.saliency(model, np.ones((2, 4)))


# ---- histograms and pictures ----------------------------------------------------------------------


def test_weight_histograms_of_the_weight_matrices():
    model = layers.Sequence([dense([[0.0, 1.0], [1.0, 3.0]], [5.0, 5.0])])
    histograms = diagnostics.weight_histograms(model, bins=3)
    assert list(histograms) == ["layers[0].weight"]
    assert histograms["layers[0].weight"] == {"edges": [0.0, 1.0, 2.0, 3.0], "counts": [1, 2, 1]}


def test_pictures_are_png_files():
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8], "val_accuracy": [0.4, 0.7]}
    assert pictures.curves(history).startswith(PNG)
    assert pictures.curves({"loss": [3.0, 2.0, 1.0]}).startswith(PNG)        # a regression: no accuracy panel
    images = np.random.default_rng(0).normal(size=(5, 4, 4))
    assert pictures.filters(images, "five filters").startswith(PNG)
    assert pictures.labelled_images(images, ["a"] * 5, "five").startswith(PNG)
    assert pictures.saliency_maps(images, images, ["a"] * 5, "maps").startswith(PNG)
