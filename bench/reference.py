"""The yardsticks lamina is measured against: a careful hand-written NumPy MLP, and the matmul floor.

``MLP`` is what a careful person writes by hand with NumPy: float32 throughout, ``x @ w + b``,
ReLU, the fused softmax-cross-entropy gradient ``(p - onehot) / n``, the textbook backward,
SGD (optionally with momentum, as torch.optim.SGD with dampening 0) updating the weight arrays
in place. Gradient and velocity buffers are allocated once; activations are allocated by the
matmuls (``x @ w``) each step and then worked on in place. Per batch it also computes the loss
and the number of correct predictions, because ``optim.fit`` reports both in its history. The
step is split into four plain methods (forward_train, softmax_cross_entropy, backward, update)
so that bench/profile_fit.py can time each part; that costs four method calls per batch.

``floor_epoch`` is the matmul floor: only the matrix multiplies one epoch needs, with the same
shapes and the same number of batches (the last one partial) as training: per batch the forward
``a @ W`` of every layer, the weight gradient ``a.T @ d`` of every layer and the input gradient
``d @ W.T`` of every layer but the first. Nothing else: no bias, no ReLU, no softmax, no update,
no allocation (outputs go to buffers made once), and no gather: batch i is the contiguous slice
``x[i*b:(i+1)*b]`` (a view) instead of ``x[order[i*b:(i+1)*b]]``, since the cost of a matmul does
not depend on which rows it gets. The output of the forward pass stands in for d loss / d logits.

Both follow ``optim.fit``'s batch order: one ``rng.permutation(n)`` per epoch, batches of
consecutive entries of that order, the last one partial.
"""

from __future__ import annotations

import numpy as np


def relu(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = max(a, 0), against a zero row of the last axis: NumPy's vectorised loop for two arrays
    (np.maximum(a, 0) takes a slower scalar loop; same bits)."""
    return np.maximum(a, np.zeros(a.shape[-1], a.dtype), out=out)


class MLP:
    """A ReLU MLP on plain float32 arrays: weights[l] (n_in, n_out), biases[l] (n_out,), changed in place by
    training."""

    def __init__(self, arrays, learning_rate: float, momentum: float = 0.0, adam: bool = False):
        self.weights = [np.array(w, dtype=np.float32) for w, _ in arrays]
        self.biases = [np.array(b, dtype=np.float32) for _, b in arrays]
        self.learning_rate, self.momentum = float(learning_rate), float(momentum)
        self.velocity = ([np.zeros_like(p) for p in self.weights + self.biases] if momentum else None)
        # Adam (torch.optim.Adam, betas 0.9 and 0.999, eps 1e-8): moments m, v and the step count
        self.adam = ([np.zeros_like(p) for p in self.weights + self.biases],
                     [np.zeros_like(p) for p in self.weights + self.biases]) if adam else None
        self.steps = 0
        self.grads = None          # gradient buffers, made on the first step and reused
        self._arange = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Inference: logits (n, k) for x (n, n_in)."""
        return self.forward_train(x)[-1]

    def train_epoch(self, x, y, batch_size: int, rng: np.random.Generator, transform=None):
        """One epoch of mini-batch SGD in fit's batch order; returns (mean batch loss, training accuracy)."""
        n = len(x)
        order = rng.permutation(n)
        loss_sum, correct, batches = 0.0, 0, 0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            xb, yb = x[idx], y[idx]
            if transform is not None:
                xb = transform(xb)
            value, right = self.train_step(xb, yb)
            loss_sum += value
            correct += right
            batches += 1
        return loss_sum / batches, correct / n

    def train_step(self, xb, yb):
        """One SGD step on a batch; returns (its mean loss, its number of correct predictions)."""
        acts = self.forward_train(xb)
        value, right = self.softmax_cross_entropy(acts[-1], yb)
        self.backward(acts, acts.pop())
        self.update()
        return value, right

    def forward_train(self, xb):
        """[x, h_1, ..., logits]: each layer's input, then the logits (all but x allocated here)."""
        acts = [xb]
        a = xb
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = a @ w
            z += b
            if k < last:
                relu(z, out=z)
            acts.append(z)
            a = z
        return acts

    def softmax_cross_entropy(self, logits, yb):
        """Fused softmax cross-entropy, in place: logits become d loss / d logits = (p - onehot) / m.

        Returns (mean loss, number of correct predictions), as fit records them.
        """
        m = len(yb)
        r = self._rows(m)
        right = int(np.count_nonzero(logits.argmax(axis=1) == yb))
        logits -= logits.max(axis=1, keepdims=True)
        picked = logits[r, yb]
        np.exp(logits, out=logits)
        total = logits.sum(axis=1, keepdims=True)
        value = float(np.log(total).sum() - picked.sum()) / m
        logits /= total
        logits[r, yb] -= 1
        logits *= 1 / m
        return value, right

    def backward(self, acts, d):
        """The textbook backward from d = d loss / d logits into the gradient buffers; no input gradient."""
        if self.grads is None:
            self.grads = [np.empty_like(p) for p in self.weights + self.biases]
        grad_w, grad_b = self.grads[:len(self.weights)], self.grads[len(self.weights):]
        for k in range(len(self.weights) - 1, -1, -1):
            np.matmul(acts[k].T, d, out=grad_w[k])
            np.sum(d, axis=0, out=grad_b[k])
            if k > 0:
                d = d @ self.weights[k].T
                d *= acts[k] > 0          # ReLU: acts[k] is the ReLU output of layer k - 1

    def update(self):
        """SGD, in place: p -= lr g, or with momentum v = mu v + g, p -= lr v (the gradient buffer is
        scratch); or Adam as torch computes it: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
        p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps), in place, the gradient buffer as scratch."""
        lr, mu = self.learning_rate, self.momentum
        if self.adam is not None:
            self.steps += 1
            b1, b2, eps = 0.9, 0.999, 1e-8
            step_size, root_bc2 = lr / (1 - b1 ** self.steps), (1 - b2 ** self.steps) ** 0.5
            for p, g, m, v in zip(self.weights + self.biases, self.grads, *self.adam):
                m *= b1
                m += (1 - b1) * g
                v *= b2
                g *= g
                g *= 1 - b2
                v += g
                np.sqrt(v, out=g)
                g /= root_bc2
                g += eps
                np.divide(m, g, out=g)
                g *= step_size
                p -= g
            return
        if mu:
            for p, g, v in zip(self.weights + self.biases, self.grads, self.velocity):
                v *= mu
                v += g
                np.multiply(v, lr, out=g)
                p -= g
        else:
            for p, g in zip(self.weights + self.biases, self.grads):
                g *= lr
                p -= g

    def _rows(self, m):
        if self._arange is None or len(self._arange) < m:
            self._arange = np.arange(m)
        return self._arange[:m]


def floor_epoch(weights, x: np.ndarray, batch_size: int) -> None:
    """The matmuls of one training epoch (see the module docstring), into preallocated buffers."""
    n = len(x)
    last = len(weights) - 1
    out = [np.empty((batch_size, w.shape[1]), dtype=np.float32) for w in weights]
    grad_w = [np.empty_like(w) for w in weights]
    grad_in = [np.empty((batch_size, w.shape[0]), dtype=np.float32) for w in weights]
    for start in range(0, n, batch_size):
        xb = x[start:start + batch_size]
        m = len(xb)
        acts = [xb]
        a = xb
        for k, w in enumerate(weights):
            a = np.matmul(a, w, out=out[k][:m])
            acts.append(a)
        d = a
        for k in range(last, -1, -1):
            np.matmul(acts[k].T, d, out=grad_w[k])
            if k > 0:
                d = np.matmul(d, weights[k].T, out=grad_in[k][:m])
