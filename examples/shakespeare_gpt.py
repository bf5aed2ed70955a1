"""A character-level GPT on Tiny Shakespeare: nanoGPT's CPU configuration, written out in lamina's layers.

    pip install -e . && python examples/shakespeare_gpt.py     # val loss about 1.88, a few minutes on 2 cores
    python examples/shakespeare_gpt.py --model lstm            # a char-rnn-style 2-layer LSTM instead
    python examples/shakespeare_gpt.py --checkpoint runs/gpt   # Ctrl-C, then the printed command resumes
    python examples/shakespeare_gpt.py --help                  # every setting, with its default

The GPT: token and position embeddings, 4 pre-norm blocks (LayerNorm, causal self-attention,
residual; LayerNorm, Dense 128 -> 512, GELU, Dense 512 -> 128, residual), a final LayerNorm and an
output layer tied to the token embedding (``layers.Transposed``). Trained as nanoGPT trains it:
AdamW (betas 0.9, 0.99; weight decay 0.1 on matrices only), a cosine schedule with warmup, the
gradients clipped at norm 1. The first 90% of the text trains, the last 10% validates; the last
line is the mean loss over the whole validation text in non-overlapping windows of the context length.
"""

from __future__ import annotations

import os

# Before NumPy loads OpenBLAS: its idle threads sleep at once instead of spinning for about 0.1 s after each
# matrix product, which left no core for the element-wise work lamina splits between threads.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import argparse
import math
import sys
import time
from pathlib import Path

import attrs
import numpy as np
from command_line import Help, Position, check_outputs, epoch_lines, interrupted, main_guard

from lamina import data, layers, losses, optim


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train a character-level GPT (or LSTM) on Tiny Shakespeare.",
                                formatter_class=Help)
    p.add_argument("--model", choices=("gpt", "lstm"), default="gpt", help="the network")
    p.add_argument("--layers", type=int, default=None,
                   help="transformer blocks (gpt: 4) or stacked LSTMs (lstm: 2)")
    p.add_argument("--heads", type=int, default=4, help="attention heads")
    p.add_argument("--dim", type=int, default=128, help="embedding width (and the LSTMs' hidden width: 2x)")
    p.add_argument("--context", type=int, default=64, help="characters the model sees at once")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout after embedding, attention and MLP")
    p.add_argument("--init-std", type=float, default=0.02,
                   help="std of the GPT's normal init (residual projections: std / sqrt(2 layers))")
    p.add_argument("--steps", type=int, default=2000, help="training steps")
    p.add_argument("--batch-size", type=int, default=12, help="windows per training step")
    p.add_argument("--eval-every", type=int, default=250, help="steps between validation estimates")
    p.add_argument("--eval-windows", type=int, default=240, help="validation windows in each estimate")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--min-lr", type=float, default=1e-4, help="learning rate at the end of the cosine")
    p.add_argument("--warmup", type=int, default=100, help="steps of linear warmup")
    p.add_argument("--beta1", type=float, default=0.9, help="AdamW's first beta")
    p.add_argument("--beta2", type=float, default=0.99, help="AdamW's second beta")
    p.add_argument("--weight-decay", type=float, default=0.1, help="AdamW decay, on matrices only")
    p.add_argument("--clip", type=float, default=1.0, help="gradient clipping: largest global norm")
    p.add_argument("--limit", type=int, default=None,
                   help="use the first N characters of the text (quick runs)")
    p.add_argument("--sample", type=int, default=500, help="characters to generate at the end")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    p.add_argument("--top-k", type=int, default=200, help="sample among the k likeliest characters")
    p.add_argument("--seed", type=int, default=1337,
                   help="seed of the one generator: weights, batches, sample")
    p.add_argument("--threads", type=optim.threads.parse, default=optim.DEFAULT_THREADS,
                   help="BLAS threads: auto (chosen by timing), a count, or none (left as it is)")
    p.add_argument("--checkpoint", type=Path, default=None, help="folder for checkpoints (default: none)")
    p.add_argument("--checkpoint-every", type=int, default=None,
                   help="steps between checkpoints besides one per validation estimate")
    p.add_argument("--resume", type=Path, default=None, help="checkpoint folder or file to go on from")
    p.add_argument("--out", type=Path, default=Path("shakespeare-gpt.npz"),
                   help="where the trained model and its vocabulary are saved")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="hide the progress bars; the per-estimate lines stay (default: bars shown)")
    args = p.parse_args(argv)
    args.layers = args.layers or (4 if args.model == "gpt" else 2)
    if min(args.layers, args.heads, args.dim, args.context, args.steps, args.batch_size, args.eval_every,
           args.eval_windows, args.top_k) < 1:
        p.error("--layers, --heads, --dim, --context, --steps, --batch-size, --eval-every, --eval-windows "
                "and --top-k must be at least 1")
    if args.dim % args.heads:
        p.error(f"--dim ({args.dim}) must be a multiple of --heads ({args.heads})")
    if not 0 <= args.dropout < 1:
        p.error(f"--dropout must be in [0, 1), got {args.dropout}")
    if not 0 < args.min_lr <= args.lr:
        p.error(f"--min-lr must be in (0, --lr], got {args.min_lr} with --lr {args.lr}")
    check_outputs(p, {"--out": args.out})
    return args


def gpt(rng, n_tokens: int, *, dim: int, heads: int, blocks: int, context: int, dropout: float,
        std: float = 0.02):
    """nanoGPT's model: weights N(0, std), the residual output projections N(0, std / sqrt(2 blocks))."""
    residual_std = std / math.sqrt(2 * blocks)
    tokens = layers.Embedding.init(rng, n_tokens, dim, init=std)

    def attention():
        attn = layers.MultiHeadAttention.init(rng, dim, heads, causal=True, init=std)
        out = layers.Dense.init(rng, dim, dim, init=residual_std).weight
        return layers.Sequence([layers.LayerNorm.init(dim), attrs.evolve(attn, weight_out=out),
                                layers.Dropout(dropout)])

    def mlp():
        return layers.Sequence([layers.LayerNorm.init(dim),
                                layers.Dense.init(rng, dim, 4 * dim, init=std),
                                layers.GELU(),
                                layers.Dense.init(rng, 4 * dim, dim, init=residual_std),
                                layers.Dropout(dropout)])

    return layers.Sequence([
        tokens,
        layers.PositionalEmbedding.init(rng, context, dim, init=std),
        layers.Dropout(dropout),
        *[layers.Residual(part()) for _ in range(blocks) for part in (attention, mlp)],
        layers.LayerNorm.init(dim),
        layers.Transposed(tokens),           # the output layer is the token embedding, transposed
    ])


def lstm(rng, n_tokens: int, *, dim: int, blocks: int, dropout: float):
    """char-rnn: an embedding, stacked LSTMs, and a Dense layer to the next character's logits."""
    hidden = 2 * dim
    stack = [layers.LSTM.init(rng, dim if i == 0 else hidden, hidden) for i in range(blocks)]
    return layers.Sequence([layers.Embedding.init(rng, n_tokens, dim), *stack, layers.Dropout(dropout),
                            layers.Dense.init(rng, hidden, n_tokens, init="glorot")])


@attrs.define
class StopAt:
    """A fit callback that ends training after ``steps`` steps in all (epochs of ``steps_per_epoch``)."""

    steps: int
    steps_per_epoch: int

    def on_batch_end(self, run) -> None:
        if (run.epoch - 1) * self.steps_per_epoch + run.batch >= self.steps:
            run.stop = True


def main(argv=None) -> float:
    args = parse_args(argv)
    started, cpu_started = time.perf_counter(), time.process_time()
    rng = np.random.default_rng(args.seed)

    # the text as ids of its characters; every window of the training part is a sample whose targets are
    # the same characters shifted by one (read-only views: no copy of the corpus)
    text = data.tiny_shakespeare()[:args.limit]
    vocab = data.Vocabulary.from_text(text)
    ids = vocab.encode(text)
    split = int(0.9 * len(ids))
    x_train, y_train = data.windows(ids[:split], args.context)
    x_val, y_val = data.windows(ids[split:], args.context)
    every = np.arange(0, len(x_val), args.context)                 # non-overlapping: the whole split once
    pick = np.random.default_rng(0).choice(len(x_val), min(args.eval_windows, len(x_val)), replace=False)

    if args.model == "gpt":
        model = gpt(rng, len(vocab), dim=args.dim, heads=args.heads, blocks=args.layers, context=args.context,
                    dropout=args.dropout, std=args.init_std)
    else:
        model = lstm(rng, len(vocab), dim=args.dim, blocks=args.layers, dropout=args.dropout)
    print(model.summary((args.context,)))
    loss = losses.SoftmaxCrossEntropy()
    schedule = optim.Cosine(initial=args.lr, total=args.steps, final=args.min_lr, warmup=args.warmup)
    opt = optim.AdamW(schedule, betas=(args.beta1, args.beta2), weight_decay=args.weight_decay,
                      clip_norm=args.clip, decay=lambda path, p: p.ndim >= 2)

    position = Position()
    epochs = -(-args.steps // args.eval_every)
    try:
        model, history = optim.fit(model, loss, opt, x_train, y_train, epochs=epochs,
                                   steps_per_epoch=args.eval_every, batch_size=args.batch_size, rng=rng,
                                   validation=(x_val[pick], y_val[pick]), progress=args.progress,
                                   threads=args.threads, checkpoint=args.checkpoint, resume=args.resume,
                                   checkpoint_every=args.checkpoint_every,
                                   callbacks=[position, StopAt(args.steps, args.eval_every),
                                              *epoch_lines(args.progress)])
    except optim.TrainingInterrupted as stop:   # Ctrl-C: keep what was trained
        def save(path, model, history):
            layers.save(path, model, history=history, vocabulary=vocab.to_json(), interrupted=True)
        interrupted(stop, position, out=args.out, script=sys.argv[0], argv=sys.argv[1:], save=save)
    trained = time.perf_counter() - started
    val = optim.evaluate(model, loss, x_val[every], y_val[every], batch_size=64, threads=args.threads)
    layers.save(args.out, model, history=history, vocabulary=vocab.to_json(), val_loss=val["loss"],
                settings={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()})
    with optim.threads.BlasThreads(1, who="generate"):    # one row at a time: one thread is fastest
        sample = layers.generate(model, vocab.encode("\n")[None], args.sample, rng,
                                 temperature=args.temperature, top_k=args.top_k)
    print(vocab.decode(sample[0]))
    print(f"{args.steps} steps: {trained:.0f} s to train, {time.perf_counter() - started:.0f} s in all "
          f"({time.process_time() - cpu_started:.0f} s of CPU); saved to {args.out}")
    print(f"val loss: {val['loss']:.4f}")
    return val["loss"]


if __name__ == "__main__":
    main_guard(main)
