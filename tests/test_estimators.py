"""lamina.estimators: training promises (partial_fit, warm start, early stopping), labels, round trips,
searches, bad input."""

from __future__ import annotations

import functools
import io
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

import joblib  # noqa: E402
from sklearn.datasets import make_blobs, make_regression  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from lamina import layers, losses, optim  # noqa: E402
from lamina.estimators import NetClassifier, NetRegressor  # noqa: E402


@pytest.fixture(scope="module")
def blobs():
    x, y = make_blobs(n_samples=120, centers=3, n_features=4, random_state=0)
    return StandardScaler().fit_transform(x), y


@pytest.fixture(scope="module")
def regression():
    x, y = make_regression(n_samples=100, n_features=5, n_targets=2, noise=1.0, random_state=0)
    return x, y / y.std(axis=0)


def same_arrays(a, b):
    pa, pb = layers.parameters(a), layers.parameters(b)
    return len(pa) == len(pb) and all(np.array_equal(u, v) for u, v in zip(pa, pb))


def small(cls, **settings):
    return cls(**{"hidden": (16,), "epochs": 3, "batch_size": 16, "random_state": 0, **settings})


# ---- training promises -------------------------------------------------------------------------------

@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_k_partial_fits_equal_fit_with_k_epochs_bit_for_bit(blobs, optimizer):
    x, y = blobs
    fitted = small(NetClassifier, optimizer=optimizer).fit(x, y)
    stepped = small(NetClassifier, optimizer=optimizer)
    for _ in range(3):
        stepped.partial_fit(x, y)
    assert same_arrays(fitted.model_, stepped.model_)
    assert fitted._rng.bit_generator.state == stepped._rng.bit_generator.state
    assert stepped.n_iter_ == 3 and len(stepped.history_["loss"]) == 3
    assert stepped.history_["loss"] == fitted.history_["loss"]


def test_partial_fit_regressor_and_dropout_model_bit_for_bit(regression):
    x, y = regression

    def with_dropout(rng, n_features, n_outputs):
        return layers.Sequence([layers.Dense.init(rng, n_features, 8, dtype=np.float64), layers.ReLU(),
                                layers.Dropout(0.3), layers.Dense.init(rng, 8, n_outputs, dtype=np.float64)])

    fitted = small(NetRegressor, model=with_dropout, loss="huber").fit(x, y)
    stepped = small(NetRegressor, model=with_dropout, loss="huber")
    for _ in range(3):
        stepped.partial_fit(x, y)
    assert same_arrays(fitted.model_, stepped.model_)


def test_warm_start_adds_epochs(blobs):
    x, y = blobs
    once = small(NetClassifier, epochs=5).fit(x, y)
    twice = small(NetClassifier, epochs=2, warm_start=True).fit(x, y)
    twice.set_params(epochs=3).fit(x, y)
    assert same_arrays(once.model_, twice.model_) and twice.n_iter_ == 5
    cold = small(NetClassifier, epochs=2).fit(x, y)
    first = cold.model_
    cold.fit(x, y)
    assert same_arrays(first, cold.model_) and cold.n_iter_ == 2  # without warm_start: afresh, same seed


def test_same_seed_same_bits_different_seed_differs(blobs):
    x, y = blobs
    a, b = small(NetClassifier).fit(x, y), small(NetClassifier).fit(x, y)
    c = small(NetClassifier, random_state=1).fit(x, y)
    assert same_arrays(a.model_, b.model_) and not same_arrays(a.model_, c.model_)


def test_early_stopping_keeps_the_best_model():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(80, 6)), rng.integers(0, 2, 80)  # noise: the validation loss soon rises
    net = NetClassifier(hidden=(32,), epochs=300, learning_rate=0.01, validation_fraction=0.25, patience=3,
                        random_state=0).fit(x, y)
    history = net.history_
    assert history["stopped_early"] and net.n_iter_ < 300
    assert len(history["val_loss"]) == len(history["val_accuracy"]) == net.n_iter_
    best = history["best_epoch"]
    assert history["val_loss"][best - 1] == min(history["val_loss"]) and net.n_iter_ == best + 3


def test_patience_without_validation_watches_the_training_loss(blobs):
    x, y = blobs
    net = NetClassifier(hidden=(4,), epochs=50, learning_rate=1.0, optimizer="sgd", patience=1,
                        random_state=0).fit(x, y)
    assert "val_loss" not in net.history_ and "stopped_early" in net.history_


def test_history_and_model_are_lamina_objects(tmp_path, blobs):
    x, y = blobs
    net = small(NetClassifier).fit(x, y)
    assert set(net.history_) == {"loss", "accuracy", "seconds"} and net.n_iter_ == 3
    path = tmp_path / "net.npz"
    layers.save(path, net.model_, history=net.history_)
    loaded = layers.load(path)
    np.testing.assert_array_equal(loaded(x), net.model_(x))
    assert optim.evaluate(net.model_, losses.SoftmaxCrossEntropy(),
                          x, np.searchsorted(net.classes_, y))["accuracy"] == net.score(x, y)


def test_verbose_prints_one_line_per_epoch(blobs, capsys):
    small(NetClassifier, verbose=True).fit(*blobs)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("NetClassifier epoch 1: loss ")


# ---- labels, outputs, weights ------------------------------------------------------------------------

def test_string_labels_and_probabilities(blobs):
    x, y = blobs
    names = np.array(["cat", "dog", "emu"])[y]
    net = NetClassifier(hidden=(16,), learning_rate=0.01, random_state=0).fit(x, names)
    assert list(net.classes_) == ["cat", "dog", "emu"]
    assert set(net.predict(x)) <= set(names) and net.score(x, names) > 0.9
    p = net.predict_proba(x)
    np.testing.assert_allclose(p.sum(axis=1), 1)
    np.testing.assert_allclose(np.exp(net.predict_log_proba(x)), p, rtol=1e-12)
    assert (net.classes_[p.argmax(axis=1)] == net.predict(x)).all()


def test_two_classes_have_two_outputs(blobs):
    x, y = blobs
    net = small(NetClassifier).fit(x[y < 2], y[y < 2] == 1)
    assert net.predict_proba(x).shape == (len(x), 2) and net.predict(x).dtype == bool


def test_partial_fit_takes_classes_on_the_first_call(blobs):
    x, y = blobs
    net = small(NetClassifier).partial_fit(x[y < 2], y[y < 2], classes=[0, 1, 2])
    assert list(net.classes_) == [0, 1, 2] and net.predict_proba(x).shape == (len(x), 3)
    net.partial_fit(x, y)
    with pytest.raises(ValueError, match="not in classes_"):
        net.partial_fit(x, y + 5)


def test_class_weights(blobs):
    x, y = blobs
    heavy = small(NetClassifier, learning_rate=0.01, epochs=10,
                  class_weight={0: 1000.0, 1: 1e-4, 2: 1e-4}).fit(x, y)
    assert np.mean(heavy.predict(x) == 0) > 0.8
    keep = (y != 1) | (np.cumsum(y == 1) <= 4)  # 4 samples of class 1, 40 of the others
    plain = small(NetClassifier, learning_rate=0.01).fit(x[keep], y[keep])
    balanced = small(NetClassifier, learning_rate=0.01, class_weight="balanced").fit(x[keep], y[keep])
    assert balanced._loss(np.array([0, 1, 2, 1])).class_weights.tolist() == [4 / 3, 2 / 3, 4 / 3]
    recall = [np.mean(net.predict(x[y == 1]) == 1) for net in (plain, balanced)]
    assert recall[1] > recall[0]
    with pytest.raises(ValueError, match=r"class_weight names labels that are not classes: \[7\]"):
        small(NetClassifier, class_weight={7: 2.0}).fit(x, y)
    with pytest.raises(ValueError, match="class_weight must be None, 'balanced' or a dict"):
        small(NetClassifier, class_weight="heavy").fit(x, y)


@pytest.mark.parametrize("loss", ["mse", "huber", "l1"])
def test_multi_output_regression(regression, loss):
    x, y = regression
    net = NetRegressor(hidden=(32,), epochs=40, learning_rate=0.01, loss=loss, random_state=0).fit(x, y)
    assert net.predict(x).shape == (len(x), 2) and net.n_outputs_ == 2 and net.score(x, y) > 0.8
    one = NetRegressor(hidden=(8,), epochs=2, loss=loss, random_state=0).fit(x, y[:, 0])
    assert one.predict(x).shape == (len(x),)


def test_float32(blobs):
    x, y = blobs
    net = small(NetClassifier, dtype=np.float32).fit(x, y)
    assert all(p.dtype == np.float32 for p in layers.parameters(net.model_))
    assert net.predict_proba(x).dtype == np.float32


# ---- round trips, pipelines, searches ----------------------------------------------------------------

@pytest.mark.parametrize("cls", [NetClassifier, NetRegressor])
def test_pickle_and_joblib_round_trips(blobs, cls):
    x, y = blobs
    net = small(cls).fit(x, y)
    for copy in (pickle.loads(pickle.dumps(net)), joblib_round_trip(net)):
        np.testing.assert_array_equal(copy.predict(x), net.predict(x))
        assert all(not p.flags.writeable for p in layers.parameters(copy.model_))
        copy.partial_fit(x, y)  # training goes on from the unpickled state
        net_copy = pickle.loads(pickle.dumps(net)).partial_fit(x, y)
        assert same_arrays(copy.model_, net_copy.model_)


def joblib_round_trip(estimator):
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    buffer.seek(0)
    return joblib.load(buffer)


def test_pipeline_with_scaler_and_pandas_output(blobs):
    pd = pytest.importorskip("pandas")
    x, y = blobs
    frame = pd.DataFrame(x * 100 + 5, columns=["a", "b", "c", "d"])
    pipe = make_pipeline(StandardScaler(), NetClassifier(hidden=(16,), learning_rate=0.01, random_state=0))
    pipe = pipe.set_output(transform="pandas")
    pipe.fit(frame, y)
    net = pipe[-1]
    assert list(net.feature_names_in_) == ["a", "b", "c", "d"] and pipe.score(frame, y) > 0.9
    with pytest.warns(UserWarning, match="feature names"):
        net.predict(x)


def wide(rng, n_features, n_outputs, width=8, depth=1):
    """A custom architecture for the searches: ``depth`` Tanh layers of ``width``."""
    sizes = [n_features, *[width] * depth, n_outputs]
    return layers.mlp(rng, sizes, activation=layers.Tanh, dtype=np.float64)


def test_grid_search_over_optimizers_momentum_and_architectures(blobs):
    x, y = blobs
    grid = GridSearchCV(NetClassifier(epochs=3, random_state=0), {
        "optimizer": ["sgd", "adam", "adamw", "rmsprop"],
        "momentum": [0.0, 0.9],
        "model": [None, functools.partial(wide, width=4), functools.partial(wide, width=8, depth=2)],
    }, cv=2).fit(x, y)
    assert len(grid.cv_results_["params"]) == 24 and np.isfinite(grid.cv_results_["mean_test_score"]).all()
    # momentum changes sgd and rmsprop only
    scores = {(p["optimizer"], p["momentum"], repr(p["model"])): s
              for p, s in zip(grid.cv_results_["params"], grid.cv_results_["mean_test_score"])}
    for model in (None, functools.partial(wide, width=4)):
        assert scores["adam", 0.0, repr(model)] == scores["adam", 0.9, repr(model)]


def test_randomized_search_over_every_setting(regression):
    from scipy.stats import loguniform
    x, y = regression
    search = RandomizedSearchCV(NetRegressor(random_state=0), {
        "hidden": [(), (8,), (8, 4)],
        "activation": ["relu", "tanh", "gelu", "leaky_relu", "sigmoid", "identity"],
        "optimizer": ["sgd", "adam", "adamw", "rmsprop"], "learning_rate": loguniform(1e-4, 1e-2),
        "momentum": [0.0, 0.5], "weight_decay": [0.0, 1e-4], "epochs": [1, 2], "batch_size": [16, 64],
        "validation_fraction": [0.0, 0.2], "patience": [None, 1], "loss": ["mse", "huber", "l1"],
        "dtype": [np.float32, np.float64], "threads": [1, None],
    }, n_iter=8, cv=2, random_state=0, error_score="raise").fit(x, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


# ---- bad input ---------------------------------------------------------------------------------------

def test_bad_input_messages(blobs):
    x, y = blobs
    net = small(NetClassifier)
    with pytest.raises(NotFittedError):
        net.predict(x)
    with pytest.raises(ValueError, match="could not convert string to float"):
        net.fit(np.array([["a", "b"], ["c", "d"]], dtype=object), [0, 1])
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        net.fit(bad, y)
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        net.fit(bad, y)
    with pytest.raises(ValueError, match=re.escape("inconsistent numbers of samples: [120, 119]")):
        net.fit(x, y[:-1])
    net.fit(x, y)
    with pytest.raises(ValueError, match="X has 3 features, but NetClassifier is expecting 4 features as "
                                         "input"):
        net.predict(x[:, :3])
    with pytest.raises(ValueError, match="Unknown label type"):
        small(NetClassifier).fit(x, np.linspace(0, 1, len(x)))


@pytest.mark.parametrize("setting, message", [
    ({"optimizer": "adagrad"}, "unknown optimizer 'adagrad'; valid optimizers are 'sgd', 'adam', 'adamw', "
                               "'rmsprop'"),
    ({"activation": "swish"}, "unknown activation 'swish'; valid activations are 'relu', 'leaky_relu', "
                              "'tanh', 'sigmoid', 'gelu', 'identity'"),
    ({"learning_rate": 0}, "learning_rate must be a positive finite number, got 0"),
    ({"momentum": 1.5}, r"momentum must be a number in \[0, 1\), got 1.5"),
    ({"hidden": (10, 0)}, r"hidden must be a tuple of positive ints such as \(100,\)"),
    ({"epochs": 0}, "epochs must be a positive int, got 0"),
    ({"batch_size": 2.5}, "batch_size must be a positive int, got 2.5"),
    ({"validation_fraction": 1.0}, r"validation_fraction must be a number in \[0, 1\), got 1.0"),
    ({"patience": 0}, "patience must be a positive int or None, got 0"),
    ({"dtype": "int32"}, "dtype must be np.float32 or np.float64, got 'int32'"),
    ({"model": "big"}, "model must be None or a callable"),
    ({"model": functools.partial(wide, width=3)}, None),
    ({"random_state": "seed"}, "random_state must be None, an int"),
])
def test_bad_settings_are_refused_at_fit(blobs, setting, message):
    x, y = blobs
    net = NetClassifier(**setting)  # scikit-learn's constructors only store
    if message is None:
        net.fit(x, y)
        return
    with pytest.raises((ValueError, TypeError), match=message):
        net.fit(x, y)


def test_regressor_loss_name_and_custom_model_width(regression):
    x, y = regression
    with pytest.raises(ValueError, match="unknown loss 'hinge'; valid losses are 'mse', 'huber', 'l1'"):
        NetRegressor(loss="hinge").fit(x, y)

    def three(rng, n_features, n_outputs):
        return layers.Dense.init(rng, n_features, 3, dtype=np.float64)

    with pytest.raises(ValueError, match=r"gives outputs of shape \(n, 3\); expected \(n, 2\)"):
        NetRegressor(model=three).fit(x, y)


def test_validation_split_too_small(blobs):
    x, y = blobs
    with pytest.raises(ValueError, match="validation_fraction=0.1 of 4 samples holds out 0"):
        NetClassifier(validation_fraction=0.1).fit(x[:4], [0, 1, 0, 1])


# ---- packaging ---------------------------------------------------------------------------------------

def test_the_core_imports_neither_sklearn_nor_dask():
    code = ("import sys; import lamina.layers, lamina.losses, lamina.optim, lamina.data; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'dask', 'distributed', "
            "'joblib', 'scipy', 'pandas'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
