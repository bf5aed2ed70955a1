"""A tied denoising autoencoder on MNIST: the decoder is the encoder's own weights, transposed.

    pip install -e . && python examples/autoencoder.py          # a few minutes; prints both models' test MSE
    python examples/autoencoder.py --limit 2000 --epochs 1      # a quick run
    python examples/autoencoder.py --help                       # every setting, with its default

The encoder's Dense records are placed again in the decoder through layers.Transposed.init(layer,
bias=True): one record at two places is one set of weights (sharing by identity), so the decoder
adds only its biases. The same model with a decoder of its own (untied, started from the same
weights) is trained beside it on the same noisy batches, and both are scored on the clean test
digits. With matplotlib installed, a PNG shows noisy inputs and both reconstructions.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from command_line import Help, check_outputs, main_guard

from lamina import data, layers, losses, optim


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(formatter_class=Help,
                                description="A tied denoising autoencoder on MNIST beside the untied one.")
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 64], help="widths of the encoder's layers")
    p.add_argument("--noise", type=float, default=0.3, help="std of the Gaussian noise added to each input")
    p.add_argument("--epochs", type=int, default=5, help="passes over the training samples")
    p.add_argument("--batch-size", type=int, default=128, help="samples per training step")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    p.add_argument("--limit", type=int, default=None,
                   help="train on the first N training samples (and score on the first N test samples) only")
    p.add_argument("--seed", type=int, default=0, help="seed of the one generator: weights, shuffles, noise")
    p.add_argument("--out", type=Path, default=Path("autoencoder.npz"), help="where the tied model is saved")
    p.add_argument("--png", type=Path, default=Path("autoencoder.png"),
                   help="where the reconstructions are drawn (needs matplotlib)")
    args = p.parse_args(argv)
    if min(args.epochs, args.batch_size, *args.hidden) < 1:
        p.error("--epochs, --batch-size and --hidden must be at least 1")
    if args.noise < 0:
        p.error(f"--noise must be >= 0, got {args.noise}")
    if args.limit is not None and args.limit < 1:
        p.error(f"--limit must be at least 1, got {args.limit}")
    check_outputs(p, {"--out": args.out, "--png": args.png})
    return args


def build(rng, sizes: list[int]) -> tuple[layers.Sequence, layers.Sequence]:
    """(tied, untied): encoder Dense+ReLU per width; the decoder mirrors it, ending in a Sigmoid (pixels in
    [0, 1])."""
    encoder = [layers.Dense.init(rng, a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    untied_decoder = [layers.Dense(weight=d.weight.T.copy(), bias=np.zeros(d.weight.shape[0], np.float32))
                      for d in reversed(encoder)]

    def assemble(decoder):
        parts = [piece for d in encoder for piece in (d, layers.ReLU())]
        for i, d in enumerate(decoder):
            parts += [d, layers.ReLU() if i < len(decoder) - 1 else layers.Sigmoid()]
        return layers.Sequence(parts)

    tied = assemble([layers.Transposed.init(d, bias=True) for d in reversed(encoder)])
    return tied, assemble(untied_decoder)


def train(models: dict, x, args, rng) -> dict:
    """Adam on each model, the same noisy batches for all; returns the trained models."""
    loss, opt = losses.MSE(), optim.Adam(args.lr)
    states = {name: opt.init(model) for name, model in models.items()}
    mode = layers.Mode(train=True, rng=rng)
    for epoch in range(1, args.epochs + 1):
        started, totals, count = time.perf_counter(), dict.fromkeys(models, 0.0), 0
        for xb, _ in data.batches(x, x, args.batch_size, rng=rng):
            noisy = np.clip(xb + rng.normal(0, args.noise, xb.shape).astype(np.float32), 0, 1)
            for name, model in models.items():
                models[name], states[name], value, _ = optim.train_step(model, loss, opt, states[name],
                                                                        noisy, xb, mode)
                totals[name] += value * len(xb)
            count += len(xb)
        scores = ", ".join(f"{name} loss {total / count:.5f}" for name, total in totals.items())
        print(f"epoch {epoch}/{args.epochs}: {scores} ({time.perf_counter() - started:.1f} s)")
    return models


def draw(path: Path, noisy, reconstructions: dict, clean) -> bool:
    """Rows of digits: noisy input, each model's reconstruction, the clean digit; False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = {"noisy": noisy, **reconstructions, "clean": clean}
    fig, axes = plt.subplots(len(rows), len(clean), figsize=(len(clean), len(rows) * 1.1))
    for r, (name, images) in enumerate(rows.items()):
        for c, image in enumerate(images):
            axes[r, c].imshow(image.reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return True


def main(argv=None) -> dict:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    (x_train, _), (x_test, _) = data.mnist()
    if args.limit is not None:
        x_train, x_test = x_train[:args.limit], x_test[:args.limit]
    tied, untied = build(rng, [x_train.shape[1], *args.hidden])
    print(tied.summary())
    models = train({"tied": tied, "untied": untied}, x_train, args, rng)
    tied = models["tied"]
    assert tied.layers[-2].layer is tied.layers[0]        # still one set of weights after training
    noisy = np.clip(x_test + rng.normal(0, args.noise, x_test.shape).astype(np.float32), 0, 1)
    mse = {name: float(np.mean((model(noisy) - x_test) ** 2)) for name, model in models.items()}
    counts = {name: sum(p.size for p in layers.parameters(model)) for name, model in models.items()}
    for name in models:
        print(f"{name}: test MSE {mse[name]:.5f} on noisy test digits ({counts[name]:,} parameters)")
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    layers.save(args.out, tied, settings=settings)
    print(f"saved the tied model to {args.out}")
    shown = slice(0, 10)
    if draw(args.png, noisy[shown], {name: m(noisy[shown]) for name, m in models.items()}, x_test[shown]):
        print(f"drew the reconstructions in {args.png}")
    return mse


if __name__ == "__main__":
    main_guard(main)
