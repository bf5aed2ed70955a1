"""The main job: train an MLP on MNIST digits to 98%+ test accuracy, and save it.

    pip install -e . && python examples/mnist.py            # defaults: 784-256-10, 8 epochs
    python examples/mnist.py --hidden 128 --activation sigmoid --loss mse --schedule constant
    python examples/mnist.py --checkpoint runs/mnist         # Ctrl-C, then --resume runs/mnist
"""

import sys

from classifier import main

from lamina import data

if __name__ == "__main__":
    main(sys.argv[1:], data.mnist, "MNIST", "mnist-mlp.npz")
