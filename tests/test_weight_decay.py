"""The named optimizers' ``decay=``: the parameters their weight decay reaches (nanoGPT: matrices only)."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import layers, optim


def matrices(path, p):
    return p.ndim >= 2


def mlp():
    return layers.mlp(np.random.default_rng(0), [6, 5, 3])


NAMED = {
    "SGD": lambda decay: optim.SGD(0.1, momentum=0.9, weight_decay=0.1, decay=decay),
    "Adam": lambda decay: optim.Adam(1e-2, weight_decay=0.1, decay=decay),
    "AdamW": lambda decay: optim.AdamW(1e-2, weight_decay=0.1, decay=decay),
    "RMSprop": lambda decay: optim.RMSprop(1e-2, weight_decay=0.1, decay=decay),
}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_decay_reaches_the_chosen_parameters_only(name):
    model = mlp()
    zeros = layers.map_parameters(np.zeros_like, model)
    new, _ = NAMED[name](matrices).update(model, zeros, NAMED[name](matrices).init(model))
    every, _ = NAMED[name](None).update(model, zeros, NAMED[name](None).init(model))
    for (path, before), chosen, all_decayed in zip(layers.named_parameters(model), layers.parameters(new),
                                                   layers.parameters(every)):
        if before.ndim >= 2:
            assert chosen.tobytes() == all_decayed.tobytes() and not np.array_equal(chosen, before), path
        else:
            assert chosen.tobytes() == before.tobytes(), path    # zero gradient, no decay: unmoved


def test_decay_is_the_masked_chain_it_spells():
    opt = optim.AdamW(1e-3, weight_decay=0.1, decay=matrices)
    assert opt.chain.transforms[1] == optim.masked(optim.add_decayed_weights(0.1), matrices)
    assert repr(opt) == ("AdamW(learning_rate=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.1, "
                         "clip_norm=None, decay=matrices)")


def test_without_decay_the_repr_is_0_2_s_so_runs_resume():
    assert repr(optim.SGD(0.1)) == "SGD(learning_rate=0.1, momentum=0.0, nesterov=False, weight_decay=0.0, " \
                                   "clip_norm=None)"
    assert optim.SGD(0.1, decay=matrices) != optim.SGD(0.1)


def test_a_decay_that_is_no_predicate_is_refused():
    with pytest.raises(ValueError, match=r"SGD: decay must be None or a callable where\(path, param\) -> "
                                         r"bool "
                                         r"\(how much is weight_decay="):
        optim.SGD(0.1, decay=0.01)
    with pytest.raises(TypeError, match=r"takes no weight=.*decay="):
        optim.SGD(0.1, weight=0.01)
