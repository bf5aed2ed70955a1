"""The optimizers' reprs are those of 0.2 (checkpoints compare them to resume); positional arguments work."""

import pytest

from lamina import optim


def matrices(path, p):
    return p.ndim >= 2


@pytest.mark.parametrize("optimizer, expected", [
    (optim.SGD(0.1, momentum=0.9),
     "SGD(learning_rate=0.1, momentum=0.9, nesterov=False, weight_decay=0.0, clip_norm=None)"),
    (optim.SGD(0.1, 0.9, True, 0.01, 1.0),
     "SGD(learning_rate=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, clip_norm=1.0)"),
    (optim.SGD(0.1, weight_decay=0.1, clip_norm=1.0, decay=matrices),
     "SGD(learning_rate=0.1, momentum=0.0, nesterov=False, weight_decay=0.1, clip_norm=1.0, decay=matrices)"),
    (optim.Adam(),
     "Adam(learning_rate=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, clip_norm=None)"),
    (optim.Adam(1e-2, (0.8, 0.9), 1e-6, 0.1, 2.0),
     "Adam(learning_rate=0.01, betas=(0.8, 0.9), eps=1e-06, weight_decay=0.1, clip_norm=2.0)"),
    (optim.AdamW(),
     "AdamW(learning_rate=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, clip_norm=None)"),
    (optim.AdamW(clip_norm=0.5, decay=matrices),
     "AdamW(learning_rate=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, clip_norm=0.5, "
     "decay=matrices)"),
    (optim.RMSprop(), "RMSprop(learning_rate=0.01, alpha=0.99, eps=1e-08, weight_decay=0.0, momentum=0.0, "
                      "centered=False, clip_norm=None)"),
    (optim.RMSprop(1e-3, 0.9, 1e-7, 0.01, 0.5, True, 1.0),
     "RMSprop(learning_rate=0.001, alpha=0.9, eps=1e-07, weight_decay=0.01, momentum=0.5, centered=True, "
     "clip_norm=1.0)"),
    (optim.RMSprop(0.01, momentum=0.9, decay=matrices),
     "RMSprop(learning_rate=0.01, alpha=0.99, eps=1e-08, weight_decay=0.0, momentum=0.9, centered=False, "
     "clip_norm=None, decay=matrices)"),
])
def test_repr_is_that_of_0_2(optimizer, expected):
    assert repr(optimizer) == expected


def test_the_chain_is_clip_then_the_scaling_then_the_learning_rate():
    chain = optim.SGD(0.1, momentum=0.9, weight_decay=0.1, clip_norm=1.0).chain
    assert repr(chain).startswith("chain(clip_by_global_norm(")
    assert repr(chain).endswith("scale_by_learning_rate(learning_rate=0.1))")
