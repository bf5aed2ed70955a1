"""Bad input at the public entry points: model(x), forward, the losses, evaluate, fit's arguments and
validation.

Each error says what was expected, what came and where. Only what the other files leave out:
fit's own x and y are in test_training.py, data.batches in test_data_batching.py, more of model(x)
in test_sequence.py and of the losses in test_losses.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from user_layers import Scale

from lamina import layers, losses, optim

ShapeError = layers.ShapeError
MODEL = layers.mlp(np.random.default_rng(0), [5, 8, 3])
GOOD = np.arange(20, dtype=np.float32).reshape(4, 5) / 20
LABELS = np.array([0, 1, 2, 0])


def with_value(x, row, col, value):
    x = x.copy()
    x[row, col] = value
    return x


BAD_INPUTS = [
    ("nan", with_value(GOOD, 2, 1, np.nan), ValueError, r"row 2 holds NaN or inf; expected finite values"),
    ("inf", with_value(GOOD, 3, 4, np.inf), ValueError, r"row 3 holds NaN or inf; expected finite values"),
    ("-inf float64", with_value(GOOD.astype(np.float64), 1, 0, -np.inf), ValueError,
     r"row 1 holds NaN or inf"),
    ("1-D", GOOD[0], ShapeError, None),
    ("3-D", GOOD[:, :, None], ShapeError, None),
    ("no samples", GOOD[:0], ShapeError, r"at least one sample and one feature.* \(0, 5\)"),
    ("no features", GOOD[:, :0], ShapeError, r"at least one sample and one feature.* \(4, 0\)"),
    ("object", GOOD.astype(object), TypeError, r"floats? or integers?.*got dtype object"),
    ("str", np.array([["a"] * 5] * 4), TypeError, r"floats? or integers?.*got dtype <U1"),
    ("complex", GOOD.astype(np.complex64), TypeError, r"floats? or integers?.*got dtype complex64"),
    ("bool", GOOD > 0.5, TypeError, r"floats? or integers?.*got dtype bool"),
]
IDS = [case[0] for case in BAD_INPUTS]

# where the model says what it expects: the first Dense, by path, with the shape it received (the
# other bad inputs of model(x) and forward are in test_sequence.py)
MODEL_SHAPE = [
    (GOOD[0], r"layers\[0\] Dense\(5 -> 8, float32\) expects input \(n, 5\), but the input is \(5,\)"),
    (GOOD[:, :, None], r"layers\[0\] Dense\(5 -> 8, float32\) expects input \(n, \.\.\., 5\), but the input "
                       r"is \(4, 5, 1\)"),
    (GOOD[:, :4], r"layers\[0\] Dense\(5 -> 8, float32\) expects input \(n, 5\), but the input is \(4, 4\)"),
]


@pytest.mark.parametrize("call", ["__call__", "forward"])
@pytest.mark.parametrize("x, match", MODEL_SHAPE, ids=["1-D", "3-D", "4 features"])
def test_the_model_names_the_layer_expected_and_received_shape(call, x, match):
    with pytest.raises(ShapeError, match=match):
        MODEL(x) if call == "__call__" else MODEL.forward(x, layers.EVAL)


def test_a_nested_sequence_names_the_inner_layer_by_path():
    inner = layers.Sequence([layers.Dense.init(np.random.default_rng(1), 5, 4), layers.ReLU()])
    model = layers.Sequence([layers.ReLU(), inner])
    with pytest.raises(ShapeError, match=r"layers\[1\]\.layers\[0\] Dense\(5 -> 4, float32\) expects input "
                                         r"\(n, 5\), but layers\[0\] ReLU(\(\))? gives \(4, 6\)"):
        model(np.ones((4, 6), np.float32))


# ---- the losses ---------------------------------------------------------------------------------------

PRED = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
PROBS = np.full((4, 3), 1 / 3, np.float32)


def bad_loss_inputs(name):
    """What test_losses.py does not cover already."""
    sequences = name == "SoftmaxCrossEntropy"  # takes (n, ..., k) with labels (n, ...)
    return [
        ("pred 3-D", PRED[:, :, None], LABELS,
         *((ValueError, r"expected 12 labels of shape \(4, 3\).*got shape \(4,\)")
           if sequences else (ShapeError, r"predictions \(n, k\).*\(4, 3, 1\)"))),
        ("pred no classes", PRED[:, :0], LABELS, ShapeError,
         r"predictions \(n, (\.\.\., )?k\).*but the input is \(4, 0\)"),
        ("pred object", PRED.astype(object), LABELS, TypeError, r"must be a float array, got dtype object"),
        ("pred complex", PRED.astype(complex), LABELS, TypeError,
         r"must be a float array, got dtype complex128"),
        ("pred str", np.array([["a"] * 3] * 4), LABELS, TypeError, r"must be a float array, got dtype <U1"),
        ("str labels", PRED, np.array(list("abca")), ValueError, r"labels must be integers.*got <U1"),
        ("target rows", PRED, PROBS[:3], ShapeError, r"prediction's shape \(4, 3\).*but the target gives "
                                                     r"\(3, 3\)"),
        ("target int", PRED, np.ones((4, 3), np.int64), TypeError, rf"{name}: a target array must be float, "
                                                                   r"got dtype int64"),
        ("target complex", PRED, PROBS.astype(complex), TypeError, r"target array must be float, got dtype "
                                                                   r"complex128"),
    ]


LOSS_CASES = [(loss, *case) for loss in (losses.SoftmaxCrossEntropy(), losses.MSE())
              for case in bad_loss_inputs(type(loss).__name__)]


@pytest.mark.parametrize("loss, name, pred, target, error, match", LOSS_CASES,
                         ids=[f"{type(c[0]).__name__}-{c[1]}" for c in LOSS_CASES])
def test_the_losses_refuse_bad_input(loss, name, pred, target, error, match):
    with pytest.raises(error, match=match):
        loss.forward(pred, target)


# ---- evaluate -------------------------------------------------------------------------------------------

EVALUATE_SHAPE = {"1-D": r"x expects a 2-D array \(n_samples, n_features\), but the data x gives \(5,\)",
                  "3-D": r"layers\[0\] Dense\(5 -> 8, float32\) expects input \(n, \.\.\., 5\), but the "
                         r"input is "
                         r"\(n, 5, 1\)"}


@pytest.mark.parametrize("name, x, error, match", BAD_INPUTS, ids=IDS)
def test_evaluate_refuses_bad_x(name, x, error, match):
    y = LABELS[:len(x)] if x.ndim else LABELS
    with pytest.raises(error, match=match or EVALUATE_SHAPE[name]) as info:
        optim.evaluate(MODEL, losses.SoftmaxCrossEntropy(), x, y)
    if error is ValueError:
        assert str(info.value).startswith("x row")


@pytest.mark.parametrize("y, error, match", [
    (LABELS[:3], ValueError, r"one target per sample: x has 4 samples, y has 3 targets"),
    (np.int64(1), ValueError, r"one target per sample: x has 4 samples, y has a scalar"),
    (np.array([0, 1, 2, 3]), ValueError, r"labels must be in \[0, 3\), but labels\[3\] is 3"),
    (np.array([0, 1, -2, 0]), ValueError, r"labels\[2\] is -2"),
    (LABELS.astype(np.float32), ValueError, r"^evaluate: y is 1-D float.*class labels must be "
                                            r"integers.*y\[:, None\]"),
    (with_value(PROBS, 2, 1, np.nan), ValueError, r"y row 2 holds NaN or inf; expected finite values"),
    (np.ones((4, 3), np.int64), TypeError, r"int class labels \(n,\) or a float array, got dtype int64"),
], ids=["short", "scalar", "label 3", "label -2", "float labels", "nan target", "int 2-D target"])
def test_evaluate_refuses_bad_targets(y, error, match):
    with pytest.raises(error, match=match):
        optim.evaluate(MODEL, losses.MSE(), GOOD, y)


# ---- fit: what test_training.py leaves out ---------------------------------------------------------------

def fit(x=GOOD, y=LABELS, **kwargs):
    kwargs = {"epochs": 1, "batch_size": 2, "rng": np.random.default_rng(0), "progress": False, **kwargs}
    return optim.fit(MODEL, losses.SoftmaxCrossEntropy(), optim.SGD(0.1), x, y, **kwargs)


@pytest.mark.parametrize("x, match", [
    (GOOD.astype(object), r"x must be an array of floats or integers, got dtype object"),
    (GOOD[:, :0], r"x expects at least one sample and one feature, but the data x gives \(4, 0\)"),
    (GOOD > 0.5, r"got dtype bool"),
])
def test_fit_refuses_more_bad_x(x, match):
    with pytest.raises((TypeError, ShapeError), match=match):
        fit(x)


def test_fit_names_the_row_of_a_non_finite_regression_target():
    y = np.zeros((4, 3), np.float32)
    y[3, 2] = -np.inf
    with pytest.raises(ValueError, match=r"^fit: y row 3 holds NaN or inf; expected finite values"):
        optim.fit(MODEL, losses.MSE(), optim.SGD(0.1), GOOD, y, epochs=1, batch_size=2,
                  rng=np.random.default_rng(0), progress=False)


@pytest.mark.parametrize("validation, error, match", [
    ((with_value(GOOD, 3, 0, np.nan), LABELS), ValueError, r"^validation x row 3 holds NaN or inf"),
    ((GOOD[0], LABELS), ShapeError, r"validation x expects a 2-D array .* gives \(5,\)"),
    ((GOOD[:0], LABELS[:0]), ShapeError, r"validation x expects at least one sample"),
    ((GOOD.astype(complex), LABELS), TypeError, r"validation x must be an array of floats or integers, "
                                                r"got dtype complex128"),
    ((GOOD, LABELS[:2]), ValueError, r"validation y must have one target per sample: x has 4 samples, "
                                     r"validation y has 2 targets"),
    ((GOOD, np.array([0, 1, 2, 5])), ValueError, r"validation y: labels must be in \[0, 3\), but labels\[3\] "
                                                 r"is 5"),
], ids=["nan", "1-D", "no samples", "complex", "short y", "bad label"])
def test_fit_refuses_bad_validation_data_before_training(validation, error, match):
    calls = []

    def spy(xb):
        calls.append(len(xb))
        return xb

    with pytest.raises(error, match=match):
        fit(validation=validation, transform=spy)
    assert calls == [1]       # only fit's probe of the output shape: no batch was trained


def random_data(n=64, d=5, k=3, seed=0):
    """x float32 (n, d) from a normal, y int labels (n,) in [0, k)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, k, size=n)


def test_a_nested_model_does_not_check_what_its_outer_model_made():
    """An overflow inside the model is the model's, not bad input: inf comes out, no ValueError."""
    huge = layers.Dense(weight=np.full((4, 4), 1e38, np.float32), bias=np.zeros(4, np.float32))
    model = layers.Sequence([huge, layers.mlp(np.random.default_rng(0), [4, 3])])
    with np.errstate(all="ignore"):
        with pytest.warns(RuntimeWarning, match="the model overflows"):
            out = model(np.ones((2, 4), np.float32))
        assert not np.isfinite(out).all()
        with pytest.raises(optim.NonFiniteLossError):
            optim.fit(model, losses.SoftmaxCrossEntropy(), optim.SGD(0.1), np.ones((4, 4), np.float32),
                      np.array([0, 1, 2, 0]), epochs=1, batch_size=2, rng=np.random.default_rng(0),
                      progress=False)


def test_labels_for_a_model_whose_last_layer_has_no_output_shape():
    x, y = random_data()
    model = layers.Sequence([layers.Dense.init(np.random.default_rng(0), 5, 3),
                             Scale(gain=np.ones(3, np.float32))])
    fitted, history = optim.fit(model, losses.SoftmaxCrossEntropy(), optim.SGD(0.1), x, y, epochs=1,
                                batch_size=16, rng=np.random.default_rng(0), progress=False)
    assert "accuracy" in history
    with pytest.raises(ValueError, match=r"labels\[0\] is 3"):
        optim.evaluate(fitted, losses.SoftmaxCrossEntropy(), x[:2], np.array([3, 0]))


def test_wrong_arguments_of_fit_mlp_and_evaluate_are_named_and_a_list_input_is_cast():
    x, y = random_data()
    with pytest.raises(TypeError, match=r"validation must be a pair \(x_val, y_val\), got tuple of length 1"):
        optim.fit(layers.mlp(np.random.default_rng(0), [5, 3]), losses.MSE(), optim.SGD(0.1), x, y, epochs=1,
                  batch_size=8, rng=np.random.default_rng(0), validation=(x,), progress=False)
    dense = layers.Dense.init(np.random.default_rng(0), 2, 3)
    # cast on entry
    np.testing.assert_array_equal(dense([[1.0, 2.0]]), dense(np.array([[1.0, 2.0]], np.float32)))
    with pytest.raises(TypeError, match=r"layers.ReLU, not layers.ReLU\(\)"):
        layers.mlp(np.random.default_rng(0), [2, 3, 1], activation=layers.ReLU())
    with pytest.raises(ValueError, match="^evaluate: batch_size must be a positive int"):
        optim.evaluate(dense, losses.MSE(), x[:, :2], np.zeros((64, 3), np.float32), batch_size=0)
