"""The same layers on other images: Fashion-MNIST (Zalando), with the same flags as mnist.py.

    python examples/fashion_mnist.py --epochs 15 --hidden 512 256
"""

import sys

from classifier import main

from lamina import data

if __name__ == "__main__":
    main(sys.argv[1:], data.fashion_mnist, "Fashion-MNIST", "fashion-mnist-mlp.npz")
