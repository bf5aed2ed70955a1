"""First-layer filters: what the layer that reads the input has learned to look for, as images."""

from __future__ import annotations

import math

import numpy as np

from lamina import layers


def _leaves(model, path: str = ""):
    """(path, layer) of every layer that is not a combinator, in forward order."""
    if isinstance(model, layers.Combinator):
        for local, child in model.children():
            yield from _leaves(child, f"{path}.{local}" if path else local)
    else:
        yield path, model


def is_conv(layer) -> bool:
    conv = getattr(layers, "Conv2D", None)
    weight = getattr(layer, "weight", None)
    return (conv is not None and isinstance(layer, conv)) or (
        type(layer).__name__ == "Conv2D" and isinstance(weight, np.ndarray) and weight.ndim == 4)


def first_layer(model) -> tuple[str, object]:
    """(path, layer) of the first layer with parameters, in forward order: the one that reads the input."""
    for path, layer in _leaves(model):
        if layers.parameters(layer):
            return path, layer
    raise ValueError(f"filters: {type(model).__name__} has no layer with parameters")


def filters(model, image_shape=None) -> np.ndarray:
    """The first layer's filters as images: (n_filters, height, width) or (n_filters, height, width,
    channels).

    - ``Dense`` reading images: one filter per output unit, its weight column ``weight[:, j]``
      shaped as an input image. Flat inputs need ``image_shape`` ((h, w) or (h, w, c)) unless
      the number of inputs is a square (then (side, side)).
    - ``Conv2D``: one filter per output channel, its kernel ``weight[:, :, :, j]`` (kh, kw,
      in_channels), the channel axis dropped when there is one input channel.
    """
    path, layer = first_layer(model)
    weight = np.asarray(layer.weight) if isinstance(getattr(layer, "weight", None), np.ndarray) else None
    if is_conv(layer):
        kernels = np.moveaxis(weight, 3, 0)           # (out, kh, kw, in)
        return kernels[..., 0] if kernels.shape[-1] == 1 else kernels
    if not isinstance(layer, layers.Dense):
        raise ValueError(f"filters: the first layer with parameters, {path} {type(layer).__name__}, is not a "
                         "Dense or Conv2D reading the input, so it has no filters to show as images")
    n_in = weight.shape[0]
    if image_shape is None:
        side = math.isqrt(n_in)
        if side * side != n_in:
            raise ValueError(f"filters: {path} Dense reads {n_in} inputs, not a square image; give "
                             f"image_shape=(h, w) or (h, w, channels) with h * w * channels = {n_in}")
        image_shape = (side, side)
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) not in (2, 3) or math.prod(image_shape) != n_in:
        raise ValueError(f"filters: image_shape {image_shape} does not fit {path} Dense's {n_in} inputs "
                         f"(give (h, w) or (h, w, channels) whose product is {n_in})")
    images = weight.T.reshape(-1, *image_shape)
    return images[..., 0] if len(image_shape) == 3 and image_shape[2] == 1 else images
