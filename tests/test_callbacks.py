"""fit's callbacks: the order of the hooks, what run shows (epoch/batch from 1, loss, prediction, read-only
copies of the model and of the batch's gradients), run.stop, callback state in checkpoints and on resume, a
callback without hooks refused, and Ctrl-C as TrainingInterrupted carrying the work."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from comparisons import same_bits

from lamina import layers, losses, optim

N, BATCH = 24, 8                       # three batches an epoch
x = np.random.default_rng(0).normal(size=(N, 4)).astype(np.float32)
labels = np.random.default_rng(1).integers(0, 3, size=N)


def model_(seed=0):
    rng = np.random.default_rng(seed)
    return layers.Sequence([layers.Dense.init(rng, 4, 5), layers.ReLU(), layers.Dense.init(rng, 5, 3)])


def fit(callbacks=(), epochs=2, model=None, **kwargs):
    kwargs.setdefault("rng", np.random.default_rng(0))
    return optim.fit(model or model_(), losses.SoftmaxCrossEntropy(),
                     kwargs.pop("opt", optim.SGD(0.1, momentum=0.9)),
                     x, labels, epochs=epochs, batch_size=BATCH, progress=kwargs.pop("progress", False),
                     threads=1,
                     callbacks=callbacks, **kwargs)


class Log:
    """Writes (name, hook, epoch, batch) to a shared list for every hook."""

    def __init__(self, name, events):
        self.name, self.events = name, events

    def _log(hook):
        def method(self, run):
            self.events.append((self.name, hook, run.epoch, run.batch))
        return method

    on_train_begin = _log("on_train_begin")
    on_batch_end = _log("on_batch_end")
    on_epoch_end = _log("on_epoch_end")
    on_train_end = _log("on_train_end")


# ---- order and counting -----------------------------------------------------------------------------

def test_user_callbacks_run_in_the_order_given_and_count_epochs_and_batches_from_1():
    events = []
    fit([Log("a", events), Log("b", events)])
    hooks = [(hook, epoch, batch) for name, hook, epoch, batch in events if name == "a"]
    assert [e[1:] for e in events[1::2]] == [e[1:] for e in events[0::2]]   # b right after a
    assert [e[0] for e in events[0::2]] == ["a"] * len(hooks)
    assert [e[0] for e in events[1::2]] == ["b"] * len(hooks)
    assert hooks[0][0] == "on_train_begin" and hooks[-1] == ("on_train_end", 2, 3)
    assert [h[1:] for h in hooks if h[0] == "on_batch_end"] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2),
                                                                (2, 3)]
    assert [h[1:] for h in hooks if h[0] == "on_epoch_end"] == [(1, 3), (2, 3)]
    assert [h[0] for h in hooks[1:5]] == ["on_batch_end"] * 3 + ["on_epoch_end"]


class AfterBuiltIns:
    """At each epoch's end: the progress line and best_epoch are already there, this epoch's checkpoint not
    yet."""

    def __init__(self, folder, capsys):
        self.folder, self.capsys, self.seen = folder, capsys, []

    def on_epoch_end(self, run):
        printed = self.capsys.readouterr().out
        self.seen.append((f"epoch {run.epoch}/{run.epochs}" in printed, run.history.get("best_epoch"),
                          len(list(self.folder.glob("checkpoint-*.npz")))))

    def state(self):
        return {"seen": len(self.seen)}

    def load_state(self, s):
        pass


def test_built_in_pieces_run_before_user_callbacks_and_the_checkpoint_after(tmp_path, capsys):
    callback = AfterBuiltIns(tmp_path, capsys)
    fit([callback], epochs=3, validation=(x, labels), keep_best=True, checkpoint=tmp_path, keep=10,
        progress=True)
    assert [seen for seen, _, _ in callback.seen] == [True] * 3                 # the progress line came first
    assert all(best is not None and best <= epoch for epoch, (_, best, _) in enumerate(callback.seen, 1))
    # this epoch's checkpoint came after
    assert [count for _, _, count in callback.seen] == [0, 1, 2]
    # and carries the state of this epoch
    assert optim.load_checkpoint(tmp_path).callbacks == [{"seen": 3}]


# ---- what run shows --------------------------------------------------------------------------------------

class Keep:
    """Keeps run.model(), run.grads(), loss and prediction of every batch, and the bytes they had then."""

    def __init__(self):
        self.begin, self.batches = None, []

    def on_train_begin(self, run):
        self.begin = run.model()

    def on_batch_end(self, run):
        model, grads = run.model(), run.grads()
        self.batches.append(dict(model=model, grads=grads, loss=run.loss, prediction=run.prediction,
                                 epoch=run.epoch, batch=run.batch,
                                 bytes=[a.tobytes()
                                        for a in layers.parameters(model) + layers.parameters(grads)]))


def test_model_and_grads_are_read_only_copies_that_never_change_afterwards():
    keep = Keep()
    trained, _ = fit([keep], epochs=3)
    for seen in keep.batches:
        arrays = layers.parameters(seen["model"]) + layers.parameters(seen["grads"])
        assert all(not a.flags.writeable for a in arrays)
        # unchanged by the later steps
        assert [a.tobytes() for a in arrays] == seen["bytes"]
        for own in layers.parameters(trained):
            assert not any(np.shares_memory(own, a) for a in arrays)
    assert same_bits(keep.batches[-1]["model"], trained)
    assert not same_bits(keep.batches[0]["model"], keep.batches[1]["model"])


def test_grads_after_the_update_are_that_batchs_gradients_by_hand_and_loss_and_prediction_are_its_own():
    keep = Keep()
    fit([keep], epochs=1, rng=np.random.default_rng(5))
    order = np.random.default_rng(5).permutation(N)                           # fit's shuffle for epoch 1
    before = keep.begin
    for b, seen in enumerate(keep.batches):
        idx = order[b * BATCH:(b + 1) * BATCH]
        d0, _, d2 = before.layers
        xb = x[idx]
        h = xb @ d0.weight + d0.bias
        a = np.maximum(h, 0)
        logits = a @ d2.weight + d2.bias
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        dlogits = (p - np.eye(3)[labels[idx]]) / BATCH
        loss = -np.mean(np.log(p[np.arange(BATCH), labels[idx]]))
        da = dlogits @ d2.weight.T * (h > 0)
        grads = seen["grads"]
        np.testing.assert_allclose(seen["prediction"], logits, rtol=1e-5, atol=1e-6)
        assert seen["loss"] == pytest.approx(loss, rel=1e-5)
        np.testing.assert_allclose(grads.layers[2].weight, a.T @ dlogits, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(grads.layers[2].bias, dlogits.sum(axis=0), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(grads.layers[0].weight, xb.T @ da, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(grads.layers[0].bias, da.sum(axis=0), rtol=1e-4, atol=1e-6)
        before = seen["model"]


class StopAt:
    def __init__(self, epoch, batch):
        self.at, self.events = (epoch, batch), []

    def on_batch_end(self, run):
        self.events.append((run.epoch, run.batch))
        if (run.epoch, run.batch) == self.at:
            run.stop = True
            self.model = run.model()

    def on_epoch_end(self, run):
        self.events.append(("epoch end", run.epoch))

    def on_train_end(self, run):
        self.events.append("train end")


def test_run_stop_ends_training_after_the_current_batch():
    stop = StopAt(2, 2)
    trained, history = fit([stop], epochs=5)
    assert stop.events == [(1, 1), (1, 2), (1, 3), ("epoch end", 1), (2, 1), (2, 2), "train end"]
    assert same_bits(trained, stop.model) and history["stopped_early"] is True and len(history["loss"]) == 1


def test_run_stop_at_an_epochs_last_batch_finishes_that_epoch_and_stops():
    stop = StopAt(1, 3)
    trained, history = fit([stop], epochs=5)
    assert stop.events == [(1, 1), (1, 2), (1, 3), ("epoch end", 1), "train end"]
    assert same_bits(trained, stop.model) and history["stopped_early"] is True and len(history["loss"]) == 1


# ---- state in checkpoints ---------------------------------------------------------------------------------

class Counter:
    """A callback with state: batches seen and the sum of their losses."""

    def __init__(self):
        self.batches, self.loss_sum, self.loaded = 0, 0.0, None

    def on_batch_end(self, run):
        self.batches += 1
        self.loss_sum += run.loss

    def state(self):
        return {"batches": self.batches, "loss_sum": self.loss_sum}

    def load_state(self, s):
        self.loaded = s
        self.batches, self.loss_sum = s["batches"], s["loss_sum"]


@pytest.mark.parametrize("every", [None, 2], ids=["epoch", "mid-epoch"])
def test_callback_state_is_carried_by_checkpoints_and_restored_on_resume(tmp_path, every):
    whole = Counter()
    fit([whole, Log("x", [])], epochs=3)
    first = Counter()
    stop = StopAt(2, 2) if every else StopAt(2, 3)
    fit([first, stop], epochs=3, checkpoint=tmp_path, checkpoint_every=every)
    saved = optim.load_checkpoint(tmp_path)
    assert saved.callbacks == [first.state(), None]
    resumed = Counter()
    fit([resumed, Log("x", [])], epochs=3, checkpoint=tmp_path, resume=tmp_path,
        rng=np.random.default_rng(99))
    assert resumed.loaded == first.state()
    assert resumed.batches == whole.batches == 9 and resumed.loss_sum == whole.loss_sum


def test_a_callback_with_none_of_the_hooks_is_refused():
    class Typo:
        def on_epoch_ends(self, run):
            pass

    with pytest.raises(TypeError, match=r"fit: callbacks\[1\] \(Typo\) has none of on_train_begin, "
                                        r"on_batch_end, on_epoch_end, on_train_end"):
        fit([Counter(), Typo()])


# ---- Ctrl-C -----------------------------------------------------------------------------------------------

@pytest.fixture
def saved_handlers():
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


class CtrlC:
    """Presses Ctrl-C (SIGINT to this process) at the end of one batch."""

    def __init__(self, epoch, batch):
        self.at = (epoch, batch)

    def on_batch_end(self, run):
        if (run.epoch, run.batch) == self.at:
            self.model, self.history = run.model(), {k: list(v) for k, v in run.history.items()}
            signal.raise_signal(signal.SIGINT)


@pytest.mark.parametrize("folder", [False, True], ids=["no-checkpoint", "checkpoint"])
def test_ctrl_c_raises_training_interrupted_carrying_model_history_and_checkpoint(tmp_path, saved_handlers,
                                                                                  folder):
    ctrl_c, after = CtrlC(2, 1), Counter()
    with pytest.raises(optim.TrainingInterrupted) as caught:
        fit([ctrl_c, after], epochs=4, checkpoint=tmp_path if folder else None)
    error = caught.value
    assert isinstance(error, KeyboardInterrupt)
    assert same_bits(error.model, ctrl_c.model) and error.history["loss"] == ctrl_c.history["loss"]
    # stopped right after that batch
    assert len(error.history["loss"]) == 1 and after.batches == 4
    assert all(not a.flags.writeable for a in layers.parameters(error.model))
    if folder:
        assert error.checkpoint == sorted(tmp_path.glob("checkpoint-*.npz"))[-1]
        assert same_bits(layers.load(error.checkpoint), error.model)
    else:
        assert error.checkpoint is None
    assert "training interrupted after 1 complete epoch(s)" in str(error)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class Fails:
    """Raises OSError at the end of one batch, as a full disk would."""

    def __init__(self, epoch, batch):
        self.at = (epoch, batch)

    def on_batch_end(self, run):
        if (run.epoch, run.batch) == self.at:
            self.model = run.model()
            raise OSError(28, "No space left on device", "/full/disk")


def test_an_error_in_a_callback_reaches_the_caller_as_itself_carrying_the_work(tmp_path):
    fails = Fails(2, 2)
    with pytest.raises(OSError) as caught:
        fit([fails], epochs=3, checkpoint=tmp_path)
    error = caught.value
    assert type(error) is OSError and error.filename == "/full/disk"
    assert same_bits(error.model, fails.model) and len(error.history["loss"]) == 1
    assert error.checkpoint == max(tmp_path.glob("checkpoint-*.npz"))     # the epoch-1 checkpoint
