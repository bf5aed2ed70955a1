"""The errors and warnings of training runs."""

from __future__ import annotations


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or inf; carries the epoch and batch (counted from 1; None outside ``fit``), the
    loss value and the path of the first layer, in forward order, with a non-finite gradient (or buffer);
    when the prediction itself is not finite (no gradient to look at), ``output=True`` and ``layer`` is the
    first layer whose output is NaN or inf.

    With ``parameter=True`` the loss was finite but the update after that batch made a parameter
    NaN or inf (found before a checkpoint was written); ``layer`` is then the parameter's path.
    With ``validation=True`` the validation loss after the epoch was not finite.
    """

    def __init__(self, epoch: int | None, batch: int | None, loss: float, layer: str | None, *,
                 parameter: bool = False, validation: bool = False, output: bool = False,
                 buffer: bool = False, checkpoint: str | None = None):
        self.epoch, self.batch, self.loss, self.layer = epoch, batch, loss, layer
        at = f" at epoch {epoch}, batch {batch}" if epoch is not None else ""
        if validation:
            what = f"the validation loss is {loss} after epoch {epoch}: the model overflows on x_val"
        elif parameter:
            kind = "buffer" if buffer else "parameter"
            what = f"the update{at.replace(' at', ' after')} (loss {loss}) made the {kind} {layer} NaN or inf"
        elif output:
            where = f"; first layer whose output is NaN or inf: {layer}" if layer else ""
            what = f"the loss is {loss}{at}: the model's prediction is not finite{where}"
        else:
            where = f"; first non-finite gradient in forward order: {layer}" if layer else ""
            what = f"the loss is {loss}{at}{where}"
        advice = " Try a smaller learning rate (or clip_norm=1.0)."
        if checkpoint:
            advice += f" The last checkpoint written, {checkpoint}, is still good."
        super().__init__(what + "." + advice)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``fit``: the work so far is kept in ``.model``, ``.history`` and ``.checkpoint`` (the
    file written, or None)."""

    def __init__(self, model, history: dict, checkpoint=None):
        self.model, self.history, self.checkpoint = model, history, checkpoint
        where = f"; checkpoint written to {checkpoint}" if checkpoint else ""
        super().__init__(f"training interrupted after {len(history.get('loss', []))} complete "
                         f"epoch(s){where}; the model trained so far is in .model, the history in .history")


class TrainingWarning(UserWarning):
    """Something about a run looks wrong (divergence, input far outside the expected range); it goes on."""
