"""The PyTorch peer of bench/gpt.py: a GPT with nanoGPT's maths, biases on and the tanh GELU (as lamina's).

    /work/torchvenv/bin/python bench/gpt_torch.py --train            # nanoGPT's CPU run: time and val loss
    /work/torchvenv/bin/python bench/gpt_torch.py --steps WORK.npz    # bench/gpt.py's worker (it calls this)

The model is nanoGPT's ``model.py`` written again: token and position embeddings, pre-norm blocks
(LayerNorm, causal self-attention through ``F.scaled_dot_product_attention``, residual; LayerNorm,
Linear 4x, GELU, Linear, residual), a final LayerNorm and an output layer tied to the token embedding.
Weights N(0, 0.02), the residual projections N(0, 0.02 / sqrt(2 layers)), biases zero. torch's
AdamW decays the matrices only, the gradients are clipped at norm 1, and the learning rate follows
lamina's ``optim.Cosine`` (linear warmup from lr / warmup, then a cosine over ``total`` steps).

``--train`` is nanoGPT's ``train.py`` loop with its CPU settings (batch 12, context 64, 4 layers,
4 heads, width 128, 2000 steps, an estimate on 20 batches every 250 steps, torch's own thread
count); the last line is the mean loss over the whole validation split in non-overlapping windows
of the context, as examples/shakespeare_gpt.py prints it. Never a lamina dependency: it runs with
an interpreter that has torch (the tinyshakespeare text is read from the repository's data folder).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

TEXT = Path(__file__).resolve().parents[1] / "data" / "tinyshakespeare" / "input.txt.gz"


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.c_attn, self.c_proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):
        n, t, c = x.shape
        q, k, v = (a.view(n, t, self.heads, c // self.heads).transpose(1, 2)
                   for a in self.c_attn(x).split(c, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(n, t, c))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.ln_1, self.attn, self.ln_2 = nn.LayerNorm(dim), Attention(dim, heads), nn.LayerNorm(dim)
        self.c_fc, self.c_proj = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab: int, context: int, dim: int = 128, heads: int = 4, layers: int = 4):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, dim), nn.Embedding(context, dim)
        self.h = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith("c_proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif "ln" not in name:
                nn.init.zeros_(p)

    def forward(self, ids, targets):
        x = self.wte(ids) + self.wpe.weight[:ids.shape[1]]
        for block in self.h:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.T           # the output layer: the embedding, tied
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def optimizer(model, lr: float, weight_decay: float = 0.1, betas=(0.9, 0.99)):
    """torch's AdamW, decaying the matrices only (nanoGPT's two groups)."""
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


def cosine(step: int, initial=1e-3, total=2000, final=1e-4, warmup=100) -> float:
    """lamina's optim.Cosine(initial, total, final, warmup) at ``step`` (0 for the first update)."""
    if step < warmup:
        return initial * (step + 1) / warmup
    t = min(step - warmup, total) / total
    return final + (initial - final) * (1 + math.cos(math.pi * t)) / 2


def step(model, opt, xb, yb, lr: float) -> float:
    """One training step: forward, backward, clip at norm 1, AdamW at ``lr``; the loss before the update."""
    for group in opt.param_groups:
        group["lr"] = lr
    loss = model(xb, yb)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


def load_weights(model, arrays: dict) -> None:
    """Copy a nanoGPT-named state (torch layouts: Linear weights (out, in)) into the model."""
    state = model.state_dict()
    with torch.no_grad():
        for name, value in state.items():
            value.copy_(torch.from_numpy(arrays[name]))


def bench_steps(path: Path, threads: int, dtype: str) -> dict:
    """bench/gpt.py's worker: the work file's weights and batches, every step timed; losses and times."""
    torch.set_num_threads(threads)
    work = np.load(path)
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    config = json.loads(str(work["config"]))
    model = GPT(config["vocab"], config["context"], config["dim"], config["heads"], config["layers"])
    model = model.to(torch_dtype)
    load_weights(model, {k[2:]: work[k].astype(dtype) for k in work.files if k.startswith("w:")})
    opt = optimizer(model, float(work["lr"][0]))
    x, y = torch.from_numpy(work["x"]), torch.from_numpy(work["y"])
    losses, seconds = [], []
    for i in range(len(x)):
        started = time.perf_counter()
        losses.append(step(model, opt, x[i], y[i], float(work["lr"][i])))
        seconds.append(time.perf_counter() - started)
    return {"losses": losses, "seconds": seconds}


def train(args) -> None:
    """nanoGPT's CPU run on Tiny Shakespeare; prints progress, the time, and the val loss line."""
    started, cpu = time.perf_counter(), time.process_time()
    torch.manual_seed(args.seed)
    text = gzip.decompress(TEXT.read_bytes()).decode("utf-8")
    symbols = sorted(set(text))
    index = {c: i for i, c in enumerate(symbols)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.int64)
    split = int(0.9 * len(ids))
    train_ids, val_ids = ids[:split], ids[split:]

    def batch(source):
        ix = torch.randint(len(source) - args.context, (args.batch_size,))
        return (torch.stack([source[i:i + args.context] for i in ix]),
                torch.stack([source[i + 1:i + 1 + args.context] for i in ix]))

    @torch.no_grad()
    def estimate(source):
        model.eval()
        mean = sum(model(*batch(source)).item() for _ in range(args.eval_iters)) / args.eval_iters
        model.train()
        return mean

    model = GPT(len(symbols), args.context, args.dim, args.heads, args.layers)
    opt = optimizer(model, args.lr)
    schedule = dict(initial=args.lr, total=args.steps, final=args.lr / 10, warmup=100)
    for i in range(args.steps + 1):
        if i % args.eval_every == 0:
            print(f"step {i}: train loss {estimate(train_ids):.4f}, val loss {estimate(val_ids):.4f}, "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
        if i == args.steps:
            break
        step(model, opt, *batch(train_ids), cosine(i, **schedule))
    trained = time.perf_counter() - started
    with torch.no_grad():
        starts = torch.arange(0, len(val_ids) - args.context, args.context)
        total, count = 0.0, 0
        for chunk in starts.split(64):
            x = torch.stack([val_ids[i:i + args.context] for i in chunk])
            y = torch.stack([val_ids[i + 1:i + 1 + args.context] for i in chunk])
            total, count = total + model(x, y).item() * len(chunk), count + len(chunk)
    print(f"{args.steps} steps: {trained:.0f} s to train, {time.perf_counter() - started:.0f} s in all "
          f"({time.process_time() - cpu:.0f} s of CPU, {torch.get_num_threads()} threads)")
    print(f"val loss: {total / count:.4f}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--train", action="store_true", help="nanoGPT's 2000-step CPU run on Tiny Shakespeare")
    p.add_argument("--steps-of", type=Path, default=None,
                   help="(bench/gpt.py) run the steps of this work file")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--eval-iters", type=int, default=20)
    p.add_argument("--seed", type=int, default=1337)
    args = p.parse_args(argv)
    if args.steps_of is not None:
        print(json.dumps(bench_steps(args.steps_of, args.threads or torch.get_num_threads(), args.dtype)))
    elif args.train:
        if args.threads:
            torch.set_num_threads(args.threads)
        train(args)
    else:
        p.error("give --train or --steps-of WORK.npz")


if __name__ == "__main__":
    sys.exit(main())
