"""
Text
====

A language model reads characters and learns to predict the next one. This tutorial takes Tiny
Shakespeare (1.1 MB, shipped with lamina), turns it into ids with a :class:`lamina.data.Vocabulary`,
cuts next-character windows with :func:`lamina.data.windows`, trains a small GPT for a few dozen steps
and samples text with :func:`lamina.layers.generate`. A few dozen steps teach it spelling's first
rules, not Shakespeare: ``python examples/shakespeare_gpt.py`` is the full run.
"""

# %%
# Characters to ids
# -----------------
import matplotlib.pyplot as plt
import numpy as np

from lamina import data, layers, losses, optim

text = data.tiny_shakespeare()
vocab = data.Vocabulary.from_text(text)
ids = vocab.encode(text)
print(f"{len(text):,} characters, {len(vocab)} symbols: {''.join(vocab.symbols)!r}")
print(ids[:12], "->", repr(vocab.decode(ids[:12])))

# %%
# A symbol outside the vocabulary is refused, naming it:
try:
    vocab.encode("café")
except (KeyError, ValueError) as error:
    print(f"{type(error).__name__}: {error}")

# %%
# Next-character windows
# ----------------------
# ``windows(ids, length)`` gives ``x[i] = ids[i:i+length]`` and ``y[i] = ids[i+1:i+length+1]``, as
# read-only views: no copy of the corpus, however long it is.
x, y = data.windows(ids, 64)
print(x.shape, y.shape, "share the corpus' memory:", np.shares_memory(x, ids))
print(repr(vocab.decode(x[0][:20])), "->", repr(vocab.decode(y[0][:20])))

# %%
# A small GPT
# -----------
# Token and position embeddings, two pre-norm transformer blocks (causal self-attention and an MLP,
# each inside a ``Residual``), a final ``LayerNorm`` and an output layer that is the token embedding
# transposed (tied, as GPT-2 does).
rng = np.random.default_rng(0)
dim, heads, length = 64, 4, 64


def transformer_block():
    """Pre-norm attention and MLP, each with a skip connection: (n, t, dim) -> (n, t, dim)."""
    return layers.Sequence([
        layers.Residual(layers.Sequence([layers.LayerNorm.init(dim),
                                         layers.MultiHeadAttention.init(rng, dim, heads, causal=True)])),
        layers.Residual(layers.Sequence([layers.LayerNorm.init(dim), layers.Dense.init(rng, dim, 4 * dim),
                                         layers.GELU(), layers.Dense.init(rng, 4 * dim, dim)])),
    ])


embedding = layers.Embedding.init(rng, len(vocab), dim)
gpt = layers.Sequence([embedding, layers.PositionalEmbedding.init(rng, length, dim),
                       transformer_block(), transformer_block(),
                       layers.LayerNorm.init(dim), layers.Transposed(embedding)])
print(gpt.summary((length,)))

# %%
# A few dozen steps
# -----------------
# ``steps_per_epoch`` makes an epoch a fixed number of batches drawn from the shuffled windows, so a
# corpus of a million windows trains in short epochs that each report a loss.
loss = losses.SoftmaxCrossEntropy()
gpt, history = optim.fit(gpt, loss, optim.AdamW(3e-3), x, y, epochs=6, batch_size=16, steps_per_epoch=8,
                         rng=rng, progress=False)
print("loss by epoch:", [round(value, 3) for value in history["loss"]])
print(f"a uniform guess would score {np.log(len(vocab)):.3f}")

plt.plot(range(1, len(history["loss"]) + 1), history["loss"], marker="o")
plt.axhline(np.log(len(vocab)), color="gray", linestyle="--", label="uniform guess")
plt.xlabel("epoch (8 batches of 16 windows)")
plt.ylabel("cross-entropy per character")
plt.legend()
plt.title("A small GPT on Tiny Shakespeare")
plt.show()

# %%
# Sampling
# --------
# ``generate`` appends characters one at a time, each drawn from the softmax of the last position's
# logits (``temperature`` sharpens or flattens it, ``top_k`` keeps the likeliest), feeding the model at
# most its ``PositionalEmbedding``'s length.
prompt = vocab.encode("ROMEO:\n")[None]
sampled = layers.generate(gpt, prompt, 120, rng, temperature=0.8, top_k=10)
print(vocab.decode(sampled[0]))
