"""Look at what a saved model sees: test digits as text art, its top-3 guesses, and its test accuracy.

    python examples/predict.py mnist-mlp.npz --index 0 7 42
    python examples/predict.py mnist-mlp.npz --wrong          # the first 10 test digits it gets wrong
    python examples/predict.py cnn.npz --wrong 3              # a model on images (28, 28, 1) works the same

Any model of 28 x 28 images with 10 outputs: one that takes flat rows of 784 pixels (an MLP, or a CNN
starting with Reshape) or one that takes images shaped (28, 28, 1) or (28, 28) (a CNN starting with Conv2D).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from command_line import Help, main_guard

from lamina import data, layers, losses

SHADES = " .:-=+*#%@"
SIDE = 28
INPUT_SHAPES = ((SIDE * SIDE,), (SIDE, SIDE, 1), (SIDE, SIDE))   # flat rows first: the examples' MLPs


def text_art(image: np.ndarray) -> str:
    """A 28 x 28 image in [0, 1] as 28 lines of 56 characters (two per pixel keeps the aspect)."""
    levels = np.minimum((image * len(SHADES)).astype(int), len(SHADES) - 1)
    return "\n".join("".join(SHADES[v] * 2 for v in row) for row in levels)


def input_shape(model, n_classes: int = 10) -> tuple | None:
    """The per-sample shape of a 28 x 28 image the model takes (flat 784, (28, 28, 1) or (28, 28)); None if
    none fits.

    Asks ``model.output_shape`` where the model tells, then confirms with one blank image."""
    for shape in INPUT_SHAPES:
        try:
            known = model.output_shape(shape) if callable(getattr(model, "output_shape", None)) else None
            if known is not None and tuple(known) != (n_classes,):
                continue
            if model(np.zeros((1, *shape), np.float32)).shape == (1, n_classes):
                return shape
        except (ValueError, TypeError):   # ShapeError is a ValueError: the model takes another shape
            continue
    return None


def describe(probabilities: np.ndarray, image: np.ndarray, label: int, index: int) -> str:
    """The image, then the predicted and true label and the three most probable classes."""
    top = np.argsort(probabilities)[::-1][:3]
    guesses = ", ".join(f"{k}: {probabilities[k]:.3f}" for k in top)
    verdict = "right" if top[0] == label else "WRONG"
    return (f"{text_art(image.reshape(SIDE, SIDE))}\n"
            f"test[{index}]: predicted {top[0]}, true {label} ({verdict}); top 3: {guesses}\n")


def parse_args(argv=None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=Help)
    p.add_argument("model", help="a model file written by examples/mnist.py (or layers.save, or a "
                                 "checkpoint)")
    p.add_argument("--index", type=int, nargs="*", default=[0, 1, 2], metavar="I",
                   help="test-set indices to show")
    p.add_argument("--wrong", type=int, nargs="?", const=10, default=None, metavar="N",
                   help="show only misclassified test images: the first N (10 when N is left out) instead of "
                        "--index (default: off)")
    p.add_argument("--fashion", action="store_true", help="use the Fashion-MNIST test set (default: MNIST)")
    args = p.parse_args(argv)
    if args.wrong is not None and args.wrong < 1:
        p.error(f"--wrong must be at least 1, got {args.wrong}")
    return p, args


def main(argv=None) -> float:
    p, args = parse_args(argv)
    try:
        model = layers.load(args.model)
    except (OSError, ValueError) as error:   # missing, unreadable, damaged or not a model file: one line
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        p.exit(1, f"{p.prog}: cannot load the model {args.model}: {reason}\n")
    _, (x_test, y_test) = (data.fashion_mnist if args.fashion else data.mnist)()
    shape = input_shape(model)
    if shape is None:
        p.exit(1, f"{p.prog}: the model in {args.model} takes no 28 x 28 image with 10 outputs (tried inputs "
                  f"shaped {', '.join(str(s) for s in INPUT_SHAPES)})\n")
    probabilities = losses.softmax(model(x_test.reshape(len(x_test), *shape)))
    predicted = probabilities.argmax(axis=1)
    if args.wrong is not None:
        wrong = np.flatnonzero(predicted != y_test)
        shown = wrong[:args.wrong]
        print(f"{len(wrong)} of {len(y_test)} test images are misclassified; the first {len(shown)}:\n")
    else:
        for i in args.index:
            if not -len(x_test) <= i < len(x_test):
                p.error(f"--index {i} is outside the test set (0 to {len(x_test) - 1})")
        shown = [i % len(x_test) for i in args.index]
    for i in shown:
        print(describe(probabilities[i], x_test[i], int(y_test[i]), int(i)))
    accuracy = float(np.mean(predicted == y_test))
    print(f"test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main_guard(lambda: main(sys.argv[1:]))
