"""The yardstick for bench/cnn.py: a careful hand-written NumPy CNN, no lamina.

The network (channels-last, float32), as bench/cnn.py builds it in lamina and PyTorch:

    conv 1->32 3x3, max-pool 2, ReLU, conv 32->64 3x3, max-pool 2, ReLU, flatten (5*5*64), dense 1600->128,
    ReLU, dense 128->10

(max-pool before ReLU: the same function and the same gradients as ReLU before max-pool, since
max and ReLU commute, on a quarter of the elements.) What a careful person writes by hand:

- every array of the step is allocated once for the batch size and reused (``out=`` everywhere),
  so there are no page faults from fresh temporaries;
- convolution through im2col views and one BLAS product, the bias folded in as a column of
  ones (``cols @ [W; b]``, and ``cols.T @ dy`` gives ``[dW; db]``); the first convolution's
  im2col transposed (one slab copy per kernel offset: one input channel), the second's in blocks
  of 16 samples (~2 MB, in cache while multiplied), made again in backward;
- input gradient of a convolution as col2im: one shifted add per kernel offset;
- max pooling as three ``np.maximum`` over the window's four views; its gradient to the first
  maximum of each window (as torch routes ties) from one comparison and one product;
- the fused softmax-cross-entropy gradient ``(p - onehot) / n``; SGD with momentum as
  torch.optim.SGD (v = mu v + g, p -= lr v), in place.

It follows ``optim.fit``'s batch order: one ``rng.permutation(n)`` per epoch, batches of
consecutive entries, the last one partial.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from reference import relu

BLOCK = 16   # samples per im2col block of the second convolution


def _windows(x, k):
    """(n, oh, ow, k, k, c) view of every k x k window of x (n, h, w, c), stride 1."""
    n, h, w, c = x.shape
    s = x.strides
    return as_strided(x, (n, h - k + 1, w - k + 1, k, k, c), (s[0], s[1], s[2], s[1], s[2], s[3]),
                      writeable=False)


def _tiles(a, oh, ow):
    """(n, oh, 2, ow, 2, c) view of the 2x2 tiles of a (n, h, w, c)."""
    s = a.strides
    return as_strided(a, (a.shape[0], oh, 2, ow, 2, a.shape[3]), (s[0], 2 * s[1], s[1], 2 * s[2], s[2], s[3]))


class CNN:
    """The network on plain float32 arrays, trained in place. ``arrays``: [(conv1 w, b), (conv2 w, b), (dense1
    w, b), (dense2 w, b)], conv weights (kh, kw, c_in, c_out), dense weights (n_in, n_out), the flatten order
    (h, w, c)."""

    def __init__(self, arrays, learning_rate: float, momentum: float):
        (w1, b1), (w2, b2), (w3, b3), (w4, b4) = arrays
        # parameters: the convolutions as [W; b] matrices, the dense layers as they are
        self.params = [np.concatenate([np.reshape(w1, (9, 32)), np.reshape(b1, (1, 32))]).astype(np.float32),
                       np.concatenate([np.reshape(w2, (288, 64)),
                                       np.reshape(b2, (1, 64))]).astype(np.float32),
                       np.array(w3, np.float32), np.array(b3, np.float32),
                       np.array(w4, np.float32), np.array(b4, np.float32)]
        self.grads = [np.empty_like(p) for p in self.params]
        self.velocity = [np.zeros_like(p) for p in self.params]
        self.lr, self.mu = np.float32(learning_rate), np.float32(momentum)
        self.size = None

    # ---- buffers ---------------------------------------------------------------------------------

    def _buffers(self, n):
        if self.size == n:
            return
        self.size = n
        f = np.float32
        self.cols1 = np.empty((10, n * 676), f)
        self.cols1[9] = 1
        self.y1 = np.empty((n, 26, 26, 32), f)
        self.p1 = np.empty((n, 13, 13, 32), f)
        self.a1 = np.empty((n, 13, 13, 32), f)
        self.cols2 = np.empty((BLOCK * 121, 289), f)
        self.cols2[:, 288] = 1
        self.y2 = np.empty((n, 11, 11, 64), f)
        self.p2 = np.empty((n, 5, 5, 64), f)
        self.a2 = np.empty((n, 5, 5, 64), f)
        self.h = np.empty((n, 128), f)
        self.z = np.empty((n, 10), f)
        self.dh = np.empty((n, 128), f)
        self.da2 = np.empty((n, 1600), f)
        self.dy2 = np.zeros((n, 11, 11, 64), f)      # the last row and column (cut off by the pool) stay 0
        self.dcols2 = np.empty((BLOCK * 121, 288), f)
        self.da1 = np.empty((n, 13, 13, 32), f)
        self.dy1 = np.empty((n, 26, 26, 32), f)
        self.mask1 = np.empty((n, 13, 2, 13, 2, 32), bool)
        self.mask2 = np.empty((n, 5, 2, 5, 2, 64), bool)
        self.part = np.empty((289, 64), f)
        self.rows = np.arange(n)

    # ---- the step --------------------------------------------------------------------------------

    def forward(self, x):
        """Logits (n, 10) for images x (n, 28, 28, 1); also fills the buffers backward reads."""
        n = len(x)
        self._buffers(n)
        w1, w2, w3, b3, w4, b4 = self.params
        slabs = self.cols1[:9].reshape(3, 3, n, 26, 26)
        for p in range(3):
            for q in range(3):
                slabs[p, q] = x[:, p:p + 26, q:q + 26, 0]
        np.matmul(self.cols1.T, w1, out=self.y1.reshape(-1, 32))
        self._pool(self.y1, self.p1, 13)
        relu(self.p1, out=self.a1)
        flat2 = self.y2.reshape(-1, 64)
        for start in range(0, n, BLOCK):
            stop = min(n, start + BLOCK)
            cols = self._im2col2(start, stop)
            np.matmul(cols, w2, out=flat2[start * 121:stop * 121])
        self._pool(self.y2, self.p2, 5)
        relu(self.p2, out=self.a2)
        np.matmul(self.a2.reshape(n, 1600), w3, out=self.h)
        self.h += b3
        relu(self.h, out=self.h)
        np.matmul(self.h, w4, out=self.z)
        self.z += b4
        return self.z

    def _im2col2(self, start, stop):
        cols = self.cols2[:(stop - start) * 121]
        cols[:, :288].reshape(stop - start, 11, 11, 3, 3, 32)[...] = _windows(self.a1[start:stop], 3)
        return cols

    @staticmethod
    def _pool(y, p, o):
        t = _tiles(y, o, o)
        np.maximum(t[:, :, 0, :, 0], t[:, :, 0, :, 1], out=p)
        np.maximum(p, t[:, :, 1, :, 0], out=p)
        np.maximum(p, t[:, :, 1, :, 1], out=p)

    @staticmethod
    def _pool_backward(y, p, dp, mask, dy):
        """dy's tiles = dp at the first maximum of each 2x2 window of y (p = the window maxima)."""
        o = p.shape[1]
        np.equal(_tiles(y, o, o), p[:, :, None, :, None, :], out=mask)
        e = [mask[:, :, i, :, j] for i in range(2) for j in range(2)]
        found = e[0].copy()
        for k in (1, 2, 3):
            later = found | e[k] if k < 3 else None
            np.greater(e[k], found, out=e[k])
            found = later
        np.multiply(mask, dp[:, :, None, :, None, :], out=_tiles(dy, o, o))

    def loss_and_gradient(self, yb):
        """Fused softmax cross-entropy, in place: z becomes d loss / d z = (p - onehot) / n; returns (loss,
        correct)."""
        z, n = self.z, len(yb)
        rows = self.rows[:n]
        right = int(np.count_nonzero(z.argmax(axis=1) == yb))
        z -= z.max(axis=1, keepdims=True)
        picked = z[rows, yb]
        np.exp(z, out=z)
        total = z.sum(axis=1, keepdims=True)
        value = float(np.log(total).sum() - picked.sum()) / n
        z /= total
        z[rows, yb] -= 1
        z *= np.float32(1 / n)
        return value, right

    def backward(self):
        """Gradients of every parameter into self.grads, from d loss / d z in self.z."""
        n = self.size
        w1, w2, w3, b3, w4, b4 = self.params
        g1, g2, g3, gb3, g4, gb4 = self.grads
        dz = self.z
        np.matmul(self.h.T, dz, out=g4)
        np.sum(dz, axis=0, out=gb4)
        np.matmul(dz, w4.T, out=self.dh)
        self.dh *= self.h > 0
        a2 = self.a2.reshape(n, 1600)
        np.matmul(a2.T, self.dh, out=g3)
        np.sum(self.dh, axis=0, out=gb3)
        np.matmul(self.dh, w3.T, out=self.da2)
        self.da2 *= a2 > 0
        self._pool_backward(self.y2, self.p2, self.da2.reshape(self.p2.shape), self.mask2, self.dy2)
        dy2 = self.dy2.reshape(-1, 64)
        self.da1[...] = 0
        g2[...] = 0
        for start in range(0, n, BLOCK):
            stop = min(n, start + BLOCK)
            rows = slice(start * 121, stop * 121)
            cols = self._im2col2(start, stop)
            np.matmul(cols.T, dy2[rows], out=self.part)
            g2 += self.part
            dcols = np.matmul(dy2[rows], w2[:288].T, out=self.dcols2[:(stop - start) * 121])
            windows = dcols.reshape(stop - start, 11, 11, 3, 3, 32)
            da1 = self.da1[start:stop]
            for p in range(3):
                for q in range(3):
                    da1[:, p:p + 11, q:q + 11] += windows[:, :, :, p, q]
        self.da1 *= self.a1 > 0
        self._pool_backward(self.y1, self.p1, self.da1, self.mask1, self.dy1)
        np.matmul(self.cols1, self.dy1.reshape(-1, 32), out=g1)

    def update(self):
        """SGD with momentum, in place: v = mu v + g, p -= lr v."""
        for p, g, v in zip(self.params, self.grads, self.velocity):
            v *= self.mu
            v += g
            np.multiply(v, self.lr, out=g)
            p -= g

    def train_epoch(self, x, y, batch_size: int, rng: np.random.Generator):
        """One epoch in fit's batch order; x (n, 28, 28, 1) float32. Returns (mean batch loss, training
        accuracy)."""
        order = rng.permutation(len(x))
        loss_sum, correct, batches = 0.0, 0, 0
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            self.forward(x[idx])
            value, right = self.loss_and_gradient(y[idx])
            self.backward()
            self.update()
            loss_sum, correct, batches = loss_sum + value, correct + right, batches + 1
        return loss_sum / batches, correct / len(x)

    def predict(self, x, batch_size: int = 1000):
        return np.concatenate([self.forward(x[i:i + batch_size]).copy() for i in range(0, len(x),
                                                                                       batch_size)])

    def arrays(self):
        """[(conv1 w, b), (conv2 w, b), (dense1 w, b), (dense2 w, b)] in lamina's shapes."""
        w1, w2, w3, b3, w4, b4 = self.params
        return [(w1[:9].reshape(3, 3, 1, 32), w1[9]), (w2[:288].reshape(3, 3, 32, 64), w2[288]), (w3, b3),
                (w4, b4)]
