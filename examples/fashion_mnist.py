"""The same layers on other images: Fashion-MNIST (Zalando), with the same flags as mnist.py.

    python examples/fashion_mnist.py --epochs 15 --hidden 512 256
"""

from classifier import script_main

from lamina import data

if __name__ == "__main__":
    script_main(data.fashion_mnist, "Fashion-MNIST", "fashion-mnist-mlp.npz")
