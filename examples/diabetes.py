"""Bring your own arrays: regression with MSE on a small real table (442 patients, 10 features).

    python examples/diabetes.py

The same layers as the MNIST job, on data that is not images: read a CSV with NumPy,
standardize with the training split's statistics, fit an MLP with MSE, and compare it with
ordinary least squares on the same split. On 442 samples a small MLP only matches the linear
fit (test R^2 about 0.52 for both); a larger one or more epochs overfit, which the
validation loss in the history shows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from lamina import data, layers, losses, optim

CSV = Path(__file__).with_name("data") / "diabetes.csv"


def load(path: Path = CSV):
    """(x (442, 10), y (442, 1)) as float32, and the column names."""
    table = np.genfromtxt(path, delimiter=",", names=True, dtype=np.float64)
    names = list(table.dtype.names)
    columns = np.column_stack([table[name] for name in names]).astype(np.float32)
    return columns[:, :-1], columns[:, -1:], names


def r2(y, pred) -> float:
    """Coefficient of determination: 1 - SS_res / SS_tot."""
    return float(1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description="MLP regression on the diabetes table, against least squares.")
    p.add_argument("--hidden", type=int, nargs="*", default=[4])
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--lr", type=float, default=0.003)
    p.add_argument("--weight-decay", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    x, y, names = load()
    rng = np.random.default_rng(args.seed)
    (x_train, y_train), (x_test, y_test) = data.split(x, y, 0.2, rng)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    y_mean, y_std = y_train.mean(), y_train.std()
    scale_x = lambda v: (v - mean) / std
    scale_y = lambda v: (v - y_mean) / y_std

    model = layers.mlp(rng, [x.shape[1], *args.hidden, 1], activation=layers.Tanh)
    opt = optim.SGD(args.lr, momentum=0.9, weight_decay=args.weight_decay)
    model, history = optim.fit(model, losses.MSE(), opt, scale_x(x_train), scale_y(y_train),
                               epochs=args.epochs, batch_size=16, rng=rng,
                               validation=(scale_x(x_test), scale_y(y_test)), progress=False)
    mlp_pred = model(scale_x(x_test)) * y_std + y_mean

    design = np.column_stack([scale_x(x_train), np.ones(len(x_train))])
    coef, *_ = np.linalg.lstsq(design, y_train, rcond=None)
    ols_pred = np.column_stack([scale_x(x_test), np.ones(len(x_test))]) @ coef

    result = {"mlp_r2": r2(y_test, mlp_pred), "least_squares_r2": r2(y_test, ols_pred)}
    print(f"features: {', '.join(names[:-1])}; target: {names[-1]}")
    print(f"{len(x_train)} training and {len(x_test)} test patients; {model.summary().splitlines()[-1]}")
    print(f"final training loss (standardized MSE): {history['loss'][-1]:.4f}, "
          f"validation: {history['val_loss'][-1]:.4f}")
    print(f"test R^2: MLP {result['mlp_r2']:.3f}, least squares {result['least_squares_r2']:.3f}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
