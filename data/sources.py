"""The data sets of four IDX files lamina knows: file names, official SHA-256, where to get them."""

from __future__ import annotations

import attrs

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _table(sha256) -> tuple:
    table = tuple(dict(sha256).items())
    if tuple(name for name, _ in table) != FILES:
        raise ValueError(f"a source's SHA-256 table must list {FILES} in this order, got "
                         f"{tuple(dict(sha256))}")
    return table


@attrs.frozen
class Source:
    """A data set of four IDX files (train images, train labels, test images, test labels).

    ``sha256`` maps each file name to the SHA-256 of its decompressed content; ``name`` is its
    folder under $LAMINA_DATA and the cache; ``mirrors`` are base URLs holding the four files.
    """

    title: str
    name: str
    sha256: tuple = attrs.field(converter=_table)
    mirrors: tuple = attrs.field(default=(), converter=tuple)
    system_folder: str | None = None
    debian_package: str | None = None
    shipped: bool = False  # ships as package data of lamina.data
    n_classes: int = 10

    @property
    def files(self) -> tuple:
        return tuple(name for name, _ in self.sha256)

    def checksum(self, name: str) -> str:
        return dict(self.sha256)[name]


MNIST = Source(
    title="MNIST",
    name="mnist",
    shipped=True,
    sha256={
        "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
)

FASHION_MNIST = Source(
    title="Fashion-MNIST",
    name="fashion-mnist",
    sha256={
        "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    mirrors=(
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
    system_folder="/usr/share/datasets/fashion-mnist",
    debian_package="dataset-fashion-mnist",
)
