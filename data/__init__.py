"""lamina.data: the IDX reader, MNIST (shipped) and Fashion-MNIST loaders, batching, Tiny Shakespeare
(shipped), text vocabularies and next-token windows."""

from lamina.data.batching import Rescale, batches, one_hot, split
from lamina.data.errors import ChecksumError, DatasetNotFoundError, IDXError
from lamina.data.fashion_mnist import fashion_mnist
from lamina.data.idx import read_idx
from lamina.data.mnist import mnist
from lamina.data.text import tiny_shakespeare, windows
from lamina.data.vocabulary import Vocabulary

__all__ = [
    "read_idx", "IDXError", "ChecksumError", "DatasetNotFoundError",
    "mnist", "fashion_mnist", "batches", "Rescale", "one_hot", "split",
    "tiny_shakespeare", "Vocabulary", "windows",
]
