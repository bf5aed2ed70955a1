"""A model computes in its parameters' dtype: float64 targets and hyper-parameters keep a float32 model
float32."""

from __future__ import annotations

import numpy as np

from lamina import layers, losses, optim


def random_data(n=64, d=5, k=3, seed=0):
    """x float32 (n, d) from a normal, y int labels (n,) in [0, k)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, k, size=n)


def test_float64_regression_targets_train_a_float32_model():
    x, _ = random_data()
    y = np.random.default_rng(1).normal(size=(64, 1))  # float64, as NumPy makes them
    model, history = optim.fit(layers.mlp(np.random.default_rng(0), [5, 8, 1]), losses.MSE(), optim.SGD(0.01),
                               x, y, epochs=2, batch_size=16, rng=np.random.default_rng(0), validation=(x, y),
                               progress=False)
    assert all(p.dtype == np.float32 for p in layers.parameters(model))
    assert len(history["loss"]) == 2


def test_numpy_float64_hyper_parameters_keep_a_float32_model_float32():
    x, y = random_data()
    opt = optim.SGD(np.float64(0.1), momentum=np.float64(0.9), weight_decay=np.float64(1e-3))
    model, _ = optim.fit(layers.mlp(np.random.default_rng(0), [5, 8, 3]), losses.SoftmaxCrossEntropy(), opt,
                         x, y, epochs=2, batch_size=16, rng=np.random.default_rng(0), progress=False)
    assert all(p.dtype == np.float32 for p in layers.parameters(model))
