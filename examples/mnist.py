"""The main job: train an MLP on MNIST digits to 98%+ test accuracy, and save it.

    pip install -e . && python examples/mnist.py            # defaults: 784-256-10, 8 epochs, SGD
    python examples/mnist.py --optimizer adam                # or adamw, rmsprop: each with its own defaults
    python examples/mnist.py --hidden 128 --activation sigmoid --loss mse --schedule constant
    python examples/mnist.py --checkpoint runs/mnist         # Ctrl-C, then the printed --resume command
    python examples/mnist.py --epochs 16 --resume runs/mnist # extend a finished 8-epoch run (cosine restarts)
    python examples/mnist.py --onnx mnist.onnx               # also as ONNX for onnxruntime (pip install onnx)
    python examples/mnist.py --help                          # every setting, with its default
"""

from classifier import script_main

from lamina import data

if __name__ == "__main__":
    script_main(data.mnist, "MNIST", "mnist-mlp.npz")
