"""Look at what a saved model sees: test digits as text art, its top-3 guesses, and its test accuracy.

    python examples/predict.py mnist-mlp.npz --index 0 7 42
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from lamina import data, layers, losses, optim

SHADES = " .:-=+*#%@"


def text_art(image: np.ndarray) -> str:
    """A 28 x 28 image in [0, 1] as 28 lines of 56 characters (two per pixel keeps the aspect)."""
    levels = np.minimum((image * len(SHADES)).astype(int), len(SHADES) - 1)
    return "\n".join("".join(SHADES[v] * 2 for v in row) for row in levels)


def describe(model, image: np.ndarray, label: int, index: int) -> str:
    """The image, then the predicted and true label and the three most probable classes."""
    p = losses.softmax(model(image.reshape(1, -1)))[0]
    top = np.argsort(p)[::-1][:3]
    guesses = ", ".join(f"{k}: {p[k]:.3f}" for k in top)
    verdict = "right" if top[0] == label else "WRONG"
    return (f"{text_art(image.reshape(28, 28))}\n"
            f"test[{index}]: predicted {top[0]}, true {label} ({verdict}); top 3: {guesses}\n")


def main(argv=None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a model file written by examples/mnist.py (or layers.save)")
    p.add_argument("--index", type=int, nargs="*", default=[0, 1, 2], help="test-set indices to show")
    p.add_argument("--fashion", action="store_true", help="use the Fashion-MNIST test set")
    args = p.parse_args(argv)
    model = layers.load(args.model)
    _, (x_test, y_test) = (data.fashion_mnist if args.fashion else data.mnist)()
    for i in args.index:
        if not -len(x_test) <= i < len(x_test):
            p.error(f"--index {i} is outside the test set (0 to {len(x_test) - 1})")
        print(describe(model, x_test[i], int(y_test[i]), i))
    accuracy = optim.evaluate(model, losses.SoftmaxCrossEntropy(), x_test, y_test)["accuracy"]
    print(f"test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main(sys.argv[1:])
