"""A binary classifier on a real table: malignant or benign, from 30 measurements of a breast mass (569
patients).

    python examples/breast_cancer.py
    python examples/breast_cancer.py --pos-weight 2     # weigh the malignant cases more: fewer missed

One output (a logit) trained with BinaryCrossEntropy; losses.sigmoid turns it into the probability
of a malignant mass. The example reports test accuracy and ROC AUC (the chance that a malignant
case gets a higher score than a benign one) beside a baseline computed here with NumPy: L2-
regularized logistic regression fitted by Newton's method on the same standardized features.
On this table the baseline is hard to beat (both about 0.97 accuracy, 0.99+ AUC): a network earns
its keep on data that a straight line cannot separate. The data's credit: examples/data/README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from command_line import Help, check_outputs, main_guard, plural

from lamina import data, layers, losses, optim

CSV = Path(__file__).with_name("data") / "breast_cancer.csv"
ACTIVATIONS = {"relu": layers.ReLU, "tanh": layers.Tanh, "sigmoid": layers.Sigmoid}


def load(path: Path = CSV):
    """(x (569, 30) float32, y (569,) int64: 1 malignant, 0 benign), and the feature names."""
    table = np.genfromtxt(path, delimiter=",", names=True, dtype=np.float64)
    names = list(table.dtype.names)
    x = np.column_stack([table[name] for name in names[:-1]]).astype(np.float32)
    return x, table[names[-1]].astype(np.int64), names[:-1]


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """The area under the ROC curve: P(score of a positive > score of a negative), ties counted half
    (Mann-Whitney)."""
    order = np.argsort(score, kind="stable")
    _, first, counts = np.unique(score[order], return_index=True, return_counts=True)
    ranks = np.empty(len(score))
    # 1-based ranks; tied scores share their mean rank
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    positive = y == 1
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def logistic_regression(x: np.ndarray, y: np.ndarray, l2: float, steps: int = 50) -> np.ndarray:
    """Weights (d + 1,), the intercept last, minimizing mean log-loss + l2 / (2 n) |w|^2 (intercept not
    penalized), by Newton's method: w -= H^-1 g with g = X^T (p - y) / n + (l2 / n) w, H = X^T diag(p (1 - p))
    X / n + l2 / n."""
    x = np.column_stack([x.astype(np.float64), np.ones(len(x))])
    n, d = x.shape
    penalty = np.full(d, l2 / n)
    penalty[-1] = 0.0
    w = np.zeros(d)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) / n + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x / n + np.diag(penalty) + 1e-12 * np.eye(d)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="A binary MLP classifier on the Wisconsin breast-cancer table, "
                                            "against logistic regression.", formatter_class=Help)
    p.add_argument("--hidden", type=int, nargs="*", default=[16], metavar="N", help="hidden layer sizes")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu",
                   help="activation after each hidden layer")
    p.add_argument("--epochs", type=int, default=60, help="passes over the training patients")
    p.add_argument("--batch-size", type=int, default=32, help="patients per training step")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    p.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW's decoupled weight decay")
    p.add_argument("--pos-weight", type=float, default=None,
                   help="weight of the malignant cases in the loss (BinaryCrossEntropy's pos_weight; "
                        "default: 1)")
    p.add_argument("--l2", type=float, default=1.0, help="the logistic-regression baseline's L2 penalty (sum "
                                                         "over the samples)")
    p.add_argument("--test-fraction", type=float, default=0.2,
                   help="part of the patients held out for the test")
    p.add_argument("--seed", type=int, default=0, help="seed of the one generator: split, weights, shuffles")
    p.add_argument("--out", type=Path, default=None, help="save the trained model there (default: not saved)")
    p.add_argument("--report", type=Path, default=None, metavar="HTML",
                   help="record layer statistics while training and write an HTML report there (default: "
                        "none)")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or any(n < 1 for n in args.hidden):
        p.error("--epochs, --batch-size and --hidden sizes must be at least 1")
    if not args.lr > 0:
        p.error(f"--lr must be positive, got {args.lr}")
    if args.weight_decay < 0 or args.l2 < 0 or (args.pos_weight is not None and not args.pos_weight > 0):
        p.error("--weight-decay and --l2 must be at least 0, --pos-weight positive")
    if not 0 < args.test_fraction < 1:
        p.error(f"--test-fraction must be in (0, 1), got {args.test_fraction}")
    check_outputs(p, {"--out": args.out, "--report": args.report})
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    x, y, names = load()
    rng = np.random.default_rng(args.seed)
    (x_train, y_train), (x_test, y_test) = data.split(x, y, args.test_fraction, rng)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    # standardized with the training part's statistics
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std

    model = layers.mlp(rng, [x.shape[1], *args.hidden, 1], activation=ACTIVATIONS[args.activation])
    loss = losses.BinaryCrossEntropy(pos_weight=args.pos_weight)
    opt = optim.AdamW(args.lr, weight_decay=args.weight_decay)
    monitor = None
    if args.report is not None:
        from lamina.diagnostics import Monitor
        monitor = Monitor()
    # 0/1 targets shaped like the (n, 1) logits
    targets = y_train[:, None].astype(np.float32)
    model, history = optim.fit(model, loss, opt, x_train, targets, epochs=args.epochs,
                               batch_size=args.batch_size,
                               rng=rng, validation=(x_test, y_test[:, None].astype(np.float32)),
                               progress=False,
                               callbacks=[monitor] if monitor else [])
    mlp_score = losses.sigmoid(model(x_test))[:, 0]

    w = logistic_regression(x_train, y_train, args.l2)
    baseline_score = 1 / (1 + np.exp(-(np.column_stack([x_test, np.ones(len(x_test))]) @ w)))

    result = {"mlp_accuracy": float(np.mean((mlp_score > 0.5) == y_test)),
              "mlp_auc": roc_auc(y_test, mlp_score),
              "baseline_accuracy": float(np.mean((baseline_score > 0.5) == y_test)),
              "baseline_auc": roc_auc(y_test, baseline_score)}
    print(f"{len(x)} patients ({y.sum()} malignant), {len(names)} features; {len(x_train)} for training, "
          f"{len(x_test)} for the test ({y_test.sum()} malignant)")
    print(f"{model.summary().splitlines()[-1]}; {loss!r}, {opt!r}")
    print(f"{plural(args.epochs, 'epoch')}: final training loss {history['loss'][-1]:.4f}, "
          f"accuracy {history['accuracy'][-1]:.4f}; test loss {history['val_loss'][-1]:.4f}")
    if args.out is not None:
        layers.save(args.out, model, history=history, test=result, mean=mean.tolist(), std=std.tolist(),
                    settings={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                    **({"diagnostics": monitor.records} if monitor else {}))
        print(f"saved the model to {args.out} (with the standardization's mean and std)")
    if monitor:
        from lamina import diagnostics
        diagnostics.report(args.report, model, history=history, records=monitor.records,
                           title="Breast cancer: what the network is doing")
        print(f"wrote the report to {args.report}")
    print(f"{'':22}accuracy  ROC AUC")
    print(f"{'MLP':22}{result['mlp_accuracy']:8.4f}  {result['mlp_auc']:7.4f}")
    print(f"{'logistic regression':22}{result['baseline_accuracy']:8.4f}  {result['baseline_auc']:7.4f}")
    print(f"test accuracy: MLP {result['mlp_accuracy']:.4f}, logistic regression "
          f"{result['baseline_accuracy']:.4f}; ROC AUC: MLP {result['mlp_auc']:.4f}, logistic regression "
          f"{result['baseline_auc']:.4f}")
    return result


if __name__ == "__main__":
    main_guard(lambda: main(sys.argv[1:]))
