"""Every lamina loss against PyTorch in float64: value and gradient, every option; exits 1 above 1e-9.

torch is an oracle here, never a dependency of lamina. Run, with torch's site-packages on the path:

    PYTHONPATH=/work/torchvenv/lib/python3.11/site-packages \
        /work/venvs/losses/bin/python bench/torch_agreement/losses.py

Prints one row per case: the largest relative error of the value and of the gradient over a few random draws,
relative to the largest magnitude of torch's value or gradient (so an entry near 0 is not divided by itself).
"""

from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn.functional as F

from lamina import losses

TOLERANCE = 1e-9
DRAWS = 20


def torch_value_and_grad(function, pred, target):
    """torch's loss value and d value / d pred, float64."""
    z = torch.tensor(pred, dtype=torch.float64, requires_grad=True)
    value = function(z, torch.as_tensor(target))
    value.backward()
    return value.item(), z.grad.numpy()


def errors(loss, function, pred, target):
    """(relative error of the value, of the gradient) of lamina's ``loss`` against torch's ``function``."""
    value, cache = loss.forward(pred, target)
    grad = loss.backward(cache)
    expected_value, expected_grad = torch_value_and_grad(function, pred, target)
    value_error = abs(value - expected_value) / max(abs(expected_value), 1e-300)
    grad_error = np.max(np.abs(grad - expected_grad)) / max(np.max(np.abs(expected_grad)), 1e-300)
    return value_error, grad_error


def cross_entropy_cases(rng):
    """(name, lamina loss, torch function, pred, target) for SoftmaxCrossEntropy, labels and probabilities."""
    n, k = int(rng.integers(1, 40)), int(rng.integers(2, 12))
    z = rng.standard_normal((n, k)) * rng.choice([1.0, 5.0, 30.0])
    labels = rng.integers(0, k, n)
    probabilities = rng.dirichlet(np.ones(k), n)
    w = rng.uniform(0.1, 3.0, k)
    eps = float(rng.uniform(0.01, 0.5))
    settings = [("plain", {}, {}),
                ("label_smoothing", {"label_smoothing": eps}, {"label_smoothing": eps}),
                ("class_weights", {"class_weights": w}, {"weight": torch.tensor(w)}),
                ("smoothing+weights", {"label_smoothing": eps, "class_weights": w},
                 {"label_smoothing": eps, "weight": torch.tensor(w)}),
                ("label_smoothing=1", {"label_smoothing": 1.0}, {"label_smoothing": 1.0})]
    for name, ours, theirs in settings:
        loss = losses.SoftmaxCrossEntropy(**ours)
        function = (lambda theirs: lambda z, t: F.cross_entropy(z, t, **theirs))(theirs)
        yield f"SoftmaxCrossEntropy {name}, labels", loss, function, z, labels
        yield f"SoftmaxCrossEntropy {name}, probabilities", loss, function, z, probabilities


def moved(theirs):
    """torch's cross_entropy with the class axis moved from last to 1 (of probability targets too)."""
    def function(z, t):
        return F.cross_entropy(z.movedim(-1, 1), t.movedim(-1, 1) if t.is_floating_point() else t, **theirs)
    return function


def sequence_cases(rng):
    """SoftmaxCrossEntropy over (n, t, k): torch's cross_entropy, the class axis moved to 1; ignore_index."""
    n, t, k = int(rng.integers(1, 6)), int(rng.integers(1, 9)), int(rng.integers(2, 8))
    z = rng.standard_normal((n, t, k)) * rng.choice([1.0, 5.0])
    labels = rng.integers(0, k, (n, t))
    ignored = labels.copy()
    ignored[rng.random((n, t)) < 0.3] = -100
    ignored.flat[0] = 1   # at least one position counted
    probabilities = rng.dirichlet(np.ones(k), (n, t))
    w = rng.uniform(0.1, 3.0, k)
    eps = float(rng.uniform(0.01, 0.5))
    settings = [("plain", {}, {}), ("label_smoothing", {"label_smoothing": eps}, {"label_smoothing": eps}),
                ("class_weights", {"class_weights": w}, {"weight": torch.tensor(w)}),
                ("smoothing+weights", {"label_smoothing": eps, "class_weights": w},
                 {"label_smoothing": eps, "weight": torch.tensor(w)})]
    for name, ours, theirs in settings:
        function = moved(theirs)
        loss = losses.SoftmaxCrossEntropy(**ours)
        yield f"SoftmaxCrossEntropy (n, t, k) {name}, labels", loss, function, z, labels
        yield f"SoftmaxCrossEntropy (n, t, k) {name}, probabilities", loss, function, z, probabilities
        yield (f"SoftmaxCrossEntropy (n, t, k) {name}, ignore_index=-100",
               losses.SoftmaxCrossEntropy(**ours, ignore_index=-100), function, z, ignored)
        flat = labels.reshape(-1).copy()
        flat[0] = 1   # ignore_index a class: its positions ignored, one position counted at least
        yield (f"SoftmaxCrossEntropy (n, k) {name}, ignore_index=0",
               losses.SoftmaxCrossEntropy(**ours, ignore_index=0),
               moved({**theirs, "ignore_index": 0}), z.reshape(-1, k), flat)


def binary_cross_entropy_cases(rng):
    n, k = int(rng.integers(1, 40)), int(rng.integers(1, 8))
    scale = rng.choice([1.0, 5.0, 30.0])
    z2, z1 = rng.standard_normal((n, k)) * scale, rng.standard_normal(n) * scale
    pw_float, pw_k = float(rng.uniform(0.1, 5.0)), rng.uniform(0.0, 5.0, k)
    for shape_name, z in [("(n, k)", z2), ("(n,)", z1), ("(n, 1)", z2[:, :1])]:
        zero_one = (rng.random(z.shape) < 0.4).astype(np.float64)
        soft = rng.random(z.shape)
        settings = [("no pos_weight", None), ("pos_weight float", pw_float)]
        if z.ndim == 2:
            settings.append(("pos_weight (k,)", pw_k[:z.shape[1]]))
        for name, pw in settings:
            theirs = {} if pw is None else {"pos_weight": torch.as_tensor(pw, dtype=torch.float64)}
            function = (lambda theirs: lambda z, t: F.binary_cross_entropy_with_logits(z, t, **theirs))(
                theirs)
            loss = losses.BinaryCrossEntropy(pos_weight=pw)
            yield f"BinaryCrossEntropy {shape_name} {name}, 0/1", loss, function, z, zero_one
            yield f"BinaryCrossEntropy {shape_name} {name}, probabilities", loss, function, z, soft


def regression_cases(rng):
    n, k = int(rng.integers(1, 40)), int(rng.integers(1, 6))
    pred = rng.standard_normal((n, k)) * 3
    target = rng.standard_normal((n, k)) * 3
    some_equal = np.where(rng.random((n, k)) < 0.3, pred, target)  # zero error at about 30% of the elements
    yield "MSE", losses.MSE(), F.mse_loss, pred, target
    for delta in (1.0, 0.5, 2.5, 1e-3, 100.0):
        yield (f"Huber delta={delta}", losses.Huber(delta=delta),
               (lambda delta: lambda z, t: F.huber_loss(z, t, delta=delta))(delta), pred, target)
    yield "Huber delta=1, zero error", losses.Huber(), F.huber_loss, pred, some_equal
    yield "L1", losses.L1(), F.l1_loss, pred, target
    yield "L1, zero error", losses.L1(), F.l1_loss, pred, some_equal


def extreme_cases(rng):
    """Logits of magnitude 1e4: no overflow, no NaN, the same numbers as torch."""
    z = rng.choice([-1e4, 1e4], (16, 4)) + rng.standard_normal((16, 4))
    t = (rng.random((16, 4)) < 0.5).astype(np.float64)
    yield ("BinaryCrossEntropy logits ±1e4", losses.BinaryCrossEntropy(), F.binary_cross_entropy_with_logits,
           z, t)
    yield ("BinaryCrossEntropy logits ±1e4, pos_weight (k,)",
           losses.BinaryCrossEntropy(pos_weight=[0.5, 1, 2, 3]),
           lambda z, t: F.binary_cross_entropy_with_logits(
               z, t, pos_weight=torch.tensor([0.5, 1, 2, 3.0], dtype=torch.float64)), z, t)
    labels = rng.integers(0, 4, 16)
    yield "SoftmaxCrossEntropy logits ±1e4", losses.SoftmaxCrossEntropy(), F.cross_entropy, z, labels
    w = np.array([0.5, 1.0, 2.0, 3.0])
    yield ("SoftmaxCrossEntropy logits ±1e4, smoothing+weights",
           losses.SoftmaxCrossEntropy(label_smoothing=0.1, class_weights=w),
           lambda z, t: F.cross_entropy(z, t, label_smoothing=0.1, weight=torch.tensor(w)), z, labels)


def main() -> int:
    rng = np.random.default_rng(2024)
    worst: dict[str, tuple[float, float]] = {}
    for _ in range(DRAWS):
        for cases in (cross_entropy_cases, sequence_cases, binary_cross_entropy_cases, regression_cases,
                      extreme_cases):
            for name, loss, function, pred, target in cases(rng):
                with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow is fine
                    value_error, grad_error = errors(loss, function, pred, target)
                old = worst.get(name, (0.0, 0.0))
                worst[name] = (max(old[0], value_error), max(old[1], grad_error))
    width = max(map(len, worst))
    print(f"torch {torch.__version__}, numpy {np.__version__}, float64, {DRAWS} random draws per case\n")
    print(f"{'case':<{width}}  {'value':>9}  {'gradient':>9}")
    failed = []
    for name, (value_error, grad_error) in worst.items():
        flag = "" if max(value_error, grad_error) <= TOLERANCE else "  FAIL"
        print(f"{name:<{width}}  {value_error:9.2e}  {grad_error:9.2e}{flag}")
        if flag:
            failed.append(name)
    print(f"\n{len(worst) - len(failed)} of {len(worst)} cases within relative {TOLERANCE:.0e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
